//! Anytime-valid comparison of two bucketed latency distributions: is the
//! canary slower than tolerated anywhere in its distribution?
//!
//! `distribution_test(edges, steps, &DistributionTest)` reads, for every step
//! of the window, both sides' cumulative bucket counts at the histogram's
//! finite bucket edges and their totals, and returns the decision as of the
//! last step, the evidence path, and which edge carries the evidence.
//!
//! # The null: no percentile more than `tolerance` slower
//!
//! With `S_c` and `S_b` the two sides' survival functions (the share of
//! requests slower than `x`), "no percentile of the canary more than
//! `tolerance` slower than the baseline's" (`Q_c(p) <= (1 + tol) Q_b(p)` for
//! every `p`) is the same as `S_c(x) <= S_b(x / (1 + tol))` for every `x`: a
//! stochastic order with a relative shift (Lindon, Sanden & Shirikian,
//! "Rapid regression detection in software deployments through sequential
//! testing", KDD 2022, test stochastic order the same way).
//!
//! # One counts test per bucket edge
//!
//! At every finite bucket edge `e`, "requests slower than `e`" is a count
//! metric of the kind [`super::counts`] judges: the canary's bad events are
//! its requests above `e`, the baseline's its requests above `x = e / (1 + tol)`,
//! and the counts test runs at ratio tolerance 0 (null `q_c <= q_b`). It
//! keeps all that test's protections against real scrape timing (blocks,
//! spike-gated persistence, e-detector restarts; see docs/statistics.md).
//!
//! *Tolerance 0* compares the two sides at the same edge: integer counts,
//! and the null `S_c(e) <= S_b(e)` follows from the distribution null with
//! no assumption.
//!
//! *Tolerance above 0* needs the baseline's count above `x`, which is
//! rarely an edge. It is read by linear interpolation of the baseline's
//! cumulative count inside the bucket `(e_lo, e_hi]` that holds `x`
//! (`histogram_quantile`'s assumption), so it is a fractional count. A
//! fractional count is not in general admissible in the binomial e-process,
//! but this one is: it is the conditional expectation, given the bucket
//! counts, of the integer count obtained by calling each of the bucket's
//! requests "above `x`" independently with chance `(e_hi - x) / (e_hi - e_lo)`
//! (a binomial thinning), and one step's likelihood ratio `x1^c y1^b` is
//! log-linear, hence convex, in the counts, so by Jensen's inequality its
//! value at the expected count is at most its conditional mean at the thinned
//! count. That thinned count is `Binomial(n_b, s)` with `s` the chord of
//! `S_b` over the bucket at `x`, so the step's ratio has mean at most 1
//! whenever `S_c(e) <= s`. What is assumed is therefore exactly this:
//!
//! - always true, no assumption: if the canary is nowhere slower than the
//!   baseline (`S_c <= S_b`, any tolerance), since `s >= S_b(e_hi) >= S_b(e)`
//!   (the bucket that holds `x < e` ends at or below `e`);
//! - between no slowdown and the tolerated one, the baseline's latency
//!   density must not rise inside that bucket (`S_b` on or above its chord
//!   there; a uniform spread, `histogram_quantile`'s assumption, is the
//!   boundary case). Where the density rises (below the mode of the
//!   distribution), a canary slower by almost exactly the tolerance may be
//!   rolled back more often than alpha.
//!
//! # Combining the edges
//!
//! Under the null every edge's harm e-process is valid (each is at most a
//! nonnegative supermartingale with respect to the histogram's counts), so
//! their average with weights fixed before any data (equal over the finite
//! edges) is one too, and rolling back when the average reaches `1 / alpha`
//! keeps the metric's one alpha (Ville's inequality); it costs a factor of
//! at most the number of edges against knowing the right edge in advance.
//! The edge with the largest harm e-value names the part that moved.
//!
//! Safety (the canary is within tolerance at every edge) is an
//! intersection-union test (Berger, "Multiparameter hypothesis testing and
//! acceptance sampling", Technometrics 1982): every edge's safety e-process
//! must have reached `1 / alpha`, each at the whole alpha, with no split.
//! It speaks only of the edges (and, above tolerance 0, of the interpolated
//! baseline points); an edge above which neither side has any request
//! gathers no safety evidence, so early promotion is rare in practice.

use super::counts::{
    Decision, EvidencePoint, PathWalk, RatioTest, StepCounts, latest_place, place_before_end,
    ratio_paths, walk_paths_on,
};
use super::{Direction, StatsError};

/// Cumulative bucket counts of one side during one step: the increase of
/// the bucket counter at each finite edge (requests at or below it) and of
/// the `+Inf` bucket (all requests). NaN marks a step whose counts are unknown.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SideBuckets {
    /// Requests at or below each finite edge, in the order of the edges.
    pub at_or_below: Vec<f64>,
    /// All requests (the `+Inf` bucket).
    pub total: f64,
}

/// Both sides' bucket counts during one step of the window.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HistogramStep {
    /// The canary's bucket counts.
    pub canary: SideBuckets,
    /// The baseline's bucket counts.
    pub baseline: SideBuckets,
}

/// What to test: is any percentile of the canary more than `tolerance`
/// slower than the baseline's?
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DistributionTest {
    /// Relative quantile shift still acceptable: 0.1 means no percentile may
    /// be more than 10% slower.
    pub tolerance: f64,
    /// Probability of declaring harm on a canary within tolerance, over all looks.
    pub alpha: f64,
}

impl DistributionTest {
    /// Builds a test after checking that `alpha` lies in (0, 1) and that the
    /// tolerance is finite and not negative.
    pub fn new(tolerance: f64, alpha: f64) -> Result<DistributionTest, StatsError> {
        RatioTest::new(Direction::Increase, tolerance, alpha)?;
        Ok(DistributionTest { tolerance, alpha })
    }
}

/// One bucket edge's comparison, pooled over the window.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct EdgeOutcome {
    /// The edge, in seconds: the canary's requests above it are counted.
    pub edge_seconds: f64,
    /// Where the baseline's requests are counted: `edge / (1 + tolerance)`.
    pub baseline_point_seconds: f64,
    /// Share of the canary's requests above the edge, pooled over the window.
    pub canary_share_above: f64,
    /// Share of the baseline's requests above its point, pooled over the
    /// window (interpolated inside a bucket when the point is not an edge).
    pub baseline_share_above: f64,
    /// This edge's persisted harm e-value at the last step.
    pub harm: f64,
    /// The largest persisted safety e-value this edge reached.
    pub safety: f64,
}

/// The result of [`distribution_test`].
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct DistributionOutcome {
    /// Harm, within tolerance or undecided, as of the last step.
    pub decision: Decision,
    /// Step at which the decision's boundary was first crossed.
    pub decided_at_step: Option<usize>,
    /// Largest average harm e-value over the edges seen on the path.
    pub harm_evidence: f64,
    /// The smallest, over edges, of the largest safety e-value each reached.
    pub safety_evidence: f64,
    /// The e-value the average (harm) or every edge (safety) must reach.
    pub threshold: f64,
    /// Index into `edges` of the edge with the largest harm e-value at the
    /// decision (or at the last step when undecided); `None` without edges.
    pub moved_edge: Option<usize>,
    /// Every finite edge's comparison.
    pub edges: Vec<EdgeOutcome>,
    /// Average harm and smallest safety e-value after every step.
    pub path: Vec<EvidencePoint>,
}

/// Why bucket counts cannot be compared.
#[derive(Clone, Debug, thiserror::Error, PartialEq)]
pub enum DistributionError {
    /// The edges are not finite, positive and strictly increasing.
    #[error("bucket edges must be finite, above 0 and increasing; got {0:?}")]
    BadEdges(Vec<f64>),
    /// A step's counts do not have one value per edge.
    #[error("step {step} has {got} bucket counts for {expected} edges")]
    WrongLength {
        step: usize,
        got: usize,
        expected: usize,
    },
}

/// Requests above `point` seconds out of one side's step, with the
/// cumulative count at `point` interpolated linearly inside its bucket (the
/// count at 0 s is 0) and taken exactly at an edge.
fn count_above(edges: &[f64], side: &SideBuckets, point: f64) -> f64 {
    if side.total.is_nan() || side.at_or_below.iter().any(|v| v.is_nan()) {
        return f64::NAN;
    }
    // The first edge at or above the point (within rounding: an edge itself).
    let close = |edge: f64| (edge - point).abs() <= 1e-9 * edge.max(1e-12);
    let Some(upper) = edges.iter().position(|&edge| edge >= point || close(edge)) else {
        return 0.0;
    };
    let at_upper = side.at_or_below[upper];
    let at_point = if close(edges[upper]) {
        at_upper
    } else {
        let (low_edge, at_low) = match upper {
            0 => (0.0, 0.0),
            i => (edges[i - 1], side.at_or_below[i - 1]),
        };
        at_low + (at_upper - at_low) * (point - low_edge) / (edges[upper] - low_edge)
    };
    (side.total - at_point).max(0.0)
}

/// [`edge_steps`] at every edge, each beside its baseline point.
fn every_edge_steps(
    edges: &[f64],
    steps: &[HistogramStep],
    points: &[f64],
) -> Vec<Vec<StepCounts>> {
    points
        .iter()
        .enumerate()
        .map(|(index, &point)| edge_steps(edges, steps, index, point))
        .collect()
}

/// The counts test's input at one edge: the canary's requests above
/// `edge`, the baseline's above `point`.
fn edge_steps(edges: &[f64], steps: &[HistogramStep], edge: usize, point: f64) -> Vec<StepCounts> {
    steps
        .iter()
        .map(|step| StepCounts {
            canary_bad: count_above(edges, &step.canary, edges[edge]),
            canary_total: step.canary.total,
            baseline_bad: count_above(edges, &step.baseline, point),
            baseline_total: step.baseline.total,
        })
        .collect()
}

/// Runs the distribution test over the window's steps.
///
/// As with [`super::counts::ratio_test`], the decision as of step `k`
/// depends only on `steps[..=k]`. Harm is declared once the equally
/// weighted average of the edges' harm e-values has reached `1 / alpha`;
/// within tolerance once every edge's safety e-value has (harm wins if both).
pub fn distribution_test(
    edges: &[f64],
    steps: &[HistogramStep],
    test: &DistributionTest,
) -> Result<DistributionOutcome, DistributionError> {
    let (ratio, threshold, points) = checked(edges, steps, test)?;
    let edge_counts = every_edge_steps(edges, steps, &points);
    // The edges' walks side by side: they share their blocks' likelihoods.
    let windows: Vec<&[StepCounts]> = edge_counts.iter().map(Vec::as_slice).collect();
    let paths = ratio_paths(&windows, &ratio);
    let mut place = DistributionResume::start(edges.len(), &ratio);
    for ((edge, counts), path) in place.edges.iter_mut().zip(&edge_counts).zip(&paths) {
        edge.add(counts, path);
    }
    let mut path = Vec::with_capacity(steps.len());
    combine(&mut place, &paths, 0..steps.len(), threshold, &mut path);
    Ok(outcome_of(&place, edges, &points, threshold, path))
}

/// The edges and the steps' shape checked, and what the test of them needs:
/// the counts test each edge runs, the threshold, and each edge's baseline
/// point (`edge / (1 + tolerance)`).
fn checked(
    edges: &[f64],
    steps: &[HistogramStep],
    test: &DistributionTest,
) -> Result<(RatioTest, f64, Vec<f64>), DistributionError> {
    let edges_ok = edges.iter().all(|e| e.is_finite() && *e > 0.0)
        && edges.windows(2).all(|pair| pair[0] < pair[1]);
    if !edges_ok {
        return Err(DistributionError::BadEdges(edges.to_vec()));
    }
    for (index, step) in steps.iter().enumerate() {
        for side in [&step.canary, &step.baseline] {
            if side.at_or_below.len() != edges.len() {
                return Err(DistributionError::WrongLength {
                    step: index,
                    got: side.at_or_below.len(),
                    expected: edges.len(),
                });
            }
        }
    }
    let ratio = RatioTest {
        direction: Direction::Increase,
        tolerance: 0.0,
        alpha: test.alpha,
    };
    let valid = test.alpha > 0.0 && test.alpha < 1.0 && test.tolerance.is_finite();
    let threshold = if valid && test.tolerance >= 0.0 {
        1.0 / test.alpha
    } else {
        f64::INFINITY
    };
    let points: Vec<f64> = edges
        .iter()
        .map(|edge| edge / (1.0 + test.tolerance.max(0.0)))
        .collect();
    Ok((ratio, threshold, points))
}

/// Folds the edges' evidence at the steps `range` (their points in `paths`,
/// one list per edge, from the range's first step) into the combination's
/// maxima and crossings, and its points into `path`.
fn combine(
    place: &mut DistributionResume,
    paths: &[Vec<EvidencePoint>],
    range: std::ops::Range<usize>,
    threshold: f64,
    path: &mut Vec<EvidencePoint>,
) {
    let edges = place.edges.len();
    for (offset, index) in range.enumerate() {
        let harms = paths.iter().map(|p| p[offset].harm);
        let average = if edges == 0 {
            1.0
        } else {
            harms.clone().sum::<f64>() / edges as f64
        };
        place.harm_max = place.harm_max.max(average);
        if place.harm_crossed_at.is_none() && place.harm_max >= threshold {
            place.harm_crossed_at = Some(index);
            place.moved_at_crossing = largest(harms);
        }
        for (max, edge_path) in place.safety_max.iter_mut().zip(paths) {
            *max = max.max(edge_path[offset].safety);
        }
        let safety_running = place
            .safety_max
            .iter()
            .copied()
            .fold(f64::INFINITY, f64::min);
        if place.safety_crossed_at.is_none() && edges > 0 && safety_running >= threshold {
            place.safety_crossed_at = Some(index);
        }
        path.push(EvidencePoint {
            step: index,
            harm: average,
            safety: paths
                .iter()
                .map(|p| p[offset].safety)
                .fold(f64::INFINITY, f64::min),
        });
    }
}

/// The outcome of the edges and combination as `place` holds them.
fn outcome_of(
    place: &DistributionResume,
    edges: &[f64],
    points: &[f64],
    threshold: f64,
    path: Vec<EvidencePoint>,
) -> DistributionOutcome {
    let outcomes: Vec<EdgeOutcome> = edges
        .iter()
        .zip(points)
        .zip(&place.edges)
        .map(|((&edge, &point), state)| {
            let share = |(b, t): (f64, f64)| if t > 0.0 { b / t } else { f64::NAN };
            EdgeOutcome {
                edge_seconds: edge,
                baseline_point_seconds: point,
                canary_share_above: share(state.shares[0]),
                baseline_share_above: share(state.shares[1]),
                harm: state.last_harm,
                safety: state.safety,
            }
        })
        .collect();
    let (decision, decided_at_step) = match (place.harm_crossed_at, place.safety_crossed_at) {
        (Some(at), _) => (Decision::Harm, Some(at)),
        (None, Some(at)) => (Decision::WithinTolerance, Some(at)),
        (None, None) => (Decision::Undecided, None),
    };
    let moved_edge = place
        .moved_at_crossing
        .or_else(|| largest(outcomes.iter().map(|o| o.harm)));
    DistributionOutcome {
        decision,
        decided_at_step,
        harm_evidence: place.harm_max,
        safety_evidence: if edges.is_empty() {
            1.0
        } else {
            place
                .safety_max
                .iter()
                .copied()
                .fold(f64::INFINITY, f64::min)
        },
        threshold,
        moved_edge,
        edges: outcomes,
        path,
    }
}

/// What [`distribution_test_from`] keeps of a look for the next look at a
/// longer window of the same canary: the steps it was taken on (flat, both
/// sides' counts per step), the edges and the test, the evidence path, and,
/// at the window's end and [`super::counts::RESUME_BEFORE_END_STEPS`] before it, each
/// edge's walk (blocks and e-processes), its pooled shares, its last harm
/// and largest safety e-value, and the combination's running maxima and
/// crossings. As with [`super::counts::RatioCheckpoint`], a place applies
/// only where the window's steps up to it are the checkpoint's bit for bit,
/// with the same edges and test bit for bit.
#[derive(Clone, Debug)]
pub struct DistributionCheckpoint {
    /// The edges' bits.
    edges: Vec<u64>,
    /// The tolerance's and alpha's bits.
    test: [u64; 2],
    /// Per step, the canary's counts at the edges and its total, then the
    /// baseline's (see [`flat_step`]).
    steps: Vec<f64>,
    /// The combined evidence path.
    path: Vec<EvidencePoint>,
    /// Places to resume from, earliest first.
    resumes: Vec<DistributionResume>,
}

impl DistributionCheckpoint {
    /// About how many bytes it holds, for a store that bounds their sum.
    pub fn size_bytes(&self) -> usize {
        use std::mem::size_of;
        // Each place: a walk per edge, a few processes of a few alternatives each.
        const PER_EDGE_PLACE_BYTES: usize = 8 * 1024;
        size_of::<DistributionCheckpoint>()
            + self.steps.len() * size_of::<f64>()
            + self.path.len() * size_of::<EvidencePoint>()
            + self.resumes.len() * self.edges.len() * PER_EDGE_PLACE_BYTES
    }
}

/// One place a [`DistributionCheckpoint`] can resume from (and, for a
/// fresh test, the state it builds up).
#[derive(Clone, Debug)]
struct DistributionResume {
    /// Steps walked.
    at: usize,
    edges: Vec<EdgeResume>,
    harm_max: f64,
    harm_crossed_at: Option<usize>,
    safety_max: Vec<f64>,
    safety_crossed_at: Option<usize>,
    moved_at_crossing: Option<usize>,
}

impl DistributionResume {
    /// The place before any step.
    fn start(edges: usize, ratio: &RatioTest) -> DistributionResume {
        DistributionResume {
            at: 0,
            edges: (0..edges)
                .map(|_| EdgeResume {
                    walk: PathWalk::new(ratio),
                    shares: [(0.0, 0.0); 2],
                    last_harm: 1.0,
                    safety: 1.0,
                })
                .collect(),
            harm_max: 1.0,
            harm_crossed_at: None,
            safety_max: vec![1.0; edges],
            safety_crossed_at: None,
            moved_at_crossing: None,
        }
    }
}

/// One edge's part of a [`DistributionResume`].
#[derive(Clone, Debug)]
struct EdgeResume {
    walk: PathWalk,
    /// Bad and total events of the canary, then of the baseline, over the
    /// steps whose counts are all finite.
    shares: [(f64, f64); 2],
    /// The persisted harm e-value at the last step (1 before any).
    last_harm: f64,
    /// The largest persisted safety e-value so far (1 before any).
    safety: f64,
}

impl EdgeResume {
    /// Folds in the edge's counts at the next steps and its evidence there.
    fn add(&mut self, counts: &[StepCounts], path: &[EvidencePoint]) {
        let known = counts.iter().filter(|c| {
            [
                c.canary_bad,
                c.canary_total,
                c.baseline_bad,
                c.baseline_total,
            ]
            .iter()
            .all(|v| v.is_finite())
        });
        for c in known {
            let [canary, baseline] = &mut self.shares;
            *canary = (canary.0 + c.canary_bad, canary.1 + c.canary_total);
            *baseline = (baseline.0 + c.baseline_bad, baseline.1 + c.baseline_total);
        }
        if let Some(last) = path.last() {
            self.last_harm = last.harm;
        }
        self.safety = path.iter().map(|p| p.safety).fold(self.safety, f64::max);
    }
}

/// Values per step of a [`DistributionCheckpoint`]'s flat steps.
fn flat_width(edges: usize) -> usize {
    2 * (edges + 1)
}

/// One step's counts, flat: the canary's at the edges and its total, then
/// the baseline's.
fn flat_step(step: &HistogramStep) -> impl Iterator<Item = f64> + '_ {
    [&step.canary, &step.baseline]
        .into_iter()
        .flat_map(|side| side.at_or_below.iter().copied().chain([side.total]))
}

/// [`distribution_test`], resumed from `checkpoint` (taken by an earlier call
/// on a window that shares its first steps with `steps`) where it applies,
/// with the checkpoint of this look. The outcome is [`distribution_test`]'s,
/// bit for bit: each edge's walk goes on from where it was (every block's
/// reading depends only on the steps before it), and so do the pooled shares
/// and the combination's maxima; only the new steps are walked. A
/// checkpoint of other edges or another test is not used.
pub fn distribution_test_from(
    edges: &[f64],
    steps: &[HistogramStep],
    test: &DistributionTest,
    checkpoint: Option<&DistributionCheckpoint>,
) -> Result<(DistributionOutcome, DistributionCheckpoint), DistributionError> {
    let (ratio, threshold, points) = checked(edges, steps, test)?;
    let width = flat_width(edges.len());
    let total = steps.len();
    let back = place_before_end(total);
    let edge_bits: Vec<u64> = edges.iter().map(|e| e.to_bits()).collect();
    let test_bits = [test.tolerance.to_bits(), test.alpha.to_bits()];
    // The checkpoint, if its edges and test are these, and how many first
    // steps it shares with the window.
    let usable = checkpoint
        .filter(|c| c.edges == edge_bits && c.test == test_bits)
        .map(|c| {
            let shared = c
                .steps
                .chunks(width)
                .zip(steps)
                .take_while(|(kept, step)| {
                    kept.iter()
                        .zip(flat_step(step))
                        .all(|(a, b)| a.to_bits() == b.to_bits())
                })
                .count();
            (c, shared)
        });
    let resume =
        usable.and_then(|(c, shared)| latest_place(&c.resumes, |r| r.at, shared).map(|r| (c, r)));
    let mut place = match resume {
        Some((_, r)) => r.clone(),
        None => DistributionResume::start(edges.len(), &ratio),
    };
    let start = place.at;
    let back_walked = back.filter(|&back| back >= start);
    let (mut path, mut flat) = match resume {
        Some((c, _)) => (c.path[..start].to_vec(), c.steps[..start * width].to_vec()),
        None => (Vec::new(), Vec::new()),
    };
    path.reserve(total - start);
    flat.reserve((total - start) * width);
    for step in &steps[start..] {
        flat.extend(flat_step(step));
    }
    // Walked in two stretches when a place at `back` is taken on the way.
    let stretches = match back_walked {
        Some(back) => [start..back, back..total],
        None => [start..total, total..total],
    };
    let mut at_back = None;
    for (stretch, range) in stretches.into_iter().enumerate() {
        if stretch == 1 && back_walked.is_some() {
            at_back = Some(place.clone());
        }
        let new_steps = &steps[range.clone()];
        let edge_counts = every_edge_steps(edges, new_steps, &points);
        let windows: Vec<&[StepCounts]> = edge_counts.iter().map(Vec::as_slice).collect();
        let mut walks: Vec<PathWalk> = place.edges.iter().map(|e| e.walk.clone()).collect();
        let paths = walk_paths_on(&mut walks, &windows);
        for (((edge, walk), counts), edge_path) in place
            .edges
            .iter_mut()
            .zip(walks)
            .zip(&edge_counts)
            .zip(&paths)
        {
            edge.walk = walk;
            edge.add(counts, edge_path);
        }
        place.at = range.end;
        combine(&mut place, &paths, range, threshold, &mut path);
    }
    let outcome = outcome_of(&place, edges, &points, threshold, path);
    // The places of the next checkpoint: the latest at or before `back`
    // (taken on the way, or kept from the last checkpoint), and the end.
    let mut resumes = Vec::with_capacity(2);
    match at_back {
        Some(at_back) => resumes.push(at_back),
        None => {
            if let Some((c, shared)) = usable {
                let limit = back.unwrap_or(0).min(shared);
                if let Some(earlier) = latest_place(&c.resumes, |r| r.at, limit) {
                    resumes.push(earlier.clone());
                }
            }
        }
    }
    resumes.push(place);
    let checkpoint = DistributionCheckpoint {
        edges: edge_bits,
        test: test_bits,
        steps: flat,
        path: outcome.path.clone(),
        resumes,
    };
    Ok((outcome, checkpoint))
}

/// The `q`-quantile (0 < q < 1) of one side's pooled bucket counts, by
/// linear interpolation inside the bucket that holds it, as Prometheus's
/// `histogram_quantile` places it (the first bucket starts at 0 s; a quantile
/// in the `+Inf` bucket is the largest finite edge). NaN without requests.
pub fn interpolated_quantile(edges: &[f64], side: &SideBuckets, q: f64) -> f64 {
    if side.total.is_nan()
        || side.total <= 0.0
        || !(0.0..=1.0).contains(&q)
        || edges.len() != side.at_or_below.len()
    {
        return f64::NAN;
    }
    let rank = q * side.total;
    let Some(bucket) = side.at_or_below.iter().position(|&count| count >= rank) else {
        return edges.last().copied().unwrap_or(f64::NAN);
    };
    let (low_edge, low_count) = match bucket {
        0 => (0.0, 0.0),
        i => (edges[i - 1], side.at_or_below[i - 1]),
    };
    let in_bucket = side.at_or_below[bucket] - low_count;
    if in_bucket <= 0.0 {
        return edges[bucket];
    }
    low_edge + (edges[bucket] - low_edge) * (rank - low_count) / in_bucket
}

/// One side's bucket counts summed over the steps whose counts are known.
pub fn pooled(steps: &[HistogramStep], canary: bool) -> SideBuckets {
    pooled_counts(steps.iter().map(|step| {
        let side = if canary { &step.canary } else { &step.baseline };
        (side.at_or_below.as_slice(), side.total)
    }))
}

/// Per-step counts (requests at or below each edge, and all requests)
/// summed over the steps whose counts are known.
pub fn pooled_counts<'a>(steps: impl Iterator<Item = (&'a [f64], f64)>) -> SideBuckets {
    let mut sum = SideBuckets::default();
    for (at_or_below, total) in steps {
        if total.is_nan() || at_or_below.iter().any(|v| !v.is_finite()) {
            continue;
        }
        if sum.at_or_below.len() < at_or_below.len() {
            sum.at_or_below.resize(at_or_below.len(), 0.0);
        }
        for (sum, value) in sum.at_or_below.iter_mut().zip(at_or_below) {
            *sum += value;
        }
        sum.total += total;
    }
    sum
}

/// Index of the largest value; `None` when there is none.
fn largest(values: impl Iterator<Item = f64>) -> Option<usize> {
    values
        .enumerate()
        .fold(None, |best: Option<(usize, f64)>, (i, v)| match best {
            Some((_, b)) if b >= v => best,
            _ => Some((i, v)),
        })
        .map(|(i, _)| i)
}

#[cfg(test)]
mod tests {
    use super::*;

    const EDGES: [f64; 4] = [0.05, 0.1, 0.25, 0.5];

    /// A side whose step puts `shares` of `total` requests in each bucket
    /// (the last share is above the last edge).
    fn side(total: f64, shares: [f64; 5]) -> SideBuckets {
        let mut running = 0.0;
        let at_or_below = shares[..4]
            .iter()
            .map(|s| {
                running += s * total;
                running
            })
            .collect();
        SideBuckets { at_or_below, total }
    }

    // Pins the interpolation: exact at an edge, linear inside a bucket, from 0 at 0 s.
    #[test]
    fn count_above_interpolates_inside_a_bucket_only() {
        let one = side(100.0, [0.2, 0.3, 0.3, 0.1, 0.1]);
        assert_eq!(count_above(&EDGES, &one, 0.1), 50.0);
        assert!((count_above(&EDGES, &one, 0.075) - 65.0).abs() < 1e-9);
        assert!((count_above(&EDGES, &one, 0.025) - 90.0).abs() < 1e-9);
        assert_eq!(count_above(&EDGES, &one, 2.0), 0.0);
    }

    // Pins the Jensen argument behind the interpolated (fractional) baseline count: summed
    // exactly over the baseline's bucket and the thinning law, the one-step likelihood
    // ratio at the expected count is at most its mean at the thinned integer count, which
    // is at most 1 when the canary's share above the edge is at most the chord value.
    #[test]
    fn interpolated_count_is_admissible_by_jensen() {
        use statrs::distribution::{Binomial, Discrete};
        let (n_c, n_b) = (20_u64, 20_u64);
        // Baseline: share above the bucket's low edge and above its high edge; the point
        // lies at `fraction` of the way from the high edge down.
        for (above_low, above_high, fraction) in [(0.6, 0.2, 0.3), (0.3, 0.05, 0.8)] {
            let chord: f64 = above_high + (above_low - above_high) * fraction;
            for (p1, p0) in [(2.0_f64 / 3.0, 0.5_f64), (0.9, 0.5)] {
                let (x, y) = (p1 / p0, (1.0 - p1) / (1.0 - p0));
                let canary = Binomial::new(chord, n_c).expect("valid");
                // The baseline's requests above the high edge, and in the bucket.
                let high = Binomial::new(above_high, n_b).expect("valid");
                let mut at_expected = 0.0;
                let mut at_thinned = 0.0;
                for c in 0..=n_c {
                    for h in 0..=n_b {
                        let in_bucket_chance = (above_low - above_high) / (1.0 - above_high);
                        let in_bucket = Binomial::new(in_bucket_chance, n_b - h).expect("valid");
                        for k in 0..=(n_b - h) {
                            let weight = canary.pmf(c) * high.pmf(h) * in_bucket.pmf(k);
                            let expected = h as f64 + fraction * k as f64;
                            at_expected += weight * x.powf(c as f64) * y.powf(expected);
                            let thinned = Binomial::new(fraction, k).expect("valid");
                            for j in 0..=k {
                                at_thinned += weight
                                    * thinned.pmf(j)
                                    * x.powf(c as f64)
                                    * y.powi((h + j) as i32);
                            }
                        }
                    }
                }
                assert!(
                    at_expected <= at_thinned + 1e-12,
                    "{at_expected} {at_thinned}"
                );
                assert!(at_thinned <= 1.0 + 1e-9, "{at_thinned}");
            }
        }
    }

    /// `steps` equal steps of 300 requests a side with the given bucket shares.
    fn window(canary: [f64; 5], baseline: [f64; 5], steps: usize) -> Vec<HistogramStep> {
        vec![
            HistogramStep {
                canary: side(300.0, canary),
                baseline: side(300.0, baseline),
            };
            steps
        ]
    }

    // A canary whose body moved a bucket up (every request still under 0.25 s) is
    // rolled back, and the edge that moved is named.
    #[test]
    fn a_body_shift_below_every_threshold_is_caught_at_its_edge() {
        let baseline = [0.6, 0.35, 0.05, 0.0, 0.0];
        let canary = [0.3, 0.6, 0.1, 0.0, 0.0];
        let test = DistributionTest::new(0.0, 0.005).expect("valid");
        let outcome =
            distribution_test(&EDGES, &window(canary, baseline, 40), &test).expect("valid input");
        assert_eq!(outcome.decision, Decision::Harm);
        assert_eq!(outcome.moved_edge, Some(0));
        // Same data both ways round: the faster side is never judged slower.
        let reverse =
            distribution_test(&EDGES, &window(baseline, canary, 40), &test).expect("valid input");
        assert_ne!(reverse.decision, Decision::Harm);
    }

    // A tolerance forgives a shift inside it: a tenth of the requests moving up one bucket
    // of a 2x-spaced layout is tolerated at +100%, while at 0% it is not.
    #[test]
    fn tolerance_forgives_a_shift_inside_it() {
        let baseline = [0.6, 0.35, 0.05, 0.0, 0.0];
        let canary = [0.5, 0.45, 0.05, 0.0, 0.0];
        let strict = DistributionTest::new(0.0, 0.005).expect("valid");
        let loose = DistributionTest::new(1.0, 0.005).expect("valid");
        let steps = window(canary, baseline, 40);
        assert_eq!(
            distribution_test(&EDGES, &steps, &strict)
                .expect("valid")
                .decision,
            Decision::Harm
        );
        assert_ne!(
            distribution_test(&EDGES, &steps, &loose)
                .expect("valid")
                .decision,
            Decision::Harm
        );
    }

    // Pins the quantile's placement: linear inside its bucket from 0 s, the largest finite
    // edge when it lies in the +Inf bucket.
    #[test]
    fn interpolated_quantile_places_values_as_histogram_quantile_does() {
        let one = side(100.0, [0.2, 0.3, 0.3, 0.1, 0.1]);
        assert!((interpolated_quantile(&EDGES, &one, 0.1) - 0.025).abs() < 1e-12);
        assert!((interpolated_quantile(&EDGES, &one, 0.35) - 0.075).abs() < 1e-12);
        assert_eq!(interpolated_quantile(&EDGES, &one, 0.95), 0.5);
    }

    /// Window `number` of a seeded series: thin to heavy traffic, uneven
    /// splits, slow shares from none to heavy, steps where the canary served
    /// nothing or its counts are unknown; with its tolerance.
    fn random_window(
        number: usize,
        draw: &mut impl FnMut(f64) -> f64,
    ) -> (Vec<HistogramStep>, f64) {
        let traffic = [0.5, 3.0, 30.0, 300.0][number % 4];
        let share = [1.0, 0.3, 2.0][number % 3];
        let slow = [0.0, 0.02, 0.3][number % 3];
        let tolerance = [0.0, 0.1, 0.2, 1.0][(number / 4) % 4];
        let steps: Vec<HistogramStep> = (0..(20 + 37 * number))
            .map(|index| {
                let mut one = |mean: f64, slower: f64| {
                    // Requests per bucket: fast ones in the first three, slow ones
                    // above; nothing ever above the last edge.
                    let buckets = [
                        draw(mean * 0.5),
                        draw(mean * 0.3),
                        draw(mean * 0.2),
                        draw(mean * slower),
                        0.0,
                    ];
                    let mut running = 0.0;
                    let at_or_below: Vec<f64> = buckets[..4]
                        .iter()
                        .map(|b| {
                            running += b;
                            running
                        })
                        .collect();
                    SideBuckets {
                        at_or_below,
                        total: running + buckets[4],
                    }
                };
                let mut canary = one(traffic * share, slow * 2.0);
                let baseline = one(traffic, slow);
                if index % 17 == 5 {
                    canary = SideBuckets {
                        at_or_below: vec![0.0; 4],
                        total: 0.0,
                    };
                }
                if index % 41 == 7 {
                    canary.total = f64::NAN;
                }
                HistogramStep { canary, baseline }
            })
            .collect();
        (steps, tolerance)
    }

    // Pins that the edges walked side by side give, bit for bit, the outcome of each
    // edge's own walk (`ratio_path` of its counts, as the test was computed before), on
    // seeded random windows: thin to heavy traffic, uneven splits, gaps on one side, the
    // odd unknown step, empty upper buckets, and tolerances 0 (integer counts at the
    // edges) and above (interpolated baseline points).
    #[test]
    fn edges_walked_together_are_each_edges_own_walk_bit_for_bit() {
        use super::super::counts::ratio_path;
        use rand::SeedableRng;
        use rand_distr::{Distribution, Poisson};
        let mut rng = rand::rngs::StdRng::seed_from_u64(1506);
        let mut draw = |mean: f64| Poisson::new(mean).map_or(0.0, |p| p.sample(&mut rng));
        for number in 0..40_usize {
            let (steps, tolerance) = random_window(number, &mut draw);
            let test = DistributionTest::new(tolerance, 0.01).expect("valid");
            let outcome = distribution_test(&EDGES, &steps, &test).expect("valid input");
            let ratio = RatioTest::new(Direction::Increase, 0.0, 0.01).expect("valid");
            let alone: Vec<Vec<EvidencePoint>> = EDGES
                .iter()
                .enumerate()
                .map(|(index, edge)| {
                    let counts = edge_steps(&EDGES, &steps, index, edge / (1.0 + tolerance));
                    ratio_path(&counts, &ratio)
                })
                .collect();
            for ((&edge, found), path) in EDGES.iter().zip(&outcome.edges).zip(&alone) {
                let last = path.last().map_or(1.0, |p| p.harm);
                let safety = path.iter().map(|p| p.safety).fold(1.0, f64::max);
                assert_eq!(
                    (found.harm.to_bits(), found.safety.to_bits()),
                    (last.to_bits(), safety.to_bits()),
                    "window {number}, edge {edge}"
                );
            }
            // The combined path, rebuilt from the edges' own walks as the test combines them.
            for (step, found) in outcome.path.iter().enumerate() {
                let harm = alone.iter().map(|p| p[step].harm).sum::<f64>() / EDGES.len() as f64;
                let safety = alone
                    .iter()
                    .map(|p| p[step].safety)
                    .fold(f64::INFINITY, f64::min);
                assert_eq!(
                    (found.harm.to_bits(), found.safety.to_bits()),
                    (harm.to_bits(), safety.to_bits()),
                    "window {number}, step {step}"
                );
            }
        }
    }

    // Steps with the wrong number of buckets are refused rather than misread.
    #[test]
    fn mismatched_bucket_counts_are_refused() {
        let mut steps = window([0.2; 5], [0.2; 5], 2);
        steps[1].canary.at_or_below.pop();
        let test = DistributionTest::new(0.0, 0.005).expect("valid");
        assert_eq!(
            distribution_test(&EDGES, &steps, &test),
            Err(DistributionError::WrongLength {
                step: 1,
                got: 3,
                expected: 4
            })
        );
        assert!(distribution_test(&[0.1, 0.05], &[], &test).is_err());
    }

    /// Whether two outcomes are the same bit for bit, every field, edge and point.
    fn same_bits(a: &DistributionOutcome, b: &DistributionOutcome) -> bool {
        let numbers = |o: &DistributionOutcome| -> Vec<u64> {
            let mut all = vec![o.harm_evidence, o.safety_evidence, o.threshold];
            for edge in &o.edges {
                all.extend([
                    edge.edge_seconds,
                    edge.baseline_point_seconds,
                    edge.canary_share_above,
                    edge.baseline_share_above,
                    edge.harm,
                    edge.safety,
                ]);
            }
            for point in &o.path {
                all.extend([point.step as f64, point.harm, point.safety]);
            }
            all.into_iter().map(f64::to_bits).collect()
        };
        a.decision == b.decision
            && a.decided_at_step == b.decided_at_step
            && a.moved_edge == b.moved_edge
            && numbers(a) == numbers(b)
    }

    // Pins that a chain of looks, each resumed from the last one's checkpoint,
    // gives at every look the fresh look's outcome bit for bit: windows grown a
    // few steps at a time, with looks whose last steps changed, whose start
    // moved, or that went back; and that a checkpoint of another test or other
    // edges is not used.
    #[test]
    fn looks_resumed_from_checkpoints_are_fresh_looks_bit_for_bit() {
        use rand::SeedableRng;
        use rand_distr::{Distribution, Poisson};
        let mut rng = rand::rngs::StdRng::seed_from_u64(77);
        let mut draw = |mean: f64| Poisson::new(mean).map_or(0.0, |p| p.sample(&mut rng));
        let mut resumed = 0;
        for number in 0..16_usize {
            let (mut window, tolerance) = random_window(number, &mut draw);
            let test = DistributionTest::new(tolerance, 0.01).expect("valid");
            let mut checkpoint: Option<DistributionCheckpoint> = None;
            let (mut length, mut offset) = (1 + number % 7, 0);
            let mut look = 0_usize;
            while offset + length <= window.len() {
                look += 1;
                if look % 7 == 3 && length > 2 {
                    // Late samples: the last steps of the last look change.
                    let end = offset + length;
                    for step in &mut window[end - 2..end] {
                        step.baseline.total += 1.0;
                        step.canary.at_or_below[0] += 1.0;
                    }
                } else if look % 11 == 5 {
                    offset += 1;
                } else if look % 13 == 8 && length > 12 {
                    length -= 10;
                }
                if offset + length > window.len() {
                    break;
                }
                let steps = &window[offset..offset + length];
                let fresh = distribution_test(&EDGES, steps, &test).expect("valid input");
                let (outcome, next) =
                    distribution_test_from(&EDGES, steps, &test, checkpoint.as_ref())
                        .expect("valid input");
                assert!(
                    same_bits(&outcome, &fresh),
                    "window {number}, look at {length} steps from {offset}"
                );
                if look % 9 == 4 {
                    // Another test, and other edges, from this checkpoint.
                    let other = DistributionTest::new(tolerance + 0.05, 0.01).expect("valid");
                    let (outcome, _) = distribution_test_from(&EDGES, steps, &other, Some(&next))
                        .expect("valid input");
                    let fresh = distribution_test(&EDGES, steps, &other).expect("valid input");
                    assert!(same_bits(&outcome, &fresh));
                    let mut edges = EDGES;
                    edges[3] = 0.6;
                    let (outcome, _) = distribution_test_from(&edges, steps, &test, Some(&next))
                        .expect("valid input");
                    let fresh = distribution_test(&edges, steps, &test).expect("valid input");
                    assert!(same_bits(&outcome, &fresh));
                }
                resumed += usize::from(checkpoint.is_some());
                checkpoint = Some(next);
                length += 1 + look % 5;
            }
        }
        assert!(resumed > 200, "{resumed} looks resumed");
    }
}
