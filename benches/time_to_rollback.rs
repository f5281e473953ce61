//! Time to rollback of canary-gate's sequential test against a fixed-horizon
//! test and a repeatedly peeked fixed-sample test, on the same seeded
//! simulated canaries (20 requests/s per side, 1% baseline errors, scrapes
//! every 15 s, looks every 30 s for 30 minutes).
//!
//! Run with `cargo bench --bench time_to_rollback`; it prints two Markdown
//! tables: time to rollback per method, and early promotion of healthy canaries.

// Shared with the Monte Carlo tests; the benchmark uses only part of it.
#[allow(dead_code)]
#[path = "../tests/it/stats/simulate.rs"]
mod simulate;

use canary_gate::stats::Direction;
use canary_gate::stats::counts::{Decision, RatioTest, StepCounts, ratio_test};
use simulate::{LOOK_SECS, STEP_SECS, Scenario, seeded, simulate_window, summarise};
use statrs::distribution::{ContinuousCDF, Normal};

/// Canaries per row of the table.
const CANARIES: usize = 2000;

/// One-sided Wald z statistic for "canary fraction > (1 + tolerance) x baseline
/// fraction" on the counts pooled over `steps`.
fn pooled_z(steps: &[StepCounts], tolerance: f64) -> f64 {
    let sum = |f: fn(&StepCounts) -> f64| steps.iter().map(f).sum::<f64>();
    let (canary_bad, canary_total) = (sum(|s| s.canary_bad), sum(|s| s.canary_total));
    let (baseline_bad, baseline_total) = (sum(|s| s.baseline_bad), sum(|s| s.baseline_total));
    if canary_total <= 0.0 || baseline_total <= 0.0 {
        return 0.0;
    }
    let canary_fraction = canary_bad / canary_total;
    let baseline_fraction = baseline_bad / baseline_total;
    let bound = 1.0 + tolerance;
    let variance = canary_fraction * (1.0 - canary_fraction) / canary_total
        + bound * bound * baseline_fraction * (1.0 - baseline_fraction) / baseline_total;
    if variance <= 0.0 {
        return 0.0;
    }
    (canary_fraction - bound * baseline_fraction) / variance.sqrt()
}

/// First look (seconds) at which the z-test rejects, looking at `looks_secs`.
fn z_test_rollback(
    steps: &[StepCounts],
    tolerance: f64,
    alpha: f64,
    looks_secs: &[u64],
) -> Option<u64> {
    let critical = Normal::standard().inverse_cdf(1.0 - alpha);
    looks_secs.iter().copied().find(|look| {
        let used = (*look / STEP_SECS) as usize;
        pooled_z(&steps[..used.min(steps.len())], tolerance) > critical
    })
}

fn format_secs(secs: f64) -> String {
    if secs.is_finite() {
        format!("{secs:.0} s")
    } else {
        "never".to_string()
    }
}

fn main() {
    let every_look: Vec<u64> = (1..=(simulate::WINDOW_SECS / LOOK_SECS))
        .map(|k| k * LOOK_SECS)
        .collect();
    let final_look = [simulate::WINDOW_SECS];
    // (alpha, tolerance): the shipped two-metric split with and without a 10%
    // tolerance, and a single-metric rule set.
    let settings = [(0.005, 0.1), (0.005, 0.0), (0.01, 0.1), (0.01, 0.0)];
    let ratios = [1.0, 1.5, 2.0, 3.0];
    println!(
        "| alpha | tolerance | true ratio | method | rolled back | within 10 min | median | p90 | mean if caught |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for (alpha, tolerance) in settings {
        let test = RatioTest {
            direction: Direction::Increase,
            tolerance,
            alpha,
        };
        for true_ratio in ratios {
            let scenario = Scenario::even(20.0, 0.01, true_ratio);
            let mut rng = seeded(7 + (true_ratio * 100.0) as u64);
            let windows: Vec<Vec<StepCounts>> = (0..CANARIES)
                .map(|_| simulate_window(&scenario, &mut rng))
                .collect();
            let methods: [(&str, Vec<Option<u64>>); 3] = [
                (
                    "canary-gate sequential",
                    windows
                        .iter()
                        .map(|w| simulate::time_to_rollback_secs(w, &test))
                        .collect(),
                ),
                (
                    "fixed horizon (z-test at 30 min)",
                    windows
                        .iter()
                        .map(|w| z_test_rollback(w, tolerance, alpha, &final_look))
                        .collect(),
                ),
                (
                    "peeking z-test every 30 s",
                    windows
                        .iter()
                        .map(|w| z_test_rollback(w, tolerance, alpha, &every_look))
                        .collect(),
                ),
            ];
            for (name, times) in methods {
                let summary = summarise(&times);
                println!(
                    "| {alpha} | {tolerance} | {true_ratio}x | {name} | {:.2}% | {:.2}% | {} | {} | {} |",
                    100.0 * summary.rolled_back,
                    100.0 * summary.within_10_min,
                    format_secs(summary.median_secs),
                    format_secs(summary.p90_secs),
                    format_secs(summary.mean_caught_secs),
                );
            }
        }
    }

    println!();
    println!("Early promotion of healthy canaries (true ratio 1x) by the sequential test:");
    println!();
    println!(
        "| alpha | tolerance | bad fraction | promoted within 30 min | median time to promote |"
    );
    println!("|---|---|---|---|---|");
    for (alpha, tolerance) in settings {
        let test = RatioTest {
            direction: Direction::Increase,
            tolerance,
            alpha,
        };
        for bad_fraction in [0.01, 0.10] {
            let scenario = Scenario::even(20.0, bad_fraction, 1.0);
            let mut rng = seeded(99);
            let times: Vec<Option<u64>> = (0..CANARIES / 4)
                .map(|_| {
                    let outcome = ratio_test(&simulate_window(&scenario, &mut rng), &test);
                    match (outcome.decision, outcome.decided_at_step) {
                        (Decision::WithinTolerance, Some(step)) => {
                            Some(((step as u64 + 1) * STEP_SECS).div_ceil(LOOK_SECS) * LOOK_SECS)
                        }
                        _ => None,
                    }
                })
                .collect();
            let summary = summarise(&times);
            println!(
                "| {alpha} | {tolerance} | {bad_fraction} | {:.2}% | {} |",
                100.0 * summary.rolled_back,
                format_secs(summary.median_secs),
            );
        }
    }
}
