//! The start of a window that a look did not give (Argo Rollouts' web
//! provider and Flagger's webhooks cannot send one): the first sample of the
//! canary's current run of samples in the metric store, so that every replica
//! asked the same look finds the same start, whatever its own log holds.
//!
//! Two range queries of the canary's planned query find it. A coarse one over
//! the last [`MAX_WINDOW_SECS`] at [`COARSE_STEP_SECS`] finds the current run:
//! the last steps with samples, back to the first step without (a canary
//! scaled to zero between rollouts, as Flagger does, leaves such a gap, and
//! Prometheus's staleness markers end its series at once). A fine one at
//! [`FINE_STEP_SECS`] over the coarse step before the run's first point finds
//! the first sample to 15 s. Both grids are fixed multiples of their step
//! since the unix epoch, so the answer depends only on the data, not on the
//! instant of the look.
//!
//! What it assumes: the canary's labels are new to this rollout, or absent for
//! longer than a coarse step (plus Prometheus's 5-minute lookback, when no
//! staleness marker ends the series) before it began. A canary whose labels
//! served without a break since an earlier rollout looks like one long canary;
//! such rollouts should select their canary by a per-revision label (such as
//! `rollouts-pod-template-hash`) or send `start`.

use crate::request::MAX_WINDOW_SECS;
use crate::source::{MetricSource, RangeSpec, Series, SourceError};

/// Step of the query that finds the current run of the canary's samples.
pub const COARSE_STEP_SECS: i64 = 300;
/// Step of the query that finds the run's first sample.
pub const FINE_STEP_SECS: i64 = 15;

/// The instant the canary's current run of samples began, at or before
/// `end_secs` and within [`MAX_WINDOW_SECS`] of it, from the answers of
/// `promql`; `None` when the canary has no sample in that time.
pub async fn canary_start<S: MetricSource>(
    source: &S,
    promql: &str,
    end_secs: i64,
) -> Result<Option<i64>, SourceError> {
    let coarse_end = align_down(end_secs, COARSE_STEP_SECS);
    let coarse = RangeSpec {
        start_secs: align_down(end_secs - MAX_WINDOW_SECS, COARSE_STEP_SECS) + COARSE_STEP_SECS,
        end_secs: coarse_end,
        step_secs: COARSE_STEP_SECS as u64,
    };
    let run_start = match coarse.end_secs >= coarse.start_secs {
        true => first_of_last_run(&source.range_query(promql, coarse).await?, coarse),
        false => None,
    };
    // The fine search covers the coarse step before the run's first point;
    // with no run (a canary younger than the last coarse point), the time
    // since that point.
    let (fine_from, fine_to) = match run_start {
        Some(first) => (first - COARSE_STEP_SECS, first),
        None => (coarse_end, end_secs),
    };
    let fine = RangeSpec {
        start_secs: align_down(fine_from, FINE_STEP_SECS),
        end_secs: align_down(fine_to.min(end_secs), FINE_STEP_SECS),
        step_secs: FINE_STEP_SECS as u64,
    };
    let fine_series = source.range_query(promql, fine).await?;
    Ok(first_point(&fine_series).or(run_start))
}

/// `secs` rounded down to a multiple of `step`.
fn align_down(secs: i64, step: i64) -> i64 {
    secs.div_euclid(step) * step
}

/// The earliest evaluation time at which any of `series` has a point.
fn first_point(series: &[Series]) -> Option<i64> {
    series
        .iter()
        .filter_map(|s| s.points.iter().map(|&(t, _)| t).min())
        .min()
}

/// The first evaluation time of the last unbroken run of times at which any
/// of `series` has a point, over the grid of `range`.
fn first_of_last_run(series: &[Series], range: RangeSpec) -> Option<i64> {
    let step = range.step_secs as i64;
    let mut seen: Vec<i64> = series
        .iter()
        .flat_map(|s| s.points.iter().map(|&(t, _)| t))
        .filter(|t| (range.start_secs..=range.end_secs).contains(t))
        .collect();
    seen.sort_unstable();
    seen.dedup();
    let mut first = *seen.last()?;
    for pair in seen.windows(2).rev() {
        if pair[1] - pair[0] > step {
            break;
        }
        first = pair[0];
    }
    Some(first)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(times: &[i64]) -> Series {
        Series {
            labels: Default::default(),
            points: times.iter().map(|&t| (t, 1.0)).collect(),
        }
    }

    // The run that counts is the last one: a canary scaled to zero after an
    // earlier rollout, then back, starts at its return, whichever of its
    // series (pods) came first.
    #[test]
    fn the_last_run_of_samples_is_the_canary() {
        let range = RangeSpec {
            start_secs: 0,
            end_secs: 3000,
            step_secs: 300,
        };
        let earlier_rollout = series(&[300, 600, 900]);
        let pod_a = series(&[2100, 2400, 2700, 3000]);
        let pod_b = series(&[1800, 2100]);
        assert_eq!(
            first_of_last_run(&[earlier_rollout, pod_a, pod_b], range),
            Some(1800)
        );
        assert_eq!(first_of_last_run(&[], range), None);
        // Points outside the grid's range do not count.
        assert_eq!(first_of_last_run(&[series(&[6000])], range), None);
    }

    // Grids are multiples of their step since the epoch, so two looks at
    // different instants search the same grid.
    #[test]
    fn grids_are_fixed_multiples() {
        assert_eq!(align_down(1_000_123, 300), 999_900);
        assert_eq!(align_down(-7, 15), -15);
    }
}
