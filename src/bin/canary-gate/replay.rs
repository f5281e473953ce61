//! `canary-gate replay`: judges a past window look by look, as `wait` would
//! have, and says at which look the verdict would first have been decided.
//!
//! Every look runs through the same [`pipe::judge`] as a real verdict, against
//! a [`WindowCache`]: each range query reaches the store once, over the whole
//! window, and every look is judged from that answer, so replaying 60 looks
//! costs about what one look costs.

use std::io::Write;
use std::time::Duration;

use serde::Serialize;
use time::OffsetDateTime;

use canary_gate::pipe::looks::Looks;
use canary_gate::pipe::{self, PipeError};
use canary_gate::request::{TimeSpec, VerdictRequest};
use canary_gate::rules::LoadedRules;
use canary_gate::source::{MetricSource, Sources, WindowCache};
use canary_gate::telemetry::NoRecorder;
use canary_gate::text;
use canary_gate::verdict::{Outcome, Verdict};

/// What to replay: the request every look sends, and when the looks are.
#[derive(Clone, Debug)]
pub struct ReplayOptions {
    /// The request of every look, its `start` the canary's start; `end` and
    /// `final` are set per look.
    pub request: VerdictRequest,
    /// Unix seconds of the canary's start, where the first look counts from.
    pub start_secs: i64,
    /// Unix seconds past which no look is made.
    pub end_secs: i64,
    /// Time between looks.
    pub every: Duration,
    /// When set, the look this long after the start is judged final and is the last.
    pub final_at: Option<Duration>,
    /// Budget of each look's verdict.
    pub verdict_timeout: Duration,
}

/// When one look is made: `every` after the last, the first `every` after the
/// start, as `wait` looking every `every` would have.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LookTime {
    pub end_secs: i64,
    pub is_final: bool,
}

/// The looks of `options`: every `every` from the start up to the end, or up
/// to the final look `final_at` after the start, which is made even off the
/// `every` grid.
pub fn look_times(options: &ReplayOptions) -> anyhow::Result<Vec<LookTime>> {
    let every_secs = options.every.as_secs() as i64;
    anyhow::ensure!(every_secs >= 1, "--every must be at least 1s");
    anyhow::ensure!(
        options.end_secs > options.start_secs,
        "--end ({}) must come after --start ({})",
        text::time(options.end_secs),
        text::time(options.start_secs)
    );
    let final_secs = match options.final_at {
        Some(final_at) => {
            let at = options.start_secs + final_at.as_secs() as i64;
            anyhow::ensure!(
                at > options.start_secs && at <= options.end_secs,
                "--final-at puts the final look at {}, outside the replayed window ({} to {})",
                text::time(at),
                text::time(options.start_secs),
                text::time(options.end_secs)
            );
            Some(at)
        }
        None => None,
    };
    let last_secs = final_secs.unwrap_or(options.end_secs);
    let mut looks: Vec<LookTime> = (1..)
        .map(|k| options.start_secs + k * every_secs)
        .take_while(|end_secs| *end_secs <= last_secs)
        .map(|end_secs| LookTime {
            end_secs,
            is_final: false,
        })
        .collect();
    if let Some(final_secs) = final_secs {
        if looks.last().map(|look| look.end_secs) == Some(final_secs) {
            looks.pop();
        }
        looks.push(LookTime {
            end_secs: final_secs,
            is_final: true,
        });
    }
    anyhow::ensure!(
        !looks.is_empty(),
        "the window from --start to --end is shorter than --every, so it holds no look"
    );
    Ok(looks)
}

/// One look's verdict.
#[derive(Debug)]
pub struct Look {
    pub time: LookTime,
    pub verdict: Verdict,
}

/// A replay: every look's verdict, and how many queries reached the store.
#[derive(Debug)]
pub struct Replay {
    pub start_secs: i64,
    pub looks: Vec<Look>,
    pub queries_sent: u64,
}

impl Replay {
    /// The first look whose verdict is promote or rollback, numbered from 1.
    pub fn first_decided(&self) -> Option<(usize, &Look)> {
        self.looks
            .iter()
            .enumerate()
            .find(|(_, look)| look.verdict.verdict != Outcome::Inconclusive)
            .map(|(index, look)| (index + 1, look))
    }

    /// The exit code: the first decided verdict's, else inconclusive's.
    pub fn exit_code(&self) -> u8 {
        match self.first_decided() {
            Some((_, look)) => look.verdict.verdict.exit_code(),
            None => Outcome::Inconclusive.exit_code(),
        }
    }
}

/// Judges the looks `times` of `options` with `sources` and the rule sets of
/// `rules`, as of `now`, and counts the queries that reached the stores.
pub async fn replay<S: MetricSource>(
    sources: &Sources<WindowCache<S>>,
    rules: &LoadedRules,
    options: &ReplayOptions,
    times: Vec<LookTime>,
    now: OffsetDateTime,
) -> Result<Replay, PipeError> {
    let mut looks = Vec::with_capacity(times.len());
    // Each look goes on from the last one's statistics, as the server's do,
    // so a replay walks its window about once rather than once a look; the
    // answers are a fresh look's either way.
    let kept = std::sync::Arc::new(Looks::new());
    for time in times {
        let mut request = options.request.clone();
        request.end = Some(TimeSpec::Unix(time.end_secs as f64));
        request.is_final = time.is_final;
        let run = pipe::Run::within(options.verdict_timeout, &NoRecorder).keeping_looks(&kept);
        let verdict = pipe::judge(sources, rules, None, request, now, run).await?;
        looks.push(Look { time, verdict });
    }
    let queries_sent = sources.iter().map(|(_, source)| source.sent()).sum();
    Ok(Replay {
        start_secs: options.start_secs,
        looks,
        queries_sent,
    })
}

/// One line per look, then the first decided look and its reason, then the
/// queries sent.
pub fn write_text(replay: &Replay, out: &mut impl Write) -> std::io::Result<()> {
    for (index, look) in replay.looks.iter().enumerate() {
        let metrics: Vec<String> = look
            .verdict
            .metrics
            .iter()
            .map(|m| format!("{} {}", m.label(), m.outcome.word()))
            .collect();
        writeln!(
            out,
            "look {:>3}  {} {:<10} {:<12}{} {}",
            index + 1,
            text::time(look.time.end_secs),
            format!(
                "(+{})",
                text::duration(look.time.end_secs - replay.start_secs)
            ),
            look.verdict.verdict.as_str(),
            if look.time.is_final { " final" } else { "" },
            metrics.join(", ")
        )?;
    }
    match replay.first_decided() {
        Some((number, look)) => {
            writeln!(
                out,
                "first decided: look {number} at {} (+{}): {}",
                text::time(look.time.end_secs),
                text::duration(look.time.end_secs - replay.start_secs),
                look.verdict.verdict.as_str()
            )?;
            writeln!(out, "reason: {}", look.verdict.reason)?;
        }
        None => writeln!(
            out,
            "never decided: all {} looks were inconclusive",
            replay.looks.len()
        )?,
    }
    writeln!(
        out,
        "{} queries for {} looks",
        replay.queries_sent,
        replay.looks.len()
    )
}

/// One look in the JSON document.
#[derive(Serialize)]
struct LookSummary<'a> {
    look: usize,
    end: String,
    end_secs: i64,
    elapsed_secs: i64,
    #[serde(rename = "final")]
    is_final: bool,
    verdict: &'a str,
    reason: &'a str,
    metrics: Vec<MetricSummary<'a>>,
}

/// One metric of a look in the JSON document.
#[derive(Serialize)]
struct MetricSummary<'a> {
    name: &'a str,
    outcome: &'a str,
    /// Judged and shown, never counted in the verdict.
    shadow: bool,
}

/// The JSON document of a replay.
#[derive(Serialize)]
struct ReplaySummary<'a> {
    start: String,
    looks: Vec<LookSummary<'a>>,
    first_decided: Option<LookSummary<'a>>,
    queries_sent: u64,
}

fn summary<'a>(replay: &Replay, number: usize, look: &'a Look) -> LookSummary<'a> {
    LookSummary {
        look: number,
        end: text::time(look.time.end_secs),
        end_secs: look.time.end_secs,
        elapsed_secs: look.time.end_secs - replay.start_secs,
        is_final: look.time.is_final,
        verdict: look.verdict.verdict.as_str(),
        reason: &look.verdict.reason,
        metrics: look
            .verdict
            .metrics
            .iter()
            .map(|m| MetricSummary {
                name: &m.name,
                outcome: m.outcome.word(),
                shadow: m.shadow,
            })
            .collect(),
    }
}

/// The replay as one JSON document: every look's verdict summary and the
/// first decided look (`null` when none was).
pub fn write_json(replay: &Replay, out: &mut impl Write) -> anyhow::Result<()> {
    let document = ReplaySummary {
        start: text::time(replay.start_secs),
        looks: replay
            .looks
            .iter()
            .enumerate()
            .map(|(index, look)| summary(replay, index + 1, look))
            .collect(),
        first_decided: replay
            .first_decided()
            .map(|(number, look)| summary(replay, number, look)),
        queries_sent: replay.queries_sent,
    };
    writeln!(out, "{}", serde_json::to_string_pretty(&document)?)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(end_secs: i64, every_secs: u64, final_at_secs: Option<u64>) -> ReplayOptions {
        ReplayOptions {
            request: VerdictRequest {
                rules: "http".into(),
                deployment: "search-1".into(),
                canary: canary_gate::request::SideSpec::Selector("track=canary".into()),
                baseline: canary_gate::request::SideSpec::Selector("track=baseline".into()),
                start: Some(TimeSpec::Unix(1_000.0)),
                end: None,
                vars: Default::default(),
                is_final: false,
                final_after: None,
            },
            start_secs: 1_000,
            end_secs,
            every: Duration::from_secs(every_secs),
            final_at: final_at_secs.map(Duration::from_secs),
            verdict_timeout: Duration::from_secs(8),
        }
    }

    fn ends(looks: &[LookTime]) -> Vec<(i64, bool)> {
        looks.iter().map(|l| (l.end_secs, l.is_final)).collect()
    }

    // Pins the look grid: `wait --every`'s looks from the start, none final
    // without --final-at, and none past --end.
    #[test]
    fn looks_are_every_interval_after_the_start() {
        let looks = look_times(&options(1_100, 30, None)).expect("valid");
        assert_eq!(
            ends(&looks),
            [(1_030, false), (1_060, false), (1_090, false)]
        );
    }

    // Pins --final-at: its look is final and the last, on the grid or off it,
    // and a final look outside the window is refused.
    #[test]
    fn the_final_look_is_the_last() {
        let on_grid = look_times(&options(1_200, 30, Some(60))).expect("valid");
        assert_eq!(ends(&on_grid), [(1_030, false), (1_060, true)]);
        let off_grid = look_times(&options(1_200, 30, Some(75))).expect("valid");
        assert_eq!(
            ends(&off_grid),
            [(1_030, false), (1_060, false), (1_075, true)]
        );
        assert!(look_times(&options(1_200, 30, Some(300))).is_err());
        assert!(look_times(&options(1_020, 30, None)).is_err());
    }
}
