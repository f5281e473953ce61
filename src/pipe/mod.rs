//! The pipe: the one call both doors make. A request in, a logged verdict out:
//!
//! request ([`Judgement::parse`]) -> rules (the rule set it names) ->
//! [`analyze`] (plan -> source -> measure -> judge) -> the verdict log.
//!
//! The HTTP server and the `judge` command differ only in where the source,
//! the rules and the log come from, and in what records the verdict;
//! everything between is here, once.

pub mod analyze;
pub mod run;

use std::io;

use time::OffsetDateTime;
use tracing::Instrument;

pub use analyze::analyze;
pub use run::{DEFAULT_VERDICT_TIMEOUT, Deadline, Run};

use crate::plan::PlanError;
use crate::request::{Judgement, MAX_WINDOW_SECS, RequestError, VerdictRequest};
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
    /// The verdict log could not be read to find the window's start.
    #[error("the verdict log cannot be read: {0}")]
    LogUnreadable(#[source] io::Error),
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
        run.recorder
            .metric_outcome(&verdict.rules, &metric.name, metric.outcome.word());
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
    let first = match (&request.start, log) {
        (None, Some(log)) => first_start(log, &request, now.unix_timestamp()).await?,
        _ => None,
    };
    let judgement = Judgement::parse(&request, now.unix_timestamp(), first)?;
    let Some(rule_set) = rules.sets.get(&judgement.rules) else {
        return Err(PipeError::UnknownRules {
            message: rules.missing(&judgement.rules),
            rule_errors: rules.errors.iter().map(|e| e.to_string()).collect(),
        });
    };
    let source = sources
        .pick(rule_set.source.as_deref())
        .map_err(PipeError::UnknownSource)?;
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

/// The start of the first logged verdict of the request's deployment under its
/// rule set that could still open a window ending at `now_secs`.
async fn first_start(
    log: &VerdictLog,
    request: &VerdictRequest,
    now_secs: i64,
) -> Result<Option<i64>, PipeError> {
    // A window spans at most MAX_WINDOW_SECS, so a first look older than that
    // (and a day's slack for the file boundary) cannot start a valid one.
    let since_secs = now_secs - MAX_WINDOW_SECS - 24 * 3600;
    let (deployment, rules) = (request.deployment.clone(), request.rules.clone());
    log.blocking(move |log| log.first_start(&deployment, &rules, since_secs))
        .await
        .map_err(PipeError::LogUnreadable)
}
