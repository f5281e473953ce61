//! Kayenta-compatible classification of a series metric (fixed horizon).
//!
//! The rules of Kayenta's `MannWhitneyClassifier` (spinnaker/kayenta,
//! kayenta-judge), restated:
//!
//! 1. A side without values gives `NoData`.
//! 2. Identical samples (as multisets), or samples that are all one value, pass
//!    with effect size 1.
//! 3. Otherwise run [`mann_whitney`] at the configured confidence. The tolerance
//!    band is `±tolerance × |Hodges-Lehmann estimate|`. The effect size is
//!    mean(experiment) / mean(control), or 1 when the control's mean is 0.
//! 4. `High` when the direction allows an increase, the interval's lower end
//!    lies above the band, and the effect size is at least `allowed_increase`.
//!    `Low` when the direction allows a decrease, the upper end lies below the
//!    band, and the effect size is at most `allowed_decrease`. Else `Pass`.
//! 5. On a critical metric, `High` with effect size at least
//!    `critical_increase` (or `Low` with at most `critical_decrease`) is a
//!    critical failure; so is `NoData`.
//!
//! One difference, on purpose: when each side holds a single repeated value
//! (but the values differ), Kayenta adds tiny random noise so that R's
//! interval exists. canary-gate stays deterministic instead: every pairwise
//! difference equals the gap, so the estimate and both interval ends are the
//! gap, which is what the noisy computation tends to.

use super::Direction;
use super::StatsError;
use super::mann_whitney::{MannWhitney, mann_whitney};

/// Kayenta's label for a metric.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Classification {
    /// The experiment is significantly higher than the control.
    High,
    /// The experiment is significantly lower than the control.
    Low,
    /// No significant difference in the harmful direction.
    Pass,
    /// A side had no values.
    NoData,
}

/// Thresholds of the classifier; [`KayentaThresholds::default`] gives Kayenta's defaults.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct KayentaThresholds {
    /// Half-width of the tolerance band as a fraction of |estimate| (Kayenta: 0.25).
    pub tolerance: f64,
    /// Confidence level of the Mann-Whitney interval (Kayenta's judge: 0.98).
    pub confidence: f64,
    /// Smallest mean ratio that may be classified High (Kayenta: 1.0).
    pub allowed_increase: f64,
    /// Largest mean ratio that may be classified Low (Kayenta: 1.0).
    pub allowed_decrease: f64,
    /// Mean ratio from which a High on a critical metric is a critical failure.
    pub critical_increase: f64,
    /// Mean ratio up to which a Low on a critical metric is a critical failure.
    pub critical_decrease: f64,
    /// Whether the metric is critical.
    pub critical: bool,
}

impl Default for KayentaThresholds {
    fn default() -> Self {
        KayentaThresholds {
            tolerance: 0.25,
            confidence: 0.98,
            allowed_increase: 1.0,
            allowed_decrease: 1.0,
            critical_increase: 1.0,
            critical_decrease: 1.0,
            critical: false,
        }
    }
}

/// The classifier's answer for one metric.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct KayentaOutcome {
    /// High, Low, Pass or NoData.
    pub classification: Classification,
    /// Whether this classification fails the whole canary (critical metric).
    pub critical_failure: bool,
    /// mean(experiment) / mean(control), 1 when the control's mean is 0.
    pub effect_size: f64,
    /// The test behind the classification, when one was run.
    pub test: Option<MannWhitney>,
}

/// Classifies `experiment` (canary) against `control` (baseline) by Kayenta's rules.
///
/// NaN values are removed first (Kayenta's default NaN strategy); infinite
/// values are an error.
pub fn classify(
    experiment: &[f64],
    control: &[f64],
    direction: Direction,
    thresholds: &KayentaThresholds,
) -> Result<KayentaOutcome, StatsError> {
    let experiment: Vec<f64> = experiment.iter().copied().filter(|v| !v.is_nan()).collect();
    let control: Vec<f64> = control.iter().copied().filter(|v| !v.is_nan()).collect();
    if experiment.iter().chain(&control).any(|v| v.is_infinite()) {
        return Err(StatsError::NotFinite);
    }
    if experiment.is_empty() || control.is_empty() {
        return Ok(KayentaOutcome {
            classification: Classification::NoData,
            critical_failure: thresholds.critical,
            effect_size: 1.0,
            test: None,
        });
    }
    let pass = KayentaOutcome {
        classification: Classification::Pass,
        critical_failure: false,
        effect_size: 1.0,
        test: None,
    };
    let mut sorted_experiment = experiment.clone();
    let mut sorted_control = control.clone();
    sorted_experiment.sort_by(f64::total_cmp);
    sorted_control.sort_by(f64::total_cmp);
    if sorted_experiment == sorted_control {
        return Ok(pass);
    }
    let first = experiment[0];
    if experiment.iter().chain(&control).all(|v| *v == first) {
        return Ok(pass);
    }

    let test = if is_constant(&experiment) && is_constant(&control) {
        let gap = experiment[0] - control[0];
        MannWhitney {
            u: if gap > 0.0 {
                (experiment.len() * control.len()) as f64
            } else {
                0.0
            },
            p_value: f64::NAN,
            estimate: gap,
            lower: gap,
            upper: gap,
            confidence: thresholds.confidence,
        }
    } else {
        mann_whitney(&experiment, &control, thresholds.confidence)?
    };

    let control_mean = mean(&control);
    let effect_size = if control_mean == 0.0 {
        1.0
    } else {
        mean(&experiment) / control_mean
    };
    let band = thresholds.tolerance * test.estimate.abs();
    let may_increase = matches!(direction, Direction::Increase | Direction::Either);
    let may_decrease = matches!(direction, Direction::Decrease | Direction::Either);
    let classification =
        if may_increase && test.lower > band && effect_size >= thresholds.allowed_increase {
            Classification::High
        } else if may_decrease && test.upper < -band && effect_size <= thresholds.allowed_decrease {
            Classification::Low
        } else {
            Classification::Pass
        };
    let critical_failure = thresholds.critical
        && match classification {
            Classification::High => effect_size >= thresholds.critical_increase,
            Classification::Low => effect_size <= thresholds.critical_decrease,
            Classification::Pass | Classification::NoData => false,
        };
    Ok(KayentaOutcome {
        classification,
        critical_failure,
        effect_size,
        test: Some(test),
    })
}

fn is_constant(values: &[f64]) -> bool {
    values.iter().all(|v| *v == values[0])
}

fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len() as f64
}
