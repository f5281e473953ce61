//! The pipe: the one call both doors make. A request in, a logged verdict out:
//!
//! request ([`Judgement::parse`]) -> rules (the rule set it names) ->
//! [`analyze`] (plan -> source -> measure -> judge) -> the verdict log.
//!
//! The HTTP server and the `judge` command differ only in where the source,
//! the rules and the log come from, and in what records the verdict;
//! everything between is here, once.

pub mod analyze;
pub mod looks;
pub mod run;
pub mod start;

use std::io;

use time::OffsetDateTime;
use tracing::Instrument;

pub use analyze::analyze;
pub use run::{DEFAULT_VERDICT_TIMEOUT, Deadline, Run};

use crate::plan::{self, PlanError, Role};
use crate::request::{Judgement, RequestError, VerdictRequest};
use crate::rules::LoadedRules;
use crate::source::{MetricSource, Sources};
use crate::verdict::Verdict;
use crate::verdict::log::{LogRecord, VerdictLog};

/// Why a request got no verdict. Each door maps these to its own answer (an
/// HTTP status, an exit code) in one place.
#[derive(Debug, thiserror::Error)]
pub enum PipeError {
    /// The request is not one canary-gate can judge; the message says what to fix.
    #[error(transparent)]
    Request(#[from] RequestError),
    /// The request names no rule set in force.
    #[error("{message}")]
    UnknownRules {
        /// The name, the closest loaded name, and the names loaded.
        message: String,
        /// The problems of the rule files as last read, as `file:line:col: message`.
        rule_errors: Vec<String>,
    },
    /// The rule set's queries cannot be made for this request (its vars, its sides).
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// The rule set asks for a metric source the server was not given.
    #[error("{0}")]
    UnknownSource(String),
    /// The verdict could not be recorded, so it is not given.
    #[error("the verdict could not be recorded in the verdict log, so it is not given: {0}")]
    LogUnwritable(#[source] io::Error),
}

/// Judges `request` with the rule sets of `rules` and data from the source
/// its rule set names among `sources`, as of `now`, within `run`'s deadline,
/// and appends the verdict to `log` before returning it. A request without `start` opens its window at the
/// deployment's first logged look. The whole verdict is one tracing span,
/// `verdict`, carrying its id, deployment and rule set.
pub async fn judge<S: MetricSource>(
    sources: &Sources<S>,
    rules: &LoadedRules,
    log: Option<&VerdictLog>,
    request: VerdictRequest,
    now: OffsetDateTime,
    run: Run<'_>,
) -> Result<Verdict, PipeError> {
    let id = uuid::Uuid::now_v7().to_string();
    let span = tracing::info_span!(
        "verdict",
        id = %id,
        deployment = %request.deployment,
        rules = %request.rules,
    );
    let started = std::time::Instant::now();
    let verdict = judge_in_span(sources, rules, log, request, now, id, run)
        .instrument(span)
        .await?;
    run.recorder.verdict(
        &verdict.rules,
        verdict.verdict.as_str(),
        started.elapsed().as_secs_f64(),
    );
    for metric in &verdict.metrics {
        run.recorder.metric_outcome(
            &verdict.rules,
            &metric.name,
            metric.outcome.word(),
            metric.shadow,
        );
    }
    Ok(verdict)
}

async fn judge_in_span<S: MetricSource>(
    sources: &Sources<S>,
    rules: &LoadedRules,
    log: Option<&VerdictLog>,
    request: VerdictRequest,
    now: OffsetDateTime,
    id: String,
    run: Run<'_>,
) -> Result<Verdict, PipeError> {
    // Checked first with an empty window, so a bad request is told what to
    // fix before anything is asked.
    let now_secs = now.unix_timestamp();
    let mut judgement = Judgement::parse(&request, now_secs, None)?;
    let Some(rule_set) = rules.sets.get(&judgement.rules) else {
        return Err(PipeError::UnknownRules {
            message: rules.missing(&judgement.rules),
            rule_errors: rules.errors.iter().map(|e| e.to_string()).collect(),
        });
    };
    let source = sources
        .pick(rule_set.source.as_deref())
        .map_err(PipeError::UnknownSource)?;
    if request.start.is_none() {
        let found = derived_start(source.1, rule_set, &judgement, run).await?;
        judgement = Judgement::parse(&request, now_secs, found)?;
    }
    let verdict = analyze(source, rule_set, &judgement, now, id, run).await?;
    let Some(log) = log else {
        return Ok(verdict);
    };
    let record = LogRecord { verdict, request };
    log.append_async(record.clone()).await.map_err(|e| {
        tracing::error!(error = %e, "could not record a verdict");
        run.recorder.log_write_failed();
        PipeError::LogUnwritable(e)
    })?;
    // The span carries the id, the deployment and the rule set.
    tracing::info!(
        verdict = record.verdict.verdict.as_str(),
        reason = %record.verdict.reason,
        "verdict"
    );
    Ok(record.verdict)
}

/// The start of a window the request left out: the first sample of the
/// canary's current run in the store (see [`start`]), asked with the rule
/// set's first planned canary query that counts all events (a `bad` counter
/// may have no series until the first error). `None` when the store has no
/// sample of the canary, or could not be asked in time: the window is then
/// empty, and its verdict inconclusive, with the store's error in the
/// metrics' reasons if it failed.
async fn derived_start<S: MetricSource>(
    source: &S,
    rule_set: &crate::rules::RuleSet,
    judgement: &Judgement,
    run: Run<'_>,
) -> Result<Option<i64>, PipeError> {
    let plan = plan::plan(
        rule_set,
        &judgement.canary,
        &judgement.baseline,
        &judgement.vars,
    )?;
    let query = plan
        .metrics
        .iter()
        .flat_map(|metric| &metric.canary)
        .find(|query| query.role != Role::Bad);
    let Some(query) = query else {
        return Ok(None);
    };
    let search = start::canary_start(source, &query.promql, judgement.end_secs);
    match tokio::time::timeout_at(run.deadline.at, search).await {
        Ok(Ok(found)) => Ok(found),
        Ok(Err(error)) => {
            tracing::warn!(%error, "could not find the canary's first sample; judging an empty window");
            Ok(None)
        }
        Err(_) => Ok(None),
    }
}
