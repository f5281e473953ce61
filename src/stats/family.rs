//! Keeping one promise for many metrics: the family-wise error rate.

/// The alpha each of `metrics` metrics gets so that the chance that any of them
/// raises a false alarm stays at or below `alpha` (Bonferroni).
pub fn per_metric_alpha(alpha: f64, metrics: usize) -> f64 {
    alpha / metrics.max(1) as f64
}
