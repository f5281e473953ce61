//! canary-gate's own health: `/metrics` counts what the server did, a real
//! Prometheus scrapes it, the shipped alerting rules pass `promtool`, and the
//! logs carry the verdict's span and no colour codes off a terminal.

use std::sync::Arc;
use std::time::{Duration, Instant};

use canary_gate::http::AppState;
use canary_gate::http::admission::VerdictLimits;
use canary_gate::http::auth::{ALWAYS_OPEN, AccessPolicy, Tokens};
use canary_gate::verdict::log::VerdictLog;
use serde_json::Value;

use crate::support::binary::ServeProcess;
use crate::support::fault::{Fault, FaultyPrometheus, svc_app, svc_final_look};
use crate::support::prometheus::TestPrometheus;
use crate::support::{
    MINUTES, TestApp, repo_root, request, service_source, spawn_app_on, spawn_state, two_services,
    window_start,
};

/// Hang guard for Prometheus to scrape what was just done (it scrapes every second).
const SCRAPE_WAIT: Duration = Duration::from_secs(60);

/// The value of the sample `series` (name and labels, as written) in the server's `/metrics`.
async fn sample(app: &TestApp, series: &str) -> Option<f64> {
    let (status, text) = app.get_text("/metrics").await;
    assert_eq!(status, 200, "{text}");
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .map(|value| value.parse().expect("a number"))
}

/// Fails unless each `(series, value)` is in the server's `/metrics` with that value.
async fn assert_samples(app: &TestApp, expected: &[(&str, f64)]) {
    for (series, value) in expected {
        assert_eq!(sample(app, series).await, Some(*value), "{series}");
    }
}

// Verdicts, metric outcomes, durations and store queries are counted under their rule set.
#[tokio::test]
async fn metrics_count_verdicts_and_their_queries() {
    let double = FaultyPrometheus::start(vec![Fault::Healthy]).await;
    let (app, _) = svc_app(
        &double.url,
        Duration::from_secs(5),
        VerdictLimits::default(),
    )
    .await;
    let (status, verdict) = app.post_verdict(&svc_final_look()).await;
    assert_eq!(status, 200, "{verdict:#}");
    assert_eq!(verdict["verdict"], "promote", "{verdict:#}");
    let counted = [
        (
            "canary_gate_verdicts_total{rules=\"svc\",verdict=\"promote\"}",
            1.0,
        ),
        (
            "canary_gate_metric_outcomes_total{rules=\"svc\",metric=\"errors\",outcome=\"pass\",shadow=\"false\"}",
            1.0,
        ),
        (
            "canary_gate_verdict_duration_seconds_count{rules=\"svc\"}",
            1.0,
        ),
        // Two counters on two sides: four distinct queries.
        (
            "canary_gate_store_query_duration_seconds_count{source=\"default\"}",
            4.0,
        ),
        (
            "canary_gate_store_query_errors_total{source=\"default\",kind=\"unreachable\"}",
            0.0,
        ),
        ("canary_gate_verdicts_in_flight", 0.0),
        ("canary_gate_rules_last_reload_successful", 1.0),
    ];
    assert_samples(&app, &counted).await;
    let (_, text) = app.get_text("/metrics").await;
    let version = format!(
        "canary_gate_build_info{{version=\"{}\"}} 1",
        env!("CARGO_PKG_VERSION")
    );
    assert!(text.contains(&version), "{text}");
    app.stop().await;
}

// A query unanswered at the verdict deadline is counted as a store error of kind `deadline`.
#[tokio::test]
async fn deadline_misses_are_counted_by_kind() {
    let double = FaultyPrometheus::start(vec![Fault::Hang]).await;
    let (state, log_dir) = crate::support::fault::svc_state(&double.url, Duration::from_secs(30));
    let app = spawn_state(
        Arc::new(state.with_verdict_timeout(Duration::from_millis(300))),
        log_dir,
    )
    .await;
    let (status, verdict) = app.post_verdict(&svc_final_look()).await;
    assert_eq!(status, 200, "{verdict:#}");
    // The two canary queries hang; the baseline's two are answered in time.
    assert_samples(
        &app,
        &[
            (
                "canary_gate_store_query_errors_total{source=\"default\",kind=\"deadline\"}",
                2.0,
            ),
            (
                "canary_gate_metric_outcomes_total{rules=\"svc\",metric=\"errors\",outcome=\"error\",shadow=\"false\"}",
                1.0,
            ),
        ],
    )
    .await;
    app.stop().await;
}

// A request refused with 503 past the queue is counted, and in-flight verdicts are shown.
#[tokio::test]
async fn refusals_and_verdicts_in_flight_are_counted() {
    let double = FaultyPrometheus::start(vec![Fault::Healthy]).await;
    let (app, state) = svc_app(
        &double.url,
        Duration::from_secs(5),
        VerdictLimits::new(1, 0),
    )
    .await;
    double.hold();
    let first = {
        let (client, url) = (app.client.clone(), format!("{}/v1/verdicts", app.url));
        tokio::spawn(async move { client.post(url).json(&svc_final_look()).send().await })
    };
    double.wait_arrivals(1).await;
    let (status, answer) = app.post_verdict(&svc_final_look()).await;
    assert_eq!(status, 503, "{answer:#}");
    assert_samples(
        &app,
        &[
            ("canary_gate_verdicts_refused_total", 1.0),
            ("canary_gate_verdicts_in_flight", 1.0),
            ("canary_gate_verdicts_queued", 0.0),
        ],
    )
    .await;
    double.release();
    let answered = first.await.expect("task").expect("answer");
    assert_eq!(answered.status().as_u16(), 200);
    assert_eq!(state.limits.running(), 0);
    app.stop().await;
}

// Reloads are counted whatever starts them, and a reload that refuses a rule file is a failure.
#[tokio::test]
async fn rule_reloads_and_their_failures_are_counted() {
    let rules_dir = tempfile::tempdir().expect("temp dir");
    std::fs::copy(
        repo_root().join("tests/fixtures/faults/svc.yaml"),
        rules_dir.path().join("svc.yaml"),
    )
    .expect("copy the rules");
    let log_dir = tempfile::tempdir().expect("temp dir");
    let log = VerdictLog::open(log_dir.path()).expect("log dir");
    let state = AppState::new(
        service_source("http://127.0.0.1:9", Duration::from_secs(1)),
        rules_dir.path().to_path_buf(),
        log,
    );
    let app = spawn_state(Arc::new(state), log_dir).await;
    let reload = || async {
        let response = app
            .client
            .post(format!("{}/v1/rules/reload", app.url))
            .send()
            .await
            .expect("answer");
        assert_eq!(response.status().as_u16(), 200);
    };
    reload().await;
    assert_samples(
        &app,
        &[
            ("canary_gate_rule_reloads_total", 1.0),
            ("canary_gate_rule_reload_failures_total", 0.0),
        ],
    )
    .await;
    std::fs::write(rules_dir.path().join("broken.yaml"), "metrics: [\n").expect("write");
    reload().await;
    assert_samples(
        &app,
        &[
            ("canary_gate_rule_reloads_total", 2.0),
            ("canary_gate_rule_reload_failures_total", 1.0),
            ("canary_gate_rules_last_reload_successful", 0.0),
        ],
    )
    .await;
    app.stop().await;
}

// /metrics stays open with --protect-reads, like the probes: Prometheus scrapes without a token.
#[tokio::test]
async fn metrics_stay_open_when_reads_are_protected() {
    assert!(ALWAYS_OPEN.contains(&"/metrics"));
    let token = "a-token-of-enough-length-0123456789";
    let (state, log_dir) =
        crate::support::app_state("http://127.0.0.1:9", &repo_root().join("rules"));
    let access = AccessPolicy {
        tokens: Tokens::from_sources(None, Some(token)).expect("tokens"),
        protect_reads: true,
    };
    let app = spawn_state(Arc::new(state.with_access(access)), log_dir).await;
    let (status, text) = app.get_text("/metrics").await;
    assert_eq!(status, 200, "{text}");
    assert!(
        text.contains("canary_gate_verdicts_refused_total 0"),
        "{text}"
    );
    let (status, _) = app.get_text("/v1/rules").await;
    assert_eq!(status, 401);
    app.stop().await;
}

/// Asks Prometheus at `url` for the instant value of `promql`.
async fn prometheus_query(url: &str, promql: &str) -> Value {
    reqwest::Client::new()
        .get(format!("{url}/api/v1/query"))
        .query(&[("query", promql)])
        .send()
        .await
        .expect("Prometheus answers")
        .json()
        .await
        .expect("JSON")
}

// A real Prometheus scrapes /metrics, and a query of canary_gate_verdicts_total returns the
// verdicts just made: one promote (checkout), one rollback (search).
#[tokio::test]
async fn real_prometheus_scrapes_the_verdicts_just_made() {
    let start = window_start();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind port 0");
    let target = listener.local_addr().expect("address").to_string();
    let prometheus = TestPrometheus::start_scraping(&two_services(start), &target);
    let app = spawn_app_on(listener, &prometheus.url, &repo_root().join("rules")).await;
    for (service, expected) in [("checkout", "promote"), ("search", "rollback")] {
        let (status, verdict) = app
            .post_verdict(&request(service, start, start + MINUTES * 60, true))
            .await;
        assert_eq!(status, 200, "{verdict:#}");
        assert_eq!(verdict["verdict"], expected, "{verdict:#}");
    }
    let waited = Instant::now();
    let found = loop {
        let answer = prometheus_query(
            &prometheus.url,
            "sum by (rules, verdict) (canary_gate_verdicts_total{job=\"canary-gate\"})",
        )
        .await;
        let mut found: Vec<(String, String, String)> = answer["data"]["result"]
            .as_array()
            .expect("a vector")
            .iter()
            .map(|s| {
                let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
                (
                    text(&s["metric"]["rules"]),
                    text(&s["metric"]["verdict"]),
                    text(&s["value"][1]),
                )
            })
            .collect();
        found.sort();
        if found.len() == 2 || waited.elapsed() > SCRAPE_WAIT {
            break found;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let expected = |verdict: &str| ("http".to_string(), verdict.to_string(), "1".to_string());
    assert_eq!(found, [expected("promote"), expected("rollback")]);
    app.stop().await;
}

// The shipped alerting rules are valid Prometheus rules and fire on the series canary-gate
// serves, as their unit tests say (CI runs the same two checks).
#[test]
fn shipped_alerting_rules_pass_promtool() {
    let deploy = repo_root().join("deploy/prometheus");
    for (command, file) in [
        ("check", "canary-gate-alerts.yaml"),
        ("test", "canary-gate-alerts.test.yaml"),
    ] {
        let output = std::process::Command::new(TestPrometheus::binary_dir().join("promtool"))
            .args([command, "rules"])
            .arg(deploy.join(file))
            .output()
            .expect("run promtool");
        assert!(
            output.status.success(),
            "promtool {command} rules {file}: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

// The server's text logs, written to a file (not a terminal), carry no ANSI colour codes,
// and a verdict's lines sit in its `verdict` span with its id, deployment and rule set.
#[tokio::test]
async fn logs_to_a_file_have_no_colour_codes_and_carry_the_verdict_span() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port");
    let server = ServeProcess::start(
        &format!("http://{closed}"),
        &repo_root().join("tests/fixtures/faults"),
        &["--query-timeout", "1s"],
        &[],
    );
    let answer = reqwest::Client::new()
        .post(format!("{}/v1/verdicts", server.url))
        .json(&svc_final_look())
        .send()
        .await
        .expect("answer");
    assert_eq!(answer.status().as_u16(), 200);
    let logged = server.stderr();
    assert!(!logged.contains("\x1b["), "colour codes in: {logged}");
    assert!(logged.contains("verdict{id="), "{logged}");
    assert!(logged.contains("deployment=svc-1"), "{logged}");
    assert!(logged.contains("rules=svc"), "{logged}");
    assert!(logged.contains(":query{kind="), "{logged}");
}
