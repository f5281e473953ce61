//! `canary-gate plan`: how a counts metric of a rule set would treat a canary
//! with a given traffic, base rate and effect, from seeded simulated canaries.
//!
//! Each simulated canary is per-step Poisson traffic ([`monte_carlo`], the
//! Monte Carlo tests' own simulation) judged with the tests the judge runs for
//! the rule ([`canary_gate::judge::counts_tests`]: its tolerance, its share of
//! the rule set's alpha, its final-look test), the metric's `min_requests`,
//! `early_promotion` and the rule set's `on_timeout`, at looks every `--every`
//! over the window. No statistics are copied here: only when the judge would
//! have seen each decision.

use std::io::Write;

use canary_gate::judge::{CountsTests, counts_tests, kind_name, metric_alpha};
use canary_gate::rules::{CountsRule, LoadedRules, MetricKind, RuleSet, TimeoutPolicy};
use canary_gate::stats::counts::{Decision, StepCounts, final_look_test, ratio_decision};
use canary_gate::text;
use serde::Serialize;

use crate::monte_carlo::{Scenario, look_after_step, seeded, simulate_steps, summarise};

/// What to plan for: the metric, the traffic and the effect.
#[derive(Clone, Debug)]
pub struct PlanOptions {
    /// The rule set's name.
    pub rules: String,
    /// The metric's name within it.
    pub metric: String,
    /// Requests per second the canary and the baseline serve together.
    pub requests_per_sec: f64,
    /// Canary's and baseline's shares of the requests, such as (1, 3).
    pub split: (f64, f64),
    /// The baseline's bad fraction (error rate, or slow fraction of a latency metric).
    pub base_rate: f64,
    /// The canary's bad fraction over the baseline's, such as 2 for `2x`.
    pub effect: f64,
    /// Length of the analysis from the canary's start.
    pub duration_secs: u64,
    /// Time between two looks, as `wait --every`.
    pub every_secs: u64,
    /// Canaries simulated for each of the two scenarios.
    pub canaries: usize,
    /// Seed of the effect's canaries; the healthy ones use `seed + 1`.
    pub seed: u64,
}

/// Why a plan cannot be made.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("{0}")]
    Rules(String),
    #[error(
        "metric `{metric}` is a {kind} metric; plan simulates counts metrics (ratio, and latency with threshold_seconds) only, since {why}"
    )]
    Kind {
        metric: String,
        kind: &'static str,
        why: &'static str,
    },
    #[error("{0}")]
    Input(String),
}

/// What the judge would have done with one simulated canary.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fate {
    /// Rolled back at the look this many seconds after the start.
    RolledBack(u64),
    /// Promoted at the look this many seconds after the start; `early` when
    /// that is before the final look.
    Promoted { secs: u64, early: bool },
    /// Still too little data at the final look: inconclusive.
    NoData,
}

/// The rule and the settings every simulated canary is judged with.
#[derive(Clone, Copy, Debug)]
pub struct Judged {
    pub rule: CountsRule,
    pub tests: CountsTests,
    pub on_timeout: TimeoutPolicy,
    pub step_secs: u64,
    pub window_secs: u64,
    pub every_secs: u64,
}

impl Judged {
    /// Steps of the window.
    pub fn steps(&self) -> usize {
        (self.window_secs / self.step_secs.max(1)) as usize
    }

    /// The look that sees a decision reached at step `step`, held back until
    /// both sides have `min_requests` (step `ready`); the final look at latest.
    fn look(&self, step: usize, ready: usize) -> u64 {
        look_after_step(step.max(ready), self.step_secs, self.every_secs).min(self.window_secs)
    }

    /// The fate of a canary whose window is `steps`, as the judge looking every
    /// `every_secs` would decide it for this metric alone.
    pub fn fate(&self, steps: &[StepCounts]) -> Fate {
        // The first step after which both sides have seen `min_requests`.
        let (mut canary, mut baseline) = (0.0, 0.0);
        let ready = steps.iter().position(|step| {
            canary += step.canary_total;
            baseline += step.baseline_total;
            canary >= self.rule.min_requests && baseline >= self.rule.min_requests
        });
        let Some(ready) = ready else {
            return Fate::NoData;
        };
        let sequential = &self.tests.sequential;
        let (decision, decided_at) = ratio_decision(steps, sequential);
        let harm_step = decided_at.filter(|_| decision == Decision::Harm);
        // A look before the harm would have seen the prefix alone: safety may
        // have been reached there first (the decision depends on earlier steps only).
        let safety_step = match (decision, decided_at) {
            (Decision::WithinTolerance, at) => at,
            (Decision::Harm, Some(at)) => match ratio_decision(&steps[..at], sequential) {
                (Decision::WithinTolerance, before) => before,
                _ => None,
            },
            _ => None,
        };
        let final_harm_step = self.tests.final_look.and_then(|final_look| {
            final_look_test(steps, &final_look.test, final_look.steps)
                .filter(|outcome| outcome.harm)
                .map(|_| final_look.steps - 1)
        });
        let rollback = [harm_step, final_harm_step]
            .into_iter()
            .flatten()
            .min()
            .map(|step| self.look(step, ready));
        // A metric within tolerance passes at once with early promotion, else
        // it waits for the final look.
        let early_promote = safety_step
            .filter(|_| self.rule.early_promotion)
            .map(|step| self.look(step, ready))
            .filter(|secs| *secs < self.window_secs);
        match (rollback, early_promote) {
            // Harm wins a look both reach.
            (Some(back), Some(on)) if on < back => Fate::Promoted {
                secs: on,
                early: true,
            },
            (Some(back), _) => Fate::RolledBack(back),
            (None, Some(on)) => Fate::Promoted {
                secs: on,
                early: true,
            },
            // Undecided at the final look resolves by on_timeout.
            (None, None) if safety_step.is_none() && self.on_timeout == TimeoutPolicy::Rollback => {
                Fate::RolledBack(self.window_secs)
            }
            (None, None) => Fate::Promoted {
                secs: self.window_secs,
                early: false,
            },
        }
    }
}

/// How the simulated canaries of one scenario fared.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Outcomes {
    /// The canary's bad fraction over the baseline's.
    pub effect: f64,
    pub canaries: usize,
    pub seed: u64,
    /// Share of canaries rolled back within the window.
    pub rolled_back: f64,
    /// Seconds by which 50%, 90% and 95% of canaries were rolled back;
    /// `null` when that share was not rolled back within the window.
    pub rollback_50_secs: Option<u64>,
    pub rollback_90_secs: Option<u64>,
    pub rollback_95_secs: Option<u64>,
    /// Share of canaries promoted before the final look.
    pub promoted_early: f64,
    /// Share of canaries still short of `min_requests` at the final look.
    pub no_data: f64,
}

/// The plan: what was simulated and how it fared.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Plan {
    pub rules: String,
    pub metric: String,
    pub kind: &'static str,
    pub critical: bool,
    pub shadow: bool,
    /// The alpha the metric is judged at, and the rule set's.
    pub alpha: f64,
    pub rule_set_alpha: f64,
    pub tolerance: f64,
    pub min_requests: f64,
    pub final_test_after_secs: Option<u64>,
    pub early_promotion: bool,
    pub step_secs: u64,
    pub every_secs: u64,
    pub window_secs: u64,
    pub canary_requests_per_sec: f64,
    pub baseline_requests_per_sec: f64,
    pub base_rate: f64,
    /// Canaries with the effect.
    pub regressed: Outcomes,
    /// Healthy canaries (effect 1x): false rollbacks and early promotes.
    pub healthy: Outcomes,
}

/// Finds the metric and the rule set it belongs to.
fn find<'a>(loaded: &'a LoadedRules, options: &PlanOptions) -> Result<&'a RuleSet, PlanError> {
    let Some(set) = loaded.sets.get(&options.rules) else {
        let mut message = loaded.missing(&options.rules);
        for error in &loaded.errors {
            message.push_str(&format!("\n  {error}"));
        }
        return Err(PlanError::Rules(message));
    };
    Ok(set)
}

/// Simulates `options.canaries` canaries with the effect and as many healthy
/// ones, each judged as the judge would judge the metric.
pub fn plan(loaded: &LoadedRules, options: &PlanOptions) -> Result<Plan, PlanError> {
    let set = find(loaded, options)?;
    let Some(metric) = set.metrics.iter().find(|m| m.name == options.metric) else {
        let names: Vec<&str> = set.metrics.iter().map(|m| m.name.as_str()).collect();
        return Err(PlanError::Rules(format!(
            "rule set `{}` has no metric `{}`; it has {}",
            set.name,
            options.metric,
            names.join(", ")
        )));
    };
    let rule = match &metric.kind {
        MetricKind::Ratio { rule, .. } | MetricKind::Latency { rule, .. } => *rule,
        MetricKind::Series { .. } => {
            return Err(PlanError::Kind {
                metric: metric.name.clone(),
                kind: "series",
                why: "a series metric compares samples of a gauge, which have no base rate or effect to simulate",
            });
        }
        MetricKind::Distribution { .. } => {
            return Err(PlanError::Kind {
                metric: metric.name.clone(),
                kind: "latency distribution",
                why: "a latency metric without threshold_seconds compares whole distributions, which it does not simulate yet. Its measured times to roll back a slower body or tail are in docs/statistics.md, \"Latency distributions\" (`cargo bench --bench latency_distribution`); to plan a latency metric here, plan a copy of the rule set whose metric sets threshold_seconds (the share of requests slower than a bucket bound), or plan the set's other metrics with --metric",
            });
        }
        MetricKind::Threshold { .. } => {
            return Err(PlanError::Kind {
                metric: metric.name.clone(),
                kind: "threshold",
                why: "a threshold metric checks one value against fixed bounds, with no test to plan",
            });
        }
    };
    check_inputs(options, set.step_secs)?;
    let alpha = metric_alpha(set, metric);
    let judged = Judged {
        rule,
        tests: counts_tests(&rule, alpha, set.step_secs),
        on_timeout: set.on_timeout,
        step_secs: set.step_secs,
        window_secs: options.duration_secs,
        every_secs: options.every_secs,
    };
    let (canary_share, baseline_share) = options.split;
    let canary_rps = options.requests_per_sec * canary_share / (canary_share + baseline_share);
    let baseline_rps = options.requests_per_sec - canary_rps;
    let scenario = |effect| Scenario {
        baseline_requests_per_sec: baseline_rps,
        canary_requests_per_sec_start: canary_rps,
        canary_requests_per_sec_end: canary_rps,
        baseline_bad_fraction: options.base_rate,
        true_ratio: effect,
        shared_noise_log_sd: 0.0,
    };
    let run = |effect: f64, seed: u64| simulate(&judged, &scenario(effect), options, seed);
    Ok(Plan {
        rules: set.name.clone(),
        metric: metric.name.clone(),
        kind: kind_name(&metric.kind),
        critical: metric.critical,
        shadow: metric.shadow,
        alpha,
        rule_set_alpha: set.alpha,
        tolerance: rule.tolerance,
        min_requests: rule.min_requests,
        final_test_after_secs: rule.final_test_after_secs,
        early_promotion: rule.early_promotion,
        step_secs: set.step_secs,
        every_secs: options.every_secs,
        window_secs: options.duration_secs,
        canary_requests_per_sec: canary_rps,
        baseline_requests_per_sec: baseline_rps,
        base_rate: options.base_rate,
        regressed: run(options.effect, options.seed),
        healthy: run(1.0, options.seed.wrapping_add(1)),
    })
}

/// Refuses inputs no canary could have, saying what to write instead.
fn check_inputs(options: &PlanOptions, step_secs: u64) -> Result<(), PlanError> {
    let fail = |message: String| Err(PlanError::Input(message));
    let (canary, baseline) = options.split;
    if !(options.requests_per_sec.is_finite() && options.requests_per_sec > 0.0) {
        return fail("--rps must be a number of requests per second above 0, such as 20".into());
    }
    if !(canary > 0.0 && baseline > 0.0 && canary.is_finite() && baseline.is_finite()) {
        return fail("--split needs two shares above 0, canary:baseline, such as 1:3".into());
    }
    if !(options.base_rate > 0.0 && options.base_rate < 1.0) {
        return fail("--base-rate must lie between 0% and 100%, such as 1%".into());
    }
    if !(options.effect.is_finite() && options.effect >= 0.0)
        || options.base_rate * options.effect > 1.0
    {
        return fail(format!(
            "--effect must be a ratio of at least 0 that keeps the canary's rate at most 100% (base rate {}), such as 2x",
            text::percent(options.base_rate)
        ));
    }
    if options.duration_secs < step_secs {
        return fail(format!(
            "--duration must be at least the rule set's step ({step_secs}s)"
        ));
    }
    if options.every_secs == 0 {
        return fail("--every must be at least 1s, such as 30s".into());
    }
    if !(1..=MAX_CANARIES).contains(&options.canaries) {
        return fail(format!("--canaries must lie from 1 to {MAX_CANARIES}"));
    }
    Ok(())
}

/// The most canaries one plan simulates per scenario.
pub const MAX_CANARIES: usize = 1_000_000;

/// The fates of `options.canaries` canaries of `scenario`, summarised.
fn simulate(judged: &Judged, scenario: &Scenario, options: &PlanOptions, seed: u64) -> Outcomes {
    let mut rng = seeded(seed);
    let fates: Vec<Fate> = (0..options.canaries)
        .map(|_| {
            judged.fate(&simulate_steps(
                scenario,
                judged.step_secs,
                judged.steps(),
                &mut rng,
            ))
        })
        .collect();
    let times: Vec<Option<u64>> = fates
        .iter()
        .map(|fate| match fate {
            Fate::RolledBack(secs) => Some(*secs),
            _ => None,
        })
        .collect();
    let summary = summarise(&times);
    let finite = |secs: f64| secs.is_finite().then_some(secs as u64);
    let share = |keep: fn(&Fate) -> bool| {
        fates.iter().filter(|f| keep(f)).count() as f64 / fates.len().max(1) as f64
    };
    Outcomes {
        effect: scenario.true_ratio,
        canaries: options.canaries,
        seed,
        rolled_back: summary.rolled_back,
        rollback_50_secs: finite(summary.median_secs),
        rollback_90_secs: finite(summary.p90_secs),
        rollback_95_secs: finite(summary.p95_secs),
        promoted_early: share(|f| matches!(f, Fate::Promoted { early: true, .. })),
        no_data: share(|f| matches!(f, Fate::NoData)),
    }
}

/// A time to rollback in words, or that it was not reached.
fn by(secs: Option<u64>) -> String {
    match secs {
        Some(secs) => format!("by {}", text::duration(secs as i64)),
        None => "not within the window".into(),
    }
}

/// A share of canaries, with enough digits to show rare events.
fn share(fraction: f64) -> String {
    format!("{:.2}%", 100.0 * fraction)
}

/// The plan in words.
pub fn write_text(plan: &Plan, out: &mut impl Write) -> std::io::Result<()> {
    let window = text::duration(plan.window_secs as i64);
    writeln!(
        out,
        "rule set `{}`, metric `{}` ({}{}): alpha {} (of the rule set's {}), tolerance {}, min_requests {}, {}early promotion {}",
        plan.rules,
        plan.metric,
        plan.kind,
        match (plan.critical, plan.shadow) {
            (true, true) => ", critical, shadow",
            (true, false) => ", critical",
            (false, true) => ", shadow",
            (false, false) => "",
        },
        text::number(plan.alpha),
        text::number(plan.rule_set_alpha),
        text::percent(plan.tolerance),
        text::count(plan.min_requests),
        match plan.final_test_after_secs {
            Some(after) => format!("final-look test after {}, ", text::duration(after as i64)),
            None => String::new(),
        },
        if plan.early_promotion { "on" } else { "off" },
    )?;
    writeln!(
        out,
        "traffic: canary {}/s, baseline {}/s (Poisson), base rate {}; looks every {} over {window}, steps of {}s",
        text::number(plan.canary_requests_per_sec),
        text::number(plan.baseline_requests_per_sec),
        text::percent(plan.base_rate),
        text::duration(plan.every_secs as i64),
        plan.step_secs,
    )?;
    // A healthy canary's rollbacks are false alarms: their share is the figure, not their times.
    for (label, outcomes, regressed) in [
        (
            format!("canary at {}", text::times(plan.regressed.effect)),
            &plan.regressed,
            true,
        ),
        ("healthy canary (1.00x)".to_string(), &plan.healthy, false),
    ] {
        writeln!(
            out,
            "{label}, {} simulated canaries (seed {}):",
            text::count(outcomes.canaries as f64),
            outcomes.seed
        )?;
        writeln!(
            out,
            "  rolled back within {window}{}: {}",
            if regressed { "" } else { " (false rollbacks)" },
            share(outcomes.rolled_back)
        )?;
        if regressed {
            writeln!(
                out,
                "  rolled back with 50% probability {}, 90% {}, 95% {}",
                by(outcomes.rollback_50_secs),
                by(outcomes.rollback_90_secs),
                by(outcomes.rollback_95_secs)
            )?;
        }
        writeln!(
            out,
            "  promoted early (before the final look): {}",
            share(outcomes.promoted_early)
        )?;
        if outcomes.no_data > 0.0 {
            writeln!(
                out,
                "  still short of min_requests at the final look: {}",
                share(outcomes.no_data)
            )?;
        }
    }
    writeln!(
        out,
        "Simulated figures for this metric alone; the rule set promises at most {} false rollbacks of a healthy canary over all its metrics.",
        text::percent(plan.rule_set_alpha)
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use canary_gate::stats::Direction;

    /// A 10-minute window of 15 s steps judged every 30 s with `rule`'s own tests at alpha 0.01.
    fn judged(min_requests: f64, early_promotion: bool, on_timeout: TimeoutPolicy) -> Judged {
        let rule = CountsRule {
            direction: Direction::Increase,
            tolerance: 0.5,
            min_requests,
            early_promotion,
            final_test_after_secs: None,
        };
        Judged {
            rule,
            tests: counts_tests(&rule, 0.01, 15),
            on_timeout,
            step_secs: 15,
            window_secs: 600,
            every_secs: 30,
        }
    }

    /// 40 steps of 300 requests a side with `canary_bad` and 30 bad events.
    fn steps(canary_bad: f64) -> Vec<StepCounts> {
        vec![
            StepCounts {
                canary_bad,
                canary_total: 300.0,
                baseline_bad: 30.0,
                baseline_total: 300.0,
            };
            40
        ]
    }

    // Pins what the judge would do with one window: a clear regression rolls back at a
    // look, held back until min_requests; a clearly healthy canary is promoted early only
    // with early_promotion; a window that never reaches min_requests has no data.
    #[test]
    fn fates_follow_the_rule() {
        let quick = judged(300.0, true, TimeoutPolicy::Promote);
        let Fate::RolledBack(fast) = quick.fate(&steps(90.0)) else {
            panic!("a 3x regression rolls back");
        };
        assert_eq!(fast % 30, 0, "at a look: {fast}");
        let patient = judged(3000.0, true, TimeoutPolicy::Promote);
        assert_eq!(
            patient.fate(&steps(90.0)),
            Fate::RolledBack(150),
            "ten steps of 15 s bring 3,000"
        );
        let healthy = quick.fate(&steps(30.0));
        assert!(
            matches!(healthy, Fate::Promoted { early: true, .. }),
            "{healthy:?}"
        );
        let late = judged(300.0, false, TimeoutPolicy::Rollback);
        assert_eq!(
            late.fate(&steps(30.0)),
            Fate::Promoted {
                secs: 600,
                early: false
            }
        );
        let never = judged(1e6, true, TimeoutPolicy::Promote);
        assert_eq!(never.fate(&steps(30.0)), Fate::NoData);
    }
}
