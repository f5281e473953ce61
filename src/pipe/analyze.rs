//! The inner pipe: a judgement and its rule set in, a verdict out.
//!
//! plan -> source -> measure -> judge, each a plain call on plain data; the
//! queries of all metrics are sent at the same time, each distinct one once,
//! and each is answered within the verdict's deadline or counted as not
//! answered. A metric is measured as soon as its own answers are in, and
//! judged while the others' queries are still out; judging is CPU work, so
//! it runs off the async workers, one metric per core at a time. The
//! verdict is made of the metrics' reports once every one is judged.

use std::collections::HashMap;
use std::sync::Arc;

use futures_util::FutureExt;
use futures_util::stream::{FuturesUnordered, StreamExt};
use time::OffsetDateTime;
use tracing::Instrument;

use crate::judge::{self, Measured, MetricInput, PooledBuckets, VerdictFrame};
use crate::measure::{self, Drops, MeasureError};
use crate::pipe::looks::{LookKey, Looks};
use crate::pipe::run::{Deadline, Run};
use crate::plan::{self, PlanError, PlannedQuery, Role};
use crate::request::Judgement;
use crate::rules::{MetricKind, Query, RuleSet};
use crate::source::{MetricSource, RangeSpec, Series, SourceError};
use crate::stats::counts::StepCounts;
use crate::stats::distribution::{HistogramStep, SideBuckets, pooled_counts};
use crate::text;
use crate::verdict::{MetricReport, Outcome, SentQuery, Side, Verdict, Window};

/// One query to send: a range query over the window, or an instant query at its end.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Fetch {
    Range(String),
    Instant(String),
}

/// Why a query has no series to measure.
#[derive(Debug)]
enum Unanswered {
    /// The source answered with an error.
    Source(SourceError),
    /// The verdict's deadline came first.
    Deadline(Deadline),
}

impl std::fmt::Display for Unanswered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unanswered::Source(error) => error.fmt(f),
            Unanswered::Deadline(deadline) => {
                write!(f, "Prometheus had not answered by {deadline}")
            }
        }
    }
}

impl Unanswered {
    /// The kind it is counted under, one of [`crate::telemetry::ERROR_KINDS`].
    fn kind(&self) -> &'static str {
        match self {
            Unanswered::Source(SourceError::Unreachable(_)) => "unreachable",
            Unanswered::Source(SourceError::Timeout(_)) => "timeout",
            Unanswered::Source(SourceError::Http { .. }) => "http",
            Unanswered::Source(SourceError::Query { .. }) => "query",
            Unanswered::Source(SourceError::Partial(_)) => "partial",
            Unanswered::Source(SourceError::BadResponse(_)) => "bad_response",
            Unanswered::Deadline(_) => "deadline",
        }
    }
}

/// Judges `judgement` against `rules` with data from `source` (a name and
/// its client), as of `now`,
/// as the verdict `id`, within `run`'s deadline. A query still unanswered at
/// the deadline is an error of its metrics; such a verdict is never promote,
/// and its reason names the deadline.
pub async fn analyze<S: MetricSource>(
    (source_name, source): (&str, &S),
    rules: &Arc<RuleSet>,
    judgement: &Judgement,
    now: OffsetDateTime,
    id: String,
    run: Run<'_>,
) -> Result<Verdict, PlanError> {
    let plan = plan::plan(
        rules,
        &judgement.canary,
        &judgement.baseline,
        &judgement.vars,
    )?;
    let range = measure::window_range(judgement.start_secs, judgement.end_secs, rules.step_secs);

    let queries = Queries::of(rules, &plan);
    let frame = VerdictFrame {
        id,
        judged_at: text::time(now.unix_timestamp()),
        canary: judgement.canary.to_string(),
        baseline: judgement.baseline.to_string(),
        window: Window {
            start: text::time(judgement.start_secs),
            end: text::time(judgement.end_secs),
            start_secs: judgement.start_secs,
            end_secs: judgement.end_secs,
            step_secs: range.step_secs,
        },
    };
    let looked = Look {
        rules,
        plan: &plan,
        queries: &queries,
        range,
    };
    let (reports, missed) = looked
        .fetch_and_judge((source_name, source), judgement, &frame.window, run)
        .await;
    let verdict = judge::verdict_of(rules, judgement, reports, frame);
    Ok(held_at_the_deadline(
        verdict,
        run.deadline,
        missed,
        queries.fetches.len(),
    ))
}

/// A verdict's distinct queries, and which of them each metric reads.
struct Queries {
    /// Every distinct query once, in the order the metrics first ask it.
    fetches: Vec<Fetch>,
    index_of: HashMap<Fetch, usize>,
    /// For each metric, the indexes in `fetches` of its queries.
    needs: Vec<Vec<usize>>,
}

impl Queries {
    fn of(rules: &RuleSet, plan: &plan::Plan) -> Queries {
        let mut queries = Queries {
            fetches: Vec::new(),
            index_of: HashMap::new(),
            needs: Vec::with_capacity(rules.metrics.len()),
        };
        for (metric, metric_plan) in rules.metrics.iter().zip(&plan.metrics) {
            let mut needs = Vec::new();
            for query in metric_plan.canary.iter().chain(&metric_plan.baseline) {
                let fetch = fetch_for(&metric.kind, query);
                let fetches = &mut queries.fetches;
                let index = *queries.index_of.entry(fetch.clone()).or_insert_with(|| {
                    fetches.push(fetch);
                    fetches.len() - 1
                });
                if !needs.contains(&index) {
                    needs.push(index);
                }
            }
            queries.needs.push(needs);
        }
        queries
    }
}

/// One look's rules, plan, queries and range, for fetching and judging.
struct Look<'a> {
    rules: &'a Arc<RuleSet>,
    plan: &'a plan::Plan,
    queries: &'a Queries,
    range: RangeSpec,
}

impl Look<'_> {
    /// Sends every distinct query at the same time; measures each metric as
    /// soon as its own answers are in and judges it while the other metrics'
    /// queries are still out. Every metric's report, in order, and how many
    /// queries found the deadline first.
    async fn fetch_and_judge<S: MetricSource>(
        &self,
        (source_name, source): (&str, &S),
        judgement: &Judgement,
        window: &Window,
        run: Run<'_>,
    ) -> (Vec<MetricReport>, usize) {
        let Queries { fetches, needs, .. } = self.queries;
        let metrics = self.rules.metrics.len();
        let mut answers = Answers::new(fetches, needs);
        let mut arriving: FuturesUnordered<_> = fetches
            .iter()
            .enumerate()
            .map(|(index, fetch)| {
                fetch_one((source_name, source), fetch, self.range, run).map(move |a| (index, a))
            })
            .collect();
        let mut judging = FuturesUnordered::new();
        let mut reports: Vec<Option<MetricReport>> = vec![None; metrics];
        let shared = Arc::new((judgement.clone(), window.clone()));
        let mut ready: Vec<usize> = (0..metrics).filter(|&m| needs[m].is_empty()).collect();
        loop {
            for index in ready.drain(..) {
                let input = self.measure(index, &answers);
                // Measured: its answers are freed once no other metric needs
                // them, so concurrent verdicts do not hold every answer while
                // judging.
                answers.measured(&needs[index]);
                let looks = run.looks.map(|looks| {
                    (
                        Arc::clone(looks),
                        self.look_key(index, source_name, judgement),
                    )
                });
                judging.push(judge_off_the_workers(
                    Arc::clone(self.rules),
                    index,
                    Arc::clone(&shared),
                    input,
                    looks,
                ));
            }
            tokio::select! {
                Some((fetch, answer)) = arriving.next() => {
                    ready.extend(answers.arrived(fetch, answer));
                }
                Some((index, report)) = judging.next() => reports[index] = Some(report),
                else => break,
            }
        }
        let reports = reports
            .into_iter()
            .map(|report| report.expect("every metric is judged once its answers are in"))
            .collect();
        (reports, answers.missed)
    }

    /// What keys metric `index`'s memory of this look (see [`LookKey`]).
    fn look_key(&self, index: usize, source_name: &str, judgement: &Judgement) -> LookKey {
        let metric_plan = &self.plan.metrics[index];
        LookKey {
            rules: self.rules.name.clone(),
            rules_hash: self.rules.content_hash.clone(),
            metric: self.rules.metrics[index].name.clone(),
            queries: metric_plan
                .canary
                .iter()
                .chain(&metric_plan.baseline)
                .map(|query| query.promql.clone())
                .collect(),
            source: source_name.to_string(),
            start_secs: judgement.start_secs,
            step_secs: self.range.step_secs,
        }
    }

    /// Metric `index`'s measurement from the answers kept so far, with the
    /// queries that made it.
    fn measure(&self, index: usize, answers: &Answers) -> MetricInput {
        let (metric, metric_plan) = (&self.rules.metrics[index], &self.plan.metrics[index]);
        let get = |query: &PlannedQuery| -> Result<&Vec<Series>, String> {
            let index = self.queries.index_of.get(&fetch_for(&metric.kind, query));
            match index.and_then(|&index| answers.get(index)) {
                Some(Ok(series)) => Ok(series),
                Some(Err(error)) => Err(format!("{error} (query: {})", query.promql)),
                None => Err(format!("internal: no answer kept for {}", query.promql)),
            }
        };
        MetricInput {
            measured: measure_metric(&metric.kind, metric_plan, self.range, get),
            queries: sent_queries(metric_plan),
        }
    }
}

/// The answers of one verdict's queries as they come in, each kept until
/// every metric that reads it has been measured.
struct Answers {
    answers: Vec<Option<Result<Vec<Series>, Unanswered>>>,
    /// For each query, the metrics that read it.
    readers: Vec<Vec<usize>>,
    /// For each query, how many of its readers are still to be measured.
    unmeasured: Vec<usize>,
    /// For each metric, how many of its queries are still unanswered.
    unanswered: Vec<usize>,
    /// How many queries found the deadline first.
    missed: usize,
}

impl Answers {
    fn new(fetches: &[Fetch], needs: &[Vec<usize>]) -> Answers {
        let mut readers = vec![Vec::new(); fetches.len()];
        for (metric, fetch_indexes) in needs.iter().enumerate() {
            for &fetch in fetch_indexes {
                readers[fetch].push(metric);
            }
        }
        Answers {
            answers: (0..fetches.len()).map(|_| None).collect(),
            unmeasured: readers.iter().map(Vec::len).collect(),
            readers,
            unanswered: needs.iter().map(Vec::len).collect(),
            missed: 0,
        }
    }

    /// Keeps the answer to query `fetch`; the metrics now ready to be measured.
    fn arrived(
        &mut self,
        fetch: usize,
        answer: Result<Vec<Series>, Unanswered>,
    ) -> impl Iterator<Item = usize> + '_ {
        if matches!(answer, Err(Unanswered::Deadline(_))) {
            self.missed += 1;
        }
        self.answers[fetch] = Some(answer);
        let unanswered = &mut self.unanswered;
        self.readers[fetch].iter().copied().filter(move |&metric| {
            unanswered[metric] -= 1;
            unanswered[metric] == 0
        })
    }

    /// The answer kept for query `fetch`.
    fn get(&self, fetch: usize) -> Option<&Result<Vec<Series>, Unanswered>> {
        self.answers.get(fetch)?.as_ref()
    }

    /// One reader of each of `fetch_indexes` is measured: frees the answers
    /// no reader still needs.
    fn measured(&mut self, fetch_indexes: &[usize]) {
        for &fetch in fetch_indexes {
            self.unmeasured[fetch] -= 1;
            if self.unmeasured[fetch] == 0 {
                self.answers[fetch] = None;
            }
        }
    }
}

/// The queries of one metric's plan, as its report lists them.
fn sent_queries(metric_plan: &plan::MetricPlan) -> Vec<SentQuery> {
    let mut queries = Vec::new();
    for (side, list) in [
        (Side::Canary, &metric_plan.canary),
        (Side::Baseline, &metric_plan.baseline),
    ] {
        for query in list {
            queries.push(SentQuery {
                side,
                role: query.role,
                promql: query.promql.clone(),
            });
        }
    }
    queries
}

/// Sends `fetch` over `range`, answered within `run`'s deadline or counted
/// as not answered.
async fn fetch_one<S: MetricSource>(
    (source_name, source): (&str, &S),
    fetch: &Fetch,
    range: RangeSpec,
    run: Run<'_>,
) -> Result<Vec<Series>, Unanswered> {
    let deadline = run.deadline;
    let (kind, promql) = match fetch {
        Fetch::Range(promql) => ("range", promql),
        Fetch::Instant(promql) => ("instant", promql),
    };
    let span = tracing::info_span!("query", kind, promql = %promql);
    async move {
        let started = std::time::Instant::now();
        let query = async {
            match fetch {
                Fetch::Range(promql) => source.range_query(promql, range).await,
                Fetch::Instant(promql) => source.instant_query(promql, range.end_secs).await,
            }
        };
        // The retries run inside the one budget: at the deadline the query
        // is given up, and the answers that came in time are kept.
        let answer = match tokio::time::timeout_at(deadline.at, query).await {
            Ok(answer) => answer.map_err(Unanswered::Source),
            Err(_) => Err(Unanswered::Deadline(deadline)),
        };
        let error_kind = answer.as_ref().err().map(Unanswered::kind);
        if let Err(error) = &answer {
            tracing::warn!(%error, "query unanswered");
        }
        run.recorder
            .query(source_name, started.elapsed().as_secs_f64(), error_kind);
        answer
    }
    .instrument(span)
    .await
}

/// [`judge::judge_metric`] of metric `index` on tokio's blocking pool: it is
/// pure CPU work that grows with the window, and on the async workers it
/// would stall every other request (`/healthz` among them) while it runs.
/// With `looks`, the metric's memory of the last look is taken from the
/// store under the key before judging, and this look's put back after.
async fn judge_off_the_workers(
    rules: Arc<RuleSet>,
    index: usize,
    shared: Arc<(Judgement, Window)>,
    input: MetricInput,
    looks: Option<(Arc<Looks>, LookKey)>,
) -> (usize, MetricReport) {
    let span = tracing::info_span!("judge", metric = %rules.metrics[index].name);
    // One judging per core at a time: more would not finish sooner, and each
    // holds its own working set (a distribution metric's per-edge counts and
    // paths), which is what 16 concurrent 24-hour verdicts' memory was.
    let permit = judging_slots()
        .acquire()
        .await
        .expect("the judging slots are never closed");
    let task = tokio::task::spawn_blocking(move || {
        let (judgement, window) = &*shared;
        let metric = &rules.metrics[index];
        let report = span.in_scope(|| match looks {
            Some((looks, key)) => {
                let memory = looks.take(&key);
                let (report, kept) =
                    judge::judge_metric_from(&rules, judgement, metric, input, window, memory);
                if let Some(kept) = kept {
                    looks.put(key, kept);
                }
                report
            }
            None => judge::judge_metric(&rules, judgement, metric, input, window),
        });
        drop(permit);
        report
    });
    match task.await {
        Ok(report) => (index, report),
        // A panic in the judge stays a panic, as if it had run here.
        Err(error) => match error.try_into_panic() {
            Ok(panic) => std::panic::resume_unwind(panic),
            Err(error) => panic!("the judging task did not run: {error}"),
        },
    }
}

/// The slots of [`judge_off_the_workers`]: as many as the process may run
/// threads at once (`available_parallelism`, which counts a cgroup's CPU quota).
fn judging_slots() -> &'static tokio::sync::Semaphore {
    static SLOTS: std::sync::OnceLock<tokio::sync::Semaphore> = std::sync::OnceLock::new();
    SLOTS.get_or_init(|| {
        let cores = std::thread::available_parallelism().map_or(2, usize::from);
        tokio::sync::Semaphore::new(cores)
    })
}

/// `verdict` as it stands once `missed` of its `sent` queries found the
/// deadline first: never promote, and its reason names the deadline.
fn held_at_the_deadline(
    mut verdict: Verdict,
    deadline: Deadline,
    missed: usize,
    sent: usize,
) -> Verdict {
    if missed == 0 {
        return verdict;
    }
    let note = format!(
        "{missed} of {sent} queries were still unanswered at {deadline}, so canary-gate will not promote."
    );
    if verdict.verdict == Outcome::Promote {
        // Unreachable while an errored metric blocks promotion; kept so no
        // rule-set setting can ever promote past a missed deadline.
        verdict.verdict = Outcome::Inconclusive;
        verdict.reason = format!("Inconclusive: {note}");
    } else {
        verdict.reason = format!("{} {note}", verdict.reason.trim_end());
    }
    verdict
}

fn fetch_for(kind: &MetricKind, query: &PlannedQuery) -> Fetch {
    match kind {
        MetricKind::Threshold { .. } => Fetch::Instant(query.promql.clone()),
        _ => Fetch::Range(query.promql.clone()),
    }
}

fn role_query(list: &[PlannedQuery], role: Role) -> Result<&PlannedQuery, String> {
    list.iter()
        .find(|q| q.role == role)
        .ok_or_else(|| format!("internal: the plan has no {role:?} query"))
}

/// Refuses counter series with NaN or infinite samples: a counter is never
/// either, so such data is broken and its increases cannot be trusted.
fn finite_counters<'a>(side: &str, series: &'a Vec<Series>) -> Result<&'a Vec<Series>, String> {
    match measure::non_finite(series, true) {
        Some(what) => Err(format!(
            "The {side}'s counters returned non-finite samples ({what}); a counter is never NaN or infinite, so this data cannot be judged."
        )),
        None => Ok(series),
    }
}

/// Turns one metric's answers into its measurement; any failure becomes
/// `Measured::Failed`, a side with no series at all `Measured::Missing`.
fn measure_metric<'a>(
    kind: &MetricKind,
    plan: &plan::MetricPlan,
    range: RangeSpec,
    get: impl Fn(&PlannedQuery) -> Result<&'a Vec<Series>, String>,
) -> Measured {
    try_measure(kind, plan, range, get).unwrap_or_else(Measured::Failed)
}

fn try_measure<'a>(
    kind: &MetricKind,
    plan: &plan::MetricPlan,
    range: RangeSpec,
    get: impl Fn(&PlannedQuery) -> Result<&'a Vec<Series>, String>,
) -> Result<Measured, String> {
    let sides = [("canary", &plan.canary), ("baseline", &plan.baseline)];
    // The series of `role` for both sides, refused if any sample is not finite.
    let counters = |role: Role| -> Result<[&'a Vec<Series>; 2], String> {
        let mut found = Vec::with_capacity(2);
        for (side, list) in sides {
            found.push(finite_counters(side, get(role_query(list, role)?)?)?);
        }
        Ok([found[0], found[1]])
    };
    // A side with no series at all, or one that stopped reporting, has no data to judge.
    let missing = |[canary, baseline]: [&Vec<Series>; 2], what: &str| -> Option<Measured> {
        for (side, series) in [("canary", canary), ("baseline", baseline)] {
            if series.is_empty() {
                return Some(Measured::Missing(format!(
                    "The {side}'s {what} query returned no series: no data to judge."
                )));
            }
        }
        measure::vanished(canary, baseline, range).map(Measured::Failed)
    };
    match kind {
        MetricKind::Ratio { bad, total, .. } => {
            let [canary_bad, baseline_bad] = counters(Role::Bad)?;
            let totals = counters(Role::Total)?;
            if let Some(measured) = missing(totals, "total") {
                return Ok(measured);
            }
            let [canary_total, baseline_total] = totals;
            let increases =
                |series, query| measure::counter_increases(series, range, drops_of(query));
            Ok(Measured::Counts(zip_steps(
                &increases(canary_bad, bad),
                &increases(canary_total, total),
                &increases(baseline_bad, bad),
                &increases(baseline_total, total),
            )))
        }
        MetricKind::Latency {
            histogram,
            threshold_seconds,
            ..
        } => {
            let histograms = counters(Role::Histogram)?;
            if let Some(measured) = missing(histograms, "histogram") {
                return Ok(measured);
            }
            let counts = |series: &Vec<Series>| -> Result<(Vec<f64>, Vec<f64>), String> {
                measure::histogram_counts(series, *threshold_seconds, range, drops_of(histogram))
                    .map_err(|e: MeasureError| e.to_string())
            };
            let (canary_slow, canary_total) = counts(histograms[0])?;
            let (baseline_slow, baseline_total) = counts(histograms[1])?;
            // The percentiles come from every bucket; buckets that do not
            // read as one layout leave them out, not the threshold's test.
            let pool = |side: &measure::HistogramSteps| {
                pooled_counts(
                    side.at_or_below
                        .iter()
                        .map(Vec::as_slice)
                        .zip(side.totals.iter().copied()),
                )
            };
            let buckets = both_histograms(histograms, range, drops_of(histogram))
                .ok()
                .map(|(canary, baseline)| PooledBuckets {
                    canary: pool(&canary),
                    baseline: pool(&baseline),
                    edges: canary.edges,
                });
            Ok(Measured::Latency {
                steps: zip_steps(&canary_slow, &canary_total, &baseline_slow, &baseline_total),
                buckets,
            })
        }
        MetricKind::Distribution { histogram, .. } => {
            let histograms = counters(Role::Histogram)?;
            if let Some(measured) = missing(histograms, "histogram") {
                return Ok(measured);
            }
            let (canary, baseline) = both_histograms(histograms, range, drops_of(histogram))?;
            Ok(Measured::Histogram {
                edges: canary.edges.clone(),
                steps: zip_histograms(canary, baseline),
            })
        }
        MetricKind::Series { .. } => {
            // NaN points are gaps (a ratio at a step with no traffic); infinities are broken data.
            let mut pooled = Vec::with_capacity(2);
            for (side, list) in sides {
                let series = get(role_query(list, Role::Series)?)?;
                if let Some(what) = measure::non_finite(series, false) {
                    return Err(format!(
                        "The {side}'s series returned infinite samples ({what}), which cannot be compared."
                    ));
                }
                pooled.push(measure::pooled_values(series));
            }
            let baseline = pooled.pop().unwrap_or_default();
            let canary = pooled.pop().unwrap_or_default();
            Ok(Measured::Samples { canary, baseline })
        }
        MetricKind::Threshold { .. } => {
            let series = get(role_query(&plan.canary, Role::Value)?)?;
            if let Some(what) = measure::non_finite(series, false) {
                return Err(format!(
                    "The canary's value is infinite ({what}), which no bound can judge."
                ));
            }
            measure::single_value(series)
                .map(Measured::Value)
                .map_err(|e| e.to_string())
        }
    }
}

/// Both sides' histograms bucket by bucket, refused (with both layouts
/// named) unless every series of both sides has the same buckets.
fn both_histograms(
    [canary, baseline]: [&Vec<Series>; 2],
    range: RangeSpec,
    drops: Drops,
) -> Result<(measure::HistogramSteps, measure::HistogramSteps), String> {
    let buckets = |series: &Vec<Series>| {
        measure::histogram_buckets(series, range, drops).map_err(|e: MeasureError| e.to_string())
    };
    let (canary, baseline) = (buckets(canary)?, buckets(baseline)?);
    if canary.edges != baseline.edges {
        return Err(MeasureError::SideLayoutMismatch {
            canary: canary.layout,
            baseline: baseline.layout,
        }
        .to_string());
    }
    Ok((canary, baseline))
}

/// Both sides' bucket counts step by step, for the distribution test. Both
/// sides have a step for every step of the window.
fn zip_histograms(
    canary: measure::HistogramSteps,
    baseline: measure::HistogramSteps,
) -> Vec<HistogramStep> {
    let side = |steps: measure::HistogramSteps| {
        steps
            .at_or_below
            .into_iter()
            .zip(steps.totals)
            .map(|(at_or_below, total)| SideBuckets { at_or_below, total })
    };
    side(canary)
        .zip(side(baseline))
        .map(|(canary, baseline)| HistogramStep { canary, baseline })
        .collect()
}

/// How drops in the series `query` returns are read: a bare selector's series
/// are single counters that restart; anything else may combine counters.
fn drops_of(query: &Query) -> Drops {
    match query.reads_raw_series() {
        true => Drops::Restart,
        false => Drops::Unknown,
    }
}

/// The four per-step counts side by side. A side whose bad or total count
/// is unknown (NaN: its summed counter fell) in a step has both unknown
/// there, so the judge can say which side fell; such a step carries no
/// evidence and counts nowhere.
fn zip_steps(
    canary_bad: &[f64],
    canary_total: &[f64],
    baseline_bad: &[f64],
    baseline_total: &[f64],
) -> Vec<StepCounts> {
    let side = |bad: f64, total: f64| match bad.is_nan() || total.is_nan() {
        true => [f64::NAN; 2],
        false => [bad, total],
    };
    (0..canary_total.len())
        .map(|i| {
            let at = |counts: &[f64]| counts.get(i).copied().unwrap_or(0.0);
            let [canary_bad, canary_total] = side(at(canary_bad), at(canary_total));
            let [baseline_bad, baseline_total] = side(at(baseline_bad), at(baseline_total));
            StepCounts {
                canary_bad,
                canary_total,
                baseline_bad,
                baseline_total,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(value: f64) -> Vec<Series> {
        vec![Series {
            labels: Default::default(),
            points: vec![(0, value)],
        }]
    }

    #[test]
    fn a_shared_answer_is_kept_until_its_last_reader_is_measured() {
        // Metric 0 reads queries 0 and 1; metric 1 reads queries 1 and 2.
        let fetches = ["a", "b", "c"].map(|q| Fetch::Range(q.into())).to_vec();
        let needs = vec![vec![0, 1], vec![1, 2]];
        let mut answers = Answers::new(&fetches, &needs);

        assert_eq!(answers.arrived(1, Ok(series(1.0))).count(), 0);
        assert_eq!(answers.arrived(0, Ok(series(0.0))).collect::<Vec<_>>(), [0]);
        answers.measured(&needs[0]);
        assert!(answers.get(0).is_none(), "read by metric 0 alone: freed");
        assert!(answers.get(1).is_some(), "metric 1 still reads it");

        let deadline = Deadline {
            at: tokio::time::Instant::now(),
            budget: std::time::Duration::from_secs(1),
        };
        let late = Err(Unanswered::Deadline(deadline));
        assert_eq!(answers.arrived(2, late).collect::<Vec<_>>(), [1]);
        assert_eq!(answers.missed, 1);
        answers.measured(&needs[1]);
        assert!((0..3).all(|fetch| answers.get(fetch).is_none()));
    }
}
