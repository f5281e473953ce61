//! `canary-gate plan` against the Monte Carlo tests' own figures: the real
//! binary, a real rule file, and the test suite's simulation of canaries.

use std::process::Command;

use canary_gate::stats::Direction;
use canary_gate::stats::counts::RatioTest;
use canary_gate::stats::family::per_metric_alpha;

use crate::stats::simulate::{Scenario, run_sequential, summarise};
use crate::support::binary::{assert_exit, binary};

/// The rule set's alpha, shared by its three tested metrics.
const ALPHA: f64 = 0.01;
/// Canaries per case, in plan and in the test's own simulation.
const CANARIES: usize = 300;
/// Seed of both: see the test's comment.
const SEED: u64 = 17;

/// An error-rate metric beside a latency and a series one, so each gets a third of the alpha.
/// `min_requests: 20` is met within the first two steps even at 1 request/s.
const RULES: &str = "alpha: 0.01
metrics:
  - name: error-rate
    kind: ratio
    bad: http_requests_total{code=~\"5..\"}
    total: http_requests_total
    direction: increase
    tolerance: 0%
    min_requests: 20
  - name: slow-requests
    kind: latency
    histogram: http_request_duration_seconds_bucket
    threshold_seconds: 0.25
    direction: increase
    tolerance: +20%
  - name: cpu
    kind: series
    query: process_cpu_seconds_total
    direction: increase
";

/// Runs `canary-gate plan` on the rule set in `dir` with `args`, exit 0 expected, as JSON.
fn plan(dir: &std::path::Path, args: &[&str]) -> serde_json::Value {
    let output = Command::new(binary())
        .arg("plan")
        .arg("--rules-dir")
        .arg(dir)
        .args(["--rules", "planned", "--output", "json"])
        .args(args)
        .output()
        .expect("run canary-gate plan");
    serde_json::from_str(&assert_exit(&output, 0)).expect("a JSON plan")
}

// plan's median time to rollback agrees within 20% with the Monte Carlo tests' own
// simulation (tests/it/stats/simulate.rs) at the error rate's share of the alpha, for 2x
// and 3x regressions at 20 requests/s per side (1% errors) and at 1 request/s (10%
// errors; at 1% a regression at 1 request/s is not rolled back within 30 minutes in half
// the canaries, so there is no median to compare). Both draw the same canaries (the same
// seed): the looks are 30 s apart and the 3x median lies on a look's edge, where
// independent seeds put it at 60 s or 90 s. A gap would come from how plan applies the
// rule: the alpha split, min_requests, the looks, early promotion, the traffic split.
#[test]
fn plan_median_agrees_with_the_monte_carlo_tests() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("planned.yaml"), RULES).expect("rule file");
    let test = RatioTest::new(Direction::Increase, 0.0, per_metric_alpha(ALPHA, 3)).expect("test");
    for (per_side_rps, base_rate, effect) in [
        (20.0, 0.01, 2.0),
        (20.0, 0.01, 3.0),
        (1.0, 0.10, 2.0),
        (1.0, 0.10, 3.0),
    ] {
        let planned = plan(
            dir.path(),
            &[
                "--metric",
                "error-rate",
                "--rps",
                &(2.0 * per_side_rps).to_string(),
                "--split",
                "1:1",
                "--base-rate",
                &base_rate.to_string(),
                "--effect",
                &format!("{effect}x"),
                "--canaries",
                &CANARIES.to_string(),
                "--seed",
                &SEED.to_string(),
            ],
        );
        assert_eq!(planned["alpha"].as_f64(), Some(test.alpha), "{planned:#}");
        let scenario = Scenario::even(per_side_rps, base_rate, effect);
        let expected = summarise(&run_sequential(&scenario, &test, CANARIES, SEED));
        assert!(expected.median_secs.is_finite(), "{expected}");
        let median = planned["regressed"]["rollback_50_secs"]
            .as_f64()
            .unwrap_or_else(|| panic!("no median in {planned:#}"));
        let gap = (median - expected.median_secs).abs() / expected.median_secs;
        eprintln!(
            "{per_side_rps}/s per side, {base_rate} base, {effect}x: plan {median} s, Monte Carlo {expected}"
        );
        assert!(
            gap <= 0.2,
            "{per_side_rps}/s, {effect}x: plan's median {median} s against the Monte Carlo's {} s",
            expected.median_secs
        );
    }
}

// The text output gives the three rollback times, the false-rollback chance and the early
// promotes, with the canaries and the seed; a series metric is refused with the reason;
// --help teaches with an example.
#[test]
fn plan_prints_its_figures_and_refuses_series() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("planned.yaml"), RULES).expect("rule file");
    let run = |args: &[&str]| {
        Command::new(binary())
            .arg("plan")
            .arg("--rules-dir")
            .arg(dir.path())
            .args(["--rules", "planned", "--canaries", "200", "--seed", "5"])
            .args(args)
            .output()
            .expect("run canary-gate plan")
    };
    let latency = [
        "--rps",
        "20",
        "--split",
        "1:3",
        "--base-rate",
        "5%",
        "--effect",
        "3x",
    ];
    let output = run(&[&["--metric", "slow-requests"][..], &latency].concat());
    let text = assert_exit(&output, 0);
    let alpha = canary_gate::text::number(per_metric_alpha(ALPHA, 3));
    let header =
        format!("metric `slow-requests` (latency): alpha {alpha} (of the rule set's 0.01)");
    for needle in [
        header.as_str(),
        "traffic: canary 5/s, baseline 15/s",
        "canary at 3.00x, 200 simulated canaries (seed 5):",
        "rolled back with 50% probability by ",
        "healthy canary (1.00x), 200 simulated canaries (seed 6):",
        "rolled back within 30m (false rollbacks): ",
        "promoted early (before the final look): ",
    ] {
        assert!(text.contains(needle), "no {needle:?} in:\n{text}");
    }
    let output = run(&[&["--metric", "cpu"][..], &latency].concat());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains(
            "metric `cpu` is a series metric; plan simulates counts metrics (ratio, and latency with threshold_seconds) only"
        ),
        "{stderr}"
    );
    let output = run(&[
        &["--metric", "error-rate"][..],
        &["--rps", "20", "--base-rate", "1%", "--effect", "2"],
    ]
    .concat());
    assert_exit(&output, 0);
    let help = Command::new(binary())
        .args(["plan", "--help"])
        .output()
        .expect("run canary-gate plan --help");
    let help = assert_exit(&help, 0);
    assert!(
        help.contains("canary-gate plan --rules http --metric error-rate --rps 20 --split 1:3"),
        "{help}"
    );
}

// On the shipped rule set, plan works for `error-rate` and refuses the latency
// distribution metric `latency` with a message that says where its figures are and
// how to plan a latency metric instead.
#[test]
fn plan_on_the_shipped_rules_refuses_the_distribution_and_says_what_to_do() {
    let run = |metric: &str| {
        Command::new(binary())
            .arg("plan")
            .arg("--rules-dir")
            .arg(crate::support::repo_root().join("rules"))
            .args(["--rules", "http", "--metric", metric, "--canaries", "100"])
            .args(["--rps", "20", "--base-rate", "1%", "--effect", "2x"])
            .output()
            .expect("run canary-gate plan")
    };
    let errors = assert_exit(&run("error-rate"), 0);
    assert!(
        errors.contains("rule set `http`, metric `error-rate` (ratio, critical)"),
        "{errors}"
    );
    let refused = run("latency");
    let says = String::from_utf8_lossy(&refused.stderr);
    let what_to_do = [
        "metric `latency` is a latency distribution metric",
        "docs/statistics.md, \"Latency distributions\"",
        "plan a copy of the rule set whose metric sets threshold_seconds",
    ];
    assert!(
        refused.status.code() == Some(3) && what_to_do.iter().all(|w| says.contains(w)),
        "{says}"
    );
}

// With `final_test_after`, plan judges thin traffic as the judge does: the sequential test
// at its share of the metric's alpha, the final-look test on the first 30 minutes at the
// rest (both from `judge::counts_tests`). Its share of 3x canaries rolled back at 1
// request/s per side and 0.5% errors equals that of the same canaries judged in the test.
#[test]
fn plan_counts_the_final_look_test_at_thin_traffic() {
    use canary_gate::judge::counts_tests;
    use canary_gate::rules::MetricKind;
    use canary_gate::stats::counts::{Decision, final_look_test, ratio_decision};

    use crate::stats::simulate::{seeded, simulate_window};

    let dir = tempfile::tempdir().expect("temp dir");
    let rules = RULES.replace(
        "    min_requests: 20\n",
        "    min_requests: 20\n    final_test_after: 30m\n",
    );
    std::fs::write(dir.path().join("planned.yaml"), &rules).expect("rule file");
    let set = canary_gate::rules::load_str(std::path::Path::new("planned.yaml"), &rules)
        .expect("valid rules");
    let MetricKind::Ratio { rule, .. } = &set.metrics[0].kind else {
        panic!("error-rate is a ratio metric");
    };
    let tests = counts_tests(rule, per_metric_alpha(ALPHA, 3), set.step_secs);
    let final_look = tests.final_look.expect("a final-look test");
    let canaries = 400;
    let mut rng = seeded(SEED);
    let rolled_back = (0..canaries)
        .filter(|_| {
            let steps = simulate_window(&Scenario::even(1.0, 0.005, 3.0), &mut rng);
            ratio_decision(&steps, &tests.sequential).0 == Decision::Harm
                || final_look_test(&steps, &final_look.test, final_look.steps)
                    .is_some_and(|f| f.harm)
        })
        .count() as f64
        / canaries as f64;
    let planned = plan(
        dir.path(),
        &[
            "--metric",
            "error-rate",
            "--rps",
            "2",
            "--base-rate",
            "0.5%",
            "--effect",
            "3x",
            "--canaries",
            &canaries.to_string(),
            "--seed",
            &SEED.to_string(),
        ],
    );
    eprintln!("thin traffic 3x with the final look: plan {planned:#}, test {rolled_back}");
    assert_eq!(planned["final_test_after_secs"], 1800);
    assert_eq!(
        planned["regressed"]["rolled_back"].as_f64(),
        Some(rolled_back),
        "{planned:#}"
    );
    assert!(
        rolled_back > 0.3,
        "the final look catches many: {rolled_back}"
    );
}
