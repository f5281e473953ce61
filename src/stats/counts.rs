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
//! requests", and errors are "failed requests out of all requests") the exact
//! conditional law given `K` is Fisher's noncentral hypergeometric, not the
//! binomial above. The likelihood ratios stay valid all the same, without
//! conditioning on `K`: given the step's traffic, let the canary's bad count
//! be `Binomial(n_c, q_c)` and the baseline's `Binomial(n_b, q_b)`,
//! independent, with `q_c <= rho0 q_b` (within tolerance). One step's ratio
//! is `x^c y^b` with `x = p1 / p0` and `y = (1 - p1) / (1 - p0)`, so
//!
//! ```text
//! E[x^c y^b] = (1 + q_c (x - 1))^n_c (1 + q_b (y - 1))^n_b
//!           <= exp(n_c q_c (x - 1) + n_b q_b (y - 1))             (1 + u <= e^u)
//!            = exp((p1 - p0) (rho0 n_c + n_b) (q_c / rho0 - q_b)) <= 1
//! ```
//!
//! because `p0 = rho0 n_c / (rho0 n_c + n_b)` and, for alternatives above the
//! boundary, `p1 > p0` (below it both signs flip). This holds at every
//! tolerance and every bad fraction, for every alternative, so every mixture
//! below is a supermartingale under binomial draws too; the unit test
//! `expected_likelihood_ratio_over_both_binomials_is_at_most_one` checks it
//! by exact summation.
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

/// The evidence after one step, as the decisions read it: at a spike point
/// each e-value is the smallest of its last values (see [`PERSISTENCE_STEPS`]).
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct EvidencePoint {
    /// Index of the step in the window.
    pub step: usize,
    /// Persisted e-value against "within tolerance" (large means harm).
    pub harm: f64,
    /// Persisted e-value against "worse than tolerated" (large means safe).
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
    /// Anytime-valid lower confidence bound for the ratio, intersected over
    /// the window's steps: the ratio lies above it with probability at least
    /// 1 - alpha (1 - alpha / 2 for `either`) at every look, if it stayed
    /// constant. It is the inversion of the e-process that decides on that
    /// side, so for a direction of increase "harm" and "lower bound above the
    /// tolerance" say the same thing.
    pub ratio_lower: f64,
    /// Anytime-valid upper confidence bound for the ratio, at the same level
    /// as `ratio_lower` and intersected over the window's steps; the pair
    /// holds together with `confidence`.
    pub ratio_upper: f64,
    /// Largest persisted harm e-value seen on the path.
    pub harm_evidence: f64,
    /// Largest persisted safety e-value seen on the path.
    pub safety_evidence: f64,
    /// The e-value a side must reach to decide (1 / alpha).
    pub threshold: f64,
    /// The confidence with which `ratio_lower` and `ratio_upper` hold
    /// together, at every look: 1 - 2 alpha for a direction of increase or
    /// decrease (each bound at 1 - alpha), 1 - alpha for `either` (each bound
    /// at 1 - alpha / 2).
    pub confidence: f64,
    /// The evidence after every step.
    pub path: Vec<EvidencePoint>,
}

/// Alternatives of the harm e-process, as multiples of the null boundary
/// `1 + tolerance` (or divisors of `1 - tolerance` for a decrease), with their
/// prior weights. The weight sits on the regressions worth catching fast
/// (2x and 3x the boundary); 1.25x and 1.5x keep power for small ones, the
/// 5x and 10x tails for catastrophic changes. Chosen with the Monte Carlo
/// power runs of `benches/time_to_rollback.rs` and `benches/scrape_timing.rs`
/// (docs/statistics.md, "The 3x median"): moving 0.10 of weight from 1.25x,
/// 1.5x, 5x and 10x to 2x and 3x (from 0.05, 0.15, 0.40, 0.28, 0.08, 0.04)
/// brought, with [`SPIKE_SIGMAS`], the idealised 3x median from the start
/// from 90 s to 60 s and kept the 2x medians (180 s from the start, 270 s
/// from minute 10); it slowed 1.5x from 630 s to 660 s. On simulated scrapes
/// the 3x median stays at 90 s, as it does for a test that knows the ratio. A denser nine-point grid changed no median. Any fixed
/// weights keep validity (Lindon & Malek 2022).
const HARM_ALTERNATIVES: [(f64, f64); 6] = [
    (1.25, 0.02),
    (1.5, 0.08),
    (2.0, 0.45),
    (3.0, 0.35),
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
#[derive(Clone, Copy, Debug, PartialEq)]
struct Informative {
    /// Canary bad events.
    canary_bad: f64,
    /// Baseline bad events.
    baseline_bad: f64,
    /// ln(canary_total / baseline_total): p_t(rho) = logistic(ln rho + log_share_odds).
    log_share_odds: f64,
}

/// Whether a step's counts are unknown: a count that is missing (NaN),
/// infinite or negative, as a failed query or a broken series gives.
fn is_unknown(counts: &StepCounts) -> bool {
    [
        counts.canary_bad,
        counts.canary_total,
        counts.baseline_bad,
        counts.baseline_total,
    ]
    .iter()
    .any(|v| !v.is_finite() || *v < 0.0)
}

/// Keeps the steps that carry evidence; see the module notes for which do
/// not. `ln` is the natural log (`f64::ln`, or the same bit for bit: it may be
/// read from a [`LnMemo`]).
fn informative(counts: &StepCounts, ln: &mut impl FnMut(f64) -> f64) -> Option<Informative> {
    if is_unknown(counts) {
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
        log_share_odds: ln(counts.canary_total / counts.baseline_total),
    })
}

/// The last few natural logs computed, by the bits of their arguments, for
/// the blocks of windows walked side by side (see [`ratio_paths`]): their
/// traffic shares are logs of the same request counts, so the windows after
/// the first read them here. A log is reused only for the same argument, so
/// it is `f64::ln`'s bit for bit.
#[derive(Debug, Default)]
struct LnMemo {
    /// `(argument's bits, its log)`, written in turn.
    kept: [(u64, f64); LN_MEMO_ENTRIES],
    /// How many were ever written (the next to write is this modulo the size).
    written: usize,
}

/// The logs a [`LnMemo`] keeps: a step's blocks take up to three.
const LN_MEMO_ENTRIES: usize = 4;

impl LnMemo {
    /// `x.ln()`, from the memo when it holds it.
    fn ln(&mut self, x: f64) -> f64 {
        let bits = x.to_bits();
        let filled = self.written.min(LN_MEMO_ENTRIES);
        if let Some((_, value)) = self.kept[..filled].iter().find(|(b, _)| *b == bits) {
            return *value;
        }
        let value = x.ln();
        self.kept[self.written % LN_MEMO_ENTRIES] = (bits, value);
        self.written += 1;
        value
    }
}

/// What one step of the window contributes once steps in which a side
/// reported nothing are carried forward (see [`aligned_steps`]).
#[derive(Clone, Copy, Debug, PartialEq)]
struct AlignedStep {
    /// The evidence to multiply in at this step, if any.
    evidence: Option<Informative>,
    /// Whether both sides served traffic by this step since the last such
    /// step, so both sides' scrapes have moved on: the points that
    /// [`Persisted`] and the restarts count.
    advancing: bool,
    /// Whether this point's block holds more bad events than the blocks
    /// before it make plausible (see [`is_spike`]): it may hold part of a
    /// shared burst that the other side counts at the next point.
    spike: bool,
    /// Whether this point's block or the one before it is a spike: a
    /// restart here may start between the two halves of a burst. `None` for
    /// the window's first block, which has no blocks before it: whether it
    /// is a spike is judged in hindsight, against the second block
    /// (`first_block_spike`). At the second point the block before is the
    /// first, which counts as a spike, as it does for persistence: against
    /// the second block alone it would not stand out when the two hold the
    /// two halves of one burst.
    near_spike: Option<bool>,
    /// At the second point only: whether the first block is a spike
    /// against the second, for restarts whose first point is the first.
    first_block_spike: Option<bool>,
}

/// Blocks whose pooled bad fraction is the reference for [`is_spike`].
const SPIKE_REFERENCE_BLOCKS: usize = 8;

/// Standard deviations above the reference's prediction at which a block
/// is a spike (see [`is_spike`]).
///
/// Why 3 and not 2: at the window's start the reference is one to three
/// blocks, and a reference that is low by chance made ordinary blocks of a
/// steady regression spikes, most often at the points where its evidence
/// crossed. With 2, 1.0 point fewer of the idealised 3x canaries were rolled
/// back by 60 s (51.7% against 52.7% of `benches/time_to_rollback.rs`'s,
/// with these harm weights and 3/4 on the start), and 0.8 points fewer of the
/// minute-10 2x canaries by 270 s (`benches/scrape_timing.rs`). A split burst
/// at 20 requests/s adds about 50 bad events to a block that holds about 6,
/// far above either bound.
const SPIKE_SIGMAS: f64 = 3.0;

/// Bad events a block may hold above the bound's noise term before it is a
/// spike (see [`is_spike`]). With [`SPIKE_SIGMAS`] at 3, 0.5 keeps a block of
/// 2 bad events a spike against a reference that predicts about 0.15 (a
/// leading side's half of a burst at 1 request/s holds about 2.5).
const SPIKE_SLACK_EVENTS: f64 = 0.5;

/// Whether a block with `bad` of `total` events (both sides) holds more bad
/// events than the reference blocks' pooled bad fraction makes plausible:
/// more than `lambda + 3 sqrt(lambda (1 + n / n_ref)) + 0.5`, with `lambda`
/// the count that fraction predicts for the block's `n` events and `n_ref`
/// the reference's events. A block with no reference before it is a spike.
fn is_spike(bad: f64, total: f64, reference: &std::collections::VecDeque<(f64, f64)>) -> bool {
    let (reference_bad, reference_total) = reference
        .iter()
        .fold((0.0, 0.0), |(b, t), (rb, rt)| (b + rb, t + rt));
    if reference_total <= 0.0 {
        return true;
    }
    let lambda = total * reference_bad / reference_total;
    // Poisson noise of the block's count and of the reference's estimate.
    let variance = lambda * (1.0 + total / reference_total);
    bad > lambda + SPIKE_SIGMAS * variance.sqrt() + SPIKE_SLACK_EVENTS
}

/// Largest factor by which a block's traffic share (canary over baseline
/// requests) may differ from the share over the steps before it (up to
/// [`SHARE_REFERENCE_STEPS`]) before the block is carried into the next step
/// (see [`aligned_steps`]).
const BLOCK_SHARE_FACTOR: f64 = 1.5;

/// Steps whose pooled traffic share is the reference for [`BLOCK_SHARE_FACTOR`].
const SHARE_REFERENCE_STEPS: usize = 8;

/// Most steps a block spans because of its share; a block closes at the
/// next step in which both sides served once it is this long.
const MAX_BLOCK_STEPS: usize = 4;

/// The window's steps grouped into blocks: a step in which one side served
/// nothing is carried into the next step, and so is a block whose
/// canary/baseline request share differs from the share of the steps before
/// it by more than [`BLOCK_SHARE_FACTOR`] (up to [`MAX_BLOCK_STEPS`]). The
/// block's counts are judged at the step that closes it.
///
/// Why: a side's counter that was not scraped during a step (a missed scrape,
/// or a scrape whose jitter moved it across the step's end) shows a short or
/// no increase there and a long one next. Without the carry, a shared burst
/// in the short window would be dropped with it, or compared at a traffic
/// share that does not hold for the burst, and be counted lopsidedly for
/// good. Blocks are formed from request counts alone, on which the test
/// conditions, so under the ideal model they keep its validity; a real change
/// of the traffic split costs at most a few steps of resolution. Steps with a
/// NaN, infinite or negative count are unknown: they carry no evidence and
/// are not carried.
fn aligned_steps(steps: &[StepCounts]) -> impl Iterator<Item = AlignedStep> + '_ {
    aligned_steps_given_ln(steps, f64::ln)
}

/// [`aligned_steps`], with `ln` for the natural log (which must be
/// `f64::ln`'s, bit for bit: it may be read from a [`LnMemo`]).
fn aligned_steps_given_ln<'a>(
    steps: &'a [StepCounts],
    mut ln: impl FnMut(f64) -> f64 + 'a,
) -> impl Iterator<Item = AlignedStep> + 'a {
    let mut aligner = Aligner::default();
    steps
        .iter()
        .map(move |counts| aligner.next(counts, &mut ln))
}

/// What [`aligned_steps`] carries from one step to the next: the block being
/// formed and the references the next block is judged against. Every
/// block's meaning depends only on the steps before it and its own, so a
/// copy taken after step `k` goes on, bit for bit, as the walk of a longer
/// window with the same first `k + 1` steps would (see [`RatioCheckpoint`]).
#[derive(Clone, Debug, Default)]
struct Aligner {
    /// The counts of the block being formed.
    carried: StepCounts,
    /// How many steps it spans so far.
    carried_steps: usize,
    /// The last known steps' request counts: the share reference.
    recent: std::collections::VecDeque<(f64, f64)>,
    /// The last blocks' bad and total counts: the spike reference.
    reference_blocks: std::collections::VecDeque<(f64, f64)>,
    /// Whether the last block was a spike.
    previous_spike: bool,
}

impl Aligner {
    /// The block reading of the next step.
    fn next(&mut self, counts: &StepCounts, ln: &mut impl FnMut(f64) -> f64) -> AlignedStep {
        if is_unknown(counts) {
            return AlignedStep {
                evidence: None,
                advancing: false,
                spike: false,
                near_spike: Some(false),
                first_block_spike: None,
            };
        }
        let (canary_before, baseline_before) = self
            .recent
            .iter()
            .fold((0.0, 0.0), |(c, b), (rc, rb)| (c + rc, b + rb));
        if self.recent.len() == SHARE_REFERENCE_STEPS {
            self.recent.pop_front();
        }
        self.recent
            .push_back((counts.canary_total, counts.baseline_total));
        let carried = &mut self.carried;
        *carried = StepCounts {
            canary_bad: carried.canary_bad + counts.canary_bad,
            canary_total: carried.canary_total + counts.canary_total,
            baseline_bad: carried.baseline_bad + counts.baseline_bad,
            baseline_total: carried.baseline_total + counts.baseline_total,
        };
        self.carried_steps += 1;
        let both_served = carried.canary_total > 0.0 && carried.baseline_total > 0.0;
        let share_off = canary_before > 0.0
            && baseline_before > 0.0
            && (ln(carried.canary_total / carried.baseline_total)
                - ln(canary_before / baseline_before))
            .abs()
                > BLOCK_SHARE_FACTOR.ln();
        if !both_served || (share_off && self.carried_steps < MAX_BLOCK_STEPS) {
            return AlignedStep {
                evidence: None,
                advancing: false,
                spike: false,
                near_spike: Some(false),
                first_block_spike: None,
            };
        }
        let block = std::mem::take(&mut self.carried);
        self.carried_steps = 0;
        let block_bad = block.canary_bad + block.baseline_bad;
        let block_total = block.canary_total + block.baseline_total;
        let reference_blocks = &mut self.reference_blocks;
        let spike = is_spike(block_bad, block_total, reference_blocks);
        // At the second point `previous_spike` is the first block's own flag,
        // true for want of a reference (see `near_spike`).
        let near_spike = (!reference_blocks.is_empty()).then_some(spike || self.previous_spike);
        let first_block_spike = (reference_blocks.len() == 1).then(|| {
            let first = reference_blocks[0];
            is_spike(
                first.0,
                first.1,
                &std::iter::once((block_bad, block_total)).collect(),
            )
        });
        self.previous_spike = spike;
        if reference_blocks.len() == SPIKE_REFERENCE_BLOCKS {
            reference_blocks.pop_front();
        }
        reference_blocks.push_back((block_bad, block_total));
        AlignedStep {
            evidence: informative(&block, ln),
            advancing: true,
            spike,
            near_spike,
            first_block_spike,
        }
    }
}

/// `(ln(1 + e^x), ln(1 + e^-x))` without overflow, from one exponential and
/// one logarithm: both are `ln(1 + e^-|x|)` plus `max(x, 0)` or `max(-x, 0)`.
/// Each is bit for bit what the direct stable form
/// (`x + ln_1p(e^-x)` for `x > 0`, `ln_1p(e^x)` otherwise) gives; the unit
/// test `softplus_pair_is_the_stable_softplus_bit_for_bit` pins it.
fn softplus_pair(x: f64) -> (f64, f64) {
    if x > 0.0 {
        let tail = (-x).exp().ln_1p();
        (x + tail, tail)
    } else if x < 0.0 {
        let tail = x.exp().ln_1p();
        (tail, -x + tail)
    } else {
        // Zero (either sign) or NaN: e^x and e^-x are the same.
        let tail = x.exp().ln_1p();
        (tail, tail)
    }
}

/// `1 / (1 + e^-x)` without overflow.
fn logistic(x: f64) -> f64 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

/// Conditional log-likelihood of one step at log-ratio `theta`:
/// `c ln p + b ln(1 - p)` with `p = logistic(theta + log_share_odds)`.
fn step_log_likelihood(step: &Informative, theta: f64) -> f64 {
    log_likelihood_given(step, softplus_pair(theta + step.log_share_odds))
}

/// [`step_log_likelihood`] given the softplus pair of `theta + log_share_odds`.
fn log_likelihood_given(step: &Informative, (up, down): (f64, f64)) -> f64 {
    -step.canary_bad * down - step.baseline_bad * up
}

/// The softplus pairs of one block at the log-ratios a walk evaluates,
/// kept for walks of other counts over the same traffic (the edges of a
/// distribution test): a block's likelihood at `theta` reads its counts only
/// through `softplus_pair(theta + log_share_odds)`, and the blocks of such
/// walks, formed from the same request counts, mostly share their log share
/// odds. Each pair is kept with the exact inputs it was computed from and is
/// reused only for those inputs, so a walk that reads it gets, bit for bit,
/// what it would have computed itself.
#[derive(Debug, Default)]
struct SoftplusMemo {
    /// The log share odds (its bits) that the current generation's pairs are at.
    log_share_odds: u64,
    /// Counts up whenever the log share odds change; 0 is never current.
    generation: u64,
    /// Per slot (one per log-ratio a walk evaluates, numbered in the order
    /// its processes evaluate them): the generation, `theta`'s bits and the pair.
    slots: Vec<(u64, u64, (f64, f64))>,
}

impl SoftplusMemo {
    /// `softplus_pair(theta + log_share_odds)`, from slot `slot` if that slot
    /// holds it for exactly these inputs, else computed and kept there.
    fn pair(&mut self, slot: usize, theta: f64, log_share_odds: f64) -> (f64, f64) {
        if self.generation == 0 || log_share_odds.to_bits() != self.log_share_odds {
            self.generation += 1;
            self.log_share_odds = log_share_odds.to_bits();
        }
        if self.slots.len() <= slot {
            self.slots.resize(slot + 1, (0, 0, (0.0, 0.0)));
        }
        let kept = &mut self.slots[slot];
        if kept.0 == self.generation && kept.1 == theta.to_bits() {
            return kept.2;
        }
        let pair = softplus_pair(theta + log_share_odds);
        *kept = (self.generation, theta.to_bits(), pair);
        pair
    }
}

/// A step's log-likelihood at `theta`, through `memo`'s slot `slot` when
/// there is a memo: bit for bit [`step_log_likelihood`] either way.
fn memo_log_likelihood(
    step: &Informative,
    theta: f64,
    memo: Option<(&mut SoftplusMemo, usize)>,
) -> f64 {
    match memo {
        Some((memo, slot)) => {
            log_likelihood_given(step, memo.pair(slot, theta, step.log_share_odds))
        }
        None => step_log_likelihood(step, theta),
    }
}

/// How an e-process restarts its evidence, e-detector style (Shin, Ramdas &
/// Rinaldo, "E-detectors: a nonparametric framework for sequential change
/// detection", 2023, section 3). With weights `pi_j` fixed in advance and
/// summing to 1, and `LR_i` the mixture's per-alternative likelihood ratios,
///
/// ```text
/// D_k = sum_a w_a sum_{j <= k} pi_j prod_{i = j..k} LR_{a,i} + sum_{j > k} pi_j
/// ```
///
/// Every restart term is 1 until its step and a product of likelihood
/// ratios after it, so each is a nonnegative supermartingale that starts at
/// 1 under the null, and so is their fixed mixture: Ville's inequality bounds
/// the chance that `D` ever reaches `1/alpha` by `alpha`, with no horizon. A
/// regression that starts late is then judged by the restart just before it,
/// without the healthy steps before it pulling its evidence down.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Restarts {
    /// Weight of the evidence counted from the window's first step.
    start_weight: f64,
    /// Steps between two restart points.
    every_steps: usize,
    /// Restart points after the first step; each gets
    /// `(1 - start_weight) / points` of the weight.
    points: usize,
}

impl Restarts {
    /// No restart: the plain mixture, all weight on the first step.
    const NONE: Restarts = Restarts {
        start_weight: 1.0,
        every_steps: 1,
        points: 0,
    };

    /// The weight of the restart at step `index` (0 if none restarts there).
    fn weight_at(&self, index: usize) -> f64 {
        if index == 0 {
            return self.start_weight;
        }
        let every = self.every_steps.max(1);
        if self.points > 0 && index.is_multiple_of(every) && index / every <= self.points {
            (1.0 - self.start_weight) / self.points as f64
        } else {
            0.0
        }
    }

    /// The weight of the restarts after step `index`, counted rather than
    /// subtracted, so that it is exactly 0 once the last one has begun (1
    /// minus the weights begun so far leaves a rounding residue near 1e-16,
    /// which would floor the e-value at about e^-37).
    fn weight_after(&self, index: usize) -> f64 {
        let every = self.every_steps.max(1);
        let begun = (index / every).min(self.points);
        (self.points - begun) as f64 * (1.0 - self.start_weight) / self.points.max(1) as f64
    }
}

/// The harm e-processes' restarts: 0.7 of the weight on the evidence from
/// the first step, the other 0.3 spread evenly (1/60 each) over a restart
/// every minute (at the default 15 s step) for the first 18 minutes. Weights
/// and points are fixed before any data is seen, which is all validity
/// needs. Chosen with `benches/scrape_timing.rs`: half on the start cost a
/// look on regressions present from the start; with 3/4 on the start,
/// restarts for 20 or 30 minutes slowed the minute-10 2x regression to
/// 300 s (past 1.5 times the 180 s from the start), and for 15 minutes they
/// slowed a minute-20 one to 450 s (360 s with 18). With the harm weights
/// moved toward 3x, 0.7 on the start (rather than 3/4) kept the minute-10
/// and minute-20 2x medians at 270 s and 360 s (390 s at minute 20 with
/// 3/4), at a cost of 0.7 points of the idealised 3x canaries rolled back
/// by 60 s (52.0% against 52.7%).
const HARM_RESTARTS: Restarts = Restarts {
    start_weight: 0.7,
    every_steps: 4,
    points: 18,
};

/// Points (steps after which both sides have reported, see
/// [`aligned_steps`]) over which evidence must persist before it counts,
/// where a burst may sit: an e-value as of a *spike* point (see
/// [`is_spike`]) is the smallest of its values at the last
/// `PERSISTENCE_STEPS + 1` points, and a restart at a spike point (or just
/// after one) starts at the least favourable of its first
/// `PERSISTENCE_STEPS + 1` points. Elsewhere the e-value counts as it is.
///
/// Under the ideal model any such choice is valid, whatever it depends on:
/// the value used is never above the plain e-detector's, to which Ville's
/// inequality applies. Gating on spikes keeps the protection where a split
/// burst can be (the leading side's half makes its block a spike) and stops
/// it costing a step at every point of a steady regression.
///
/// Why: each side's step increase covers that side's own scrape times, which
/// can lag the other side's by up to a scrape interval. A shared burst then
/// lands in one side's step before the other's; the likelihood ratio of that
/// step is lopsided, and the next point evens it out: there the lagging
/// side's first sample after the burst has come in (it is after the earlier
/// step's end, so it is in the next step in which that side reports, and
/// steps in between are carried). The product over both steps is then that
/// of the burst counted on both sides in one step, exactly so when the
/// traffic share is the same in both. One point suffices when the burst falls
/// between two consecutive scrapes of each side (for a burst shorter than
/// the scrape interval, a chance of 1 - length / interval per side); a side
/// that scrapes inside the burst splits it over two points, which the
/// Monte Carlo runs measure (docs/statistics.md).
const PERSISTENCE_STEPS: usize = 1;

/// A mixture e-process for the null "log-ratio on one side of `null_log_ratio`",
/// with alternatives on the other side at the given log offsets, restarted
/// as `restarts` says.
///
/// A restart at a spike point, or just after one (see [`PERSISTENCE_STEPS`];
/// for the window's first point, judged in hindsight at the second), starts
/// at the least favourable of the `PERSISTENCE_STEPS + 1` informative points
/// from its restart on, any other restart at its own step: with `L`
/// an alternative's log-likelihood ratio summed from the window's start, the
/// restart at step `j` contributes `pi_j exp(L_k - max(L_{j-1}, ..., L_{j+w-1}))`
/// (each term a minimum of products started at `j..=j+w`, so at most the
/// product started at `j`, which keeps the supermartingale bound). Why: a
/// restart that fell between the two halves of a burst that the sides'
/// scrapes split would see only one half, lopsided for ever; one of the
/// `w + 1` points starts after a whole burst.
#[derive(Clone, Debug)]
struct MixtureProcess {
    /// Log of the null boundary ratio.
    null_log_ratio: f64,
    /// Alternative log-ratios.
    alternative_log_ratios: Vec<f64>,
    /// Log prior weights, normalised to sum to 1.
    log_weights: Vec<f64>,
    /// Per alternative, the log-likelihood ratio against the null summed from
    /// the window's start (`L_k`).
    log_likelihood_ratios: Vec<f64>,
    /// Per alternative, log of sum_j pi_j exp(-max L) over the restarts whose
    /// starting points are all past.
    log_closed: Vec<f64>,
    /// Restarts whose starting points are not all past: the weight, the
    /// informative points still to fold in, and per alternative the largest
    /// `L` so far among its starting points.
    open: Vec<OpenRestart>,
    /// The restart weights.
    restarts: Restarts,
    /// Weight of the restarts still to come: they contribute 1 each.
    pending_weight: f64,
    /// Its log, kept beside it: every e-value reads it.
    log_pending_weight: f64,
    /// The log e-value as last computed, while nothing it is computed from
    /// has changed: a step without evidence once the restarts are past
    /// leaves it as it was, and such steps are common at the upper bucket
    /// edges of a distribution.
    known_log_evalue: std::cell::Cell<Option<f64>>,
    /// For a process that only steers the bound search (see
    /// [`Evaluation::Fused`]): per alternative, its log offset from the null
    /// and `e^offset - 1`.
    fused: Option<Vec<(f64, f64)>>,
}

/// How a [`MixtureProcess`] evaluates a step's likelihood ratios.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Evaluation {
    /// Each alternative's log-likelihood and the null's, each from its own
    /// `exp` and `ln_1p` ([`step_log_likelihood`]): the e-values every
    /// figure and decision is read from.
    Exact,
    /// One `exp` for the step and one `ln_1p` per alternative, from
    /// `ln(L_a / L_0) = c d_a - K ln(1 + p_0 (e^d_a - 1))` with `d_a` the
    /// alternative's offset from the null, `K = c + b` and `p_0` the
    /// canary's share under the null (the ratio of `(1 + e^x_a)` and
    /// `(1 + e^x_0)` is `1 + p_0 (e^d_a - 1)`). Equal to the exact form up to
    /// rounding (about 1e-12 relative over a day's steps), so it only steers
    /// [`BoundSearch`], whose answer is then confirmed with `Exact`.
    Fused,
}

/// A restart whose starting points are not all past (see [`MixtureProcess`]).
#[derive(Clone, Debug)]
struct OpenRestart {
    /// The log of its weight `pi_j`: every e-value while it is open reads it.
    log_weight: f64,
    /// Informative points still to fold into `max_log_ratios`.
    points_left: usize,
    /// Per alternative, the largest `L` among its starting points so far.
    max_log_ratios: Vec<f64>,
    /// `L` at its first point, while whether that point's block is a spike
    /// waits for the next point (the window's first block, see
    /// [`AlignedStep::near_spike`]); until then the restart counts as open,
    /// at the least favourable of its points.
    deferred: Option<Vec<f64>>,
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
    fn new(
        null_log_ratio: f64,
        side: Side,
        alternatives: &[(f64, f64)],
        restarts: Restarts,
    ) -> MixtureProcess {
        MixtureProcess::evaluated(
            null_log_ratio,
            side,
            alternatives,
            restarts,
            Evaluation::Exact,
        )
    }

    /// A fresh e-process that evaluates its steps as `evaluation` says.
    fn evaluated(
        null_log_ratio: f64,
        side: Side,
        alternatives: &[(f64, f64)],
        restarts: Restarts,
        evaluation: Evaluation,
    ) -> MixtureProcess {
        let total_weight: f64 = alternatives.iter().map(|(_, w)| w).sum();
        let sign = match side {
            Side::Above => 1.0,
            Side::Below => -1.0,
        };
        let alternative_log_ratios: Vec<f64> = alternatives
            .iter()
            .map(|(factor, _)| null_log_ratio + sign * factor.ln())
            .collect();
        let fused = (evaluation == Evaluation::Fused).then(|| {
            alternative_log_ratios
                .iter()
                .map(|theta| {
                    let offset = theta - null_log_ratio;
                    (offset, offset.exp_m1())
                })
                .collect()
        });
        MixtureProcess {
            null_log_ratio,
            alternative_log_ratios,
            log_weights: alternatives
                .iter()
                .map(|(_, w)| (w / total_weight).ln())
                .collect(),
            log_likelihood_ratios: vec![0.0; alternatives.len()],
            log_closed: vec![f64::NEG_INFINITY; alternatives.len()],
            open: Vec::new(),
            restarts,
            pending_weight: 1.0,
            log_pending_weight: 0.0,
            known_log_evalue: std::cell::Cell::new(None),
            fused,
        }
    }

    /// Starts the evidence of the restart at step `index`, if there is one;
    /// called for every step, informative or not, before [`Self::update`].
    fn begin_step(&mut self, index: usize) {
        let weight = self.restarts.weight_at(index);
        if weight <= 0.0 {
            return;
        }
        self.known_log_evalue.set(None);
        self.pending_weight = self.restarts.weight_after(index);
        self.log_pending_weight = self.pending_weight.ln();
        self.open.push(OpenRestart {
            log_weight: weight.ln(),
            points_left: PERSISTENCE_STEPS,
            max_log_ratios: self.log_likelihood_ratios.clone(),
            deferred: None,
        });
        self.close_finished();
    }

    /// Multiplies in the likelihood ratios of one step; `step` is `None`
    /// when it carries no evidence. `advancing` says whether both sides
    /// served traffic in it (see [`Persisted`]).
    fn update(&mut self, step: Option<&Informative>, aligned: &AlignedStep) {
        self.update_given_null(step.map(|s| (s, None)), aligned, |_, step, theta| {
            step_log_likelihood(step, theta)
        });
    }

    /// [`Self::update`], with the step's log-likelihood at the null when the
    /// caller has it already (processes with the same boundary share it),
    /// and its log-likelihood at alternative `a`'s log-ratio `theta` from
    /// `likelihood(a, step, theta)`, which must be [`step_log_likelihood`]'s
    /// (it may be read from a [`SoftplusMemo`]).
    fn update_given_null(
        &mut self,
        step: Option<(&Informative, Option<f64>)>,
        aligned: &AlignedStep,
        mut likelihood: impl FnMut(usize, &Informative, f64) -> f64,
    ) {
        let advancing = aligned.advancing;
        if step.is_some() || (advancing && !self.open.is_empty()) {
            self.known_log_evalue.set(None);
        }
        if let (Some((step, _)), Some(fused)) = (step, &self.fused) {
            let null_share = logistic(self.null_log_ratio + step.log_share_odds);
            let bad = step.canary_bad + step.baseline_bad;
            for (llr, (offset, growth)) in self.log_likelihood_ratios.iter_mut().zip(fused) {
                *llr += step.canary_bad * offset - bad * (null_share * growth).ln_1p();
            }
        } else if let Some((step, known_null)) = step {
            let null = known_null.unwrap_or_else(|| step_log_likelihood(step, self.null_log_ratio));
            for (a, (llr, theta)) in self
                .log_likelihood_ratios
                .iter_mut()
                .zip(&self.alternative_log_ratios)
                .enumerate()
            {
                *llr += likelihood(a, step, *theta) - null;
            }
        }
        if advancing {
            for restart in &mut self.open {
                if let Some(first_point) = restart.deferred.take() {
                    // Judged in hindsight: fold the first point in if its
                    // block was a spike (or if that cannot be told).
                    if aligned.first_block_spike != Some(false) {
                        for (max, llr) in restart.max_log_ratios.iter_mut().zip(&first_point) {
                            *max = max.max(*llr);
                        }
                    }
                    restart.points_left = restart.points_left.saturating_sub(1);
                    continue;
                }
                let Some(near_spike) = aligned.near_spike else {
                    restart.deferred = Some(self.log_likelihood_ratios.clone());
                    continue;
                };
                if near_spike {
                    for (max, llr) in restart
                        .max_log_ratios
                        .iter_mut()
                        .zip(&self.log_likelihood_ratios)
                    {
                        *max = max.max(*llr);
                    }
                }
                restart.points_left = restart.points_left.saturating_sub(1);
            }
            self.close_finished();
        }
    }

    /// Moves the restarts whose starting points are all past into `log_closed`.
    fn close_finished(&mut self) {
        // In place and in order (`retain` visits each restart once, first to
        // last), so nothing is allocated at every step.
        let log_closed = &mut self.log_closed;
        self.open.retain(|restart| {
            if restart.points_left > 0 {
                return true;
            }
            for (closed, max) in log_closed.iter_mut().zip(&restart.max_log_ratios) {
                *closed = log_add_exp(*closed, restart.log_weight - max);
            }
            false
        });
    }

    /// The log terms whose exponentials sum to the e-value, in one fixed
    /// order, handed to `read` as a slice: written once into a buffer on the
    /// stack (on the heap only when many restarts are open at once) rather
    /// than computed again for the largest and then for the sum, since this
    /// runs at every step.
    fn with_log_terms<R>(&self, read: impl FnOnce(&[f64]) -> R) -> R {
        /// Terms that fit on the stack: the pending weight and, per
        /// alternative, the closed restarts and up to nine open ones.
        const ON_STACK: usize = 64;
        let count = 1 + self.log_weights.len() * (1 + self.open.len());
        let mut stack = [0.0_f64; ON_STACK];
        let mut heap = Vec::new();
        let terms: &mut [f64] = if count <= ON_STACK {
            &mut stack[..count]
        } else {
            heap.resize(count, 0.0);
            &mut heap
        };
        terms[0] = self.log_pending_weight;
        let mut next = 1;
        for (a, ((weight, llr), closed)) in self
            .log_weights
            .iter()
            .zip(&self.log_likelihood_ratios)
            .zip(&self.log_closed)
            .enumerate()
        {
            terms[next] = weight + llr + closed;
            next += 1;
            for restart in &self.open {
                terms[next] =
                    weight + restart.log_weight + llr - restart.max_log_ratios[a].max(*llr);
                next += 1;
            }
        }
        read(terms)
    }

    /// Natural log of the current e-value, computed stably:
    /// sum_a w_a sum_j pi_j exp(L_a - max L) + pending_weight.
    fn log_evalue(&self) -> f64 {
        match self.known_log_evalue.get() {
            Some(known) => known,
            None => self.with_log_terms(|terms| {
                self.log_sum(
                    terms,
                    terms.iter().copied().fold(f64::NEG_INFINITY, f64::max),
                )
            }),
        }
    }

    /// [`Self::log_evalue`] of the terms `terms`, given the largest of them.
    fn log_sum(&self, terms: &[f64], max: f64) -> f64 {
        let value = if max.is_finite() {
            max + terms.iter().map(|t| exp_or_zero(t - max)).sum::<f64>().ln()
        } else {
            max
        };
        self.known_log_evalue.set(Some(value));
        value
    }

    /// [`Self::log_evalue`], bit for bit, or, when the e-value is surely
    /// below `floor`, an upper bound on it that is below `floor` too: the
    /// largest term plus the log of the number of terms (each term's
    /// exponential relative to the largest is at most 1), with room for
    /// rounding. Where only whether values reach `floor` matters, the sum's
    /// exponentials are then saved.
    fn log_evalue_unless_below(&self, floor: f64) -> f64 {
        if let Some(known) = self.known_log_evalue.get() {
            return known;
        }
        self.with_log_terms(|terms| {
            let (max, nan) = terms
                .iter()
                .fold((f64::NEG_INFINITY, false), |(max, nan), &t| {
                    (max.max(t), nan || t.is_nan())
                });
            if !nan && max.is_finite() {
                // ln(count) <= ceil(log2(count)) ln 2, without a logarithm.
                let count = terms.len();
                let log_count = f64::from(usize::BITS - count.saturating_sub(1).leading_zeros())
                    * std::f64::consts::LN_2;
                let bound = max + log_count + 1e-9 * (1.0 + max.abs());
                if bound < floor {
                    return bound;
                }
            }
            self.log_sum(terms, max)
        })
    }
}

/// Below this, `exp` gives +0 (the exact value is under 2^-1586, far below
/// half the smallest subnormal); the unit test `exp_is_zero_below_the_cutoff`
/// pins it for this platform's `exp`.
const EXP_ZERO_BELOW: f64 = -1100.0;

/// `x.exp()`, bit for bit, without the call where it is surely +0: an
/// e-value's terms far below its largest (an alternative the data have long
/// ruled out, a weight of 0) underflow, and `exp`'s underflow path is slow.
fn exp_or_zero(x: f64) -> f64 {
    if x < EXP_ZERO_BELOW { 0.0 } else { x.exp() }
}

/// ln(e^a + e^b), computed stably.
fn log_add_exp(a: f64, b: f64) -> f64 {
    let max = a.max(b);
    if max == f64::NEG_INFINITY {
        return max;
    }
    max + ((a - max).exp() + (b - max).exp()).ln()
}

/// At a spike point, the smallest of a log e-value's last
/// `PERSISTENCE_STEPS + 1` values at points; elsewhere its current value. It
/// starts at the e-value's initial 0 (e-value 1). The smallest of values that
/// include the current one is at most the current one, so Ville's bound still
/// holds for it.
#[derive(Clone, Debug)]
struct Persisted {
    /// The last values, oldest first.
    recent: std::collections::VecDeque<f64>,
}

impl Persisted {
    fn new() -> Persisted {
        Persisted {
            recent: std::iter::once(0.0).collect(),
        }
    }

    /// Records the value after a step; `advancing` says whether the step
    /// closed a block (both sides reported, see [`aligned_steps`]), which
    /// makes it a point, and `spike` whether that block is a spike.
    fn record(&mut self, log_value: f64, advancing: bool, spike: bool) {
        if advancing && !spike {
            self.recent.clear();
            self.recent.push_back(log_value);
        } else if advancing {
            if self.recent.len() > PERSISTENCE_STEPS {
                self.recent.pop_front();
            }
            self.recent.push_back(log_value);
        } else if let Some(last) = self.recent.back_mut() {
            // A step that closes no block carries no evidence, so the value
            // has not moved; the minimum only guards that.
            *last = last.min(log_value);
        }
    }

    /// The persisted log e-value.
    fn value(&self) -> f64 {
        self.recent.iter().copied().fold(f64::INFINITY, f64::min)
    }
}

/// The harm and safety e-processes the direction calls for.
#[derive(Clone, Debug)]
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
        let harm_up = || MixtureProcess::new(upper, Side::Above, &HARM_ALTERNATIVES, HARM_RESTARTS);
        let harm_down =
            || MixtureProcess::new(lower, Side::Below, &HARM_ALTERNATIVES, HARM_RESTARTS);
        // Safety is not restarted: a restart could only add evidence that a
        // canary is fine, and a late regression must not look fine.
        let safe_up =
            || MixtureProcess::new(upper, Side::Below, &SAFETY_ALTERNATIVES, Restarts::NONE);
        let safe_down =
            || MixtureProcess::new(lower, Side::Above, &SAFETY_ALTERNATIVES, Restarts::NONE);
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

    /// Multiplies in one step; with a memo, the step's softplus pairs are
    /// read through it (slots: the two boundaries', then each process's
    /// alternatives' in turn).
    fn update_all(
        &mut self,
        index: usize,
        aligned: &AlignedStep,
        mut memo: Option<&mut SoftplusMemo>,
    ) {
        let step = aligned.evidence.as_ref();
        // The step's log-likelihood at each boundary, computed once: a harm
        // and a safety process share each boundary.
        let mut nulls: [Option<(f64, f64)>; 2] = [None; 2];
        let mut first_slot = nulls.len();
        for process in self.harm.iter_mut().chain(self.safety.iter_mut()) {
            let slots = process.alternative_log_ratios.len();
            if process.null_log_ratio.is_finite() {
                process.begin_step(index);
                let boundary = process.null_log_ratio;
                let given = step.map(|step| {
                    let known = nulls.iter().flatten().find(|(b, _)| *b == boundary);
                    let free = nulls.iter().position(|n| n.is_none());
                    let null = known.map_or_else(
                        || {
                            let memo = match (memo.as_mut(), free) {
                                (Some(memo), Some(free)) => Some((&mut **memo, free)),
                                _ => None,
                            };
                            memo_log_likelihood(step, boundary, memo)
                        },
                        |k| k.1,
                    );
                    if known.is_none()
                        && let Some(free) = free
                    {
                        nulls[free] = Some((boundary, null));
                    }
                    (step, Some(null))
                });
                process.update_given_null(given, aligned, |a, step, theta| {
                    let slot = memo.as_mut().map(|memo| (&mut **memo, first_slot + a));
                    memo_log_likelihood(step, theta, slot)
                });
            }
            first_slot += slots;
        }
    }

    /// Log of the harm e-value: the average of the harm processes.
    fn log_harm(&self) -> f64 {
        match &self.harm[..] {
            // ln(mean(e^v)) of one value, as `log_mean_exp` computes it:
            // v + ln(e^0 / 1), exactly v + 0.
            [one] => log_mean_exp_of_one(one.log_evalue()),
            several => {
                let logs: Vec<f64> = several.iter().map(MixtureProcess::log_evalue).collect();
                log_mean_exp(&logs)
            }
        }
    }
}

/// [`log_mean_exp`] of one value, bit for bit, without its `exp` and `ln`.
fn log_mean_exp_of_one(value: f64) -> f64 {
    if value.is_finite() {
        value + 0.0
    } else {
        value
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
    // Blocks depend on the counts alone: formed once for the walk, the
    // estimate and every walk of the bound searches.
    let aligned: Vec<AlignedStep> = aligned_steps(steps).collect();
    let walk = walk_blocks(aligned.iter().copied(), test, steps.len());
    let evidence: Vec<Informative> = aligned.iter().filter_map(|s| s.evidence).collect();
    let (canary_rate, baseline_rate) = pooled_rates(steps);
    let ratio_estimate = conditional_mle(&evidence);
    let alpha_for_bounds = if parameters_ok(test) {
        test.alpha
    } else {
        0.05
    };
    let (ratio_lower, ratio_upper) = confidence_bounds(
        &aligned,
        test.direction,
        alpha_for_bounds,
        ratio_estimate.ln(),
    );

    RatioOutcome {
        decision: walk.decision,
        decided_at_step: walk.decided_at_step,
        canary_rate,
        baseline_rate,
        ratio_estimate,
        ratio_lower,
        ratio_upper,
        harm_evidence: evalue(walk.harm_max_log),
        safety_evidence: evalue(walk.safety_max_log),
        threshold: walk.threshold,
        confidence: interval_confidence(test.direction, alpha_for_bounds),
        path: walk.path,
    }
}

/// The decision of [`ratio_test`] and the step it was reached at, without
/// the estimate and the bounds (which cost a bisection each): for callers
/// that run the test on many windows, such as the Monte Carlo runs.
pub fn ratio_decision(steps: &[StepCounts], test: &RatioTest) -> (Decision, Option<usize>) {
    let walk = walk(steps, test);
    (walk.decision, walk.decided_at_step)
}

/// The evidence after every step, as [`ratio_test`]'s decisions read it
/// (persisted harm and safety e-values), without the estimate and the
/// bounds: for tests built from several ratio tests, such as the
/// distribution test of [`super::distribution`].
pub fn ratio_path(steps: &[StepCounts], test: &RatioTest) -> Vec<EvidencePoint> {
    walk(steps, test).path
}

fn parameters_ok(test: &RatioTest) -> bool {
    test.alpha > 0.0 && test.alpha < 1.0 && test.tolerance.is_finite() && test.tolerance >= 0.0
}

/// What one pass over the steps finds.
struct Walk {
    decision: Decision,
    decided_at_step: Option<usize>,
    harm_max_log: f64,
    safety_max_log: f64,
    threshold: f64,
    path: Vec<EvidencePoint>,
}

/// Runs the e-processes over the steps once: the decision, its step, the
/// largest persisted e-values and the path.
fn walk(steps: &[StepCounts], test: &RatioTest) -> Walk {
    walk_blocks(aligned_steps(steps), test, steps.len())
}

/// [`walk`] over the steps' blocks (see [`aligned_steps`]), `steps` of them.
fn walk_blocks(aligned: impl Iterator<Item = AlignedStep>, test: &RatioTest, steps: usize) -> Walk {
    let mut walker = Walker::new(test, steps);
    for aligned in aligned {
        walker.step(&aligned, None);
    }
    walker.finish()
}

/// The paths of [`ratio_path`] for several windows of the same test, walked
/// side by side a step at a time, each bit for bit its own [`ratio_path`].
///
/// Why side by side: windows of other bad counts over the same traffic (the
/// edges of a distribution test) form the same blocks with the same log share
/// odds, and a block's likelihoods at the walk's log-ratios read the counts
/// only through `softplus_pair(theta + log_share_odds)`; walked together, the
/// windows compute those pairs once a step (see [`SoftplusMemo`]) where each
/// walk alone computes them again. A window whose counts equal an earlier
/// one's, bit for bit, gets a copy of that one's path.
pub fn ratio_paths(windows: &[&[StepCounts]], test: &RatioTest) -> Vec<Vec<EvidencePoint>> {
    let same_counts = |a: &[StepCounts], b: &[StepCounts]| {
        let bits = |c: &StepCounts| {
            [
                c.canary_bad.to_bits(),
                c.canary_total.to_bits(),
                c.baseline_bad.to_bits(),
                c.baseline_total.to_bits(),
            ]
        };
        a.len() == b.len() && a.iter().zip(b).all(|(a, b)| bits(a) == bits(b))
    };
    // Per window, the earlier window whose counts it repeats, if any.
    let copies: Vec<Option<usize>> = windows
        .iter()
        .enumerate()
        .map(|(index, window)| (0..index).find(|&earlier| same_counts(windows[earlier], window)))
        .collect();
    let walked: Vec<usize> = (0..windows.len())
        .filter(|&index| copies[index].is_none())
        .collect();
    let mut walkers: Vec<Walker> = walked
        .iter()
        .map(|&index| Walker::new(test, windows[index].len()))
        .collect();
    // The windows' traffic shares are the same request counts' logs.
    let logs = std::cell::RefCell::new(LnMemo::default());
    let mut blocks: Vec<_> = walked
        .iter()
        .map(|&index| aligned_steps_given_ln(windows[index], |x| logs.borrow_mut().ln(x)))
        .collect();
    let mut memo = SoftplusMemo::default();
    let longest = windows.iter().map(|w| w.len()).max().unwrap_or(0);
    for _ in 0..longest {
        for (walker, blocks) in walkers.iter_mut().zip(&mut blocks) {
            if let Some(aligned) = blocks.next() {
                walker.step(&aligned, Some(&mut memo));
            }
        }
    }
    let mut paths: Vec<Option<Vec<EvidencePoint>>> = vec![None; windows.len()];
    for (&index, walker) in walked.iter().zip(walkers) {
        paths[index] = Some(walker.finish().path);
    }
    for (index, copy) in copies.iter().enumerate() {
        if let Some(earlier) = copy {
            paths[index] = paths[*earlier].clone();
        }
    }
    paths
        .into_iter()
        .map(|path| path.expect("every window walked or copied from an earlier one"))
        .collect()
}

/// One window's walk of [`ratio_paths`], resumable: the blocks' and the
/// e-processes' state after the steps walked so far. For tests built from
/// several ratio tests that keep their walks from one look to the next (the
/// distribution test's checkpoints, see [`super::distribution`]).
#[derive(Clone, Debug)]
pub(super) struct PathWalk {
    aligner: Aligner,
    walker: Walker,
}

impl PathWalk {
    /// A walk of `test` before its first step.
    pub(super) fn new(test: &RatioTest) -> PathWalk {
        PathWalk {
            aligner: Aligner::default(),
            walker: Walker::new(test, 0),
        }
    }
}

/// Walks each of `walks` on over the next steps of its window in
/// `windows`, side by side as [`ratio_paths`] does, and returns each walk's
/// new evidence points: what [`ratio_path`] of the whole window gives at
/// those steps, bit for bit.
pub(super) fn walk_paths_on(
    walks: &mut [PathWalk],
    windows: &[&[StepCounts]],
) -> Vec<Vec<EvidencePoint>> {
    let mut logs = LnMemo::default();
    let mut memo = SoftplusMemo::default();
    let longest = windows.iter().map(|w| w.len()).max().unwrap_or(0);
    for walk in walks.iter_mut() {
        walk.walker.path.reserve(longest);
    }
    for index in 0..longest {
        for (walk, window) in walks.iter_mut().zip(windows) {
            if let Some(counts) = window.get(index) {
                let aligned = walk.aligner.next(counts, &mut |x| logs.ln(x));
                walk.walker.step(&aligned, Some(&mut memo));
            }
        }
    }
    walks
        .iter_mut()
        .map(|walk| std::mem::take(&mut walk.walker.path))
        .collect()
}

/// One walk of [`walk`], a step at a time.
#[derive(Clone, Debug)]
struct Walker {
    threshold: f64,
    log_threshold: f64,
    processes: Processes,
    harm_persisted: Persisted,
    safety_persisted: Vec<Persisted>,
    safety_max_logs: Vec<f64>,
    harm_max_log: f64,
    harm_crossed_at: Option<usize>,
    safety_crossed_at: Option<usize>,
    /// The last step's persisted log harm and safety e-values, with their
    /// e-values.
    last_harm: Option<(f64, f64)>,
    last_safety: Option<(f64, f64)>,
    /// Steps walked (the path may hold only the last of them, see
    /// [`PathWalk`]).
    walked: usize,
    path: Vec<EvidencePoint>,
}

impl Walker {
    /// A walk of `test` before its first step, with room for `steps` steps.
    fn new(test: &RatioTest, steps: usize) -> Walker {
        let threshold = if parameters_ok(test) {
            1.0 / test.alpha
        } else {
            f64::INFINITY
        };
        let processes = Processes::new(test);
        let safety = processes.safety.len();
        Walker {
            threshold,
            log_threshold: threshold.ln(),
            processes,
            harm_persisted: Persisted::new(),
            safety_persisted: vec![Persisted::new(); safety],
            safety_max_logs: vec![0.0_f64; safety],
            harm_max_log: 0.0_f64,
            harm_crossed_at: None,
            safety_crossed_at: None,
            last_harm: None,
            last_safety: None,
            walked: 0,
            path: Vec::with_capacity(steps),
        }
    }

    /// Walks the next step, its likelihoods read through `memo` if given.
    fn step(&mut self, aligned: &AlignedStep, memo: Option<&mut SoftplusMemo>) {
        let index = self.walked;
        self.walked += 1;
        let moved_on = aligned.advancing;
        self.processes.update_all(index, aligned, memo);
        self.harm_persisted
            .record(self.processes.log_harm(), moved_on, aligned.spike);
        for (persisted, process) in self.safety_persisted.iter_mut().zip(&self.processes.safety) {
            persisted.record(process.log_evalue(), moved_on, aligned.spike);
        }
        let log_harm = self.harm_persisted.value();
        let mut safety_now = f64::INFINITY;
        self.harm_max_log = self.harm_max_log.max(log_harm);
        for (max, persisted) in self.safety_max_logs.iter_mut().zip(&self.safety_persisted) {
            let current = persisted.value();
            *max = max.max(current);
            safety_now = safety_now.min(current);
        }
        if self.harm_crossed_at.is_none() && self.harm_max_log >= self.log_threshold {
            self.harm_crossed_at = Some(index);
        }
        let safety_running = self
            .safety_max_logs
            .iter()
            .copied()
            .fold(f64::INFINITY, f64::min);
        if self.safety_crossed_at.is_none() && safety_running >= self.log_threshold {
            self.safety_crossed_at = Some(index);
        }
        // A value whose log has not moved since the last step (a step
        // without evidence) is the last step's, without its exp.
        let same_or_evalue = |log_value: f64, last: Option<(f64, f64)>| match last {
            Some((last_log, last_value)) if last_log.to_bits() == log_value.to_bits() => last_value,
            _ => evalue(log_value),
        };
        let harm = same_or_evalue(log_harm, self.last_harm);
        let safety = same_or_evalue(safety_now, self.last_safety);
        (self.last_harm, self.last_safety) = (Some((log_harm, harm)), Some((safety_now, safety)));
        self.path.push(EvidencePoint {
            step: index,
            harm,
            safety,
        });
    }

    /// A copy of the walk's state without its path (which a checkpoint
    /// keeps once), for a walk to go on from.
    fn without_path(&mut self) -> Walker {
        let path = std::mem::take(&mut self.path);
        let copy = self.clone();
        self.path = path;
        copy
    }

    /// What the walk found.
    fn finish(self) -> Walk {
        let (decision, decided_at_step) = match (self.harm_crossed_at, self.safety_crossed_at) {
            (Some(at), _) => (Decision::Harm, Some(at)),
            (None, Some(at)) => (Decision::WithinTolerance, Some(at)),
            (None, None) => (Decision::Undecided, None),
        };
        Walk {
            decision,
            decided_at_step,
            harm_max_log: self.harm_max_log,
            safety_max_log: self
                .safety_max_logs
                .iter()
                .copied()
                .fold(f64::INFINITY, f64::min),
            threshold: self.threshold,
            path: self.path,
        }
    }
}

/// The result of [`final_look_test`].
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct FinalLookOutcome {
    /// Chance, were the canary at the tolerance boundary, of bad events
    /// falling on the canary at least as lopsidedly as they did.
    pub p_value: f64,
    /// Whether `p_value` is at most the test's alpha: the canary is worse
    /// than tolerated.
    pub harm: bool,
}

/// Total bad events above which [`final_look_test`] bounds its tail with
/// Chernoff's inequality instead of summing it exactly (the exact sum costs
/// the square of the count); such windows are decided by the sequential
/// test long before.
const FINAL_LOOK_EXACT_LIMIT: f64 = 4000.0;

/// A fixed-horizon test of the same hypothesis as [`ratio_test`], run once
/// on the first `final_steps` steps, and `None` until the window has them.
///
/// Beside the anytime test it buys power where evidence is thin (1 request/s
/// per side): a single test at a horizon fixed in advance needs far less
/// evidence than one that may stop at any step. Because the steps it reads
/// are fixed by `final_steps`, every later look reruns the same test on the
/// same counts, so any number of looks is one test, at `test.alpha`. The
/// statistic is the canary's share of the bad events summed over the steps
/// (carried as in [`ratio_test`]); under the boundary ratio it is a sum of
/// independent binomials (the conditional model of the module notes), whose
/// tail is summed exactly. Counts are rounded to whole events.
pub fn final_look_test(
    steps: &[StepCounts],
    test: &RatioTest,
    final_steps: usize,
) -> Option<FinalLookOutcome> {
    if final_steps == 0 || steps.len() < final_steps || !parameters_ok(test) {
        return None;
    }
    let blocks: Vec<Informative> = aligned_steps(&steps[..final_steps])
        .filter_map(|s| s.evidence)
        .collect();
    let upper = (1.0 + test.tolerance).ln();
    let lower = (1.0 - test.tolerance).max(0.0).ln();
    let p_value = match test.direction {
        Direction::Increase => tail_probability(&blocks, upper, Tail::Upper),
        Direction::Decrease => tail_probability(&blocks, lower, Tail::Lower),
        Direction::Either => (2.0
            * tail_probability(&blocks, upper, Tail::Upper).min(tail_probability(
                &blocks,
                lower,
                Tail::Lower,
            )))
        .min(1.0),
    };
    Some(FinalLookOutcome {
        p_value,
        harm: p_value <= test.alpha,
    })
}

/// Which tail of the canary's count [`tail_probability`] measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Tail {
    /// At least the observed count: evidence of a higher ratio.
    Upper,
    /// At most the observed count: evidence of a lower ratio.
    Lower,
}

/// P(S >= observed) (or <=) for S the sum over blocks of
/// Binomial(K_t, logistic(log_ratio + log_share_odds_t)); 1 when there is no
/// evidence, and 1 for a boundary ratio of 0 (no harmful decrease exists).
fn tail_probability(blocks: &[Informative], log_ratio: f64, tail: Tail) -> f64 {
    if !log_ratio.is_finite() || blocks.is_empty() {
        return 1.0;
    }
    let trials: Vec<(u64, f64)> = blocks
        .iter()
        .map(|b| {
            let p = 1.0 / (1.0 + (-(log_ratio + b.log_share_odds)).exp());
            ((b.canary_bad + b.baseline_bad).round() as u64, p)
        })
        .collect();
    let observed: u64 = blocks.iter().map(|b| b.canary_bad.round() as u64).sum();
    let total: u64 = trials.iter().map(|(k, _)| k).sum();
    if total as f64 > FINAL_LOOK_EXACT_LIMIT {
        return chernoff_tail(&trials, observed as f64, tail);
    }
    // The law of S, convolved one block at a time.
    let mut law = vec![1.0_f64];
    for (k, p) in &trials {
        let binomial = binomial_pmf(*k, *p);
        let mut next = vec![0.0; law.len() + binomial.len() - 1];
        for (i, a) in law.iter().enumerate() {
            for (j, b) in binomial.iter().enumerate() {
                next[i + j] += a * b;
            }
        }
        law = next;
    }
    let observed = observed as usize;
    let sum: f64 = match tail {
        Tail::Upper => law.iter().skip(observed).sum(),
        Tail::Lower => law.iter().take(observed + 1).sum(),
    };
    sum.min(1.0)
}

/// Binomial(k, p) probabilities of 0..=k, by the ratio recurrence.
fn binomial_pmf(k: u64, p: f64) -> Vec<f64> {
    let p = p.clamp(0.0, 1.0);
    if p == 0.0 || p == 1.0 {
        let mut pmf = vec![0.0; k as usize + 1];
        pmf[if p == 0.0 { 0 } else { k as usize }] = 1.0;
        return pmf;
    }
    // In logs: ln C(k, i) + i ln p + (k - i) ln(1 - p), stable for large k.
    let mut log_term = k as f64 * (1.0 - p).ln();
    let log_odds = (p / (1.0 - p)).ln();
    let mut pmf = Vec::with_capacity(k as usize + 1);
    for i in 0..=k {
        pmf.push(log_term.exp());
        log_term += ((k - i) as f64 / (i + 1) as f64).ln() + log_odds;
    }
    pmf
}

/// Chernoff's bound on the tail: inf over lambda of
/// exp(-lambda s) prod_t (1 - p_t + p_t e^lambda)^K_t, with lambda >= 0 for
/// the upper tail and <= 0 for the lower (Chernoff 1952); found by golden
/// section on the convex log bound.
fn chernoff_tail(trials: &[(u64, f64)], observed: f64, tail: Tail) -> f64 {
    let log_bound = |lambda: f64| {
        trials
            .iter()
            .map(|(k, p)| *k as f64 * (1.0 - p + p * lambda.exp()).ln())
            .sum::<f64>()
            - lambda * observed
    };
    let (mut low, mut high) = match tail {
        Tail::Upper => (0.0, LOG_RATIO_LIMIT),
        Tail::Lower => (-LOG_RATIO_LIMIT, 0.0),
    };
    let ratio = 0.5 * (5.0_f64.sqrt() - 1.0);
    while high - low > 1e-9 {
        let left = high - ratio * (high - low);
        let right = low + ratio * (high - low);
        if log_bound(left) < log_bound(right) {
            high = right;
        } else {
            low = left;
        }
    }
    log_bound(0.5 * (low + high)).min(0.0).exp()
}

/// Bad over total events per side, pooled over the steps whose counts are all
/// finite and not negative.
fn pooled_rates(steps: &[StepCounts]) -> (f64, f64) {
    let mut sums = [0.0_f64; 4];
    for counts in steps {
        add_pooled(&mut sums, counts);
    }
    rates_of(&sums)
}

/// Conditional maximum-likelihood estimate of the ratio: the root in theta of
/// the score sum_t (c_t - K_t p_t(theta)), which increases with theta.
fn conditional_mle(evidence: &[Informative]) -> f64 {
    conditional_mle_from(evidence, &EstimateSums::none(), None).0
}

/// Root of an increasing function on [low, high] by bisection, to `precision`.
fn bisect(mut f: impl FnMut(f64) -> f64, mut low: f64, mut high: f64, precision: f64) -> f64 {
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

/// A mixture's side, alternatives and restarts: what [`MixtureProcess::new`]
/// takes beside its boundary.
type ProcessSpec = (Side, &'static [(f64, f64)], Restarts);

/// The largest persisted log e-value over the window's `aligned` steps (and
/// the start, where it is 0) of the mixture against the boundary
/// `null_log_ratio` with `alternatives` on `side`, computed exactly as
/// [`ratio_test`] computes the deciding e-values; the walk stops as soon as it
/// reaches `stop_at` (pass infinity for the whole walk). Using the running
/// maximum makes the bounds below the running intersection of the confidence
/// sequence, consistent with decisions that are reached once an e-value has
/// ever crossed.
fn running_max_log_evalue(
    aligned: &[AlignedStep],
    null_log_ratio: f64,
    (side, alternatives, restarts): ProcessSpec,
    stop_at: f64,
    evaluation: Evaluation,
) -> f64 {
    let mut walk = RunningMax::new(MixtureProcess::evaluated(
        null_log_ratio,
        side,
        alternatives,
        restarts,
        evaluation,
    ));
    for aligned in aligned {
        walk.step(aligned);
        if walk.max >= stop_at {
            break;
        }
    }
    walk.max
}

/// The walk of [`running_max_log_evalue`], a step at a time: a copy taken
/// after some steps goes on as the walk of a longer window with the same
/// first steps does, bit for bit (what [`RatioCheckpoint`] keeps of a bound).
#[derive(Clone, Debug)]
struct RunningMax {
    process: MixtureProcess,
    persisted: Persisted,
    /// The largest persisted log e-value so far (0 at the start).
    max: f64,
    /// Steps walked.
    walked: usize,
}

impl RunningMax {
    fn new(process: MixtureProcess) -> RunningMax {
        RunningMax {
            process,
            persisted: Persisted::new(),
            max: 0.0,
            walked: 0,
        }
    }

    /// Walks the next step.
    fn step(&mut self, aligned: &AlignedStep) {
        self.process.begin_step(self.walked);
        self.process.update(aligned.evidence.as_ref(), aligned);
        // A value below the running maximum cannot raise it, now or later
        // (a persisted value is the smallest of values that include it), so
        // any value below the maximum serves in its place.
        let value = self.process.log_evalue_unless_below(self.max);
        self.persisted
            .record(value, aligned.advancing, aligned.spike);
        self.max = self.max.max(self.persisted.value());
        self.walked += 1;
    }
}

/// The confidence with which the pair of bounds holds jointly: each bound
/// misses with chance at most its own alpha, so the pair misses with at most
/// their sum (1 - 2 alpha for one-sided directions, where each bound is at
/// 1 - alpha; 1 - alpha for `either`, whose bounds are each at 1 - alpha / 2).
fn interval_confidence(direction: Direction, alpha: f64) -> f64 {
    match direction {
        Direction::Increase | Direction::Decrease => 1.0 - 2.0 * alpha,
        Direction::Either => 1.0 - alpha,
    }
}

/// Anytime-valid one-sided confidence bounds for the ratio, intersected over
/// the steps: the ratios that the mixture on that side has never rejected
/// (Howard et al. 2021, section 3: inverting a family of e-processes gives a
/// confidence sequence; its running intersection is one too). A ratio counts
/// as rejected at a step only if its evidence has persisted as the decisions'
/// does (see [`PERSISTENCE_STEPS`]). Each bound inverts the process the
/// decisions use on that side (the restarted harm alternatives for the
/// harmful side, the safety alternatives for the other), so a bound beyond
/// the tolerance and a decision agree. For `either` the harm decision
/// averages two processes, so each bound is at `alpha / 2`: a bound beyond
/// the band then implies that average has crossed. A one-sided e-value falls
/// as its boundary moves toward the alternatives, so each bound is the cell of
/// the bisection grid where rejection turns (see [`BoundSearch`]), searched
/// from the estimate `estimate_log` (the log of the conditional MLE).
fn confidence_bounds(
    aligned: &[AlignedStep],
    direction: Direction,
    alpha: f64,
    estimate_log: f64,
) -> (f64, f64) {
    if !aligned.iter().any(|s| s.evidence.is_some()) {
        return (0.0, f64::INFINITY);
    }
    let (below, above, log_threshold) = bound_processes(direction, alpha);
    let spread = estimate_spread(aligned, estimate_log, log_threshold);

    // One bound: past it, the process of `side` on `spec`'s alternatives and
    // restarts has crossed at some step; `limit` when it never would.
    let bound = |side: Side, (alternatives, restarts), rejected_above: bool, limit: f64| {
        let spec = (side, alternatives, restarts);
        let search = bound_search(aligned, spec, log_threshold, rejected_above);
        let edge = if rejected_above {
            LOG_RATIO_LIMIT
        } else {
            -LOG_RATIO_LIMIT
        };
        if search.rejects(edge) {
            search.find(estimate_log, spread).exp()
        } else {
            limit
        }
    };
    // Lower bound: below it the "above" process has crossed at some step.
    let lower = bound(Side::Above, below, false, 0.0);
    // Upper bound: above it the "below" process has crossed at some step.
    let upper = bound(Side::Below, above, true, f64::INFINITY);
    (lower, upper)
}

/// The search of a bound that inverts the process of `spec` over `aligned`.
fn bound_search(
    aligned: &[AlignedStep],
    spec: ProcessSpec,
    log_threshold: f64,
    rejected_above: bool,
) -> BoundSearch<impl Fn(f64, f64, Evaluation) -> f64> {
    BoundSearch {
        evidence: move |theta: f64, stop_at: f64, evaluation: Evaluation| {
            running_max_log_evalue(aligned, theta, spec, stop_at, evaluation)
        },
        log_threshold,
        rejected_above,
    }
}

/// The alternatives and restarts whose process each bound inverts, with
/// the log of the threshold the bounds are found at: below the lower bound the
/// first (on the side above its boundary) has crossed, above the upper bound
/// the second (below it).
type BoundProcesses = (
    (&'static [(f64, f64)], Restarts),
    (&'static [(f64, f64)], Restarts),
    f64,
);

/// See [`BoundProcesses`] and [`confidence_bounds`].
fn bound_processes(direction: Direction, alpha: f64) -> BoundProcesses {
    let harm = (&HARM_ALTERNATIVES[..], HARM_RESTARTS);
    let safety = (&SAFETY_ALTERNATIVES[..], Restarts::NONE);
    let (below, above, bound_alpha) = match direction {
        Direction::Increase => (harm, safety, alpha),
        Direction::Decrease => (safety, harm, alpha),
        Direction::Either => (harm, harm, alpha / 2.0),
    };
    (below, above, (1.0 / bound_alpha).ln())
}

/// A first guess of how far a bound lies from the estimate, on the log scale:
/// the half-width a fixed-sample test at the same threshold would give,
/// `sqrt(2 ln(1/alpha) / I)` with `I` the conditional Fisher information
/// `sum K p (1 - p)` at the estimate. Only where the search starts depends on
/// it, never the bound found.
fn estimate_spread(aligned: &[AlignedStep], estimate_log: f64, log_threshold: f64) -> f64 {
    let information: f64 = aligned
        .iter()
        .filter_map(|s| s.evidence.as_ref())
        .map(|s| {
            let p = 1.0 / (1.0 + (-(estimate_log + s.log_share_odds)).exp());
            (s.canary_bad + s.baseline_bad) * p * (1.0 - p)
        })
        .sum();
    (2.0 * log_threshold / information).sqrt()
}

/// The search for one confidence bound: the log-ratio where the running
/// maximum of a mixture's persisted log e-value (`evidence(theta, stop_at)`)
/// reaches `log_threshold`, which it does for every log-ratio on one side
/// (above the bound when `rejected_above`).
///
/// The answer is the one a bisection of `[-LOG_RATIO_LIMIT, LOG_RATIO_LIMIT]`
/// to [`BOUND_PRECISION_LOG`] gives, bit for bit: that bisection halves down to
/// a grid of `2^k` equal cells, whose points are exact binary fractions, and
/// ends in the cell at whose ends rejection turns, returning its middle.
/// Rejection is monotone in the log-ratio (each step's log-likelihood ratio
/// is, and so are the sums, minima and maxima built from them), so any search
/// that finds two neighbouring grid points, one rejected and one not, finds
/// that cell. This one evaluates the evidence only at grid points, by false
/// position on the evidence's value (Illinois variant: Dowell & Jarratt,
/// "A modified regula falsi method", BIT 11, 1971), starting a spread from
/// the estimate toward rejection and stepping out by the spread: about ten
/// walks of the window where bisection takes 27, those well inside the
/// rejected side cut short (see [`BOUND_SEARCH_MARGIN`]). The walks that
/// steer it evaluate the evidence in the cheaper [`Evaluation::Fused`] form
/// until the bracket is narrower than [`BOUND_EXACT_CELLS`], exact walks
/// after that; an end of the cell found that only a fused walk saw is then
/// confirmed with an exact walk (and the cell moved a cell at a time while
/// rounding put it beside the exact one, see [`BOUND_CONFIRM_MOVES`]), so the
/// answer is the exact evidence's. Should
/// anything go astray (a value that is not finite, no turn found in the
/// range, a cell that does not confirm) it searches again with exact walks,
/// and then falls back to that bisection.
struct BoundSearch<F: Fn(f64, f64, Evaluation) -> f64> {
    evidence: F,
    log_threshold: f64,
    rejected_above: bool,
}

/// How far above the threshold (in log e-value) a [`BoundSearch`] walk goes
/// on before it stops: far enough that the values near the bound, which steer
/// the false position, are whole, while walks at log-ratios far inside the
/// rejected side end early.
const BOUND_SEARCH_MARGIN: f64 = 1.0;

/// Most evidence walks one [`BoundSearch`] makes before falling back to bisection.
const BOUND_SEARCH_WALKS: usize = 64;

/// Width, in grid cells, below which a [`BoundSearch`] steered by fused walks
/// goes on with exact ones: its guesses then land within a few cells of the
/// turn, so the walks at the final cell's ends are exact ones, which confirm
/// it, where fused walks there would be walked again exactly. 2^12 cells
/// (about 2.4e-3 in the log-ratio) was the fastest of 2^8, 2^12 and 2^16 in
/// `benches/stats_cost.rs`; at 2^16 the exact walks begin too far out.
const BOUND_EXACT_CELLS: u64 = 1 << 12;

/// Most cells by which [`BoundSearch`] moves the cell its fused walks found
/// before it searches again with exact walks. Rounding differences of about
/// 1e-12 in a log e-value move a turn by far less than a cell (about 6e-7 in
/// the log-ratio), so a move is rare and one is almost always enough.
const BOUND_CONFIRM_MOVES: usize = 4;

impl<F: Fn(f64, f64, Evaluation) -> f64> BoundSearch<F> {
    /// Whether the log-ratio `theta` is rejected by the exact evidence: it
    /// reaches the threshold at some step (the walk stops there).
    fn rejects(&self, theta: f64) -> bool {
        (self.evidence)(theta, self.log_threshold, Evaluation::Exact) >= self.log_threshold
    }

    /// The grid point `index`.
    fn point(index: u64) -> f64 {
        -LOG_RATIO_LIMIT + index as f64 * Self::grid().1
    }

    /// The cell `(rejected, kept)` (neighbouring grid points) confirmed by
    /// exact walks: the found one if both ends say so (an exact walk of the
    /// search may have said it already), else the cell a move or a few
    /// toward the exact turn; `None` if none confirms within
    /// [`BOUND_CONFIRM_MOVES`] or the range ends.
    fn confirm(&self, found: Found) -> Option<(u64, u64)> {
        let Found {
            mut rejected,
            mut kept,
            mut rejected_known,
            mut kept_known,
        } = found;
        let (cells, _) = Self::grid();
        // Grid steps toward rejection (+1 when rejected above).
        let toward: i64 = if self.rejected_above { 1 } else { -1 };
        let moved = |index: u64, by: i64| {
            let next = index as i64 + by;
            (0..=cells as i64).contains(&next).then_some(next as u64)
        };
        for _ in 0..=BOUND_CONFIRM_MOVES {
            if !kept_known && self.rejects(Self::point(kept)) {
                // The turn lies further from rejection.
                (rejected, rejected_known) = (kept, true);
                kept = moved(kept, -toward)?;
                continue;
            }
            if !rejected_known && !self.rejects(Self::point(rejected)) {
                // The turn lies further toward rejection.
                (kept, kept_known) = (rejected, true);
                rejected = moved(rejected, toward)?;
                continue;
            }
            return Some((rejected, kept));
        }
        None
    }

    /// Cells of the bisection's grid, and the width of one.
    fn grid() -> (u64, f64) {
        let span = 2.0 * LOG_RATIO_LIMIT;
        let mut cells = 1_u64;
        while span / cells as f64 > BOUND_PRECISION_LOG {
            cells *= 2;
        }
        (cells, span / cells as f64)
    }

    /// The grid cell `(rejected, kept)` where rejection turns, or `None`
    /// when the searches went astray (see the type's notes).
    fn cell(&self, estimate_log: f64, spread: f64) -> Option<(u64, u64)> {
        self.search(estimate_log, spread, Evaluation::Fused)
            .and_then(|found| self.confirm(found))
            .or_else(|| {
                let found = self.search(estimate_log, spread, Evaluation::Exact)?;
                Some((found.rejected, found.kept))
            })
    }

    /// The middle of the cell `(rejected, kept)`: the bisection's answer.
    fn middle((rejected, kept): (u64, u64)) -> f64 {
        0.5 * (Self::point(rejected.min(kept)) + Self::point(rejected.max(kept)))
    }

    /// The bisection's answer; see the type's notes.
    fn find(&self, estimate_log: f64, spread: f64) -> f64 {
        self.find_given(self.cell(estimate_log, spread))
    }

    /// The bisection's answer given the cell [`Self::cell`] found.
    fn find_given(&self, cell: Option<(u64, u64)>) -> f64 {
        cell.map(Self::middle).unwrap_or_else(|| {
            bisect(
                |theta| match (self.rejects(theta), self.rejected_above) {
                    (true, true) | (false, false) => 1.0,
                    (false, true) | (true, false) => -1.0,
                },
                -LOG_RATIO_LIMIT,
                LOG_RATIO_LIMIT,
                BOUND_PRECISION_LOG,
            )
        })
    }

    /// The grid cell where rejection turns as the evidence evaluated by
    /// `evaluation` says, or `None` to fall back. Steered by fused walks,
    /// it goes on with exact ones once its bracket is narrower than
    /// [`BOUND_EXACT_CELLS`], and says which ends exact walks found.
    fn search(&self, estimate_log: f64, spread: f64, evaluation: Evaluation) -> Option<Found> {
        let (cells, width) = Self::grid();
        let point = Self::point;
        // Positive where rejected: the evidence above the threshold. A walk
        // stops once it is BOUND_SEARCH_MARGIN above: the sign, all that
        // decides the answer, is then known, and the value only steers.
        let stop_at = self.log_threshold + BOUND_SEARCH_MARGIN;
        let excess = |index: u64, evaluation: Evaluation| {
            (self.evidence)(point(index), stop_at, evaluation) - self.log_threshold
        };
        // Grid steps toward rejection (+1 when rejected above).
        let toward: i64 = if self.rejected_above { 1 } else { -1 };
        let clamp = |index: i64| index.clamp(0, cells as i64) as u64;
        if !estimate_log.is_finite() || !spread.is_finite() {
            return None;
        }
        let estimate = ((estimate_log + LOG_RATIO_LIMIT) / width).round() as i64;
        let mut step = ((spread / width).round() as i64).max(1);
        // Start a spread from the estimate toward rejection: the estimate
        // itself is almost never rejected, and a walk there would only say so.
        let start = clamp(estimate + toward * step);
        let mut walks = 1;
        let first = excess(start, evaluation);
        if !first.is_finite() {
            return None;
        }
        // A bracket: one grid point rejected, one not, with their excesses
        // and whether an exact walk found them. From a rejected start, step
        // away from rejection; from a kept one, toward it; doubling the step
        // each time.
        let exact = evaluation == Evaluation::Exact;
        let start_rejected = first >= 0.0;
        let direction = if start_rejected { -toward } else { toward };
        let edge = if direction > 0 { cells } else { 0 };
        let mut at = (start, first, exact);
        let (mut rejected, mut kept) = loop {
            if at.0 == edge {
                return None;
            }
            let next = clamp(at.0 as i64 + direction * step);
            let value = excess(next, evaluation);
            walks += 1;
            if !value.is_finite() || walks > BOUND_SEARCH_WALKS {
                return None;
            }
            if (value >= 0.0) != start_rejected {
                break match start_rejected {
                    true => (at, (next, value, exact)),
                    false => ((next, value, exact), at),
                };
            }
            at = (next, value, exact);
            step *= 2;
        };
        let mut retained: Option<bool> = None;
        while rejected.0.abs_diff(kept.0) > 1 {
            let (low, high) = (rejected.0.min(kept.0), rejected.0.max(kept.0));
            let evaluation = if high - low < BOUND_EXACT_CELLS {
                Evaluation::Exact
            } else {
                evaluation
            };
            // False position between the two ends, kept strictly inside.
            let share = rejected.1 / (rejected.1 - kept.1);
            let guess = rejected.0 as f64 + share * (kept.0 as f64 - rejected.0 as f64);
            let next = (guess.round() as u64).clamp(low + 1, high - 1);
            let value = excess(next, evaluation);
            walks += 1;
            if !value.is_finite() || walks > BOUND_SEARCH_WALKS {
                return None;
            }
            let rejected_now = value >= 0.0;
            // Illinois: an end kept twice in a row has its value halved, so
            // the next guess moves toward it.
            if retained == Some(!rejected_now) {
                match rejected_now {
                    true => kept.1 *= 0.5,
                    false => rejected.1 *= 0.5,
                }
            }
            retained = Some(!rejected_now);
            let found = (next, value, evaluation == Evaluation::Exact);
            if rejected_now {
                rejected = found;
            } else {
                kept = found;
            }
        }
        Some(Found {
            rejected: rejected.0,
            kept: kept.0,
            rejected_known: rejected.2,
            kept_known: kept.2,
        })
    }
}

/// The cell a [`BoundSearch`] found: its rejected and its kept grid point
/// (neighbours), and whether an exact walk found each so.
#[derive(Clone, Copy, Debug)]
struct Found {
    rejected: u64,
    kept: u64,
    rejected_known: bool,
    kept_known: bool,
}

/// Steps before a window's end at which a [`RatioCheckpoint`] keeps a place
/// to resume from, beside the one at the end: a later answer of the store may
/// differ in the last steps of an earlier one (samples scraped late, a
/// counter's last increase read again), and a look whose window differs there
/// resumes from this place instead of starting afresh. Eight steps are two
/// minutes at the default 15 s step, several scrape intervals.
pub const RESUME_BEFORE_END_STEPS: usize = 8;

/// What [`ratio_test_from`] keeps of a look, for the next look at a longer
/// window of the same canary: the steps it was taken on, their blocks and the
/// evidence path, and, at the window's end and [`RESUME_BEFORE_END_STEPS`]
/// before it, the whole state of the walk (the aligner, the e-processes, the
/// persisted values and running maxima, the pooled sums, the estimate's
/// sums at the log-ratios its bisection tried, and the walks at the ends of
/// each confidence bound's cell). A place applies to a window only if the
/// window's steps up to it are the checkpoint's, bit for bit, and the test is
/// the same, bit for bit: whatever a step's reading depends on (the blocks'
/// share and spike references, the restarts' look-backs) depends only on the
/// steps before it, so the resumed walk is the fresh walk.
#[derive(Clone, Debug)]
pub struct RatioCheckpoint {
    /// The test it was taken for.
    test: RatioTest,
    /// The window it was taken on.
    steps: Vec<StepCounts>,
    /// The window's blocks (see [`aligned_steps`]).
    aligned: Vec<AlignedStep>,
    /// The evidence path over the window.
    path: Vec<EvidencePoint>,
    /// Places to resume from, earliest first.
    resumes: Vec<Resume>,
}

impl RatioCheckpoint {
    /// About how many bytes the checkpoint holds, for a store that bounds
    /// their sum.
    pub fn size_bytes(&self) -> usize {
        use std::mem::size_of;
        let per_step =
            size_of::<StepCounts>() + size_of::<AlignedStep>() + size_of::<EvidencePoint>();
        // Each place: a few processes of a few alternatives and restarts.
        const PER_RESUME_BYTES: usize = 8 * 1024;
        size_of::<RatioCheckpoint>()
            + self.steps.len() * per_step
            + self.resumes.len() * PER_RESUME_BYTES
    }
}

/// One place a [`RatioCheckpoint`] can resume from: everything the walk,
/// the pooled rates, the estimate and the bounds had after `at` steps.
#[derive(Clone, Debug)]
struct Resume {
    /// Steps walked.
    at: usize,
    aligner: Aligner,
    /// The walk, its path left out (the checkpoint's path holds it).
    walker: Walker,
    /// The sums of [`pooled_rates`].
    pooled: [f64; 4],
    estimate: EstimateSums,
    /// Per bound (lower, upper), the walks at its cell's ends; `None` when
    /// the next look searches afresh.
    bounds: [Option<BoundEnds>; 2],
}

impl Resume {
    /// The place before any step.
    fn start(test: &RatioTest) -> Resume {
        Resume {
            at: 0,
            aligner: Aligner::default(),
            walker: Walker::new(test, 0),
            pooled: [0.0; 4],
            estimate: EstimateSums::none(),
            bounds: [None, None],
        }
    }
}

/// The sums of [`conditional_mle`] over the first `evidence` informative
/// blocks: both sides' bad events, and the expected canary bad events at each
/// log-ratio (by its bits) the last bisection tried.
#[derive(Clone, Debug)]
struct EstimateSums {
    evidence: usize,
    bad: [f64; 2],
    at: Vec<(u64, f64)>,
}

impl EstimateSums {
    /// The sums over no block.
    fn none() -> EstimateSums {
        EstimateSums {
            evidence: 0,
            bad: [empty_sum(); 2],
            at: Vec::new(),
        }
    }
}

/// The two grid points of a confidence bound's cell (see [`BoundSearch`]),
/// or the range's edge alone when no log-ratio is rejected, each with its
/// walk: the bound is the same as long as the rejected point stays rejected
/// and the kept one kept. A rejected log-ratio stays rejected as the window
/// grows (the running maximum only grows), so only the kept point's walk
/// must go on; the rejected one's is kept at places before it was rejected.
#[derive(Clone, Debug)]
struct BoundEnds {
    /// The rejected grid point and its walk; `None` for the edge alone.
    rejected: Option<(u64, End)>,
    /// The kept grid point and its walk.
    kept: (u64, End),
    /// How many cells the bound moved when this cell was found from the
    /// one before (0 when searched afresh): the next search's first step.
    moved_cells: u64,
}

/// A walk of [`running_max_log_evalue`] at one grid point, as of a place.
#[derive(Clone, Debug)]
enum End {
    /// Its running maximum has reached the threshold.
    Rejected,
    /// Not yet: the walk so far.
    Walking(Box<RunningMax>),
}

impl End {
    /// Walks `aligned[from..]` (the walk has walked `from` steps), stopping
    /// once rejected; returns the end as of step `back` (if `back` is at or
    /// after `from`) and as of the last step.
    fn walk(
        mut self,
        aligned: &[AlignedStep],
        from: usize,
        back: Option<usize>,
        log_threshold: f64,
    ) -> (Option<End>, End) {
        let mut at_back = None;
        for (index, step) in aligned.iter().enumerate().skip(from) {
            if back == Some(index) {
                at_back = Some(self.clone());
            }
            let End::Walking(walk) = &mut self else {
                break;
            };
            walk.step(step);
            if walk.max >= log_threshold {
                self = End::Rejected;
            }
        }
        if at_back.is_none() && back.is_some_and(|back| back >= from) {
            at_back = Some(self.clone());
        }
        (at_back, self)
    }

    fn rejected(&self) -> bool {
        matches!(self, End::Rejected)
    }
}

/// The empty sum of `f64`s, as `Iterator::sum` starts it: sums kept in a
/// checkpoint go on from it as the fresh sum would.
fn empty_sum() -> f64 {
    std::iter::empty::<f64>().sum()
}

/// `start` plus `values`, in order: `values.sum()` when `start` is
/// [`empty_sum`], and its continuation from a partial sum otherwise.
fn sum_on(start: f64, values: impl Iterator<Item = f64>) -> f64 {
    values.fold(start, |sum, value| sum + value)
}

/// Whether two tests are the same, bit for bit.
fn same_test(a: &RatioTest, b: &RatioTest) -> bool {
    a.direction == b.direction
        && a.tolerance.to_bits() == b.tolerance.to_bits()
        && a.alpha.to_bits() == b.alpha.to_bits()
}

/// How many first steps two windows share, bit for bit.
fn shared_steps(a: &[StepCounts], b: &[StepCounts]) -> usize {
    let bits = |c: &StepCounts| {
        [
            c.canary_bad.to_bits(),
            c.canary_total.to_bits(),
            c.baseline_bad.to_bits(),
            c.baseline_total.to_bits(),
        ]
    };
    a.iter()
        .zip(b)
        .take_while(|(a, b)| bits(a) == bits(b))
        .count()
}

/// [`ratio_test`], resumed from `checkpoint` (taken by an earlier call on a
/// window that shares its first steps with `steps`) where it applies, with
/// the checkpoint of this look. The outcome is [`ratio_test`]'s, bit for bit;
/// only the cost differs: a look that adds a few steps to the window of the
/// last costs those steps (the walk, the pooled rates and the estimate's
/// sums go on from where they were; each confidence bound, when its cell's
/// ends still say the same, is found without a search), plus a search of
/// the whole window for a bound that moved. A checkpoint of another test, or
/// whose steps differ from the window's from the first, is not used.
pub fn ratio_test_from(
    steps: &[StepCounts],
    test: &RatioTest,
    checkpoint: Option<&RatioCheckpoint>,
) -> (RatioOutcome, RatioCheckpoint) {
    let total = steps.len();
    let back = place_before_end(total);
    // The latest place whose steps are the window's.
    let usable = checkpoint
        .filter(|c| same_test(&c.test, test))
        .map(|c| (c, shared_steps(&c.steps, steps)));
    let resume =
        usable.and_then(|(c, shared)| latest_place(&c.resumes, |r| r.at, shared).map(|r| (c, r)));
    let start_place = match resume {
        Some((_, r)) => r.clone(),
        None => Resume::start(test),
    };
    let start = start_place.at;
    // What this look walks through: a place at `back` is taken only then.
    let back_walked = back.filter(|&back| back >= start);
    let mut aligned = match resume {
        Some((c, _)) => c.aligned[..start].to_vec(),
        None => Vec::new(),
    };
    aligned.reserve(total - start);
    let mut walker = start_place.walker.clone();
    walker.path = match resume {
        Some((c, _)) => c.path[..start].to_vec(),
        None => Vec::new(),
    };
    walker.path.reserve(total - start);
    let mut aligner = start_place.aligner.clone();
    let mut pooled = start_place.pooled;
    // The walk's state as of `back`, taken on the way.
    let mut at_back: Option<(Aligner, Walker, [f64; 4])> = None;
    for (index, counts) in steps.iter().enumerate().skip(start) {
        if back_walked == Some(index) {
            at_back = Some((aligner.clone(), walker.without_path(), pooled));
        }
        let step = aligner.next(counts, &mut f64::ln);
        walker.step(&step, None);
        aligned.push(step);
        add_pooled(&mut pooled, counts);
    }
    let end_walker = walker.without_path();
    let end_aligner = aligner;
    let walk = walker.finish();

    let (canary_rate, baseline_rate) = rates_of(&pooled);
    let evidence: Vec<Informative> = aligned.iter().filter_map(|s| s.evidence).collect();
    let back_evidence = back_walked.map(|back| {
        aligned[..back]
            .iter()
            .filter(|s| s.evidence.is_some())
            .count()
    });
    let (ratio_estimate, estimate_back, estimate_end) =
        conditional_mle_from(&evidence, &start_place.estimate, back_evidence);
    let alpha_for_bounds = if parameters_ok(test) {
        test.alpha
    } else {
        0.05
    };
    let (bounds, bounds_back, bounds_end) = confidence_bounds_from(
        &aligned,
        !evidence.is_empty(),
        test.direction,
        alpha_for_bounds,
        ratio_estimate.ln(),
        &start_place.bounds,
        start,
        back_walked,
    );
    let outcome = RatioOutcome {
        decision: walk.decision,
        decided_at_step: walk.decided_at_step,
        canary_rate,
        baseline_rate,
        ratio_estimate,
        ratio_lower: bounds.0,
        ratio_upper: bounds.1,
        harm_evidence: evalue(walk.harm_max_log),
        safety_evidence: evalue(walk.safety_max_log),
        threshold: walk.threshold,
        confidence: interval_confidence(test.direction, alpha_for_bounds),
        path: walk.path,
    };

    // The places of the next checkpoint: the latest at or before `back`
    // (taken on the way, or kept from the last checkpoint when this look
    // started after `back`), and the end.
    let mut resumes = Vec::with_capacity(2);
    match (at_back, back_walked) {
        (Some((aligner, walker, pooled)), Some(back)) => resumes.push(Resume {
            at: back,
            aligner,
            walker,
            pooled,
            estimate: estimate_back.expect("sums as of `back` are taken when `back` is walked"),
            bounds: bounds_back,
        }),
        _ => {
            if let Some((c, shared)) = usable {
                let limit = back.unwrap_or(0).min(shared);
                if let Some(earlier) = latest_place(&c.resumes, |r| r.at, limit) {
                    resumes.push(earlier.clone());
                }
            }
        }
    }
    resumes.push(Resume {
        at: total,
        aligner: end_aligner,
        walker: end_walker,
        pooled,
        estimate: estimate_end,
        bounds: bounds_end,
    });
    let checkpoint = RatioCheckpoint {
        test: *test,
        steps: steps.to_vec(),
        aligned,
        path: outcome.path.clone(),
        resumes,
    };
    (outcome, checkpoint)
}

/// The step before a window of `total` steps ends at which a look keeps a
/// place to resume from (see [`RESUME_BEFORE_END_STEPS`]); `None` when the
/// window is too short to have one apart from its start and end.
pub(super) fn place_before_end(total: usize) -> Option<usize> {
    let back = total.saturating_sub(RESUME_BEFORE_END_STEPS);
    (back > 0 && back < total).then_some(back)
}

/// The latest of `places` (earliest first, each `at(place)` steps in) past
/// the start and within the `shared` first steps a window shares with the
/// checkpoint they belong to: where a look at that window resumes.
pub(super) fn latest_place<R>(places: &[R], at: impl Fn(&R) -> usize, shared: usize) -> Option<&R> {
    places
        .iter()
        .rev()
        .find(|place| at(place) <= shared && at(place) > 0)
}

/// Adds one step's counts to [`pooled_rates`]'s sums.
fn add_pooled(sums: &mut [f64; 4], counts: &StepCounts) {
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

/// The rates of [`pooled_rates`] from its sums.
fn rates_of(sums: &[f64; 4]) -> (f64, f64) {
    let rate = |bad: f64, total: f64| if total > 0.0 { bad / total } else { f64::NAN };
    (rate(sums[0], sums[1]), rate(sums[2], sums[3]))
}

/// [`conditional_mle`] of `evidence`, going on from `from` (its sums over
/// the first `from.evidence` blocks), with the sums as of the first
/// `back_evidence` blocks (if given) and of all of them. Each sum the
/// bisection needs at a log-ratio `from` holds goes on from there; the
/// others are summed whole. Sums go in the same order either way, so the
/// estimate is [`conditional_mle`]'s, bit for bit.
fn conditional_mle_from(
    evidence: &[Informative],
    from: &EstimateSums,
    back_evidence: Option<usize>,
) -> (f64, Option<EstimateSums>, EstimateSums) {
    let begin = from.evidence;
    let part = |values: &dyn Fn(&Informative) -> f64, start: f64, begin: usize| {
        // The sum as of `back_evidence` and as of the end.
        let mut at_back = None;
        let mut sum = start;
        for (index, step) in evidence.iter().enumerate().skip(begin) {
            if back_evidence == Some(index) {
                at_back = Some(sum);
            }
            sum = sum_on(sum, std::iter::once(values(step)));
        }
        if back_evidence == Some(evidence.len()) {
            at_back = Some(sum);
        }
        (at_back, sum)
    };
    let (canary_back, canary_bad) = part(&|s| s.canary_bad, from.bad[0], begin);
    let (baseline_back, baseline_bad) = part(&|s| s.baseline_bad, from.bad[1], begin);
    let mut sums_back = Vec::new();
    let mut sums_end = Vec::new();
    let estimate = if evidence.is_empty() {
        f64::NAN
    } else if canary_bad <= 0.0 {
        0.0
    } else if baseline_bad <= 0.0 {
        f64::INFINITY
    } else {
        let expected_minus_observed = |theta: f64| {
            let expected = |s: &Informative| {
                let p = 1.0 / (1.0 + (-(theta + s.log_share_odds)).exp());
                (s.canary_bad + s.baseline_bad) * p
            };
            let known = from.at.iter().find(|(bits, _)| *bits == theta.to_bits());
            let (back_sum, sum) = match known {
                Some((_, partial)) => part(&expected, *partial, begin),
                None => part(&expected, empty_sum(), 0),
            };
            if let Some(back_sum) = back_sum {
                sums_back.push((theta.to_bits(), back_sum));
            }
            sums_end.push((theta.to_bits(), sum));
            sum - canary_bad
        };
        let theta = bisect(
            expected_minus_observed,
            -LOG_RATIO_LIMIT,
            LOG_RATIO_LIMIT,
            1e-10,
        );
        theta.exp()
    };
    let at_back = back_evidence.map(|evidence| EstimateSums {
        evidence,
        bad: [
            canary_back.expect("taken at `back_evidence`"),
            baseline_back.expect("taken at `back_evidence`"),
        ],
        at: sums_back,
    });
    let at_end = EstimateSums {
        evidence: evidence.len(),
        bad: [canary_bad, baseline_bad],
        at: sums_end,
    };
    (estimate, at_back, at_end)
}

/// Per bound (lower, upper): the bound, and its cell's ends as of `back` and
/// of the end (see [`BoundEnds`]).
type BoundsFound = ((f64, f64), [Option<BoundEnds>; 2], [Option<BoundEnds>; 2]);

/// [`confidence_bounds`] of `aligned`, going on from `from` (the bounds'
/// cell ends after `start` steps) where they still say the same; a bound
/// whose cell moved is searched afresh, and the walks at its new cell's ends
/// are walked for the next look. The bounds are [`confidence_bounds`]', bit
/// for bit: rejection is monotone in the log-ratio, so a rejected and a kept
/// neighbouring grid point are the one cell where rejection turns, which
/// the search finds too.
#[allow(clippy::too_many_arguments)]
fn confidence_bounds_from(
    aligned: &[AlignedStep],
    any_evidence: bool,
    direction: Direction,
    alpha: f64,
    estimate_log: f64,
    from: &[Option<BoundEnds>; 2],
    start: usize,
    back: Option<usize>,
) -> BoundsFound {
    if !any_evidence {
        return ((0.0, f64::INFINITY), [None, None], [None, None]);
    }
    let (below, above, log_threshold) = bound_processes(direction, alpha);
    let spread = std::cell::OnceCell::new();
    let (cells, _) = BoundSearch::<fn(f64, f64, Evaluation) -> f64>::grid();
    let bound = |side: Side,
                 (alternatives, restarts): (&'static [(f64, f64)], Restarts),
                 rejected_above: bool,
                 limit: f64,
                 from: &Option<BoundEnds>|
     -> (f64, Option<BoundEnds>, Option<BoundEnds>) {
        let fresh_end = |index: u64| {
            let theta = BoundSearch::<fn(f64, f64, Evaluation) -> f64>::point(index);
            End::Walking(Box::new(RunningMax::new(MixtureProcess::new(
                theta,
                side,
                alternatives,
                restarts,
            ))))
        };
        let value_of = |ends: &BoundEnds| match &ends.rejected {
            Some((rejected, _)) => {
                BoundSearch::<fn(f64, f64, Evaluation) -> f64>::middle((*rejected, ends.kept.0))
                    .exp()
            }
            None => limit,
        };
        // Walks both ends from `from_step` on: the ends as of `back` and of the
        // end, if they still make a cell (the rejected one rejected, the
        // kept one kept).
        let walk_ends = |ends: &BoundEnds, from_step: usize| {
            let (kept_back, kept_end) =
                ends.kept
                    .1
                    .clone()
                    .walk(aligned, from_step, back, log_threshold);
            if kept_end.rejected() {
                return None;
            }
            let rejected = match &ends.rejected {
                Some((index, end)) => {
                    let (back_end, end) = end.clone().walk(aligned, from_step, back, log_threshold);
                    if !end.rejected() {
                        return None;
                    }
                    Some((*index, back_end, end))
                }
                None => None,
            };
            let at = |kept: Option<End>, rejected: Option<(u64, Option<End>)>| {
                Some(BoundEnds {
                    rejected: match rejected {
                        Some((index, end)) => Some((index, end?)),
                        None => None,
                    },
                    kept: (ends.kept.0, kept?),
                    moved_cells: ends.moved_cells,
                })
            };
            let back_ends = at(
                kept_back,
                rejected
                    .as_ref()
                    .map(|(index, back_end, _)| (*index, back_end.clone())),
            );
            let end_ends = at(
                Some(kept_end),
                rejected.map(|(index, _, end)| (index, Some(end))),
            )?;
            Some((back_ends, end_ends))
        };
        if let Some(ends) = from
            && let Some((back_ends, end_ends)) = walk_ends(ends, start)
        {
            return (value_of(&end_ends), back_ends, Some(end_ends));
        }
        // A cell whose kept end the new steps rejected: the bound moved
        // inward from it, and the range's edge, further toward rejection, is
        // rejected too (rejection is monotone in the log-ratio).
        let moved_from = from.as_ref().and_then(|ends| {
            ends.rejected.as_ref()?;
            let (_, now) = ends
                .kept
                .1
                .clone()
                .walk(aligned, start, None, log_threshold);
            now.rejected().then_some((ends.kept.0, ends.moved_cells))
        });
        if moved_from.is_none() {
            // Afresh: the edge first, as `confidence_bounds` asks.
            let edge = if rejected_above { cells } else { 0 };
            let edge_only = BoundEnds {
                rejected: None,
                kept: (edge, fresh_end(edge)),
                moved_cells: 0,
            };
            if let Some((back_ends, end_ends)) = walk_ends(&edge_only, 0) {
                return (limit, back_ends, Some(end_ends));
            }
        }
        // The search's exact walks, each as of `back` and of its end, by the
        // bits of its log-ratio: the cell's ends are among them once the
        // search has confirmed the cell, so they need not be walked again.
        let recorded: std::cell::RefCell<Vec<(u64, Option<End>, End)>> = Default::default();
        let end_of = |walk: &RunningMax| match walk.max >= log_threshold {
            true => End::Rejected,
            false => End::Walking(Box::new(walk.clone())),
        };
        let search = BoundSearch {
            evidence: |theta: f64, stop_at: f64, evaluation: Evaluation| {
                let spec = (side, alternatives, restarts);
                if evaluation == Evaluation::Fused {
                    return running_max_log_evalue(aligned, theta, spec, stop_at, evaluation);
                }
                // `running_max_log_evalue`'s exact walk, its ends kept.
                let mut walk =
                    RunningMax::new(MixtureProcess::new(theta, side, alternatives, restarts));
                let mut at_back = None;
                for (index, step) in aligned.iter().enumerate() {
                    if back == Some(index) {
                        at_back = Some(end_of(&walk));
                    }
                    walk.step(step);
                    if walk.max >= stop_at {
                        break;
                    }
                }
                let end = end_of(&walk);
                if back.is_some() && at_back.is_none() {
                    // It stopped before `back`: rejected by then.
                    at_back = Some(end.clone());
                }
                recorded.borrow_mut().push((theta.to_bits(), at_back, end));
                walk.max
            },
            log_threshold,
            rejected_above,
        };
        // Where the search starts: for a bound that moved from a cell and
        // had moved before, a step as long as its last move inward of the
        // old kept end, whose step back toward rejection meets that end
        // (moves shrink slowly from look to look; a first move may be of
        // any size); else a spread from the estimate. Only the walks it
        // takes depend on it, never the cell.
        let (from_log, step_log) = match moved_from.filter(|(_, moved)| *moved > 0) {
            Some((kept, moved)) => {
                let (_, width) = BoundSearch::<fn(f64, f64, Evaluation) -> f64>::grid();
                let moved = moved.min(cells) as i64;
                let toward: i64 = if rejected_above { 1 } else { -1 };
                let from = (kept as i64 - 2 * toward * moved).clamp(0, cells as i64) as u64;
                (
                    BoundSearch::<fn(f64, f64, Evaluation) -> f64>::point(from),
                    moved as f64 * width,
                )
            }
            None => (
                estimate_log,
                *spread.get_or_init(|| estimate_spread(aligned, estimate_log, log_threshold)),
            ),
        };
        let cell = search.cell(from_log, step_log);
        let value = search.find_given(cell).exp();
        let moved_cells = match (moved_from, cell) {
            (Some((old_kept, _)), Some((_, kept))) => old_kept.abs_diff(kept),
            _ => 0,
        };
        let walked = cell.and_then(|(rejected, kept)| {
            let recorded = recorded.borrow();
            let find = |index: u64| {
                let bits = BoundSearch::<fn(f64, f64, Evaluation) -> f64>::point(index).to_bits();
                recorded.iter().rev().find(|(b, _, _)| *b == bits)
            };
            if let (Some((_, rejected_back, rejected_end)), Some((_, kept_back, kept_end))) =
                (find(rejected), find(kept))
                && rejected_end.rejected()
                && !kept_end.rejected()
            {
                let back_ends = match (rejected_back, kept_back) {
                    (Some(r), Some(k)) => Some(BoundEnds {
                        rejected: Some((rejected, r.clone())),
                        kept: (kept, k.clone()),
                        moved_cells,
                    }),
                    _ => None,
                };
                let end_ends = BoundEnds {
                    rejected: Some((rejected, End::Rejected)),
                    kept: (kept, kept_end.clone()),
                    moved_cells,
                };
                return Some((back_ends, end_ends));
            }
            let ends = BoundEnds {
                rejected: Some((rejected, fresh_end(rejected))),
                kept: (kept, fresh_end(kept)),
                moved_cells,
            };
            walk_ends(&ends, 0)
        });
        match walked {
            Some((back_ends, end_ends)) => (value, back_ends, Some(end_ends)),
            None => (value, None, None),
        }
    };
    let (lower, lower_back, lower_end) = bound(Side::Above, below, false, 0.0, &from[0]);
    let (upper, upper_back, upper_end) = bound(Side::Below, above, true, f64::INFINITY, &from[1]);
    (
        (lower, upper),
        [lower_back, upper_back],
        [lower_end, upper_end],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// ln(1 + e^x) without overflow, one at a time: the form the evidence
    /// was computed with before [`softplus_pair`], kept as its reference.
    fn softplus(x: f64) -> f64 {
        if x > 0.0 {
            x + (-x).exp().ln_1p()
        } else {
            x.exp().ln_1p()
        }
    }

    // Pins the stable softplus against the direct formula where both are exact.
    #[test]
    fn softplus_matches_direct_formula() {
        for x in [-30.0_f64, -2.0, 0.0, 1.5, 30.0] {
            let direct = (1.0 + x.exp()).ln();
            assert!((softplus(x) - direct).abs() < 1e-12, "x = {x}");
            assert_eq!(softplus_pair(x).0.to_bits(), softplus(x).to_bits());
        }
        assert!((softplus(800.0) - 800.0).abs() < 1e-12);
    }

    // Pins that the fused pair gives both softplus values bit for bit, so the
    // evidence computed with it is the evidence computed before it.
    #[test]
    fn softplus_pair_is_the_stable_softplus_bit_for_bit() {
        let mut x = 1e-300_f64;
        let mut values = vec![0.0, -0.0, f64::INFINITY, f64::NEG_INFINITY, 710.0, -745.0];
        while x < 1e4 {
            values.extend([x, -x, x * 1.000_000_1, -x * 0.999_999_9]);
            x *= 1.37;
        }
        for x in values {
            let (up, down) = softplus_pair(x);
            assert_eq!(up.to_bits(), softplus(x).to_bits(), "softplus({x})");
            assert_eq!(down.to_bits(), softplus(-x).to_bits(), "softplus(-{x})");
        }
        assert!(softplus_pair(f64::NAN).0.is_nan() && softplus_pair(f64::NAN).1.is_nan());
    }

    /// The log e-value as it was computed before terms were walked twice: collected, then summed.
    fn collected_log_evalue(process: &MixtureProcess) -> f64 {
        let mut terms = vec![process.pending_weight.ln()];
        for (a, (weight, llr)) in process
            .log_weights
            .iter()
            .zip(&process.log_likelihood_ratios)
            .enumerate()
        {
            terms.push(weight + llr + process.log_closed[a]);
            for restart in &process.open {
                terms.push(weight + restart.log_weight + llr - restart.max_log_ratios[a].max(*llr));
            }
        }
        let max = terms.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        if !max.is_finite() {
            return max;
        }
        max + terms.iter().map(|t| (t - max).exp()).sum::<f64>().ln()
    }

    /// The confidence bounds as they were found before [`BoundSearch`]: by
    /// bisection of the whole range, every walk to the window's end.
    fn bisected_bounds(steps: &[StepCounts], direction: Direction, alpha: f64) -> (f64, f64) {
        let aligned: Vec<AlignedStep> = aligned_steps(steps).collect();
        if !aligned.iter().any(|s| s.evidence.is_some()) {
            return (0.0, f64::INFINITY);
        }
        let (below, above, log_threshold) = bound_processes(direction, alpha);
        let all = f64::INFINITY;
        let rejects_below = |theta: f64| {
            let spec = (Side::Above, below.0, below.1);
            running_max_log_evalue(&aligned, theta, spec, all, Evaluation::Exact) >= log_threshold
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
        let rejects_above = |theta: f64| {
            let spec = (Side::Below, above.0, above.1);
            running_max_log_evalue(&aligned, theta, spec, all, Evaluation::Exact) >= log_threshold
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

    /// Seeded random windows: traffic from thin to heavy, uneven splits,
    /// regressions from the start or late, gaps, lopsided scrapes, bursts and
    /// the odd unknown (NaN) step.
    fn random_windows(count: usize, seed: u64) -> Vec<(Vec<StepCounts>, RatioTest)> {
        use rand::SeedableRng;
        use rand_distr::{Distribution, Poisson};
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        // A splitmix64 stream for the settings, so they need no more of rand's API.
        let mut state = seed ^ 0x9e37_79b9_7f4a_7c15;
        let mut uniform = move || {
            state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            (z ^ (z >> 31)) as f64 / u64::MAX as f64
        };
        let poisson = |mean: f64, rng: &mut rand::rngs::StdRng| match Poisson::new(mean) {
            Ok(law) => law.sample(rng),
            Err(_) => 0.0,
        };
        (0..count)
            .map(|_| {
                let steps = 2 + (uniform() * 400.0) as usize;
                let traffic = 10f64.powf(uniform() * 4.0 - 0.5);
                let share = 0.2 + uniform() * 1.6;
                let bad = 10f64.powf(-3.0 + uniform() * 2.5);
                let ratio = [1.0, 1.0, 1.3, 2.0, 0.5, 4.0][(uniform() * 6.0) as usize % 6];
                let late = (uniform() * steps as f64) as usize;
                let gaps = uniform() * 0.2;
                let window = (0..steps)
                    .map(|index| {
                        let rho = if index >= late / 2 { ratio } else { 1.0 };
                        let canary_total = poisson(traffic * share, &mut rng);
                        let baseline_total = poisson(traffic, &mut rng);
                        let mut counts = StepCounts {
                            canary_bad: poisson(canary_total * bad * rho, &mut rng)
                                .min(canary_total),
                            canary_total,
                            baseline_bad: poisson(baseline_total * bad, &mut rng)
                                .min(baseline_total),
                            baseline_total,
                        };
                        if uniform() < gaps {
                            counts.canary_total = 0.0;
                            counts.canary_bad = 0.0;
                        }
                        if uniform() < 0.01 {
                            counts.baseline_bad = f64::NAN;
                        }
                        if uniform() < 0.02 {
                            counts.canary_bad += poisson(20.0, &mut rng);
                        }
                        counts
                    })
                    .collect();
                let direction = [Direction::Increase, Direction::Decrease, Direction::Either]
                    [(uniform() * 3.0) as usize % 3];
                let test = RatioTest {
                    direction,
                    tolerance: [0.0, 0.1, 0.2, 0.5][(uniform() * 4.0) as usize % 4],
                    alpha: [0.005, 0.01, 0.05][(uniform() * 3.0) as usize % 3],
                };
                (window, test)
            })
            .collect()
    }

    /// A harm process's and a safety process's settings, for tests that check both.
    const HARM_AND_SAFETY: [ProcessSpec; 2] = [
        (Side::Above, &HARM_ALTERNATIVES, HARM_RESTARTS),
        (Side::Below, &SAFETY_ALTERNATIVES, Restarts::NONE),
    ];

    // Pins that the e-values computed without collecting their terms are the
    // ones computed before, bit for bit, at every step of many random windows.
    #[test]
    fn log_evalue_is_the_collected_sum_bit_for_bit() {
        for (steps, test) in random_windows(60, 15) {
            for (side, alternatives, restarts) in HARM_AND_SAFETY {
                let null = (1.0 + test.tolerance).ln();
                let mut process = MixtureProcess::new(null, side, alternatives, restarts);
                for (index, aligned) in aligned_steps(&steps).enumerate() {
                    process.begin_step(index);
                    process.update(aligned.evidence.as_ref(), &aligned);
                    assert_eq!(
                        process.log_evalue().to_bits(),
                        collected_log_evalue(&process).to_bits(),
                        "step {index}"
                    );
                }
            }
        }
    }

    // Pins that the bound search finds, bit for bit, the bounds the bisection of the
    // whole range found, on many seeded random windows of every direction.
    #[test]
    fn bound_search_finds_the_bisections_bounds() {
        for (number, (steps, test)) in random_windows(300, 1502).into_iter().enumerate() {
            let evidence: Vec<Informative> =
                aligned_steps(&steps).filter_map(|s| s.evidence).collect();
            let estimate = conditional_mle(&evidence);
            let aligned: Vec<AlignedStep> = aligned_steps(&steps).collect();
            let found = confidence_bounds(&aligned, test.direction, test.alpha, estimate.ln());
            let bisected = bisected_bounds(&steps, test.direction, test.alpha);
            assert_eq!(
                (found.0.to_bits(), found.1.to_bits()),
                (bisected.0.to_bits(), bisected.1.to_bits()),
                "window {number} ({} steps, {test:?}): {found:?} against {bisected:?}",
                steps.len()
            );
        }
    }

    // Pins that windows walked side by side get, bit for bit, the paths each gets alone:
    // windows over the same traffic (whose likelihoods are shared), a repeated window
    // (whose path is copied), and a window over other traffic (whose are not), on many
    // seeded random windows of every direction and tolerance.
    #[test]
    fn paths_walked_side_by_side_are_each_walks_own_bit_for_bit() {
        let windows = random_windows(80, 615);
        for (number, pair) in windows.windows(2).enumerate() {
            let ((steps, test), (other, _)) = (&pair[0], &pair[1]);
            // The same traffic with fewer bad events, and with the sides' bad counts swapped
            // where both are known, so the blocks and their log share odds are the same.
            let thinned: Vec<StepCounts> = steps
                .iter()
                .map(|c| StepCounts {
                    canary_bad: (c.canary_bad * 0.5).floor(),
                    ..*c
                })
                .collect();
            let swapped: Vec<StepCounts> = steps
                .iter()
                .map(|c| StepCounts {
                    canary_bad: c.baseline_bad.min(c.canary_total),
                    baseline_bad: c.canary_bad.min(c.baseline_total),
                    ..*c
                })
                .collect();
            let group: [&[StepCounts]; 5] = [steps, &thinned, steps, other, &swapped];
            let together = ratio_paths(&group, test);
            for (window, path) in group.iter().zip(&together) {
                let alone = ratio_path(window, test);
                let bits = |path: &[EvidencePoint]| -> Vec<(usize, u64, u64)> {
                    path.iter()
                        .map(|p| (p.step, p.harm.to_bits(), p.safety.to_bits()))
                        .collect()
                };
                assert_eq!(bits(path), bits(&alone), "group {number}, {test:?}");
            }
        }
    }

    // Pins what exp_or_zero relies on: below the cutoff this platform's exp gives +0
    // exactly (so skipping it leaves every sum's bits as they were), and above it
    // exp_or_zero is exp.
    #[test]
    fn exp_is_zero_below_the_cutoff() {
        let mut x = EXP_ZERO_BELOW;
        while x > -1e300 {
            for below in [x, x - 1e-9 * x.abs(), x.next_down()] {
                assert_eq!(below.exp().to_bits(), 0.0_f64.to_bits(), "exp({below})");
                assert_eq!(exp_or_zero(below).to_bits(), 0.0_f64.to_bits());
            }
            x *= 1.1;
        }
        assert_eq!(f64::NEG_INFINITY.exp().to_bits(), 0.0_f64.to_bits());
        for above in [
            EXP_ZERO_BELOW.next_up(),
            -745.2,
            -745.0,
            -700.0,
            -1.0,
            0.0,
            3.5,
        ] {
            assert_eq!(
                exp_or_zero(above).to_bits(),
                above.exp().to_bits(),
                "{above}"
            );
        }
        assert!(exp_or_zero(f64::NAN).is_nan());
    }

    // Pins the module's validity argument for binomial draws (replacing a Hoeffding argument
    // that held only at tolerance 0): summed exactly over both binomials, the expected
    // one-step likelihood ratio is at most 1 under the null, for tolerances 0 to 50% and
    // bad fractions up to 30%.
    #[test]
    fn expected_likelihood_ratio_over_both_binomials_is_at_most_one() {
        use statrs::distribution::{Binomial, Discrete};
        for (n_c, n_b) in [(20_u64, 20_u64), (15, 45), (60, 10)] {
            for q_b in [0.01, 0.1, 0.3] {
                for tolerance in [0.0, 0.1, 0.5] {
                    let rho0 = 1.0_f64 + tolerance;
                    for inside in [1.0, 0.8] {
                        let q_c = (rho0 * q_b * inside).min(1.0);
                        let canary = Binomial::new(q_c, n_c).expect("valid");
                        let baseline = Binomial::new(q_b, n_b).expect("valid");
                        for (factor, side) in
                            [(2.0, Side::Above), (10.0, Side::Above), (1.25, Side::Below)]
                        {
                            let mut process = MixtureProcess::new(
                                rho0.ln(),
                                side,
                                &[(factor, 1.0)],
                                Restarts::NONE,
                            );
                            process.begin_step(0);
                            let null = process.null_log_ratio;
                            let theta = process.alternative_log_ratios[0];
                            let mut expected = 0.0;
                            for c in 0..=n_c {
                                for b in 0..=n_b {
                                    let step = Informative {
                                        canary_bad: c as f64,
                                        baseline_bad: b as f64,
                                        log_share_odds: (n_c as f64 / n_b as f64).ln(),
                                    };
                                    let llr = step_log_likelihood(&step, theta)
                                        - step_log_likelihood(&step, null);
                                    expected += canary.pmf(c) * baseline.pmf(b) * llr.exp();
                                }
                            }
                            // A safety process (alternative below) has its null on the
                            // other side of the boundary: only the boundary is its null here.
                            if side == Side::Above || inside == 1.0 {
                                assert!(
                                    expected <= 1.0 + 1e-9,
                                    "n {n_c}/{n_b} q_b {q_b} tol {tolerance} x{inside} {factor}: {expected}"
                                );
                            }
                        }
                    }
                }
            }
        }
    }

    // Pins the final-look tail: one block of 10 bad events at an even split gives
    // P(Binomial(10, 1/2) >= 8) = 56/1024 exactly, and Chernoff's bound lies above it.
    #[test]
    fn final_look_tail_is_the_binomial_tail() {
        let block = Informative {
            canary_bad: 8.0,
            baseline_bad: 2.0,
            log_share_odds: 0.0,
        };
        let exact = tail_probability(&[block], 0.0, Tail::Upper);
        assert!((exact - 56.0 / 1024.0).abs() < 1e-12, "{exact}");
        let lower = tail_probability(&[block], 0.0, Tail::Lower);
        assert!((lower - 1013.0 / 1024.0).abs() < 1e-12, "{lower}");
        let bound = chernoff_tail(&[(10, 0.5)], 8.0, Tail::Upper);
        assert!(bound >= exact && bound < 1.0, "{bound}");
    }

    // Pins the spike gate: a steady step counts at once, while a step whose bad events jump
    // (the leading side's half of a shared burst) counts only once the next point confirms
    // it, so the burst's lopsided half never reaches the decision.
    #[test]
    fn evidence_persists_only_at_spikes() {
        let steady = StepCounts {
            canary_bad: 6.0,
            canary_total: 300.0,
            baseline_bad: 3.0,
            baseline_total: 300.0,
        };
        let mut steps = vec![steady; 10];
        let test = RatioTest {
            direction: Direction::Increase,
            tolerance: 0.0,
            alpha: 0.005,
        };
        let harm = |steps: &[StepCounts]| ratio_test(steps, &test).path.last().map(|p| p.harm);
        // The harm e-detector as it stands after the last step, with no persistence.
        let unpersisted = |steps: &[StepCounts]| {
            let mut process =
                MixtureProcess::new(0.0, Side::Above, &HARM_ALTERNATIVES, HARM_RESTARTS);
            for (index, aligned) in aligned_steps(steps).enumerate() {
                process.begin_step(index);
                process.update(aligned.evidence.as_ref(), &aligned);
            }
            process.log_evalue()
        };
        let steady_harm = harm(&steps).expect("a path");
        assert!(
            (steady_harm.ln() - unpersisted(&steps)).abs() < 1e-9,
            "{steady_harm}"
        );
        // The canary counts 50 bad events of a burst the baseline counts a step later.
        steps.push(StepCounts {
            canary_bad: 56.0,
            ..steady
        });
        let at_spike = harm(&steps).expect("a path");
        assert!(
            at_spike <= steady_harm * 1.000_001,
            "{at_spike} {steady_harm}"
        );
        steps.push(StepCounts {
            baseline_bad: 53.0,
            ..steady
        });
        let evened = ratio_test(&steps, &test);
        assert_eq!(evened.decision, Decision::Undecided);
    }

    // Regression: the first block's spike flag, judged in hindsight against the second, leaked
    // into the third point: a restart whose first point was the third started at the less
    // favourable of two points whenever the first block was a spike, though the block before
    // it is the second. (At the second point the first block counts as a spike, on purpose:
    // judged against the second alone, the first half of a burst split between them does not
    // stand out.) Windows whose first steps nobody reported start their blocks late, so that
    // restarts land on these points.
    // Regression: the weight of restarts still to come was 1 minus the weights begun, whose
    // rounding residue (about 6e-17 with 0.7 and 1/60) floored a long healthy run's harm
    // e-value near e^-37 (found by the numpy fixtures, healthy_promoted_tolerance_tenth).
    #[test]
    fn pending_restart_weight_is_exactly_zero_after_the_last_restart() {
        let last = HARM_RESTARTS.every_steps * HARM_RESTARTS.points;
        assert_eq!(HARM_RESTARTS.weight_after(last), 0.0);
        assert_eq!(HARM_RESTARTS.weight_after(last + 40), 0.0);
        let begun: f64 = (0..last).map(|i| HARM_RESTARTS.weight_at(i)).sum();
        assert!((HARM_RESTARTS.weight_after(last - 1) + begun - 1.0).abs() < 1e-12);
        assert_eq!(Restarts::NONE.weight_after(0), 0.0);
    }

    #[test]
    fn first_block_flag_does_not_leak_into_the_third_point() {
        let nothing = StepCounts::default();
        let step = |canary_bad: f64, baseline_bad: f64| StepCounts {
            canary_bad,
            canary_total: 300.0,
            baseline_bad,
            baseline_total: 300.0,
        };
        let near_spikes = |steps: &[StepCounts]| -> Vec<Option<bool>> {
            aligned_steps(steps)
                .filter(|s| s.advancing)
                .map(|s| s.near_spike)
                .collect()
        };
        let steady = [
            nothing,
            nothing,
            step(3.0, 3.0),
            step(7.0, 3.0),
            step(4.0, 3.0),
        ];
        assert_eq!(near_spikes(&steady), [None, Some(true), Some(false)]);
        // The first block holds a whole burst: a spike in hindsight, two points before the third.
        let burst_first = [
            nothing,
            nothing,
            step(30.0, 30.0),
            step(4.0, 3.0),
            step(7.0, 3.0),
        ];
        let first_block_spike: Vec<Option<bool>> = aligned_steps(&burst_first)
            .filter(|s| s.advancing)
            .map(|s| s.first_block_spike)
            .collect();
        assert_eq!(first_block_spike, [None, Some(true), None]);
        assert_eq!(near_spikes(&burst_first), [None, Some(true), Some(false)]);
    }

    // Pins that an informative step needs bad events and traffic on both sides.
    #[test]
    fn steps_without_evidence_are_skipped() {
        let empty = StepCounts::default();
        assert!(informative(&empty, &mut f64::ln).is_none());
        let one_sided = StepCounts {
            canary_bad: 1.0,
            canary_total: 10.0,
            baseline_bad: 0.0,
            baseline_total: 0.0,
        };
        assert!(informative(&one_sided, &mut f64::ln).is_none());
        let nan = StepCounts {
            canary_bad: f64::NAN,
            ..one_sided
        };
        assert!(informative(&nan, &mut f64::ln).is_none());
    }

    /// The running maximum as it was computed before
    /// [`MixtureProcess::log_evalue_unless_below`]: every step's e-value in full.
    fn running_max_in_full(
        aligned: &[AlignedStep],
        null_log_ratio: f64,
        (side, alternatives, restarts): ProcessSpec,
    ) -> f64 {
        let mut process = MixtureProcess::new(null_log_ratio, side, alternatives, restarts);
        let mut persisted = Persisted::new();
        let mut max = 0.0_f64;
        for (index, aligned) in aligned.iter().enumerate() {
            process.begin_step(index);
            process.update(aligned.evidence.as_ref(), aligned);
            persisted.record(process.log_evalue(), aligned.advancing, aligned.spike);
            max = max.max(persisted.value());
        }
        max
    }

    // Pins that skipping the sum of the e-values below the running maximum leaves the
    // maximum bit for bit what every step's full e-value gives, on many random windows
    // and log-ratios on both sides of the estimate.
    #[test]
    fn running_max_skips_only_values_that_cannot_raise_it() {
        for (steps, test) in random_windows(80, 77) {
            let aligned: Vec<AlignedStep> = aligned_steps(&steps).collect();
            let null = (1.0 + test.tolerance).ln();
            for (side, alternatives, restarts) in HARM_AND_SAFETY {
                for shift in [-2.0, -0.5, -0.1, 0.0, 0.1, 0.5, 2.0] {
                    let spec = (side, alternatives, restarts);
                    let skipping = running_max_log_evalue(
                        &aligned,
                        null + shift,
                        spec,
                        f64::INFINITY,
                        Evaluation::Exact,
                    );
                    let full = running_max_in_full(&aligned, null + shift, spec);
                    assert_eq!(skipping.to_bits(), full.to_bits(), "{skipping} {full}");
                }
            }
        }
    }

    // Pins that the fused evaluation that steers the bound search is the exact one up to
    // rounding: every alternative's summed log-likelihood ratio, at every step.
    #[test]
    fn fused_evaluation_is_the_exact_one_up_to_rounding() {
        for (steps, test) in random_windows(60, 31) {
            for (side, alternatives, restarts) in HARM_AND_SAFETY {
                for shift in [-3.0, 0.0, 3.0] {
                    let null = (1.0 + test.tolerance).ln() + shift;
                    let mut exact = MixtureProcess::new(null, side, alternatives, restarts);
                    let mut fused = MixtureProcess::evaluated(
                        null,
                        side,
                        alternatives,
                        restarts,
                        Evaluation::Fused,
                    );
                    for (index, aligned) in aligned_steps(&steps).enumerate() {
                        for process in [&mut exact, &mut fused] {
                            process.begin_step(index);
                            process.update(aligned.evidence.as_ref(), &aligned);
                        }
                        for (e, f) in exact
                            .log_likelihood_ratios
                            .iter()
                            .zip(&fused.log_likelihood_ratios)
                        {
                            assert!((e - f).abs() <= 1e-9 * (1.0 + e.abs()), "{e} {f}");
                        }
                        let (e, f) = (exact.log_evalue(), fused.log_evalue());
                        assert!((e - f).abs() <= 1e-9 * (1.0 + e.abs()), "{e} {f}");
                    }
                }
            }
        }
    }

    /// Whether two outcomes are the same bit for bit, every field and every
    /// point of the path.
    fn same_bits(a: &RatioOutcome, b: &RatioOutcome) -> bool {
        let bits = |o: &RatioOutcome| {
            [
                o.canary_rate,
                o.baseline_rate,
                o.ratio_estimate,
                o.ratio_lower,
                o.ratio_upper,
                o.harm_evidence,
                o.safety_evidence,
                o.threshold,
                o.confidence,
            ]
            .map(f64::to_bits)
        };
        let path = |o: &RatioOutcome| -> Vec<(usize, u64, u64)> {
            o.path
                .iter()
                .map(|p| (p.step, p.harm.to_bits(), p.safety.to_bits()))
                .collect()
        };
        a.decision == b.decision
            && a.decided_at_step == b.decided_at_step
            && bits(a) == bits(b)
            && path(a) == path(b)
    }

    /// A splitmix64 stream of uniforms in [0, 1), for the looks' settings.
    fn uniforms(seed: u64) -> impl FnMut() -> f64 {
        let mut state = seed ^ 0x2545_f491_4f6c_dd1d;
        move || {
            state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            (z ^ (z >> 31)) as f64 / (u64::MAX as f64 + 1.0)
        }
    }

    // Pins that the empty sum and its continuation are `Iterator::sum`'s, bit
    // for bit, which the checkpoints' sums rely on.
    #[test]
    fn sums_on_from_a_partial_sum_are_the_whole_sum() {
        let mut uniform = uniforms(3);
        for length in 0..50 {
            let values: Vec<f64> = (0..length)
                .map(|_| (uniform() - 0.3) * 10f64.powf(uniform() * 6.0 - 3.0))
                .chain([-0.0])
                .collect();
            let whole: f64 = values.iter().sum();
            for split in 0..=values.len() {
                let partial = sum_on(empty_sum(), values[..split].iter().copied());
                let resumed = sum_on(partial, values[split..].iter().copied());
                assert_eq!(resumed.to_bits(), whole.to_bits());
            }
        }
        assert_eq!(
            empty_sum().to_bits(),
            std::iter::empty::<f64>().sum::<f64>().to_bits()
        );
    }

    // Pins that a chain of looks, each resumed from the last one's checkpoint,
    // gives at every look the fresh look's outcome bit for bit: windows grown
    // a few steps at a time (thin and heavy traffic, gaps, bursts, unknown
    // steps, late regressions), with looks whose last steps changed since
    // the look before, looks whose start moved, and looks that went back.
    #[test]
    fn looks_resumed_from_checkpoints_are_fresh_looks_bit_for_bit() {
        let mut uniform = uniforms(11);
        let mut resumed_looks = 0;
        for (mut window, test) in random_windows(40, 57) {
            let mut checkpoint: Option<RatioCheckpoint> = None;
            let mut length = 1 + (uniform() * 20.0) as usize;
            let mut offset = 0;
            while offset + length <= window.len() {
                let chance = uniform();
                if chance < 0.15 && length > 2 {
                    // Late samples: the last steps of the last look change.
                    let end = offset + length;
                    let changed = 1 + (uniform() * 3.0) as usize;
                    for step in &mut window[end.saturating_sub(changed)..end] {
                        step.canary_bad += 1.0;
                        step.baseline_total += 2.0;
                    }
                } else if chance < 0.2 {
                    // Another start: the window's first steps are others.
                    offset += 1;
                } else if chance < 0.25 && length > 12 {
                    // A look at an earlier end (a replay).
                    length -= 10;
                }
                if offset + length > window.len() {
                    break;
                }
                let steps = &window[offset..offset + length];
                let fresh = ratio_test(steps, &test);
                let (outcome, next) = ratio_test_from(steps, &test, checkpoint.as_ref());
                assert!(
                    same_bits(&outcome, &fresh),
                    "look at {length} steps from {offset}: {outcome:?} against {fresh:?}"
                );
                if checkpoint.is_some() {
                    resumed_looks += 1;
                }
                checkpoint = Some(next);
                length += 1 + (uniform() * 6.0) as usize;
            }
        }
        assert!(resumed_looks > 200, "{resumed_looks} looks resumed");
    }

    // Pins that a look with no checkpoint is the fresh look, and that a
    // checkpoint of another test (any parameter) is not used: its outcome is
    // the fresh one of the test asked, and resuming from it is not tried.
    #[test]
    fn checkpoints_of_other_tests_are_not_used() {
        for (steps, test) in random_windows(20, 91) {
            let (outcome, checkpoint) = ratio_test_from(&steps, &test, None);
            assert!(same_bits(&outcome, &ratio_test(&steps, &test)));
            let others = [
                RatioTest {
                    alpha: test.alpha * (1.0 + f64::EPSILON),
                    ..test
                },
                RatioTest {
                    tolerance: test.tolerance + 0.01,
                    ..test
                },
                RatioTest {
                    direction: match test.direction {
                        Direction::Increase => Direction::Either,
                        _ => Direction::Increase,
                    },
                    ..test
                },
            ];
            for other in others {
                assert!(!same_test(&checkpoint.test, &other));
                let (outcome, _) = ratio_test_from(&steps, &other, Some(&checkpoint));
                assert!(same_bits(&outcome, &ratio_test(&steps, &other)));
            }
        }
    }

    // Pins that a confidence bound whose cell still stands after a look's
    // new steps is found without a search, and is the search's.
    #[test]
    fn a_bound_whose_cell_stands_keeps_its_walks() {
        let (steps, test) = random_windows(30, 5)
            .into_iter()
            .find(|(steps, _)| steps.len() > 200)
            .expect("a long window");
        let (_, checkpoint) = ratio_test_from(&steps[..steps.len() - 4], &test, None);
        let end = checkpoint.resumes.last().expect("a place at the end");
        assert_eq!(end.at, steps.len() - 4);
        assert!(end.bounds.iter().all(Option::is_some));
        let (outcome, next) = ratio_test_from(&steps, &test, Some(&checkpoint));
        assert!(same_bits(&outcome, &ratio_test(&steps, &test)));
        // The look began after its own `back`: the last checkpoint's earlier
        // place is kept, beside the new end.
        assert_eq!(
            next.resumes.iter().map(|r| r.at).collect::<Vec<_>>(),
            [steps.len() - 4 - RESUME_BEFORE_END_STEPS, steps.len()]
        );
        let cells = |resume: &Resume| -> Vec<(Option<u64>, u64)> {
            resume
                .bounds
                .iter()
                .flatten()
                .map(|ends| (ends.rejected.as_ref().map(|r| r.0), ends.kept.0))
                .collect()
        };
        let next_end = next.resumes.last().expect("a place at the end");
        assert_eq!(cells(end), cells(next_end));
        assert!(next_end.bounds.iter().flatten().all(|ends| {
            ends.rejected.as_ref().is_none_or(|r| r.1.rejected()) && !ends.kept.1.rejected()
        }));
    }
}
