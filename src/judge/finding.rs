//! A metric's conclusion as the counts and series judges reach it, before
//! the verdict dresses it as a report. Below every judge file: it uses none.

use crate::verdict::{Chart, Estimate, Evidence, MetricOutcome, SideFigures};

/// A metric's conclusion before it is dressed as a [`MetricReport`].
pub(crate) struct Finding {
    pub outcome: MetricOutcome,
    pub reason: String,
    pub canary: SideFigures,
    pub baseline: SideFigures,
    pub estimate: Option<Estimate>,
    pub evidence: Option<Evidence>,
    pub chart: Option<Chart>,
}

impl Finding {
    pub(crate) fn bare(outcome: MetricOutcome, reason: String) -> Finding {
        Finding {
            outcome,
            reason,
            canary: SideFigures::default(),
            baseline: SideFigures::default(),
            estimate: None,
            evidence: None,
            chart: None,
        }
    }
}
