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

/// Runs the binary with `args` and returns exit code, stdout and stderr.
async fn run_binary(args: &[String]) -> (i32, String, String) {
    let output = tokio::process::Command::new(binary())
        .args(args)
        .current_dir(repo_root())
        .output()
        .await
        .expect("run canary-gate");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

// `judge` runs the same pipe in process against Prometheus: exit 1 and a JSON rollback for
// the broken canary, exit 0 for the healthy one at its final look, both appended to the
// verdict log, which `log` then lists as a table and filters by verdict.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn judge_in_process_then_read_the_log() {
    let start = window_start();
    let prometheus = TestPrometheus::start(&two_services(start));
    let log_dir = tempfile::tempdir().expect("temp dir");
    let judge = |service: &str, minutes: i64, is_final: bool| {
        let mut args: Vec<String> = [
            "judge",
            "--prometheus",
            &prometheus.url,
            "--rules-dir",
            "rules",
            "--rules",
            "http",
            "--canary",
            "track=canary",
            "--baseline",
            "{track=\"baseline\"}",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.extend([
            "--deployment".into(),
            format!("{service}-9"),
            "--start".into(),
            start.to_string(),
            "--end".into(),
            (start + minutes * 60).to_string(),
            "--var".into(),
            format!("service={service}"),
            "--log-dir".into(),
            log_dir.path().display().to_string(),
        ]);
        if is_final {
            args.push("--final".into());
        }
        args
    };

    let (code, stdout, stderr) = run_binary(&judge("search", 10, false)).await;
    assert_eq!(code, 1, "{stderr}");
    let verdict: serde_json::Value = serde_json::from_str(&stdout).expect("JSON verdict on stdout");
    assert_eq!(verdict["verdict"], "rollback");
    let (code, stdout, stderr) = run_binary(&judge("checkout", 30, true)).await;
    assert_eq!(code, 0, "{stderr}\n{stdout}");

    let dir = log_dir.path().display().to_string();
    let (code, table, _) = run_binary(&["log".into(), "--log-dir".into(), dir.clone()]).await;
    assert_eq!(code, 0);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 3, "header and two verdicts: {table}");
    assert!(
        lines[1].contains("rollback") && lines[1].contains("search-9"),
        "{table}"
    );
    assert!(
        lines[2].contains("promote") && lines[2].contains("checkout-9"),
        "{table}"
    );
    let args = [
        "log",
        "--log-dir",
        &dir,
        "--verdict",
        "rollback",
        "--output",
        "json",
    ]
    .map(String::from);
    let (code, json_lines, _) = run_binary(&args).await;
    assert_eq!(code, 0);
    assert_eq!(json_lines.lines().count(), 1, "{json_lines}");
}

// `wait` survives a server that is down when it starts and comes up mid-wait: it retries
// with backoff, then gets its verdict (rollback, exit 1) once the server answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_survives_a_server_that_comes_up_late() {
    use tokio::io::{AsyncBufReadExt, BufReader};

    let start = window_start();
    let prometheus = TestPrometheus::start(&two_services(start));
    // Reserve a port, then free it so nothing answers there yet.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let mut child = tokio::process::Command::new(binary())
        .args([
            "wait",
            "--server",
            &format!("http://127.0.0.1:{port}"),
            "--rules",
            "http",
        ])
        .args(["--deployment", "search-late", "--canary", "track=canary"])
        .args([
            "--baseline",
            "track=baseline",
            "--start",
            &start.to_string(),
        ])
        .args([
            "--var",
            "service=search",
            "--timeout",
            "5m",
            "--every",
            "1s",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start wait");
    let mut stderr = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let mut seen = Vec::new();
    // Bring the server up only after wait has failed to reach it at least once.
    while let Some(line) = stderr.next_line().await.expect("read stderr") {
        seen.push(line.clone());
        if line.contains("no answer") {
            break;
        }
    }
    assert!(seen.iter().any(|l| l.contains("no answer")), "{seen:?}");
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .expect("bind the reserved port");
    let app =
        crate::support::spawn_app_on(listener, &prometheus.url, &repo_root().join("rules")).await;
    while let Some(line) = stderr.next_line().await.expect("read stderr") {
        seen.push(line);
    }
    let status = tokio::time::timeout(Duration::from_secs(300), child.wait())
        .await
        .expect("wait finishes")
        .expect("exit status");
    assert_eq!(status.code(), Some(1), "{seen:#?}");
    assert!(seen.iter().any(|l| l.contains("rollback")), "{seen:#?}");
    app.stop().await;
}
