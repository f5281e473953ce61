//! How one verdict is run: its one budget ([`Deadline`]), what it reports
//! itself to, and where it keeps its looks for the next. Below the rest of
//! the pipe: it uses no stage but the store of looks.

use std::time::Duration;

use super::looks::Looks;
use crate::telemetry::Recorder;

/// Default budget of one whole verdict (`--verdict-timeout`). Argo Rollouts'
/// web metric provider (`timeoutSeconds`) and Flagger's webhooks (`timeout`)
/// both give up after 10 s by default; a verdict answered within 8 s reaches
/// them as canary-gate's own reasoned answer, with 2 s to spare for the
/// network and the judging, rather than as the caller's timeout.
pub const DEFAULT_VERDICT_TIMEOUT: Duration = Duration::from_secs(8);

/// The one budget of a verdict: every query, its retries included, is
/// answered by this instant or counted as not answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Deadline {
    /// When the budget runs out.
    pub at: tokio::time::Instant,
    /// The whole budget, for the words that name it.
    pub budget: Duration,
}

impl Deadline {
    /// A deadline `budget` from now.
    pub fn after(budget: Duration) -> Deadline {
        Deadline {
            at: tokio::time::Instant::now() + budget,
            budget,
        }
    }
}

impl std::fmt::Display for Deadline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the verdict deadline of {} (--verdict-timeout)",
            humantime::format_duration(self.budget)
        )
    }
}

/// How one verdict is run: its deadline, what it reports itself to, and
/// where its metrics' statistics are kept for the next look.
#[derive(Clone, Copy)]
pub struct Run<'a> {
    /// The budget of the whole verdict.
    pub deadline: Deadline,
    /// Where the verdict's queries, outcomes and duration are counted.
    pub recorder: &'a dyn Recorder,
    /// The server's store of looks; `None` (the one-shot `judge`) keeps none.
    pub looks: Option<&'a std::sync::Arc<Looks>>,
}

impl<'a> Run<'a> {
    /// A run whose deadline is `budget` from now, reporting to `recorder`,
    /// keeping no looks.
    pub fn within(budget: Duration, recorder: &'a dyn Recorder) -> Run<'a> {
        Run {
            deadline: Deadline::after(budget),
            recorder,
            looks: None,
        }
    }

    /// The same run, keeping its looks in `looks` for the next.
    pub fn keeping_looks(self, looks: &'a std::sync::Arc<Looks>) -> Run<'a> {
        Run {
            looks: Some(looks),
            ..self
        }
    }
}
