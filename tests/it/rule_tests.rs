//! Rule unit tests (`canary-gate test`) and the evidence that their in-memory
//! source evaluates PromQL the way Prometheus does: a committed table of
//! range queries asked of a real Prometheus and of the in-memory source over
//! the same series, answers compared point by point.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::process::Command;
use std::time::Duration;

use canary_gate::source::memory::{self, SeriesValue, StoredSeries, notation};
use canary_gate::source::{MemorySource, MetricSource, PrometheusSource, RangeSpec, Series};

use crate::support::binary::{assert_exit, binary};
use crate::support::prometheus::TestPrometheus;
use crate::support::repo_root;

/// Time 0 of the agreement data, a whole day (so blocks align).
const BASE_SECS: i64 = 1_767_225_600;

/// Seconds between two samples of the agreement data.
const SCRAPE_SECS: i64 = 15;

/// The largest relative difference tolerated between the two answers.
const RELATIVE_TOLERANCE: f64 = 1e-9;

/// The series both evaluators answer from, in the expanding notation (one
/// value every 15 s from [`BASE_SECS`]). They are built to hit the hard cases:
/// counter resets (twice, and to a non-zero value), gaps longer and shorter
/// than the lookback, series that start late at zero and at a small value (the
/// zero-point cut of extrapolation, which 2.42 applies before the 110% threshold:
/// a first value of 15 against increments of 20 puts the zero point 11.25 s back,
/// between half a scrape and the threshold), fractional increments, a series that
/// stops (visible for the 5 m lookback only), NaN in a gauge, and histogram
/// buckets that are not monotonic and reset.
const SERIES: &[(&str, &str)] = &[
    (
        r#"req{track="canary",pod="a",code="200"}"#,
        "0+10x60 3+7x40 0+5x58",
    ),
    (
        r#"req{track="canary",pod="a",code="500"}"#,
        "0+1x20 _x10 30+1x50 _x25 100+2x55",
    ),
    (r#"req{track="canary",pod="b",code="200"}"#, "_x61 15+20x99"),
    (r#"req{track="baseline",pod="a",code="200"}"#, "5+3x160"),
    (r#"req{track="baseline",pod="a",code="500"}"#, "0+0.5x160"),
    (
        r#"req{track="baseline",pod="b",code="200"}"#,
        "_x40 0+4x120",
    ),
    (
        r#"req{track="baseline",pod="b",code="500"}"#,
        "_x40 0+1x30 _x3 34+1x86",
    ),
    (r#"gone{pod="x"}"#, "1+1x40"),
    (r#"gone{pod="y"}"#, "_x30 5 _x5 6 _x30 7"),
    (r#"lat_bucket{track="canary",le="0.1"}"#, "0+5x80 0+5x80"),
    (r#"lat_bucket{track="canary",le="0.25"}"#, "0+8x80 0+8x80"),
    (r#"lat_bucket{track="canary",le="0.5"}"#, "0+7.5x80 0+9x80"),
    (r#"lat_bucket{track="canary",le="1"}"#, "0+9.5x80 0+9.5x80"),
    (r#"lat_bucket{track="canary",le="+Inf"}"#, "0+10x160"),
    (r#"lat_bucket{track="baseline",le="0.1"}"#, "0+2x160"),
    (r#"lat_bucket{track="baseline",le="0.25"}"#, "0+6x160"),
    (r#"lat_bucket{track="baseline",le="0.5"}"#, "0+6x160"),
    (r#"lat_bucket{track="baseline",le="+Inf"}"#, "0+10x160"),
];

/// A wobbling gauge per pod, with one NaN sample: `cpu{pod}`.
fn gauges() -> Vec<(String, Vec<SeriesValue>)> {
    ["a", "b"]
        .iter()
        .enumerate()
        .map(|(pod_index, pod)| {
            let values = (0..=160)
                .map(|k| match (pod_index, k) {
                    (0, 50) => SeriesValue::Value(f64::NAN),
                    _ => {
                        let phase = k as f64 * 0.7 + pod_index as f64 * 1.3;
                        SeriesValue::Value(((0.5 + 0.3 * phase.sin()) * 1e4).round() / 1e4)
                    }
                })
                .collect();
            (format!(r#"cpu{{pod="{pod}"}}"#), values)
        })
        .collect()
}

/// The agreement table: a query and its range, as `(start, end, step)` in
/// seconds from [`BASE_SECS`]. Ranges start off the scrape grid and use odd
/// steps so windows fall between samples as well as on them.
const CASES: &[(&str, i64, i64, i64)] = &[
    // Selectors: every matcher operator, lookback over gaps and after a series stops.
    ("req", 0, 2400, 15),
    (r#"req{track="canary"}"#, 5, 2400, 60),
    (r#"req{code!="200"}"#, 0, 2400, 37),
    (r#"req{code=~"5.."}"#, 3, 2400, 30),
    (r#"req{code!~"5..", track="baseline"}"#, 0, 2400, 45),
    (r#"{__name__=~"gone|nothing", pod=~"x|y"}"#, 0, 2400, 20),
    // Offsets, both ways.
    (r#"req{pod="a"} offset 5m"#, 300, 2400, 30),
    ("gone offset -2m", 0, 2000, 25),
    // rate, increase, irate: resets, gaps, late starts, windows at the edges.
    ("rate(req[1m])", 0, 2400, 15),
    ("rate(req[5m])", 7, 2400, 23),
    ("rate(req[15s])", 0, 2400, 15),
    ("rate(req[20s])", 2, 2400, 11),
    ("increase(req[2m])", 0, 2400, 30),
    ("increase(req[1m30s])", 1, 2400, 7),
    ("increase(req[10m])", 0, 2400, 60),
    ("irate(req[1m])", 0, 2400, 15),
    ("irate(req[31s])", 4, 2400, 13),
    ("rate(req[1m] offset 2m)", 120, 2400, 30),
    ("delta(cpu[2m])", 0, 2400, 30),
    ("idelta(cpu[1m])", 0, 2400, 45),
    // The *_over_time family, NaN included.
    ("avg_over_time(cpu[2m])", 0, 2400, 30),
    ("sum_over_time(cpu[1m])", 0, 2400, 40),
    ("min_over_time(cpu[5m])", 0, 2400, 60),
    ("max_over_time(cpu[3m])", 0, 2400, 50),
    ("count_over_time(req[1m])", 0, 2400, 15),
    ("last_over_time(gone[10m])", 0, 2400, 30),
    ("present_over_time(gone[1m])", 0, 2400, 30),
    ("stddev_over_time(cpu[5m])", 0, 2400, 60),
    ("stdvar_over_time(cpu[2m])", 0, 2400, 60),
    // Aggregations, by and without, prefix and suffix.
    ("sum by (track) (rate(req[1m]))", 0, 2400, 15),
    ("sum without (pod) (increase(req[5m]))", 0, 2400, 30),
    ("max by (code) (req)", 0, 2400, 30),
    ("min(req)", 0, 2400, 30),
    ("avg by (track) (req)", 0, 2400, 30),
    ("count(req) by (track)", 0, 2400, 30),
    ("count without (pod, code) (req)", 0, 2400, 30),
    ("avg(cpu)", 0, 2400, 15),
    // Arithmetic, comparisons and vector matching.
    (
        r#"sum by (track) (rate(req{code=~"5.."}[5m])) / sum by (track) (rate(req[5m]))"#,
        0,
        2400,
        15,
    ),
    (
        r#"rate(req{code="500"}[5m]) / on (track, pod) rate(req{code="200"}[5m])"#,
        0,
        2400,
        30,
    ),
    (
        r#"req{code="500"} / ignoring (code) req{code="200"}"#,
        0,
        2400,
        30,
    ),
    (
        r#"req{code="500"} - req{code="500"} offset 1m"#,
        0,
        2400,
        30,
    ),
    ("req * 2 + 1", 0, 2400, 60),
    ("req % 7", 0, 2400, 60),
    ("2 ^ (cpu * 3)", 0, 2400, 60),
    ("100 - cpu * 100", 0, 2400, 60),
    ("-cpu", 0, 2400, 60),
    ("cpu > 0.5", 0, 2400, 15),
    ("cpu > bool 0.5", 0, 2400, 15),
    ("0.5 < cpu", 0, 2400, 15),
    (r#"cpu{pod="a"} >= on () cpu{pod="b"}"#, 0, 2400, 15),
    ("1 / (req - req)", 0, 2400, 120),
    ("time() - 1767225600", 0, 600, 60),
    ("vector(1) + 1", 0, 600, 60),
    ("scalar(sum(req)) * 2", 0, 2400, 60),
    // histogram_quantile: interpolation, the first bucket, +Inf, monotonicity fix, resets.
    ("histogram_quantile(0.9, rate(lat_bucket[5m]))", 0, 2400, 15),
    (
        "histogram_quantile(0.5, sum by (le, track) (rate(lat_bucket[2m])))",
        0,
        2400,
        30,
    ),
    ("histogram_quantile(0.99, lat_bucket)", 0, 2400, 30),
    (
        "histogram_quantile(0.1, increase(lat_bucket[1m]))",
        0,
        2400,
        30,
    ),
    ("histogram_quantile(1, lat_bucket)", 0, 2400, 60),
    ("histogram_quantile(1.5, lat_bucket)", 0, 2400, 300),
    ("histogram_quantile(0, rate(lat_bucket[1m]))", 0, 2400, 60),
];

/// Every series of the agreement data, labelled and expanded.
fn agreement_series() -> Vec<(BTreeMap<String, String>, Vec<SeriesValue>)> {
    let mut all: Vec<(String, Vec<SeriesValue>)> = SERIES
        .iter()
        .map(|(series, values)| {
            let expanded = notation::expand(values).expect("the table's values expand");
            (series.to_string(), expanded)
        })
        .collect();
    all.extend(gauges());
    all.into_iter()
        .map(|(series, values)| (labels_of(&series), values))
        .collect()
}

/// The labels of `metric{a="b",...}` (simple values only, as in the table).
fn labels_of(series: &str) -> BTreeMap<String, String> {
    let (name, rest) = series.split_once('{').expect("a series with labels");
    let mut labels = BTreeMap::from([("__name__".to_string(), name.to_string())]);
    for pair in rest.trim_end_matches('}').split(',') {
        let (key, value) = pair.split_once('=').expect("label=value");
        labels.insert(
            key.trim().to_string(),
            value.trim().trim_matches('"').to_string(),
        );
    }
    labels
}

/// A number as OpenMetrics writes one.
fn om_number(value: f64) -> String {
    match value {
        v if v.is_nan() => "NaN".into(),
        v if v == f64::INFINITY => "+Inf".into(),
        v if v == f64::NEG_INFINITY => "-Inf".into(),
        v => format!("{v:?}"),
    }
}

/// The agreement data as OpenMetrics text for `promtool tsdb create-blocks-from openmetrics`.
fn openmetrics(series: &[(BTreeMap<String, String>, Vec<SeriesValue>)]) -> String {
    let mut text = String::new();
    for (labels, values) in series {
        let name = &labels["__name__"];
        let rest: Vec<String> = labels
            .iter()
            .filter(|(k, _)| *k != "__name__")
            .map(|(k, v)| format!("{k}=\"{v}\""))
            .collect();
        for (k, value) in values.iter().enumerate() {
            let SeriesValue::Value(value) = value else {
                continue;
            };
            let time = BASE_SECS + k as i64 * SCRAPE_SECS;
            writeln!(
                text,
                "{name}{{{}}} {} {time}",
                rest.join(","),
                om_number(*value)
            )
            .expect("write to a string");
        }
    }
    text.push_str("# EOF\n");
    text
}

/// Whether two answers' values agree: equal within [`RELATIVE_TOLERANCE`], or the same non-finite.
fn agrees(a: f64, b: f64) -> bool {
    if a.is_nan() || b.is_nan() {
        return a.is_nan() && b.is_nan();
    }
    if a.is_infinite() || b.is_infinite() {
        return a == b;
    }
    (a - b).abs() <= RELATIVE_TOLERANCE * a.abs().max(b.abs()) || a == b
}

/// The differences between two answers to the same query, in words; empty when they agree.
fn differences(prometheus: &[Series], memory: &[Series]) -> Vec<String> {
    let by_labels = |answer: &[Series]| -> BTreeMap<BTreeMap<String, String>, Vec<(i64, f64)>> {
        answer
            .iter()
            .map(|s| (s.labels.clone(), s.points.clone()))
            .collect()
    };
    let (expected, actual) = (by_labels(prometheus), by_labels(memory));
    let mut found = Vec::new();
    for (labels, points) in &expected {
        let Some(mine) = actual.get(labels) else {
            found.push(format!(
                "{labels:?}: only Prometheus has it ({} points)",
                points.len()
            ));
            continue;
        };
        let times = |p: &[(i64, f64)]| p.iter().map(|&(t, _)| t).collect::<Vec<_>>();
        if times(points) != times(mine) {
            found.push(format!(
                "{labels:?}: points at different times: Prometheus {:?}, memory {:?}",
                times(points),
                times(mine)
            ));
            continue;
        }
        for (&(t, a), &(_, b)) in points.iter().zip(mine) {
            if !agrees(a, b) {
                found.push(format!(
                    "{labels:?} at {}: Prometheus {a}, memory {b}",
                    t - BASE_SECS
                ));
            }
        }
    }
    for labels in actual.keys().filter(|l| !expected.contains_key(*l)) {
        found.push(format!("{labels:?}: only the memory source has it"));
    }
    found
}

// The in-memory source answers every range query of the committed table as a real
// Prometheus does over the same series: the same series, the same points, the same
// values to 1e-9 relative. This is the evidence the evaluator is right.
#[tokio::test]
async fn memory_source_agrees_with_prometheus_on_the_table() {
    assert!(CASES.len() >= 30, "the table keeps at least 30 cases");
    let series = agreement_series();
    let prometheus = TestPrometheus::start_with_openmetrics(openmetrics(&series).as_bytes());
    let real =
        PrometheusSource::new(&prometheus.url, Duration::from_secs(30)).expect("a usable URL");
    let stored: Vec<StoredSeries> = series
        .iter()
        .map(|(labels, values)| {
            memory::series_from_values(labels.clone(), values, BASE_SECS * 1000, SCRAPE_SECS * 1000)
        })
        .collect();
    let memory = MemorySource::new(stored);

    let mut disagreements = Vec::new();
    let mut points = 0;
    for &(query, start, end, step) in CASES {
        let range = RangeSpec {
            start_secs: BASE_SECS + start,
            end_secs: BASE_SECS + end,
            step_secs: step as u64,
        };
        let expected = real
            .range_query(query, range)
            .await
            .unwrap_or_else(|e| panic!("Prometheus refused `{query}`: {e}"));
        let actual = memory
            .range_query(query, range)
            .await
            .unwrap_or_else(|e| panic!("the memory source refused `{query}`: {e}"));
        assert!(
            !expected.is_empty(),
            "`{query}` gives Prometheus nothing to compare"
        );
        points += expected.iter().map(|s| s.points.len()).sum::<usize>();
        let found = differences(&expected, &actual);
        if !found.is_empty() {
            disagreements.push(format!(
                "`{query}` ({} of them):\n    {}",
                found.len(),
                found
                    .iter()
                    .take(5)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join("\n    ")
            ));
        }
    }
    assert!(
        disagreements.is_empty(),
        "{} of {} queries disagree with Prometheus:\n  {}",
        disagreements.len(),
        CASES.len(),
        disagreements.join("\n  ")
    );
    assert!(points > 10_000, "the table compares {points} points");
}

/// Series with staleness markers, which OpenMetrics backfill cannot carry, so
/// Prometheus's own engine reads them through `promtool test rules`.
const STALE_SERIES: &[(&str, &str)] = &[
    (r#"up{pod="a"}"#, "1 1 1 stale 1 1 _x3 1 stale _x30 1"),
    (r#"up{pod="b"}"#, "1x10 stale _x5 2x10"),
    (r#"up{pod="c"}"#, "1 _x25 2 _x30 3 stale"),
    (r#"hits{pod="a"}"#, "0+5x8 stale 40+5x8 stale 0+1x8"),
];

/// Instant queries over [`STALE_SERIES`], each asked at every 5 s for 15 minutes.
const STALE_CASES: &[&str] = &[
    "up",
    "up offset 20s",
    "sum(up)",
    "count by (pod) (up)",
    "count_over_time(up[1m])",
    "last_over_time(up[2m])",
    "max_over_time(hits[1m])",
    "hits",
    "present_over_time(up[30s])",
    "increase(hits[1m])",
    "irate(hits[30s])",
    "rate(hits[45s] offset 10s)",
];

/// A value as a YAML number promtool reads back exactly.
fn yaml_number(value: f64) -> String {
    format!("{value:?}")
}

/// Labels as promtool's `exp_samples` writes them: `name{a="b"}`.
fn labels_text(labels: &BTreeMap<String, String>) -> String {
    let name = labels.get("__name__").cloned().unwrap_or_default();
    let rest: Vec<String> = labels
        .iter()
        .filter(|(k, _)| *k != "__name__")
        .map(|(k, v)| format!("{k}=\"{v}\""))
        .collect();
    format!("{name}{{{}}}", rest.join(", "))
}

// Staleness markers end a series at once, as in Prometheus: the in-memory answers to
// queries over series with `stale` are written as a `promtool test rules` file, and
// Prometheus's own engine, reading the same notation, agrees with every one of them.
#[tokio::test]
async fn staleness_agrees_with_promtool() {
    let stored: Vec<StoredSeries> = STALE_SERIES
        .iter()
        .map(|(series, values)| {
            let values = notation::expand(values).expect("values expand");
            memory::series_from_values(labels_of(series), &values, 0, SCRAPE_SECS * 1000)
        })
        .collect();
    let memory = MemorySource::new(stored);
    let mut file = String::from(
        "rule_files: []\nevaluation_interval: 15s\ntests:\n  - interval: 15s\n    input_series:\n",
    );
    for (series, values) in STALE_SERIES {
        writeln!(
            file,
            "      - series: '{series}'\n        values: '{values}'"
        )
        .expect("write");
    }
    file.push_str("    promql_expr_test:\n");
    let mut cases = 0;
    for query in STALE_CASES {
        for at_secs in (0..=900).step_by(5) {
            let answer = memory
                .instant_query(query, at_secs)
                .await
                .expect("evaluates");
            writeln!(
                file,
                "      - expr: '{query}'\n        eval_time: {at_secs}s"
            )
            .expect("write");
            if answer.is_empty() {
                file.push_str("        exp_samples: []\n");
            } else {
                file.push_str("        exp_samples:\n");
                for series in &answer {
                    writeln!(
                        file,
                        "          - labels: '{}'\n            value: {}",
                        labels_text(&series.labels),
                        yaml_number(series.points[0].1)
                    )
                    .expect("write");
                }
            }
            cases += 1;
        }
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("stale.yaml");
    std::fs::write(&path, &file).expect("write the promtool test");
    let install = Command::new("bash")
        .arg(repo_root().join("scripts/install-prometheus"))
        .output()
        .expect("run scripts/install-prometheus");
    assert!(
        install.status.success(),
        "{}",
        String::from_utf8_lossy(&install.stderr)
    );
    let bin = String::from_utf8_lossy(&install.stdout).trim().to_string();
    let output = Command::new(format!("{bin}/promtool"))
        .args(["test", "rules"])
        .arg(&path)
        .output()
        .expect("run promtool test rules");
    assert!(
        output.status.success(),
        "promtool disagrees with the memory source on {cases} cases:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

// The shipped rule tests (rules/tests/) pass, as CI runs them.
#[test]
fn shipped_rule_tests_pass() {
    let output = Command::new(binary())
        .arg("test")
        .arg(repo_root().join("rules/tests"))
        .output()
        .expect("run canary-gate test");
    let stdout = assert_exit(&output, 0);
    assert!(stdout.contains(" 0 failed"), "{stdout}");
    for name in [
        "healthy canary",
        "3x error regression",
        "latency regression",
        "no traffic",
        "restart",
    ] {
        assert!(
            stdout.contains(name),
            "no test named like `{name}`: {stdout}"
        );
    }
}

/// Runs `canary-gate test` on `text` written as `name` in `dir`.
fn run_test_file(
    dir: &std::path::Path,
    name: &str,
    text: &str,
) -> (std::path::PathBuf, std::process::Output) {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write the test file");
    let output = Command::new(binary())
        .arg("test")
        .arg(&path)
        .output()
        .expect("run canary-gate test");
    (path, output)
}

/// A test file for rules/http.yaml with a healthy canary, expecting `expectation` of error-rate.
fn healthy_test(expectation: &str) -> String {
    let rules = repo_root().join("rules/http.yaml");
    let side = "
        - series: http_requests_total{service=\"$service\", code=\"200\"}
          values: 0+297x120
        - series: http_requests_total{service=\"$service\", code=\"500\"}
          values: 0+3x120
        - series: http_request_duration_seconds_bucket{service=\"$service\", le=\"0.25\"}
          values: 0+285x120
        - series: http_request_duration_seconds_bucket{service=\"$service\", le=\"+Inf\"}
          values: 0+300x120";
    format!(
        "rules: {}
interval: 15s
canary: {{track: canary}}
baseline: {{track: baseline}}
vars: {{service: checkout}}
tests:
  - name: wrong on purpose
    series:
      canary:{side}
      baseline:{side}
    evals:
      - at: 30m
        final: true
        metrics:
          error-rate: {expectation}
",
        rules.display()
    )
}

// A wrong expectation fails the run (exit 3) with the metric, the expected and the
// actual outcome, and the figures behind it: the reason, the estimate, the counts.
#[test]
fn a_wrong_expectation_names_the_metric_and_its_figures() {
    let dir = tempfile::tempdir().expect("temp dir");
    let wrong = healthy_test("{outcome: fail, estimate: 3.0}");
    let (_, output) = run_test_file(dir.path(), "wrong.yaml", &wrong);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(3), "{stdout}");
    for needle in [
        "test `wrong on purpose` at 30m: FAILED",
        "metric `error-rate`: expected fail, got pass",
        "expected an estimate of 3 ± 0.1, got 0.99999",
        "reason: No evidence of harm by the final look",
        "canary: bad 360, count 36000",
        "baseline: bad 360, count 36000",
        "estimate (ratio): 0.99999",
        "evidence: harm",
        "0 passed, 1 failed",
    ] {
        assert!(stdout.contains(needle), "no {needle:?} in:\n{stdout}");
    }
    // The right expectation passes.
    let right = healthy_test("{outcome: pass, estimate: 1.0}");
    let (_, output) = run_test_file(dir.path(), "right.yaml", &right);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}");
}

// A test file with an unknown field is refused at its line and column, exit 3.
#[test]
fn unknown_fields_are_refused_with_their_place() {
    let dir = tempfile::tempdir().expect("temp dir");
    let typo =
        healthy_test("{outcome: pass}").replace("        final: true\n", "        finale: true\n");
    let (path, output) = run_test_file(dir.path(), "typo.yaml", &typo);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(3), "{stderr}");
    let place = format!("{}:29:9:", path.display());
    assert!(
        stderr.contains(&place) && stderr.contains("finale"),
        "{stderr}"
    );
}

// A rule set whose queries use PromQL the memory source does not evaluate is refused
// with the function's name and the test file's line, and never run.
#[test]
fn rules_outside_the_subset_are_refused_by_name() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        dir.path().join("odd.yaml"),
        "metrics:\n  - name: p99\n    kind: threshold\n    query: quantile_over_time(0.99, lat{service=\"$service\"}[5m])\n    max: 1\n",
    )
    .expect("write rules");
    let test = "rules: odd.yaml\ninterval: 15s\ncanary: {track: canary}\nbaseline: {track: baseline}\nvars: {service: s}\ntests:\n  - name: t\n    series: {}\n    evals:\n      - at: 1m\n";
    let (path, output) = run_test_file(dir.path(), "odd-test.yaml", test);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(3), "{stderr}");
    let place = format!("{}:1:8:", path.display());
    assert!(stderr.contains(&place), "{stderr}");
    assert!(
        stderr.contains("`quantile_over_time`") && stderr.contains("metric `p99`"),
        "{stderr}"
    );
}

// A rule test can expect a shadow outcome: with error-rate in shadow, a 3x error
// regression still promotes, error-rate fails as shadow, and an expectation that
// it is live fails with both words.
#[test]
fn rule_tests_expect_shadow_outcomes() {
    let dir = tempfile::tempdir().expect("temp dir");
    let http = std::fs::read_to_string(repo_root().join("rules/http.yaml")).expect("http.yaml");
    let shadowed = http.replacen(
        "    critical: true ",
        "    shadow: true\n    critical: true ",
        1,
    );
    assert_ne!(shadowed, http, "error-rate is marked shadow");
    std::fs::write(dir.path().join("trial.yaml"), shadowed).expect("write rules");
    let side = |errors: u32| {
        format!(
            "
        - series: http_requests_total{{service=\"$service\", code=\"200\"}}
          values: 0+{}x120
        - series: http_requests_total{{service=\"$service\", code=\"500\"}}
          values: 0+{errors}x120
        - series: http_request_duration_seconds_bucket{{service=\"$service\", le=\"0.25\"}}
          values: 0+285x120
        - series: http_request_duration_seconds_bucket{{service=\"$service\", le=\"+Inf\"}}
          values: 0+300x120",
            300 - errors
        )
    };
    let test = |shadow: bool| {
        format!(
            "rules: trial.yaml
interval: 15s
canary: {{track: canary}}
baseline: {{track: baseline}}
vars: {{service: checkout}}
tests:
  - name: shadow regression
    series:
      canary:{}
      baseline:{}
    evals:
      - at: 30m
        final: true
        verdict: promote
        metrics:
          error-rate: {{outcome: fail, shadow: {shadow}, reason: 'shadow: would have failed'}}
          latency: {{outcome: pass, shadow: false}}
",
            side(9),
            side(3)
        )
    };
    let (_, output) = run_test_file(dir.path(), "shadow-test.yaml", &test(true));
    assert_exit(&output, 0);
    let (_, output) = run_test_file(dir.path(), "live-test.yaml", &test(false));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(3), "{stdout}");
    assert!(
        stdout.contains("metric `error-rate`: expected a live metric, got a shadow one"),
        "{stdout}"
    );
}

// Rule tests run a latency distribution metric like any other: a canary whose body
// slowed under 250 ms fails it and a canary like its baseline passes it at the final
// look; the run says so (exit 0) only when both expectations hold.
#[test]
fn rule_tests_judge_latency_distributions() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        dir.path().join("latency.yaml"),
        "metrics:
  - name: latency
    kind: latency
    histogram: http_request_duration_seconds_bucket{service=\"$service\"}
    direction: increase
    tolerance: +10%
",
    )
    .expect("write the rules");
    let side = |per_bucket: [u32; 4]| {
        ["0.025", "0.05", "0.1", "+Inf"]
            .iter()
            .zip(per_bucket)
            .map(|(le, per_scrape)| {
                format!(
                    "
        - series: http_request_duration_seconds_bucket{{service=\"$service\", le=\"{le}\"}}
          values: 0+{per_scrape}x120"
                )
            })
            .collect::<String>()
    };
    let (usual, slower) = (side([60, 180, 280, 300]), side([20, 100, 240, 300]));
    let test = |name: &str, canary: &str, outcome: &str| {
        format!(
            "  - name: {name}
    series:
      canary:{canary}
      baseline:{usual}
    evals:
      - at: 30m
        final: true
        metrics:
          latency: {{outcome: {outcome}}}
"
        )
    };
    let text = format!(
        "rules: latency.yaml
interval: 15s
canary: {{track: canary}}
baseline: {{track: baseline}}
vars: {{service: checkout}}
tests:
{}{}",
        test("slower body", &slower, "fail"),
        test("like its baseline", &usual, "pass")
    );
    let (_, output) = run_test_file(dir.path(), "latency-test.yaml", &text);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("2 passed, 0 failed"), "{stdout}");
}
