//! Test support: a real Prometheus with backfilled data, and the real server on port 0.

pub mod prometheus;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use canary_gate::log::VerdictLog;
use canary_gate::server::{self, AppState};
use canary_gate::source::PrometheusSource;
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

    /// GETs `path` and returns the status and JSON answer.
    pub async fn get_json(&self, path: &str) -> (u16, serde_json::Value) {
        let response = self
            .client
            .get(format!("{}{path}", self.url))
            .send()
            .await
            .expect("the server answers");
        let status = response.status().as_u16();
        (status, response.json().await.expect("the answer is JSON"))
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
    let source =
        PrometheusSource::new(prometheus_url, Duration::from_secs(10)).expect("usable URL");
    let log_dir = tempfile::tempdir().expect("temp dir");
    let log = VerdictLog::open(log_dir.path()).expect("log dir");
    let state = Arc::new(AppState::new(source, rules_dir.to_path_buf(), log));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind port 0");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(server::run(listener, state, async {
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
