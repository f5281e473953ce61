//! The percentiles every latency metric quotes for both sides, whichever
//! form judges it: p50, p90 and p99 from the pooled bucket counts, each with
//! its time-uniform interval at bucket edges.

use super::chart;
use super::finding::Finding;
use crate::stats::distribution::{SideBuckets, interpolated_quantile};
use crate::stats::quantiles::quantile_bounds;
use crate::verdict::Percentile;

/// The percentiles every answer quotes for both sides.
const QUOTED_PERCENTILES: [f64; 3] = [0.5, 0.9, 0.99];

/// Chance that a side's percentile intervals miss (all three and every look
/// together): each side's hold at 99.5%, so a comparison of the two sides'
/// bounds (the "at least" figure of a reason) holds at 99%.
pub(super) const PERCENTILE_ALPHA_PER_SIDE: f64 = 0.005;

/// One side's quoted percentiles: the interpolated estimate and its
/// time-uniform interval at bucket edges (no percentile without requests).
pub(super) fn side_percentiles(edges: &[f64], side: &SideBuckets) -> Vec<Percentile> {
    let Ok(bounds) = quantile_bounds(edges, side, &QUOTED_PERCENTILES, PERCENTILE_ALPHA_PER_SIDE)
    else {
        return Vec::new();
    };
    bounds
        .iter()
        .map(|bound| Percentile {
            quantile: bound.quantile,
            seconds: interpolated_quantile(edges, side, bound.quantile),
            lower: bound.lower_seconds,
            upper: bound.upper_seconds,
            confidence: 1.0 - PERCENTILE_ALPHA_PER_SIDE,
        })
        .filter(|p| p.seconds.is_finite())
        .collect()
}

/// `finding` of a threshold latency metric with both sides' percentiles from
/// their pooled buckets at `edges`, and the buckets in its chart for the
/// report's figure. Its outcome, reason and every other figure stay as the
/// threshold's test gave them: the percentiles are read beside the test, not
/// by it.
pub(super) fn quote(
    mut finding: Finding,
    edges: &[f64],
    canary: &SideBuckets,
    baseline: &SideBuckets,
) -> Finding {
    finding.canary.percentiles = side_percentiles(edges, canary);
    finding.baseline.percentiles = side_percentiles(edges, baseline);
    finding.chart = finding
        .chart
        .map(|chart| chart::with_buckets(chart, edges, canary, baseline));
    finding
}
