//! Keeping one promise for many metrics and many looks: the family-wise error rate.
//!
//! Both helpers are Bonferroni's inequality: the chance that any of `k` events
//! happens is at most the sum of their chances (Bonferroni 1936; Dunn, "Multiple
//! comparisons among means", JASA 1961). It needs no assumption about how the
//! metrics depend on each other, which matters because a bad canary moves its
//! error rate and its latency together.

/// The alpha each of `metrics` metrics gets so that the chance that any of them
/// raises a false alarm stays at or below `alpha` (Bonferroni).
pub fn per_metric_alpha(alpha: f64, metrics: usize) -> f64 {
    alpha / metrics.max(1) as f64
}

/// The confidence level of each look when a fixed-horizon test (such as the
/// Mann-Whitney series mode) is evaluated at `looks` declared looks and the
/// chance of any false alarm over all of them must stay at or below `alpha`
/// (Bonferroni over looks): `1 - alpha / looks`.
pub fn per_look_confidence(alpha: f64, looks: usize) -> f64 {
    1.0 - alpha / looks.max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    // Pins that zero metrics or looks behave like one instead of dividing by zero.
    #[test]
    fn zero_counts_behave_like_one() {
        assert_eq!(per_metric_alpha(0.01, 0), 0.01);
        assert_eq!(per_look_confidence(0.02, 0), 0.98);
    }
}
