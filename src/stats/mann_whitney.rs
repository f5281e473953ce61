//! Mann-Whitney U test with the Hodges-Lehmann estimate, as Kayenta judges series.
//!
//! The numbers match R's `wilcox.test(experiment, control, conf.int = TRUE,
//! exact = FALSE, correct = TRUE)` (R's `stats` package, `wilcox.test.default`),
//! which Kayenta's judge reproduces:
//!
//! - the statistic is W = (rank sum of the experiment) - n_x (n_x + 1) / 2, with
//!   average ranks for ties;
//! - the p-value uses the normal approximation with the tie-corrected variance
//!   `n_x n_y / 12 * ((n_x + n_y + 1) - sum(t^3 - t) / ((n_x + n_y)(n_x + n_y - 1)))`
//!   (Lehmann, *Nonparametrics*, 1975, section 1.4) and a continuity
//!   correction of 0.5 toward the center;
//! - the interval inverts that statistic in the shift `d` (experiment - d
//!   against control) by Brent's root finder between min(x) - max(y) and
//!   max(x) - min(y) with tolerance 1e-4, as R's `uniroot` does, and the
//!   estimate is the root at z = 0 without continuity correction, which is the
//!   Hodges-Lehmann median of pairwise differences up to the root finder's
//!   tolerance (Hodges & Lehmann, Ann. Math. Stat. 1963).
//!
//! Because R's interval ends are roots of a step function, where Brent's method
//! stops within the step matters; this module follows the same iteration as R
//! so that the results agree to the last digits in the fixtures.

use super::StatsError;
use statrs::distribution::{ContinuousCDF, Normal};

/// Result of comparing an experiment sample with a control sample.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct MannWhitney {
    /// Mann-Whitney statistic of the experiment (R's W).
    pub u: f64,
    /// Two-sided p-value, normal approximation with tie and continuity correction.
    pub p_value: f64,
    /// Hodges-Lehmann estimate of the location shift experiment - control.
    pub estimate: f64,
    /// Lower end of the confidence interval for the shift.
    pub lower: f64,
    /// Upper end of the confidence interval for the shift.
    pub upper: f64,
    /// Confidence level of the interval.
    pub confidence: f64,
}

/// Absolute tolerance R's `wilcox.test` passes to `uniroot`.
const ROOT_TOLERANCE: f64 = 1e-4;

/// Iteration limit of R's `uniroot` (its default `maxiter`).
const ROOT_MAX_ITERATIONS: usize = 1000;

/// Two-sided test and confidence interval for the shift of `experiment` against `control`.
///
/// Errors when a sample is empty, a value is not finite, the confidence is
/// outside (0, 1), or every value of both samples is the same.
pub fn mann_whitney(
    experiment: &[f64],
    control: &[f64],
    confidence: f64,
) -> Result<MannWhitney, StatsError> {
    if !(confidence > 0.0 && confidence < 1.0) {
        return Err(StatsError::BadLevel {
            name: "confidence",
            value: confidence,
        });
    }
    for sample in [experiment, control] {
        if sample.is_empty() {
            return Err(StatsError::TooFewValues { needed: 1, got: 0 });
        }
    }
    if experiment.iter().chain(control).any(|v| !v.is_finite()) {
        return Err(StatsError::NotFinite);
    }
    let shifts = ShiftStatistic::new(experiment, control);

    let at_zero = shifts.evaluate(0.0);
    if at_zero.sigma == 0.0 {
        return Err(StatsError::AllTied);
    }
    let centered = at_zero.centered_w;
    let correction = 0.5 * signum_or_zero(centered);
    let z = (centered - correction) / at_zero.sigma;
    let standard_normal = Normal::standard();
    let p_value = (2.0 * standard_normal.cdf(z).min(standard_normal.sf(z))).min(1.0);
    let u = centered + shifts.pairs() / 2.0;

    let alpha = 1.0 - confidence;
    let z_upper = standard_normal.inverse_cdf(1.0 - alpha / 2.0);
    let z_lower = standard_normal.inverse_cdf(alpha / 2.0);
    let lower = shifts.interval_end(z_upper)?;
    let upper = shifts.interval_end(z_lower)?;
    let estimate = shifts.estimate()?;

    Ok(MannWhitney {
        u,
        p_value,
        estimate,
        lower,
        upper,
        confidence,
    })
}

/// The rank statistic of `experiment - d` against `control`, as a function of `d`.
struct ShiftStatistic<'a> {
    experiment: &'a [f64],
    control: &'a [f64],
    /// Smallest shift worth searching: min(experiment) - max(control).
    shift_min: f64,
    /// Largest shift worth searching: max(experiment) - min(control).
    shift_max: f64,
}

/// The statistic at one shift.
struct AtShift {
    /// W - n_x n_y / 2.
    centered_w: f64,
    /// Tie-corrected standard deviation of W.
    sigma: f64,
}

impl<'a> ShiftStatistic<'a> {
    fn new(experiment: &'a [f64], control: &'a [f64]) -> ShiftStatistic<'a> {
        let min = |s: &[f64]| s.iter().copied().fold(f64::INFINITY, f64::min);
        let max = |s: &[f64]| s.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        ShiftStatistic {
            experiment,
            control,
            shift_min: min(experiment) - max(control),
            shift_max: max(experiment) - min(control),
        }
    }

    fn pairs(&self) -> f64 {
        self.experiment.len() as f64 * self.control.len() as f64
    }

    /// W and its standard deviation for `experiment - shift` against `control`.
    fn evaluate(&self, shift: f64) -> AtShift {
        let n_x = self.experiment.len();
        let n_y = self.control.len();
        let mut pooled: Vec<(f64, bool)> = self
            .experiment
            .iter()
            .map(|v| (v - shift, true))
            .chain(self.control.iter().map(|v| (*v, false)))
            .collect();
        pooled.sort_by(|a, b| a.0.total_cmp(&b.0));
        let mut rank_sum = 0.0;
        let mut tie_term = 0.0;
        let mut start = 0;
        while start < pooled.len() {
            let mut end = start + 1;
            while end < pooled.len() && pooled[end].0 == pooled[start].0 {
                end += 1;
            }
            // Ranks start..end (0-based) share the average rank (start + 1 + end) / 2.
            let average_rank = (start + 1 + end) as f64 / 2.0;
            let from_experiment = pooled[start..end].iter().filter(|p| p.1).count();
            rank_sum += average_rank * from_experiment as f64;
            let ties = (end - start) as f64;
            tie_term += ties * ties * ties - ties;
            start = end;
        }
        let n_x_f = n_x as f64;
        let n_total = (n_x + n_y) as f64;
        let w = rank_sum - n_x_f * (n_x_f + 1.0) / 2.0;
        let variance = self.pairs() / 12.0
            * ((n_total + 1.0) - tie_term / (n_total * (n_total - 1.0)).max(f64::MIN_POSITIVE));
        AtShift {
            centered_w: w - self.pairs() / 2.0,
            sigma: variance.max(0.0).sqrt(),
        }
    }

    /// The standardized statistic at `shift` minus `z_target`, with or without
    /// the continuity correction.
    fn standardized(&self, shift: f64, z_target: f64, correct: bool) -> Result<f64, StatsError> {
        let at = self.evaluate(shift);
        if at.sigma == 0.0 {
            return Err(StatsError::AllTied);
        }
        let correction = if correct {
            0.5 * signum_or_zero(at.centered_w)
        } else {
            0.0
        };
        Ok((at.centered_w - correction) / at.sigma - z_target)
    }

    /// The shift at which the corrected statistic equals `z_target`, clamped to
    /// the search range as R does when the target lies beyond it.
    fn interval_end(&self, z_target: f64) -> Result<f64, StatsError> {
        let f_low = self.standardized(self.shift_min, z_target, true)?;
        let f_high = self.standardized(self.shift_max, z_target, true)?;
        if f_low <= 0.0 {
            return Ok(self.shift_min);
        }
        if f_high >= 0.0 {
            return Ok(self.shift_max);
        }
        self.find_root(z_target, true, f_low, f_high)
    }

    /// The Hodges-Lehmann estimate: the shift where the uncorrected statistic is 0.
    fn estimate(&self) -> Result<f64, StatsError> {
        let f_low = self.standardized(self.shift_min, 0.0, false)?;
        let f_high = self.standardized(self.shift_max, 0.0, false)?;
        self.find_root(0.0, false, f_low, f_high)
    }

    fn find_root(
        &self,
        z_target: f64,
        correct: bool,
        f_low: f64,
        f_high: f64,
    ) -> Result<f64, StatsError> {
        let mut failure = None;
        let root = brent_zero(
            |shift| match self.standardized(shift, z_target, correct) {
                Ok(value) => value,
                Err(error) => {
                    failure = Some(error);
                    0.0
                }
            },
            (self.shift_min, f_low),
            (self.shift_max, f_high),
            ROOT_TOLERANCE,
            ROOT_MAX_ITERATIONS,
        );
        match failure {
            Some(error) => Err(error),
            None => Ok(root),
        }
    }
}

/// R's `sign`: -1, 0 or 1 (Rust's `signum` gives 1 for +0).
fn signum_or_zero(x: f64) -> f64 {
    if x > 0.0 {
        1.0
    } else if x < 0.0 {
        -1.0
    } else {
        0.0
    }
}

/// Brent's root finder for `f` on [a, b], given f(a) and f(b) of opposite signs.
///
/// The algorithm of R. P. Brent, *Algorithms for Minimization without
/// Derivatives* (1973), chapter 4 (procedure `zero`): keep a bracket [b, c]
/// with b the best point so far, try inverse quadratic (or secant)
/// interpolation, fall back to bisection when the step is not small enough,
/// and never step by less than the tolerance `2 eps |b| + tolerance / 2`.
/// R's `uniroot` runs the same procedure (`R_zeroin2`), so the point where it
/// stops inside a flat step of a rank statistic is the same.
fn brent_zero(
    mut f: impl FnMut(f64) -> f64,
    (a0, fa0): (f64, f64),
    (b0, fb0): (f64, f64),
    tolerance: f64,
    max_iterations: usize,
) -> f64 {
    let (mut a, mut fa) = (a0, fa0);
    let (mut b, mut fb) = (b0, fb0);
    let (mut c, mut fc) = (a, fa);
    if fa == 0.0 {
        return a;
    }
    if fb == 0.0 {
        return b;
    }
    for _ in 0..=max_iterations {
        let previous_step = b - a;
        if fc.abs() < fb.abs() {
            // Make b the best approximation so far.
            a = b;
            b = c;
            c = a;
            fa = fb;
            fb = fc;
            fc = fa;
        }
        let tolerance_here = 2.0 * f64::EPSILON * b.abs() + tolerance / 2.0;
        let mut new_step = (c - b) / 2.0;
        if new_step.abs() <= tolerance_here || fb == 0.0 {
            return b;
        }
        if previous_step.abs() >= tolerance_here && fa.abs() > fb.abs() {
            // Interpolation is worth trying.
            let to_c = c - b;
            let (mut p, mut q);
            if a == c {
                // Secant (linear interpolation) through a and b.
                let t1 = fb / fa;
                p = to_c * t1;
                q = 1.0 - t1;
            } else {
                // Inverse quadratic interpolation through a, b and c.
                let qa = fa / fc;
                let t1 = fb / fc;
                let t2 = fb / fa;
                p = t2 * (to_c * qa * (qa - t1) - (b - a) * (t1 - 1.0));
                q = (qa - 1.0) * (t1 - 1.0) * (t2 - 1.0);
            }
            if p > 0.0 {
                q = -q;
            } else {
                p = -p;
            }
            if p < 0.75 * to_c * q - (tolerance_here * q).abs() / 2.0
                && p < (previous_step * q / 2.0).abs()
            {
                new_step = p / q;
            }
        }
        if new_step.abs() < tolerance_here {
            new_step = if new_step > 0.0 {
                tolerance_here
            } else {
                -tolerance_here
            };
        }
        a = b;
        fa = fb;
        b += new_step;
        fb = f(b);
        if (fb > 0.0 && fc > 0.0) || (fb < 0.0 && fc < 0.0) {
            c = a;
            fc = fa;
        }
    }
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    // Pins Brent's method on a smooth function: the root of x^2 - 2 on [0, 2].
    #[test]
    fn brent_finds_square_root_of_two() {
        let f = |x: f64| x * x - 2.0;
        let root = brent_zero(f, (0.0, f(0.0)), (2.0, f(2.0)), 1e-12, 100);
        assert!((root - 2.0_f64.sqrt()).abs() < 1e-10);
    }

    // Pins average ranks for ties: W for [1, 2] against [2, 3] is 0.5.
    #[test]
    fn ties_share_average_ranks() {
        let statistic = ShiftStatistic::new(&[1.0, 2.0], &[2.0, 3.0]);
        let at = statistic.evaluate(0.0);
        assert!((at.centered_w + 2.0 - 0.5).abs() < 1e-12);
    }
}
