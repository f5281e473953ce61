//! Test support: a real Prometheus (or VictoriaMetrics) with backfilled data, and the real server on port 0.

pub mod binary;
pub mod ca;
pub mod fault;
pub mod prometheus;
/// The traffic generator of `canary-gate simulate`, the same file the binary builds.
// Tests build the generator, not its command-line parsing.
#[allow(dead_code)]
#[path = "../../../src/bin/canary-gate/simulate.rs"]
pub mod simulate;
pub mod store;
pub mod victoria;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use canary_gate::http::{self, AppState};
use canary_gate::source::{Coalescing, MetricSource, PrometheusSource, RetryPolicy, Retrying};
use canary_gate::verdict::log::VerdictLog;
use serde_json::json;
use simulate::{SideTraffic, Simulation};
use time::OffsetDateTime;
use tokio::sync::oneshot;

/// The repository's root folder.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A running canary-gate server and what it writes to.
pub struct TestApp {
    pub url: String,
    pub log_dir: tempfile::TempDir,
    pub client: reqwest::Client,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl TestApp {
    /// POSTs `body` to the verdict endpoint and returns the status and JSON answer.
    pub async fn post_verdict(&self, body: &serde_json::Value) -> (u16, serde_json::Value) {
        let response = self
            .client
            .post(format!("{}/v1/verdicts", self.url))
            .json(body)
            .send()
            .await
            .expect("the server answers");
        let status = response.status().as_u16();
        (status, response.json().await.expect("the answer is JSON"))
    }

    /// GETs `path` and returns the status and the body as text.
    pub async fn get_text(&self, path: &str) -> (u16, String) {
        let response = self
            .client
            .get(format!("{}{path}", self.url))
            .send()
            .await
            .expect("the server answers");
        let status = response.status().as_u16();
        (status, response.text().await.expect("a text body"))
    }

    /// GETs `path` and returns the status and JSON answer.
    pub async fn get_json(&self, path: &str) -> (u16, serde_json::Value) {
        let (status, text) = self.get_text(path).await;
        let json = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("the answer to {path} is not JSON ({e}): {text}"));
        (status, json)
    }

    /// Tells the server to stop the way SIGTERM would, without waiting for it.
    pub fn begin_shutdown(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }

    /// Stops the server the way SIGTERM would and waits for it to finish.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            task.await
                .expect("server task")
                .expect("server ran cleanly");
        }
    }
}

/// Starts canary-gate on a free loopback port against `prometheus_url` with the rules in `rules_dir`.
pub async fn spawn_app(prometheus_url: &str, rules_dir: &Path) -> TestApp {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind port 0");
    spawn_app_on(listener, prometheus_url, rules_dir).await
}

/// Starts canary-gate on `listener` (for tests that need a known port).
pub async fn spawn_app_on(
    listener: tokio::net::TcpListener,
    prometheus_url: &str,
    rules_dir: &Path,
) -> TestApp {
    let (state, log_dir) = app_state(prometheus_url, rules_dir);
    serve_state(listener, Arc::new(state), log_dir)
}

/// The state [`spawn_app`] serves, with a fresh verdict log folder, for tests that adjust it.
pub fn app_state(prometheus_url: &str, rules_dir: &Path) -> (TestState, tempfile::TempDir) {
    let log_dir = tempfile::tempdir().expect("temp dir");
    let log = VerdictLog::open(log_dir.path()).expect("log dir");
    let state = AppState::new(
        service_source(prometheus_url, Duration::from_secs(10)),
        rules_dir.to_path_buf(),
        log,
    );
    (state, log_dir)
}

/// The server state of the test apps: the source stack `canary-gate serve` uses.
pub type TestState = AppState<Coalescing<Retrying<PrometheusSource>>>;

/// The source stack `canary-gate serve` uses: Prometheus at `url` with the
/// client deadline `timeout`, retried after transient faults, coalesced.
pub fn service_source(url: &str, timeout: Duration) -> Coalescing<Retrying<PrometheusSource>> {
    let source = PrometheusSource::new(url, timeout).expect("usable URL");
    Coalescing::new(Retrying::new(source, RetryPolicy::default()))
}

/// Starts the real server on a free loopback port with `state`, whose log is in `log_dir`.
pub async fn spawn_state<S: MetricSource>(
    state: Arc<AppState<S>>,
    log_dir: tempfile::TempDir,
) -> TestApp {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind port 0");
    serve_state(listener, state, log_dir)
}

/// Serves `state` on `listener` in a task.
fn serve_state<S: MetricSource>(
    listener: tokio::net::TcpListener,
    state: Arc<AppState<S>>,
    log_dir: tempfile::TempDir,
) -> TestApp {
    let url = format!("http://{}", listener.local_addr().expect("address"));
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(http::run(listener, state, async {
        let _ = rx.await;
    }));
    TestApp {
        url,
        log_dir,
        client: reqwest::Client::new(),
        shutdown: Some(tx),
        task: Some(task),
    }
}

/// Minutes of simulated traffic.
pub const MINUTES: i64 = 30;

/// Two services, each with a baseline and a canary: `checkout`'s canary is
/// healthy, `search`'s canary fails three times as often as its baseline.
pub fn two_services(start_secs: i64) -> Simulation {
    let side = |service: &str, track: &str, errors: f64| {
        let mut side = SideTraffic::new(&[("service", service), ("track", track)]);
        side.error_ratio = errors;
        side
    };
    Simulation {
        start_secs,
        duration_secs: MINUTES * 60,
        scrape_interval_secs: 15,
        seed: 42,
        sides: vec![
            side("checkout", "baseline", 0.01),
            side("checkout", "canary", 0.01),
            side("search", "baseline", 0.01),
            side("search", "canary", 0.03),
        ],
    }
}

/// A start time that leaves the whole simulated window in the past.
/// Appends one pod's `http_request_duration_seconds` histogram in
/// OpenMetrics text: a sample every 15 s for [`MINUTES`] from `start`, with
/// `buckets` as `(le, requests per scrape at or below it)`; `_count` and
/// `_sum` grow by `per_scrape` requests a scrape.
pub fn histogram_openmetrics(
    text: &mut String,
    labels: &str,
    buckets: &[(&str, i64)],
    per_scrape: i64,
    start: i64,
) {
    use std::fmt::Write as _;
    for scrape in 0..=MINUTES * 4 {
        let time = start + scrape * 15;
        for (le, at_or_below) in buckets {
            writeln!(
                text,
                "http_request_duration_seconds_bucket{{{labels},le=\"{le}\"}} {} {time}",
                at_or_below * scrape
            )
            .expect("write to a string");
        }
        let count = per_scrape * scrape;
        for suffix in ["count", "sum"] {
            writeln!(
                text,
                "http_request_duration_seconds_{suffix}{{{labels}}} {count} {time}"
            )
            .expect("write to a string");
        }
    }
}

pub fn window_start() -> i64 {
    let now = OffsetDateTime::now_utc().unix_timestamp();
    now - now % 60 - (MINUTES + 5) * 60
}

/// The metric called `name` in a verdict's JSON.
pub fn metric<'a>(verdict: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    verdict["metrics"]
        .as_array()
        .expect("metrics")
        .iter()
        .find(|m| m["name"] == name)
        .unwrap_or_else(|| panic!("no metric `{name}` in {verdict:#}"))
}

/// A verdict request for `service`'s canary over `start..end`.
pub fn request(service: &str, start: i64, end: i64, is_final: bool) -> serde_json::Value {
    json!({
        "rules": "http",
        "deployment": format!("{service}-1402"),
        "canary": {"track": "canary"},
        "baseline": {"track": "baseline"},
        "start": start,
        "end": end,
        "vars": {"service": service},
        "final": is_final,
    })
}
