//! Rollout controllers as callers: the request shapes Argo Rollouts' web
//! metric provider and Flagger's webhooks send, against the real server.

use serde_json::json;

use crate::support::prometheus::TestPrometheus;
use crate::support::{repo_root, request, spawn_app, two_services, window_start};

// Argo Rollouts cannot send the canary's start: the window opens at the canary's
// first sample in the store (here the first look, at that very instant, is
// inconclusive), later looks judge from it, and `final_after` makes the last one final.
// `end` replays time here; Argo itself leaves it out and gets now.
#[tokio::test]
async fn argo_web_provider_shape_without_start() {
    let start = window_start();
    let prometheus = TestPrometheus::start(&two_services(start));
    let app = spawn_app(&prometheus.url, &repo_root().join("rules")).await;
    let argo = |service: &str, end: i64| {
        json!({
            "rules": "http",
            "deployment": format!("{service}-7d9f8c"),
            "canary": {"track": "canary"},
            "baseline": {"track": "baseline"},
            "vars": {"service": service},
            "final_after": "20m",
            "end": end,
        })
    };

    let (status, first) = app.post_verdict(&argo("search", start)).await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["verdict"], "inconclusive", "{first:#}");
    assert_eq!(first["window"]["start_secs"], start);

    // Argo's successCondition/failureCondition read `result` from jsonPath `{$.verdict}`.
    let (status, later) = app.post_verdict(&argo("search", start + 600)).await;
    assert_eq!(status, 200, "{later}");
    // The simulated counters appear with their first increment, one scrape
    // (15 s) after the traffic began: that is the canary's first sample.
    assert_eq!(
        later["window"]["start_secs"],
        start + 15,
        "start is the canary's first sample"
    );
    assert_eq!(later["verdict"], "rollback", "{later:#}");

    let (_, opened) = app.post_verdict(&argo("checkout", start)).await;
    assert_eq!(opened["verdict"], "inconclusive");
    let (_, last) = app.post_verdict(&argo("checkout", start + 25 * 60)).await;
    assert_eq!(last["final"], true, "25 minutes is past final_after 20m");
    assert_eq!(last["verdict"], "promote", "{last:#}");
    app.stop().await;
}

// Flagger's webhook payload is judged from the metadata; a rollback answers 412 so
// Flagger counts a failed check, a healthy look answers 200, and a payload without
// `rules` is refused with a message that says what to add.
#[tokio::test]
async fn flagger_webhook_statuses() {
    let start = window_start();
    let prometheus = TestPrometheus::start(&two_services(start));
    let app = spawn_app(&prometheus.url, &repo_root().join("rules")).await;
    let payload = |service: &str| {
        json!({
            "name": service,
            "namespace": "test",
            "phase": "Progressing",
            "checksum": "85d557f47b",
            "metadata": {
                "rules": "http",
                "canary": "track=canary",
                "baseline": "{track=\"baseline\"}",
                "var.service": service,
            },
        })
    };
    // An earlier look of the same revision opened its window at `start`.
    for service in ["search", "checkout"] {
        let mut opening = request(service, start, start + 60, false);
        opening["deployment"] = json!(format!("test/{service}-85d557f47b"));
        let (status, _) = app.post_verdict(&opening).await;
        assert_eq!(status, 200);
    }

    let send = |body: serde_json::Value| {
        let client = app.client.clone();
        let url = format!("{}/v1/flagger", app.url);
        async move {
            let response = client.post(url).json(&body).send().await.expect("answer");
            let status = response.status().as_u16();
            (
                status,
                response.json::<serde_json::Value>().await.expect("JSON"),
            )
        }
    };
    let (status, verdict) = send(payload("search")).await;
    assert_eq!(status, 412, "{verdict:#}");
    assert_eq!(verdict["verdict"], "rollback");
    assert_eq!(verdict["deployment"], "test/search-85d557f47b");

    let (status, verdict) = send(payload("checkout")).await;
    assert_eq!(status, 200, "{verdict:#}");
    assert_ne!(verdict["verdict"], "rollback");

    let mut no_rules = payload("search");
    no_rules["metadata"]
        .as_object_mut()
        .expect("object")
        .remove("rules");
    let (status, error) = send(no_rules).await;
    assert_eq!(status, 400);
    assert!(
        error["error"]["message"]
            .as_str()
            .expect("message")
            .contains("`rules`"),
        "{error}"
    );
    app.stop().await;
}

// Two replicas with their own verdict logs, one of which only joins halfway
// through (a restart, a load balancer): looks without `start` get the same
// window and the same verdict from both, because the start comes from the
// canary's first sample in the store, not from either replica's log.
#[tokio::test]
async fn replicas_with_separate_logs_agree_on_looks_without_start() {
    let start = window_start();
    let prometheus = TestPrometheus::start(&two_services(start));
    let rules = repo_root().join("rules");
    let first = spawn_app(&prometheus.url, &rules).await;
    let joiner = spawn_app(&prometheus.url, &rules).await;
    assert_ne!(first.log_dir.path(), joiner.log_dir.path());
    let look = |minutes: i64| {
        json!({
            "rules": "http",
            "deployment": "search-7d9f8c",
            "canary": {"track": "canary"},
            "baseline": {"track": "baseline"},
            "vars": {"service": "search"},
            "end": start + minutes * 60,
        })
    };
    // The canary's first sample: its counters appear with their first
    // increment, one 15 s scrape after the traffic began.
    let first_sample = start + 15;
    for minutes in [1, 3, 5] {
        let (status, verdict) = first.post_verdict(&look(minutes)).await;
        assert_eq!(status, 200, "{verdict:#}");
        assert_eq!(verdict["window"]["start_secs"], first_sample, "{verdict:#}");
    }
    for minutes in [8, 10, 15] {
        let (_, one) = first.post_verdict(&look(minutes)).await;
        let (_, other) = joiner.post_verdict(&look(minutes)).await;
        assert_eq!(one["window"], other["window"], "minute {minutes}");
        assert_eq!(one["window"]["start_secs"], first_sample);
        assert_eq!(one["verdict"], other["verdict"], "minute {minutes}");
        for (a, b) in one["metrics"]
            .as_array()
            .expect("metrics")
            .iter()
            .zip(other["metrics"].as_array().expect("metrics"))
        {
            assert_eq!(a["canary"], b["canary"], "minute {minutes}");
            assert_eq!(a["baseline"], b["baseline"], "minute {minutes}");
            assert_eq!(a["estimate"], b["estimate"], "minute {minutes}");
        }
    }
    first.stop().await;
    joiner.stop().await;
}
