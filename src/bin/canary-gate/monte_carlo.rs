//! Seeded Monte Carlo of canaries as per-step counts: Poisson traffic on each
//! side and binomial bad events among it. `canary-gate plan` simulates a rule
//! with it; the Monte Carlo tests and the benchmarks include this file by path
//! (through `tests/it/stats/simulate.rs`), so it depends only on the library,
//! rand and rand_distr.

use canary_gate::stats::counts::StepCounts;
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand_distr::{Binomial, Distribution, Normal, Poisson};

/// How the simulated traffic and errors behave.
#[derive(Clone, Copy, Debug, PartialEq)]
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

/// Draws `steps` steps of `step_secs` of one canary: per step, Poisson traffic
/// on each side and binomial bad events among it.
pub fn simulate_steps(
    scenario: &Scenario,
    step_secs: u64,
    steps: usize,
    rng: &mut StdRng,
) -> Vec<StepCounts> {
    let noise = Normal::new(0.0, scenario.shared_noise_log_sd).expect("finite sd");
    let step_secs = step_secs as f64;
    (0..steps)
        .map(|step| {
            let progress = step as f64 / steps.saturating_sub(1).max(1) as f64;
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

/// A reproducible random source for one experiment.
pub fn seeded(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed)
}

/// The first look (every `look_secs` from the start) that sees a decision
/// reached at the end of step `step` (0-based) of `step_secs`.
pub fn look_after_step(step: usize, step_secs: u64, look_secs: u64) -> u64 {
    let decided_secs = (step as u64 + 1) * step_secs;
    decided_secs.div_ceil(look_secs.max(1)) * look_secs.max(1)
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
        if sorted.is_empty() {
            return f64::INFINITY;
        }
        let index = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1;
        sorted[index]
    };
    let canaries = times.len().max(1) as f64;
    let count = |limit: f64| sorted.iter().filter(|t| **t <= limit).count() as f64;
    RollbackSummary {
        canaries: times.len(),
        rolled_back: count(f64::MAX) / canaries,
        within_10_min: count(600.0) / canaries,
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
