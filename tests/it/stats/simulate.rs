//! Seeded simulation of canaries for the Monte Carlo tests and the
//! time-to-rollback benchmark (the benchmark includes this file by path).

use canary_gate::stats::counts::{RatioTest, StepCounts, ratio_decision};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand_distr::{Binomial, Distribution, Normal, Poisson};

/// Seconds between two scrapes: one step of the window.
pub const STEP_SECS: u64 = 15;
/// Seconds between two looks of the judge.
pub const LOOK_SECS: u64 = 30;
/// Length of the canary window.
pub const WINDOW_SECS: u64 = 30 * 60;
/// Steps in the window.
pub const STEPS: usize = (WINDOW_SECS / STEP_SECS) as usize;

/// How the simulated traffic and errors behave.
#[derive(Clone, Copy, Debug)]
pub struct Scenario {
    /// Requests per second on the baseline.
    pub baseline_requests_per_sec: f64,
    /// Requests per second on the canary at the start of the window.
    pub canary_requests_per_sec_start: f64,
    /// Requests per second on the canary at the end (linear drift in between).
    pub canary_requests_per_sec_end: f64,
    /// Bad fraction of the baseline's requests.
    pub baseline_bad_fraction: f64,
    /// True ratio of the canary's bad fraction to the baseline's.
    pub true_ratio: f64,
    /// Standard deviation of a log-normal factor, drawn per step, that moves
    /// both sides' bad fractions together (shared noise, e.g. a flaky dependency).
    pub shared_noise_log_sd: f64,
}

impl Scenario {
    /// Equal traffic on both sides, no drift, no shared noise.
    pub fn even(requests_per_sec: f64, baseline_bad_fraction: f64, true_ratio: f64) -> Scenario {
        Scenario {
            baseline_requests_per_sec: requests_per_sec,
            canary_requests_per_sec_start: requests_per_sec,
            canary_requests_per_sec_end: requests_per_sec,
            baseline_bad_fraction,
            true_ratio,
            shared_noise_log_sd: 0.0,
        }
    }
}

/// Draws the window of one canary: per step, Poisson traffic on each side and
/// binomial bad events among it.
pub fn simulate_window(scenario: &Scenario, rng: &mut StdRng) -> Vec<StepCounts> {
    let noise = Normal::new(0.0, scenario.shared_noise_log_sd).expect("finite sd");
    let step_secs = STEP_SECS as f64;
    (0..STEPS)
        .map(|step| {
            let progress = step as f64 / (STEPS - 1) as f64;
            let canary_rps = scenario.canary_requests_per_sec_start
                + progress
                    * (scenario.canary_requests_per_sec_end
                        - scenario.canary_requests_per_sec_start);
            let shared = noise.sample(rng).exp();
            let baseline_fraction = (scenario.baseline_bad_fraction * shared).min(1.0);
            let canary_fraction = (baseline_fraction * scenario.true_ratio).min(1.0);
            let canary_total = poisson(canary_rps * step_secs, rng);
            let baseline_total = poisson(scenario.baseline_requests_per_sec * step_secs, rng);
            StepCounts {
                canary_bad: binomial(canary_total, canary_fraction, rng),
                canary_total,
                baseline_bad: binomial(baseline_total, baseline_fraction, rng),
                baseline_total,
            }
        })
        .collect()
}

/// A Poisson draw; 0 for a mean of 0 or less.
pub fn poisson(mean: f64, rng: &mut StdRng) -> f64 {
    if mean <= 0.0 {
        return 0.0;
    }
    Poisson::new(mean).expect("positive mean").sample(rng)
}

/// A binomial draw of `trials` (truncated to whole) at `probability`, held in [0, 1].
pub fn binomial(trials: f64, probability: f64, rng: &mut StdRng) -> f64 {
    Binomial::new(trials as u64, probability.clamp(0.0, 1.0))
        .expect("probability in [0, 1]")
        .sample(rng) as f64
}

/// Seconds from the start of the window to the first look (every
/// [`LOOK_SECS`]) at which the test had declared harm, or None.
pub fn time_to_rollback_secs(steps: &[StepCounts], test: &RatioTest) -> Option<u64> {
    let (decision, decided_at_step) = ratio_decision(steps, test);
    if decision != canary_gate::stats::counts::Decision::Harm {
        return None;
    }
    let decided_step = decided_at_step?;
    let decided_secs = (decided_step as u64 + 1) * STEP_SECS;
    Some(decided_secs.div_ceil(LOOK_SECS) * LOOK_SECS)
}

/// A reproducible random source for one experiment.
pub fn seeded(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed)
}

/// Summary of times to rollback over many canaries.
#[derive(Clone, Copy, Debug)]
pub struct RollbackSummary {
    /// Canaries simulated.
    pub canaries: usize,
    /// Fraction rolled back within the window.
    pub rolled_back: f64,
    /// Fraction rolled back within 10 minutes.
    pub within_10_min: f64,
    /// Median time to rollback in seconds, counting never as infinite.
    pub median_secs: f64,
    /// 90th percentile, counting never as infinite.
    pub p90_secs: f64,
    /// 95th percentile, counting never as infinite.
    pub p95_secs: f64,
    /// Mean time to rollback of the canaries rolled back (infinite if none was).
    pub mean_caught_secs: f64,
}

/// Summarises times to rollback (None = never rolled back).
pub fn summarise(times: &[Option<u64>]) -> RollbackSummary {
    let mut sorted: Vec<f64> = times
        .iter()
        .map(|t| t.map_or(f64::INFINITY, |s| s as f64))
        .collect();
    sorted.sort_by(f64::total_cmp);
    let quantile = |q: f64| {
        let index = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1;
        sorted[index]
    };
    let count = |limit: f64| sorted.iter().filter(|t| **t <= limit).count() as f64;
    RollbackSummary {
        canaries: times.len(),
        rolled_back: count(f64::MAX) / times.len() as f64,
        within_10_min: count(600.0) / times.len() as f64,
        median_secs: quantile(0.5),
        p90_secs: quantile(0.9),
        p95_secs: quantile(0.95),
        mean_caught_secs: {
            let caught: Vec<f64> = sorted.iter().copied().filter(|t| t.is_finite()).collect();
            if caught.is_empty() {
                f64::INFINITY
            } else {
                caught.iter().sum::<f64>() / caught.len() as f64
            }
        },
    }
}

/// Simulates `canaries` windows of `scenario` and the sequential test's time to rollback.
pub fn run_sequential(
    scenario: &Scenario,
    test: &RatioTest,
    canaries: usize,
    seed: u64,
) -> Vec<Option<u64>> {
    rollback_times(test, canaries, seed, |rng| simulate_window(scenario, rng))
}

/// The sequential test's time to rollback on each of `canaries` windows that
/// `draw` makes from one generator seeded with `seed`.
pub fn rollback_times(
    test: &RatioTest,
    canaries: usize,
    seed: u64,
    mut draw: impl FnMut(&mut StdRng) -> Vec<StepCounts>,
) -> Vec<Option<u64>> {
    let mut rng = seeded(seed);
    (0..canaries)
        .map(|_| time_to_rollback_secs(&draw(&mut rng), test))
        .collect()
}

impl std::fmt::Display for RollbackSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} canaries: {:.2}% rolled back, {:.2}% within 10 min, median {} s, p90 {} s, p95 {} s, mean if caught {:.0} s",
            self.canaries,
            100.0 * self.rolled_back,
            100.0 * self.within_10_min,
            self.median_secs,
            self.p90_secs,
            self.p95_secs,
            self.mean_caught_secs
        )
    }
}
