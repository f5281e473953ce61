//! Seeded simulation of canaries as Prometheus sees them: requests arrive in
//! continuous time on each side, each side's counters are scraped at that
//! side's own phase (with jitter and missed scrapes), a range query reads the
//! last sample at or before every step instant, and the product's own
//! `canary_gate::measure` functions turn those series into per-step counts.
//!
//! The Monte Carlo tests use it for the A/A promise under real scrape timing
//! and for late regressions; the time-to-rollback benchmark includes this file
//! by path, so it depends only on the library, rand and rand_distr.

use std::collections::BTreeMap;

use canary_gate::measure::{Drops, counter_increases, histogram_counts};
use canary_gate::source::{RangeSpec, Series};
use canary_gate::stats::counts::StepCounts;
use rand::RngExt;
use rand::rngs::StdRng;
use rand_distr::{Distribution, Normal};

use super::simulate::{binomial, poisson};

/// Seconds between two scrapes of a target, and between two steps of the query.
pub const SCRAPE_SECS: f64 = 15.0;
/// Seconds between two steps of the range query.
pub const STEP_SECS: i64 = 15;
/// Length of the canary window.
pub const WINDOW_SECS: i64 = 30 * 60;
/// Prometheus's default lookback: a step instant reads the last sample at most
/// this old.
pub const LOOKBACK_SECS: f64 = 300.0;
/// Unix time of the window's start (any value works; a round one reads well).
pub const WINDOW_START_SECS: i64 = 1_800_000_000;
/// Seconds before the window's start at which the counters were created.
pub const COUNTERS_BORN_BEFORE_START_SECS: f64 = 120.0;
/// The bucket bound of the latency kind: a request above it is slow.
const SLOW_ABOVE_SECONDS: f64 = 0.25;

/// Which counters a metric reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Errors out of requests: two counters per side.
    Ratio,
    /// Slow requests out of requests: a histogram's `le="0.25"` and
    /// `le="+Inf"` buckets, read by `measure::histogram_counts`.
    Latency,
}

/// When each side's target is scraped, relative to the query's step grid.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Phases {
    /// The canary's phase is uniform in one scrape interval; the baseline is
    /// scraped this many seconds after it (negative: before it).
    BaselineAfterCanary { secs: f64 },
    /// Each side's phase is uniform in one scrape interval, independently.
    Independent,
}

/// Short outages of a shared dependency that raise both sides' bad fraction
/// at the same instants.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Bursts {
    /// Seconds between the starts of two bursts; the first starts at a
    /// uniformly random time within one period.
    pub every_secs: f64,
    /// Length of each burst.
    pub length_secs: f64,
    /// Bad fraction of both sides during a burst.
    pub bad_fraction: f64,
}

/// How the simulated traffic, errors and scrapes behave.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Timing {
    /// Which counters are read.
    pub kind: Kind,
    /// Requests per second on each side (Poisson arrivals).
    pub requests_per_sec: f64,
    /// Bad fraction of both sides outside bursts.
    pub bad_fraction: f64,
    /// Canary's bad fraction over the baseline's once the regression started.
    pub true_ratio: f64,
    /// Seconds after the window's start at which the regression starts.
    pub onset_secs: f64,
    /// Shared bursts, if any.
    pub bursts: Option<Bursts>,
    /// Scrape phases of the two sides.
    pub phases: Phases,
    /// Standard deviation of each scrape's time around its schedule.
    pub jitter_sd_secs: f64,
    /// Chance that a scrape is missed (its sample never stored).
    pub missed_scrape_chance: f64,
}

impl Timing {
    /// Aligned scrapes (same phase, no jitter, no misses), no bursts, the
    /// regression present from the start.
    pub fn aligned(requests_per_sec: f64, bad_fraction: f64, true_ratio: f64) -> Timing {
        Timing {
            kind: Kind::Ratio,
            requests_per_sec,
            bad_fraction,
            true_ratio,
            onset_secs: 0.0,
            bursts: None,
            phases: Phases::BaselineAfterCanary { secs: 0.0 },
            jitter_sd_secs: 0.0,
            missed_scrape_chance: 0.0,
        }
    }

    /// The failure: 5-second bursts of 50% bad events every ten
    /// minutes, the baseline scraped `baseline_after_canary_secs` after the canary.
    pub fn bursty(
        requests_per_sec: f64,
        bad_fraction: f64,
        true_ratio: f64,
        baseline_after_canary_secs: f64,
    ) -> Timing {
        Timing {
            bursts: Some(Bursts {
                every_secs: 600.0,
                length_secs: 5.0,
                bad_fraction: 0.5,
            }),
            phases: Phases::BaselineAfterCanary {
                secs: baseline_after_canary_secs,
            },
            ..Timing::aligned(requests_per_sec, bad_fraction, true_ratio)
        }
    }

    /// Every timing nuisance at once: independent phases, jitter of 0.5 s
    /// (standard deviation; Prometheus scrapes each target at a fixed offset,
    /// so real jitter is smaller), 2% missed scrapes and the bursts.
    pub fn messy(requests_per_sec: f64, bad_fraction: f64, true_ratio: f64) -> Timing {
        Timing {
            phases: Phases::Independent,
            jitter_sd_secs: 0.5,
            missed_scrape_chance: 0.02,
            ..Timing::bursty(requests_per_sec, bad_fraction, true_ratio, 0.0)
        }
    }
}

/// Seconds relative to the window's start at which a side's bad fraction may
/// change, and the bad fraction from each such time on.
struct BadFraction {
    /// (from_secs, fraction), sorted by time; the first entry is the earliest.
    pieces: Vec<(f64, f64)>,
}

impl BadFraction {
    fn new(timing: &Timing, bursts_start_secs: f64, is_canary: bool) -> BadFraction {
        let ratio_from = |secs: f64| {
            if is_canary && secs >= timing.onset_secs {
                timing.true_ratio
            } else {
                1.0
            }
        };
        let mut edges = vec![-COUNTERS_BORN_BEFORE_START_SECS - LOOKBACK_SECS];
        if is_canary {
            edges.push(timing.onset_secs);
        }
        let mut burst_spans = Vec::new();
        if let Some(bursts) = timing.bursts {
            let mut start = bursts_start_secs;
            while start < WINDOW_SECS as f64 + SCRAPE_SECS * 2.0 {
                burst_spans.push((start, start + bursts.length_secs));
                edges.push(start);
                edges.push(start + bursts.length_secs);
                start += bursts.every_secs;
            }
        }
        edges.sort_by(f64::total_cmp);
        edges.dedup();
        let pieces = edges
            .into_iter()
            .map(|from| {
                let shared = match (
                    timing.bursts,
                    burst_spans.iter().any(|(s, e)| from >= *s && from < *e),
                ) {
                    (Some(bursts), true) => bursts.bad_fraction,
                    _ => timing.bad_fraction,
                };
                (from, (shared * ratio_from(from)).min(1.0))
            })
            .collect();
        BadFraction { pieces }
    }

    /// The edges in `(from, to)`, exclusive.
    fn edges_within(&self, from: f64, to: f64) -> impl Iterator<Item = f64> + '_ {
        self.pieces
            .iter()
            .map(|(t, _)| *t)
            .filter(move |t| *t > from && *t < to)
    }

    fn at(&self, secs: f64) -> f64 {
        self.pieces
            .iter()
            .rev()
            .find(|(from, _)| *from <= secs)
            .map_or(self.pieces[0].1, |(_, f)| *f)
    }
}

/// The samples one side's target stored: (time relative to the window's
/// start, all events, bad events), in time order.
fn scrape_side(
    timing: &Timing,
    phase_secs: f64,
    fraction: &BadFraction,
    rng: &mut StdRng,
) -> Vec<(f64, f64, f64)> {
    let jitter = Normal::new(0.0, timing.jitter_sd_secs.max(0.0)).expect("finite sd");
    let born = -COUNTERS_BORN_BEFORE_START_SECS;
    let end = WINDOW_SECS as f64 + SCRAPE_SECS;
    let mut samples = Vec::new();
    let (mut total, mut bad, mut counted_to) = (0.0_f64, 0.0_f64, born);
    let mut scheduled = born + phase_secs;
    while scheduled <= end {
        let at = (scheduled + jitter.sample(rng)).max(counted_to);
        // Arrivals between the last counted instant and this scrape, cut at
        // every change of the bad fraction: Poisson counts on each piece,
        // each request bad with the piece's fraction (independent marking).
        let mut cuts: Vec<f64> = fraction.edges_within(counted_to, at).collect();
        cuts.push(at);
        let mut from = counted_to;
        for to in cuts {
            let requests = poisson(timing.requests_per_sec * (to - from), rng);
            bad += binomial(requests, fraction.at(from), rng);
            total += requests;
            from = to;
        }
        counted_to = at;
        if !rng.random_bool(timing.missed_scrape_chance.clamp(0.0, 1.0)) {
            samples.push((at, total, bad));
        }
        scheduled += SCRAPE_SECS;
    }
    samples
}

/// What a Prometheus range query over the window returns for one counter:
/// at each step instant, the last sample at or before it, if it is at most
/// [`LOOKBACK_SECS`] old.
pub fn range_query(samples: &[(f64, f64)], range: RangeSpec) -> Series {
    let mut points = Vec::new();
    let mut instant = range.start_secs;
    while instant <= range.end_secs {
        let relative = (instant - WINDOW_START_SECS) as f64;
        let last = samples.iter().rev().find(|(at, _)| *at <= relative);
        if let Some((at, value)) = last
            && relative - at <= LOOKBACK_SECS
        {
            points.push((instant, *value));
        }
        instant += range.step_secs as i64;
    }
    Series {
        labels: BTreeMap::new(),
        points,
    }
}

pub fn labelled(mut series: Series, name: &str, value: &str) -> Series {
    series.labels.insert(name.into(), value.into());
    series
}

/// Per-step (bad, total) of one side, read through the product's measure path.
fn side_counts(kind: Kind, samples: &[(f64, f64, f64)], range: RangeSpec) -> (Vec<f64>, Vec<f64>) {
    let totals: Vec<(f64, f64)> = samples.iter().map(|(t, n, _)| (*t, *n)).collect();
    let bads: Vec<(f64, f64)> = samples.iter().map(|(t, _, b)| (*t, *b)).collect();
    match kind {
        Kind::Ratio => (
            counter_increases(&[range_query(&bads, range)], range, Drops::Restart),
            counter_increases(&[range_query(&totals, range)], range, Drops::Restart),
        ),
        Kind::Latency => {
            let fast: Vec<(f64, f64)> = samples.iter().map(|(t, n, b)| (*t, n - b)).collect();
            let buckets = [
                labelled(range_query(&fast, range), "le", "0.25"),
                labelled(range_query(&totals, range), "le", "+Inf"),
            ];
            histogram_counts(&buckets, SLOW_ABOVE_SECONDS, range, Drops::Restart)
                .expect("both buckets are present")
        }
    }
}

/// Draws one canary's window as the product would measure it.
pub fn simulate_scraped_window(timing: &Timing, rng: &mut StdRng) -> Vec<StepCounts> {
    let canary_phase = rng.random_range(0.0..SCRAPE_SECS);
    let baseline_phase = match timing.phases {
        Phases::BaselineAfterCanary { secs } => (canary_phase + secs).rem_euclid(SCRAPE_SECS),
        Phases::Independent => rng.random_range(0.0..SCRAPE_SECS),
    };
    let bursts_start = timing
        .bursts
        .map_or(0.0, |b| rng.random_range(0.0..b.every_secs));
    let canary_fraction = BadFraction::new(timing, bursts_start, true);
    let baseline_fraction = BadFraction::new(timing, bursts_start, false);
    let canary_samples = scrape_side(timing, canary_phase, &canary_fraction, rng);
    let baseline_samples = scrape_side(timing, baseline_phase, &baseline_fraction, rng);
    let range = RangeSpec {
        start_secs: WINDOW_START_SECS,
        end_secs: WINDOW_START_SECS + WINDOW_SECS,
        step_secs: STEP_SECS as u64,
    };
    let (canary_bad, canary_total) = side_counts(timing.kind, &canary_samples, range);
    let (baseline_bad, baseline_total) = side_counts(timing.kind, &baseline_samples, range);
    (0..canary_total.len())
        .map(|i| StepCounts {
            canary_bad: canary_bad[i],
            canary_total: canary_total[i],
            baseline_bad: baseline_bad[i],
            baseline_total: baseline_total[i],
        })
        .collect()
}
