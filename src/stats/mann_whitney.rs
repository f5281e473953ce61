//! Mann-Whitney U test with the Hodges-Lehmann estimate, as Kayenta judges series.
//!
//! CONTRACT (filled in by the statistics work).

use super::StatsError;

/// Result of comparing an experiment sample with a control sample.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct MannWhitney {
    pub u: f64,
    pub p_value: f64,
    /// Hodges-Lehmann estimate of the location shift experiment - control.
    pub estimate: f64,
    pub lower: f64,
    pub upper: f64,
    pub confidence: f64,
}

/// Two-sided test and confidence interval for the shift of `experiment` against `control`.
pub fn mann_whitney(
    experiment: &[f64],
    control: &[f64],
    confidence: f64,
) -> Result<MannWhitney, StatsError> {
    let _ = (experiment, control, confidence);
    todo!("statistics work")
}
