//! Access tokens: write endpoints need one when configured, reads optionally,
//! 401s say how to authenticate, tokens never reach logs, and `wait` sends one.

use std::sync::Arc;

use canary_gate::http::auth::{AccessPolicy, Tokens};

use crate::support::binary::{ServeProcess, run};
use crate::support::prometheus::TestPrometheus;
use crate::support::{
    MINUTES, app_state, repo_root, request, spawn_state, two_services, window_start,
};

const TOKEN: &str = "s3cret-token-0123456789abcdef";
const OTHER_TOKEN: &str = "another-token-fedcba9876543210";

fn policy(protect_reads: bool) -> AccessPolicy {
    AccessPolicy {
        tokens: Tokens::from_sources(None, Some(&format!("{TOKEN},{OTHER_TOKEN}")))
            .expect("valid tokens"),
        protect_reads,
    }
}

// Writes without a token, or with a wrong one, get 401 with a Bearer challenge and
// a JSON error; with either configured token they are served; reads stay open.
#[tokio::test]
async fn write_endpoints_need_a_token() {
    let (state, log_dir) = app_state("http://127.0.0.1:9", &repo_root().join("rules"));
    let app = spawn_state(Arc::new(state.with_access(policy(false))), log_dir).await;
    let start = window_start();
    let body = request("search", start, start + 600, false);

    for (path, token) in [
        ("/v1/verdicts", None),
        ("/v1/verdicts", Some("wrong-token-wrong-token")),
        ("/v1/rules/reload", None),
        ("/v1/flagger", None),
    ] {
        let mut post = app.client.post(format!("{}{path}", app.url)).json(&body);
        if let Some(token) = token {
            post = post.bearer_auth(token);
        }
        let response = post.send().await.expect("answer");
        assert_eq!(response.status().as_u16(), 401, "{path}");
        let challenge = response
            .headers()
            .get("www-authenticate")
            .and_then(|v| v.to_str().ok())
            .expect("WWW-Authenticate")
            .to_string();
        assert!(challenge.starts_with("Bearer"), "{challenge}");
        let error: serde_json::Value = response.json().await.expect("JSON error");
        assert_eq!(error["error"]["code"], "unauthorized", "{error}");
    }
    for token in [TOKEN, OTHER_TOKEN] {
        let response = app
            .client
            .post(format!("{}/v1/rules/reload", app.url))
            .bearer_auth(token)
            .send()
            .await
            .expect("answer");
        assert_eq!(response.status().as_u16(), 200);
    }
    // The verdict endpoint with a token gets past the gate (and judges: Prometheus is absent).
    let response = app
        .client
        .post(format!("{}/v1/verdicts", app.url))
        .bearer_auth(TOKEN)
        .json(&body)
        .send()
        .await
        .expect("answer");
    assert_eq!(response.status().as_u16(), 200);
    let (status, _) = app.get_json("/v1/verdicts").await;
    assert_eq!(status, 200, "reads stay open without --protect-reads");
    let (status, _) = app.get_json("/v1/rules").await;
    assert_eq!(status, 200);
    app.stop().await;
}

// With protect_reads, reads need the token too, but health, readiness and the API document stay open.
#[tokio::test]
async fn protected_reads_need_a_token_but_probes_do_not() {
    let (state, log_dir) = app_state("http://127.0.0.1:9", &repo_root().join("rules"));
    let app = spawn_state(Arc::new(state.with_access(policy(true))), log_dir).await;
    for path in ["/v1/verdicts", "/v1/rules", "/v1/verdicts/some-id"] {
        let (status, answer) = app.get_json(path).await;
        assert_eq!(status, 401, "{path}: {answer}");
        let with_token = app
            .client
            .get(format!("{}{path}", app.url))
            .bearer_auth(TOKEN)
            .send()
            .await
            .expect("answer");
        assert_ne!(with_token.status().as_u16(), 401, "{path}");
    }
    for path in ["/healthz", "/readyz", "/openapi.json"] {
        let response = app
            .client
            .get(format!("{}{path}", app.url))
            .send()
            .await
            .expect("answer");
        assert_ne!(response.status().as_u16(), 401, "{path}");
    }
    app.stop().await;
}

// `serve` on a non-loopback address without tokens refuses to start and says what to do.
#[test]
fn non_loopback_without_tokens_refuses_to_start() {
    // The refusal comes before binding, so nothing ever listens on the wildcard address.
    let dir = tempfile::tempdir().expect("temp dir");
    let log_dir = dir.path().join("verdicts").to_string_lossy().to_string();
    let output = run(
        &[
            "serve",
            "--listen",
            "0.0.0.0:0",
            "--prometheus-url",
            "http://127.0.0.1:9",
            "--log-dir",
            &log_dir,
        ],
        &[],
    );
    assert_eq!(output.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("refusing to listen on 0.0.0.0:0"),
        "{stderr}"
    );
    assert!(stderr.contains("--token-file"), "{stderr}");
    assert!(stderr.contains("--insecure-no-auth"), "{stderr}");
    assert!(
        !std::path::Path::new(&log_dir).exists(),
        "refused before touching anything"
    );
}

// `wait` against a token-protected server: without a token it exits 3 saying a token is
// needed; with --token-file it gets the verdict. No token reaches the logs or the verdict log.
#[tokio::test]
async fn wait_with_and_without_token_and_no_token_in_logs() {
    let start = window_start();
    let prometheus = TestPrometheus::start(&two_services(start));
    let token_dir = tempfile::tempdir().expect("temp dir");
    let token_file = token_dir.path().join("tokens");
    std::fs::write(&token_file, format!("# ci\n{TOKEN}\n")).expect("write tokens");
    let token_file_arg = token_file.to_string_lossy().to_string();
    let server = ServeProcess::start(
        &prometheus.url,
        &repo_root().join("rules"),
        &["--token-file", &token_file_arg],
        &[("CANARY_GATE_TOKENS", OTHER_TOKEN)],
    );
    let start_arg = start.to_string();
    let wait_args = |with_token: bool| {
        let mut args = vec![
            "wait".to_string(),
            "--server".into(),
            server.url.clone(),
            "--rules".into(),
            "http".into(),
            "--deployment".into(),
            "search-1402".into(),
            "--canary".into(),
            "track=canary".into(),
            "--baseline".into(),
            "track=baseline".into(),
            "--start".into(),
            start_arg.clone(),
            "--var".into(),
            "service=search".into(),
            "--timeout".into(),
            "1s".into(),
            "--every".into(),
            "1s".into(),
        ];
        if with_token {
            args.push("--token-file".into());
            args.push(token_file_arg.clone());
        }
        args
    };

    let without: Vec<String> = wait_args(false);
    let without: Vec<&str> = without.iter().map(String::as_str).collect();
    let output = run(&without, &[]);
    assert_eq!(output.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("401"), "{stderr}");
    assert!(stderr.contains("bearer token"), "{stderr}");

    let with: Vec<String> = wait_args(true);
    let with: Vec<&str> = with.iter().map(String::as_str).collect();
    let output = run(&with, &[]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let verdict: serde_json::Value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "no verdict on stdout ({e}): {}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    // The search canary fails three times as often: rolled back, exit 1.
    assert_eq!(verdict["verdict"], "rollback", "{verdict:#}");
    assert_eq!(output.status.code(), Some(1));

    // A request with the environment's token and one with a wrong token, for the logs to see.
    let client = reqwest::Client::new();
    let body = request("checkout", start, start + MINUTES * 60, false);
    for token in [OTHER_TOKEN, "wrong-token-wrong-token-wrong"] {
        client
            .post(format!("{}/v1/verdicts", server.url))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .expect("answer");
    }
    let logged = server.stderr();
    assert!(
        logged.contains("verdict"),
        "tracing output captured: {logged}"
    );
    let mut verdict_lines = String::new();
    for entry in std::fs::read_dir(server.log_dir()).expect("log dir") {
        let path = entry.expect("entry").path();
        verdict_lines.push_str(&std::fs::read_to_string(path).expect("log file"));
    }
    assert!(!verdict_lines.is_empty());
    for secret in [TOKEN, OTHER_TOKEN, "wrong-token-wrong-token-wrong"] {
        assert!(!logged.contains(secret), "a token is in the tracing output");
        assert!(
            !verdict_lines.contains(secret),
            "a token is in the verdict log"
        );
    }
}

// Flagger sends no headers of its own: its webhook may carry the token as
// `metadata.token`, which opens the gate only when it is a configured token and
// never lands in the verdict log.
#[tokio::test]
async fn flagger_token_in_metadata() {
    let start = window_start();
    let prometheus = TestPrometheus::start(&crate::support::two_services(start));
    let (state, log_dir) = app_state(&prometheus.url, &repo_root().join("rules"));
    let app = spawn_state(Arc::new(state.with_access(policy(false))), log_dir).await;
    let payload = |token: &str| {
        serde_json::json!({
            "name": "checkout", "namespace": "test", "checksum": "abc",
            "metadata": {"rules": "http", "canary": "track=canary", "baseline": "track=baseline",
                         "var.service": "checkout", "token": token},
        })
    };
    let post = |body: serde_json::Value| {
        app.client
            .post(format!("{}/v1/flagger", app.url))
            .json(&body)
            .send()
    };
    let refused = post(payload("wrong-token-wrong-token"))
        .await
        .expect("answer");
    assert_eq!(refused.status().as_u16(), 401);
    let served = post(payload(TOKEN)).await.expect("answer");
    assert_eq!(
        served.status().as_u16(),
        200,
        "a look at a healthy canary passes the check"
    );
    let verdict: serde_json::Value = served.json().await.expect("JSON verdict");
    assert_eq!(verdict["deployment"], "test/checkout-abc");
    let logged: String = std::fs::read_dir(app.log_dir.path())
        .expect("log dir")
        .filter_map(Result::ok)
        .map(|entry| std::fs::read_to_string(entry.path()).unwrap_or_default())
        .collect();
    assert!(
        logged.contains("test/checkout-abc"),
        "the verdict is logged"
    );
    assert!(!logged.contains(TOKEN), "the token is not");
}
