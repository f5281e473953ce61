//! Load: a bounded number of verdicts at once and in line (503 with
//! Retry-After past it), identical queries coalesced, and a graceful shutdown
//! that finishes the verdicts in flight. No timing assertions: the double
//! holds queries until the test lets them through.

use std::sync::Arc;
use std::time::{Duration, Instant};

use canary_gate::http::AppState;
use canary_gate::http::admission::{RETRY_AFTER_SECS, VerdictLimits};
use canary_gate::verdict::log::VerdictLog;

use crate::support::TestApp;
use crate::support::fault::{Fault, FaultyPrometheus, ServiceSource, svc_app, svc_final_look};

/// Longest wait for a condition; a guard against hangs, not a measurement.
const HANG_GUARD: Duration = Duration::from_secs(60);

/// Waits until `condition` holds, failing the test if it never does.
async fn eventually(what: &str, condition: impl Fn() -> bool) {
    let deadline = Instant::now() + HANG_GUARD;
    while !condition() {
        assert!(Instant::now() < deadline, "never happened: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The server with the `svc` rules against `double`, with `limits`; returns the state too.
async fn app_with(
    double: &FaultyPrometheus,
    limits: VerdictLimits,
) -> (TestApp, Arc<AppState<ServiceSource>>) {
    svc_app(&double.url, HANG_GUARD, limits).await
}

/// Lines in the app's verdict log.
fn logged_ids(app: &TestApp) -> Vec<String> {
    VerdictLog::open(app.log_dir.path())
        .expect("log")
        .read_all()
        .expect("readable log")
        .records
        .into_iter()
        .map(|r| r.verdict.id)
        .collect()
}

// One verdict running and one waiting fill a 1+1 server: the next is refused with 503 and
// Retry-After at once, and the two admitted ones still complete.
#[tokio::test]
async fn past_the_queue_the_answer_is_503_with_retry_after() {
    let double = FaultyPrometheus::start(vec![Fault::Healthy]).await;
    double.hold();
    let (app, state) = app_with(&double, VerdictLimits::new(1, 1)).await;
    let app = Arc::new(app);
    let body = svc_final_look();

    let running = tokio::spawn({
        let (app, body) = (Arc::clone(&app), body.clone());
        async move { app.post_verdict(&body).await }
    });
    double.wait_arrivals(1).await;
    let waiting = tokio::spawn({
        let (app, body) = (Arc::clone(&app), body.clone());
        async move { app.post_verdict(&body).await }
    });
    eventually("a second verdict waits in line", || {
        state.limits.queued() == 1
    })
    .await;

    let refused = app
        .client
        .post(format!("{}/v1/verdicts", app.url))
        .json(&body)
        .send()
        .await
        .expect("the server answers");
    assert_eq!(refused.status().as_u16(), 503);
    let retry_after = refused
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    assert_eq!(retry_after, Some(RETRY_AFTER_SECS.to_string()));
    let answer: serde_json::Value = refused.json().await.expect("JSON error");
    assert_eq!(answer["error"]["code"], "busy", "{answer}");

    double.release();
    for task in [running, waiting] {
        let (status, verdict) = task.await.expect("request task");
        assert_eq!(status, 200, "{verdict}");
    }
    assert_eq!(logged_ids(&app).len(), 2);
    assert_eq!(state.limits.running(), 0);
}

// Eight identical verdicts at once send each distinct query to Prometheus once.
#[tokio::test]
async fn identical_queries_are_coalesced() {
    const VERDICTS: usize = 8;
    /// Distinct queries of one `svc` verdict: bad and total, per side.
    const DISTINCT: usize = 4;
    let double = FaultyPrometheus::start(vec![Fault::Healthy]).await;
    double.hold();
    let (app, state) = app_with(&double, VerdictLimits::new(VERDICTS, 0)).await;
    let app = Arc::new(app);
    let body = svc_final_look();
    let tasks: Vec<_> = (0..VERDICTS)
        .map(|_| {
            let (app, body) = (Arc::clone(&app), body.clone());
            tokio::spawn(async move { app.post_verdict(&body).await })
        })
        .collect();
    let joiners = ((VERDICTS - 1) * DISTINCT) as u64;
    eventually("every verdict joined the queries in flight", || {
        state
            .sources()
            .pick(None)
            .expect("the default source")
            .1
            .joined()
            == joiners
    })
    .await;
    double.release();
    for task in tasks {
        let (status, verdict) = task.await.expect("request task");
        assert_eq!(status, 200, "{verdict}");
    }
    for query in [
        "errors_total{track=\"canary\"}",
        "requests_total{track=\"canary\"}",
        "errors_total{track=\"baseline\"}",
        "requests_total{track=\"baseline\"}",
    ] {
        assert_eq!(double.calls(query), 1, "{query}");
    }
}

// A shutdown that arrives while a verdict waits on Prometheus lets it finish, answer and be logged.
#[tokio::test]
async fn graceful_shutdown_finishes_in_flight_verdicts() {
    let double = FaultyPrometheus::start(vec![Fault::Healthy]).await;
    double.hold();
    let (mut app, _state) = app_with(&double, VerdictLimits::default()).await;
    let client = app.client.clone();
    let url = format!("{}/v1/verdicts", app.url);
    let body = svc_final_look();
    let in_flight = tokio::spawn(async move {
        let response = client.post(url).json(&body).send().await.expect("answer");
        let status = response.status().as_u16();
        let verdict: serde_json::Value = response.json().await.expect("JSON");
        (status, verdict)
    });
    double.wait_arrivals(1).await;
    app.begin_shutdown();
    double.release();
    let (status, verdict) = in_flight.await.expect("request task");
    assert_eq!(status, 200, "{verdict}");
    let id = verdict["id"].as_str().expect("id").to_string();
    assert_eq!(logged_ids(&app), vec![id]);
    app.stop().await;
}

// A source with no `max_concurrent_queries` keeps the default number of queries in
// flight: verdicts whose queries all differ (twice that many in all) send the rest
// only as answers come back, and every verdict completes once the store answers.
#[tokio::test]
async fn queries_in_flight_are_bounded_by_default() {
    use canary_gate::source::config::DEFAULT_MAX_CONCURRENT_QUERIES as LIMIT;
    /// Distinct queries of one `svc` verdict: bad and total, per side.
    const DISTINCT: usize = 4;
    let verdicts = 2 * LIMIT / DISTINCT;
    let double = FaultyPrometheus::start(vec![Fault::Healthy]).await;
    double.hold();
    let (app, _state) = app_with(&double, VerdictLimits::new(verdicts, 0)).await;
    let app = Arc::new(app);
    let tasks: Vec<_> = (0..verdicts)
        .map(|i| {
            // Windows a minute apart, so no two verdicts share a query.
            let mut body = svc_final_look();
            body["end"] = (body["end"].as_i64().expect("end") - 60 * i as i64).into();
            let app = Arc::clone(&app);
            tokio::spawn(async move { app.post_verdict(&body).await })
        })
        .collect();
    double.wait_arrivals(LIMIT).await;
    // Not a measurement: time for any query past the limit to arrive, were it sent.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(double.requests().len(), LIMIT);
    double.release();
    for task in tasks {
        let (status, verdict) = task.await.expect("request task");
        assert_eq!(status, 200, "{verdict}");
    }
    assert_eq!(double.requests().len(), verdicts * DISTINCT);
}
