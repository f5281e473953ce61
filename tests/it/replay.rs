//! `canary-gate replay` against a real Prometheus with backfilled data: the
//! look it rolls back at is the one a server asked every 30 s rolls back at,
//! and it sends each range query once for the whole window.

use crate::support::binary::run;
use crate::support::prometheus::TestPrometheus;
use crate::support::{MINUTES, repo_root, request, spawn_app, two_services, window_start};

/// Seconds between looks, as `wait --every 30s` makes them.
const EVERY_SECS: i64 = 30;

/// Runs `canary-gate replay` for `service` over the whole simulated window,
/// printing `output`; returns exit code, stdout and stderr.
fn run_replay(
    prometheus_url: &str,
    service: &str,
    start: i64,
    output: &str,
) -> (i32, String, String) {
    let rules_dir = repo_root().join("rules");
    let start_text = start.to_string();
    let end_text = (start + MINUTES * 60).to_string();
    let deployment = format!("{service}-1402");
    let var = format!("service={service}");
    let args = [
        "replay",
        "--prometheus",
        prometheus_url,
        "--rules-dir",
        rules_dir.to_str().expect("UTF-8 path"),
        "--rules",
        "http",
        "--deployment",
        &deployment,
        "--canary",
        "track=canary",
        "--baseline",
        "track=baseline",
        "--start",
        &start_text,
        "--end",
        &end_text,
        "--every",
        "30s",
        "--var",
        &var,
        "--output",
        output,
    ];
    let done = run(&args, &[]);
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
    (
        done.status.code().unwrap_or(-1),
        text(&done.stdout),
        text(&done.stderr),
    )
}

// Replaying the backfilled 3x regression rolls back (exit 1) at the same look, with the same
// reason, as the server asked with the same `end` times every 30 s; the 60 looks cost only
// the queries replay reports, as Prometheus's query log shows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_rolls_back_at_the_look_wait_would() {
    let start = window_start();
    let prometheus = TestPrometheus::start(&two_services(start));

    let (code, stdout, stderr) = run_replay(&prometheus.url, "search", start, "json");
    assert_eq!(code, 1, "{stderr}\n{stdout}");
    let replayed: serde_json::Value = serde_json::from_str(&stdout).expect("one JSON document");
    let looks = replayed["looks"].as_array().expect("looks");
    assert_eq!(looks.len() as i64, MINUTES * 60 / EVERY_SECS);
    let first = &replayed["first_decided"];
    assert_eq!(first["verdict"], "rollback", "{first:#}");
    let rollback_look = first["look"].as_i64().expect("look number");
    let rollback_end = first["end_secs"].as_i64().expect("look end");
    assert_eq!(rollback_end, start + rollback_look * EVERY_SECS);
    assert!(
        looks[..rollback_look as usize - 1]
            .iter()
            .all(|look| look["verdict"] == "inconclusive"),
        "no look before the first decided one is decided: {looks:#?}"
    );

    // Every query replay sent reached Prometheus once, and there were few of them.
    let log = prometheus.query_log();
    let sent = replayed["queries_sent"].as_u64().expect("queries_sent");
    assert_eq!(log.len() as u64, sent, "{log:#?}");
    let mut distinct = log.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(
        distinct.len(),
        log.len(),
        "a query was sent twice: {log:#?}"
    );
    assert!(sent <= 12, "{sent} queries for {} looks", looks.len());
    eprintln!(
        "replay: rollback at look {rollback_look} (+{}s), {sent} queries for {} looks",
        rollback_end - start,
        looks.len()
    );

    // The server, asked at the same looks, first rolls back at the same one.
    let app = spawn_app(&prometheus.url, &repo_root().join("rules")).await;
    let mut served_rollback = None;
    for look in 1..=looks.len() as i64 {
        let body = request("search", start, start + look * EVERY_SECS, false);
        let (status, verdict) = app.post_verdict(&body).await;
        assert_eq!(status, 200, "{verdict}");
        assert_eq!(
            verdict["verdict"],
            looks[look as usize - 1]["verdict"],
            "look {look}"
        );
        if verdict["verdict"] != "inconclusive" {
            served_rollback = Some((look, verdict));
            break;
        }
    }
    let (served_look, verdict) = served_rollback.expect("the server rolls back at some look");
    assert_eq!(served_look, rollback_look);
    assert_eq!(verdict["verdict"], "rollback");
    assert_eq!(verdict["reason"], first["reason"]);
    app.stop().await;

    // The text form names the look and the query count.
    let (code, text, stderr) = run_replay(&prometheus.url, "search", start, "text");
    assert_eq!(code, 1, "{stderr}");
    assert!(
        text.contains(&format!("first decided: look {rollback_look} at ")),
        "{text}"
    );
    assert!(
        text.contains(&format!("{sent} queries for {} looks", looks.len())),
        "{text}"
    );
}
