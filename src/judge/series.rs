//! Judging a series metric Kayenta's way: Mann-Whitney U with the
//! Hodges-Lehmann estimate, at a fixed horizon.

use super::finding::Finding;
use crate::rules::MetricKind;
use crate::stats::family::per_look_confidence;
use crate::stats::kayenta::{Classification, KayentaThresholds, classify};
use crate::text as words;
use crate::verdict::{Estimate, MetricOutcome, SideFigures};

fn median(values: &[f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let middle = sorted.len() / 2;
    Some(if sorted.len().is_multiple_of(2) {
        (sorted[middle - 1] + sorted[middle]) / 2.0
    } else {
        sorted[middle]
    })
}

/// Judges one series metric from both sides' pooled samples. Returns the
/// finding and whether a failure is critical (forces a rollback on its own).
pub(crate) fn judge_series(
    kind: &MetricKind,
    canary: &[f64],
    baseline: &[f64],
    alpha: f64,
    is_final: bool,
    critical: bool,
) -> (Finding, bool) {
    let MetricKind::Series {
        direction,
        tolerance,
        allowed_increase,
        allowed_decrease,
        critical_increase,
        critical_decrease,
        looks,
        min_samples,
        ..
    } = kind
    else {
        return (
            Finding::bare(MetricOutcome::Error, "internal: not a series metric".into()),
            false,
        );
    };
    let figures = |values: &[f64]| SideFigures {
        value: median(values),
        bad: None,
        count: Some(values.len() as f64),
    };
    let (canary_figures, baseline_figures) = (figures(canary), figures(baseline));
    let with_figures = |outcome, reason: String| Finding {
        outcome,
        reason,
        canary: canary_figures.clone(),
        baseline: baseline_figures.clone(),
        estimate: None,
        evidence: None,
        chart: None,
    };
    if canary.len() < *min_samples || baseline.len() < *min_samples {
        let reason = format!(
            "The canary has {} samples and the baseline {}; each side needs {min_samples} before this metric is judged.",
            canary.len(),
            baseline.len()
        );
        return (with_figures(MetricOutcome::Nodata, reason), false);
    }
    if *looks <= 1 && !is_final {
        let reason = format!(
            "Judged at the final look only (a fixed-horizon test); {} canary and {} baseline samples so far.",
            canary.len(),
            baseline.len()
        );
        return (with_figures(MetricOutcome::Inconclusive, reason), false);
    }
    let confidence = per_look_confidence(alpha, *looks as usize);
    let thresholds = KayentaThresholds {
        tolerance: *tolerance,
        confidence,
        allowed_increase: *allowed_increase,
        allowed_decrease: *allowed_decrease,
        critical_increase: critical_increase.unwrap_or(1.0),
        critical_decrease: critical_decrease.unwrap_or(1.0),
        critical: critical || critical_increase.is_some() || critical_decrease.is_some(),
    };
    let outcome = match classify(canary, baseline, *direction, &thresholds) {
        Ok(outcome) => outcome,
        Err(error) => {
            return (
                with_figures(
                    MetricOutcome::Error,
                    format!("The samples cannot be compared: {error}."),
                ),
                false,
            );
        }
    };
    let mut finding = with_figures(MetricOutcome::Pass, String::new());
    if let Some(test) = outcome.test {
        let band = tolerance * test.estimate.abs();
        finding.estimate = Some(Estimate {
            unit: "shift".into(),
            value: test.estimate,
            lower: test.lower,
            upper: test.upper,
            confidence,
            tolerated_lower: -band,
            tolerated_upper: band,
        });
    }
    let shift = finding.estimate.as_ref().map_or(String::new(), |e| {
        format!(
            "the canary's median is {} against the baseline's {}, a shift of {} ({}% sure between {} and {}), mean ratio {}",
            words::number(canary_figures.value.unwrap_or(f64::NAN)),
            words::number(baseline_figures.value.unwrap_or(f64::NAN)),
            words::number(e.value),
            words::number(confidence * 100.0),
            words::number(e.lower),
            words::number(e.upper),
            words::times(outcome.effect_size)
        )
    });
    let (metric_outcome, reason) = match outcome.classification {
        Classification::High => (
            MetricOutcome::Fail,
            format!("Higher than tolerated: {shift}."),
        ),
        Classification::Low => (
            MetricOutcome::Fail,
            format!("Lower than tolerated: {shift}."),
        ),
        Classification::Pass if shift.is_empty() => (
            MetricOutcome::Pass,
            "Within tolerance: both sides hold the same values.".to_string(),
        ),
        Classification::Pass => (MetricOutcome::Pass, format!("Within tolerance: {shift}.")),
        Classification::NoData => (MetricOutcome::Nodata, "A side has no values.".to_string()),
    };
    finding.outcome = metric_outcome;
    finding.reason = reason;
    (finding, outcome.critical_failure)
}
