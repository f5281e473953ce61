//! The distribution test (a latency metric without `threshold_seconds`) on
//! latency histograms simulated as Prometheus scrapes them
//! (`tests/it/stats/histogram.rs` over `tests/it/stats/scrape.rs`): lognormal
//! latency (median 40 ms, log-sd 0.3), 20 requests/s per side, the default
//! client buckets, 30-minute canaries, steps every 15 s, looks every 30 s,
//! per-metric alpha 0.005. The 250 ms threshold form (tolerance 0) runs on
//! the same canaries.
//!
//! Run with `cargo bench --bench latency_distribution`; it prints two
//! Markdown tables: false rollbacks of healthy canaries per condition, and
//! times to rollback of a body shift, a tail shift that crosses 250 ms and a
//! tail shift wholly beyond it, both forms side by side.

// Shared with the Monte Carlo tests; the benchmark uses only part of them.
#[allow(dead_code)]
#[path = "../tests/it/stats/histogram.rs"]
mod histogram;
#[allow(dead_code)]
#[path = "../tests/it/stats/scrape.rs"]
mod scrape;
#[allow(dead_code)]
#[path = "../tests/it/stats/simulate.rs"]
mod simulate;

use canary_gate::stats::Direction;
use canary_gate::stats::counts::RatioTest;
use canary_gate::stats::distribution::DistributionTest;
use histogram::{HistogramCanary, Latency};
use scrape::Timing;
use simulate::{seeded, summarise, time_to_rollback_secs};

/// Healthy canaries per A/A row.
const AA_CANARIES: usize = 2000;
/// Canaries per power row.
const POWER_CANARIES: usize = 1000;
/// Per-metric alpha of the shipped rule set's metrics.
const ALPHA: f64 = 0.005;

/// Times to rollback of the distribution test and of the threshold form.
fn runs(
    setup: &HistogramCanary,
    tolerance: f64,
    canaries: usize,
    seed: u64,
) -> (Vec<Option<u64>>, Vec<Option<u64>>) {
    let test = DistributionTest::new(tolerance, ALPHA).expect("valid");
    let threshold = RatioTest::new(Direction::Increase, 0.0, ALPHA).expect("valid");
    let mut rng = seeded(seed);
    (0..canaries)
        .map(|_| {
            let (steps, counts) = histogram::simulate_histogram_window(setup, 0.25, &mut rng);
            (
                histogram::distribution_rollback_secs(setup.edges, &steps, &test),
                time_to_rollback_secs(&counts, &threshold),
            )
        })
        .unzip()
}

fn secs(value: f64) -> String {
    if value.is_finite() {
        format!("{value:.0} s")
    } else {
        "never".into()
    }
}

fn main() {
    let pair = |timing: Timing, baseline: Latency, canary: Latency| HistogramCanary {
        timing,
        edges: &histogram::DEFAULT_BUCKETS,
        baseline,
        canary,
    };
    let canary = |timing: Timing, canary: Latency| pair(timing, Latency::BASELINE, canary);
    println!(
        "| condition | tolerance | false rollbacks, distribution | false rollbacks, 250 ms threshold |"
    );
    println!("|---|---|---|---|");
    let conditions = [
        (
            "aligned scrapes, no bursts",
            Timing::aligned(20.0, 0.0, 1.0),
        ),
        (
            "baseline scraped 10 s after the canary, bursts",
            Timing::bursty(20.0, 0.0, 1.0, 10.0),
        ),
        (
            "canary scraped 10 s after the baseline, bursts",
            Timing::bursty(20.0, 0.0, 1.0, -10.0),
        ),
        (
            "independent phases, 0.5 s jitter, 2% missed scrapes, no bursts",
            Timing {
                bursts: None,
                ..Timing::messy(20.0, 0.0, 1.0)
            },
        ),
        ("every nuisance", Timing::messy(20.0, 0.0, 1.0)),
    ];
    let mut seed = 1500;
    for (name, timing) in conditions {
        for tolerance in [0.0, 0.1] {
            seed += 1;
            let setup = canary(timing, Latency::BASELINE);
            let (distribution, threshold) = runs(&setup, tolerance, AA_CANARIES, seed);
            println!(
                "| {name} | {:.0}% | {:.2}% | {:.2}% |",
                tolerance * 100.0,
                summarise(&distribution).rolled_back * 100.0,
                summarise(&threshold).rolled_back * 100.0
            );
        }
    }
    println!();
    // At the tolerance boundary: every percentile exactly 10% slower (the
    // lognormal's median times 1.1), tolerance +10%, where the interpolation
    // of the baseline inside its bucket is what the test assumes.
    println!(
        "| canary at the boundary (every percentile +10%), tolerance +10% | timing | rolled back |"
    );
    println!("|---|---|---|");
    let boundary = Latency {
        median_secs: Latency::BASELINE.median_secs * 1.1,
        ..Latency::BASELINE
    };
    for (name, timing) in [
        ("aligned, no bursts", Timing::aligned(20.0, 0.0, 1.0)),
        ("every nuisance", Timing::messy(20.0, 0.0, 1.0)),
    ] {
        seed += 1;
        let (distribution, _) = runs(&canary(timing, boundary), 0.1, AA_CANARIES, seed);
        println!(
            "| distribution | {name} | {:.2}% |",
            summarise(&distribution).rolled_back * 100.0
        );
    }
    println!();
    println!("| shift | timing | tolerance | form | rolled back | within 10 min | median | p90 |");
    println!("|---|---|---|---|---|---|---|---|");
    let body = Latency {
        median_secs: 0.052,
        ..Latency::BASELINE
    };
    let tail = Latency {
        tail_share: 0.02,
        tail_extra_secs: 0.5,
        ..Latency::BASELINE
    };
    let (slow_tail, slower_tail) = Latency::tail_beyond_the_cut();
    for (shift, baseline, law) in [
        ("body: median 40 -> 52 ms", Latency::BASELINE, body),
        ("tail: 2% of requests +0.5 s", Latency::BASELINE, tail),
        (
            "tail beyond 250 ms: p99 about 0.4 -> 0.9 s",
            slow_tail,
            slower_tail,
        ),
    ] {
        for (timing_name, timing) in [
            ("aligned, no bursts", Timing::aligned(20.0, 0.0, 1.0)),
            ("every nuisance", Timing::messy(20.0, 0.0, 1.0)),
        ] {
            for tolerance in [0.0, 0.1] {
                seed += 1;
                let (distribution, threshold) = runs(
                    &pair(timing, baseline, law),
                    tolerance,
                    POWER_CANARIES,
                    seed,
                );
                let rows = [
                    (
                        "distribution",
                        distribution,
                        format!("{:.0}%", tolerance * 100.0),
                    ),
                    ("250 ms threshold", threshold, "0%".into()),
                ];
                for (form, times, tolerance_words) in rows {
                    let summary = summarise(&times);
                    println!(
                        "| {shift} | {timing_name} | {tolerance_words} | {form} | {:.2}% | {:.2}% | {} | {} |",
                        summary.rolled_back * 100.0,
                        summary.within_10_min * 100.0,
                        secs(summary.median_secs),
                        secs(summary.p90_secs)
                    );
                }
            }
        }
    }
}
