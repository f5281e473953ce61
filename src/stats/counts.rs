//! Anytime-valid comparison of bad-event rates between canary and baseline.
//!
//! `ratio_test(steps, &RatioTest)` walks the per-step counts of the window once,
//! from the first step to the last, and returns the decision as of the last step
//! together with the evidence path, so that any number of looks at any time keep
//! the promised error rates.
//!
//! # The model
//!
//! Call `rho` the canary's bad-event rate divided by the baseline's. In step `t`
//! the canary served `n_c` events and the baseline `n_b`; `K` bad events happened
//! on the two sides together. Given `K`, the canary's share of the bad events is
//! `Binomial(K, p_t(rho))` with `p_t(rho) = rho n_c / (rho n_c + n_b)` (the
//! conditional test for two Poisson rates, Lehmann & Romano, *Testing Statistical
//! Hypotheses*, 3rd ed., section 4.6). Conditioning on `K` and on the step's
//! traffic removes the unknown baseline rate, so the test stays valid when the
//! traffic split changes between steps and when shared noise moves both sides'
//! rates together.
//!
//! When both sides are binomial (a latency fraction is "slow requests out of all
//! requests") the exact conditional law is Fisher's noncentral hypergeometric.
//! At `rho = 1` it is the law of sampling without replacement, which Hoeffding
//! (1963, "Probability inequalities for sums of bounded random variables",
//! theorem 4) shows is dominated in convex order by sampling with replacement:
//! every likelihood-ratio e-value below is a convex function of the canary's
//! count, so its expectation under the hypergeometric law is at most its
//! binomial expectation, at most 1. The binomial model therefore stays
//! conservative at `rho = 1` for large bad fractions too; the Monte Carlo tests
//! check this with binomial draws at a 10% bad fraction.
//!
//! # The e-processes
//!
//! For a null boundary `rho0` and an alternative `rho1 > rho0`, the product over
//! steps of the likelihood ratio of `Binomial(K, p_t(rho1))` against
//! `Binomial(K, p_t(rho0))` is a nonnegative supermartingale under every
//! `rho <= rho0`, because the binomial family has a monotone likelihood ratio
//! in `p` and `p_t` increases with `rho`. A mixture over alternatives with
//! fixed prior weights is again one (Lindon & Malek, "Anytime-valid inference
//! for multinomial count data", NeurIPS 2022; Howard, Ramdas, McAuliffe &
//! Sekhon, "Time-uniform, nonparametric, nonasymptotic confidence sequences",
//! Ann. Stat. 2021). Ville's inequality (Ville 1939) bounds the chance that
//! it ever reaches `1/alpha` by `alpha`, however often and whenever one looks.
//!
//! Steps where no bad event happened, where a side served nothing, or where a
//! count is NaN, infinite or negative carry no evidence: they multiply the
//! e-values by exactly 1. Counts may be fractional (they come from counter
//! increases); the likelihood ratio is evaluated at the real count, which is
//! the natural continuous extension and matches the integer case exactly.

use super::Direction;

/// Bad and total events of both sides during one step of the window.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct StepCounts {
    /// Bad events on the canary during the step.
    pub canary_bad: f64,
    /// All events on the canary during the step.
    pub canary_total: f64,
    /// Bad events on the baseline during the step.
    pub baseline_bad: f64,
    /// All events on the baseline during the step.
    pub baseline_total: f64,
}

/// What to test: is the canary's bad-event rate, relative to the baseline's,
/// changed by more than `tolerance` in the harmful `direction`?
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RatioTest {
    /// Which change of the rate harms users.
    pub direction: Direction,
    /// Relative change still acceptable: 0.1 means the canary's rate may be up
    /// to 1.1 times (or, for a decrease, down to 0.9 times) the baseline's.
    pub tolerance: f64,
    /// Probability of declaring harm on a canary within tolerance, over all looks.
    /// The same level bounds the chance of declaring a canary within tolerance
    /// when it is worse than tolerated.
    pub alpha: f64,
}

impl RatioTest {
    /// Builds a test after checking that `alpha` lies in (0, 1) and that the
    /// tolerance is finite, not negative and, for a decrease, below 1.
    pub fn new(
        direction: Direction,
        tolerance: f64,
        alpha: f64,
    ) -> Result<RatioTest, super::StatsError> {
        if !(alpha > 0.0 && alpha < 1.0) {
            return Err(super::StatsError::BadLevel {
                name: "alpha",
                value: alpha,
            });
        }
        let tolerance_ok = tolerance.is_finite()
            && tolerance >= 0.0
            && (direction == Direction::Increase || tolerance < 1.0);
        if !tolerance_ok {
            return Err(super::StatsError::BadTolerance { value: tolerance });
        }
        Ok(RatioTest {
            direction,
            tolerance,
            alpha,
        })
    }
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
///
/// Rates and the estimate are NaN, and the interval is `[0, inf]`, when the
/// window holds no usable evidence; JSON shows such numbers as `null`.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct RatioOutcome {
    /// Harm, within tolerance or undecided, as of the last step.
    pub decision: Decision,
    /// Step at which the decision's boundary was first crossed.
    pub decided_at_step: Option<usize>,
    /// Canary bad events over canary events, pooled over the window.
    pub canary_rate: f64,
    /// Baseline bad events over baseline events, pooled over the window.
    pub baseline_rate: f64,
    /// Point estimate of canary rate / baseline rate (conditional maximum likelihood).
    pub ratio_estimate: f64,
    /// Anytime-valid lower confidence bound for the ratio at level 1 - alpha,
    /// intersected over the window's steps: the ratio lies above it with
    /// probability at least 1 - alpha at every look. It is the inversion of the
    /// e-process that decides on that side, so for a direction of increase
    /// "harm" and "lower bound above the tolerance" say the same thing.
    pub ratio_lower: f64,
    /// Anytime-valid upper confidence bound for the ratio at level 1 - alpha,
    /// intersected over the window's steps; together with `ratio_lower` a
    /// (1 - 2 alpha) confidence sequence.
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

/// Alternatives of the harm e-process, as multiples of the null boundary
/// `1 + tolerance` (or divisors of `1 - tolerance` for a decrease), with their
/// prior weights. The weight sits on the regressions worth catching fast
/// (1.5x to 3x the boundary); the 5x and 10x tails keep power for
/// catastrophic changes. Chosen with the Monte Carlo power runs of
/// `benches/time_to_rollback.rs` (a denser nine-point grid and other weights
/// changed times to rollback by under 2%); any fixed weights keep validity.
const HARM_ALTERNATIVES: [(f64, f64); 6] = [
    (1.25, 0.08),
    (1.5, 0.22),
    (2.0, 0.35),
    (3.0, 0.25),
    (5.0, 0.07),
    (10.0, 0.03),
];

/// Alternatives of the safety e-process, as divisors of the null boundary
/// `1 + tolerance` (or multiples of `1 - tolerance` for a decrease), with their
/// prior weights. A healthy canary sits at ratio 1, so the weight is on
/// alternatives just inside the tolerance.
const SAFETY_ALTERNATIVES: [(f64, f64); 6] = [
    (1.05, 0.20),
    (1.1, 0.25),
    (1.25, 0.25),
    (1.5, 0.15),
    (2.0, 0.10),
    (4.0, 0.05),
];

/// Largest natural log of an e-value that is reported; e^700 is about 1e304,
/// which keeps every reported e-value finite.
const MAX_LOG_EVALUE: f64 = 700.0;

/// Relative precision of the confidence-sequence bounds on the log scale.
const BOUND_PRECISION_LOG: f64 = 1e-6;

/// Log-ratios beyond which a bound is reported as 0 or infinity.
const LOG_RATIO_LIMIT: f64 = 40.0;

/// One step reduced to what the conditional likelihood needs.
#[derive(Clone, Copy, Debug)]
struct Informative {
    /// Canary bad events.
    canary_bad: f64,
    /// Baseline bad events.
    baseline_bad: f64,
    /// ln(canary_total / baseline_total): p_t(rho) = logistic(ln rho + log_share_odds).
    log_share_odds: f64,
}

/// Keeps the steps that carry evidence; see the module notes for which do not.
fn informative(counts: &StepCounts) -> Option<Informative> {
    let values = [
        counts.canary_bad,
        counts.canary_total,
        counts.baseline_bad,
        counts.baseline_total,
    ];
    if values.iter().any(|v| !v.is_finite() || *v < 0.0) {
        return None;
    }
    if counts.canary_total <= 0.0 || counts.baseline_total <= 0.0 {
        return None;
    }
    if counts.canary_bad + counts.baseline_bad <= 0.0 {
        return None;
    }
    Some(Informative {
        canary_bad: counts.canary_bad,
        baseline_bad: counts.baseline_bad,
        log_share_odds: (counts.canary_total / counts.baseline_total).ln(),
    })
}

/// ln(1 + e^x) without overflow.
fn softplus(x: f64) -> f64 {
    if x > 0.0 {
        x + (-x).exp().ln_1p()
    } else {
        x.exp().ln_1p()
    }
}

/// Conditional log-likelihood of one step at log-ratio `theta`:
/// `c ln p + b ln(1 - p)` with `p = logistic(theta + log_share_odds)`.
fn step_log_likelihood(step: &Informative, theta: f64) -> f64 {
    let x = theta + step.log_share_odds;
    -step.canary_bad * softplus(-x) - step.baseline_bad * softplus(x)
}

/// A mixture e-process for the null "log-ratio on one side of `null_log_ratio`",
/// with alternatives on the other side at the given log offsets.
struct MixtureProcess {
    /// Log of the null boundary ratio.
    null_log_ratio: f64,
    /// Alternative log-ratios.
    alternative_log_ratios: Vec<f64>,
    /// Log prior weights, normalised to sum to 1.
    log_weights: Vec<f64>,
    /// Running log-likelihood ratio of each alternative against the null.
    log_likelihood_ratios: Vec<f64>,
}

/// Which side of the boundary the alternatives lie on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Side {
    /// Alternatives above the boundary: the null is "ratio at most the boundary".
    Above,
    /// Alternatives below the boundary: the null is "ratio at least the boundary".
    Below,
}

impl MixtureProcess {
    /// A fresh e-process (value 1) with `alternatives` as (factor > 1, weight).
    fn new(null_log_ratio: f64, side: Side, alternatives: &[(f64, f64)]) -> MixtureProcess {
        let total_weight: f64 = alternatives.iter().map(|(_, w)| w).sum();
        let sign = match side {
            Side::Above => 1.0,
            Side::Below => -1.0,
        };
        MixtureProcess {
            null_log_ratio,
            alternative_log_ratios: alternatives
                .iter()
                .map(|(factor, _)| null_log_ratio + sign * factor.ln())
                .collect(),
            log_weights: alternatives
                .iter()
                .map(|(_, w)| (w / total_weight).ln())
                .collect(),
            log_likelihood_ratios: vec![0.0; alternatives.len()],
        }
    }

    /// Multiplies in the likelihood ratios of one informative step.
    fn update(&mut self, step: &Informative) {
        let null = step_log_likelihood(step, self.null_log_ratio);
        for (llr, theta) in self
            .log_likelihood_ratios
            .iter_mut()
            .zip(&self.alternative_log_ratios)
        {
            *llr += step_log_likelihood(step, *theta) - null;
        }
    }

    /// Natural log of the current e-value, sum_j w_j exp(llr_j), computed stably.
    fn log_evalue(&self) -> f64 {
        let terms = self
            .log_weights
            .iter()
            .zip(&self.log_likelihood_ratios)
            .map(|(w, l)| w + l);
        let max = terms.clone().fold(f64::NEG_INFINITY, f64::max);
        if !max.is_finite() {
            return max;
        }
        max + terms.map(|t| (t - max).exp()).sum::<f64>().ln()
    }
}

/// The harm and safety e-processes the direction calls for.
struct Processes {
    /// Harm e-processes; the harm e-value is their average.
    harm: Vec<MixtureProcess>,
    /// Safety e-processes; each must have crossed for a safety decision.
    safety: Vec<MixtureProcess>,
}

impl Processes {
    fn new(test: &RatioTest) -> Processes {
        let upper = (1.0 + test.tolerance).ln();
        // A decrease tolerance of 1 or more leaves no harmful ratio; ln(0) is
        // -inf, and such a process never moves off 1 (see `update_all`).
        let lower = (1.0 - test.tolerance).max(0.0).ln();
        let harm_up = || MixtureProcess::new(upper, Side::Above, &HARM_ALTERNATIVES);
        let harm_down = || MixtureProcess::new(lower, Side::Below, &HARM_ALTERNATIVES);
        let safe_up = || MixtureProcess::new(upper, Side::Below, &SAFETY_ALTERNATIVES);
        let safe_down = || MixtureProcess::new(lower, Side::Above, &SAFETY_ALTERNATIVES);
        match test.direction {
            Direction::Increase => Processes {
                harm: vec![harm_up()],
                safety: vec![safe_up()],
            },
            Direction::Decrease => Processes {
                harm: vec![harm_down()],
                safety: vec![safe_down()],
            },
            // Harm: under "within tolerance" both one-sided harm processes are
            // supermartingales, so their average is one too and needs no split
            // of alpha (it dominates Bonferroni's max >= 2/alpha).
            // Safety: an intersection-union test (Berger 1982): a ratio outside
            // the band lies on one side, and that side's process must cross.
            Direction::Either => Processes {
                harm: vec![harm_up(), harm_down()],
                safety: vec![safe_up(), safe_down()],
            },
        }
    }

    fn update_all(&mut self, step: &Informative) {
        for process in self.harm.iter_mut().chain(self.safety.iter_mut()) {
            if process.null_log_ratio.is_finite() {
                process.update(step);
            }
        }
    }

    /// Log of the harm e-value: the average of the harm processes.
    fn log_harm(&self) -> f64 {
        let logs: Vec<f64> = self.harm.iter().map(MixtureProcess::log_evalue).collect();
        log_mean_exp(&logs)
    }
}

/// ln(mean(exp(values))), computed stably.
fn log_mean_exp(values: &[f64]) -> f64 {
    let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if !max.is_finite() || values.is_empty() {
        return max;
    }
    max + (values.iter().map(|v| (v - max).exp()).sum::<f64>() / values.len() as f64).ln()
}

/// e^x for a log e-value, saturating so that reported e-values stay finite.
fn evalue(log_value: f64) -> f64 {
    log_value.min(MAX_LOG_EVALUE).exp()
}

/// Runs the sequential test over the window's steps.
///
/// The decision as of step `k` depends only on `steps[..=k]`: a look recomputes
/// from the window and gets the answer it would have had, had it looked then.
/// Harm is declared once the harm e-value has reached `1/alpha` at any step;
/// within tolerance once every safety e-process has reached it (harm wins if
/// both). Invalid levels (alpha outside (0, 1), NaN or negative tolerance)
/// never decide; build the test with [`RatioTest::new`] to reject them early.
pub fn ratio_test(steps: &[StepCounts], test: &RatioTest) -> RatioOutcome {
    let parameters_ok =
        test.alpha > 0.0 && test.alpha < 1.0 && test.tolerance.is_finite() && test.tolerance >= 0.0;
    let threshold = if parameters_ok {
        1.0 / test.alpha
    } else {
        f64::INFINITY
    };
    let log_threshold = threshold.ln();

    let mut processes = Processes::new(test);
    let mut safety_max_logs = vec![0.0_f64; processes.safety.len()];
    let mut harm_max_log = 0.0_f64;
    let mut harm_crossed_at = None;
    let mut safety_crossed_at = None;
    let mut evidence = Vec::new();
    let mut path = Vec::with_capacity(steps.len());

    for (index, counts) in steps.iter().enumerate() {
        if let Some(step) = informative(counts) {
            processes.update_all(&step);
            evidence.push(step);
        }
        let log_harm = processes.log_harm();
        let safety_logs: Vec<f64> = processes
            .safety
            .iter()
            .map(MixtureProcess::log_evalue)
            .collect();
        harm_max_log = harm_max_log.max(log_harm);
        for (max, current) in safety_max_logs.iter_mut().zip(&safety_logs) {
            *max = max.max(*current);
        }
        if harm_crossed_at.is_none() && harm_max_log >= log_threshold {
            harm_crossed_at = Some(index);
        }
        let safety_running = safety_max_logs
            .iter()
            .copied()
            .fold(f64::INFINITY, f64::min);
        if safety_crossed_at.is_none() && safety_running >= log_threshold {
            safety_crossed_at = Some(index);
        }
        let safety_now = safety_logs.iter().copied().fold(f64::INFINITY, f64::min);
        path.push(EvidencePoint {
            step: index,
            harm: evalue(log_harm),
            safety: evalue(safety_now),
        });
    }

    let (decision, decided_at_step) = match (harm_crossed_at, safety_crossed_at) {
        (Some(at), _) => (Decision::Harm, Some(at)),
        (None, Some(at)) => (Decision::WithinTolerance, Some(at)),
        (None, None) => (Decision::Undecided, None),
    };
    let safety_max_log = safety_max_logs
        .iter()
        .copied()
        .fold(f64::INFINITY, f64::min);

    let (canary_rate, baseline_rate) = pooled_rates(steps);
    let ratio_estimate = conditional_mle(&evidence);
    let alpha_for_bounds = if parameters_ok { test.alpha } else { 0.05 };
    let (ratio_lower, ratio_upper) = confidence_bounds(&evidence, test.direction, alpha_for_bounds);

    RatioOutcome {
        decision,
        decided_at_step,
        canary_rate,
        baseline_rate,
        ratio_estimate,
        ratio_lower,
        ratio_upper,
        harm_evidence: evalue(harm_max_log),
        safety_evidence: evalue(safety_max_log),
        threshold,
        path,
    }
}

/// Bad over total events per side, pooled over the steps whose counts are all
/// finite and not negative.
fn pooled_rates(steps: &[StepCounts]) -> (f64, f64) {
    let mut sums = [0.0_f64; 4];
    for counts in steps {
        let values = [
            counts.canary_bad,
            counts.canary_total,
            counts.baseline_bad,
            counts.baseline_total,
        ];
        if values.iter().all(|v| v.is_finite() && *v >= 0.0) {
            for (sum, value) in sums.iter_mut().zip(values) {
                *sum += value;
            }
        }
    }
    let rate = |bad: f64, total: f64| if total > 0.0 { bad / total } else { f64::NAN };
    (rate(sums[0], sums[1]), rate(sums[2], sums[3]))
}

/// Conditional maximum-likelihood estimate of the ratio: the root in theta of
/// the score sum_t (c_t - K_t p_t(theta)), which increases with theta.
fn conditional_mle(evidence: &[Informative]) -> f64 {
    let canary_bad: f64 = evidence.iter().map(|s| s.canary_bad).sum();
    let baseline_bad: f64 = evidence.iter().map(|s| s.baseline_bad).sum();
    if evidence.is_empty() {
        return f64::NAN;
    }
    if canary_bad <= 0.0 {
        return 0.0;
    }
    if baseline_bad <= 0.0 {
        return f64::INFINITY;
    }
    let expected_minus_observed = |theta: f64| {
        evidence
            .iter()
            .map(|s| {
                let p = 1.0 / (1.0 + (-(theta + s.log_share_odds)).exp());
                (s.canary_bad + s.baseline_bad) * p
            })
            .sum::<f64>()
            - canary_bad
    };
    let theta = bisect(
        expected_minus_observed,
        -LOG_RATIO_LIMIT,
        LOG_RATIO_LIMIT,
        1e-10,
    );
    theta.exp()
}

/// Root of an increasing function on [low, high] by bisection, to `precision`.
fn bisect(f: impl Fn(f64) -> f64, mut low: f64, mut high: f64, precision: f64) -> f64 {
    while high - low > precision {
        let middle = 0.5 * (low + high);
        if f(middle) < 0.0 {
            low = middle;
        } else {
            high = middle;
        }
    }
    0.5 * (low + high)
}

/// The largest log e-value, over every prefix of the evidence (and the start,
/// where it is 0), of the mixture against the boundary `null_log_ratio` with
/// `alternatives` on `side`. Using the running maximum makes the bounds below
/// the running intersection of the confidence sequence, consistent with
/// decisions that are reached once an e-value has ever crossed.
fn running_max_log_evalue(
    evidence: &[Informative],
    null_log_ratio: f64,
    side: Side,
    alternatives: &[(f64, f64)],
) -> f64 {
    let mut process = MixtureProcess::new(null_log_ratio, side, alternatives);
    let mut max = 0.0_f64;
    for step in evidence {
        process.update(step);
        max = max.max(process.log_evalue());
    }
    max
}

/// Anytime-valid one-sided confidence bounds for the ratio, each at level
/// 1 - alpha and intersected over the steps: the ratios that the mixture on
/// that side has never rejected (Howard et al. 2021, section 3: inverting a
/// family of e-processes gives a confidence sequence; its running
/// intersection is one too). Each bound inverts the process the decisions use
/// on that side (harm alternatives for the harmful side, safety alternatives
/// for the other), so a bound beyond the tolerance and a decision agree.
/// A one-sided e-value falls as its boundary moves toward the alternatives,
/// so each bound is found by bisection over the whole range.
fn confidence_bounds(evidence: &[Informative], direction: Direction, alpha: f64) -> (f64, f64) {
    if evidence.is_empty() {
        return (0.0, f64::INFINITY);
    }
    let log_threshold = (1.0 / alpha).ln();
    let (below_alternatives, above_alternatives) = match direction {
        Direction::Increase => (&HARM_ALTERNATIVES, &SAFETY_ALTERNATIVES),
        Direction::Decrease => (&SAFETY_ALTERNATIVES, &HARM_ALTERNATIVES),
        Direction::Either => (&HARM_ALTERNATIVES, &HARM_ALTERNATIVES),
    };

    // Lower bound: below it the "above" process has crossed at some step.
    let rejects_below = |theta: f64| {
        running_max_log_evalue(evidence, theta, Side::Above, below_alternatives) >= log_threshold
    };
    let lower = if rejects_below(-LOG_RATIO_LIMIT) {
        let theta = bisect(
            |theta| if rejects_below(theta) { -1.0 } else { 1.0 },
            -LOG_RATIO_LIMIT,
            LOG_RATIO_LIMIT,
            BOUND_PRECISION_LOG,
        );
        theta.exp()
    } else {
        0.0
    };
    // Upper bound: above it the "below" process has crossed at some step.
    let rejects_above = |theta: f64| {
        running_max_log_evalue(evidence, theta, Side::Below, above_alternatives) >= log_threshold
    };
    let upper = if rejects_above(LOG_RATIO_LIMIT) {
        let theta = bisect(
            |theta| if rejects_above(theta) { 1.0 } else { -1.0 },
            -LOG_RATIO_LIMIT,
            LOG_RATIO_LIMIT,
            BOUND_PRECISION_LOG,
        );
        theta.exp()
    } else {
        f64::INFINITY
    };
    (lower, upper)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Pins the stable softplus against the direct formula where both are exact.
    #[test]
    fn softplus_matches_direct_formula() {
        for x in [-30.0_f64, -2.0, 0.0, 1.5, 30.0] {
            let direct = (1.0 + x.exp()).ln();
            assert!((softplus(x) - direct).abs() < 1e-12, "x = {x}");
        }
        assert!((softplus(800.0) - 800.0).abs() < 1e-12);
    }

    // Pins that an informative step needs bad events and traffic on both sides.
    #[test]
    fn steps_without_evidence_are_skipped() {
        let empty = StepCounts::default();
        assert!(informative(&empty).is_none());
        let one_sided = StepCounts {
            canary_bad: 1.0,
            canary_total: 10.0,
            baseline_bad: 0.0,
            baseline_total: 0.0,
        };
        assert!(informative(&one_sided).is_none());
        let nan = StepCounts {
            canary_bad: f64::NAN,
            ..one_sided
        };
        assert!(informative(&nan).is_none());
    }
}
