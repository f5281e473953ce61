//! Measurements: the raw series a source returned, turned into the numbers
//! the statistics work on (per-step counts, pooled samples, one value).
//!
//! The fifth stage of the pipe: it uses the source's series and
//! [`crate::text`], and nothing downstream.

use std::collections::BTreeMap;

use crate::source::{RangeSpec, Series};

/// Why series could not be turned into a measurement.
#[derive(Clone, Debug, thiserror::Error, PartialEq)]
pub enum MeasureError {
    #[error(
        "the histogram's series {group} has no bucket with le=\"{threshold}\" (its buckets: {seen}{others}), so its slow requests cannot be counted; set threshold_seconds to a bound every series has ({shared}), or give every series the same buckets"
    )]
    NoBucket {
        threshold: f64,
        /// The labels (without `le`) of the first series that lacks the bucket.
        group: String,
        /// That series' bucket bounds.
        seen: String,
        /// How many other series lack it too, in words; empty when none.
        others: String,
        /// The bounds every series has, or "none".
        shared: String,
    },
    #[error(
        "the histogram's series {group} has no le=\"+Inf\" bucket (its buckets: {seen}), so its total count is unknown; query the histogram's _bucket counters, all of them"
    )]
    NoInfBucket { group: String, seen: String },
    #[error(
        "the histogram query returned no series with an `le` label; query the histogram's _bucket counters (an aggregation must keep `le`)"
    )]
    NoBuckets,
    #[error(
        "the query returned {0} series; a threshold query must return one (aggregate it, e.g. with max())"
    )]
    TooManySeries(usize),
    #[error(
        "the histogram's series {first} has buckets {first_layout} but {other} has buckets {other_layout}; a latency distribution compares bucket by bucket, so every series must have the same buckets (aggregate them with `sum by (le)` only if the layouts agree, or select one layout)"
    )]
    LayoutMismatch {
        /// The labels (without `le`) of the first series.
        first: String,
        /// Its bucket bounds.
        first_layout: String,
        /// The labels of a series with another layout.
        other: String,
        /// That series' bucket bounds.
        other_layout: String,
    },
    #[error(
        "the canary's histogram has buckets {canary} but the baseline's has buckets {baseline}; a latency distribution compares the two sides bucket by bucket, so give both the same buckets (or set threshold_seconds to a bound both have)"
    )]
    SideLayoutMismatch {
        /// The canary's bucket bounds.
        canary: String,
        /// The baseline's bucket bounds.
        baseline: String,
    },
}

/// The range a window is queried at: from the canary's start to the last whole
/// step before `end_secs`, so every look sees the same steps it saw before.
pub fn window_range(start_secs: i64, end_secs: i64, step_secs: u64) -> RangeSpec {
    let step = step_secs.max(1) as i64;
    let whole_steps = (end_secs - start_secs).max(0) / step;
    RangeSpec {
        start_secs,
        end_secs: start_secs + whole_steps * step,
        step_secs: step as u64,
    }
}

/// Number of steps in `range`: one fewer than its evaluation points.
pub fn step_count(range: RangeSpec) -> usize {
    ((range.end_secs - range.start_secs).max(0) / range.step_secs.max(1) as i64) as usize
}

/// End of each step in unix seconds.
pub fn step_ends(range: RangeSpec) -> Vec<i64> {
    (1..=step_count(range))
        .map(|i| range.start_secs + i as i64 * range.step_secs as i64)
        .collect()
}

/// What a drop in a counter series means.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Drops {
    /// Each series is one process's counter: a drop is a restart from zero,
    /// and the new value is the step's increase, as Prometheus's `rate()` reads it.
    Restart,
    /// Each series may combine many counters (a `sum` over pods): a drop
    /// hides how much the others grew, so the step's increase is unknown
    /// (NaN) and the step carries no evidence.
    Unknown,
}

/// The increase of the counters in `series` during each step of `range`,
/// summed over series. Each series is differenced on its own, so a drop in
/// one series is read by `drops` (a restart counts the new value, never a
/// negative increase), and a series that first appears after the window's
/// start counts from zero; non-finite samples are skipped.
pub fn counter_increases(series: &[Series], range: RangeSpec, drops: Drops) -> Vec<f64> {
    let steps = step_count(range);
    let step = range.step_secs.max(1) as i64;
    let mut increases = vec![0.0; steps];
    for one in series {
        let mut previous: Option<f64> = None;
        for &(time, value) in &one.points {
            if !value.is_finite() || time < range.start_secs || time > range.end_secs {
                continue;
            }
            let index = ((time - range.start_secs) / step) as usize;
            let increase = match previous {
                Some(before) if value >= before => value - before,
                Some(_) => match drops {
                    Drops::Restart => value,
                    Drops::Unknown => f64::NAN,
                },
                // A series first seen after the window opened is a counter created
                // since (a new pod, the first 5xx of its kind): it counts from zero.
                // Skipping it would hide a new canary pod's first errors.
                None if index >= 1 => value,
                None => 0.0,
            };
            if index >= 1 {
                increases[index - 1] += increase;
            }
            previous = Some(value);
        }
    }
    increases
}

/// The buckets of one histogram series: one label set without `le`.
#[derive(Default)]
struct BucketGroup<'a> {
    /// The `le` values seen, as written.
    bounds: Vec<&'a str>,
    /// The first series whose bound is the threshold.
    at_threshold: Option<&'a Series>,
    /// The first series whose bound is +Inf.
    at_infinity: Option<&'a Series>,
}

/// A label set in PromQL's notation: `name{a="1", b="2"}`.
fn labels_text(labels: &BTreeMap<String, String>) -> String {
    let name = labels.get("__name__").map_or("", String::as_str);
    let pairs: Vec<String> = labels
        .iter()
        .filter(|(key, _)| key.as_str() != "__name__")
        .map(|(key, value)| format!("{key}={value:?}"))
        .collect();
    format!("{name}{{{}}}", pairs.join(", "))
}

/// `le` values in numeric order (+Inf last), joined by commas.
fn bounds_text<'a>(bounds: impl IntoIterator<Item = &'a str>) -> String {
    let mut sorted: Vec<&str> = bounds.into_iter().collect();
    sorted.sort_by(|a, b| {
        let bound = |text: &str| text.parse::<f64>().unwrap_or(f64::MAX);
        bound(a).total_cmp(&bound(b))
    });
    sorted.dedup();
    sorted.join(", ")
}

/// One bucket series: its bound, the bound as written, the series.
type Bucket<'a> = (f64, &'a str, &'a Series);

/// Every series with a numeric `le` label: its labels without `le` (the
/// histogram series it belongs to), its bound, the bound as written, itself.
fn buckets_of(
    series: &[Series],
) -> impl Iterator<Item = (BTreeMap<String, String>, f64, &str, &Series)> {
    series.iter().filter_map(|one| {
        let le = one.labels.get("le")?;
        let bound = le.parse::<f64>().ok()?;
        let mut key = one.labels.clone();
        key.remove("le");
        Some((key, bound, le.as_str(), one))
    })
}

/// Per-step counts of requests above `threshold` seconds and of all requests,
/// from the series of a histogram's `_bucket` counters.
///
/// Buckets are matched within each series of the histogram (each label set
/// without `le`): its slow requests are its +Inf bucket's increase less its
/// threshold bucket's, and the sides' counts are the sums over series. A
/// series that lacks either bucket is an error that names it, since counting
/// it without one would call all its requests slow, or none.
pub fn histogram_counts(
    series: &[Series],
    threshold: f64,
    range: RangeSpec,
    drops: Drops,
) -> Result<(Vec<f64>, Vec<f64>), MeasureError> {
    let mut groups: BTreeMap<BTreeMap<String, String>, BucketGroup> = BTreeMap::new();
    for (key, bound, le, one) in buckets_of(series) {
        let group = groups.entry(key).or_default();
        group.bounds.push(le);
        if bound.is_infinite() {
            group.at_infinity.get_or_insert(one);
        } else if (bound - threshold).abs() <= 1e-9 * threshold.abs().max(1.0) {
            group.at_threshold.get_or_insert(one);
        }
    }
    if groups.is_empty() {
        return match series.is_empty() {
            true => Ok((vec![0.0; step_count(range)], vec![0.0; step_count(range)])),
            false => Err(MeasureError::NoBuckets),
        };
    }
    if let Some((labels, group)) = groups.iter().find(|(_, g)| g.at_infinity.is_none()) {
        return Err(MeasureError::NoInfBucket {
            group: labels_text(labels),
            seen: bounds_text(group.bounds.iter().copied()),
        });
    }
    let lacking: Vec<_> = groups
        .iter()
        .filter(|(_, g)| g.at_threshold.is_none())
        .collect();
    if let Some((labels, group)) = lacking.first() {
        let shared: Vec<&str> = group
            .bounds
            .iter()
            .copied()
            .filter(|bound| groups.values().all(|g| g.bounds.contains(bound)))
            .collect();
        return Err(MeasureError::NoBucket {
            threshold,
            group: labels_text(labels),
            seen: bounds_text(group.bounds.iter().copied()),
            others: match lacking.len() - 1 {
                0 => String::new(),
                1 => "; 1 other series lacks it too".into(),
                n => format!("; {n} other series lack it too"),
            },
            shared: match shared.is_empty() {
                true => "none".into(),
                false => bounds_text(shared),
            },
        });
    }
    let mut slow = vec![0.0; step_count(range)];
    let mut total = vec![0.0; step_count(range)];
    for group in groups.values() {
        let (Some(all), Some(fast)) = (group.at_infinity, group.at_threshold) else {
            continue;
        };
        let all = counter_increases(std::slice::from_ref(all), range, drops);
        let fast = counter_increases(std::slice::from_ref(fast), range, drops);
        for (step, (all, fast)) in all.iter().zip(&fast).enumerate() {
            // NaN (an unknown step) stays NaN: f64::max would turn it into 0.
            let group_slow = match (all - fast).is_nan() {
                true => f64::NAN,
                false => (all - fast).max(0.0),
            };
            slow[step] += group_slow;
            total[step] += all;
        }
    }
    Ok((slow, total))
}

/// One side's histogram, step by step: its finite bucket bounds and, per
/// step, the requests at or below each and all requests (summed over series).
#[derive(Clone, Debug, PartialEq)]
pub struct HistogramSteps {
    /// The finite `le` bounds, increasing.
    pub edges: Vec<f64>,
    /// The bounds as the series wrote them, +Inf last: for messages.
    pub layout: String,
    /// Per step, the requests at or below each edge, in the order of `edges`.
    pub at_or_below: Vec<Vec<f64>>,
    /// Per step, all requests (the `+Inf` bucket).
    pub totals: Vec<f64>,
}

/// Per-step counts of every bucket of a histogram's `_bucket` series, for
/// the distribution test.
///
/// Buckets are matched within each series (each label set without `le`), as
/// in [`histogram_counts`], and summed over series. Every series must have
/// the same bucket bounds: two layouts cannot be compared bucket by bucket,
/// so they are refused with both layouts named, never merged. An unknown step
/// (NaN) of any bucket makes the whole step unknown.
pub fn histogram_buckets(
    series: &[Series],
    range: RangeSpec,
    drops: Drops,
) -> Result<HistogramSteps, MeasureError> {
    let mut groups: BTreeMap<BTreeMap<String, String>, Vec<Bucket>> = BTreeMap::new();
    for (key, bound, le, one) in buckets_of(series) {
        groups.entry(key).or_default().push((bound, le, one));
    }
    if groups.is_empty() {
        return match series.is_empty() {
            true => Ok(HistogramSteps {
                edges: Vec::new(),
                layout: String::new(),
                at_or_below: vec![Vec::new(); step_count(range)],
                totals: vec![0.0; step_count(range)],
            }),
            false => Err(MeasureError::NoBuckets),
        };
    }
    for buckets in groups.values_mut() {
        buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
        buckets.dedup_by(|a, b| a.0 == b.0);
    }
    if let Some((labels, buckets)) = groups
        .iter()
        .find(|(_, b)| !b.iter().any(|(bound, _, _)| bound.is_infinite()))
    {
        return Err(MeasureError::NoInfBucket {
            group: labels_text(labels),
            seen: bounds_text(buckets.iter().map(|(_, le, _)| *le)),
        });
    }
    let finite = |buckets: &[Bucket]| -> Vec<f64> {
        buckets
            .iter()
            .map(|(bound, _, _)| *bound)
            .filter(|b| b.is_finite())
            .collect()
    };
    let layout = |buckets: &[Bucket]| bounds_text(buckets.iter().map(|b| b.1));
    let (first_labels, first_buckets) = groups.iter().next().expect("not empty");
    let edges = finite(first_buckets);
    if let Some((labels, buckets)) = groups.iter().find(|(_, b)| finite(b) != edges) {
        return Err(MeasureError::LayoutMismatch {
            first: labels_text(first_labels),
            first_layout: layout(first_buckets),
            other: labels_text(labels),
            other_layout: layout(buckets),
        });
    }
    let mut at_or_below = vec![vec![0.0; edges.len()]; step_count(range)];
    let mut totals = vec![0.0; step_count(range)];
    for buckets in groups.values() {
        for (bound, _, one) in buckets {
            let increases = counter_increases(std::slice::from_ref(*one), range, drops);
            let position = edges.iter().position(|e| e == bound);
            for (step, increase) in increases.into_iter().enumerate() {
                match position {
                    Some(i) => at_or_below[step][i] += increase,
                    None => totals[step] += increase,
                }
            }
        }
    }
    // An unknown bucket (a summed counter fell) makes the whole step unknown.
    for (cumulative, total) in at_or_below.iter_mut().zip(&mut totals) {
        if total.is_nan() || cumulative.iter().any(|v| v.is_nan()) {
            *total = f64::NAN;
            cumulative.iter_mut().for_each(|v| *v = f64::NAN);
        }
    }
    Ok(HistogramSteps {
        edges,
        layout: layout(first_buckets),
        at_or_below,
        totals,
    })
}

/// Steps a side may fall silent before the window's end while the other side
/// goes on, before its series count as vanished.
pub const VANISHED_GRACE_STEPS: i64 = 4;

/// The samples of `series` that are infinite (and NaN, when `count_nan`), in
/// words (`2 NaN, 1 +Inf of 240 samples`); `None` when there are none.
pub fn non_finite(series: &[Series], count_nan: bool) -> Option<String> {
    let values = || series.iter().flat_map(|s| s.points.iter().map(|&(_, v)| v));
    let total = values().count();
    let nan = if count_nan {
        values().filter(|v| v.is_nan()).count()
    } else {
        0
    };
    let positive = values().filter(|v| *v == f64::INFINITY).count();
    let negative = values().filter(|v| *v == f64::NEG_INFINITY).count();
    let parts: Vec<String> = [(nan, "NaN"), (positive, "+Inf"), (negative, "-Inf")]
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, name)| format!("{n} {name}"))
        .collect();
    (!parts.is_empty()).then(|| format!("{} of {total} samples", parts.join(", ")))
}

/// The time of the last sample of `series` within `range`.
fn last_sample_secs(series: &[Series], range: RangeSpec) -> Option<i64> {
    series
        .iter()
        .flat_map(|s| s.points.iter().map(|&(t, _)| t))
        .filter(|t| (range.start_secs..=range.end_secs).contains(t))
        .max()
}

/// Says which side's series vanished before the window's end while the other
/// side's went on; `None` when both report to the end (or both stopped).
pub fn vanished(canary: &[Series], baseline: &[Series], range: RangeSpec) -> Option<String> {
    let cutoff = range.end_secs - VANISHED_GRACE_STEPS * range.step_secs.max(1) as i64;
    let (canary_last, baseline_last) = (
        last_sample_secs(canary, range)?,
        last_sample_secs(baseline, range)?,
    );
    let (gone, other, last) = match (canary_last < cutoff, baseline_last < cutoff) {
        (true, false) => ("canary", "baseline", canary_last),
        (false, true) => ("baseline", "canary", baseline_last),
        _ => return None,
    };
    Some(format!(
        "The {gone}'s series vanished: its last sample is at {}, {} s before the window's end, while the {other}'s went on; a {gone} that stopped reporting cannot be judged.",
        crate::text::time(last),
        range.end_secs - last
    ))
}

/// Every finite sample of every series with its time in unix seconds, pooled
/// (Kayenta compares series this way). The times let the judge take the
/// samples up to a checkpoint.
pub fn pooled_values(series: &[Series]) -> Vec<(i64, f64)> {
    series
        .iter()
        .flat_map(|s| s.points.iter().copied())
        .filter(|(_, v)| v.is_finite())
        .collect()
}

/// The one value of an instant query; `None` when it returned nothing or NaN.
pub fn single_value(series: &[Series]) -> Result<Option<f64>, MeasureError> {
    match series {
        [] => Ok(None),
        [one] => Ok(one.points.last().map(|&(_, v)| v).filter(|v| !v.is_nan())),
        many => Err(MeasureError::TooManySeries(many.len())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    /// A window from 0 to `end_secs` in 15 s steps.
    fn steps_of_15s(end_secs: i64) -> RangeSpec {
        RangeSpec {
            start_secs: 0,
            end_secs,
            step_secs: 15,
        }
    }

    fn series(labels: &[(&str, &str)], points: &[(i64, f64)]) -> Series {
        Series {
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>(),
            points: points.to_vec(),
        }
    }

    // A counter reset counts the new value as the increase, never a negative one.
    #[test]
    fn counter_reset_counts_the_new_value() {
        let range = steps_of_15s(60);
        let pod = series(
            &[],
            &[(0, 100.0), (15, 110.0), (30, 4.0), (45, 10.0), (60, 10.0)],
        );
        assert_eq!(
            counter_increases(&[pod], range, Drops::Restart),
            vec![10.0, 4.0, 6.0, 0.0]
        );
    }

    // A drop in a sum over pods (one pod restarted) leaves that step unknown instead
    // of counting the whole remaining sum as new events; later steps count as usual.
    #[test]
    fn a_drop_in_a_combined_series_leaves_its_step_unknown() {
        let range = steps_of_15s(45);
        let summed = series(&[], &[(0, 1000.0), (15, 1010.0), (30, 905.0), (45, 912.0)]);
        let increases = counter_increases(&[summed], range, Drops::Unknown);
        assert_eq!(increases[0], 10.0);
        assert!(increases[1].is_nan(), "{increases:?}");
        assert_eq!(increases[2], 7.0);
    }

    // Series are differenced one by one and summed; a gap attributes the increase to the step it ends in.
    #[test]
    fn series_are_summed_and_gaps_are_bridged() {
        let range = steps_of_15s(45);
        let a = series(&[], &[(0, 1.0), (15, 2.0), (30, 3.0), (45, 4.0)]);
        let b = series(&[], &[(0, 10.0), (45, 16.0)]);
        assert_eq!(
            counter_increases(&[a, b], range, Drops::Restart),
            vec![1.0, 1.0, 7.0]
        );
    }

    // Non-finite samples are counted by kind; NaN only when asked, since it is a gap in some series.
    #[test]
    fn non_finite_samples_are_named() {
        let odd = series(&[], &[(0, 1.0), (15, f64::NAN), (30, f64::INFINITY)]);
        let both = std::slice::from_ref(&odd);
        assert_eq!(
            non_finite(both, true).as_deref(),
            Some("1 NaN, 1 +Inf of 3 samples")
        );
        assert_eq!(
            non_finite(both, false).as_deref(),
            Some("1 +Inf of 3 samples")
        );
        assert_eq!(non_finite(&[series(&[], &[(0, 1.0)])], true), None);
    }

    // A side silent for more than the grace steps before the end, while the other goes on, has vanished.
    #[test]
    fn a_side_that_stops_reporting_has_vanished() {
        let range = steps_of_15s(600);
        let through = |last: i64| {
            series(
                &[],
                &(0..=last / 15).map(|i| (i * 15, 1.0)).collect::<Vec<_>>(),
            )
        };
        let why = vanished(&[through(300)], &[through(600)], range).expect("canary vanished");
        assert!(
            why.contains("canary's series vanished") && why.contains("300 s before"),
            "{why}"
        );
        assert!(
            vanished(&[through(600)], &[through(300)], range)
                .is_some_and(|w| w.contains("baseline's"))
        );
        // Within the grace steps, or both silent: nothing vanished.
        assert_eq!(vanished(&[through(555)], &[through(600)], range), None);
        assert_eq!(vanished(&[through(300)], &[through(300)], range), None);
    }

    // The window stops at the last whole step, so later looks see the same earlier steps.
    #[test]
    fn window_is_aligned_to_the_start() {
        let range = window_range(1000, 1100, 15);
        assert_eq!(range.end_secs, 1090);
        assert_eq!(step_count(range), 6);
        assert_eq!(step_ends(range)[0], 1015);
    }

    // A series that appears mid-window (a new pod, a first 5xx) counts from zero;
    // one present at the start is the baseline of its own increases.
    #[test]
    fn series_appearing_mid_window_counts_from_zero() {
        let range = steps_of_15s(45);
        let old = series(&[], &[(0, 50.0), (15, 52.0), (30, 52.0), (45, 53.0)]);
        let new = series(&[], &[(30, 4.0), (45, 6.0)]);
        assert_eq!(
            counter_increases(&[old, new], range, Drops::Restart),
            vec![2.0, 4.0, 3.0]
        );
    }

    // Slow requests are the +Inf bucket's increase less the threshold bucket's.
    #[test]
    fn histogram_slow_counts() {
        let range = steps_of_15s(15);
        let fast = series(&[("le", "0.25")], &[(0, 0.0), (15, 90.0)]);
        let all = series(&[("le", "+Inf")], &[(0, 0.0), (15, 100.0)]);
        let other = series(&[("le", "0.5")], &[(0, 0.0), (15, 95.0)]);
        let (slow, total) = histogram_counts(&[fast, all, other], 0.25, range, Drops::Restart)
            .expect("buckets present");
        assert_eq!((slow, total), (vec![10.0], vec![100.0]));
    }

    // A threshold with no matching bucket names the buckets that exist.
    #[test]
    fn histogram_without_the_bucket_says_which_exist() {
        let range = steps_of_15s(15);
        let all = series(&[("le", "+Inf")], &[(0, 0.0), (15, 100.0)]);
        let other = series(&[("le", "0.5")], &[(0, 0.0), (15, 95.0)]);
        let error =
            histogram_counts(&[all, other], 0.3, range, Drops::Restart).expect_err("no 0.3 bucket");
        assert_eq!(
            error,
            MeasureError::NoBucket {
                threshold: 0.3,
                group: "{}".into(),
                seen: "0.5, +Inf".into(),
                others: String::new(),
                shared: "0.5, +Inf".into(),
            }
        );
    }

    /// One pod's buckets: `(le, count at 15 s)`, each counting from 0 at 0 s.
    fn pod_buckets(pod: &str, buckets: &[(&str, f64)]) -> Vec<Series> {
        buckets
            .iter()
            .map(|&(le, count)| series(&[("pod", pod), ("le", le)], &[(0, 0.0), (15, count)]))
            .collect()
    }

    // Regression: bucket matching was global, so a series without the threshold's
    // bucket (while others had it) counted all its requests as slow. Buckets are now
    // matched per label set without `le`, and each series' slow requests are its own.
    #[test]
    fn a_series_without_the_threshold_bucket_is_not_counted_as_all_slow() {
        let range = steps_of_15s(15);
        let mut both = pod_buckets("a", &[("0.25", 90.0), ("+Inf", 100.0)]);
        both.extend(pod_buckets(
            "b",
            &[("0.25", 45.0), ("1", 48.0), ("+Inf", 50.0)],
        ));
        let counts = histogram_counts(&both, 0.25, range, Drops::Restart).expect("both have it");
        assert_eq!(counts, (vec![15.0], vec![150.0]));

        let mut mixed = pod_buckets("a", &[("0.25", 90.0), ("0.5", 95.0), ("+Inf", 100.0)]);
        mixed.extend(pod_buckets(
            "b",
            &[("0.1", 40.0), ("0.5", 48.0), ("+Inf", 50.0)],
        ));
        let error = histogram_counts(&mixed, 0.25, range, Drops::Restart)
            .expect_err("pod b has no 0.25 bucket");
        assert_eq!(
            error.to_string(),
            "the histogram's series {pod=\"b\"} has no bucket with le=\"0.25\" (its buckets: 0.1, 0.5, +Inf), so its slow requests cannot be counted; set threshold_seconds to a bound every series has (0.5, +Inf), or give every series the same buckets"
        );
    }

    // Every bucket's step increase is kept, summed over series with one layout.
    #[test]
    fn histogram_buckets_sum_series_of_one_layout() {
        let range = steps_of_15s(15);
        let mut both = pod_buckets("a", &[("0.1", 60.0), ("0.25", 90.0), ("+Inf", 100.0)]);
        both.extend(pod_buckets(
            "b",
            &[("0.1", 20.0), ("0.25", 45.0), ("+Inf", 50.0)],
        ));
        let steps = histogram_buckets(&both, range, Drops::Restart).expect("one layout");
        assert_eq!(steps.edges, vec![0.1, 0.25]);
        assert_eq!(steps.at_or_below[0], vec![80.0, 135.0]);
        assert_eq!(steps.totals[0], 150.0);
    }

    // Two layouts in one answer are refused with both named, never merged.
    #[test]
    fn histogram_buckets_refuse_two_layouts() {
        let range = steps_of_15s(15);
        let mut mixed = pod_buckets("a", &[("0.1", 60.0), ("0.25", 90.0), ("+Inf", 100.0)]);
        mixed.extend(pod_buckets(
            "b",
            &[("0.1", 20.0), ("0.5", 45.0), ("+Inf", 50.0)],
        ));
        let error = histogram_buckets(&mixed, range, Drops::Restart).expect_err("two layouts");
        assert_eq!(
            error.to_string(),
            "the histogram's series {pod=\"a\"} has buckets 0.1, 0.25, +Inf but {pod=\"b\"} has buckets 0.1, 0.5, +Inf; a latency distribution compares bucket by bucket, so every series must have the same buckets (aggregate them with `sum by (le)` only if the layouts agree, or select one layout)"
        );
    }

    // A series without a +Inf bucket is named, since its total is unknown.
    #[test]
    fn a_series_without_the_inf_bucket_is_named() {
        let range = steps_of_15s(15);
        let mut buckets = pod_buckets("a", &[("0.25", 90.0), ("+Inf", 100.0)]);
        buckets.extend(pod_buckets("b", &[("0.25", 45.0)]));
        let error = histogram_counts(&buckets, 0.25, range, Drops::Restart).expect_err("no +Inf");
        assert_eq!(
            error,
            MeasureError::NoInfBucket {
                group: "{pod=\"b\"}".into(),
                seen: "0.25".into()
            }
        );
    }
}
