//! Anytime-valid comparison of bad-event rates between canary and baseline.
//!
//! CONTRACT (filled in by the statistics work; the judge relies on these names):
//! `ratio_test(steps, &RatioTest)` walks the per-step counts of the window once,
//! from the first step to the last, and returns the decision as of the last step
//! together with the evidence path, so that any number of looks at any time keep
//! the promised error rates.

use super::Direction;

/// Bad and total events of both sides during one step of the window.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct StepCounts {
    pub canary_bad: f64,
    pub canary_total: f64,
    pub baseline_bad: f64,
    pub baseline_total: f64,
}

/// What to test: is the canary's bad-event rate, relative to the baseline's,
/// changed by more than `tolerance` in the harmful `direction`?
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RatioTest {
    pub direction: Direction,
    /// Relative change still acceptable: 0.1 means the canary's rate may be up
    /// to 1.1 times (or, for a decrease, down to 0.9 times) the baseline's.
    pub tolerance: f64,
    /// Probability of declaring harm on a canary within tolerance, over all looks.
    pub alpha: f64,
}

/// What the evidence says as of the last step.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// The canary is worse than tolerated.
    Harm,
    /// The canary is within tolerance.
    WithinTolerance,
    /// Not enough evidence either way yet.
    Undecided,
}

/// The evidence after one step.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct EvidencePoint {
    /// Index of the step in the window.
    pub step: usize,
    /// E-value against "within tolerance" (large means harm).
    pub harm: f64,
    /// E-value against "worse than tolerated" (large means safe).
    pub safety: f64,
}

/// The result of [`ratio_test`].
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct RatioOutcome {
    pub decision: Decision,
    /// Step at which the decision's boundary was first crossed.
    pub decided_at_step: Option<usize>,
    /// Canary bad events over canary events, pooled over the window.
    pub canary_rate: f64,
    /// Baseline bad events over baseline events, pooled over the window.
    pub baseline_rate: f64,
    /// Point estimate of canary rate / baseline rate.
    pub ratio_estimate: f64,
    /// Anytime-valid confidence sequence for the ratio, as of the last step.
    pub ratio_lower: f64,
    pub ratio_upper: f64,
    /// Largest harm e-value seen on the path.
    pub harm_evidence: f64,
    /// Largest safety e-value seen on the path.
    pub safety_evidence: f64,
    /// The e-value a side must reach to decide (1 / alpha).
    pub threshold: f64,
    /// The evidence after every step.
    pub path: Vec<EvidencePoint>,
}

/// Runs the sequential test over the window's steps.
pub fn ratio_test(steps: &[StepCounts], test: &RatioTest) -> RatioOutcome {
    let _ = (steps, test);
    todo!("statistics work")
}
