//! canary-gate's counts test on canaries simulated as Prometheus scrapes them
//! (`tests/it/stats/scrape.rs`): per-target scrape phases, jitter, missed
//! scrapes and shared bursts, read through the product's `measure` path.
//! 30-minute canaries, scrapes and steps every 15 s, looks every 30 s,
//! per-metric alpha 0.005, tolerance 0.
//!
//! Run with `cargo bench --bench scrape_timing`; it prints three Markdown
//! tables: false rollbacks of healthy canaries per timing condition, times to
//! rollback of regressions (from the start and from minute 10), and thin
//! traffic (1 request/s per side).

// Shared with the Monte Carlo tests; the benchmark uses only part of them.
#[allow(dead_code)]
#[path = "../tests/it/stats/scrape.rs"]
mod scrape;
#[allow(dead_code)]
#[path = "../tests/it/stats/simulate.rs"]
mod simulate;

use canary_gate::stats::Direction;
use canary_gate::stats::counts::{Decision, RatioTest, final_look_test, ratio_decision};
use scrape::{Kind, Timing, simulate_scraped_window};
use simulate::{seeded, summarise, time_to_rollback_secs};

/// Healthy canaries per A/A row.
const AA_CANARIES: usize = 4000;
/// Canaries per power row.
const POWER_CANARIES: usize = 1000;
/// Per-metric alpha of the shipped two-metric rule set.
const ALPHA: f64 = 0.005;
/// Share of a rule's alpha that the judge gives the final-look test when the
/// rule sets `final_test_after` (`judge::counts::FINAL_LOOK_ALPHA_SHARE`).
const FINAL_LOOK_ALPHA_SHARE: f64 = 0.9;

fn test() -> RatioTest {
    RatioTest {
        direction: Direction::Increase,
        tolerance: 0.0,
        alpha: ALPHA,
    }
}

/// Times to rollback from the start of the window.
fn times(timing: &Timing, canaries: usize, seed: u64) -> Vec<Option<u64>> {
    let mut rng = seeded(seed);
    (0..canaries)
        .map(|_| time_to_rollback_secs(&simulate_scraped_window(timing, &mut rng), &test()))
        .collect()
}

/// Steps of the final-look window: the whole 30-minute canary.
const FINAL_STEPS: usize = (scrape::WINDOW_SECS / scrape::STEP_SECS) as usize;

/// Share of canaries rolled back within the window by the sequential test at
/// `1 - final_share` of the alpha or the final-look test at `final_share`.
fn rolled_back_with_final_look(
    timing: &Timing,
    canaries: usize,
    seed: u64,
    final_share: f64,
) -> f64 {
    let sequential = RatioTest {
        alpha: ALPHA * (1.0 - final_share),
        ..test()
    };
    let final_look = RatioTest {
        alpha: ALPHA * final_share,
        ..test()
    };
    let mut rng = seeded(seed);
    let rolled_back = (0..canaries)
        .filter(|_| {
            let steps = simulate_scraped_window(timing, &mut rng);
            ratio_decision(&steps, &sequential).0 == Decision::Harm
                || final_look_test(&steps, &final_look, FINAL_STEPS).is_some_and(|f| f.harm)
        })
        .count();
    rolled_back as f64 / canaries as f64
}

fn format_secs(secs: f64) -> String {
    if secs.is_finite() {
        format!("{secs:.0} s")
    } else {
        "never".to_string()
    }
}

/// Half-width of a 95% interval for a proportion near `alpha` over `n` runs.
fn monte_carlo_error(n: usize) -> f64 {
    1.96 * (ALPHA * (1.0 - ALPHA) / n as f64).sqrt()
}

fn main() {
    let bursty = |after| Timing::bursty(20.0, 0.01, 1.0, after);
    let aa: [(&str, Timing); 11] = [
        (
            "aligned scrapes, no bursts",
            Timing::aligned(20.0, 0.01, 1.0),
        ),
        ("aligned scrapes, bursts", bursty(0.0)),
        (
            "baseline scraped 10 s after the canary, bursts",
            bursty(10.0),
        ),
        (
            "canary scraped 10 s after the baseline, bursts",
            bursty(-10.0),
        ),
        ("baseline scraped 3 s after the canary, bursts", bursty(3.0)),
        (
            "independent phases, 0.5 s jitter, bursts",
            Timing {
                missed_scrape_chance: 0.0,
                ..Timing::messy(20.0, 0.01, 1.0)
            },
        ),
        (
            "independent phases, 0.5 s jitter, 2% missed scrapes, bursts",
            Timing::messy(20.0, 0.01, 1.0),
        ),
        (
            "independent phases, 2 s jitter, 2% missed scrapes, bursts",
            Timing {
                jitter_sd_secs: 2.0,
                ..Timing::messy(20.0, 0.01, 1.0)
            },
        ),
        (
            "latency kind (5% slow), baseline 10 s after, bursts",
            Timing {
                kind: Kind::Latency,
                ..Timing::bursty(20.0, 0.05, 1.0, 10.0)
            },
        ),
        (
            "latency kind (5% slow), every nuisance",
            Timing {
                kind: Kind::Latency,
                ..Timing::messy(20.0, 0.05, 1.0)
            },
        ),
        (
            "1 request/s, 0.5% errors, every nuisance",
            Timing::messy(1.0, 0.005, 1.0),
        ),
    ];
    println!(
        "A/A: {AA_CANARIES} healthy canaries per row, 20 requests/s per side and 1% errors unless stated; Monte Carlo error (95%) ±{:.2} points at alpha {ALPHA}.",
        100.0 * monte_carlo_error(AA_CANARIES)
    );
    println!();
    println!("| condition | false rollbacks |");
    println!("|---|---|");
    for (seed, (name, timing)) in aa.iter().enumerate() {
        let summary = summarise(&times(timing, AA_CANARIES, 1000 + seed as u64));
        println!("| {name} | {:.2}% |", 100.0 * summary.rolled_back);
    }

    println!();
    println!(
        "Regressions: {POWER_CANARIES} canaries per row, 20 requests/s per side, 1% base errors; times counted from the regression's start, looks every 30 s."
    );
    println!();
    println!(
        "| true ratio | starts at | timing | rolled back | within 10 min of start | median | p90 |"
    );
    println!("|---|---|---|---|---|---|---|");
    for (seed, (ratio, onset_secs, messy)) in [
        (2.0, 0.0, false),
        (2.0, 600.0, false),
        (3.0, 0.0, false),
        (3.0, 600.0, false),
        (2.0, 0.0, true),
        (2.0, 600.0, true),
        (3.0, 0.0, true),
        (3.0, 600.0, true),
    ]
    .into_iter()
    .enumerate()
    {
        let base = if messy {
            Timing::messy(20.0, 0.01, ratio)
        } else {
            Timing::aligned(20.0, 0.01, ratio)
        };
        let timing = Timing { onset_secs, ..base };
        let from_onset: Vec<Option<u64>> = times(&timing, POWER_CANARIES, 2000 + seed as u64)
            .into_iter()
            .map(|t| t.map(|secs| secs.saturating_sub(onset_secs as u64)))
            .collect();
        let summary = summarise(&from_onset);
        println!(
            "| {ratio}x | minute {} | {} | {:.2}% | {:.2}% | {} | {} |",
            onset_secs / 60.0,
            if messy {
                "every nuisance"
            } else {
                "aligned, no bursts"
            },
            100.0 * summary.rolled_back,
            100.0 * summary.within_10_min,
            format_secs(summary.median_secs),
            format_secs(summary.p90_secs),
        );
    }

    println!();
    println!(
        "Thin traffic: 1 request/s per side, 0.5% base errors, {AA_CANARIES} canaries per row."
    );
    println!();
    println!(
        "| true ratio | timing | rolled back within 30 min, sequential only | median | rolled back with the final look (alpha split 0.1 / 0.9) |"
    );
    println!("|---|---|---|---|---|");
    for (seed, (ratio, messy)) in [
        (1.0, true),
        (2.0, false),
        (3.0, false),
        (3.0, true),
        (5.0, false),
    ]
    .into_iter()
    .enumerate()
    {
        let timing = if messy {
            Timing::messy(1.0, 0.005, ratio)
        } else {
            Timing::aligned(1.0, 0.005, ratio)
        };
        // Thin-traffic canaries are cheap, and these rates sit near the 60%.
        let canaries = AA_CANARIES;
        let summary = summarise(&times(&timing, canaries, 3000 + seed as u64));
        let with_final = rolled_back_with_final_look(
            &timing,
            canaries,
            3000 + seed as u64,
            FINAL_LOOK_ALPHA_SHARE,
        );
        println!(
            "| {ratio}x | {} | {:.2}% | {} | {:.2}% |",
            if messy {
                "every nuisance"
            } else {
                "aligned, no bursts"
            },
            100.0 * summary.rolled_back,
            format_secs(summary.median_secs),
            100.0 * with_final,
        );
    }

    println!();
    println!(
        "What `final_test_after` costs at 20 requests/s (the sequential test keeps 1 - share of the alpha), aligned, no bursts, {POWER_CANARIES} canaries per row:"
    );
    println!();
    println!("| true ratio | sequential alpha | median | p90 |");
    println!("|---|---|---|---|");
    for (seed, ratio) in [2.0, 3.0].into_iter().enumerate() {
        for share in [0.0, FINAL_LOOK_ALPHA_SHARE] {
            let sequential = RatioTest {
                alpha: ALPHA * (1.0 - share),
                ..test()
            };
            let mut rng = seeded(5000 + seed as u64);
            let times: Vec<Option<u64>> = (0..POWER_CANARIES)
                .map(|_| {
                    let steps =
                        simulate_scraped_window(&Timing::aligned(20.0, 0.01, ratio), &mut rng);
                    time_to_rollback_secs(&steps, &sequential)
                })
                .collect();
            let summary = summarise(&times);
            println!(
                "| {ratio}x | {:.4} | {} | {} |",
                sequential.alpha,
                format_secs(summary.median_secs),
                format_secs(summary.p90_secs)
            );
        }
    }

    println!();
    println!(
        "Share of the metric's alpha given to the final look, 3x at 1 request/s, aligned, no bursts, {AA_CANARIES} canaries per row:"
    );
    println!();
    println!("| final-look share | rolled back within 30 min |");
    println!("|---|---|");
    for share in [0.5, 0.75, 0.8, 0.9, 1.0] {
        let rate = rolled_back_with_final_look(
            &Timing::aligned(1.0, 0.005, 3.0),
            AA_CANARIES,
            4000,
            share,
        );
        println!("| {share} | {:.2}% |", 100.0 * rate);
    }
}
