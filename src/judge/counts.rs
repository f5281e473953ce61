//! Judging a counts metric (ratio or latency) with the anytime-valid rate test.

use super::chart;
use super::finding::Finding;
use crate::request::Judgement;
use crate::rules::{CountsRule, RuleSet, TimeoutPolicy};
use crate::stats::Direction;
use crate::stats::counts::{
    Decision, RatioCheckpoint, RatioOutcome, RatioTest, StepCounts, final_look_test,
    ratio_test_from,
};
use crate::text as words;
use crate::verdict::{Estimate, Evidence, MetricOutcome, SideFigures, Window};

/// Share of a metric's alpha that a rule's final-look test gets
/// (`final_test_after`); the sequential test keeps the rest.
pub(crate) const FINAL_LOOK_ALPHA_SHARE: f64 = 0.9;

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

/// Why an undecided metric is undecided, in words that match its bounds: the
/// interval reaches past an edge of the band (it straddles it), or it lies
/// inside the band while the evidence of safety, which uses its own
/// alternatives, has not yet reached the threshold.
fn undecided_words(
    outcome: &RatioOutcome,
    range_words: &str,
    band: &str,
    tolerated_lower: f64,
    tolerated_upper: f64,
) -> String {
    let inside = outcome.ratio_lower >= tolerated_lower && outcome.ratio_upper <= tolerated_upper;
    if inside {
        format!(
            "{range_words}, inside the {band} tolerated, but the evidence that it is within tolerance reached {}, short of the {} needed",
            words::number(outcome.safety_evidence),
            words::number(outcome.threshold)
        )
    } else {
        format!("{range_words}, which straddles the {band} tolerated")
    }
}

/// The evidence figure of a sequential metric: its largest harm and safety
/// e-values, the threshold, its alpha, and when (after the window's start)
/// the decision was reached.
pub(crate) fn evidence_figure(
    [harm, safety]: [f64; 2],
    threshold: f64,
    alpha: f64,
    decided_at_step: Option<usize>,
    window: &Window,
) -> Evidence {
    Evidence {
        harm,
        safety,
        threshold,
        alpha,
        decided_after_secs: decided_at_step.map(|s| (s as i64 + 1) * window.step_secs as i64),
    }
}

/// The tests a counts rule runs at the metric's `alpha`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CountsTests {
    /// The sequential test, judged at every look.
    pub sequential: RatioTest,
    /// The final-look test, when the rule sets `final_test_after`.
    pub final_look: Option<FinalLook>,
}

/// A rule's fixed-horizon test on the window's first steps.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FinalLook {
    pub test: RatioTest,
    /// Steps it reads from the window's start.
    pub steps: usize,
    /// The rule's `final_test_after`.
    pub after_secs: u64,
}

/// The tests `judge_counts` runs for `rule` at `alpha` with steps of
/// `step_secs`. With a final-look test the metric's alpha is shared: a false
/// rollback needs one of the two tests to err, at most the sum of their alphas.
/// `canary-gate plan` simulates a rule with these very tests.
pub fn counts_tests(rule: &CountsRule, alpha: f64, step_secs: u64) -> CountsTests {
    let (sequential_alpha, final_look) = match rule.final_test_after_secs {
        Some(after_secs) => (
            alpha * (1.0 - FINAL_LOOK_ALPHA_SHARE),
            Some(((after_secs / step_secs.max(1)).max(1) as usize, after_secs)),
        ),
        None => (alpha, None),
    };
    let sequential = RatioTest {
        direction: rule.direction,
        tolerance: rule.tolerance,
        alpha: sequential_alpha,
    };
    CountsTests {
        sequential,
        final_look: final_look.map(|(steps, after_secs)| FinalLook {
            test: RatioTest {
                alpha: alpha * FINAL_LOOK_ALPHA_SHARE,
                ..sequential
            },
            steps,
            after_secs,
        }),
    }
}

/// How a counts metric's reason names what it counts.
pub(crate) struct CountsWords<'a> {
    /// What the ratio compares: "rate of bad events".
    pub rate: &'a str,
    /// Said when neither side had a bad event, where a ratio would be 0/0:
    /// "no bad event on either side".
    pub none_on_either_side: &'a str,
}

/// Judges one counts metric over the window's steps, its sequential test
/// resumed from `checkpoint` (the last look's at the same metric of the
/// same canary) where it applies (the finding is the same without it); this
/// look's checkpoint is left there when the test ran, as
/// [`super::distribution::judge_distribution`] does.
#[allow(clippy::too_many_arguments)]
pub(crate) fn judge_counts(
    rule: &CountsRule,
    steps: &[StepCounts],
    alpha: f64,
    window: &Window,
    rules: &RuleSet,
    judgement: &Judgement,
    words_for: &CountsWords,
    checkpoint: &mut Option<RatioCheckpoint>,
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
        percentiles: Vec::new(),
    };
    let baseline = SideFigures {
        value: rate(baseline_bad, baseline_total),
        bad: Some(baseline_bad),
        count: Some(baseline_total),
        percentiles: Vec::new(),
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

    let CountsTests {
        sequential: test,
        final_look,
    } = counts_tests(rule, alpha, window.step_secs);
    let (outcome, next) = ratio_test_from(steps, &test, checkpoint.as_ref());
    *checkpoint = Some(next);
    let final_outcome = final_look.and_then(|final_look| {
        final_look_test(steps, &final_look.test, final_look.steps)
            .map(|f| (f, final_look.test.alpha, final_look.after_secs))
    });
    let (tolerated_lower, tolerated_upper) = tolerated_band(rule.direction, rule.tolerance);
    // The level at which the pair of bounds holds together: what the interval
    // shown beside the estimate guarantees (one bound alone holds at more).
    let confidence = outcome.confidence;
    let estimate = Estimate {
        unit: "ratio".into(),
        value: outcome.ratio_estimate,
        lower: outcome.ratio_lower,
        upper: outcome.ratio_upper,
        confidence,
        tolerated_lower,
        tolerated_upper,
    };
    let evidence = evidence_figure(
        [outcome.harm_evidence, outcome.safety_evidence],
        outcome.threshold,
        alpha,
        outcome.decided_at_step,
        window,
    );

    let observed = if canary_bad == 0.0 && baseline_bad == 0.0 {
        format!(
            "{} ({} on the canary, {} on the baseline)",
            words_for.none_on_either_side,
            words::count(canary_total),
            words::count(baseline_total),
        )
    } else {
        format!(
            "the canary's {} is {} the baseline's ({} of {} against {} of {})",
            words_for.rate,
            words::times(outcome.ratio_estimate),
            words::percent(canary.value.unwrap_or(f64::NAN)),
            words::count(canary_total),
            words::percent(baseline.value.unwrap_or(f64::NAN)),
            words::count(baseline_total),
        )
    };
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
        _ if let Some((final_outcome, final_alpha, after_secs)) = final_outcome
            && final_outcome.harm =>
        {
            (
                MetricOutcome::Fail,
                format!(
                    "Worse than tolerated by the final-look test after {}: {observed}; were it within the {band} tolerated, bad events would fall on the canary this lopsidedly with chance {}, at most the {} this test is given.",
                    words::duration(after_secs as i64),
                    words::number(final_outcome.p_value),
                    words::number(final_alpha),
                ),
            )
        }
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
                "Not decided yet: {observed}; {}.",
                undecided_words(
                    &outcome,
                    &range_words,
                    &band,
                    tolerated_lower,
                    tolerated_upper
                )
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::SideSelector;
    use std::collections::BTreeMap;
    use std::path::Path;

    /// A rule set with one ratio metric of the given direction and tolerance.
    fn rules(direction: &str, tolerance: &str) -> RuleSet {
        let text = format!(
            "metrics:\n\
             \x20 - name: errors\n\
             \x20   kind: ratio\n\
             \x20   bad: errors_total\n\
             \x20   total: requests_total\n\
             \x20   direction: {direction}\n\
             \x20   tolerance: {tolerance}\n\
             \x20   min_requests: 100\n"
        );
        crate::rules::load_str(Path::new("test.yaml"), &text).expect("valid rules")
    }

    fn judgement() -> Judgement {
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
            end_secs: 240,
            vars: BTreeMap::new(),
            is_final: false,
        }
    }

    fn window() -> Window {
        Window {
            start: String::new(),
            end: String::new(),
            start_secs: 0,
            end_secs: 240,
            step_secs: 15,
        }
    }

    fn judged(rules: &RuleSet, steps: &[StepCounts], alpha: f64) -> Finding {
        judge_counts(
            ratio_rule(rules),
            steps,
            alpha,
            &window(),
            rules,
            &judgement(),
            &CountsWords {
                rate: "rate of bad events",
                none_on_either_side: "no bad event on either side",
            },
            &mut None,
        )
    }

    fn ratio_rule(rules: &RuleSet) -> &CountsRule {
        match &rules.metrics[0].kind {
            crate::rules::MetricKind::Ratio { rule, .. } => rule,
            other => panic!("expected a ratio metric, got {other:?}"),
        }
    }

    /// Sixteen steps of 1000 requests a side, 16 canary and 10 baseline errors.
    fn sixteen_to_ten() -> Vec<StepCounts> {
        vec![
            StepCounts {
                canary_bad: 16.0,
                canary_total: 1000.0,
                baseline_bad: 10.0,
                baseline_total: 1000.0,
            };
            16
        ]
    }

    // Regression (issue 11): with `either`, tolerance 10% and alpha 0.005, 16 steps of
    // 16 against 10 errors gave "straddles the band" while the lower bound was above it.
    #[test]
    fn either_reason_never_says_straddles_when_the_interval_is_past_the_band() {
        let rules = rules("either", "10%");
        let finding = judged(&rules, &sixteen_to_ten(), 0.005);
        let estimate = finding.estimate.expect("judged");
        let past_the_band =
            estimate.lower > estimate.tolerated_upper || estimate.upper < estimate.tolerated_lower;
        if finding.reason.contains("straddles") {
            assert!(!past_the_band, "{} {estimate:?}", finding.reason);
        }
        // The bounds of `either` are each at alpha / 2, so an interval past the
        // band means the averaged harm evidence crossed: the reason says harm.
        if past_the_band {
            assert_eq!(finding.outcome, MetricOutcome::Fail, "{}", finding.reason);
        }
        // Every look of a longer window of the same steps: with the bounds at alpha
        // each, looks 19 and 20 had a lower bound above 1.1 and no decision.
        let longer: Vec<StepCounts> = sixteen_to_ten().into_iter().cycle().take(40).collect();
        for prefix in 1..=longer.len() {
            let finding = judged(&rules, &longer[..prefix], 0.005);
            let estimate = finding.estimate.expect("judged");
            let past = estimate.lower > estimate.tolerated_upper
                || estimate.upper < estimate.tolerated_lower;
            assert!(
                !(past && finding.outcome == MetricOutcome::Inconclusive),
                "after {prefix} steps: {} {estimate:?}",
                finding.reason
            );
        }
    }

    // Regression (issue 11): the counts interval was captioned 1 - alpha (99.5% at alpha
    // 0.005) while the pair of bounds holds at 1 - 2 alpha (99%), and 1 - alpha for either.
    #[test]
    fn counts_interval_confidence_is_that_of_the_pair_of_bounds() {
        let steps = sixteen_to_ten();
        let increase = judged(&rules("increase", "10%"), &steps, 0.005);
        let confidence = increase.estimate.expect("judged").confidence;
        assert!((confidence - 0.99).abs() < 1e-12, "{confidence}");
        assert!(!increase.reason.contains("99.5%"), "{}", increase.reason);
        let either = judged(&rules("either", "10%"), &steps, 0.005);
        let confidence = either.estimate.expect("judged").confidence;
        assert!((confidence - 0.995).abs() < 1e-12, "{confidence}");
    }

    // Pins the final-look test of `final_test_after`: thin evidence the sequential test
    // cannot settle (30 canary against 8 baseline errors over 120 steps) fails the metric
    // once the window has its 30 minutes, and not before.
    #[test]
    fn final_look_test_rolls_back_thin_lopsided_evidence_at_its_window() {
        let text = "metrics:\n\
             \x20 - name: errors\n\
             \x20   kind: ratio\n\
             \x20   bad: errors_total\n\
             \x20   total: requests_total\n\
             \x20   direction: increase\n\
             \x20   tolerance: 0%\n\
             \x20   min_requests: 100\n\
             \x20   final_test_after: 30m\n";
        let rules = crate::rules::load_str(Path::new("test.yaml"), text).expect("valid rules");
        assert_eq!(ratio_rule(&rules).final_test_after_secs, Some(1800));
        let steps: Vec<StepCounts> = (0..120)
            .map(|i| StepCounts {
                canary_bad: if i % 4 == 0 { 1.0 } else { 0.0 },
                canary_total: 15.0,
                baseline_bad: if i % 15 == 0 { 1.0 } else { 0.0 },
                baseline_total: 15.0,
            })
            .collect();
        let before = judged(&rules, &steps[..119], 0.005);
        assert_eq!(
            before.outcome,
            MetricOutcome::Inconclusive,
            "{}",
            before.reason
        );
        let at_window = judged(&rules, &steps, 0.005);
        assert_eq!(
            at_window.outcome,
            MetricOutcome::Fail,
            "{}",
            at_window.reason
        );
        assert!(
            at_window.reason.contains("final-look test after 30m"),
            "{}",
            at_window.reason
        );
    }
}
