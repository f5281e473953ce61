//! The pipeline doors: the example shell step and `canary-gate wait` against
//! the real server and a real Prometheus.

use std::path::Path;
use std::time::Duration;

use crate::support::prometheus::TestPrometheus;
use crate::support::{repo_root, spawn_app, two_services, window_start};

/// The built `canary-gate` binary.
fn binary() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_canary-gate"))
}

/// Runs examples/shell/canary-step.sh for `service` in `dir`; returns exit code and stderr.
async fn run_step(dir: &Path, server: &str, service: &str, start: i64) -> (i32, String) {
    let path = format!(
        "{}:{}",
        binary().parent().expect("binary folder").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let output = tokio::process::Command::new("bash")
        .arg(repo_root().join("examples/shell/canary-step.sh"))
        .current_dir(dir)
        .env("PATH", path)
        .env("CANARY_GATE_SERVER", server)
        .env("DEPLOYMENT", format!("{service}-7"))
        .env("CANARY_STARTED_AT", start.to_string())
        .env("SERVICE", service)
        .env("PROMOTE_CMD", "touch promoted")
        .env("ROLLBACK_CMD", "touch rolled-back")
        .env("TIMEOUT", "4s")
        .env("EVERY", "1s")
        .output()
        .await
        .expect("run the shell step");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

// The plain shell step rolls back a broken canary (exit 1) and promotes a healthy one (exit 0),
// deciding by canary-gate's exit code, with a progress line per look.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shell_step_takes_both_exits() {
    let start = window_start();
    let prometheus = TestPrometheus::start(&two_services(start));
    let app = spawn_app(&prometheus.url, &repo_root().join("rules")).await;

    let broken = tempfile::tempdir().expect("temp dir");
    let (code, stderr) = run_step(broken.path(), &app.url, "search", start).await;
    assert_eq!(code, 1, "{stderr}");
    assert!(broken.path().join("rolled-back").exists());
    assert!(!broken.path().join("promoted").exists());
    assert!(stderr.contains("rollback"), "{stderr}");
    let verdict: serde_json::Value = serde_json::from_slice(
        &std::fs::read(broken.path().join("canary-verdict.json")).expect("verdict file"),
    )
    .expect("JSON verdict");
    assert_eq!(verdict["verdict"], "rollback");

    let healthy = tempfile::tempdir().expect("temp dir");
    let (code, stderr) = run_step(healthy.path(), &app.url, "checkout", start).await;
    assert_eq!(code, 0, "{stderr}");
    assert!(healthy.path().join("promoted").exists());
    assert!(!healthy.path().join("rolled-back").exists());
    // Several looks were made, each with a progress line, before the final one promoted.
    let looks = stderr
        .lines()
        .filter(|l| l.contains("inconclusive") || l.contains("promote"))
        .count();
    assert!(looks >= 2, "{stderr}");
    app.stop().await;
}

// `wait` keeps retrying while the server is down and never exits 0 on an error: with nothing
// listening until the deadline it exits 3.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_without_a_server_exits_3() {
    let output = tokio::process::Command::new(binary())
        .args([
            "wait",
            "--server",
            "http://127.0.0.1:9",
            "--rules",
            "http",
            "--deployment",
            "x-1",
        ])
        .args([
            "--canary",
            "track=canary",
            "--baseline",
            "track=baseline",
            "--start",
            "0",
        ])
        .args(["--var", "service=x", "--timeout", "1s", "--every", "1s"])
        .output();
    let output = tokio::time::timeout(Duration::from_secs(120), output)
        .await
        .expect("wait gives up")
        .expect("ran");
    assert_eq!(output.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("no answer"), "{stderr}");
    assert!(output.stdout.is_empty());
}
