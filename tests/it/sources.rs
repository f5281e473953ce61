//! Named metric sources from a config file: the tenant header and the
//! credentials reach the store, queries go as form POSTs, a real Prometheus
//! that wants basic auth over TLS with a private CA is judged, a wrong
//! password is a non-promote that names the 401, and no secret is ever shown.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::Method;
use canary_gate::http::AppState;
use canary_gate::source::{self, SourcesConfig};
use canary_gate::verdict::log::VerdictLog;
use serde_json::Value;

use crate::support::binary::{ServeProcess, run};
use crate::support::ca::private_ca;
use crate::support::fault::{Fault, FaultyPrometheus, svc_final_look};
use crate::support::prometheus::{READY_TIMEOUT, TestPrometheus, Web};
use crate::support::{MINUTES, repo_root, request, spawn_state, two_services, window_start};

/// The password Prometheus's web config accepts in these tests.
const PASSWORD: &str = "correct-horse-battery-staple";
/// Its bcrypt hash, as Prometheus's `basic_auth_users` wants it, made with
/// `python3 -c "import crypt; print(crypt.crypt('correct-horse-battery-staple', crypt.mksalt(crypt.METHOD_BLOWFISH)))"`.
const PASSWORD_BCRYPT: &str = "$2b$12$Z5D1Gv4bRj7thPeJQ0eNDeygFndM0B6f/CzPKb4N66ELvaD2VX5re";
/// A bearer token sent to the double.
const TOKEN: &str = "tenant-a-token-0123456789abcdef";

/// A folder holding the `svc` rule set of the fault double, asking for the
/// source `source` when given, and named `name`.
fn svc_rules(dir: &Path, name: &str, source: Option<&str>) {
    let svc = std::fs::read_to_string(repo_root().join("tests/fixtures/faults/svc.yaml"))
        .expect("svc rules");
    let line = source.map(|s| format!("source: {s}\n")).unwrap_or_default();
    std::fs::write(dir.join(format!("{name}.yaml")), format!("{line}{svc}")).expect("write rules");
}

// A rule set with `source: tenant-a` sends that source's X-Scope-OrgID and
// bearer token with every query, as form POSTs; a rule set without `source:`
// uses the default source, which sends neither.
#[tokio::test]
async fn tenant_header_and_token_reach_the_store_by_post() {
    let double = FaultyPrometheus::start(vec![Fault::Healthy]).await;
    let config_text = format!(
        "default_source: main\nsources:\n  main:\n    url: {url}\n  tenant-a:\n    url: {url}\n    headers: {{X-Scope-OrgID: tenant-a}}\n    bearer_token_env: TENANT_A_TOKEN\n",
        url = double.url
    );
    let env = |name: &str| (name == "TENANT_A_TOKEN").then(|| TOKEN.to_string());
    let config = SourcesConfig::parse(Path::new("canary-gate.yaml"), &config_text, &env)
        .expect("valid config");
    let sources = source::prometheus_sources(&config).expect("sources");
    let rules = tempfile::tempdir().expect("temp dir");
    svc_rules(rules.path(), "svc", Some("tenant-a"));
    svc_rules(rules.path(), "plain", None);
    let log_dir = tempfile::tempdir().expect("temp dir");
    let log = VerdictLog::open(log_dir.path()).expect("log dir");
    let state = AppState::with_sources(sources, rules.path().to_path_buf(), log);
    let app = spawn_state(Arc::new(state), log_dir).await;

    let (status, verdict) = app.post_verdict(&svc_final_look()).await;
    assert_eq!(status, 200, "{verdict:#}");
    assert_eq!(verdict["verdict"], "promote", "{verdict:#}");
    let tenant = double.requests();
    assert!(!tenant.is_empty(), "no query reached the double");
    for (method, headers) in &tenant {
        assert_eq!(method, Method::POST, "queries go as form POSTs");
        assert_eq!(headers["x-scope-orgid"], "tenant-a", "{headers:?}");
        assert_eq!(headers["authorization"], format!("Bearer {TOKEN}").as_str());
    }
    // The answer says nothing of the token.
    assert!(!verdict.to_string().contains(TOKEN));

    let mut plain = svc_final_look();
    plain["rules"] = "plain".into();
    let (status, verdict) = app.post_verdict(&plain).await;
    assert_eq!(status, 200, "{verdict:#}");
    let after = double.requests();
    assert!(after.len() > tenant.len(), "the plain rule set queried too");
    for (_, headers) in &after[tenant.len()..] {
        assert!(headers.get("x-scope-orgid").is_none(), "{headers:?}");
        assert!(headers.get("authorization").is_none(), "{headers:?}");
    }
    app.stop().await;
}

// A rule set that names a source the config does not declare gets a 500 that
// names the closest declared source, and no verdict.
#[tokio::test]
async fn an_unknown_source_is_refused_with_the_closest_name() {
    let double = FaultyPrometheus::start(vec![Fault::Healthy]).await;
    let config = SourcesConfig::parse(
        Path::new("canary-gate.yaml"),
        &format!("sources:\n  tenant-a:\n    url: {}\n", double.url),
        &|_| None,
    )
    .expect("valid config");
    let rules = tempfile::tempdir().expect("temp dir");
    svc_rules(rules.path(), "svc", Some("tenant-b"));
    let log_dir = tempfile::tempdir().expect("temp dir");
    let log = VerdictLog::open(log_dir.path()).expect("log dir");
    let sources = source::prometheus_sources(&config).expect("sources");
    let state = AppState::with_sources(sources, rules.path().to_path_buf(), log);
    let app = spawn_state(Arc::new(state), log_dir).await;

    let (status, body) = app.post_verdict(&svc_final_look()).await;
    assert_eq!(status, 500, "{body:#}");
    assert_eq!(body["error"]["code"], "unknown_source", "{body:#}");
    let message = body["error"]["message"].as_str().expect("message");
    assert!(message.contains("did you mean `tenant-a`"), "{message}");
    assert!(double.requests().is_empty(), "nothing was asked");
    app.stop().await;
}

/// A config file for the real Prometheus at `url`: basic auth with the
/// password in a file holding `password`, and the CA bundle `ca_pem`.
fn tls_basic_config(dir: &Path, url: &str, ca_pem: &str, password: &str) -> std::path::PathBuf {
    let (ca, secret) = (dir.join("ca.pem"), dir.join("password"));
    std::fs::write(&ca, ca_pem).expect("write CA");
    std::fs::write(&secret, format!("{password}\n")).expect("write password");
    let config = dir.join("canary-gate.yaml");
    std::fs::write(
        &config,
        format!(
            "sources:\n  main:\n    url: {url}\n    basic_auth:\n      username: canary-gate\n      password_file: {}\n    tls:\n      ca_file: {}\n",
            secret.display(),
            ca.display()
        ),
    )
    .expect("write config");
    config
}

/// Asks `/readyz` until it is 200 (the store answered through TLS and basic
/// auth), or gives up after [`READY_TIMEOUT`] with what it last said.
async fn wait_ready(server: &ServeProcess) -> String {
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        let answer = reqwest::get(format!("{}/readyz", server.url)).await;
        let (status, body) = match answer {
            Ok(response) => (
                response.status().as_u16(),
                response.text().await.unwrap_or_default(),
            ),
            Err(error) => (0, error.to_string()),
        };
        if status == 200 {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "not ready within {READY_TIMEOUT:?}: {status} {body}\n{}",
            server.stderr()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Everything a server showed: its answers, its log folder and its stderr.
fn everything_shown(server: &ServeProcess, answers: &[String]) -> String {
    let mut shown = answers.join("\n");
    for entry in std::fs::read_dir(server.log_dir())
        .expect("log dir")
        .flatten()
    {
        shown.push_str(&std::fs::read_to_string(entry.path()).unwrap_or_default());
    }
    shown.push_str(&server.stderr());
    shown
}

// Basic auth over TLS with a private CA: the right password judges a healthy
// canary and promotes it; a wrong one is a non-promote whose reasons name the
// 401, which is not retried. The password appears in no answer, page, log
// line or verdict log, for either server.
#[tokio::test]
async fn basic_auth_over_tls_with_a_private_ca() {
    let start = window_start();
    let ca = private_ca();
    let web = Web {
        tls: Some((&ca.server_cert_pem, &ca.server_key_pem)),
        basic_auth: Some(("canary-gate", PASSWORD_BCRYPT)),
    };
    let prometheus = TestPrometheus::start_web(&two_services(start), &web);
    let good_dir = tempfile::tempdir().expect("temp dir");
    let good = tls_basic_config(good_dir.path(), &prometheus.url, &ca.ca_pem, PASSWORD);
    let rules = repo_root().join("rules");
    let look = request("checkout", start, start + MINUTES * 60, true);

    let server = ServeProcess::start(
        "http://127.0.0.1:9",
        &rules,
        &["--config", good.to_str().expect("path")],
        &[],
    );
    let ready = wait_ready(&server).await;
    let (status, verdict) = post(&server.url, &look).await;
    assert_eq!(status, 200, "{verdict:#}");
    assert_eq!(verdict["verdict"], "promote", "{verdict:#}");
    let page = get_text(&format!(
        "{}/verdicts/{}",
        server.url,
        verdict["id"].as_str().unwrap_or("")
    ))
    .await;
    let rule_sets = get_text(&format!("{}/v1/rules", server.url)).await;
    let shown = everything_shown(&server, &[verdict.to_string(), ready, page, rule_sets]);
    assert!(!shown.contains(PASSWORD), "the password was shown");
    drop(server);

    let bad_dir = tempfile::tempdir().expect("temp dir");
    let wrong = "not-the-password-at-all";
    let bad = tls_basic_config(bad_dir.path(), &prometheus.url, &ca.ca_pem, wrong);
    let server = ServeProcess::start(
        "http://127.0.0.1:9",
        &rules,
        &["--config", bad.to_str().expect("path")],
        &[],
    );
    let (status, verdict) = post(&server.url, &look).await;
    assert_eq!(status, 200, "{verdict:#}");
    assert_eq!(verdict["verdict"], "inconclusive", "{verdict:#}");
    for metric in verdict["metrics"].as_array().expect("metrics") {
        assert_eq!(metric["outcome"], "error", "{metric:#}");
        let reason = metric["reason"].as_str().expect("reason");
        assert!(reason.contains("HTTP 401"), "{reason}");
    }
    // A 401 is not transient: no retry warning for it.
    let stderr = server.stderr();
    assert!(
        !stderr.contains("asking again"),
        "a 401 was retried:\n{stderr}"
    );
    let shown = everything_shown(&server, &[verdict.to_string()]);
    assert!(
        !shown.contains(wrong) && !shown.contains(PASSWORD),
        "a password was shown"
    );
    drop(server);

    // The one-shot judge with the same config: not a promote (exit 2), and
    // no password in what it prints.
    let output = run(
        &[
            "judge",
            "--config",
            bad.to_str().expect("path"),
            "--rules-dir",
            rules.to_str().expect("path"),
            "--rules",
            "http",
            "--deployment",
            "checkout-1402",
            "--canary",
            "track=canary",
            "--baseline",
            "track=baseline",
            "--start",
            &start.to_string(),
            "--end",
            &(start + MINUTES * 60).to_string(),
            "--var",
            "service=checkout",
            "--final",
        ],
        &[],
    );
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(output.status.code(), Some(2), "{printed}");
    assert!(printed.contains("HTTP 401"), "{printed}");
    assert!(!printed.contains(wrong), "{printed}");
}

// A config with a problem stops `serve` and `judge` at once with its
// file:line:col, and shows no secret it read.
#[test]
fn a_bad_config_is_refused_with_its_place() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("canary-gate.yaml");
    std::fs::write(
        &config,
        "sources:\n  main:\n    url: http://127.0.0.1:9\n    bearer_token_env: CG_TOKEN\n    header: {X-Scope-OrgID: a}\n",
    )
    .expect("write config");
    let output = run(
        &[
            "serve",
            "--config",
            config.to_str().expect("path"),
            "--listen",
            "127.0.0.1:0",
        ],
        &[("CG_TOKEN", TOKEN)],
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("canary-gate.yaml:5:"), "{stderr}");
    assert!(stderr.contains("did you mean `headers`"), "{stderr}");
    assert!(!stderr.contains(TOKEN), "{stderr}");
}

async fn post(url: &str, body: &Value) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(format!("{url}/v1/verdicts"))
        .json(body)
        .send()
        .await
        .expect("post a verdict");
    let status = response.status().as_u16();
    (status, response.json().await.expect("a JSON answer"))
}

async fn get_text(url: &str) -> String {
    reqwest::get(url)
        .await
        .expect("get")
        .text()
        .await
        .expect("text")
}

// Secrets are read at start and again on a reload: after the token file
// changes, `POST /v1/rules/reload` makes the next queries carry the new token,
// and a config that breaks keeps the sources in force and says why.
#[tokio::test]
async fn a_reload_reads_the_secrets_again() {
    let double = FaultyPrometheus::start(vec![Fault::Healthy]).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, "first-token-0123456789\n").expect("write token");
    let config_path = dir.path().join("canary-gate.yaml");
    let config_text = format!(
        "sources:\n  main:\n    url: {}\n    bearer_token_file: {}\n",
        double.url,
        token_file.display()
    );
    std::fs::write(&config_path, &config_text).expect("write config");
    let load = {
        let path = config_path.clone();
        move || {
            let config = SourcesConfig::load(&path, &|_| None).map_err(|errors| {
                errors
                    .iter()
                    .map(|e| e.to_string())
                    .collect::<Vec<_>>()
                    .join("; ")
            })?;
            source::prometheus_sources(&config).map_err(|e| e.to_string())
        }
    };
    let rules = tempfile::tempdir().expect("temp dir");
    svc_rules(rules.path(), "svc", None);
    let log_dir = tempfile::tempdir().expect("temp dir");
    let log = VerdictLog::open(log_dir.path()).expect("log dir");
    let state = AppState::with_sources(load().expect("sources"), rules.path().to_path_buf(), log)
        .with_sources_loader(Box::new(load));
    let app = spawn_state(Arc::new(state), log_dir).await;
    let bearer_of_last = || {
        let requests = double.requests();
        let (_, headers) = requests.last().expect("a query arrived");
        headers["authorization"].to_str().expect("text").to_string()
    };

    app.post_verdict(&svc_final_look()).await;
    assert_eq!(bearer_of_last(), "Bearer first-token-0123456789");

    std::fs::write(&token_file, "second-token-0123456789\n").expect("rotate token");
    let reload = |app: &crate::support::TestApp| {
        app.client
            .post(format!("{}/v1/rules/reload", app.url))
            .send()
    };
    let summary: Value = reload(&app)
        .await
        .expect("reload")
        .json()
        .await
        .expect("summary");
    assert!(
        summary["errors"].as_array().expect("errors").is_empty(),
        "{summary:#}"
    );
    app.post_verdict(&svc_final_look()).await;
    assert_eq!(bearer_of_last(), "Bearer second-token-0123456789");

    // A token file that vanished: the reload says so, and the sources in
    // force (with the second token) stay.
    std::fs::remove_file(&token_file).expect("remove token");
    let summary: Value = reload(&app)
        .await
        .expect("reload")
        .json()
        .await
        .expect("summary");
    let errors = summary["errors"].to_string();
    assert!(
        errors.contains("cannot read the bearer token file"),
        "{summary:#}"
    );
    assert!(!errors.contains("second-token"), "{summary:#}");
    app.post_verdict(&svc_final_look()).await;
    assert_eq!(bearer_of_last(), "Bearer second-token-0123456789");
    app.stop().await;
}
