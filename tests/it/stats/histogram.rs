//! Seeded simulation of latency histograms as Prometheus sees them, for the
//! distribution test: each request's latency is drawn from a lognormal body
//! (with an optional slow tail), counted into its side's buckets, and the
//! buckets are scraped with the phases, jitter and missed scrapes of
//! [`super::scrape`]; a range query per bucket and the product's own
//! `measure::histogram_buckets` turn them into per-step bucket counts.
//! Shared bursts make a share of both sides' requests much slower for a few
//! seconds. The distribution benchmark includes this file by path.

use canary_gate::measure::{Drops, histogram_buckets, histogram_counts};
use canary_gate::source::{RangeSpec, Series};
use canary_gate::stats::counts::StepCounts;
use canary_gate::stats::distribution::{HistogramStep, SideBuckets};
use rand::RngExt;
use rand::rngs::StdRng;
use rand_distr::{Distribution, Normal};
use statrs::distribution::{ContinuousCDF, Normal as StdNormal};

use super::scrape::{
    COUNTERS_BORN_BEFORE_START_SECS, Phases, SCRAPE_SECS, STEP_SECS, Timing, WINDOW_SECS,
    WINDOW_START_SECS, labelled, range_query,
};
use super::simulate::{binomial, poisson};

/// The Prometheus client libraries' default buckets, which `rules/http.yaml`'s
/// histogram and `canary-gate simulate` use.
pub const DEFAULT_BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Extra latency of a request slowed by a shared burst.
const BURST_EXTRA_SECS: f64 = 1.0;

/// One side's latency law: a lognormal body, and a share of requests that
/// take `tail_extra_secs` longer.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Latency {
    /// Median of the lognormal body, in seconds.
    pub median_secs: f64,
    /// Standard deviation of the body's log.
    pub log_sd: f64,
    /// Share of requests slowed by `tail_extra_secs`.
    pub tail_share: f64,
    /// Extra seconds of the slowed requests.
    pub tail_extra_secs: f64,
}

impl Latency {
    /// The baseline: median 40 ms, log-sd 0.3, no slow tail.
    pub const BASELINE: Latency = Latency {
        median_secs: 0.040,
        log_sd: 0.3,
        tail_share: 0.0,
        tail_extra_secs: 0.0,
    };

    /// A tail that moves only beyond a 250 ms cut, as (baseline, canary): 1.5%
    /// of the baseline's requests take about 0.4 s (its p99), the canary's
    /// about 0.9 s, and on both sides the same 1.5% are slower than 250 ms.
    pub fn tail_beyond_the_cut() -> (Latency, Latency) {
        let baseline = Latency {
            tail_share: 0.015,
            tail_extra_secs: 0.36,
            ..Latency::BASELINE
        };
        let canary = Latency {
            tail_extra_secs: 0.86,
            ..baseline
        };
        (baseline, canary)
    }

    /// P(latency <= x), with a share `slowed` of requests `extra` seconds longer.
    fn cdf(&self, x: f64, slowed: f64, extra: f64) -> f64 {
        let body = |x: f64| {
            if x <= 0.0 {
                return 0.0;
            }
            let z = (x / self.median_secs).ln() / self.log_sd;
            StdNormal::standard().cdf(z)
        };
        let tailed = |x: f64| {
            (1.0 - self.tail_share) * body(x) + self.tail_share * body(x - self.tail_extra_secs)
        };
        (1.0 - slowed) * tailed(x) + slowed * tailed(x - extra)
    }

    /// Probability of each bucket (`edges`, then `+Inf`), with a share
    /// `slowed` of requests slowed by a burst.
    fn bucket_chances(&self, edges: &[f64], slowed: f64) -> Vec<f64> {
        let mut below = 0.0;
        let mut chances: Vec<f64> = edges
            .iter()
            .map(|&e| {
                let at = self.cdf(e, slowed, BURST_EXTRA_SECS);
                let chance = (at - below).max(0.0);
                below = at;
                chance
            })
            .collect();
        chances.push((1.0 - below).max(0.0));
        chances
    }
}

/// A canary as the distribution test sees it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct HistogramCanary<'a> {
    /// Traffic, scrape timing and bursts (`bad_fraction`, `true_ratio` and
    /// `kind` unused; a burst's `bad_fraction` is the share slowed).
    pub timing: Timing,
    /// The bucket edges (finite, increasing).
    pub edges: &'a [f64],
    /// The baseline's latency, and the canary's before `timing.onset_secs`.
    pub baseline: Latency,
    /// The canary's latency from `timing.onset_secs`.
    pub canary: Latency,
}

/// Share of requests slowed by a burst at `secs`.
fn slowed_at(timing: &Timing, bursts_start: f64, secs: f64) -> f64 {
    let Some(bursts) = timing.bursts else {
        return 0.0;
    };
    let since = (secs - bursts_start).rem_euclid(bursts.every_secs);
    if secs >= bursts_start && since < bursts.length_secs {
        bursts.bad_fraction
    } else {
        0.0
    }
}

/// Times in `(from, to)` at which the law of a side may change.
fn law_changes(canary: &HistogramCanary, bursts_start: f64, from: f64, to: f64) -> Vec<f64> {
    let mut cuts = vec![canary.timing.onset_secs];
    if let Some(bursts) = canary.timing.bursts {
        let mut start = bursts_start;
        while start < to {
            cuts.extend([start, start + bursts.length_secs]);
            start += bursts.every_secs;
        }
    }
    cuts.retain(|t| *t > from && *t < to);
    cuts.sort_by(f64::total_cmp);
    cuts
}

/// The samples one side's target stored: (time relative to the window's
/// start, cumulative count per bucket including `+Inf`), in time order.
fn scrape_histogram(
    canary: &HistogramCanary,
    is_canary: bool,
    phase_secs: f64,
    bursts_start: f64,
    rng: &mut StdRng,
) -> Vec<(f64, Vec<f64>)> {
    let timing = &canary.timing;
    let jitter = Normal::new(0.0, timing.jitter_sd_secs.max(0.0)).expect("finite sd");
    let born = -COUNTERS_BORN_BEFORE_START_SECS;
    let end = WINDOW_SECS as f64 + SCRAPE_SECS;
    let mut per_bucket = vec![0.0; canary.edges.len() + 1];
    let mut samples = Vec::new();
    let mut counted_to = born;
    let mut scheduled = born + phase_secs;
    while scheduled <= end {
        let at = (scheduled + jitter.sample(rng)).max(counted_to);
        let mut cuts = law_changes(canary, bursts_start, counted_to, at);
        cuts.push(at);
        let mut from = counted_to;
        for to in cuts {
            let law = match is_canary && 0.5 * (from + to) >= timing.onset_secs {
                true => canary.canary,
                false => canary.baseline,
            };
            // Judged at the piece's middle: at its ends, rounding of the burst
            // times could count a whole piece as inside a burst.
            let slowed = slowed_at(timing, bursts_start, 0.5 * (from + to));
            let chances = law.bucket_chances(canary.edges, slowed);
            // A multinomial draw as a chain of binomials.
            let mut left = poisson(timing.requests_per_sec * (to - from), rng);
            let mut chance_left = 1.0;
            for (count, chance) in per_bucket.iter_mut().zip(&chances) {
                let drawn = match chance_left > 0.0 {
                    true => binomial(left, chance / chance_left, rng),
                    false => 0.0,
                };
                *count += drawn;
                left -= drawn;
                chance_left -= chance;
            }
            from = to;
        }
        counted_to = at;
        if !rng.random_bool(timing.missed_scrape_chance.clamp(0.0, 1.0)) {
            let cumulative = per_bucket
                .iter()
                .scan(0.0, |sum, count| {
                    *sum += count;
                    Some(*sum)
                })
                .collect();
            samples.push((at, cumulative));
        }
        scheduled += SCRAPE_SECS;
    }
    samples
}

/// The range-query answer of one side's bucket series.
fn bucket_series(
    canary: &HistogramCanary,
    samples: &[(f64, Vec<f64>)],
    range: RangeSpec,
) -> Vec<Series> {
    let bounds: Vec<String> = canary
        .edges
        .iter()
        .map(|e| e.to_string())
        .chain(["+Inf".to_string()])
        .collect();
    bounds
        .iter()
        .enumerate()
        .map(|(i, le)| {
            let points: Vec<(f64, f64)> = samples.iter().map(|(t, c)| (*t, c[i])).collect();
            labelled(range_query(&points, range), "le", le)
        })
        .collect()
}

/// One simulated window, read both ways: the per-step bucket counts of both
/// sides (for the distribution test) and the per-step counts above
/// `threshold_seconds` (for the threshold form; a bucket edge).
pub fn simulate_histogram_window(
    canary: &HistogramCanary,
    threshold_seconds: f64,
    rng: &mut StdRng,
) -> (Vec<HistogramStep>, Vec<StepCounts>) {
    let canary_phase = rng.random_range(0.0..SCRAPE_SECS);
    let baseline_phase = match canary.timing.phases {
        Phases::BaselineAfterCanary { secs } => (canary_phase + secs).rem_euclid(SCRAPE_SECS),
        Phases::Independent => rng.random_range(0.0..SCRAPE_SECS),
    };
    let bursts_start = canary
        .timing
        .bursts
        .map_or(0.0, |b| rng.random_range(0.0..b.every_secs));
    let canary_samples = scrape_histogram(canary, true, canary_phase, bursts_start, rng);
    let baseline_samples = scrape_histogram(canary, false, baseline_phase, bursts_start, rng);
    let range = RangeSpec {
        start_secs: WINDOW_START_SECS,
        end_secs: WINDOW_START_SECS + WINDOW_SECS,
        step_secs: STEP_SECS as u64,
    };
    let canary_series = bucket_series(canary, &canary_samples, range);
    let baseline_series = bucket_series(canary, &baseline_samples, range);
    let buckets = |series: &[Series]| {
        histogram_buckets(series, range, Drops::Restart).expect("one layout with +Inf")
    };
    let (canary_buckets, baseline_buckets) = (buckets(&canary_series), buckets(&baseline_series));
    let steps = (0..canary_buckets.totals.len())
        .map(|i| HistogramStep {
            canary: SideBuckets {
                at_or_below: canary_buckets.at_or_below[i].clone(),
                total: canary_buckets.totals[i],
            },
            baseline: SideBuckets {
                at_or_below: baseline_buckets.at_or_below[i].clone(),
                total: baseline_buckets.totals[i],
            },
        })
        .collect();
    let slow = |series: &[Series]| {
        histogram_counts(series, threshold_seconds, range, Drops::Restart)
            .expect("the threshold is a bucket edge")
    };
    let ((canary_slow, canary_total), (baseline_slow, baseline_total)) =
        (slow(&canary_series), slow(&baseline_series));
    let counts = (0..canary_total.len())
        .map(|i| StepCounts {
            canary_bad: canary_slow[i],
            canary_total: canary_total[i],
            baseline_bad: baseline_slow[i],
            baseline_total: baseline_total[i],
        })
        .collect();
    (steps, counts)
}

/// Seconds from the window's start to the first look (every
/// [`super::simulate::LOOK_SECS`]) at which the distribution test had
/// declared harm, or None.
pub fn distribution_rollback_secs(
    edges: &[f64],
    steps: &[HistogramStep],
    test: &canary_gate::stats::distribution::DistributionTest,
) -> Option<u64> {
    use canary_gate::stats::counts::Decision;
    let outcome = canary_gate::stats::distribution::distribution_test(edges, steps, test)
        .expect("valid edges and steps");
    if outcome.decision != Decision::Harm {
        return None;
    }
    let decided_secs = (outcome.decided_at_step? as u64 + 1) * STEP_SECS as u64;
    let look = super::simulate::LOOK_SECS;
    Some(decided_secs.div_ceil(look) * look)
}
