//! Judging a latency distribution (a latency metric without
//! `threshold_seconds`) with the anytime-valid distribution test.

use super::chart;
use super::finding::Finding;
use super::percentiles::{PERCENTILE_ALPHA_PER_SIDE, side_percentiles};
use crate::request::Judgement;
use crate::rules::{CountsRule, RuleSet, TimeoutPolicy};
use crate::stats::counts::{Decision, StepCounts};
use crate::stats::distribution::{
    DistributionCheckpoint, DistributionOutcome, DistributionTest, HistogramStep, SideBuckets,
    distribution_test_from, interpolated_quantile, pooled,
};
use crate::text as words;
use crate::verdict::{Chart, MetricOutcome, Percentile, SideFigures, Window};

/// The confidence of a comparison of both sides' percentile bounds.
const COMPARISON_CONFIDENCE: f64 = 1.0 - 2.0 * PERCENTILE_ALPHA_PER_SIDE;

/// "40 ms (25 ms to 50 ms)": an estimate and its interval in words.
fn interval_words(percentile: &Percentile) -> String {
    let upper = percentile
        .upper
        .map_or("beyond the largest bucket edge".into(), latency_words);
    format!(
        "{} ({} to {upper})",
        latency_words(percentile.seconds),
        latency_words(percentile.lower)
    )
}

/// The quoted percentile that rose most (canary over baseline, estimates),
/// in words, with the rise the intervals guarantee: "slower at p90 and p99:
/// p99 rose from 180 ms to 240 ms (+33%, at least +18% with 99% confidence)".
/// `None` when no quoted percentile rose.
fn moved_percentile_words(canary: &[Percentile], baseline: &[Percentile]) -> Option<String> {
    let pairs: Vec<(&Percentile, &Percentile)> = canary
        .iter()
        .filter_map(|c| {
            let b = baseline.iter().find(|b| b.quantile == c.quantile)?;
            (b.seconds > 0.0 && c.seconds > b.seconds).then_some((c, b))
        })
        .collect();
    let rise = |(c, b): &(&Percentile, &Percentile)| c.seconds / b.seconds - 1.0;
    let (canary_at, baseline_at) = *pairs.iter().max_by(|x, y| rise(x).total_cmp(&rise(y)))?;
    let name = |q: f64| format!("p{}", words::number(q * 100.0));
    let rose: Vec<String> = pairs.iter().map(|(c, _)| name(c.quantile)).collect();
    // The canary's lower bound over the baseline's upper bound: both hold
    // together at COMPARISON_CONFIDENCE, so the true rise is at least this.
    // The canary's percentile lies strictly above its lower bound (the CDF
    // there is below the quantile), the baseline's at or below its upper one.
    let confidence = words::round_percent(COMPARISON_CONFIDENCE);
    let sure = match baseline_at.upper {
        Some(upper) if upper > 0.0 && canary_at.lower > upper => format!(
            "at least +{} with {confidence} confidence, from the two sides' bucket-edge bounds",
            words::percent(canary_at.lower / upper - 1.0)
        ),
        Some(upper) if upper > 0.0 && canary_at.lower == upper => format!(
            "a rise with {confidence} confidence, of a size the buckets cannot bound: the canary's is above {}, the baseline's at most that",
            latency_words(upper)
        ),
        _ => format!(
            "not a rise the bucket-edge bounds alone guarantee with {confidence} confidence"
        ),
    };
    Some(format!(
        "slower at {}: {} rose from {} to {} (+{}, {sure})",
        match rose.split_last() {
            Some((last, [])) => last.clone(),
            Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
            None => String::new(),
        },
        name(canary_at.quantile),
        latency_words(baseline_at.seconds),
        latency_words(canary_at.seconds),
        words::percent(rise(&(canary_at, baseline_at))),
    ))
}

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

/// "p50 41 ms (25 ms to 50 ms) against 40 ms (25 ms to 50 ms), ..." from both
/// sides' quoted percentiles.
fn percentile_words(canary: &[Percentile], baseline: &[Percentile]) -> String {
    let quoted: Vec<String> = canary
        .iter()
        .filter_map(|c| {
            let b = baseline.iter().find(|b| b.quantile == c.quantile)?;
            Some(format!(
                "p{} {} against {}",
                words::number(c.quantile * 100.0),
                interval_words(c),
                interval_words(b),
            ))
        })
        .collect();
    format!(
        "canary against baseline, placed inside buckets by linear interpolation as histogram_quantile does, with intervals at bucket edges that hold for each side's three percentiles at every look together with {} confidence: {}",
        words::round_percent(1.0 - PERCENTILE_ALPHA_PER_SIDE),
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

/// Judges one latency distribution over the window's steps, its test
/// resumed from `checkpoint` (the last look's at the same metric of the same
/// canary) where it applies (the finding is the same without it); this
/// look's checkpoint is left there when the test ran.
#[allow(clippy::too_many_arguments)]
pub(crate) fn judge_distribution(
    rule: &CountsRule,
    edges: &[f64],
    steps: &[HistogramStep],
    alpha: f64,
    window: &Window,
    rules: &RuleSet,
    judgement: &Judgement,
    checkpoint: &mut Option<DistributionCheckpoint>,
) -> Finding {
    let (canary_pooled, baseline_pooled) = (pooled(steps, true), pooled(steps, false));
    let figures = |side: &SideBuckets| SideFigures {
        value: Some(interpolated_quantile(edges, side, 0.5)).filter(|v| v.is_finite()),
        bad: None,
        count: Some(side.total),
        percentiles: side_percentiles(edges, side),
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
    let outcome = match distribution_test_from(edges, steps, &test, checkpoint.as_ref()) {
        Ok((outcome, next)) => {
            *checkpoint = Some(next);
            outcome
        }
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
            words::round_percent(rule.tolerance)
        )
    } else {
        "no percentile slower".into()
    };
    let percentiles = percentile_words(&canary.percentiles, &baseline.percentiles);
    let moved = moved_percentile_words(&canary.percentiles, &baseline.percentiles)
        .map_or(String::new(), |words| format!("{words}; "));
    let at_edge = edge_words(&outcome, rule.tolerance).unwrap_or_default();
    let (metric_outcome, reason) = match outcome.decision {
        Decision::Harm => {
            let edge = outcome.moved_edge.map_or(f64::NAN, |i| edges[i]);
            (
                MetricOutcome::Fail,
                format!(
                    "Slower than tolerated ({band}) above {}: {moved}{at_edge}; the evidence, averaged over the {} bucket edges, reached {}, past the {} needed. Percentiles: {percentiles}.",
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
        Decision::Undecided => {
            // Evidence at or below 1 is none: no edge carries it, so none is named.
            let where_words = if outcome.harm_evidence > 1.0 && !at_edge.is_empty() {
                format!(", most of it where {at_edge}")
            } else {
                String::new()
            };
            (
                MetricOutcome::Inconclusive,
                format!(
                    "Not decided yet ({band}): the evidence of a slower canary reached {} of the {} needed{where_words}. Percentiles: {percentiles}.",
                    evidence_words(outcome.harm_evidence),
                    words::number(outcome.threshold)
                ),
            )
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn percentile(quantile: f64, seconds: f64, lower: f64, upper: Option<f64>) -> Percentile {
        Percentile {
            quantile,
            seconds,
            lower,
            upper,
            confidence: 1.0 - PERCENTILE_ALPHA_PER_SIDE,
        }
    }

    // Pins the reason's guaranteed figure: the canary's lower bound over the baseline's
    // upper bound, quoted only when the bounds are apart, at the comparison's 99%; the
    // percentile quoted is the one whose estimate rose most.
    #[test]
    fn the_guaranteed_rise_comes_from_both_sides_bounds() {
        let baseline = [
            percentile(0.5, 0.04, 0.025, Some(0.05)),
            percentile(0.99, 0.18, 0.1, Some(0.25)),
        ];
        let apart = [
            percentile(0.5, 0.041, 0.025, Some(0.05)),
            percentile(0.99, 0.6, 0.5, Some(1.0)),
        ];
        let words = moved_percentile_words(&apart, &baseline).expect("a rise");
        assert!(
            words.starts_with("slower at p50 and p99: p99 rose from 180 ms to 600 ms")
                && words.contains("at least +100.0% with 99% confidence"),
            "{words}"
        );
        let overlapping = [
            percentile(0.5, 0.041, 0.025, Some(0.05)),
            percentile(0.99, 0.2, 0.1, Some(0.25)),
        ];
        let words = moved_percentile_words(&overlapping, &baseline).expect("a rise");
        assert!(
            words.contains("not a rise the bucket-edge bounds alone guarantee"),
            "{words}"
        );
        // Nothing rose: nothing to name.
        assert_eq!(moved_percentile_words(&baseline, &baseline), None);
    }
}
