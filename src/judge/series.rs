//! Judging a series metric Kayenta's way: Mann-Whitney U with the
//! Hodges-Lehmann estimate, at a fixed horizon.
//!
//! The server keeps no count of looks, so the looks are fixed by the clock
//! instead: with `looks: L` and the rule set's `window: W`, the metric is
//! judged on the samples up to the checkpoints `W/L, 2W/L, ..., W` after the
//! canary's start, and every ask between two checkpoints gets the last
//! checkpoint's answer. However often a pipeline asks, at most `L` tests run,
//! and each holds `1 - alpha/L` (Bonferroni over looks).

use super::chart;
use super::finding::Finding;
use crate::request::Judgement;
use crate::rules::MetricKind;
use crate::stats::family::per_look_confidence;
use crate::stats::kayenta::{Classification, KayentaThresholds, classify};
use crate::text as words;
use crate::verdict::{Estimate, MetricOutcome, SideFigures, Window};

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

/// Which samples one ask judges a series metric on. Offsets are seconds
/// after the canary's start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Look {
    /// No test yet: before the first checkpoint (`first_secs`), or, without
    /// a window (`None`), before the final look.
    Waiting { first_secs: Option<i64> },
    /// The test on the samples up to checkpoint `index` of `looks`, at
    /// `at_secs`; `next_secs` is the next checkpoint's offset, if any.
    Checkpoint {
        index: u32,
        looks: u32,
        at_secs: i64,
        next_secs: Option<i64>,
    },
    /// Without a window (`looks: 1`): the final look, on every sample so far.
    Final,
}

/// Offset of checkpoint `index` of `looks` in a window of `window_secs`.
fn checkpoint_secs(window_secs: u64, looks: u32, index: u32) -> i64 {
    // window_secs <= MAX_WINDOW_SECS and looks <= MAX_LOOKS: no overflow.
    (window_secs * u64::from(index) / u64::from(looks.max(1))) as i64
}

/// The look an ask `elapsed_secs` after the canary's start makes, given the
/// rule set's window and the metric's `looks`. With a window, a final look
/// is no exception: it gets the last checkpoint's answer too, so the count of
/// tests holds even for a pipeline that sends many final looks.
pub(crate) fn look_at(
    window_secs: Option<u64>,
    looks: u32,
    elapsed_secs: i64,
    is_final: bool,
) -> Look {
    let looks = looks.max(1);
    let Some(window_secs) = window_secs else {
        // Rule files refuse several looks without a window: this is `looks: 1`.
        return match is_final {
            true => Look::Final,
            false => Look::Waiting { first_secs: None },
        };
    };
    let offset = |index| checkpoint_secs(window_secs, looks, index);
    let passed = (1..=looks)
        .take_while(|&k| offset(k) <= elapsed_secs)
        .count() as u32;
    let next_secs = (passed < looks).then(|| offset(passed + 1));
    match passed {
        0 => Look::Waiting {
            first_secs: next_secs,
        },
        index => Look::Checkpoint {
            index,
            looks,
            at_secs: offset(index),
            next_secs,
        },
    }
}

impl Look {
    /// The latest sample time (unix seconds) this look judges, for a canary
    /// that started at `start_secs`; `None` for every sample.
    fn cutoff_secs(self, start_secs: i64) -> Option<i64> {
        match self {
            Look::Checkpoint { at_secs, .. } => Some(start_secs + at_secs),
            Look::Waiting { .. } | Look::Final => None,
        }
    }

    /// The sentence that says when the metric was judged and when it will be next.
    fn words(self) -> String {
        match self {
            Look::Waiting { first_secs: None } => {
                "It is judged at the final look only (a fixed-horizon test).".into()
            }
            Look::Waiting {
                first_secs: Some(first),
            } => format!(
                "It is first judged at checkpoint 1 (at {}); asks before then run no test.",
                words::duration(first)
            ),
            Look::Checkpoint {
                index,
                looks,
                at_secs,
                next_secs: Some(next),
            } => format!(
                "Judged at checkpoint {index} of {looks} (at {}); next at {}, and asks until then get this answer.",
                words::duration(at_secs),
                words::duration(next)
            ),
            Look::Checkpoint {
                index,
                looks,
                at_secs,
                next_secs: None,
            } => format!(
                "Judged at checkpoint {index} of {looks} (at {}), the last; later asks get this answer.",
                words::duration(at_secs)
            ),
            Look::Final => "Judged at the final look (a fixed-horizon test).".into(),
        }
    }
}

/// The values of `samples` at or before `cutoff_secs` (all when `None`).
fn values_up_to(samples: &[(i64, f64)], cutoff_secs: Option<i64>) -> Vec<f64> {
    samples
        .iter()
        .filter(|(time, _)| cutoff_secs.is_none_or(|cutoff| *time <= cutoff))
        .map(|&(_, value)| value)
        .collect()
}

/// Judges one series metric from both sides' pooled samples, at the look
/// [`look_at`] gives for `judgement` in the rule set's `window_secs`. Returns
/// the finding and whether a failure is critical (forces a rollback on its own).
pub(crate) fn judge_series(
    kind: &MetricKind,
    samples: [&[(i64, f64)]; 2],
    alpha: f64,
    window_secs: Option<u64>,
    judgement: &Judgement,
    critical: bool,
    window: &Window,
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
    let elapsed_secs = judgement.end_secs - judgement.start_secs;
    let look = look_at(window_secs, *looks, elapsed_secs, judgement.is_final);
    let cutoff_secs = look.cutoff_secs(judgement.start_secs);
    let [canary, baseline] = samples.map(|side| values_up_to(side, cutoff_secs));
    let (canary, baseline) = (canary.as_slice(), baseline.as_slice());
    let when = look.words();
    let figures = |values: &[f64]| SideFigures {
        value: median(values),
        bad: None,
        count: Some(values.len() as f64),
        percentiles: Vec::new(),
    };
    let (canary_figures, baseline_figures) = (figures(canary), figures(baseline));
    // The figures and the chart show the samples judged, so they too stay put
    // between checkpoints.
    let with_figures = |outcome, reason: String| Finding {
        outcome,
        reason: format!("{reason} {when}"),
        canary: canary_figures.clone(),
        baseline: baseline_figures.clone(),
        estimate: None,
        evidence: None,
        chart: Some(chart::series_chart(canary, baseline, window)),
    };
    if let Look::Waiting { .. } = look {
        let reason = format!(
            "Not judged yet: {} canary and {} baseline samples so far.",
            canary.len(),
            baseline.len()
        );
        return (with_figures(MetricOutcome::Inconclusive, reason), false);
    }
    if canary.len() < *min_samples || baseline.len() < *min_samples {
        let reason = format!(
            "The canary has {} samples and the baseline {}; each side needs {min_samples} before this metric is judged.",
            canary.len(),
            baseline.len()
        );
        return (with_figures(MetricOutcome::Nodata, reason), false);
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
    finding.reason = format!("{reason} {when}");
    (finding, outcome.critical_failure)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Pins where the checkpoints fall: 4 looks in 30 minutes are at 7m30s, 15m, 22m30s
    // and 30m, and every ask between two of them, final or not, makes the earlier one's look.
    #[test]
    fn checkpoints_divide_the_window() {
        let window = Some(1800);
        let at = |elapsed, is_final| look_at(window, 4, elapsed, is_final);
        assert_eq!(
            at(449, false),
            Look::Waiting {
                first_secs: Some(450)
            }
        );
        let second = Look::Checkpoint {
            index: 2,
            looks: 4,
            at_secs: 900,
            next_secs: Some(1350),
        };
        assert_eq!(at(900, false), second);
        assert_eq!(at(1349, false), second);
        let last = Look::Checkpoint {
            index: 4,
            looks: 4,
            at_secs: 1800,
            next_secs: None,
        };
        assert_eq!(at(1800, true), last);
        assert_eq!(at(7200, false), last);
        assert_eq!(at(1200, true), second);
        assert_eq!(
            at(60, true),
            Look::Waiting {
                first_secs: Some(450)
            }
        );
        // Without a window (looks: 1), only the final look judges.
        assert_eq!(
            look_at(None, 1, 7200, false),
            Look::Waiting { first_secs: None }
        );
        assert_eq!(look_at(None, 1, 60, true), Look::Final);
    }

    // Pins that a checkpoint judges the samples up to its instant, whatever was fetched after.
    #[test]
    fn a_checkpoint_judges_the_samples_up_to_it() {
        let samples = [(100, 1.0), (115, 2.0), (130, 3.0)];
        assert_eq!(values_up_to(&samples, Some(115)), vec![1.0, 2.0]);
        assert_eq!(values_up_to(&samples, None), vec![1.0, 2.0, 3.0]);
    }
}
