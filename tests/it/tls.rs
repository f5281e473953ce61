//! HTTPS to the metric store: the real Prometheus serving TLS with a
//! certificate that a private CA, made here, signed for 127.0.0.1.

use std::sync::Arc;
use std::time::{Duration, Instant};

use canary_gate::http::AppState;
use canary_gate::source::{MetricSource, PrometheusSource};
use canary_gate::verdict::log::VerdictLog;
use serde_json::Value;

use crate::support::ca::{PrivateCa, private_ca};
use crate::support::prometheus::{READY_TIMEOUT, TestPrometheus};
use crate::support::{
    MINUTES, TestApp, repo_root, request, spawn_state, two_services, window_start,
};

/// Client-side deadline of each query in these tests.
const QUERY_TIMEOUT: Duration = Duration::from_secs(10);

/// Prometheus over https with [`two_services`]' data, once it is ready, and
/// the CA that signed its certificate.
async fn https_prometheus(start: i64) -> (TestPrometheus, PrivateCa) {
    let ca = private_ca();
    let prometheus = TestPrometheus::start_https(
        &two_services(start),
        &ca.server_cert_pem,
        &ca.server_key_pem,
    );
    assert!(prometheus.url.starts_with("https://"), "{}", prometheus.url);
    let trusting = trusting_source(&prometheus, &ca);
    let deadline = Instant::now() + READY_TIMEOUT;
    while let Err(error) = trusting.ready().await {
        assert!(
            Instant::now() < deadline,
            "Prometheus over https not ready within {READY_TIMEOUT:?} ({error}):\n{}",
            prometheus.server_log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    (prometheus, ca)
}

/// A source for `prometheus` that trusts `ca`.
fn trusting_source(prometheus: &TestPrometheus, ca: &PrivateCa) -> PrometheusSource {
    PrometheusSource::with_root_certificates(&prometheus.url, QUERY_TIMEOUT, ca.ca_pem.as_bytes())
        .expect("usable URL and CA")
}

/// The real server, with the `http` rules, asking Prometheus through `source`.
async fn app_with(source: PrometheusSource) -> TestApp {
    let log_dir = tempfile::tempdir().expect("temp dir");
    let log = VerdictLog::open(log_dir.path()).expect("log dir");
    let state = AppState::new(source, repo_root().join("rules"), log);
    spawn_state(Arc::new(state), log_dir).await
}

// With the private CA trusted, a healthy canary is promoted over https as over http.
#[tokio::test]
async fn a_store_behind_a_trusted_private_ca_gives_a_verdict() {
    let start = window_start();
    let (prometheus, ca) = https_prometheus(start).await;
    let app = app_with(trusting_source(&prometheus, &ca)).await;

    let (status, verdict) = app
        .post_verdict(&request("checkout", start, start + MINUTES * 60, true))
        .await;
    assert_eq!(status, 200, "{verdict}");
    assert_eq!(verdict["verdict"], "promote", "{verdict:#}");
    app.stop().await;
}

// A certificate from a CA nobody trusts fails every query with an error that
// names the certificate, and the final look does not promote.
#[tokio::test]
async fn an_untrusted_certificate_is_an_error_not_a_promote() {
    let start = window_start();
    let (prometheus, _ca) = https_prometheus(start).await;
    let system_trust_only =
        PrometheusSource::new(&prometheus.url, QUERY_TIMEOUT).expect("usable URL");
    let app = app_with(system_trust_only).await;

    let (status, verdict) = app
        .post_verdict(&request("checkout", start, start + MINUTES * 60, true))
        .await;
    assert_eq!(status, 200, "{verdict}");
    assert_ne!(verdict["verdict"], "promote", "{verdict:#}");
    for metric in verdict["metrics"].as_array().expect("metrics") {
        assert_eq!(metric["outcome"], "error", "{metric:#}");
        let reason = metric["reason"].as_str().expect("reason");
        assert!(
            reason.contains("invalid peer certificate: UnknownIssuer"),
            "{reason}"
        );
    }
    app.stop().await;
}

// `judge --prometheus-ca-file` trusts the CA in the file: promote, exit code 0.
#[tokio::test]
async fn judge_trusts_the_ca_file_it_is_given() {
    let start = window_start();
    let (prometheus, ca) = https_prometheus(start).await;
    let ca_file = prometheus.dir.path().join("ca.pem");
    std::fs::write(&ca_file, &ca.ca_pem).expect("write CA file");

    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_canary-gate"))
        .arg("judge")
        .args(["--prometheus", &prometheus.url])
        .arg("--prometheus-ca-file")
        .arg(&ca_file)
        .arg("--rules-dir")
        .arg(repo_root().join("rules"))
        .args(["--rules", "http", "--deployment", "checkout-1402"])
        .args(["--canary", "track=canary", "--baseline", "track=baseline"])
        .args(["--start", &start.to_string()])
        .args(["--end", &(start + MINUTES * 60).to_string()])
        .args(["--var", "service=checkout", "--final"])
        .output()
        .await
        .expect("run canary-gate judge");
    let verdict: Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "not a JSON verdict ({e}): {}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    assert_eq!(output.status.code(), Some(0), "{verdict:#}");
    assert_eq!(verdict["verdict"], "promote", "{verdict:#}");
}
