//! Judging a series metric Kayenta's way (arrives with the statistics work).

use super::Finding;
use crate::rules::MetricKind;
use crate::verdict::MetricOutcome;

pub(crate) fn judge_series(
    _kind: &MetricKind,
    _canary: &[f64],
    _baseline: &[f64],
    _alpha: f64,
    _is_final: bool,
) -> Finding {
    Finding::bare(
        MetricOutcome::Error,
        "series metrics are not wired yet".into(),
    )
}
