//! The statistics core against independent implementations (R, scipy, a numpy
//! re-implementation; see scripts/fixtures/) and against seeded Monte Carlo
//! simulations of canaries.

pub mod histogram;
mod quantiles;
pub mod scrape;
pub mod simulate;

use canary_gate::stats::Direction;
use canary_gate::stats::StatsError;
use canary_gate::stats::counts::{
    Decision, RatioTest, StepCounts, final_look_test, ratio_decision, ratio_test,
};
use canary_gate::stats::family::{per_look_confidence, per_metric_alpha};
use canary_gate::stats::kayenta::{Classification, KayentaThresholds, classify};
use canary_gate::stats::mann_whitney::mann_whitney;
use rand::RngExt;
use scrape::{Kind, Timing, simulate_scraped_window};
use serde_json::Value;
use simulate::{Scenario, run_sequential, seeded, simulate_window, summarise};
use statrs::distribution::{ContinuousCDF, Normal};

fn fixture(name: &str) -> Value {
    let path = format!("{}/tests/fixtures/stats/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).expect("fixture file is committed");
    serde_json::from_str(&text).expect("fixture is valid JSON")
}

fn numbers(value: &Value) -> Vec<f64> {
    value
        .as_array()
        .expect("an array")
        .iter()
        .map(|v| v.as_f64().expect("a number"))
        .collect()
}

fn number(value: &Value) -> f64 {
    value.as_f64().expect("a number")
}

fn assert_close(actual: f64, expected: f64, relative: f64, what: &str) {
    let scale = expected.abs().max(1.0);
    assert!(
        (actual - expected).abs() <= relative * scale,
        "{what}: got {actual}, expected {expected}"
    );
}

// ---------------------------------------------------------------------------
// Mann-Whitney and Hodges-Lehmann against R and scipy
// ---------------------------------------------------------------------------

// Pins the published Kayenta case: [10,20,30,40] vs [1,2,3,4] at 95% gives [6, 39] and 22.5.
#[test]
fn mann_whitney_reproduces_published_kayenta_case() {
    let result = mann_whitney(&[10.0, 20.0, 30.0, 40.0], &[1.0, 2.0, 3.0, 4.0], 0.95)
        .expect("valid samples");
    assert_eq!(result.lower, 6.0);
    assert_eq!(result.upper, 39.0);
    assert_eq!(result.estimate, 22.5);
    assert_eq!(result.u, 16.0);
}

// Pins the normal quantile for a 98% interval: qnorm(0.01) = -2.326348.
#[test]
fn normal_quantile_for_98_percent_interval() {
    let quantile = Normal::standard().inverse_cdf(0.01);
    assert!((quantile - -2.326348).abs() < 5e-7, "{quantile}");
}

// Pins W, p-value, Hodges-Lehmann estimate and interval to R's wilcox.test on every fixture case.
#[test]
fn mann_whitney_matches_r_wilcox_test() {
    let fixtures = fixture("mann_whitney_r.json");
    let cases = fixtures["cases"].as_array().expect("cases");
    assert!(cases.len() >= 30);
    for case in cases {
        let name = format!(
            "{} at {}",
            case["name"].as_str().expect("name"),
            case["confidence"]
        );
        let result = mann_whitney(
            &numbers(&case["experiment"]),
            &numbers(&case["control"]),
            number(&case["confidence"]),
        )
        .expect("fixture samples are valid");
        assert_close(result.u, number(&case["w"]), 1e-12, &format!("{name} W"));
        assert_close(
            result.p_value,
            number(&case["p_value"]),
            1e-11,
            &format!("{name} p"),
        );
        assert_close(
            result.estimate,
            number(&case["estimate"]),
            1e-12,
            &format!("{name} estimate"),
        );
        assert_close(
            result.lower,
            number(&case["lower"]),
            1e-12,
            &format!("{name} lower"),
        );
        assert_close(
            result.upper,
            number(&case["upper"]),
            1e-12,
            &format!("{name} upper"),
        );
    }
}

// Pins the p-values to scipy's asymptotic Mann-Whitney test, a second independent oracle.
#[test]
fn mann_whitney_p_values_match_scipy() {
    let fixtures = fixture("normal_scipy.json");
    for case in fixtures["mann_whitney"].as_array().expect("cases") {
        let result = mann_whitney(
            &numbers(&case["experiment"]),
            &numbers(&case["control"]),
            0.95,
        )
        .expect("fixture samples are valid");
        let name = case["name"].as_str().expect("name");
        assert_close(result.u, number(&case["u"]), 1e-12, name);
        assert_close(result.p_value, number(&case["p_value"]), 1e-11, name);
    }
}

// Pins statrs' normal quantiles (used for interval levels) to scipy's and R's.
#[test]
fn normal_quantiles_match_scipy_and_r() {
    let normal = Normal::standard();
    for case in fixture("normal_scipy.json")["normal_quantiles"]
        .as_array()
        .expect("quantiles")
    {
        let p = number(&case["p"]);
        assert_close(
            normal.inverse_cdf(p),
            number(&case["quantile"]),
            1e-12,
            "scipy",
        );
    }
    for case in fixture("mann_whitney_r.json")["normal_quantiles"]
        .as_array()
        .expect("quantiles")
    {
        let p = number(&case["p"]);
        assert_close(normal.inverse_cdf(p), number(&case["qnorm"]), 1e-12, "R");
    }
}

// Pins the refusal of input the test cannot use: empty, non-finite, bad level, all tied.
#[test]
fn mann_whitney_rejects_unusable_input() {
    assert_eq!(
        mann_whitney(&[], &[1.0], 0.95),
        Err(StatsError::TooFewValues { needed: 1, got: 0 })
    );
    assert_eq!(
        mann_whitney(&[f64::NAN], &[1.0], 0.95),
        Err(StatsError::NotFinite)
    );
    assert!(matches!(
        mann_whitney(&[1.0], &[2.0], 1.0),
        Err(StatsError::BadLevel { .. })
    ));
    assert_eq!(
        mann_whitney(&[3.0, 3.0], &[3.0], 0.95),
        Err(StatsError::AllTied)
    );
}

// ---------------------------------------------------------------------------
// Kayenta's classifier rules
// ---------------------------------------------------------------------------

fn kayenta_suite_thresholds() -> KayentaThresholds {
    KayentaThresholds {
        tolerance: 0.10,
        confidence: 0.95,
        allowed_increase: 1.2,
        allowed_decrease: 0.8,
        ..KayentaThresholds::default()
    }
}

// Pins High for a clearly higher experiment whose mean ratio passes the effect-size gate.
#[test]
fn kayenta_classifies_clear_increase_as_high() {
    let experiment = [20.0, 22.0, 21.0, 25.0, 30.0];
    let control = [1.0, 2.2, 1.1, 2.5, 3.0];
    let outcome = classify(
        &experiment,
        &control,
        Direction::Either,
        &kayenta_suite_thresholds(),
    )
    .expect("valid samples");
    assert_eq!(outcome.classification, Classification::High);
    assert!(!outcome.critical_failure);
}

// Pins that the direction gates the classification: an increase on a decrease-only metric passes.
#[test]
fn kayenta_direction_gates_classification() {
    let experiment = [20.0, 22.0, 21.0, 25.0, 30.0];
    let control = [1.0, 2.2, 1.1, 2.5, 3.0];
    let thresholds = kayenta_suite_thresholds();
    let outcome = classify(&experiment, &control, Direction::Decrease, &thresholds).expect("valid");
    assert_eq!(outcome.classification, Classification::Pass);
    let outcome = classify(&control, &experiment, Direction::Decrease, &thresholds).expect("valid");
    assert_eq!(outcome.classification, Classification::Low);
}

// Pins the effect-size gate: a significant increase below allowed_increase still passes.
#[test]
fn kayenta_effect_size_gate_lets_small_increases_pass() {
    let control: Vec<f64> = (0..40).map(|i| 100.0 + (i % 10) as f64).collect();
    let experiment: Vec<f64> = control.iter().map(|v| v + 9.0).collect();
    let thresholds = KayentaThresholds {
        allowed_increase: 1.2,
        ..KayentaThresholds::default()
    };
    let outcome = classify(&experiment, &control, Direction::Increase, &thresholds).expect("valid");
    assert!(outcome.effect_size < 1.2);
    assert_eq!(outcome.classification, Classification::Pass);
    let default_outcome = classify(
        &experiment,
        &control,
        Direction::Increase,
        &KayentaThresholds::default(),
    )
    .expect("valid");
    assert_eq!(default_outcome.classification, Classification::High);
}

// Pins critical failures: High on a critical metric beyond critical_increase fails the canary.
#[test]
fn kayenta_critical_thresholds_mark_critical_failures() {
    let experiment = [20.0, 22.0, 21.0, 25.0, 30.0];
    let control = [1.0, 2.2, 1.1, 2.5, 3.0];
    let critical = KayentaThresholds {
        critical: true,
        critical_increase: 5.0,
        ..kayenta_suite_thresholds()
    };
    let outcome = classify(&experiment, &control, Direction::Increase, &critical).expect("valid");
    assert!(outcome.critical_failure, "ratio {}", outcome.effect_size);
    let lenient = KayentaThresholds {
        critical_increase: 100.0,
        ..critical
    };
    let outcome = classify(&experiment, &control, Direction::Increase, &lenient).expect("valid");
    assert_eq!(outcome.classification, Classification::High);
    assert!(!outcome.critical_failure);
}

// Pins NoData for an empty side (after removing NaN) and Pass for identical or all-equal data.
#[test]
fn kayenta_no_data_and_identical_samples() {
    let thresholds = KayentaThresholds::default();
    let outcome = classify(&[f64::NAN], &[1.0], Direction::Increase, &thresholds).expect("ok");
    assert_eq!(outcome.classification, Classification::NoData);
    let outcome = classify(&[2.0, 1.0], &[1.0, 2.0], Direction::Increase, &thresholds).expect("ok");
    assert_eq!(outcome.classification, Classification::Pass);
    assert_eq!(outcome.effect_size, 1.0);
    let outcome = classify(&[4.0, 4.0], &[4.0], Direction::Increase, &thresholds).expect("ok");
    assert_eq!(outcome.classification, Classification::Pass);
}

// Pins the deterministic handling of two constant but different samples (Kayenta adds noise).
#[test]
fn kayenta_constant_samples_are_classified_without_noise() {
    let outcome = classify(
        &[5.0, 5.0, 5.0],
        &[2.0, 2.0],
        Direction::Increase,
        &KayentaThresholds::default(),
    )
    .expect("ok");
    assert_eq!(outcome.classification, Classification::High);
    assert_eq!(outcome.effect_size, 2.5);
}

// Pins Bonferroni over metrics and over looks.
#[test]
fn family_splits_alpha_by_bonferroni() {
    assert_eq!(per_metric_alpha(0.01, 2), 0.005);
    assert!((per_look_confidence(0.02, 4) - 0.995).abs() < 1e-15);
}

// ---------------------------------------------------------------------------
// The counts test against the numpy re-implementation
// ---------------------------------------------------------------------------

fn direction(name: &str) -> Direction {
    match name {
        "increase" => Direction::Increase,
        "decrease" => Direction::Decrease,
        "either" => Direction::Either,
        other => panic!("unknown direction {other}"),
    }
}

fn fixture_steps(value: &Value) -> Vec<StepCounts> {
    value
        .as_array()
        .expect("steps")
        .iter()
        .map(|step| {
            let v: Vec<f64> = step
                .as_array()
                .expect("a step")
                .iter()
                .map(fixture_number)
                .collect();
            StepCounts {
                canary_bad: v[0],
                canary_total: v[1],
                baseline_bad: v[2],
                baseline_total: v[3],
            }
        })
        .collect()
}

/// A number of the fixture, where JSON's missing infinities and NaN are written as text.
fn fixture_number(value: &Value) -> f64 {
    match value.as_str() {
        Some("inf") => f64::INFINITY,
        Some("-inf") => f64::NEG_INFINITY,
        Some("nan") => f64::NAN,
        _ => number(value),
    }
}

/// Whether `actual` is within `relative` of `expected` (on the scale of `expected`, at least
/// `floor`); infinities and NaN must match exactly.
fn within(actual: f64, expected: f64, relative: f64, floor: f64) -> bool {
    if !expected.is_finite() {
        return actual == expected || (actual.is_nan() && expected.is_nan());
    }
    (actual - expected).abs() <= relative * expected.abs().max(floor)
}

/// Records a mismatch of `what` in case `name` unless [`within`] holds.
fn check(
    failures: &mut Vec<String>,
    name: &str,
    what: &str,
    actual: f64,
    expected: f64,
    relative: f64,
    floor: f64,
) {
    if !within(actual, expected, relative, floor) {
        failures.push(format!("{name} {what}: got {actual}, expected {expected}"));
    }
}

// Pins the counts test to the independent numpy/scipy implementation of docs/statistics.md
// (scripts/fixtures/counts_test.py): decision and its step, the log of every persisted e-value
// on the path and of the largest ones, the estimate, the bounds and the final-look p-value,
// on windows with missed scrapes, share jumps, split bursts, late onset and thin traffic.
// Bounds are found by bisection to 1e-6 on the log scale, hence their relative 1e-6.
#[test]
fn counts_test_matches_numpy_reimplementation() {
    let fixtures = fixture("counts_numpy.json");
    let mut failures = Vec::new();
    for case in fixtures["cases"].as_array().expect("cases") {
        let name = case["name"].as_str().expect("name");
        let test = RatioTest {
            direction: direction(case["direction"].as_str().expect("direction")),
            tolerance: number(&case["tolerance"]),
            alpha: number(&case["alpha"]),
        };
        let steps = fixture_steps(&case["steps"]);
        let outcome = ratio_test(&steps, &test);
        let expected = &case["expected"];
        let decision = serde_json::to_value(outcome.decision).expect("serializable");
        if decision != expected["decision"] {
            failures.push(format!(
                "{name} decision: got {decision}, expected {}",
                expected["decision"]
            ));
        }
        let decided_at = expected["decided_at_step"].as_u64().map(|s| s as usize);
        if outcome.decided_at_step != decided_at {
            failures.push(format!(
                "{name} decided at: got {:?}, expected {decided_at:?}",
                outcome.decided_at_step
            ));
        }
        // Log e-values near 0 are compared absolutely (to 1e-6), larger ones relatively.
        let harm_path = numbers(&expected["harm_path_log"]);
        let safety_path = numbers(&expected["safety_path_log"]);
        assert_eq!(outcome.path.len(), steps.len(), "{name}");
        let mut compared = vec![
            (
                "harm evidence".to_string(),
                outcome.harm_evidence.ln(),
                number(&expected["harm_evidence_log"]),
                1e-6,
                1.0,
            ),
            (
                "safety evidence".to_string(),
                outcome.safety_evidence.ln(),
                number(&expected["safety_evidence_log"]),
                1e-6,
                1.0,
            ),
        ];
        for (k, point) in outcome.path.iter().enumerate() {
            compared.push((
                format!("harm at step {k}"),
                point.harm.ln(),
                harm_path[k],
                1e-6,
                1.0,
            ));
            compared.push((
                format!("safety at step {k}"),
                point.safety.ln(),
                safety_path[k],
                1e-6,
                1.0,
            ));
        }
        for (what, actual, relative) in [
            ("ratio_estimate", outcome.ratio_estimate, 1e-8),
            ("ratio_lower", outcome.ratio_lower, 1e-6),
            ("ratio_upper", outcome.ratio_upper, 1e-6),
            ("canary_rate", outcome.canary_rate, 1e-12),
            ("baseline_rate", outcome.baseline_rate, 1e-12),
        ] {
            compared.push((
                what.to_string(),
                actual,
                fixture_number(&expected[what]),
                relative,
                0.0,
            ));
        }
        for (what, actual, wanted, relative, floor) in compared {
            check(&mut failures, name, &what, actual, wanted, relative, floor);
        }
        if let Some(final_steps) = case["final_steps"].as_u64() {
            let final_test = RatioTest {
                alpha: number(&case["final_alpha"]),
                ..test
            };
            let actual = final_look_test(&steps, &final_test, final_steps as usize);
            match (actual, expected.get("final_look").filter(|v| !v.is_null())) {
                (Some(actual), Some(wanted)) => {
                    // Exact tails are sums of binomial terms (1e-9); Chernoff's bound is a
                    // minimum found numerically (1e-6).
                    check(
                        &mut failures,
                        name,
                        "final-look p-value",
                        actual.p_value,
                        number(&wanted["p_value"]),
                        1e-6,
                        0.0,
                    );
                    if Some(actual.harm) != wanted["harm"].as_bool() {
                        failures.push(format!("{name} final-look harm: got {}", actual.harm));
                    }
                }
                (None, None) => {}
                (actual, wanted) => failures.push(format!(
                    "{name} final look: got {actual:?}, expected {wanted:?}"
                )),
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Log-likelihood ratio of one step for alternative `rho1` against `rho0`,
/// written out from the conditional binomial (an independent re-derivation).
fn step_llr(step: &StepCounts, rho1: f64, rho0: f64) -> f64 {
    let p = |rho: f64| rho * step.canary_total / (rho * step.canary_total + step.baseline_total);
    step.canary_bad * (p(rho1) / p(rho0)).ln()
        + step.baseline_bad * ((1.0 - p(rho1)) / (1.0 - p(rho0))).ln()
}

/// Whether step `i` of a window without carried blocks holds more bad events than the
/// steps before it make plausible (docs/statistics.md, "spikes"): more than
/// `lambda + 3 sqrt(lambda (1 + n / n_ref)) + 0.5`, with `lambda` what the pooled bad fraction
/// of up to 8 steps before it predicts; the first step is judged against the second.
fn spike_at(steps: &[StepCounts], i: usize) -> bool {
    let bad = |s: &StepCounts| s.canary_bad + s.baseline_bad;
    let total = |s: &StepCounts| s.canary_total + s.baseline_total;
    let reference: Vec<&StepCounts> = if i == 0 {
        steps.get(1).into_iter().collect()
    } else {
        steps[i.saturating_sub(8)..i].iter().collect()
    };
    let reference_bad: f64 = reference.iter().map(|s| bad(s)).sum();
    let reference_total: f64 = reference.iter().map(|s| total(s)).sum();
    if reference_total <= 0.0 {
        return true;
    }
    let lambda = total(&steps[i]) * reference_bad / reference_total;
    let variance = lambda * (1.0 + total(&steps[i]) / reference_total);
    bad(&steps[i]) > lambda + 3.0 * variance.sqrt() + 0.5
}

// Pins the harm path to the e-detector of docs/statistics.md computed term by term
// (O(n^2), no shared code): D_k = sum_j pi_j sum_a w_a T_{a,j,k} + sum_{j > k} pi_j, with
// pi_0 = 0.7 and 1/60 at every fourth step up to 72; T = min_{s in {j, j+1}} prod_{i=s..k} LR_a,i
// when step j or j - 1 is a spike (at k = 0 the first step's is not yet known), else the
// product from j; the reported harm e-value is min(D_{k-1}, D_k) at a spike, else D_k.
// Windows with a burst added on one side check the spikes' branch too.
#[test]
fn harm_path_matches_the_e_detector_formula() {
    let alternatives = [
        (1.25, 0.02),
        (1.5, 0.08),
        (2.0, 0.45),
        (3.0, 0.35),
        (5.0, 0.07),
        (10.0, 0.03),
    ];
    let restart_weight = |j: usize| match j {
        0 => 0.7,
        j if j % 4 == 0 && j <= 72 => 0.3 / 18.0,
        _ => 0.0,
    };
    let mut rng = seeded(12);
    let mut spikes_seen = 0;
    for (ratio, tolerance, burst_at) in [
        (1.0, 0.0, None),
        (2.0, 0.1, None),
        (1.0, 0.2, None),
        (1.0, 0.0, Some(20)),
        (2.0, 0.0, Some(0)),
        (1.5, 0.0, Some(41)),
    ] {
        let mut steps = simulate_window(&Scenario::even(20.0, 0.02, ratio), &mut rng);
        if let Some(at) = burst_at {
            steps[at].canary_bad += 40.0;
            steps[at + 1].baseline_bad += 40.0;
        }
        assert!(
            steps
                .iter()
                .all(|s| s.canary_total > 0.0 && s.baseline_total > 0.0)
        );
        let spike: Vec<bool> = (0..steps.len()).map(|i| spike_at(&steps, i)).collect();
        spikes_seen += spike.iter().filter(|s| **s).count();
        let outcome = ratio_test(&steps, &increase(tolerance, 0.01));
        let rho0 = 1.0 + tolerance;
        let d = |k: usize| -> f64 {
            let mut value: f64 = (k + 1..=steps.len() + 200).map(restart_weight).sum();
            for j in (0..=k).filter(|j| restart_weight(*j) > 0.0) {
                let protected = match j {
                    0 => k == 0 || spike[0],
                    j => spike[j] || spike[j - 1],
                };
                for (factor, weight) in alternatives {
                    let product_from = |s: usize| -> f64 {
                        (s..=k)
                            .map(|i| step_llr(&steps[i], rho0 * factor, rho0))
                            .sum::<f64>()
                            .exp()
                    };
                    let term = if protected {
                        product_from(j).min(product_from(j + 1))
                    } else {
                        product_from(j)
                    };
                    value += restart_weight(j) * weight * term;
                }
            }
            value
        };
        let first_spike = burst_at.unwrap_or(0);
        let checked =
            (0..steps.len())
                .step_by(9)
                .chain([first_spike, first_spike + 1, first_spike + 2]);
        for k in checked {
            let before = if k == 0 { 1.0 } else { d(k - 1) };
            // The first step has no steps before it: it counts as a spike at its own point.
            let expected = if spike[k] || k == 0 {
                before.min(d(k))
            } else {
                d(k)
            };
            assert_close(
                outcome.path[k].harm.ln(),
                expected.ln(),
                1e-9,
                &format!("ratio {ratio} burst {burst_at:?} step {k}"),
            );
        }
    }
    assert!(spikes_seen >= 6, "{spikes_seen}");
}

// ---------------------------------------------------------------------------
// Properties of the counts test
// ---------------------------------------------------------------------------

fn increase(tolerance: f64, alpha: f64) -> RatioTest {
    RatioTest {
        direction: Direction::Increase,
        tolerance,
        alpha,
    }
}

// Pins statelessness: the decision as of step k depends only on steps[..=k], whatever follows.
#[test]
fn decision_as_of_a_step_depends_only_on_earlier_steps() {
    let mut rng = seeded(11);
    for (index, ratio) in [1.0, 1.6, 2.5, 0.5].into_iter().enumerate() {
        let scenario = Scenario::even(20.0, 0.01, ratio);
        let window = simulate_window(&scenario, &mut rng);
        for direction in [Direction::Increase, Direction::Decrease, Direction::Either] {
            let test = RatioTest {
                direction,
                tolerance: 0.1,
                alpha: 0.01,
            };
            let full = ratio_test(&window, &test);
            for k in (0..window.len()).step_by(7 + index) {
                let prefix = ratio_test(&window[..=k], &test);
                assert_eq!(prefix.path[..], full.path[..=k]);
                let decided_by_k = full.decided_at_step.filter(|s| *s <= k);
                let harm_by_k = full.decision == Decision::Harm && decided_by_k.is_some();
                if harm_by_k {
                    assert_eq!(prefix.decision, Decision::Harm);
                    assert_eq!(prefix.decided_at_step, decided_by_k);
                }
                if prefix.decision == Decision::Harm {
                    assert_eq!(full.decision, Decision::Harm);
                }
                // The same prefix followed by different data decides the same as of k.
                let mut altered = window[..=k].to_vec();
                altered.extend(std::iter::repeat_n(
                    StepCounts {
                        canary_bad: 50.0,
                        canary_total: 300.0,
                        baseline_bad: 0.0,
                        baseline_total: 300.0,
                    },
                    5,
                ));
                let altered_outcome = ratio_test(&altered, &test);
                assert_eq!(altered_outcome.path[..=k], prefix.path[..]);
            }
        }
    }
}

// Pins that NaN, infinite or negative counts carry no evidence instead of faking safety or harm.
#[test]
fn non_finite_steps_carry_no_evidence() {
    let good = StepCounts {
        canary_bad: 6.0,
        canary_total: 300.0,
        baseline_bad: 3.0,
        baseline_total: 300.0,
    };
    let bad_values = [f64::NAN, f64::INFINITY, -1.0];
    let test = increase(0.0, 0.01);
    let clean = ratio_test(&[good, good], &test);
    for value in bad_values {
        for field in 0..4 {
            let mut broken = good;
            match field {
                0 => broken.canary_bad = value,
                1 => broken.canary_total = value,
                2 => broken.baseline_bad = value,
                _ => broken.baseline_total = value,
            }
            let outcome = ratio_test(&[good, broken, good], &test);
            assert_eq!(outcome.path[1].harm, outcome.path[0].harm);
            assert_eq!(outcome.path[2].harm, clean.path[1].harm);
            assert!(outcome.harm_evidence.is_finite());
            assert!(outcome.ratio_estimate.is_finite());
        }
    }
}

// Pins that steps without bad events, or with a side that served nothing, leave the e-values at 1.
#[test]
fn empty_steps_leave_evalues_unchanged() {
    let steps = [
        StepCounts {
            canary_bad: 0.0,
            canary_total: 300.0,
            baseline_bad: 0.0,
            baseline_total: 300.0,
        },
        StepCounts {
            canary_bad: 4.0,
            canary_total: 0.0,
            baseline_bad: 3.0,
            baseline_total: 300.0,
        },
        StepCounts::default(),
    ];
    let outcome = ratio_test(&steps, &increase(0.1, 0.01));
    for point in &outcome.path {
        assert_eq!((point.harm, point.safety), (1.0, 1.0));
    }
    assert_eq!(outcome.decision, Decision::Undecided);
    assert!(outcome.ratio_estimate.is_nan());
    assert_eq!(
        (outcome.ratio_lower, outcome.ratio_upper),
        (0.0, f64::INFINITY)
    );
}

// Pins graceful handling of fractional counts: close to the rounded integers' result.
#[test]
fn fractional_counts_are_handled_smoothly() {
    let mut rng = seeded(5);
    let window = simulate_window(&Scenario::even(20.0, 0.01, 2.0), &mut rng);
    let fractional: Vec<StepCounts> = window
        .iter()
        .map(|s| StepCounts {
            canary_bad: s.canary_bad + 0.01,
            canary_total: s.canary_total + 0.37,
            baseline_bad: s.baseline_bad + 0.01,
            baseline_total: s.baseline_total - 0.21,
        })
        .collect();
    let test = increase(0.1, 0.01);
    let (whole, part) = (ratio_test(&window, &test), ratio_test(&fractional, &test));
    assert_eq!(whole.decision, part.decision);
    assert!((whole.ratio_estimate / part.ratio_estimate - 1.0).abs() < 0.02);
}

// Pins the mirror symmetry: a decrease seen from the canary is an increase seen from the baseline.
#[test]
fn decrease_is_increase_with_sides_swapped() {
    let mut rng = seeded(3);
    let window = simulate_window(&Scenario::even(20.0, 0.02, 0.4), &mut rng);
    let swapped: Vec<StepCounts> = window
        .iter()
        .map(|s| StepCounts {
            canary_bad: s.baseline_bad,
            canary_total: s.baseline_total,
            baseline_bad: s.canary_bad,
            baseline_total: s.canary_total,
        })
        .collect();
    let tolerance = 0.2;
    let decrease = ratio_test(
        &window,
        &RatioTest {
            direction: Direction::Decrease,
            tolerance,
            alpha: 0.01,
        },
    );
    // rho < 1 - t on the canary is 1/rho > 1/(1 - t) on the baseline.
    let mirrored = ratio_test(&swapped, &increase(1.0 / (1.0 - tolerance) - 1.0, 0.01));
    for (a, b) in decrease.path.iter().zip(&mirrored.path) {
        assert_close(a.harm.ln(), b.harm.ln(), 1e-9, "harm");
    }
    assert_eq!(decrease.decision, Decision::Harm);
    assert_close(
        decrease.ratio_estimate,
        1.0 / mirrored.ratio_estimate,
        1e-6,
        "estimate",
    );
}

// Pins that Either catches a change in each direction and that its interval covers the truth.
#[test]
fn either_direction_catches_both_ways() {
    let mut rng = seeded(9);
    let either = RatioTest {
        direction: Direction::Either,
        tolerance: 0.1,
        alpha: 0.01,
    };
    for ratio in [3.0, 0.3] {
        let window = simulate_window(&Scenario::even(20.0, 0.02, ratio), &mut rng);
        let outcome = ratio_test(&window, &either);
        assert_eq!(outcome.decision, Decision::Harm, "ratio {ratio}");
        assert!(outcome.ratio_lower < ratio && ratio < outcome.ratio_upper);
    }
}

// Pins that a clearly healthy canary with a wide tolerance is promoted early (safety side).
#[test]
fn healthy_canary_reaches_within_tolerance() {
    let mut rng = seeded(21);
    let window = simulate_window(&Scenario::even(20.0, 0.05, 1.0), &mut rng);
    let outcome = ratio_test(&window, &increase(0.5, 0.01));
    assert_eq!(outcome.decision, Decision::WithinTolerance);
    assert!(outcome.decided_at_step.is_some());
    assert!(outcome.safety_evidence >= outcome.threshold);
}

// Pins the intersection-union safety of Either: a healthy canary is within a wide band both ways.
#[test]
fn either_direction_reaches_within_tolerance_for_healthy_canary() {
    let mut rng = seeded(22);
    let window = simulate_window(&Scenario::even(20.0, 0.05, 1.0), &mut rng);
    let either = RatioTest {
        direction: Direction::Either,
        tolerance: 0.5,
        alpha: 0.01,
    };
    let outcome = ratio_test(&window, &either);
    assert_eq!(outcome.decision, Decision::WithinTolerance);
    assert!(outcome.ratio_lower > 0.5 && outcome.ratio_upper < 1.5);
}

// Pins the validation of test parameters and that invalid ones never decide.
#[test]
fn invalid_parameters_are_rejected_or_never_decide() {
    assert!(RatioTest::new(Direction::Increase, 0.1, 0.01).is_ok());
    assert!(RatioTest::new(Direction::Increase, 0.1, 0.0).is_err());
    assert!(RatioTest::new(Direction::Decrease, 1.0, 0.01).is_err());
    assert!(RatioTest::new(Direction::Increase, f64::NAN, 0.01).is_err());
    let mut rng = seeded(1);
    let window = simulate_window(&Scenario::even(20.0, 0.01, 5.0), &mut rng);
    let outcome = ratio_test(&window, &increase(0.1, 1.5));
    assert_eq!(outcome.decision, Decision::Undecided);
}

// ---------------------------------------------------------------------------
// Monte Carlo: false rollbacks and power
// ---------------------------------------------------------------------------

/// The family alpha of the shipped http rule set (0.01) split over its two metrics.
const PER_METRIC_ALPHA: f64 = 0.005;
/// A/A runs use the larger single-metric alpha so that the count of false
/// rollbacks is large enough to compare with alpha.
const AA_ALPHA: f64 = 0.01;
/// Simulated canaries per A/A condition.
const AA_CANARIES: usize = 2000;

fn false_rollback_rate(scenario: &Scenario, test: &RatioTest, seed: u64) -> f64 {
    let times = run_sequential(scenario, test, AA_CANARIES, seed);
    let rate = summarise(&times).rolled_back;
    eprintln!(
        "A/A {scenario:?} alpha {} tolerance {}: false rollback rate {rate}",
        test.alpha, test.tolerance
    );
    rate
}

// Pins the promise: at most alpha false rollbacks over 60 looks, even with tolerance 0 (the hardest case).
#[test]
fn aa_even_split_false_rollbacks_stay_below_alpha() {
    let test = increase(0.0, AA_ALPHA);
    let rate = false_rollback_rate(&Scenario::even(20.0, 0.01, 1.0), &test, 101);
    assert!(rate <= AA_ALPHA, "{rate}");
}

// Pins validity when the canary gets a quarter of the traffic (1:3 split).
#[test]
fn aa_one_to_three_split_false_rollbacks_stay_below_alpha() {
    let scenario = Scenario {
        canary_requests_per_sec_start: 10.0,
        canary_requests_per_sec_end: 10.0,
        baseline_requests_per_sec: 30.0,
        ..Scenario::even(20.0, 0.01, 1.0)
    };
    let rate = false_rollback_rate(&scenario, &increase(0.0, AA_ALPHA), 102);
    assert!(rate <= AA_ALPHA, "{rate}");
}

// Pins validity when the traffic share drifts and shared noise moves both sides' error rates together.
#[test]
fn aa_drifting_share_and_shared_noise_false_rollbacks_stay_below_alpha() {
    let scenario = Scenario {
        canary_requests_per_sec_start: 4.0,
        canary_requests_per_sec_end: 36.0,
        baseline_requests_per_sec: 20.0,
        shared_noise_log_sd: 0.7,
        ..Scenario::even(20.0, 0.01, 1.0)
    };
    let rate = false_rollback_rate(&scenario, &increase(0.0, AA_ALPHA), 103);
    assert!(rate <= AA_ALPHA, "{rate}");
}

// Pins validity for a latency fraction: binomial draws at a 10% bad fraction, where the
// binomial model is only an approximation (Hoeffding's convex-order argument makes it conservative).
#[test]
fn aa_latency_fraction_at_ten_percent_false_rollbacks_stay_below_alpha() {
    let scenario = Scenario {
        canary_requests_per_sec_start: 10.0,
        canary_requests_per_sec_end: 10.0,
        baseline_requests_per_sec: 30.0,
        ..Scenario::even(20.0, 0.10, 1.0)
    };
    let rate = false_rollback_rate(&scenario, &increase(0.0, AA_ALPHA), 104);
    assert!(rate <= AA_ALPHA, "{rate}");
}

// Pins validity at the recommended shipped setting (per-metric alpha 0.005, tolerance 10%)
// with every nuisance at once: 1:3 split drifting to 1:1, shared noise, 10% bad fraction.
#[test]
fn aa_shipped_setting_with_every_nuisance_stays_below_alpha() {
    let scenario = Scenario {
        canary_requests_per_sec_start: 10.0,
        canary_requests_per_sec_end: 30.0,
        baseline_requests_per_sec: 30.0,
        shared_noise_log_sd: 0.5,
        ..Scenario::even(20.0, 0.10, 1.0)
    };
    let rate = false_rollback_rate(&scenario, &increase(0.1, PER_METRIC_ALPHA), 105);
    assert!(rate <= PER_METRIC_ALPHA, "{rate}");
}

// Pins the safety promise and the confidence sequence: at the tolerance boundary (ratio 1.5,
// tolerance 50%) a canary is promoted in at most alpha of windows, and the final interval
// misses the true ratio in at most alpha of windows.
#[test]
fn boundary_canary_is_rarely_promoted_and_interval_covers() {
    let scenario = Scenario::even(20.0, 0.02, 1.5);
    let test = increase(0.5, AA_ALPHA);
    let mut rng = seeded(106);
    let canaries = 1000;
    let (mut promoted, mut missed) = (0, 0);
    for _ in 0..canaries {
        let outcome = ratio_test(&simulate_window(&scenario, &mut rng), &test);
        promoted += usize::from(outcome.decision == Decision::WithinTolerance);
        missed += usize::from(!(outcome.ratio_lower <= 1.5 && 1.5 <= outcome.ratio_upper));
    }
    let (promoted_rate, missed_rate) = (
        promoted as f64 / canaries as f64,
        missed as f64 / canaries as f64,
    );
    eprintln!("boundary: promoted {promoted_rate}, interval missed {missed_rate}");
    assert!(promoted_rate <= AA_ALPHA, "{promoted_rate}");
    assert!(missed_rate <= AA_ALPHA, "{missed_rate}");
}

// Pins power at the honest per-metric alpha 0.005 and tolerance 0: a 2x regression at 1% errors
// and 20 requests/s per side is rolled back within 10 minutes in at least 95% of canaries, median <= 4 min.
#[test]
fn two_fold_regression_is_rolled_back_fast() {
    let times = run_sequential(
        &Scenario::even(20.0, 0.01, 2.0),
        &increase(0.0, PER_METRIC_ALPHA),
        1000,
        201,
    );
    let summary = summarise(&times);
    eprintln!("2x regression: {summary}");
    assert!(summary.within_10_min >= 0.95, "{summary:?}");
    // 180 s before issue 11, as now: persistence gated on spikes costs a steady regression
    // little, and the start keeps 0.7 of the weight (240 s with persistence everywhere).
    assert!(summary.median_secs <= 180.0, "{summary:?}");
}

// Pins power for a 3x regression: median time to rollback at most 60 s, as before issue 11
// (90 s with the spike bound at 2 standard deviations and less weight on 3x; 120 s with
// persistence at every point). Only just: about 52% of these canaries are rolled back by 60 s.
#[test]
fn three_fold_regression_is_rolled_back_in_about_a_minute() {
    let times = run_sequential(
        &Scenario::even(20.0, 0.01, 3.0),
        &increase(0.0, PER_METRIC_ALPHA),
        500,
        202,
    );
    let summary = summarise(&times);
    eprintln!("3x regression: {summary}");
    assert!(summary.median_secs <= 60.0, "{summary:?}");
    assert!(summary.within_10_min >= 0.99, "{summary:?}");
}

// Pins that the simulator's random source is what the seed says (reproducible Monte Carlo).
#[test]
fn simulation_is_reproducible() {
    let first: u64 = seeded(42).random();
    let second: u64 = seeded(42).random();
    assert_eq!(first, second);
}

// ---------------------------------------------------------------------------
// Monte Carlo under real scrape timing (tests/it/stats/scrape.rs): per-target
// phases, jitter, missed scrapes and shared bursts, read through `measure`
// ---------------------------------------------------------------------------

/// Canaries per A/A condition under real scrape timing.
const SCRAPED_AA_CANARIES: usize = 2000;
/// Largest false-rollback rate accepted at alpha 0.005 over 2,000 canaries:
/// alpha plus about three Monte Carlo standard errors (sqrt(0.005 / 2000)).
const SCRAPED_AA_LIMIT: f64 = 0.01;

/// Times to rollback (from the window's start) of `canaries` scraped windows.
fn scraped_times(
    timing: &Timing,
    test: &RatioTest,
    canaries: usize,
    seed: u64,
) -> Vec<Option<u64>> {
    simulate::rollback_times(test, canaries, seed, |rng| {
        simulate_scraped_window(timing, rng)
    })
}

fn scraped_false_rollback_rate(timing: &Timing, seed: u64) -> f64 {
    let times = scraped_times(
        timing,
        &increase(0.0, PER_METRIC_ALPHA),
        SCRAPED_AA_CANARIES,
        seed,
    );
    let rate = summarise(&times).rolled_back;
    eprintln!("scraped A/A {timing:?}: false rollback rate {rate}");
    rate
}

// Regression (issue 11): the baseline scraped 10 s after the canary and 5 s bursts of 50%
// errors every ten minutes rolled back about a third of healthy canaries; the lopsided step
// must not count until the lagging side's scrape has covered the burst.
#[test]
fn scraped_baseline_after_canary_with_bursts_keeps_false_rollbacks_at_alpha() {
    let rate = scraped_false_rollback_rate(&Timing::bursty(20.0, 0.01, 1.0, 10.0), 301);
    assert!(rate <= SCRAPED_AA_LIMIT, "{rate}");
}

// Regression (issue 11): the reverse phases (canary scraped 10 s after the baseline) with the
// same bursts keep false rollbacks at alpha too.
#[test]
fn scraped_canary_after_baseline_with_bursts_keeps_false_rollbacks_at_alpha() {
    let rate = scraped_false_rollback_rate(&Timing::bursty(20.0, 0.01, 1.0, -10.0), 302);
    assert!(rate <= SCRAPED_AA_LIMIT, "{rate}");
}

// Pins the A/A promise with every timing nuisance at once: independent phases, 0.5 s jitter,
// 2% missed scrapes and the shared bursts.
#[test]
fn scraped_every_timing_nuisance_keeps_false_rollbacks_at_alpha() {
    let rate = scraped_false_rollback_rate(&Timing::messy(20.0, 0.01, 1.0), 303);
    assert!(rate <= SCRAPED_AA_LIMIT, "{rate}");
}

// Pins the A/A promise for the latency kind (histogram buckets through
// `measure::histogram_counts`, 5% slow requests) with every timing nuisance.
#[test]
fn scraped_latency_kind_with_every_nuisance_keeps_false_rollbacks_at_alpha() {
    let timing = Timing {
        kind: Kind::Latency,
        ..Timing::messy(20.0, 0.05, 1.0)
    };
    let rate = scraped_false_rollback_rate(&timing, 304);
    assert!(rate <= SCRAPED_AA_LIMIT, "{rate}");
}

// Regression (issue 11): with the canary scraped after the baseline, a burst handed the
// safety evidence a lopsided step, locking "within tolerance" and an upper bound below the
// estimate. At tolerance 10% no healthy canary may be promoted early more often than alpha,
// and the pair of bounds must cover the true ratio 1 in at least 1 - 2 alpha of canaries.
#[test]
fn scraped_canary_after_baseline_bursts_do_not_lock_safety_or_bounds() {
    let timing = Timing::bursty(20.0, 0.01, 1.0, -10.0);
    let test = increase(0.1, PER_METRIC_ALPHA);
    let mut rng = seeded(305);
    let canaries = 400;
    let (mut missed, mut upper_below_estimate) = (0, 0);
    for _ in 0..canaries {
        let outcome = ratio_test(&simulate_scraped_window(&timing, &mut rng), &test);
        missed += usize::from(!(outcome.ratio_lower <= 1.0 && 1.0 <= outcome.ratio_upper));
        upper_below_estimate += usize::from(outcome.ratio_upper < outcome.ratio_estimate);
    }
    eprintln!(
        "reverse phases: interval missed 1 in {missed}, upper below estimate in {upper_below_estimate} of {canaries}"
    );
    assert!(
        missed as f64 / canaries as f64 <= 2.0 * SCRAPED_AA_LIMIT,
        "{missed}"
    );
    assert!(
        upper_below_estimate as f64 / canaries as f64 <= SCRAPED_AA_LIMIT,
        "{upper_below_estimate}"
    );
}

/// Median time to rollback counted from the regression's start.
fn median_from_onset(timing: &Timing, canaries: usize, seed: u64) -> f64 {
    let from_onset: Vec<Option<u64>> =
        scraped_times(timing, &increase(0.0, PER_METRIC_ALPHA), canaries, seed)
            .into_iter()
            .map(|t| t.map(|secs| secs.saturating_sub(timing.onset_secs as u64)))
            .collect();
    summarise(&from_onset).median_secs
}

// Regression (issue 11): a 2x regression starting at minute 10 took about 7 minutes to be
// rolled back against 3 from the start; the restarted evidence (e-detector) must catch it
// within 1.5 times the from-start median, counted from its start.
#[test]
fn scraped_late_two_fold_regression_is_caught_nearly_as_fast_as_from_the_start() {
    let from_start = median_from_onset(&Timing::aligned(20.0, 0.01, 2.0), 400, 306);
    let late = Timing {
        onset_secs: 600.0,
        ..Timing::aligned(20.0, 0.01, 2.0)
    };
    let from_minute_ten = median_from_onset(&late, 400, 307);
    eprintln!("2x from the start: median {from_start} s; from minute 10: {from_minute_ten} s");
    assert!(
        from_minute_ten <= 1.5 * from_start,
        "{from_minute_ten} against {from_start}"
    );
    assert!(from_start <= 180.0, "{from_start}");
}

/// Share of a rule's alpha that the judge gives the final-look test when the rule sets
/// `final_test_after` (`judge::counts::FINAL_LOOK_ALPHA_SHARE`).
const FINAL_LOOK_ALPHA_SHARE: f64 = 0.9;

/// Share of `canaries` thin-traffic windows rolled back by the sequential test at
/// a tenth of the per-metric alpha or by the final-look test on the whole 30 minutes at
/// the rest (how the judge splits a rule's alpha when it sets `final_test_after`).
fn rolled_back_with_final_look(timing: &Timing, canaries: usize, seed: u64) -> f64 {
    let sequential = increase(0.0, PER_METRIC_ALPHA * (1.0 - FINAL_LOOK_ALPHA_SHARE));
    let final_look = increase(0.0, PER_METRIC_ALPHA * FINAL_LOOK_ALPHA_SHARE);
    let final_steps = (scrape::WINDOW_SECS / scrape::STEP_SECS) as usize;
    let mut rng = seeded(seed);
    let rolled_back = (0..canaries)
        .filter(|_| {
            let steps = simulate_scraped_window(timing, &mut rng);
            ratio_decision(&steps, &sequential).0 == Decision::Harm
                || final_look_test(&steps, &final_look, final_steps).is_some_and(|f| f.harm)
        })
        .count();
    rolled_back as f64 / canaries as f64
}

// Regression (issue 11): at 1 request/s per side and 0.5% errors (aligned scrapes, no
// bursts, which would add evidence) the sequential test alone rolls back a 3x regression in
// about 28% of 30-minute canaries; with the final-look test at 0.9 of the alpha beside it,
// about 61% (52% with the even split it had first).
#[test]
fn thin_traffic_three_fold_regression_is_rolled_back_with_the_final_look() {
    let rate = rolled_back_with_final_look(&Timing::aligned(1.0, 0.005, 3.0), 1000, 308);
    eprintln!("thin traffic 3x with the final look: {rate}");
    assert!(rate >= 0.58, "{rate}");
}

// Pins the A/A promise of the split (sequential at alpha / 10, final look at 0.9 alpha) at
// thin traffic with every timing nuisance.
#[test]
fn thin_traffic_final_look_keeps_false_rollbacks_at_alpha() {
    let rate =
        rolled_back_with_final_look(&Timing::messy(1.0, 0.005, 1.0), SCRAPED_AA_CANARIES, 309);
    eprintln!("thin traffic A/A with the final look: {rate}");
    assert!(rate <= SCRAPED_AA_LIMIT, "{rate}");
}

// ---------------------------------------------------------------------------
// Latency distributions under real scrape timing
// ---------------------------------------------------------------------------

/// Canaries of the distribution test's Monte Carlo tests: few enough for CI.
const DISTRIBUTION_CANARIES: usize = 300;

/// The conditions: 20 requests/s a side, the default buckets,
/// per-metric alpha 0.005, scrapes timed as `timing` says.
fn distribution_canary(
    timing: Timing,
    [baseline, canary]: [histogram::Latency; 2],
) -> histogram::HistogramCanary<'static> {
    histogram::HistogramCanary {
        timing,
        edges: &histogram::DEFAULT_BUCKETS,
        baseline,
        canary,
    }
}

/// The most healthy canaries out of [`DISTRIBUTION_CANARIES`] a test at
/// alpha 0.005 may roll back: alpha plus three standard errors.
fn distribution_false_rollback_limit() -> f64 {
    0.005 + 3.0 * (0.005_f64 * 0.995 / DISTRIBUTION_CANARIES as f64).sqrt()
}

/// Times to rollback of the distribution test (tolerance `tolerance`) and of
/// the 250 ms threshold form (tolerance 0), over seeded canaries.
fn distribution_runs(
    timing: Timing,
    sides: [histogram::Latency; 2],
    tolerance: f64,
    seed: u64,
) -> (Vec<Option<u64>>, Vec<Option<u64>>) {
    use canary_gate::stats::distribution::DistributionTest;
    let setup = distribution_canary(timing, sides);
    let test = DistributionTest::new(tolerance, 0.005).expect("valid");
    let threshold = RatioTest::new(Direction::Increase, 0.0, 0.005).expect("valid");
    let mut rng = seeded(seed);
    (0..DISTRIBUTION_CANARIES)
        .map(|_| {
            let (steps, counts) = histogram::simulate_histogram_window(&setup, 0.25, &mut rng);
            (
                histogram::distribution_rollback_secs(setup.edges, &steps, &test),
                simulate::time_to_rollback_secs(&counts, &threshold),
            )
        })
        .unzip()
}

// Pins the distribution test's A/A promise under real scrape timing: healthy canaries
// (same lognormal latency), aligned or with every nuisance (independent phases, 0.5 s
// jitter, 2% missed scrapes, bursts that slow half of both sides' requests by 1 s for
// 5 s), are rolled back at most at alpha plus three standard errors, at tolerance 0
// and +10%.
#[test]
fn distribution_aa_under_real_scrape_timing() {
    let timings = [
        ("aligned", Timing::aligned(20.0, 0.0, 1.0)),
        ("every nuisance", Timing::messy(20.0, 0.0, 1.0)),
    ];
    let limit = distribution_false_rollback_limit();
    let mut failures = Vec::new();
    for (seed, (name, timing)) in (1401..).zip(timings) {
        for tolerance in [0.0, 0.1] {
            let (times, threshold) =
                distribution_runs(timing, [histogram::Latency::BASELINE; 2], tolerance, seed);
            let (summary, threshold) = (summarise(&times), summarise(&threshold));
            eprintln!(
                "A/A {name}, tolerance {tolerance}: distribution {:.2}%, threshold {:.2}%",
                summary.rolled_back * 100.0,
                threshold.rolled_back * 100.0
            );
            if summary.rolled_back > limit {
                failures.push(format!("{name} {tolerance}: {summary:?}"));
            }
        }
    }
    assert!(failures.is_empty(), "{failures:?}");
}

// Pins the power figures on fewer canaries: a body shift (median 40 -> 52 ms,
// no request near 250 ms) and a tail shift (2% of requests +0.5 s) are each rolled
// back within 10 minutes in at least 95% of canaries, while the 250 ms threshold form
// misses the body shift.
#[test]
fn distribution_catches_body_and_tail_shifts() {
    let base = histogram::Latency::BASELINE;
    let body = histogram::Latency {
        median_secs: 0.052,
        ..histogram::Latency::BASELINE
    };
    let tail = histogram::Latency {
        tail_share: 0.02,
        tail_extra_secs: 0.5,
        ..histogram::Latency::BASELINE
    };
    let (body_times, body_threshold) =
        distribution_runs(Timing::messy(20.0, 0.0, 1.0), [base, body], 0.0, 1403);
    let body_summary = summarise(&body_times);
    let threshold_summary = summarise(&body_threshold);
    eprintln!("body shift: distribution {body_summary:?}; threshold {threshold_summary:?}");
    assert!(body_summary.within_10_min >= 0.95, "{body_summary:?}");
    assert!(
        threshold_summary.rolled_back <= 0.05,
        "{threshold_summary:?}"
    );
    let (tail_times, _) = distribution_runs(Timing::messy(20.0, 0.0, 1.0), [base, tail], 0.0, 1404);
    let tail_summary = summarise(&tail_times);
    eprintln!("tail shift: {tail_summary:?}");
    assert!(tail_summary.within_10_min >= 0.95, "{tail_summary:?}");
}

// Pins the shipped rule file's claim about a tail that moves only beyond the 250 ms
// cut (p99 from about 0.4 to 0.9 s, the share above 250 ms unchanged): at the shipped
// tolerance, +10%, the distribution test rolls it back within 10 minutes in at least
// 95% of canaries, while the 250 ms threshold form rolls back no more than its false
// rollback limit (alpha plus three standard errors).
#[test]
fn distribution_catches_a_tail_beyond_the_threshold() {
    let (baseline, canary) = histogram::Latency::tail_beyond_the_cut();
    let (times, threshold) =
        distribution_runs(Timing::messy(20.0, 0.0, 1.0), [baseline, canary], 0.1, 1405);
    let (summary, threshold) = (summarise(&times), summarise(&threshold));
    eprintln!("tail beyond the cut: distribution {summary:?}; threshold {threshold:?}");
    assert!(summary.within_10_min >= 0.95, "{summary:?}");
    let limit = distribution_false_rollback_limit();
    assert!(threshold.rolled_back <= limit, "{threshold:?}");
}
