//! The compact data behind a metric's charts in the report, taken from what
//! the judge already holds: the per-step counts, the evidence path and a
//! latency distribution's pooled buckets.

use crate::stats::counts::{EvidencePoint, StepCounts};
use crate::stats::distribution::SideBuckets;
use crate::verdict::{Chart, MAX_CHART_POINTS, Window};

/// Significant digits kept of counts: enough for a chart, short in a log line.
const COUNT_DIGITS: i32 = 4;
/// Significant digits kept of e-values.
const EVALUE_DIGITS: i32 = 3;

/// `value` rounded to `digits` significant digits; zero and non-finite values unchanged.
fn round_significant(value: f64, digits: i32) -> f64 {
    if value == 0.0 || !value.is_finite() {
        return value;
    }
    // Through decimal text, so the result is the shortest number with those
    // digits; written on the stack, since every point of every chart is.
    let decimals = (digits - 1).max(0) as usize;
    let mut text = StackText::default();
    if std::fmt::Write::write_fmt(&mut text, format_args!("{value:.decimals$e}")).is_err() {
        // Longer than the buffer (many digits): on the heap, the same text.
        return format!("{value:.decimals$e}").parse().unwrap_or(value);
    }
    text.as_str().parse().unwrap_or(value)
}

/// Room for a number in `{:.N$e}` form: sign, digit, point, N digits, `e`,
/// exponent sign and three digits fit for N up to 50.
const STACK_TEXT_BYTES: usize = 64;

/// A short text written with `write!` into a buffer on the stack; a write
/// that does not fit fails, and the text is then incomplete.
struct StackText {
    bytes: [u8; STACK_TEXT_BYTES],
    len: usize,
}

impl Default for StackText {
    fn default() -> StackText {
        StackText {
            bytes: [0; STACK_TEXT_BYTES],
            len: 0,
        }
    }
}

impl StackText {
    fn as_str(&self) -> &str {
        // Only whole `&str`s are ever copied in, so the bytes are UTF-8.
        std::str::from_utf8(&self.bytes[..self.len]).unwrap_or("")
    }
}

impl std::fmt::Write for StackText {
    fn write_str(&mut self, text: &str) -> std::fmt::Result {
        let end = self.len + text.len();
        let room = self.bytes.get_mut(self.len..end).ok_or(std::fmt::Error)?;
        room.copy_from_slice(text.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// How many adjacent steps make one point so that `steps` fit in [`MAX_CHART_POINTS`].
fn merge_factor(steps: usize) -> usize {
    steps.div_ceil(MAX_CHART_POINTS).max(1)
}

/// The sum of a group's usable counts; `None` when the group holds none.
fn group_sum(group: &[StepCounts], field: fn(&StepCounts) -> f64) -> Option<f64> {
    let mut usable = group
        .iter()
        .map(field)
        .filter(|v| v.is_finite() && *v >= 0.0)
        .peekable();
    usable.peek()?;
    Some(round_significant(usable.sum(), COUNT_DIGITS))
}

/// The chart of a counts metric: both sides' counts per point, and, when the
/// test ran, the harm and safety e-values per point against `threshold`.
pub(crate) fn counts_chart(
    steps: &[StepCounts],
    window: &Window,
    path: &[EvidencePoint],
    threshold: Option<f64>,
    decided_at_step: Option<usize>,
) -> Chart {
    let factor = merge_factor(steps.len());
    let groups: Vec<&[StepCounts]> = steps.chunks(factor).collect();
    let column = |field: fn(&StepCounts) -> f64| -> Vec<Option<f64>> {
        groups.iter().map(|g| group_sum(g, field)).collect()
    };
    let evidence = |field: fn(&EvidencePoint) -> f64| -> Vec<f64> {
        path.chunks(factor)
            .map(|g| {
                let largest = g.iter().map(field).fold(0.0, f64::max);
                round_significant(largest, EVALUE_DIGITS)
            })
            .collect()
    };
    Chart {
        step_secs: window.step_secs * factor as u64,
        start_secs: window.start_secs,
        canary_bad: column(|s| s.canary_bad),
        canary_total: column(|s| s.canary_total),
        baseline_bad: column(|s| s.baseline_bad),
        baseline_total: column(|s| s.baseline_total),
        harm: evidence(|p| p.harm),
        safety: evidence(|p| p.safety),
        threshold,
        decided_at_step: decided_at_step.map(|s| s / factor),
        ..Chart::default()
    }
}

/// Significant digits kept of pooled bucket counts: the tail's few requests
/// stay exact in windows of up to a million.
const BUCKET_DIGITS: i32 = 6;

/// Adds a latency metric's pooled buckets to `chart`: the finite edges
/// and, for each side, its requests at or below each edge, then its total.
pub(crate) fn with_buckets(
    chart: Chart,
    edges: &[f64],
    canary: &SideBuckets,
    baseline: &SideBuckets,
) -> Chart {
    let cumulative = |side: &SideBuckets| -> Vec<f64> {
        side.at_or_below
            .iter()
            .chain(std::iter::once(&side.total))
            .map(|count| round_significant(*count, BUCKET_DIGITS))
            .collect()
    };
    Chart {
        bucket_edges_seconds: edges.to_vec(),
        canary_buckets: cumulative(canary),
        baseline_buckets: cumulative(baseline),
        ..chart
    }
}

/// Evenly spaced quantiles of `values`, at most [`MAX_CHART_POINTS`] of them.
fn quantiles(values: &[f64]) -> Vec<f64> {
    let mut sorted: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    sorted.sort_by(f64::total_cmp);
    let points = sorted.len().min(MAX_CHART_POINTS);
    if points < 2 {
        return sorted;
    }
    (0..points)
        .map(|i| {
            let at = i * (sorted.len() - 1) / (points - 1);
            round_significant(sorted[at], COUNT_DIGITS)
        })
        .collect()
}

/// The chart of a series metric: the distribution of each side's pooled samples.
pub(crate) fn series_chart(canary: &[f64], baseline: &[f64], window: &Window) -> Chart {
    Chart {
        step_secs: window.step_secs,
        start_secs: window.start_secs,
        canary_quantiles: quantiles(canary),
        baseline_quantiles: quantiles(baseline),
        ..Chart::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(steps: usize) -> Window {
        Window {
            start: String::new(),
            end: String::new(),
            start_secs: 1000,
            end_secs: 1000 + 15 * steps as i64,
            step_secs: 15,
        }
    }

    fn step(canary_bad: f64) -> StepCounts {
        StepCounts {
            canary_bad,
            canary_total: 100.0,
            baseline_bad: 1.0,
            baseline_total: 100.0,
        }
    }

    // A long window is merged into at most MAX_CHART_POINTS points that keep the totals
    // and place the decision in the point holding its step.
    #[test]
    fn long_windows_merge_adjacent_steps() {
        let steps: Vec<StepCounts> = (0..1000).map(|i| step(i as f64 % 3.0)).collect();
        let path: Vec<EvidencePoint> = (0..1000)
            .map(|i| EvidencePoint {
                step: i,
                harm: i as f64,
                safety: 1.0,
            })
            .collect();
        let chart = counts_chart(&steps, &window(1000), &path, Some(100.0), Some(501));
        assert!(chart.canary_total.len() <= MAX_CHART_POINTS);
        assert_eq!(chart.step_secs, 15 * 5);
        assert_eq!(chart.canary_total.len(), chart.harm.len());
        let total: f64 = chart.canary_total.iter().flatten().sum();
        assert_eq!(total, 100_000.0);
        assert_eq!(chart.decided_at_step, Some(100));
        // Each point keeps the largest e-value of its steps.
        assert_eq!(chart.harm[1], 9.0);
    }

    // Steps without usable counts stay gaps, not zeros.
    #[test]
    fn missing_counts_stay_missing() {
        let mut missing = step(1.0);
        missing.canary_total = f64::NAN;
        let chart = counts_chart(&[step(1.0), missing], &window(2), &[], None, None);
        assert_eq!(chart.canary_total, vec![Some(100.0), None]);
        assert!(chart.harm.is_empty());
    }

    // E-values and counts are rounded to a few significant digits.
    #[test]
    fn figures_are_rounded() {
        assert_eq!(round_significant(123.456, 3), 123.0);
        assert_eq!(round_significant(0.0012345, 3), 0.00123);
        assert_eq!(round_significant(1.234e300, 3), 1.23e300);
    }

    // Pins the stack-buffer rounding to the heap form it replaced, bit for bit, over
    // many magnitudes, signs and digit counts (and past the buffer, where it falls back).
    #[test]
    fn round_significant_is_the_heap_texts_bit_for_bit() {
        let heap = |value: f64, digits: i32| -> f64 {
            if value == 0.0 || !value.is_finite() {
                return value;
            }
            let decimals = (digits - 1).max(0) as usize;
            format!("{value:.decimals$e}").parse().unwrap_or(value)
        };
        let mut value = 1e-320_f64;
        let mut values = vec![
            0.0,
            -0.0,
            f64::NAN,
            f64::INFINITY,
            f64::MAX,
            f64::MIN_POSITIVE,
        ];
        while value < 1e300 {
            values.extend([value, -value, value * 1.618_033_988_7, 9.999_95 * value]);
            value *= 7.3;
        }
        for value in values {
            for digits in [0, 1, 3, 4, 6, 17, 60, 80] {
                let (found, expected) = (round_significant(value, digits), heap(value, digits));
                assert!(
                    found.to_bits() == expected.to_bits() || (found.is_nan() && expected.is_nan()),
                    "{value} to {digits} digits: {found} against {expected}"
                );
            }
        }
    }

    // A distribution's chart keeps the edges and each side's cumulative counts
    // with the +Inf total last, beside the counts chart it extends.
    #[test]
    fn distributions_keep_pooled_buckets() {
        let side = |counts: &[f64], total| SideBuckets {
            at_or_below: counts.to_vec(),
            total,
        };
        let chart = with_buckets(
            series_chart(&[1.0], &[2.0], &window(1)),
            &[0.1, 0.25],
            &side(&[10.0, 1234567.0], 1234999.0),
            &side(&[20.0, 30.0], 40.0),
        );
        assert_eq!(chart.bucket_edges_seconds, vec![0.1, 0.25]);
        assert_eq!(chart.canary_buckets, vec![10.0, 1234570.0, 1235000.0]);
        assert_eq!(chart.baseline_buckets, vec![20.0, 30.0, 40.0]);
        assert_eq!(chart.canary_quantiles, vec![1.0]);
    }

    // Series samples become at most MAX_CHART_POINTS sorted quantiles with both extremes.
    #[test]
    fn series_keep_sorted_quantiles() {
        let samples: Vec<f64> = (0..1000).rev().map(f64::from).collect();
        let chart = series_chart(&samples, &[2.0, 1.0], &window(4));
        assert_eq!(chart.canary_quantiles.len(), MAX_CHART_POINTS);
        assert_eq!(chart.canary_quantiles.first(), Some(&0.0));
        assert_eq!(chart.canary_quantiles.last(), Some(&999.0));
        assert_eq!(chart.baseline_quantiles, vec![1.0, 2.0]);
    }
}
