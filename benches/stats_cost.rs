//! What the statistics of one metric cost, in-process, on seeded counts of
//! the shape `benches/verdict_cost.rs` backfills (20 requests/s per side,
//! 15 s steps, 0.5% errors, 5% slow requests spread over the Prometheus
//! client's default buckets): the counts test of a ratio metric (the
//! threshold form of a latency metric is the same test on other counts) and
//! the distribution test of a latency metric without `threshold_seconds`.
//! No I/O: this is the share of a verdict that `src/stats/` owns, the part
//! the profile in BENCHMARKS.md says dominates.
//!
//! A second table times the looks after the first (`ratio_test_from`): a
//! look whose window is the last look's plus [`NEW_STEPS`] steps (Argo's
//! one look a minute at 15 s steps), resumed from the last look's
//! checkpoint, beside a first look that also takes its checkpoint; and the
//! mean of [`CHAIN_LOOKS`] such looks in a row, each from the one before
//! (a look whose confidence bound moved searches it again, so single looks
//! differ).
//!
//! Run with `cargo bench --bench stats_cost`; `STATS_COST_RUNS` (default 15)
//! sets the timed runs per cell; each cell is the fastest of them.

use std::time::Instant;

use canary_gate::stats::Direction;
use canary_gate::stats::counts::{RatioTest, StepCounts, ratio_test, ratio_test_from};
use canary_gate::stats::distribution::{
    DistributionTest, HistogramStep, SideBuckets, distribution_test, distribution_test_from,
};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand_distr::{Binomial, Distribution, Poisson};

/// The Prometheus client's default bucket edges, in seconds.
const EDGES: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// Share of fast requests in each bucket up to 0.25 s, and of slow ones above
/// it (the last share is above the last edge), as `simulate.rs` spreads them.
const FAST_SHARES: [f64; 6] = [0.05, 0.15, 0.3, 0.3, 0.15, 0.05];
const SLOW_SHARES: [f64; 6] = [0.5, 0.3, 0.15, 0.04, 0.009, 0.001];
/// Requests per side per 15 s step.
const REQUESTS_PER_STEP: f64 = 300.0;
const WINDOWS: [(&str, usize); 3] = [("10 min", 40), ("2 h", 480), ("24 h", 5760)];
/// Steps a later look adds to the last look's window: one look a minute.
const NEW_STEPS: usize = 4;
/// Looks in a row of the chains timed: a quarter of an hour of looks.
const CHAIN_LOOKS: usize = 15;

fn binomial(rng: &mut StdRng, n: u64, p: f64) -> u64 {
    Binomial::new(n, p.clamp(0.0, 1.0)).map_or(0, |b| b.sample(rng))
}

/// One side's step: its error count, and its cumulative bucket counts.
fn side_step(rng: &mut StdRng) -> (f64, SideBuckets) {
    let n = Poisson::new(REQUESTS_PER_STEP).map_or(0.0, |p| p.sample(rng)) as u64;
    let errors = binomial(rng, n, 0.005);
    let slow = binomial(rng, n, 0.05);
    let mut per_bucket = Vec::new();
    for (count, shares) in [(n - slow, &FAST_SHARES), (slow, &SLOW_SHARES)] {
        let (mut left, mut share_left) = (count, 1.0);
        for share in shares {
            let drawn = binomial(rng, left, share / share_left);
            per_bucket.push(drawn);
            left -= drawn;
            share_left -= share;
        }
        // What is left is above the largest edge (slow) or rounding (fast).
        if let Some(last) = per_bucket.last_mut() {
            *last += left;
        }
    }
    let mut running = 0.0;
    let at_or_below = per_bucket[..EDGES.len()]
        .iter()
        .map(|c| {
            running += *c as f64;
            running
        })
        .collect();
    (
        errors as f64,
        SideBuckets {
            at_or_below,
            total: n as f64,
        },
    )
}

/// The shortest of `runs` wall times of `f`: on a shared machine the
/// other processes only ever add to a run, so the shortest is the closest to
/// the cost alone.
fn fastest_ms(mut f: impl FnMut(), runs: usize) -> f64 {
    let times: Vec<f64> = (0..runs)
        .map(|_| {
            let started = Instant::now();
            f();
            started.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    times.into_iter().fold(f64::INFINITY, f64::min)
}

fn main() {
    let runs = std::env::var("STATS_COST_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(15_usize)
        .max(1);
    let mut rng = StdRng::seed_from_u64(15);
    let longest = WINDOWS.iter().map(|w| w.1).max().unwrap_or(0) + NEW_STEPS * CHAIN_LOOKS;
    let (mut errors, mut histogram) = (Vec::new(), Vec::new());
    for _ in 0..longest {
        let (canary_errors, canary) = side_step(&mut rng);
        let (baseline_errors, baseline) = side_step(&mut rng);
        errors.push(StepCounts {
            canary_bad: canary_errors,
            canary_total: canary.total,
            baseline_bad: baseline_errors,
            baseline_total: baseline.total,
        });
        histogram.push(HistogramStep { canary, baseline });
    }
    let slow: Vec<StepCounts> = histogram
        .iter()
        .map(|s| StepCounts {
            canary_bad: s.canary.total - s.canary.at_or_below[5],
            canary_total: s.canary.total,
            baseline_bad: s.baseline.total - s.baseline.at_or_below[5],
            baseline_total: s.baseline.total,
        })
        .collect();
    let ratio = RatioTest::new(Direction::Increase, 0.0, 0.005).expect("valid");
    let threshold = RatioTest::new(Direction::Increase, 0.2, 0.005).expect("valid");
    let distribution = DistributionTest::new(0.2, 0.01).expect("valid");

    println!(
        "| window | steps | ratio test, errors (tolerance 0%) | ratio test, slow requests (+20%) | distribution test, 11 edges (+20%) |"
    );
    println!("|---|---|---|---|---|");
    for (name, steps) in WINDOWS {
        let errors = &errors[..steps];
        let slow = &slow[..steps];
        let histogram = &histogram[..steps];
        let a = fastest_ms(
            || drop(std::hint::black_box(ratio_test(errors, &ratio))),
            runs,
        );
        let b = fastest_ms(
            || drop(std::hint::black_box(ratio_test(slow, &threshold))),
            runs,
        );
        let c = fastest_ms(
            || {
                drop(std::hint::black_box(distribution_test(
                    &EDGES,
                    histogram,
                    &distribution,
                )))
            },
            runs,
        );
        println!("| {name} | {steps} | {a:.2} ms | {b:.2} ms | {c:.2} ms |");
    }

    println!();
    println!(
        "| window | steps | errors, first look with checkpoint | errors, look adding {NEW_STEPS} steps | slow requests, first look with checkpoint | slow requests, look adding {NEW_STEPS} steps | distribution, first look with checkpoint | distribution, look adding {NEW_STEPS} steps |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for (name, steps) in WINDOWS {
        let mut cells = Vec::new();
        for (counts, test) in [(&errors, &ratio), (&slow, &threshold)] {
            let (earlier, later) = (&counts[..steps], &counts[..steps + NEW_STEPS]);
            let first = fastest_ms(
                || drop(std::hint::black_box(ratio_test_from(earlier, test, None))),
                runs,
            );
            let (_, checkpoint) = ratio_test_from(earlier, test, None);
            let warm = fastest_ms(
                || {
                    drop(std::hint::black_box(ratio_test_from(
                        later,
                        test,
                        Some(&checkpoint),
                    )))
                },
                runs,
            );
            cells.push(format!("{first:.2} ms | {warm:.3} ms"));
        }
        let (earlier, later) = (&histogram[..steps], &histogram[..steps + NEW_STEPS]);
        let test = &distribution;
        let first = fastest_ms(
            || {
                drop(std::hint::black_box(distribution_test_from(
                    &EDGES, earlier, test, None,
                )))
            },
            runs,
        );
        let (_, checkpoint) =
            distribution_test_from(&EDGES, earlier, test, None).expect("valid input");
        let warm = fastest_ms(
            || {
                drop(std::hint::black_box(distribution_test_from(
                    &EDGES,
                    later,
                    test,
                    Some(&checkpoint),
                )))
            },
            runs,
        );
        cells.push(format!("{first:.2} ms | {warm:.3} ms"));
        println!("| {name} | {steps} | {} |", cells.join(" | "));
    }

    println!();
    println!(
        "| window | steps | errors, mean of {CHAIN_LOOKS} looks in a row | slow requests, the same | distribution, the same |"
    );
    println!("|---|---|---|---|---|");
    for (name, steps) in WINDOWS {
        let mut cells = Vec::new();
        for (counts, test) in [(&errors, &ratio), (&slow, &threshold)] {
            let (_, first) = ratio_test_from(&counts[..steps], test, None);
            let chain = fastest_ms(
                || {
                    let mut checkpoint = first.clone();
                    for look in 1..=CHAIN_LOOKS {
                        let window = &counts[..steps + look * NEW_STEPS];
                        let (outcome, next) = ratio_test_from(window, test, Some(&checkpoint));
                        drop(std::hint::black_box(outcome));
                        checkpoint = next;
                    }
                },
                runs,
            );
            cells.push(format!("{:.3} ms", chain / CHAIN_LOOKS as f64));
        }
        let test = &distribution;
        let (_, first) =
            distribution_test_from(&EDGES, &histogram[..steps], test, None).expect("valid input");
        let chain = fastest_ms(
            || {
                let mut checkpoint = first.clone();
                for look in 1..=CHAIN_LOOKS {
                    let window = &histogram[..steps + look * NEW_STEPS];
                    let (outcome, next) =
                        distribution_test_from(&EDGES, window, test, Some(&checkpoint))
                            .expect("valid input");
                    drop(std::hint::black_box(outcome));
                    checkpoint = next;
                }
            },
            runs,
        );
        cells.push(format!("{:.3} ms", chain / CHAIN_LOOKS as f64));
        println!("| {name} | {steps} | {} |", cells.join(" | "));
    }
}
