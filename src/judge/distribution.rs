//! Judging a latency distribution (a latency metric without
//! `threshold_seconds`) with the anytime-valid distribution test.

use super::chart;
use super::finding::Finding;
use crate::request::Judgement;
use crate::rules::{CountsRule, RuleSet, TimeoutPolicy};
use crate::stats::counts::{Decision, StepCounts};
use crate::stats::distribution::{
    DistributionOutcome, DistributionTest, HistogramStep, distribution_test, interpolated_quantile,
    pooled,
};
use crate::text as words;
use crate::verdict::{Chart, MetricOutcome, Percentile, SideFigures, Window};

/// The percentiles every answer quotes for both sides.
const QUOTED_PERCENTILES: [f64; 3] = [0.5, 0.9, 0.99];

/// A latency in seconds in words: `52 ms` below a second, `1.5 s` above.
fn latency_words(seconds: f64) -> String {
    words::latency(seconds)
}

/// An e-value in words: in full up to a million, then as a power of ten
/// (`3.2e15`), since larger ones only say "overwhelming".
fn evidence_words(value: f64) -> String {
    if value.is_finite() && value > 1e6 {
        format!("{value:.1e}")
    } else {
        words::number(value)
    }
}

/// "p50 41 ms against 40 ms, ..." from both sides' pooled buckets, placed by
/// linear interpolation inside a bucket (point estimates, no interval).
fn percentile_words(edges: &[f64], steps: &[HistogramStep]) -> String {
    let (canary, baseline) = (pooled(steps, true), pooled(steps, false));
    let quoted: Vec<String> = QUOTED_PERCENTILES
        .iter()
        .map(|&q| {
            format!(
                "p{} {} against {}",
                words::number(q * 100.0),
                latency_words(interpolated_quantile(edges, &canary, q)),
                latency_words(interpolated_quantile(edges, &baseline, q)),
            )
        })
        .collect();
    format!(
        "canary against baseline, placed inside buckets by linear interpolation as histogram_quantile does (estimates without an interval): {}",
        quoted.join(", ")
    )
}

/// The comparison at the edge that carries the evidence, in words.
fn edge_words(outcome: &DistributionOutcome, tolerance: f64) -> Option<String> {
    let edge = &outcome.edges[outcome.moved_edge?];
    let baseline_point = if tolerance > 0.0 {
        format!(
            "{} ({} less {})",
            latency_words(edge.baseline_point_seconds),
            latency_words(edge.edge_seconds),
            words::percent(tolerance / (1.0 + tolerance))
        )
    } else {
        latency_words(edge.baseline_point_seconds)
    };
    Some(format!(
        "{} of the canary's requests took longer than {}, against {} of the baseline's longer than {baseline_point}",
        words::percent(edge.canary_share_above),
        latency_words(edge.edge_seconds),
        words::percent(edge.baseline_share_above),
    ))
}

/// Judges one latency distribution over the window's steps.
pub(crate) fn judge_distribution(
    rule: &CountsRule,
    edges: &[f64],
    steps: &[HistogramStep],
    alpha: f64,
    window: &Window,
    rules: &RuleSet,
    judgement: &Judgement,
) -> Finding {
    let (canary_pooled, baseline_pooled) = (pooled(steps, true), pooled(steps, false));
    let figures = |side: &crate::stats::distribution::SideBuckets| SideFigures {
        value: Some(interpolated_quantile(edges, side, 0.5)).filter(|v| v.is_finite()),
        bad: None,
        count: Some(side.total),
        percentiles: QUOTED_PERCENTILES
            .iter()
            .map(|&quantile| Percentile {
                quantile,
                seconds: interpolated_quantile(edges, side, quantile),
            })
            .filter(|p| p.seconds.is_finite())
            .collect(),
    };
    let (canary, baseline) = (figures(&canary_pooled), figures(&baseline_pooled));
    if edges.is_empty() {
        return Finding::bare(
            MetricOutcome::Error,
            "The histogram has only its +Inf bucket, so there is no distribution to compare; query a histogram with finite buckets, or use a ratio metric.".into(),
        );
    }
    if canary_pooled.total < rule.min_requests || baseline_pooled.total < rule.min_requests {
        return Finding {
            canary,
            baseline,
            ..Finding::bare(
                MetricOutcome::Nodata,
                format!(
                    "The canary has served {} requests and the baseline {}; each side needs {} before this metric is judged.",
                    words::count(canary_pooled.total),
                    words::count(baseline_pooled.total),
                    words::count(rule.min_requests)
                ),
            )
        };
    }
    let test = DistributionTest {
        tolerance: rule.tolerance,
        alpha,
    };
    let outcome = match distribution_test(edges, steps, &test) {
        Ok(outcome) => outcome,
        Err(error) => {
            return Finding::bare(
                MetricOutcome::Error,
                format!("The histogram's buckets cannot be compared: {error}."),
            );
        }
    };
    let evidence = super::counts::evidence_figure(
        [outcome.harm_evidence, outcome.safety_evidence],
        outcome.threshold,
        alpha,
        outcome.decided_at_step,
        window,
    );
    let band = if rule.tolerance > 0.0 {
        format!(
            "no percentile more than {} slower",
            words::percent(rule.tolerance)
        )
    } else {
        "no percentile slower".into()
    };
    let percentiles = percentile_words(edges, steps);
    let at_edge = edge_words(&outcome, rule.tolerance).unwrap_or_default();
    let (metric_outcome, reason) = match outcome.decision {
        Decision::Harm => {
            let edge = outcome.moved_edge.map_or(f64::NAN, |i| edges[i]);
            (
                MetricOutcome::Fail,
                format!(
                    "Slower than tolerated ({band}) above {}: {at_edge}; the evidence, averaged over the {} bucket edges, reached {}, past the {} needed. Percentiles: {percentiles}.",
                    latency_words(edge),
                    edges.len(),
                    evidence_words(outcome.harm_evidence),
                    words::number(outcome.threshold)
                ),
            )
        }
        Decision::WithinTolerance if rule.early_promotion || judgement.is_final => (
            MetricOutcome::Pass,
            format!(
                "Within tolerance ({band}) at every bucket edge: the evidence at each reached at least {}, past the {} needed. Percentiles: {percentiles}.",
                evidence_words(outcome.safety_evidence),
                words::number(outcome.threshold)
            ),
        ),
        Decision::WithinTolerance => (
            MetricOutcome::Inconclusive,
            format!(
                "Within tolerance ({band}) at every bucket edge so far; the rule waits for the final look before passing it. Percentiles: {percentiles}."
            ),
        ),
        Decision::Undecided if judgement.is_final => match rules.on_timeout {
            TimeoutPolicy::Promote => (
                MetricOutcome::Pass,
                format!(
                    "No evidence of a slower canary ({band}) by the final look: the evidence reached {} of the {} needed; the rule set's on_timeout is promote. Percentiles: {percentiles}.",
                    evidence_words(outcome.harm_evidence),
                    words::number(outcome.threshold)
                ),
            ),
            TimeoutPolicy::Rollback => (
                MetricOutcome::Fail,
                format!(
                    "Still undecided at the final look ({band}): the evidence reached {} of the {} needed; the rule set's on_timeout is rollback. Percentiles: {percentiles}.",
                    evidence_words(outcome.harm_evidence),
                    words::number(outcome.threshold)
                ),
            ),
        },
        Decision::Undecided => (
            MetricOutcome::Inconclusive,
            format!(
                "Not decided yet ({band}): the evidence of a slower canary reached {} of the {} needed, most of it where {at_edge}. Percentiles: {percentiles}.",
                evidence_words(outcome.harm_evidence),
                words::number(outcome.threshold)
            ),
        ),
    };
    // The charts show both pooled distributions, and the counts at the edge
    // that carries the evidence against the averaged evidence path.
    let edge_counts: Vec<StepCounts> = match outcome.moved_edge {
        Some(index) => steps
            .iter()
            .map(|step| {
                let above = |side: &crate::stats::distribution::SideBuckets| {
                    side.at_or_below
                        .get(index)
                        .map_or(f64::NAN, |below| (side.total - below).max(0.0))
                };
                StepCounts {
                    canary_bad: above(&step.canary),
                    canary_total: step.canary.total,
                    baseline_bad: above(&step.baseline),
                    baseline_total: step.baseline.total,
                }
            })
            .collect(),
        None => Vec::new(),
    };
    Finding {
        outcome: metric_outcome,
        reason,
        canary,
        baseline,
        estimate: None,
        evidence: Some(evidence),
        chart: Some(Chart {
            counts_edge_seconds: outcome.moved_edge.and_then(|i| edges.get(i).copied()),
            ..chart::with_buckets(
                chart::counts_chart(
                    &edge_counts,
                    window,
                    &outcome.path,
                    Some(outcome.threshold),
                    outcome.decided_at_step,
                ),
                edges,
                &canary_pooled,
                &baseline_pooled,
            )
        }),
    }
}
