//! The verdict service end to end: real Prometheus (and VictoriaMetrics, for
//! the main path), real server, real rules.

use serde_json::json;
use time::OffsetDateTime;

use crate::support::simulate::{SideTraffic, Simulation};

use crate::on_both_stores;
use crate::support::prometheus::TestPrometheus;
use crate::support::store::{StoreKind, TestStore};
use crate::support::{MINUTES, metric, repo_root, request, spawn_app, two_services, window_start};

// A canary with three times the baseline's errors is rolled back, from a real store's data,
// well before the window ends, and the error-rate metric says why with its numbers.
async fn broken_canary_is_rolled_back(kind: StoreKind) {
    let start = window_start();
    let store = TestStore::start(kind, &two_services(start));
    let app = spawn_app(store.url(), &repo_root().join("rules")).await;

    let (status, verdict) = app
        .post_verdict(&request("search", start, start + 10 * 60, false))
        .await;
    assert_eq!(status, 200, "{verdict}");
    assert_eq!(verdict["verdict"], "rollback", "{verdict:#}");
    let errors = metric(&verdict, "error-rate");
    assert_eq!(errors["outcome"], "fail");
    // The estimate lies near the true 3x and its interval excludes the tolerance.
    let estimate = errors["estimate"]["value"].as_f64().expect("estimate");
    assert!((2.0..4.5).contains(&estimate), "estimate {estimate}");
    assert!(errors["estimate"]["lower"].as_f64().expect("lower") > 1.1);
    // Counts are what the simulated counters hold: about 20 requests/s per side for 10 minutes.
    let canary_count = errors["canary"]["count"].as_f64().expect("count");
    assert!(
        (10_000.0..14_000.0).contains(&canary_count),
        "canary requests {canary_count}"
    );
    // The PromQL sent carries the side's matcher and the service var.
    let sent: Vec<&str> = errors["queries"]
        .as_array()
        .expect("queries")
        .iter()
        .filter_map(|q| q["promql"].as_str())
        .collect();
    assert!(
        sent.iter()
            .any(|q| q.contains("track=\"canary\"") && q.contains("service=\"search\"")),
        "{sent:?}"
    );
    assert!(
        sent.iter().any(|q| q.contains("track=\"baseline\"")),
        "{sent:?}"
    );
    let reason = verdict["reason"].as_str().expect("reason");
    assert!(reason.starts_with("Rollback: error-rate"), "{reason}");
    app.stop().await;
}

// A healthy canary is promoted on the final look after the whole window.
async fn healthy_canary_is_promoted_at_the_final_look(kind: StoreKind) {
    let start = window_start();
    let store = TestStore::start(kind, &two_services(start));
    let app = spawn_app(store.url(), &repo_root().join("rules")).await;

    let (status, verdict) = app
        .post_verdict(&request("checkout", start, start + MINUTES * 60, true))
        .await;
    assert_eq!(status, 200, "{verdict}");
    assert_eq!(verdict["verdict"], "promote", "{verdict:#}");
    for metric in verdict["metrics"].as_array().expect("metrics") {
        assert_eq!(metric["outcome"], "pass", "{metric:#}");
    }
    app.stop().await;
}

// An early look at a healthy canary does not promote it on thin evidence.
async fn healthy_canary_early_look_is_not_a_rollback(kind: StoreKind) {
    let start = window_start();
    let store = TestStore::start(kind, &two_services(start));
    let app = spawn_app(store.url(), &repo_root().join("rules")).await;

    let (status, verdict) = app
        .post_verdict(&request("checkout", start, start + 5 * 60, false))
        .await;
    assert_eq!(status, 200, "{verdict}");
    assert_eq!(verdict["verdict"], "inconclusive", "{verdict:#}");
    app.stop().await;
}

// A label value built to break out of its string reaches Prometheus escaped:
// the query keeps its shape, `or vector(1)` never runs, and the canary has no data.
#[tokio::test]
async fn injected_label_value_is_sent_escaped() {
    let start = window_start();
    let prometheus = TestPrometheus::start(&two_services(start));
    let app = spawn_app(&prometheus.url, &repo_root().join("rules")).await;

    let hostile = r#"x"} or vector(1) or {a=""#;
    let mut body = request("search", start, start + 10 * 60, false);
    body["canary"] = json!({ "track": hostile });
    let (status, verdict) = app.post_verdict(&body).await;
    assert_eq!(status, 200, "{verdict}");
    let errors = &verdict["metrics"][0];
    let canary_bad = errors["queries"]
        .as_array()
        .expect("queries")
        .iter()
        .find(|q| q["side"] == "canary" && q["role"] == "bad")
        .and_then(|q| q["promql"].as_str())
        .expect("canary bad query");
    assert_eq!(
        canary_bad,
        r#"http_requests_total{code=~"5..",service="search",track="x\"} or vector(1) or {a=\""}"#
    );
    // That exact text is what Prometheus ran.
    assert!(
        prometheus.query_log().iter().any(|q| q == canary_bad),
        "{:?}",
        prometheus.query_log()
    );
    // No series carries that label value, so the canary saw nothing: never a promote.
    assert_eq!(errors["outcome"], "nodata", "{errors:#}");
    assert_ne!(verdict["verdict"], "promote");
    app.stop().await;
}

// Bad requests get a 4xx with a JSON error that says what is wrong, and nothing reaches Prometheus.
#[tokio::test]
async fn bad_requests_are_refused_before_any_query() {
    let start = window_start();
    let prometheus = TestPrometheus::start(&two_services(start));
    let app = spawn_app(&prometheus.url, &repo_root().join("rules")).await;
    let good = request("search", start, start + 600, false);

    let mut cases: Vec<(serde_json::Value, u16, &str)> = Vec::new();
    let mut unknown_rules = good.clone();
    unknown_rules["rules"] = json!("nope");
    cases.push((
        unknown_rules,
        404,
        "no rule set `nope`; loaded rule sets: http",
    ));
    let mut misspelt_rules = good.clone();
    misspelt_rules["rules"] = json!("htp");
    cases.push((
        misspelt_rules,
        404,
        "no rule set `htp`; did you mean `http`?",
    ));
    let mut reversed = good.clone();
    reversed["end"] = json!(start - 60);
    cases.push((reversed, 400, "must come before"));
    let mut future = good.clone();
    future["end"] = json!(OffsetDateTime::now_utc().unix_timestamp() + 3600);
    cases.push((future, 400, "lies in the future"));
    let mut bad_time = good.clone();
    bad_time["start"] = json!("yesterday");
    cases.push((bad_time, 400, "RFC 3339"));
    let mut same = good.clone();
    same["baseline"] = json!({"track": "canary"});
    cases.push((same, 400, "same series"));
    let mut bad_label = good.clone();
    bad_label["canary"] = json!({"track-name": "canary"});
    cases.push((bad_label, 400, "track-name"));
    let mut bad_deployment = good.clone();
    bad_deployment["deployment"] = json!("a b");
    cases.push((bad_deployment, 400, "deployment"));
    let mut missing_var = good.clone();
    missing_var["vars"] = json!({});
    cases.push((missing_var, 400, "service"));
    let mut unknown_field = good.clone();
    unknown_field["windw"] = json!(1);
    cases.push((unknown_field, 400, "unknown field `windw`"));

    for (body, status, needle) in cases {
        let (got, answer) = app.post_verdict(&body).await;
        assert_eq!(got, status, "{body} -> {answer}");
        let message = answer["error"]["message"].as_str().expect("error message");
        assert!(
            message.contains(needle),
            "{message:?} should mention {needle:?}"
        );
    }
    let not_json = app
        .client
        .post(format!("{}/v1/verdicts", app.url))
        .body("{")
        .send()
        .await
        .expect("answer");
    assert_eq!(not_json.status().as_u16(), 400);
    prometheus.assert_no_queries();
    app.stop().await;
}

// Every verdict lands in the log as one JSON line and the history endpoints read it back.
#[tokio::test]
async fn verdicts_are_logged_and_listed() {
    let start = window_start();
    let prometheus = TestPrometheus::start(&two_services(start));
    let app = spawn_app(&prometheus.url, &repo_root().join("rules")).await;

    let (_, first) = app
        .post_verdict(&request("search", start, start + 600, false))
        .await;
    let (_, second) = app
        .post_verdict(&request("checkout", start, start + 600, false))
        .await;

    let (status, history) = app.get_json("/v1/verdicts?deployment=search-1402").await;
    assert_eq!(status, 200);
    let listed = history["verdicts"].as_array().expect("verdicts");
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["id"], first["id"]);
    assert_eq!(
        listed[0]["report_url"], first["report_url"],
        "listed verdicts link their reports"
    );
    let (status, all) = app.get_json("/v1/verdicts").await;
    assert_eq!(status, 200);
    assert_eq!(all["verdicts"][0]["id"], second["id"], "newest first");

    let (status, one) = app
        .get_json(&format!(
            "/v1/verdicts/{}",
            first["id"].as_str().expect("id")
        ))
        .await;
    assert_eq!(status, 200);
    assert_eq!(one, first);
    let (status, _) = app.get_json("/v1/verdicts/no-such-id").await;
    assert_eq!(status, 404);

    // The log holds both lines, each a whole JSON object with the request and the rules' hash.
    let files: Vec<_> = std::fs::read_dir(app.log_dir.path())
        .expect("log dir")
        .filter_map(Result::ok)
        .collect();
    assert_eq!(files.len(), 1);
    let text = std::fs::read_to_string(files[0].path()).expect("log file");
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["request"]["deployment"], "search-1402");
    assert_eq!(lines[0]["rules_hash"].as_str().map(str::len), Some(64));
    app.stop().await;
}

// Health says the process is up; readiness checks the store and the rules.
async fn health_and_readiness(kind: StoreKind) {
    let start = window_start();
    let store = TestStore::start(kind, &two_services(start));
    let app = spawn_app(store.url(), &repo_root().join("rules")).await;
    let health = app
        .client
        .get(format!("{}/healthz", app.url))
        .send()
        .await
        .expect("answer");
    assert_eq!(health.status().as_u16(), 200);
    let (status, ready) = app.get_json("/readyz").await;
    assert_eq!(status, 200, "{ready}");
    assert_eq!(ready["rule_sets"], json!(["http"]));
    app.stop().await;

    // Against a port where nothing listens, the server is alive but not ready.
    let nowhere = spawn_app("http://127.0.0.1:9", &repo_root().join("rules")).await;
    let (status, ready) = nowhere.get_json("/readyz").await;
    assert_eq!(status, 503, "{ready}");
    nowhere.stop().await;
}

// A canary judged over 46 hours, more 15 s steps than Prometheus answers in one
// range query (11,000), is measured whole: every request between start and end
// is counted once, as the store's own counters say, and no metric errs.
async fn long_window_is_counted_whole(kind: StoreKind) {
    const HOURS: i64 = 46;
    let now = OffsetDateTime::now_utc().unix_timestamp();
    let start = now - now % 60 - (HOURS + 1) * 3600;
    let end = start + HOURS * 3600;
    let side = |track: &str| SideTraffic::new(&[("service", "checkout"), ("track", track)]);
    let simulation = Simulation {
        start_secs: start,
        duration_secs: HOURS * 3600,
        // Sparse scrapes keep the backfill small; the query's steps are still 15 s.
        scrape_interval_secs: 60,
        seed: 11,
        sides: vec![side("baseline"), side("canary")],
    };
    let store = TestStore::start(kind, &simulation);
    let app = spawn_app(store.url(), &repo_root().join("rules")).await;

    let (status, verdict) = app
        .post_verdict(&request("checkout", start, end, true))
        .await;
    assert_eq!(status, 200, "{verdict}");
    assert_eq!(verdict["window"]["step_secs"], 15, "{verdict:#}");
    for metric in verdict["metrics"].as_array().expect("metrics") {
        assert_ne!(metric["outcome"], "error", "{metric:#}");
    }
    // What Prometheus's counters say the canary served between start and end.
    let client = reqwest::Client::new();
    let counter_at = |at: i64| {
        let client = client.clone();
        let url = format!("{}/api/v1/query", store.url());
        async move {
            let answer: serde_json::Value = client
                .get(url)
                .query(&[
                    (
                        "query",
                        r#"sum(http_requests_total{service="checkout",track="canary"})"#,
                    ),
                    ("time", &at.to_string()),
                ])
                .send()
                .await
                .expect("instant query")
                .json()
                .await
                .expect("JSON answer");
            // No series yet is a counter of zero: the canary's first scrape comes after its start.
            match answer["data"]["result"][0]["value"][1].as_str() {
                Some(value) => value.parse::<f64>().expect("a counter value"),
                None => 0.0,
            }
        }
    };
    let served = counter_at(end).await - counter_at(start).await;
    let error_rate = metric(&verdict, "error-rate");
    assert_eq!(
        error_rate["canary"]["count"].as_f64(),
        Some(served),
        "{error_rate:#}"
    );
    assert!(served > 3_000_000.0, "46 hours at 20 requests/s: {served}");
    app.stop().await;
}

on_both_stores!(
    broken_canary_is_rolled_back,
    healthy_canary_is_promoted_at_the_final_look,
    healthy_canary_early_look_is_not_a_rollback,
    health_and_readiness,
    long_window_is_counted_whole,
);
