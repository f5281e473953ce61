//! Judging a counts metric (ratio or latency) with the anytime-valid rate test.

use super::chart;
use super::finding::Finding;
use crate::request::Judgement;
use crate::rules::{CountsRule, RuleSet, TimeoutPolicy};
use crate::stats::Direction;
use crate::stats::counts::{Decision, RatioTest, StepCounts, ratio_test};
use crate::text as words;
use crate::verdict::{Estimate, Evidence, MetricOutcome, SideFigures, Window};

/// The band of canary/baseline ratios a rule tolerates.
pub(crate) fn tolerated_band(direction: Direction, tolerance: f64) -> (f64, f64) {
    match direction {
        Direction::Increase => (0.0, 1.0 + tolerance),
        Direction::Decrease => ((1.0 - tolerance).max(0.0), f64::INFINITY),
        Direction::Either => ((1.0 - tolerance).max(0.0), 1.0 + tolerance),
    }
}

fn band_words(low: f64, high: f64) -> String {
    match (low > 0.0, high.is_finite()) {
        (true, true) => format!("{} to {}", words::times(low), words::times(high)),
        (false, true) => words::times(high),
        (true, false) => words::times(low),
        (false, false) => "any ratio".into(),
    }
}

/// Judges one counts metric over the window's steps.
pub(crate) fn judge_counts(
    rule: &CountsRule,
    steps: &[StepCounts],
    alpha: f64,
    window: &Window,
    rules: &RuleSet,
    judgement: &Judgement,
    what: &str,
) -> Finding {
    // A step where either side's counts are unknown counts on neither side.
    let sum = |f: fn(&StepCounts) -> f64| {
        let known = steps.iter().filter(|s| known(s));
        known.map(f).filter(|v| v.is_finite()).sum::<f64>()
    };
    let (canary_bad, canary_total) = (sum(|s| s.canary_bad), sum(|s| s.canary_total));
    let (baseline_bad, baseline_total) = (sum(|s| s.baseline_bad), sum(|s| s.baseline_total));
    let rate = |bad: f64, total: f64| if total > 0.0 { Some(bad / total) } else { None };
    let canary = SideFigures {
        value: rate(canary_bad, canary_total),
        bad: Some(canary_bad),
        count: Some(canary_total),
    };
    let baseline = SideFigures {
        value: rate(baseline_bad, baseline_total),
        bad: Some(baseline_bad),
        count: Some(baseline_total),
    };

    // Steps whose counts are unknown (a summed counter fell in them) are said,
    // with the side that fell and how often, since they carry no evidence.
    let (left_out, crash_looping) = left_out(steps, window.step_secs);
    let held_back = |outcome| match outcome {
        MetricOutcome::Pass | MetricOutcome::Nodata if crash_looping => MetricOutcome::Inconclusive,
        other => other,
    };

    if canary_total < rule.min_requests || baseline_total < rule.min_requests {
        let reason = format!(
            "The canary has seen {} events and the baseline {}; each side needs {} before this metric is judged.{left_out}",
            words::count(canary_total),
            words::count(baseline_total),
            words::count(rule.min_requests)
        );
        return Finding {
            outcome: held_back(MetricOutcome::Nodata),
            reason,
            canary,
            baseline,
            estimate: None,
            evidence: None,
            chart: Some(chart::counts_chart(steps, window, &[], None, None)),
        };
    }

    let outcome = ratio_test(
        steps,
        &RatioTest {
            direction: rule.direction,
            tolerance: rule.tolerance,
            alpha,
        },
    );
    let (tolerated_lower, tolerated_upper) = tolerated_band(rule.direction, rule.tolerance);
    let confidence = 1.0 - alpha;
    let estimate = Estimate {
        unit: "ratio".into(),
        value: outcome.ratio_estimate,
        lower: outcome.ratio_lower,
        upper: outcome.ratio_upper,
        confidence,
        tolerated_lower,
        tolerated_upper,
    };
    let evidence = Evidence {
        harm: outcome.harm_evidence,
        safety: outcome.safety_evidence,
        threshold: outcome.threshold,
        alpha,
        decided_after_secs: outcome
            .decided_at_step
            .map(|s| (s as i64 + 1) * window.step_secs as i64),
    };

    let observed = format!(
        "the canary's {what} is {} the baseline's ({} of {} against {} of {})",
        words::times(outcome.ratio_estimate),
        words::percent(canary.value.unwrap_or(f64::NAN)),
        words::count(canary_total),
        words::percent(baseline.value.unwrap_or(f64::NAN)),
        words::count(baseline_total),
    );
    let sure = format!("with {}% confidence", words::number(confidence * 100.0));
    let (lower, upper) = (
        words::times(outcome.ratio_lower),
        words::times(outcome.ratio_upper),
    );
    let band = band_words(tolerated_lower, tolerated_upper);
    // Which bound settles the question depends on the side the evidence fell on.
    // The bounds invert the deciding e-processes, so they agree with the decision;
    // where they cannot (the two-sided tests) the evidence itself is quoted.
    let harm_words = if outcome.ratio_lower > tolerated_upper {
        format!(
            "{sure} it is at least {lower}, above the {} tolerated",
            words::times(tolerated_upper)
        )
    } else if outcome.ratio_upper < tolerated_lower {
        format!(
            "{sure} it is at most {upper}, below the {} tolerated",
            words::times(tolerated_lower)
        )
    } else {
        format!(
            "the evidence against the {band} tolerated reached {}, past the {} needed",
            words::number(outcome.harm_evidence),
            words::number(outcome.threshold)
        )
    };
    let inside = outcome.ratio_lower >= tolerated_lower && outcome.ratio_upper <= tolerated_upper;
    let safe_words = match rule.direction {
        _ if !inside => format!(
            "the evidence that it is within the {band} tolerated reached {}, past the {} needed",
            words::number(outcome.safety_evidence),
            words::number(outcome.threshold)
        ),
        Direction::Increase => format!("{sure} it is at most {upper}, within the {band} tolerated"),
        Direction::Decrease => {
            format!("{sure} it is at least {lower}, within the {band} tolerated")
        }
        Direction::Either => {
            format!("{sure} it lies between {lower} and {upper}, within the {band} tolerated")
        }
    };
    let range_words = format!("it could be anywhere from {lower} to {upper}");
    let (metric_outcome, reason) = match outcome.decision {
        Decision::Harm => (
            MetricOutcome::Fail,
            format!("Worse than tolerated: {observed}; {harm_words}."),
        ),
        Decision::WithinTolerance if rule.early_promotion || judgement.is_final => (
            MetricOutcome::Pass,
            format!("Within tolerance: {observed}; {safe_words}."),
        ),
        Decision::WithinTolerance => (
            MetricOutcome::Inconclusive,
            format!(
                "Within tolerance so far: {observed}; {safe_words}; the rule waits for the final look before passing it."
            ),
        ),
        Decision::Undecided if judgement.is_final => match rules.on_timeout {
            TimeoutPolicy::Promote => (
                MetricOutcome::Pass,
                format!(
                    "No evidence of harm by the final look: {observed}; {range_words}; the rule set's on_timeout is promote."
                ),
            ),
            TimeoutPolicy::Rollback => (
                MetricOutcome::Fail,
                format!(
                    "Still undecided at the final look: {observed}; {range_words}, against the {band} tolerated; the rule set's on_timeout is rollback."
                ),
            ),
        },
        Decision::Undecided => (
            MetricOutcome::Inconclusive,
            format!(
                "Not decided yet: {observed}; {range_words}, which straddles the {band} tolerated."
            ),
        ),
    };
    Finding {
        outcome: held_back(metric_outcome),
        reason: reason + &left_out,
        canary,
        baseline,
        estimate: Some(estimate),
        evidence: Some(evidence),
        chart: Some(chart::counts_chart(
            steps,
            window,
            &outcome.path,
            Some(outcome.threshold),
            outcome.decided_at_step,
        )),
    }
}

/// Whether both sides' counts of `step` are known: NaN marks the side whose
/// summed counter fell in it.
fn known(step: &StepCounts) -> bool {
    !step.canary_total.is_nan() && !step.baseline_total.is_nan()
}

/// The sentence on the steps left out as unknown (empty when none): how many,
/// which side's summed counter fell, and how often it restarted; and whether
/// the canary is crash-looping, its sum falling in at least half the steps
/// (and more than once), which holds the metric back from passing.
fn left_out(steps: &[StepCounts], step_secs: u64) -> (String, bool) {
    let unknown = steps.iter().filter(|s| !known(s)).count();
    if unknown == 0 {
        return (String::new(), false);
    }
    let fell = |side: fn(&StepCounts) -> f64| steps.iter().filter(|s| side(s).is_nan()).count();
    let (canary_fell, baseline_fell) = (fell(|s| s.canary_total), fell(|s| s.baseline_total));
    // Each fall is at least one restart; one hidden by the other pods' growth shows no fall.
    let window_secs = steps.len() as i64 * step_secs as i64;
    let restarts = |side: &str, falls: usize| match falls {
        0 => None,
        1 => Some(format!(
            "the {side}'s summed counter fell once (a pod restarted or went away)"
        )),
        n => Some(format!(
            "the {side}'s summed counter fell in {n} steps: a pod behind it restarted (or went away) at least {n} times in {}, about every {}",
            words::duration(window_secs),
            words::duration(window_secs / n as i64)
        )),
    };
    let sides: Vec<String> = [
        restarts("canary", canary_fell),
        restarts("baseline", baseline_fell),
    ]
    .into_iter()
    .flatten()
    .collect();
    let crash_looping = canary_fell >= 2 && 2 * canary_fell >= steps.len();
    let held_back = match crash_looping {
        true => " A canary that keeps restarting is not promoted.",
        false => "",
    };
    let sentence = format!(
        " {unknown} of {} steps were left out, since their counts are unknown: {}.{held_back}",
        steps.len(),
        sides.join("; ")
    );
    (sentence, crash_looping)
}
