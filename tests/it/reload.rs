//! Rule reloads with real files: edits, broken edits, renames and ConfigMap-style
//! symlink swaps are picked up by the watcher; SIGHUP and the reload endpoint work too.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use canary_gate::rules::store;
use sha2::{Digest, Sha256};

use crate::support::binary::ServeProcess;
use crate::support::{TestApp, app_state, repo_root, spawn_state, window_start};

/// Hang guard for a reload to show; reloads take milliseconds, the deadline is generous.
const RELOAD_DEADLINE: Duration = Duration::from_secs(60);

fn http_rules() -> String {
    std::fs::read_to_string(repo_root().join("rules/http.yaml")).expect("rules/http.yaml")
}

fn sha256(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

const JOBS: &str =
    "metrics:\n  - name: up\n    kind: threshold\n    query: up{job=\"jobs\"}\n    min: 1\n";

/// A server on the rules folder `dir`, watched when `watch`.
async fn app_on(dir: &Path, watch: bool) -> TestApp {
    let (state, log_dir) = app_state("http://127.0.0.1:9", dir);
    let state = Arc::new(state);
    if watch {
        store::watch(state.rules.clone()).expect("watch the rules folder");
    }
    spawn_state(state, log_dir).await
}

/// A server on a fresh rules folder holding a copy of `rules/http.yaml`.
async fn app_with_http(watch: bool) -> (tempfile::TempDir, TestApp) {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("http.yaml"), http_rules()).expect("write");
    let app = app_on(dir.path(), watch).await;
    (dir, app)
}

/// Polls `GET /v1/rules` until `done` holds for it, panicking after [`RELOAD_DEADLINE`].
async fn rules_until(
    url: &str,
    what: &str,
    done: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let client = reqwest::Client::new();
    let deadline = Instant::now() + RELOAD_DEADLINE;
    loop {
        let page: serde_json::Value = client
            .get(format!("{url}/v1/rules"))
            .send()
            .await
            .expect("answer")
            .json()
            .await
            .expect("JSON");
        if done(&page) {
            return page;
        }
        assert!(Instant::now() < deadline, "never saw {what}: {page:#}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Polls until the `http` rule set in force is `text`.
async fn until_http_is(url: &str, what: &str, text: &str) {
    rules_until(url, what, |p| hash_of(p, "http") == Some(sha256(text))).await;
}

fn hash_of(page: &serde_json::Value, name: &str) -> Option<String> {
    page["rule_sets"]
        .as_array()?
        .iter()
        .find(|set| set["name"] == name)
        .and_then(|set| set["content_hash"].as_str().map(str::to_string))
}

// A good edit is picked up (new hash, used by the next verdict); a broken edit is
// refused with its error shown while the last good version stays in force; a new
// file is added and a deleted file removed.
#[tokio::test]
async fn watched_edits_apply_per_rule_set() {
    let original = http_rules();
    let (dir, app) = app_with_http(true).await;
    let (_, page) = app.get_json("/v1/rules").await;
    assert_eq!(hash_of(&page, "http"), Some(sha256(&original)), "{page:#}");

    let edited = format!("{original}\n# tuned\n");
    std::fs::write(dir.path().join("http.yaml"), &edited).expect("write");
    until_http_is(&app.url, "the edit", &edited).await;
    let start = window_start();
    let (status, verdict) = app
        .post_verdict(&crate::support::request(
            "search",
            start,
            start + 600,
            false,
        ))
        .await;
    assert_eq!(status, 200, "{verdict}");
    assert_eq!(
        verdict["rules_hash"],
        sha256(&edited),
        "the verdict records the rules it used"
    );

    std::fs::write(dir.path().join("http.yaml"), "metrics: [\n").expect("write");
    let page = rules_until(&app.url, "the broken edit's error", |p| {
        p["errors"].as_array().is_some_and(|e| !e.is_empty())
    })
    .await;
    assert_eq!(
        hash_of(&page, "http"),
        Some(sha256(&edited)),
        "last good kept"
    );
    assert_eq!(page["rule_sets"][0]["kept_last_good"], true, "{page:#}");
    let error = page["errors"][0]["text"].as_str().expect("error text");
    assert!(error.contains("http.yaml:"), "{error}");

    std::fs::write(dir.path().join("jobs.yaml"), JOBS).expect("write");
    rules_until(&app.url, "the new file", |p| hash_of(p, "jobs").is_some()).await;
    std::fs::remove_file(dir.path().join("jobs.yaml")).expect("remove");
    let page = rules_until(&app.url, "the deleted file gone", |p| {
        hash_of(p, "jobs").is_none()
    })
    .await;
    assert_eq!(hash_of(&page, "http"), Some(sha256(&edited)));
    app.stop().await;
}

// An editor's save by rename (write a temporary file, rename it over the old one) is picked up.
#[tokio::test]
async fn rename_into_place_is_picked_up() {
    let (dir, app) = app_with_http(true).await;
    let renamed = format!("{}\n# saved by rename\n", http_rules());
    std::fs::write(dir.path().join(".http.yaml.swp"), &renamed).expect("write");
    std::fs::rename(
        dir.path().join(".http.yaml.swp"),
        dir.path().join("http.yaml"),
    )
    .expect("rename");
    until_http_is(&app.url, "the renamed file", &renamed).await;
    app.stop().await;
}

// A Kubernetes ConfigMap update (files behind a `..data` symlink that is swapped
// atomically for one to a new folder) is picked up.
#[tokio::test]
async fn configmap_symlink_swap_is_picked_up() {
    use std::os::unix::fs::symlink;
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path();
    std::fs::create_dir(root.join("..2026_11_26_1")).expect("mkdir");
    std::fs::write(root.join("..2026_11_26_1/http.yaml"), http_rules()).expect("write");
    symlink("..2026_11_26_1", root.join("..data")).expect("symlink");
    symlink("..data/http.yaml", root.join("http.yaml")).expect("symlink");
    let app = app_on(root, true).await;
    let (_, page) = app.get_json("/v1/rules").await;
    assert_eq!(
        hash_of(&page, "http"),
        Some(sha256(&http_rules())),
        "{page:#}"
    );

    let swapped = format!("{}\n# from the new ConfigMap\n", http_rules());
    std::fs::create_dir(root.join("..2026_11_26_2")).expect("mkdir");
    std::fs::write(root.join("..2026_11_26_2/http.yaml"), &swapped).expect("write");
    symlink("..2026_11_26_2", root.join("..data_tmp")).expect("symlink");
    std::fs::rename(root.join("..data_tmp"), root.join("..data")).expect("swap");
    std::fs::remove_dir_all(root.join("..2026_11_26_1")).expect("remove old");
    until_http_is(&app.url, "the swapped ConfigMap", &swapped).await;
    app.stop().await;
}

// POST /v1/rules/reload reads the folder at once and says what changed.
#[tokio::test]
async fn reload_endpoint_reports_changes() {
    let (dir, app) = app_with_http(false).await;
    std::fs::write(dir.path().join("jobs.yaml"), JOBS).expect("write");
    std::fs::write(dir.path().join("http.yaml"), "metrics: [\n").expect("write");
    let summary: serde_json::Value = app
        .client
        .post(format!("{}/v1/rules/reload", app.url))
        .send()
        .await
        .expect("answer")
        .json()
        .await
        .expect("JSON");
    assert_eq!(
        summary["changed"],
        serde_json::json!(["jobs"]),
        "{summary:#}"
    );
    assert_eq!(summary["kept_last_good"], serde_json::json!(["http"]));
    assert_eq!(summary["rule_sets"], serde_json::json!(["http", "jobs"]));
    assert!(
        summary["errors"][0]
            .as_str()
            .expect("error")
            .contains("http.yaml")
    );
    app.stop().await;
}

// The real binary, not watching, reloads its rules on SIGHUP.
#[tokio::test]
async fn sighup_reloads_the_real_binary() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("http.yaml"), http_rules()).expect("write");
    let server = ServeProcess::start("http://127.0.0.1:9", dir.path(), &["--no-watch"], &[]);
    let edited = format!("{}\n# after SIGHUP\n", http_rules());
    std::fs::write(dir.path().join("http.yaml"), &edited).expect("write");
    let status = std::process::Command::new("kill")
        .arg("-HUP")
        .arg(server.pid().to_string())
        .status()
        .expect("run kill");
    assert!(status.success());
    until_http_is(&server.url, "the reload after SIGHUP", &edited).await;
    assert!(server.stderr().contains("SIGHUP"), "{}", server.stderr());
}
