//! Time-uniform confidence intervals for a side's latency percentiles, from
//! its cumulative bucket counts.
//!
//! `quantile_bounds(edges, side, quantiles, alpha)` returns, for each
//! quantile, a lower and an upper bound at bucket edges that hold for every
//! quantile of that side together, and at every look of the window together,
//! with probability at least `1 - alpha`.
//!
//! # What is assumed
//!
//! A side's requests are independent draws from one latency law over the
//! window (i.i.d. within the side), and the counts are whole requests: the
//! counts a look reads are those of the requests served so far, so looks see
//! a growing prefix of one sequence.
//!
//! # The confidence sequence at one edge
//!
//! At a finite edge `e`, each request is "at or below `e`" with chance
//! `p = F(e)`. After `n` requests with `s` at or below `e`, the uniform
//! mixture over `theta` of the likelihood ratios
//! `theta^s (1 - theta)^(n - s) / (p^s (1 - p)^(n - s))` is
//!
//! ```text
//! M_n(p) = 1 / ((n + 1) * C(n, s) * p^s * (1 - p)^(n - s))
//! ```
//!
//! a nonnegative martingale with mean 1 at the true `p` (Robbins, "Statistical
//! methods related to the law of the iterated logarithm", Ann. Math. Statist.
//! 1970; the beta-binomial mixture of Howard, Ramdas, McAuliffe & Sekhon,
//! "Time-uniform, nonparametric, nonasymptotic confidence sequences", Ann.
//! Statist. 2021, section 3.4, with the Beta(1, 1) prior). By Ville's
//! inequality `M_n(p) >= 1 / a` at some `n` with probability at most `a`, so
//! `{p : (n + 1) * Binomial(n, p).pmf(s) > a}` holds `F(e)` at every `n`
//! with probability at least `1 - a`. The log of the pmf is concave in `p`,
//! so the set is an interval around `s / n`; its ends are found by bisection.
//!
//! # From the edges to the quantiles
//!
//! Every edge gets `a = alpha / K` for `K` finite edges (a union bound), so
//! all the edges' intervals hold together at `1 - alpha`. Then for every
//! `q` at once (Howard & Ramdas, "Sequential estimation of quantiles with
//! applications to A/B testing and best-arm identification", Bernoulli 2022,
//! section 2, invert a confidence sequence for the CDF the same way):
//!
//! - lower bound: the largest edge whose upper CDF bound is below `q` (then
//!   `F(e) < q`, so the quantile lies above `e`); 0 s when there is none;
//! - upper bound: the smallest edge whose lower CDF bound is at least `q`
//!   (then `F(e) >= q`, so the quantile is at most `e`); none (unbounded)
//!   when no finite edge qualifies.
//!
//! The bounds are bucket edges: the histogram says nothing finer. The point
//! estimate ([`super::distribution::interpolated_quantile`]) always lies
//! between them.

use super::StatsError;
use super::distribution::SideBuckets;
use statrs::function::gamma::ln_gamma;

/// Bisection steps for a CDF bound: 45 halvings of [0, 1] leave less than
/// 3e-14, far below any difference between two counts' shares.
const BISECTION_STEPS: usize = 45;

/// One quantile's time-uniform interval.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct QuantileBounds {
    /// Which quantile: 0.99 for p99.
    pub quantile: f64,
    /// Seconds the quantile is at least (a bucket edge, or 0).
    pub lower_seconds: f64,
    /// Seconds the quantile is at most (a bucket edge); `None` when it may
    /// lie beyond the largest finite edge.
    pub upper_seconds: Option<f64>,
}

/// The log of the mixture's denominator, `ln((n + 1) * Binomial(n, p).pmf(s))`,
/// as a function of `p` (the terms without `p` computed once).
fn ln_mixture_weight(n: f64, s: f64) -> impl Fn(f64) -> f64 {
    let constant = (n + 1.0).ln() + ln_gamma(n + 1.0) - ln_gamma(s + 1.0) - ln_gamma(n - s + 1.0);
    let ln_at = |count: f64, chance: f64| {
        if count == 0.0 {
            0.0
        } else {
            count * chance.ln()
        }
    };
    move |p| constant + ln_at(s, p) + ln_at(n - s, 1.0 - p)
}

/// The confidence sequence's interval for a proportion with `s` successes in
/// `n` trials at level `1 - alpha`: every `p` with `(n + 1) * pmf(s; n, p) > alpha`.
/// `(0, 1)` without trials.
pub fn proportion_bounds(n: f64, s: f64, alpha: f64) -> (f64, f64) {
    if n.is_nan() || n <= 0.0 || !s.is_finite() {
        return (0.0, 1.0);
    }
    let s = s.clamp(0.0, n);
    let ln_alpha = alpha.ln();
    let weight = ln_mixture_weight(n, s);
    let inside = |p: f64| weight(p) > ln_alpha;
    let centre = s / n;
    // `inside(centre)` holds: (n + 1) * pmf(s; n, s / n) >= 1 > alpha.
    let end = |outer: f64| {
        if inside(outer) {
            return outer;
        }
        let (mut inner, mut outer) = (centre, outer);
        for _ in 0..BISECTION_STEPS {
            let middle = 0.5 * (inner + outer);
            if inside(middle) {
                inner = middle;
            } else {
                outer = middle;
            }
        }
        // The outer end, so the interval errs on the wide side.
        outer
    };
    (end(0.0), end(1.0))
}

/// Time-uniform intervals for `quantiles` of one side's pooled bucket counts,
/// holding for all of them and at every look together with probability at
/// least `1 - alpha` (see the module's doc for what is assumed).
pub fn quantile_bounds(
    edges: &[f64],
    side: &SideBuckets,
    quantiles: &[f64],
    alpha: f64,
) -> Result<Vec<QuantileBounds>, StatsError> {
    if !(alpha > 0.0 && alpha < 1.0) {
        return Err(StatsError::BadLevel {
            name: "alpha",
            value: alpha,
        });
    }
    if let Some(&q) = quantiles.iter().find(|q| !(**q > 0.0 && **q < 1.0)) {
        return Err(StatsError::BadLevel {
            name: "quantile",
            value: q,
        });
    }
    if side.at_or_below.len() != edges.len() {
        return Err(StatsError::TooFewValues {
            needed: edges.len(),
            got: side.at_or_below.len(),
        });
    }
    let per_edge = alpha / edges.len().max(1) as f64;
    let cdf_bounds: Vec<(f64, f64)> = side
        .at_or_below
        .iter()
        .map(|&below| proportion_bounds(side.total, below, per_edge))
        .collect();
    Ok(quantiles
        .iter()
        .map(|&quantile| QuantileBounds {
            quantile,
            lower_seconds: edges
                .iter()
                .zip(&cdf_bounds)
                .filter(|(_, (_, upper))| *upper < quantile)
                .map(|(edge, _)| *edge)
                .fold(0.0, f64::max),
            upper_seconds: edges
                .iter()
                .zip(&cdf_bounds)
                .find(|(_, (lower, _))| *lower >= quantile)
                .map(|(edge, _)| *edge),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    // Pins the interval's defining property: the mixture weight at each end is alpha (the
    // ends are where the set stops), and it contains the observed share.
    #[test]
    fn proportion_bounds_end_where_the_mixture_reaches_one_over_alpha() {
        let (n, s, alpha) = (400.0, 37.0, 0.01);
        let (lower, upper) = proportion_bounds(n, s, alpha);
        assert!(lower < s / n && s / n < upper);
        for end in [lower, upper] {
            assert!((ln_mixture_weight(n, s)(end) - alpha.ln()).abs() < 1e-6);
        }
        // No trials, no information.
        assert_eq!(proportion_bounds(0.0, 0.0, alpha), (0.0, 1.0));
        // All successes: the upper end is 1.
        assert_eq!(proportion_bounds(50.0, 50.0, alpha).1, 1.0);
    }

    // Pins the inversion: bounds are edges chosen from the CDF bounds, 0 below the first
    // edge, unbounded above the last, and the point estimate lies between them.
    #[test]
    fn quantile_bounds_are_edges_around_the_estimate() {
        let edges = [0.05, 0.1, 0.25, 0.5];
        let total = 10_000.0;
        let side = SideBuckets {
            at_or_below: vec![2_000.0, 5_000.0, 9_000.0, 9_950.0],
            total,
        };
        let bounds = quantile_bounds(&edges, &side, &[0.5, 0.9, 0.999], 0.01).expect("valid");
        // p50 = 0.1 exactly on the estimate; the CDF at 0.1 is 0.5 +- a little, so the
        // quantile lies in (0.05, 0.25].
        assert_eq!(bounds[0].lower_seconds, 0.05);
        assert_eq!(bounds[0].upper_seconds, Some(0.25));
        assert_eq!(bounds[1].lower_seconds, 0.1);
        assert_eq!(bounds[1].upper_seconds, Some(0.5));
        // p99.9 lies in the +Inf bucket: no finite upper bound.
        assert_eq!(bounds[2].lower_seconds, 0.5);
        assert_eq!(bounds[2].upper_seconds, None);
        for (bound, q) in bounds.iter().zip([0.5, 0.9, 0.999]) {
            let point = super::super::distribution::interpolated_quantile(&edges, &side, q);
            assert!(bound.lower_seconds <= point);
            assert!(bound.upper_seconds.is_none_or(|upper| point <= upper));
        }
        // Without requests nothing is known.
        let empty = SideBuckets {
            at_or_below: vec![0.0; 4],
            total: 0.0,
        };
        let none = quantile_bounds(&edges, &empty, &[0.5], 0.01).expect("valid");
        assert_eq!(none[0].lower_seconds, 0.0);
        assert_eq!(none[0].upper_seconds, None);
        assert!(quantile_bounds(&edges, &side, &[1.0], 0.01).is_err());
        assert!(quantile_bounds(&edges, &side, &[0.5], 0.0).is_err());
    }
}
