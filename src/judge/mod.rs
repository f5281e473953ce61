//! The judge: each metric's outcome from its measurements and the statistics,
//! then the verdict of the whole rule set. Pure: no I/O, no PromQL.
//!
//! The seventh stage of the pipe: it uses the judgement, the rules, the
//! statistics and the verdict types it fills in, never the plan or a source.

mod chart;
mod counts;
mod distribution;
mod finding;
mod percentiles;
mod series;
/// The number words, at their old path for one release (they live in [`crate::text`]).
pub use crate::text as words;
pub use counts::{CountsTests, FinalLook, counts_tests};

use finding::Finding;

use crate::request::Judgement;
use crate::rules::{Metric, MetricKind, NodataPolicy, RuleSet};
use crate::stats::counts::{RatioCheckpoint, StepCounts};
use crate::stats::distribution::{DistributionCheckpoint, HistogramStep, SideBuckets};
use crate::stats::family::per_metric_alpha;
use crate::verdict::{
    MetricOutcome, MetricReport, Outcome, SentQuery, SideFigures, Verdict, Window,
};

/// What was measured for one metric, ready for the statistics.
#[derive(Clone, Debug, PartialEq)]
pub enum Measured {
    /// Per-step bad and total events of both sides (ratio metrics).
    Counts(Vec<StepCounts>),
    /// A latency metric's threshold form: per-step slow and total requests
    /// of both sides, and both sides' buckets pooled over the window for
    /// their percentiles (`None` when the histogram's series do not share one
    /// bucket layout).
    Latency {
        steps: Vec<StepCounts>,
        buckets: Option<PooledBuckets>,
    },
    /// Per-step bucket counts of both sides at the histogram's finite bucket
    /// edges (seconds, increasing), for a latency distribution.
    Histogram {
        edges: Vec<f64>,
        steps: Vec<HistogramStep>,
    },
    /// Pooled samples of both sides with their times in unix seconds (series metrics).
    Samples {
        canary: Vec<(i64, f64)>,
        baseline: Vec<(i64, f64)>,
    },
    /// The canary's value of a threshold metric; `None` when there was none.
    Value(Option<f64>),
    /// The data could not be fetched or read; says why.
    Failed(String),
    /// A side had no series at all; says which.
    Missing(String),
}

/// Both sides' bucket counts at a histogram's finite edges, each pooled over
/// the window's steps whose counts are known.
#[derive(Clone, Debug, PartialEq)]
pub struct PooledBuckets {
    /// The finite bucket edges in seconds, increasing.
    pub edges: Vec<f64>,
    /// The canary's requests at or below each edge, and all of them.
    pub canary: SideBuckets,
    /// The baseline's, the same way.
    pub baseline: SideBuckets,
}

/// One metric's measurement and the queries that produced it.
#[derive(Clone, Debug, PartialEq)]
pub struct MetricInput {
    pub measured: Measured,
    pub queries: Vec<SentQuery>,
}

/// Facts about the verdict that the judge does not compute.
#[derive(Clone, Debug, PartialEq)]
pub struct VerdictFrame {
    pub id: String,
    pub judged_at: String,
    pub canary: String,
    pub baseline: String,
    pub window: Window,
}

/// How many metrics share the rule set's alpha: the live (not shadow) ones
/// judged by a statistical test.
pub fn tested_metrics(rules: &RuleSet) -> usize {
    rules
        .metrics
        .iter()
        .filter(|m| !m.shadow && is_tested(m))
        .count()
}

/// Whether a metric is judged by a statistical test, and so takes alpha.
fn is_tested(metric: &Metric) -> bool {
    !matches!(metric.kind, MetricKind::Threshold { .. })
}

/// The alpha `metric` is judged at. Live metrics split the rule set's alpha
/// among themselves, as if the shadow ones were absent. A shadow metric is
/// judged at the level it would get once its `shadow: true` is removed: a
/// metric marked shadow on its own then joins the live ones (the rule set's
/// alpha over the live tested metrics plus one); every metric of a shadow rule
/// set becomes live together (the alpha over all its tested metrics).
pub fn metric_alpha(rules: &RuleSet, metric: &Metric) -> f64 {
    let sharing = match (metric.shadow, rules.shadow) {
        (false, _) => tested_metrics(rules),
        (true, true) => rules.metrics.iter().filter(|m| is_tested(m)).count(),
        (true, false) => tested_metrics(rules) + usize::from(is_tested(metric)),
    };
    per_metric_alpha(rules.alpha, sharing)
}

/// The words that open the reason of a failing shadow metric, and name it in the verdict's.
pub const SHADOW_FAILED: &str = "shadow: would have failed";

/// Judges every metric of `rules` from `inputs` (one per metric, in order)
/// and returns the verdict.
pub fn judge(
    rules: &RuleSet,
    judgement: &Judgement,
    inputs: Vec<MetricInput>,
    frame: VerdictFrame,
) -> Verdict {
    let reports = rules
        .metrics
        .iter()
        .zip(inputs)
        .map(|(metric, input)| judge_metric(rules, judgement, metric, input, &frame.window))
        .collect();
    verdict_of(rules, judgement, reports, frame)
}

/// What the judge keeps of one metric's look for the next look at the same
/// metric of the same canary (see [`judge_metric_from`]): the statistics'
/// checkpoint. It is plain data; whoever keeps it between looks (the
/// server's store in the pipe) keys it by what makes two looks the same
/// canary's same metric, and the checkpoint itself checks that it applies.
#[derive(Clone, Debug)]
pub enum LookMemory {
    /// A counts metric's sequential test (ratio metrics, and latency metrics
    /// with `threshold_seconds`).
    Counts(RatioCheckpoint),
    /// A latency distribution's test.
    Distribution(DistributionCheckpoint),
}

impl LookMemory {
    /// About how many bytes it holds.
    pub fn size_bytes(&self) -> usize {
        match self {
            LookMemory::Counts(checkpoint) => checkpoint.size_bytes(),
            LookMemory::Distribution(checkpoint) => checkpoint.size_bytes(),
        }
    }
}

/// Judges one metric of `rules` from its input. Metrics are judged apart from
/// each other, so a caller may judge them in any order, or at the same time,
/// and then make the verdict of them with [`verdict_of`].
pub fn judge_metric(
    rules: &RuleSet,
    judgement: &Judgement,
    metric: &Metric,
    input: MetricInput,
    window: &Window,
) -> MetricReport {
    judge_metric_from(rules, judgement, metric, input, window, None).0
}

/// [`judge_metric`], resuming its statistics from `memory` (what the last
/// look at the same metric of the same canary kept) where it applies, with
/// what this look keeps for the next. The report is [`judge_metric`]'s, bit
/// for bit; only the cost differs.
pub fn judge_metric_from(
    rules: &RuleSet,
    judgement: &Judgement,
    metric: &Metric,
    input: MetricInput,
    window: &Window,
    memory: Option<LookMemory>,
) -> (MetricReport, Option<LookMemory>) {
    let alpha = metric_alpha(rules, metric);
    let mut forces_rollback = false;
    let mut kept = None;
    let mut memory = memory;
    let mut judge_counts = |rule, steps: &[StepCounts], words: &counts::CountsWords| {
        let mut checkpoint = match memory.take() {
            Some(LookMemory::Counts(checkpoint)) => Some(checkpoint),
            _ => None,
        };
        let finding = counts::judge_counts(
            rule,
            steps,
            alpha,
            window,
            rules,
            judgement,
            words,
            &mut checkpoint,
        );
        kept = checkpoint.map(LookMemory::Counts);
        finding
    };
    let finding = match (&metric.kind, input.measured) {
        (_, Measured::Failed(why)) => Finding::bare(MetricOutcome::Error, why),
        (_, Measured::Missing(why)) => Finding::bare(MetricOutcome::Nodata, why),
        (MetricKind::Ratio { rule, .. }, Measured::Counts(steps)) => judge_counts(
            rule,
            &steps,
            &counts::CountsWords {
                rate: "rate of bad events",
                none_on_either_side: "no bad event on either side",
            },
        ),
        (
            MetricKind::Latency {
                rule,
                threshold_seconds,
                ..
            },
            Measured::Latency { steps, buckets },
        ) => {
            let rate = format!(
                "share of requests slower than {} s",
                words::number(*threshold_seconds)
            );
            let none_on_either_side = format!(
                "no request slower than {} on either side",
                words::latency(*threshold_seconds)
            );
            let what = counts::CountsWords {
                rate: &rate,
                none_on_either_side: &none_on_either_side,
            };
            let finding = judge_counts(rule, &steps, &what);
            match buckets {
                Some(PooledBuckets {
                    edges,
                    canary,
                    baseline,
                }) => percentiles::quote(finding, &edges, &canary, &baseline),
                None => finding,
            }
        }
        (MetricKind::Distribution { rule, .. }, Measured::Histogram { edges, steps }) => {
            let mut checkpoint = match memory.take() {
                Some(LookMemory::Distribution(checkpoint)) => Some(checkpoint),
                _ => None,
            };
            let finding = distribution::judge_distribution(
                rule,
                &edges,
                &steps,
                alpha,
                window,
                rules,
                judgement,
                &mut checkpoint,
            );
            kept = checkpoint.map(LookMemory::Distribution);
            finding
        }
        (kind @ MetricKind::Series { .. }, Measured::Samples { canary, baseline }) => {
            let (finding, critical_failure) = series::judge_series(
                kind,
                [&canary, &baseline],
                alpha,
                rules.window_secs,
                judgement,
                metric.critical,
                window,
            );
            forces_rollback = critical_failure;
            finding
        }
        (MetricKind::Threshold { min, max, .. }, Measured::Value(value)) => {
            judge_threshold(*min, *max, value)
        }
        (_, other) => Finding::bare(
            MetricOutcome::Error,
            format!(
                "internal mismatch: measured {other:?} for a {} metric",
                kind_name(&metric.kind)
            ),
        ),
    };
    let reason = if metric.shadow && finding.outcome == MetricOutcome::Fail {
        format!("{SHADOW_FAILED}. {}", finding.reason)
    } else {
        finding.reason
    };
    let report = MetricReport {
        name: metric.name.clone(),
        kind: kind_name(&metric.kind).to_string(),
        group: rules
            .groups
            .get(metric.group)
            .map(|g| g.name.clone())
            .unwrap_or_default(),
        critical: metric.critical || forces_rollback,
        shadow: metric.shadow,
        outcome: finding.outcome,
        reason,
        canary: finding.canary,
        baseline: finding.baseline,
        estimate: finding.estimate,
        evidence: finding.evidence,
        queries: input.queries,
        chart: finding.chart,
    };
    (report, kept)
}

/// The verdict of `rules` from its metrics' reports (one per metric, in order).
pub fn verdict_of(
    rules: &RuleSet,
    judgement: &Judgement,
    reports: Vec<MetricReport>,
    frame: VerdictFrame,
) -> Verdict {
    let (verdict, reason, score) = decide(rules, judgement.is_final, &reports);
    Verdict {
        id: frame.id,
        verdict,
        reason,
        deployment: judgement.deployment.clone(),
        rules: rules.name.clone(),
        rules_hash: rules.content_hash.clone(),
        canary: frame.canary,
        baseline: frame.baseline,
        window: frame.window,
        is_final: judgement.is_final,
        score,
        judged_at: frame.judged_at,
        metrics: reports,
        report_url: None,
    }
}

/// The kind of a metric as rule files spell it.
pub fn kind_name(kind: &MetricKind) -> &'static str {
    match kind {
        MetricKind::Ratio { .. } => "ratio",
        MetricKind::Latency { .. } | MetricKind::Distribution { .. } => "latency",
        MetricKind::Series { .. } => "series",
        MetricKind::Threshold { .. } => "threshold",
    }
}

fn judge_threshold(min: Option<f64>, max: Option<f64>, value: Option<f64>) -> Finding {
    let Some(value) = value else {
        return Finding::bare(
            MetricOutcome::Nodata,
            "The query returned no value (no series, or NaN) for the canary, so the bound cannot be checked.".into(),
        );
    };
    let figures = SideFigures {
        value: Some(value),
        ..SideFigures::default()
    };
    let bounds = match (min, max) {
        (Some(lo), Some(hi)) => format!("between {} and {}", words::number(lo), words::number(hi)),
        (Some(lo), None) => format!("at least {}", words::number(lo)),
        (None, Some(hi)) => format!("at most {}", words::number(hi)),
        (None, None) => "unbounded".into(),
    };
    let inside = min.is_none_or(|lo| value >= lo) && max.is_none_or(|hi| value <= hi);
    let (outcome, reason) = if inside {
        (
            MetricOutcome::Pass,
            format!(
                "The canary's value {} is {bounds}, as required.",
                words::number(value)
            ),
        )
    } else {
        (
            MetricOutcome::Fail,
            format!(
                "The canary's value {} is outside the bound: it must be {bounds}.",
                words::number(value)
            ),
        )
    };
    Finding {
        outcome,
        reason,
        canary: figures,
        ..Finding::bare(outcome, String::new())
    }
}

/// Kayenta-style score: the weighted share of counted metrics that did not fail.
fn score(
    rules: &RuleSet,
    reports: &[MetricReport],
    counted: impl Fn(&MetricReport) -> bool,
) -> f64 {
    let mut weighted = 0.0;
    let mut weights = 0.0;
    for (index, group) in rules.groups.iter().enumerate() {
        let members: Vec<&MetricReport> = rules
            .metrics
            .iter()
            .zip(reports)
            .filter(|(m, r)| m.group == index && counted(r))
            .map(|(_, r)| r)
            .collect();
        if members.is_empty() {
            continue;
        }
        let failed = members
            .iter()
            .filter(|r| r.outcome == MetricOutcome::Fail)
            .count();
        weighted += group.weight * (1.0 - failed as f64 / members.len() as f64);
        weights += group.weight;
    }
    if weights > 0.0 {
        100.0 * weighted / weights
    } else {
        100.0
    }
}

/// The verdict of the whole rule set, its reason and its score: the live
/// metrics decide, and the reason ends by naming each failing shadow metric.
fn decide(rules: &RuleSet, is_final: bool, reports: &[MetricReport]) -> (Outcome, String, f64) {
    let (verdict, mut reason, score) = if reports.iter().all(|r| r.shadow) {
        // Promoting on no live evidence would pass any canary; fail safe.
        (
            Outcome::Inconclusive,
            format!(
                "Inconclusive: every metric of rule set `{}` is shadow, so no live metric judged the canary and it is not promoted; remove `shadow: true` for the rules to gate deploys.",
                rules.name
            ),
            100.0,
        )
    } else {
        decide_live(rules, is_final, reports)
    };
    let shadow_failures: Vec<&str> = reports
        .iter()
        .filter(|r| r.shadow && r.outcome == MetricOutcome::Fail)
        .map(|r| r.name.as_str())
        .collect();
    if !shadow_failures.is_empty() {
        reason.push_str(&format!(
            " Not counted: {}, {SHADOW_FAILED}.",
            shadow_failures.join(", ")
        ));
    }
    (verdict, reason, score)
}

/// The verdict of the live metrics, as if the shadow ones were absent.
fn decide_live(
    rules: &RuleSet,
    is_final: bool,
    reports: &[MetricReport],
) -> (Outcome, String, f64) {
    let ignored = |r: &MetricReport| {
        r.shadow
            || (is_final
                && r.outcome == MetricOutcome::Nodata
                && rules.on_nodata == NodataPolicy::Ignore)
    };
    let failed_for_nodata = |r: &MetricReport| {
        is_final && r.outcome == MetricOutcome::Nodata && rules.on_nodata == NodataPolicy::Rollback
    };
    let failing =
        |r: &MetricReport| !r.shadow && (r.outcome == MetricOutcome::Fail || failed_for_nodata(r));
    let score_value = {
        let adjusted: Vec<MetricReport> = reports
            .iter()
            .map(|r| {
                let mut r = r.clone();
                if failing(&r) {
                    r.outcome = MetricOutcome::Fail;
                }
                r
            })
            .collect();
        score(rules, &adjusted, |r| !ignored(r))
    };
    let describe = |r: &MetricReport| {
        let critical = if r.critical { " (critical)" } else { "" };
        format!("{}{critical}: {}", r.name, lower_first(&r.reason))
    };

    if let Some(critical) = reports.iter().find(|r| r.critical && failing(r)) {
        return (
            Outcome::Rollback,
            format!("Rollback: {}", describe(critical)),
            score_value,
        );
    }
    let failures: Vec<&MetricReport> = reports.iter().filter(|r| failing(r)).collect();
    if score_value < rules.scoring.marginal {
        let names = failures
            .iter()
            .map(|r| r.name.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        let first = failures
            .first()
            .map(|r| format!(" {}", describe(r)))
            .unwrap_or_default();
        return (
            Outcome::Rollback,
            format!(
                "Rollback: the score is {:.0}, below the marginal {:.0}, because {names} failed.{first}",
                score_value, rules.scoring.marginal
            ),
            score_value,
        );
    }
    let pending: Vec<&MetricReport> = reports
        .iter()
        .filter(|r| !ignored(r) && !failing(r) && r.outcome != MetricOutcome::Pass)
        .collect();
    if let Some(first) = pending.first() {
        let blocking = pending
            .iter()
            .map(|r| format!("{} is {}", r.name, MetricOutcome::state(r.outcome)))
            .collect::<Vec<_>>();
        let advice = if is_final {
            "this was the final look, so canary-gate will not promote what it could not judge"
        } else {
            "ask again later"
        };
        return (
            Outcome::Inconclusive,
            format!(
                "Inconclusive: {}; {advice}. {}",
                blocking.join(", "),
                describe(first)
            ),
            score_value,
        );
    }
    if score_value >= rules.scoring.pass {
        let passed: Vec<&MetricReport> = reports
            .iter()
            .filter(|r| !r.shadow && r.outcome == MetricOutcome::Pass)
            .collect();
        let reason = if failures.is_empty() {
            let summary = passed
                .iter()
                .map(|r| summary(r))
                .collect::<Vec<_>>()
                .join("; ");
            format!(
                "Promote: all {} metrics are within tolerance ({summary}).",
                passed.len()
            )
        } else {
            let names = failures
                .iter()
                .map(|r| r.name.as_str())
                .collect::<Vec<_>>()
                .join(", ");
            format!(
                "Promote: the score is {:.0}, at least the {:.0} needed to pass, although {names} failed.",
                score_value, rules.scoring.pass
            )
        };
        return (Outcome::Promote, reason, score_value);
    }
    let names = failures
        .iter()
        .map(|r| r.name.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    if is_final {
        (
            Outcome::Rollback,
            format!(
                "Rollback: at the final look the score is {:.0}, short of the {:.0} needed to pass, because {names} failed.",
                score_value, rules.scoring.pass
            ),
            score_value,
        )
    } else {
        (
            Outcome::Inconclusive,
            format!(
                "Inconclusive: the score is {:.0}, between the marginal {:.0} and the {:.0} needed to pass, because {names} failed; the final look will roll back unless the score recovers.",
                score_value, rules.scoring.marginal, rules.scoring.pass
            ),
            score_value,
        )
    }
}

fn summary(report: &MetricReport) -> String {
    match &report.estimate {
        Some(e) if e.unit == "ratio" => {
            format!("{} {} the baseline", report.name, words::times(e.value))
        }
        Some(e) => format!("{} shift {}", report.name, words::number(e.value)),
        // A latency distribution: its medians, as durations.
        None if !report.canary.percentiles.is_empty() => {
            let median = |side: &crate::verdict::SideFigures| {
                side.percentiles
                    .iter()
                    .find(|p| p.quantile == 0.5)
                    .map(|p| words::latency(p.seconds))
            };
            match (median(&report.canary), median(&report.baseline)) {
                (Some(canary), Some(baseline)) => {
                    format!("{} p50 {canary} against {baseline}", report.name)
                }
                (Some(canary), None) => format!("{} p50 {canary}", report.name),
                _ => report.name.clone(),
            }
        }
        None => match report.canary.value {
            Some(v) => format!("{} {}", report.name, words::number(v)),
            None => report.name.clone(),
        },
    }
}

fn lower_first(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) if !text.starts_with("PromQL") => first.to_lowercase().chain(chars).collect(),
        _ => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::SideSelector;
    use std::collections::BTreeMap;
    use std::path::Path;

    /// Two threshold metrics (one critical) and one ratio metric, with `on_nodata` as given.
    fn rules(on_nodata: &str) -> RuleSet {
        let text = format!(
            "on_nodata: {on_nodata}\n\
             metrics:\n\
             \x20 - name: up\n\
             \x20   kind: threshold\n\
             \x20   critical: true\n\
             \x20   query: up\n\
             \x20   min: 1\n\
             \x20 - name: queue\n\
             \x20   kind: threshold\n\
             \x20   query: queue_depth\n\
             \x20   max: 100\n\
             \x20 - name: errors\n\
             \x20   kind: ratio\n\
             \x20   bad: errors_total\n\
             \x20   total: requests_total\n\
             \x20   direction: increase\n\
             \x20   tolerance: 0%\n\
             \x20   min_requests: 100\n"
        );
        crate::rules::load_str(Path::new("test.yaml"), &text).expect("valid rules")
    }

    fn judgement(is_final: bool) -> Judgement {
        let side = |track: &str| {
            SideSelector::from_map(&BTreeMap::from([("track".to_string(), track.to_string())]))
                .expect("valid side")
        };
        Judgement {
            rules: "test".into(),
            deployment: "d-1".into(),
            canary: side("canary"),
            baseline: side("baseline"),
            start_secs: 0,
            end_secs: 600,
            vars: BTreeMap::new(),
            is_final,
        }
    }

    fn frame() -> VerdictFrame {
        VerdictFrame {
            id: "id".into(),
            judged_at: "2026-11-26T00:00:00Z".into(),
            canary: String::new(),
            baseline: String::new(),
            window: Window {
                start: String::new(),
                end: String::new(),
                start_secs: 0,
                end_secs: 600,
                step_secs: 15,
            },
        }
    }

    fn input(measured: Measured) -> MetricInput {
        MetricInput {
            measured,
            queries: Vec::new(),
        }
    }

    /// Forty steps of equal traffic: 100 requests a side, `canary_bad` and 1 bad events.
    fn counts(canary_bad: f64) -> Measured {
        Measured::Counts(
            (0..40)
                .map(|_| StepCounts {
                    canary_bad,
                    canary_total: 100.0,
                    baseline_bad: 1.0,
                    baseline_total: 100.0,
                })
                .collect(),
        )
    }

    fn verdict(on_nodata: &str, is_final: bool, inputs: Vec<Measured>) -> Verdict {
        let rules = rules(on_nodata);
        judge(
            &rules,
            &judgement(is_final),
            inputs.into_iter().map(input).collect(),
            frame(),
        )
    }

    // Pins that a ratio metric judged look after look from the last look's
    // memory reports, at every look, what it reports judged afresh, and that
    // each judged look leaves a memory for the next.
    #[test]
    fn a_metric_judged_from_its_last_look_reports_what_a_fresh_look_does() {
        let rules = rules("inconclusive");
        let metric = &rules.metrics[2];
        let steps: Vec<StepCounts> = (0..200)
            .map(|index| StepCounts {
                canary_bad: f64::from((index * 7 % 5) as u8) + if index > 120 { 2.0 } else { 0.0 },
                canary_total: 100.0 + f64::from((index % 3) as u8),
                baseline_bad: f64::from((index * 3 % 4) as u8),
                baseline_total: 100.0,
            })
            .collect();
        let mut memory = None;
        for end in (8..=steps.len()).step_by(4) {
            let window = Window {
                end_secs: end as i64 * 15,
                ..frame().window
            };
            let measured = || input(Measured::Counts(steps[..end].to_vec()));
            let fresh = judge_metric(&rules, &judgement(false), metric, measured(), &window);
            let (resumed, kept) = judge_metric_from(
                &rules,
                &judgement(false),
                metric,
                measured(),
                &window,
                memory.take(),
            );
            let json = |report: &MetricReport| serde_json::to_string(report).expect("JSON");
            assert_eq!(json(&resumed), json(&fresh), "look at {end} steps");
            assert!(kept.is_some(), "look at {end} steps keeps no memory");
            memory = kept;
        }
    }

    // A failing critical metric rolls back on its own, whatever else passes.
    #[test]
    fn critical_failure_rolls_back() {
        let v = verdict(
            "inconclusive",
            false,
            vec![
                Measured::Value(Some(0.0)),
                Measured::Value(Some(5.0)),
                counts(1.0),
            ],
        );
        assert_eq!(v.verdict, Outcome::Rollback);
        assert!(
            v.reason.starts_with("Rollback: up (critical)"),
            "{}",
            v.reason
        );
    }

    // Everything passing at the final look promotes.
    #[test]
    fn all_pass_at_the_final_look_promotes() {
        let v = verdict(
            "inconclusive",
            true,
            vec![
                Measured::Value(Some(1.0)),
                Measured::Value(Some(5.0)),
                counts(1.0),
            ],
        );
        assert_eq!(v.verdict, Outcome::Promote, "{}", v.reason);
    }

    // A metric that could not be read keeps the verdict inconclusive, even at the final look.
    #[test]
    fn an_unreadable_metric_never_promotes() {
        for is_final in [false, true] {
            let v = verdict(
                "ignore",
                is_final,
                vec![
                    Measured::Value(Some(1.0)),
                    Measured::Failed("Prometheus is down".into()),
                    counts(1.0),
                ],
            );
            assert_eq!(v.verdict, Outcome::Inconclusive, "{}", v.reason);
            assert!(v.reason.contains("queue is unreadable"), "{}", v.reason);
        }
    }

    // Too little traffic is never a healthy canary: inconclusive by default, a failure
    // with on_nodata: rollback, left out with on_nodata: ignore (final look only).
    #[test]
    fn too_little_traffic_follows_on_nodata() {
        let thin = || {
            Measured::Counts(vec![StepCounts {
                canary_bad: 0.0,
                canary_total: 5.0,
                baseline_bad: 0.0,
                baseline_total: 5.0,
            }])
        };
        let inputs = || {
            vec![
                Measured::Value(Some(1.0)),
                Measured::Value(Some(5.0)),
                thin(),
            ]
        };
        assert_eq!(
            verdict("inconclusive", true, inputs()).verdict,
            Outcome::Inconclusive
        );
        assert_eq!(
            verdict("ignore", false, inputs()).verdict,
            Outcome::Inconclusive
        );
        assert_eq!(verdict("ignore", true, inputs()).verdict, Outcome::Promote);
        let strict = verdict("rollback", true, inputs());
        assert_eq!(strict.verdict, Outcome::Rollback, "{}", strict.reason);
    }

    // A non-critical failure lowers the score: below marginal it rolls back; at the final
    // look a score short of `pass` rolls back too.
    #[test]
    fn score_decides_non_critical_failures() {
        // Each metric is its own group of weight 1: one failure of three scores 66.7.
        let v = verdict(
            "inconclusive",
            false,
            vec![
                Measured::Value(Some(1.0)),
                Measured::Value(Some(500.0)),
                counts(1.0),
            ],
        );
        assert!((v.score - 200.0 / 3.0).abs() < 1e-9, "{}", v.score);
        assert_eq!(v.verdict, Outcome::Rollback, "{}", v.reason);
        assert!(v.reason.contains("below the marginal 75"), "{}", v.reason);
    }

    // A clear regression of the counts metric fails it with a sentence that carries the numbers.
    #[test]
    fn counts_regression_fails_with_numbers() {
        let v = verdict(
            "inconclusive",
            false,
            vec![
                Measured::Value(Some(1.0)),
                Measured::Value(Some(5.0)),
                counts(3.0),
            ],
        );
        let errors = &v.metrics[2];
        assert_eq!(errors.outcome, MetricOutcome::Fail);
        assert!(
            errors
                .reason
                .contains("3.00x the baseline's (3.00% of 4,000 against 1.00% of 4,000)"),
            "{}",
            errors.reason
        );
    }

    /// A live ratio metric and two shadow ones (a ratio and a threshold), `top` above them.
    fn shadow_rules(top: &str, shadow_field: &str) -> RuleSet {
        let text = format!(
            "{top}alpha: 0.06\n\
             metrics:\n\
             \x20 - {{name: errors, kind: ratio, bad: e, total: t, direction: increase, tolerance: 0%}}\n\
             \x20 - {{name: errors-v2, kind: ratio, bad: e, total: t, direction: increase, tolerance: 0%{shadow_field}}}\n\
             \x20 - {{name: queue, kind: threshold, query: q, max: 100{shadow_field}}}\n"
        );
        crate::rules::load_str(Path::new("shadow.yaml"), &text).expect("valid rules")
    }

    // Live metrics split alpha as if the shadow ones were absent; a shadow metric is
    // judged at the level it would get once made live, alone or with its whole set.
    #[test]
    fn shadow_metrics_take_no_share_of_alpha() {
        let rules = shadow_rules("", ", shadow: true");
        assert_eq!(tested_metrics(&rules), 1);
        let live = metric_alpha(&rules, &rules.metrics[0]);
        let shadow = metric_alpha(&rules, &rules.metrics[1]);
        assert_eq!(live, per_metric_alpha(0.06, 1));
        assert_eq!(shadow, per_metric_alpha(0.06, 2));
        let all_live = shadow_rules("", "");
        assert_eq!(metric_alpha(&all_live, &all_live.metrics[1]), shadow);
        let whole_set = shadow_rules("shadow: true\n", "");
        assert!(whole_set.metrics.iter().all(|m| m.shadow));
        assert_eq!(tested_metrics(&whole_set), 0);
        assert_eq!(metric_alpha(&whole_set, &whole_set.metrics[0]), shadow);
    }

    // A failing shadow metric leaves the verdict and the score as the live metrics make
    // them, and both its reason and the verdict's say that it would have failed.
    #[test]
    fn failing_shadow_metrics_change_nothing_but_say_so() {
        let rules = shadow_rules("", ", shadow: true");
        let inputs = |shadow_bad: f64, queue: f64| {
            vec![
                counts(1.0),
                counts(shadow_bad),
                Measured::Value(Some(queue)),
            ]
            .into_iter()
            .map(input)
            .collect::<Vec<_>>()
        };
        let healthy = judge(&rules, &judgement(true), inputs(1.0, 5.0), frame());
        let failing = judge(&rules, &judgement(true), inputs(3.0, 500.0), frame());
        assert_eq!(healthy.verdict, Outcome::Promote, "{}", healthy.reason);
        assert_eq!(failing.verdict, Outcome::Promote, "{}", failing.reason);
        assert_eq!(failing.score, healthy.score);
        for shadow in &failing.metrics[1..] {
            assert!(shadow.shadow);
            assert_eq!(shadow.outcome, MetricOutcome::Fail, "{}", shadow.reason);
            assert!(
                shadow.reason.starts_with(SHADOW_FAILED),
                "{}",
                shadow.reason
            );
        }
        assert!(
            failing
                .reason
                .ends_with("Not counted: errors-v2, queue, shadow: would have failed."),
            "{}",
            failing.reason
        );
        assert!(!healthy.reason.contains("shadow"), "{}", healthy.reason);
    }

    // A rule set with no live metric never promotes: it has judged nothing.
    #[test]
    fn an_all_shadow_rule_set_is_inconclusive() {
        let rules = shadow_rules("shadow: true\n", "");
        let inputs = vec![counts(1.0), counts(1.0), Measured::Value(Some(5.0))];
        let v = judge(
            &rules,
            &judgement(true),
            inputs.into_iter().map(input).collect(),
            frame(),
        );
        assert_eq!(v.verdict, Outcome::Inconclusive, "{}", v.reason);
        assert!(
            v.reason
                .contains("every metric of rule set `shadow` is shadow"),
            "{}",
            v.reason
        );
        assert!(v.metrics.iter().all(|m| m.outcome == MetricOutcome::Pass));
    }
}
