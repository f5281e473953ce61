//! A verdict's figures stay what they were before the speed-ups of issue 15
//! (typed decoding of Prometheus's answers, the bound search, the memo of
//! verified renders, and later the counts tests' own arithmetic): fixed,
//! seeded data through a real Prometheus, judged by the `judge` command,
//! compared with the verdicts an older commit gave on the same data.
//!
//! Two recordings, each judged with a frozen rule set in
//! `tests/fixtures/figures/rules/`:
//! - `verdicts.json`, rule set `http` with the 250 ms threshold form, made with
//!   the release binary of commit d4cdfe2 (before the first speed-ups);
//! - `verdicts-distribution.json`, rule set `http-distribution` (the shipped
//!   set once its latency metric became the distribution form), made with the
//!   build of the commit that added it, before the counts tests' speed-ups.
//!
//! A recording is made by running its test with the old binary:
//!
//! ```text
//! CANARY_GATE_RECORD_WITH=/path/to/old/canary-gate cargo test --test it \
//!     figures::distribution_verdicts_on_fixed_data_are_those_recorded_before_the_speed_ups
//! ```
//!
//! which runs that binary instead of this build's and writes what it gives.
//! Only what depends on the moment of the run is left out of the comparison
//! (the verdict's id and the time it was judged at); every figure, reason
//! and query must be equal. Fields added since are not compared, and only
//! those named in [`ADDED`]: the threshold latency metric's percentiles and
//! the buckets its report figure is drawn from (issue 14).

use std::process::Command;

use crate::support::binary::binary;
use crate::support::prometheus::TestPrometheus;
use crate::support::repo_root;
use crate::support::simulate::{SideTraffic, Simulation};

/// The recorded verdicts of the threshold-form rule set `http` (made with
/// d4cdfe2, before the first speed-ups).
const RECORDED: &str = "tests/fixtures/figures/verdicts.json";

/// The recorded verdicts of rule set `http-distribution`, a copy of
/// rules/http.yaml once its latency metric became the distribution form, made
/// with the build of the commit that added it (before the counts tests' speed-ups,
/// which reach the distribution test's per-edge statistics).
const RECORDED_DISTRIBUTION: &str = "tests/fixtures/figures/verdicts-distribution.json";

/// The rule set `http` the recording was judged with: rules/http.yaml as it was
/// then (error rate and the 250 ms threshold form, `rules_hash` e656da8d...),
/// kept byte for byte so that the shipped set can change without the recording.
const RULES_DIR: &str = "tests/fixtures/figures/rules";

/// The start of the fixed data: 2026-11-02T00:00:00Z.
const DATA_START_SECS: i64 = 1_793_577_600;

/// Hours of fixed data.
const DATA_HOURS: i64 = 3;

/// Two services, each with a baseline and a canary: `checkout`'s canary is
/// healthy, `search`'s fails three times as often and is slower more often.
fn fixed_data() -> Simulation {
    let side = |service: &str, track: &str, errors: f64, slow: f64| {
        let mut side = SideTraffic::new(&[("service", service), ("track", track)]);
        side.error_ratio = errors;
        side.slow_ratio = slow;
        side
    };
    Simulation {
        start_secs: DATA_START_SECS,
        duration_secs: DATA_HOURS * 3600,
        scrape_interval_secs: 15,
        seed: 1502,
        sides: vec![
            side("checkout", "baseline", 0.01, 0.05),
            side("checkout", "canary", 0.01, 0.05),
            side("search", "baseline", 0.01, 0.05),
            side("search", "canary", 0.03, 0.08),
        ],
    }
}

/// The looks judged: service, minutes after the data's start, whether final.
const LOOKS: [(&str, i64, bool); 6] = [
    ("checkout", 10, false),
    ("checkout", 45, false),
    ("checkout", 180, true),
    ("search", 10, false),
    ("search", 45, false),
    ("search", 180, true),
];

/// The verdict `program` gives for one look, without its id and judging time.
fn judge(
    program: &std::path::Path,
    prometheus: &str,
    rules: &str,
    look: (&str, i64, bool),
) -> serde_json::Value {
    let (service, minutes, is_final) = look;
    let mut command = Command::new(program);
    command
        .arg("judge")
        .args(["--prometheus-url", prometheus])
        .arg("--rules-dir")
        .arg(repo_root().join(RULES_DIR))
        .args(["--rules", rules, "--deployment", "figures-1"])
        .args(["--canary", "track=canary", "--baseline", "track=baseline"])
        .arg(format!("--start={DATA_START_SECS}"))
        .arg(format!("--end={}", DATA_START_SECS + minutes * 60))
        .arg(format!("--var=service={service}"))
        .args(["--verdict-timeout", "120s"]);
    if is_final {
        command.arg("--final");
    }
    let output = command.output().expect("run canary-gate judge");
    assert!(
        matches!(output.status.code(), Some(0..=2)),
        "judge {look:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let mut verdict: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("judge prints JSON");
    let object = verdict.as_object_mut().expect("a verdict object");
    object.remove("id");
    object.remove("judged_at");
    verdict
}

// Pins that every figure of six verdicts (healthy and regressed canaries, early,
// later and final looks) is what the code before the speed-ups of issue 15 gave.
#[test]
fn verdicts_on_fixed_data_are_those_recorded_before_the_speed_ups() {
    check_recording("http", RECORDED);
}

// The same for the distribution form of the latency metric, whose per-edge
// counts tests are where the later speed-ups work.
#[test]
fn distribution_verdicts_on_fixed_data_are_those_recorded_before_the_speed_ups() {
    check_recording("http-distribution", RECORDED_DISTRIBUTION);
}

// Pins that the server, which keeps each metric's statistics from one look
// to the next of the same canary and resumes from them, gives every figure
// of the recorded verdicts too, its looks asked one after another (twice
// over, so later looks also meet checkpoints of longer windows).
#[tokio::test]
async fn verdicts_the_server_resumes_look_after_look_are_those_recorded() {
    let mut text = Vec::new();
    crate::support::simulate::write_openmetrics(&fixed_data(), &mut text).expect("OpenMetrics");
    let prometheus = TestPrometheus::start_with_openmetrics(&text);
    let app = crate::support::spawn_app(&prometheus.url, &repo_root().join(RULES_DIR)).await;
    for (rules, recorded) in [
        ("http", RECORDED),
        ("http-distribution", RECORDED_DISTRIBUTION),
    ] {
        let before: Vec<serde_json::Value> = serde_json::from_str(
            &std::fs::read_to_string(repo_root().join(recorded)).expect("read the recording"),
        )
        .expect("the recording is JSON");
        for round in 0..2 {
            for (look, before) in LOOKS.iter().zip(&before) {
                let (service, minutes, is_final) = *look;
                let body = serde_json::json!({
                    "rules": rules,
                    "deployment": "figures-1",
                    "canary": {"track": "canary"},
                    "baseline": {"track": "baseline"},
                    "start": DATA_START_SECS,
                    "end": DATA_START_SECS + minutes * 60,
                    "vars": {"service": service},
                    "final": is_final,
                });
                let (status, mut now) = app.post_verdict(&body).await;
                assert_eq!(status, 200, "{now}");
                let object = now.as_object_mut().expect("a verdict object");
                for field in ["id", "judged_at", "report_url"] {
                    object.remove(field);
                }
                let mut differences = Vec::new();
                compare(before, &now, "", &mut differences);
                assert!(
                    differences.is_empty(),
                    "rules {rules}, round {round}, look {look:?}: the server's verdict differs from the one recorded at {}",
                    differences.join("; ")
                );
            }
        }
    }
    app.stop().await;
}

/// Judges [`LOOKS`] with rule set `rules` and compares each verdict with
/// `recorded`; or, with `CANARY_GATE_RECORD_WITH` set, writes what that
/// binary gives.
fn check_recording(rules: &str, recorded: &str) {
    let mut text = Vec::new();
    crate::support::simulate::write_openmetrics(&fixed_data(), &mut text).expect("OpenMetrics");
    let prometheus = TestPrometheus::start_with_openmetrics(&text);
    let recording = std::env::var_os("CANARY_GATE_RECORD_WITH");
    let program = recording
        .clone()
        .map_or_else(binary, std::path::PathBuf::from);
    let verdicts: Vec<serde_json::Value> = LOOKS
        .iter()
        .map(|look| judge(&program, &prometheus.url, rules, *look))
        .collect();
    let path = repo_root().join(recorded);
    if recording.is_some() {
        std::fs::create_dir_all(path.parent().expect("a folder")).expect("fixture folder");
        // One verdict per line: a change shows as the looks it touches.
        let lines: Vec<String> = verdicts.iter().map(|v| v.to_string()).collect();
        std::fs::write(&path, format!("[\n{}\n]\n", lines.join(",\n")))
            .expect("write the recording");
        return;
    }
    let before: Vec<serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("read the recording"))
            .expect("the recording is JSON");
    assert_eq!(before.len(), verdicts.len());
    for ((look, before), now) in LOOKS.iter().zip(before).zip(&verdicts) {
        let mut differences = Vec::new();
        compare(&before, now, "", &mut differences);
        assert!(
            differences.is_empty(),
            "rules {rules}, look {look:?}: the verdict differs from the one recorded before the speed-ups at {}",
            differences.join("; ")
        );
    }
}

/// Fields a verdict has gained since the recording, which it lacks: each
/// side's percentiles of the threshold latency metric, and the pooled
/// buckets of its chart. Any other field missing on either side differs.
const ADDED: [&str; 4] = [
    "percentiles",
    "bucket_edges_seconds",
    "canary_buckets",
    "baseline_buckets",
];

/// The paths (with both values) at which `before` and `now` differ.
fn compare(before: &serde_json::Value, now: &serde_json::Value, path: &str, out: &mut Vec<String>) {
    use serde_json::Value;
    match (before, now) {
        (Value::Object(a), Value::Object(b)) => {
            for key in a.keys().chain(b.keys().filter(|k| !a.contains_key(*k))) {
                let (x, y) = (&a.get(key), &b.get(key));
                match (x, y) {
                    (Some(x), Some(y)) => compare(x, y, &format!("{path}.{key}"), out),
                    (None, Some(_)) if ADDED.contains(&key.as_str()) => {}
                    _ => out.push(format!("{path}.{key}: {x:?} then, {y:?} now")),
                }
            }
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                compare(x, y, &format!("{path}[{i}]"), out);
            }
        }
        (a, b) if a != b => out.push(format!("{path}: {a} then, {b} now")),
        _ => {}
    }
}
