//! The verdict report: HTML pages from the verdict log, their links, their
//! escaping, and a real headless Chromium loading them.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use canary_gate::http::{self, AppState};
use canary_gate::source::PrometheusSource;
use canary_gate::verdict::log::VerdictLog;
use serde_json::json;

use crate::support::prometheus::TestPrometheus;
use crate::support::store::{StoreKind, TestStore};
use crate::support::{MINUTES, TestApp, repo_root, request, spawn_app, two_services, window_start};

/// Longest a single Chromium run may take before the test gives up on it.
const CHROMIUM_DEADLINE: Duration = Duration::from_secs(180);

/// Asks for `search`'s verdict ten minutes in: its canary is rolled back.
async fn rollback_verdict(app: &TestApp, start: i64) -> serde_json::Value {
    let (status, verdict) = app
        .post_verdict(&request("search", start, start + 10 * 60, false))
        .await;
    assert_eq!(status, 200, "{verdict}");
    assert_eq!(verdict["verdict"], "rollback", "{verdict:#}");
    verdict
}

// A rollback verdict keeps its chart data and links its report; the report
// renders from the log alone after Prometheus is gone, naming the failed metric,
// its figure, both sides' curves, the evidence and the PromQL.
#[tokio::test]
async fn rollback_report_renders_after_prometheus_is_gone() {
    let start = window_start();
    let prometheus = TestPrometheus::start(&two_services(start));
    let app = spawn_app(&prometheus.url, &repo_root().join("rules")).await;
    let verdict = rollback_verdict(&app, start).await;
    drop(prometheus);

    let id = verdict["id"].as_str().expect("id");
    assert_eq!(
        verdict["report_url"],
        format!("{}/verdicts/{id}", app.url),
        "the link is built from the Host header"
    );
    let errors = &verdict["metrics"][0];
    let chart = &errors["chart"];
    // Ten minutes of 15 s steps, both sides, with the evidence path and its boundary.
    for field in [
        "canary_bad",
        "canary_total",
        "baseline_bad",
        "baseline_total",
        "harm",
        "safety",
    ] {
        assert_eq!(chart[field].as_array().map(Vec::len), Some(40), "{field}");
    }
    assert_eq!(chart["step_secs"], 15);
    assert_eq!(chart["threshold"].as_f64().map(f64::round), Some(200.0));
    assert!(chart["decided_at_step"].as_u64().is_some(), "{chart}");
    // The log line holds the chart but not the host-dependent link.
    let (_, logged) = app.get_json("/v1/verdicts").await;
    assert!(logged["verdicts"][0]["metrics"][0]["chart"]["harm"].is_array());
    let log_text: String = std::fs::read_dir(app.log_dir.path())
        .expect("log dir")
        .map(|e| std::fs::read_to_string(e.expect("entry").path()).expect("log file"))
        .collect();
    assert!(!log_text.contains("report_url"), "{log_text}");

    let (status, html) = app.get_text(&format!("/verdicts/{id}")).await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains(r#"class="verdict-word">rollback<"#), "{html}");
    assert!(
        html.contains(r##"<tr class="failing"><td><a href="#metric-error-rate">error-rate</a>"##)
    );
    let figure = errors["estimate"]["value"].as_f64().expect("estimate");
    assert!(
        html.contains(&format!("{} <small>", canary_gate::text::times(figure))),
        "the failing figure is the panel's headline"
    );
    assert!(html.contains(r#"<path class="canary" d="M"#));
    assert!(html.contains(r#"<path class="baseline" d="M"#));
    assert!(html.contains(r#"<path class="harm" d="M"#));
    assert!(html.contains(r#"class="boundary""#));
    assert!(html.contains(r#"class="mark""#), "the decision is marked");
    assert!(html.contains("http_requests_total{code=~&quot;5..&quot;,service=&quot;search&quot;,track=&quot;canary&quot;}"));
    app.stop().await;
}

// A verdict unknown to the log is a 404 page, not a crash or an empty page.
#[tokio::test]
async fn unknown_report_is_not_found() {
    let app = spawn_app("http://127.0.0.1:9", &repo_root().join("rules")).await;
    let (status, html) = app.get_text("/verdicts/no-such-id").await;
    assert_eq!(status, 404);
    assert!(html.contains("no verdict with id"), "{html}");
    app.stop().await;
}

// The history lists verdicts newest first and filters by rule set, deployment and verdict.
#[tokio::test]
async fn history_page_lists_and_filters() {
    let start = window_start();
    let prometheus = TestPrometheus::start(&two_services(start));
    let app = spawn_app(&prometheus.url, &repo_root().join("rules")).await;
    let rollback = rollback_verdict(&app, start).await;
    let (_, early) = app
        .post_verdict(&request("checkout", start, start + 5 * 60, false))
        .await;
    let link = |v: &serde_json::Value| format!("/verdicts/{}", v["id"].as_str().expect("id"));

    let (status, all) = app.get_text("/").await;
    assert_eq!(status, 200);
    let (newer, older) = (
        all.find(&link(&early)).expect("checkout listed"),
        all.find(&link(&rollback)).expect("search listed"),
    );
    assert!(newer < older, "newest first");

    let (_, rollbacks) = app
        .get_text("/?rules=http&deployment=&verdict=rollback")
        .await;
    assert!(rollbacks.contains(&link(&rollback)));
    assert!(!rollbacks.contains(&link(&early)));
    assert!(rollbacks.contains(r#"<option value="rollback" selected>"#));

    let (_, checkout) = app.get_text("/?deployment=checkout-1402&verdict=").await;
    assert!(checkout.contains(&link(&early)));
    assert!(!checkout.contains(&link(&rollback)));

    let (_, other_rules) = app.get_text("/?rules=grpc").await;
    assert!(other_rules.contains("No verdicts match."));
    app.stop().await;
}

// A hostile label value, filter value and verdict id never reach a page unescaped.
#[tokio::test]
async fn user_strings_are_escaped_in_pages() {
    let hostile = r#"<script>alert(1)</script>"'&"#;
    let start = window_start();
    let prometheus = TestPrometheus::start(&two_services(start));
    let app = spawn_app(&prometheus.url, &repo_root().join("rules")).await;
    let mut body = request("search", start, start + 10 * 60, false);
    body["canary"] = json!({ "track": hostile });
    body["vars"] = json!({ "service": hostile });
    let (status, verdict) = app.post_verdict(&body).await;
    assert_eq!(status, 200, "{verdict}");
    let id = verdict["id"].as_str().expect("id");

    let (_, report) = app.get_text(&format!("/verdicts/{id}")).await;
    let (_, history) = app
        .get_text("/?rules=%3Cscript%3Ealert(1)%3C%2Fscript%3E%22%27%26&deployment=%22%3E%3Cb%3E")
        .await;
    let (status, missing) = app
        .get_text("/verdicts/%3Cscript%3Ealert(1)%3C%2Fscript%3E%22%27%26")
        .await;
    assert_eq!(status, 404, "{missing}");
    for html in [&report, &history, &missing] {
        assert!(!html.contains(hostile), "{html}");
        assert!(!html.contains("<script"), "{html}");
        assert!(!html.contains("\"><b>"), "{html}");
    }
    assert!(report.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    // Attribute values are always double-quoted, so `'` needs no escaping there.
    assert!(history.contains(
        r#"<input name="rules" value="&lt;script&gt;alert(1)&lt;/script&gt;&quot;'&amp;">"#
    ));
    assert!(history.contains(r#"<input name="deployment" value="&quot;&gt;&lt;b&gt;">"#));
    assert!(missing.contains("&lt;script&gt;alert(1)&lt;/script&gt;&quot;'&amp;"));
    app.stop().await;
}

// With --public-url the link uses it (whatever Host the request named), and
// `canary-gate wait`'s client keeps it.
#[tokio::test]
async fn public_url_builds_the_report_link() {
    // Nothing listens on the discard port: every metric errors, the verdict still comes.
    let source =
        PrometheusSource::new("http://127.0.0.1:9", Duration::from_secs(5)).expect("usable URL");
    let log_dir = tempfile::tempdir().expect("temp dir");
    let log = VerdictLog::open(log_dir.path()).expect("log dir");
    let state = Arc::new(
        AppState::new(source, repo_root().join("rules"), log)
            .with_public_url(Some("https://gate.example.test/".into())),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind port 0");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(http::run(listener, state, async {
        let _ = rx.await;
    }));
    let start = window_start();
    let answer: serde_json::Value = reqwest::Client::new()
        .post(format!("{url}/v1/verdicts"))
        .json(&request("search", start, start + 600, false))
        .send()
        .await
        .expect("the server answers")
        .json()
        .await
        .expect("JSON");
    let id = answer["id"].as_str().expect("id");
    assert_eq!(
        answer["report_url"],
        format!("https://gate.example.test/verdicts/{id}")
    );
    let _ = tx.send(());
    task.await.expect("server task").expect("clean stop");
}

// `canary-gate wait` ends its text output with the report's link.
#[tokio::test]
async fn wait_prints_the_report_link() {
    let start = window_start();
    let prometheus = TestPrometheus::start(&two_services(start));
    let app = spawn_app(&prometheus.url, &repo_root().join("rules")).await;
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_canary-gate"))
        .args(["wait", "--server", &app.url, "--rules", "http"])
        .args(["--deployment", "search-1402", "--canary", "track=canary"])
        .args(["--baseline", "track=baseline", "--var", "service=search"])
        .args([
            "--start",
            &start.to_string(),
            "--timeout",
            "5m",
            "--every",
            "1s",
        ])
        .args(["--output", "text"])
        .output()
        .await
        .expect("run canary-gate wait");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    let (_, history) = app.get_json("/v1/verdicts").await;
    let id = history["verdicts"][0]["id"].as_str().expect("id");
    assert!(
        stdout.contains(&format!("report:  {}/verdicts/{id}", app.url)),
        "{stdout}"
    );
    app.stop().await;
}

/// Chromium, if installed: Debian's package puts it here.
const CHROMIUM: &str = "/usr/bin/chromium";

/// Where the browser test leaves its screenshots.
fn output_dir() -> PathBuf {
    let dir = repo_root().join("target/test-output");
    std::fs::create_dir_all(&dir).expect("create target/test-output");
    dir
}

/// Runs headless Chromium on `url` with `extra` flags and a fresh profile;
/// returns its stdout and stderr.
async fn chromium(url: &str, extra: &[String]) -> (String, String) {
    let profile = tempfile::tempdir().expect("profile dir");
    let mut command = tokio::process::Command::new(CHROMIUM);
    command
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(extra)
        .arg(url)
        .kill_on_drop(true);
    let output = tokio::time::timeout(CHROMIUM_DEADLINE, command.output())
        .await
        .expect("Chromium finishes")
        .expect("Chromium runs");
    assert!(
        output.status.success(),
        "Chromium failed on {url}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// The page's console messages among Chromium's log lines. Chromium logs
/// every console message, errors included, as `INFO:CONSOLE`; the pages run no
/// script, so any console message at all is an error.
fn console_errors(stderr: &str) -> Vec<&str> {
    stderr.lines().filter(|l| l.contains(":CONSOLE")).collect()
}

// Console errors are recognised in the form Chromium writes them to stderr.
#[test]
fn console_errors_are_recognised() {
    let stderr = concat!(
        "[1:1:1126/164513.300882:ERROR:dbus/bus.cc:405] Failed to connect to the bus\n",
        "[2:2:1126/164516.881967:INFO:CONSOLE:1] \"Uncaught ReferenceError: f is not defined\", source: x (1)\n",
    );
    assert_eq!(console_errors(stderr).len(), 1);
}

/// Loads `url` in Chromium: checks the rendered DOM holds `min_charts` charts
/// and the console no errors, saves a desktop and a phone-wide screenshot, and
/// returns the rendered DOM.
async fn load_in_browser(url: &str, name: &str, min_charts: usize) -> String {
    let (dom, stderr) = chromium(url, &["--dump-dom".to_string()]).await;
    assert!(dom.contains("<main>"), "no page rendered for {url}:\n{dom}");
    let charts = dom.matches(r#"<svg class="chart""#).count();
    assert!(charts >= min_charts, "{charts} charts in {url}:\n{dom}");
    assert_eq!(console_errors(&stderr), Vec::<&str>::new(), "{stderr}");
    for (suffix, size) in [("desktop", "1280,2000"), ("phone", "375,2400")] {
        let shot = output_dir().join(format!("{name}-{suffix}.png"));
        let _ = std::fs::remove_file(&shot);
        let (_, stderr) = chromium(
            url,
            &[
                format!("--screenshot={}", shot.display()),
                format!("--window-size={size}"),
                "--hide-scrollbars".to_string(),
            ],
        )
        .await;
        assert_eq!(console_errors(&stderr), Vec::<&str>::new(), "{stderr}");
        let written = std::fs::metadata(&shot).map(|m| m.len()).unwrap_or(0);
        assert!(written > 0, "no screenshot at {}", shot.display());
        println!("screenshot: {}", shot.display());
    }
    dom
}

/// Whether the browser tests must skip: Chromium is missing outside CI (in
/// CI a missing Chromium fails).
fn chromium_missing() -> bool {
    if Path::new(CHROMIUM).exists() {
        return false;
    }
    let in_ci = std::env::var("CI").is_ok_and(|v| v == "true");
    assert!(!in_ci, "{CHROMIUM} is missing; .ci/run installs it");
    println!("SKIPPED browser test: {CHROMIUM} is not installed (apt-get install chromium)");
    true
}

// A real browser loads the history and a rollback report from a running server:
// the charts render, the console stays clean, and screenshots are kept.
// Skips only when Chromium is missing outside CI; in CI a missing Chromium fails.
#[tokio::test]
async fn browser_renders_history_and_rollback_report() {
    if chromium_missing() {
        return;
    }
    let start = window_start();
    let prometheus = TestPrometheus::start(&two_services(start));
    let app = spawn_app(&prometheus.url, &repo_root().join("rules")).await;
    let verdict = rollback_verdict(&app, start).await;
    let id = verdict["id"].as_str().expect("id");
    let report = format!("{}/verdicts/{id}", app.url);

    let (status, healthy) = app
        .post_verdict(&request("checkout", start, start + MINUTES * 60, true))
        .await;
    assert_eq!(healthy["verdict"], "promote", "{status} {healthy:#}");
    let promoted = format!(
        "{}/verdicts/{}",
        app.url,
        healthy["id"].as_str().expect("id")
    );

    load_in_browser(&format!("{}/", app.url), "history", 0).await;
    // Two metrics, each with an interval strip, both sides' rates and the evidence.
    load_in_browser(&report, "rollback-report", 6).await;
    load_in_browser(&promoted, "promote-report", 6).await;
    app.stop().await;
}

// A real browser draws a latency distribution from a real Prometheus's
// histogram, beside its 250 ms threshold form (whose ratio is undefined with no
// slow request on either side: the report must still read it back from the
// log): for a canary with a slower body, both cumulative curves, the six
// percentile marks, their table and the shaded region where the canary is
// slower; for a canary like its baseline the same chart with nothing shaded.
// The threshold form's panel draws the same figure and table from the same
// buckets. Screenshots of both are kept.
#[tokio::test]
async fn browser_draws_latency_distributions() {
    if chromium_missing() {
        return;
    }
    let start = window_start();
    let store = TestStore::start_with_openmetrics(
        StoreKind::Prometheus,
        crate::distribution::histograms(start).as_bytes(),
    );
    let rules = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        rules.path().join("latency.yaml"),
        crate::distribution::RULES,
    )
    .expect("write rules");
    let app = spawn_app(store.url(), rules.path()).await;
    let report = |service: &'static str, expected: &'static str| {
        let app = &app;
        async move {
            let ask = json!({
                "rules": "latency", "deployment": format!("{service}-1"),
                "canary": {"track": "canary"}, "baseline": {"track": "baseline"},
                "start": start, "end": start + MINUTES * 60, "vars": {"service": service},
                "final": true,
            });
            let (status, verdict) = app.post_verdict(&ask).await;
            assert_eq!(verdict["verdict"], expected, "{status} {verdict:#}");
            let chart = &verdict["metrics"][0]["chart"];
            assert_eq!(
                chart["bucket_edges_seconds"],
                json!([0.025, 0.05, 0.1, 0.25]),
                "{verdict:#}"
            );
            format!(
                "{}/verdicts/{}",
                app.url,
                verdict["id"].as_str().expect("id")
            )
        }
    };
    let slower = report("slower", "rollback").await;
    let steady = report("steady", "promote").await;

    // The distribution, the share above the edge that moved and the evidence,
    // and the threshold form's strip, distribution, rates and evidence.
    let dom = load_in_browser(&slower, "distribution-report", 7).await;
    for name in ["latency", "slow-requests"] {
        let panel = metric_panel(&dom, name);
        assert!(
            panel.contains(r#"<figure class="distribution">"#),
            "{name}:\n{panel}"
        );
        for curve in [
            "canary cdf",
            "baseline cdf",
            "canary beyond",
            "baseline beyond",
        ] {
            assert!(
                panel.contains(&format!(r#"<path class="{curve}""#)),
                "{name} {curve}:\n{panel}"
            );
        }
        for side in ["canary", "baseline"] {
            let dot = format!(r#"<circle class="pct {side}""#);
            assert_eq!(panel.matches(&dot).count(), 3, "{name} {side}:\n{panel}");
        }
        assert!(panel.contains(r#"<path class="worse""#), "{name}:\n{panel}");
        assert!(
            panel.contains(r#"<table class="percentiles">"#),
            "{name}:\n{panel}"
        );
        // Each side's three percentiles carry their interval, and the caption its level.
        assert_eq!(
            panel.matches(r#"<small class="interval">"#).count(),
            6,
            "{name}:\n{panel}"
        );
        assert!(
            panel.contains("at every look, with 99.5% confidence)"),
            "{name}:\n{panel}"
        );
    }
    assert!(
        metric_panel(&dom, "latency").contains("Share of requests slower than 100 ms"),
        "{dom}"
    );
    assert!(
        metric_panel(&dom, "slow-requests").contains("Share of slow requests"),
        "{dom}"
    );

    let dom = load_in_browser(&steady, "distribution-steady-report", 7).await;
    for name in ["latency", "slow-requests"] {
        let panel = metric_panel(&dom, name);
        assert!(
            panel.contains(r#"<path class="canary cdf""#),
            "{name}:\n{panel}"
        );
        assert_eq!(
            panel.matches(r#"<circle class="pct "#).count(),
            6,
            "{name}:\n{panel}"
        );
    }
    assert!(!dom.contains(r#"class="worse""#), "{dom}");
    app.stop().await;
}

/// The panel of metric `name` in a report's rendered DOM: from its section
/// to the next section.
fn metric_panel<'a>(dom: &'a str, name: &str) -> &'a str {
    let start = dom
        .find(&format!(r#"id="metric-{name}""#))
        .unwrap_or_else(|| panic!("no panel for {name}:\n{dom}"));
    let rest = &dom[start..];
    rest.find("<section").map_or(rest, |end| &rest[..end])
}
