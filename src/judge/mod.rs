//! The judge: each metric's outcome from its measurements and the statistics,
//! then the verdict of the whole rule set. Pure: no I/O, no PromQL.

mod counts;
mod series;
pub mod words;

use crate::request::Judgement;
use crate::rules::{MetricKind, NodataPolicy, RuleSet};
use crate::stats::counts::StepCounts;
use crate::stats::family::per_metric_alpha;
use crate::verdict::{
    MetricOutcome, MetricReport, Outcome, SentQuery, SideFigures, Verdict, Window,
};

/// What was measured for one metric, ready for the statistics.
#[derive(Clone, Debug, PartialEq)]
pub enum Measured {
    /// Per-step bad and total events of both sides (ratio and latency metrics).
    Counts(Vec<StepCounts>),
    /// Pooled samples of both sides (series metrics).
    Samples {
        canary: Vec<f64>,
        baseline: Vec<f64>,
    },
    /// The canary's value of a threshold metric; `None` when there was none.
    Value(Option<f64>),
    /// The data could not be fetched or read; says why.
    Failed(String),
    /// A side had no series at all; says which.
    Missing(String),
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

/// A metric's conclusion before it is dressed as a [`MetricReport`].
pub(crate) struct Finding {
    pub outcome: MetricOutcome,
    pub reason: String,
    pub canary: SideFigures,
    pub baseline: SideFigures,
    pub estimate: Option<crate::verdict::Estimate>,
    pub evidence: Option<crate::verdict::Evidence>,
}

impl Finding {
    fn bare(outcome: MetricOutcome, reason: String) -> Finding {
        Finding {
            outcome,
            reason,
            canary: SideFigures::default(),
            baseline: SideFigures::default(),
            estimate: None,
            evidence: None,
        }
    }
}

/// How many metrics share the rule set's alpha: those judged by a statistical test.
pub fn tested_metrics(rules: &RuleSet) -> usize {
    rules
        .metrics
        .iter()
        .filter(|m| !matches!(m.kind, MetricKind::Threshold { .. }))
        .count()
}

/// Judges every metric of `rules` from `inputs` (one per metric, in order)
/// and returns the verdict.
pub fn judge(
    rules: &RuleSet,
    judgement: &Judgement,
    inputs: Vec<MetricInput>,
    frame: VerdictFrame,
) -> Verdict {
    let alpha = per_metric_alpha(rules.alpha, tested_metrics(rules));
    let step_secs = frame.window.step_secs;
    let mut reports = Vec::with_capacity(rules.metrics.len());
    for (metric, input) in rules.metrics.iter().zip(inputs) {
        let mut forces_rollback = false;
        let finding = match (&metric.kind, input.measured) {
            (_, Measured::Failed(why)) => Finding::bare(MetricOutcome::Error, why),
            (_, Measured::Missing(why)) => Finding::bare(MetricOutcome::Nodata, why),
            (MetricKind::Ratio { rule, .. }, Measured::Counts(steps)) => counts::judge_counts(
                rule,
                &steps,
                alpha,
                step_secs,
                rules,
                judgement,
                "rate of bad events",
            ),
            (
                MetricKind::Latency {
                    rule,
                    threshold_seconds,
                    ..
                },
                Measured::Counts(steps),
            ) => {
                let what = format!(
                    "share of requests slower than {} s",
                    words::number(*threshold_seconds)
                );
                counts::judge_counts(rule, &steps, alpha, step_secs, rules, judgement, &what)
            }
            (kind @ MetricKind::Series { .. }, Measured::Samples { canary, baseline }) => {
                let (finding, critical_failure) = series::judge_series(
                    kind,
                    &canary,
                    &baseline,
                    alpha,
                    judgement.is_final,
                    metric.critical,
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
        reports.push(MetricReport {
            name: metric.name.clone(),
            kind: kind_name(&metric.kind).to_string(),
            group: rules
                .groups
                .get(metric.group)
                .map(|g| g.name.clone())
                .unwrap_or_default(),
            critical: metric.critical || forces_rollback,
            outcome: finding.outcome,
            reason: finding.reason,
            canary: finding.canary,
            baseline: finding.baseline,
            estimate: finding.estimate,
            evidence: finding.evidence,
            queries: input.queries,
        });
    }
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
    }
}

/// The kind of a metric as rule files spell it.
pub fn kind_name(kind: &MetricKind) -> &'static str {
    match kind {
        MetricKind::Ratio { .. } => "ratio",
        MetricKind::Latency { .. } => "latency",
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

/// The verdict of the whole rule set, its reason and its score.
fn decide(rules: &RuleSet, is_final: bool, reports: &[MetricReport]) -> (Outcome, String, f64) {
    let ignored = |r: &MetricReport| {
        is_final && r.outcome == MetricOutcome::Nodata && rules.on_nodata == NodataPolicy::Ignore
    };
    let failed_for_nodata = |r: &MetricReport| {
        is_final && r.outcome == MetricOutcome::Nodata && rules.on_nodata == NodataPolicy::Rollback
    };
    let failing = |r: &MetricReport| r.outcome == MetricOutcome::Fail || failed_for_nodata(r);
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
            .map(|r| format!("{} is {}", r.name, outcome_word(r.outcome)))
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
            .filter(|r| r.outcome == MetricOutcome::Pass)
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
        None => match report.canary.value {
            Some(v) => format!("{} {}", report.name, words::number(v)),
            None => report.name.clone(),
        },
    }
}

fn outcome_word(outcome: MetricOutcome) -> &'static str {
    match outcome {
        MetricOutcome::Pass => "passing",
        MetricOutcome::Fail => "failing",
        MetricOutcome::Inconclusive => "still undecided",
        MetricOutcome::Nodata => "short of data",
        MetricOutcome::Error => "unreadable",
    }
}

fn lower_first(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) if !text.starts_with("PromQL") => first.to_lowercase().chain(chars).collect(),
        _ => text.to_string(),
    }
}
