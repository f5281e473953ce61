//! Seeded simulation of canaries for the Monte Carlo tests and the
//! time-to-rollback benchmark (the benchmark includes this file by path).

use canary_gate::stats::counts::{RatioTest, StepCounts, ratio_decision};
use rand::rngs::StdRng;

/// Seconds between two scrapes: one step of the window.
pub const STEP_SECS: u64 = 15;
/// Seconds between two looks of the judge.
pub const LOOK_SECS: u64 = 30;
/// Length of the canary window.
pub const WINDOW_SECS: u64 = 30 * 60;
/// Steps in the window.
pub const STEPS: usize = (WINDOW_SECS / STEP_SECS) as usize;

/// The per-step Monte Carlo that `canary-gate plan` uses too, from the binary's source.
#[path = "../../../src/bin/canary-gate/monte_carlo.rs"]
mod monte_carlo;

// scrape.rs draws with `binomial` and `poisson`; a bench that includes this file alone does not.
#[allow(unused_imports)]
pub use monte_carlo::{Scenario, binomial, look_after_step, poisson, seeded, summarise};

/// Draws the window of one canary: per step, Poisson traffic on each side and
/// binomial bad events among it.
pub fn simulate_window(scenario: &Scenario, rng: &mut StdRng) -> Vec<StepCounts> {
    monte_carlo::simulate_steps(scenario, STEP_SECS, STEPS, rng)
}

/// Seconds from the start of the window to the first look (every
/// [`LOOK_SECS`]) at which the test had declared harm, or None.
pub fn time_to_rollback_secs(steps: &[StepCounts], test: &RatioTest) -> Option<u64> {
    let (decision, decided_at_step) = ratio_decision(steps, test);
    if decision != canary_gate::stats::counts::Decision::Harm {
        return None;
    }
    Some(look_after_step(decided_at_step?, STEP_SECS, LOOK_SECS))
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
