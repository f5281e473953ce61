//! Prometheus faults: each gets a defined metric outcome whose reason names
//! the cause, and none lets a canary through, not even on the final look.

use std::sync::Arc;
use std::time::Duration;

use crate::support::simulate::{SideTraffic, Simulation};
use canary_gate::http::admission::VerdictLimits;
use canary_gate::source::MAX_ATTEMPTS;
use serde_json::{Value, json};

use crate::on_both_stores;
use crate::support::fault::{Fault, FaultyPrometheus, svc_app, svc_final_look, svc_state};
use crate::support::store::{StoreKind, TestStore};
use crate::support::{
    MINUTES, TestApp, repo_root, request, spawn_app, spawn_state, two_services, window_start,
};

/// Client-side deadline of each query in these tests.
const QUERY_TIMEOUT: Duration = Duration::from_secs(1);

/// The server with the `svc` rules, against the Prometheus at `url`.
async fn app_against(url: &str) -> TestApp {
    svc_app(url, QUERY_TIMEOUT, VerdictLimits::default())
        .await
        .0
}

/// Asks for the final look while the double follows `faults`; returns the verdict and the double.
async fn judge_under(faults: Vec<Fault>) -> (Value, FaultyPrometheus) {
    let double = FaultyPrometheus::start(faults).await;
    let app = app_against(&double.url).await;
    let (status, verdict) = app.post_verdict(&svc_final_look()).await;
    assert_eq!(status, 200, "{verdict:#}");
    app.stop().await;
    (verdict, double)
}

/// Checks the one metric's outcome and that its reason names `cause`, and that
/// the final verdict is not a promote.
fn assert_held_back(verdict: &Value, outcome: &str, cause: &str) {
    let metric = &verdict["metrics"][0];
    assert_eq!(metric["outcome"], outcome, "{metric:#}");
    let reason = metric["reason"].as_str().expect("reason");
    assert!(reason.contains(cause), "{reason:?} should name {cause:?}");
    assert_eq!(verdict["final"], true);
    assert_ne!(verdict["verdict"], "promote", "{verdict:#}");
}

// The double's healthy data is promoted, so in the tests below the fault alone holds the canary back.
#[tokio::test]
async fn healthy_double_is_promoted() {
    let (verdict, _) = judge_under(vec![Fault::Healthy]).await;
    assert_eq!(verdict["verdict"], "promote", "{verdict:#}");
}

// Nothing listening: error naming the unreachable server, after the bounded retries.
#[tokio::test]
async fn connection_refused_is_an_error() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port");
    let app = app_against(&format!("http://{closed}")).await;
    let (status, verdict) = app.post_verdict(&svc_final_look()).await;
    assert_eq!(status, 200, "{verdict:#}");
    assert_held_back(&verdict, "error", "could not reach Prometheus");
    app.stop().await;
}

// A Prometheus that never answers is cut off by the client's own deadline, retried, then an error.
#[tokio::test]
async fn hang_hits_the_client_deadline() {
    let (verdict, double) = judge_under(vec![Fault::Hang]).await;
    assert_held_back(&verdict, "error", "deadline (timeout)");
    assert_eq!(
        double.calls("errors_total{track=\"canary\"}"),
        MAX_ATTEMPTS as usize
    );
}

// A 502 page from a proxy is transient: retried up to the limit, then an error naming the status.
#[tokio::test]
async fn bad_gateway_is_retried_then_an_error() {
    let (verdict, double) = judge_under(vec![Fault::Status(
        502,
        "<html><h1>502 Bad Gateway</h1></html>",
    )])
    .await;
    assert_held_back(&verdict, "error", "HTTP 502");
    assert_eq!(
        double.calls("errors_total{track=\"canary\"}"),
        MAX_ATTEMPTS as usize
    );
}

// A 503 that clears up is retried and the verdict is judged from the data that came.
#[tokio::test]
async fn transient_unavailable_recovers_by_retrying() {
    let unavailable =
        json!({"status": "error", "errorType": "unavailable", "error": "starting up"});
    let (verdict, double) = judge_under(vec![
        Fault::Json(503, unavailable.clone()),
        Fault::Json(503, unavailable),
        Fault::Healthy,
    ])
    .await;
    assert_eq!(verdict["metrics"][0]["outcome"], "pass", "{verdict:#}");
    assert_eq!(double.calls("errors_total{track=\"canary\"}"), 3);
}

// Unavailable for longer than the retries: an error that names Prometheus's error type.
#[tokio::test]
async fn persistent_unavailable_is_an_error() {
    let unavailable = json!({"status": "error", "errorType": "unavailable", "error": "no store"});
    let (verdict, _) = judge_under(vec![Fault::Json(503, unavailable)]).await;
    assert_held_back(&verdict, "error", "(unavailable): no store");
}

// A plain 500 is not a gateway fault: one try, then an error naming the status.
#[tokio::test]
async fn internal_server_error_is_not_retried() {
    let (verdict, double) = judge_under(vec![Fault::Status(500, "boom")]).await;
    assert_held_back(&verdict, "error", "HTTP 500: boom");
    assert_eq!(double.calls("errors_total{track=\"canary\"}"), 1);
}

// Prometheus refusing the query (400 bad_data) is never retried.
#[tokio::test]
async fn bad_data_is_not_retried() {
    let bad = json!({"status": "error", "errorType": "bad_data", "error": "parse error at char 3"});
    let (verdict, double) = judge_under(vec![Fault::Json(400, bad)]).await;
    assert_held_back(&verdict, "error", "(bad_data): parse error");
    assert_eq!(double.calls("errors_total{track=\"canary\"}"), 1);
}

// A 404 (wrong URL path, e.g. a missing prefix) is an error naming the status.
#[tokio::test]
async fn not_found_is_an_error() {
    let (verdict, _) = judge_under(vec![Fault::Status(404, "404 page not found")]).await;
    assert_held_back(&verdict, "error", "HTTP 404");
}

// A 200 whose body is not the API's JSON (a login page) is an unreadable answer.
#[tokio::test]
async fn non_json_body_is_an_error() {
    let (verdict, _) = judge_under(vec![Fault::Status(200, "<html>Please log in</html>")]).await;
    assert_held_back(&verdict, "error", "not the Prometheus API's JSON");
}

// A `status: error` answer (query too expensive) is an error with its type and message.
#[tokio::test]
async fn status_error_is_an_error() {
    let too_big = json!({"status": "error", "errorType": "execution", "error": "query processing would load too many samples"});
    let (verdict, _) = judge_under(vec![Fault::Json(422, too_big)]).await;
    assert_held_back(&verdict, "error", "(execution): query processing");
}

// Data that comes with warnings may be partial: an error that quotes the warning.
#[tokio::test]
async fn warnings_mean_partial_data() {
    let (verdict, _) = judge_under(vec![Fault::Warning("store eu-2 did not answer")]).await;
    assert_held_back(
        &verdict,
        "error",
        "may be partial: store eu-2 did not answer",
    );
}

// A NaN sample in a counter is broken data: an error naming it.
#[tokio::test]
async fn nan_sample_is_an_error() {
    let (verdict, _) = judge_under(vec![Fault::Sample("NaN")]).await;
    assert_held_back(&verdict, "error", "1 NaN of");
}

// +Inf and -Inf samples in a counter are broken data: an error naming them.
#[tokio::test]
async fn infinite_samples_are_an_error() {
    for (value, named) in [("+Inf", "1 +Inf of"), ("-Inf", "1 -Inf of")] {
        let (verdict, _) = judge_under(vec![Fault::Sample(value)]).await;
        assert_held_back(&verdict, "error", named);
    }
}

// No series at all for the canary: nodata saying so, and the final look stays inconclusive.
#[tokio::test]
async fn empty_result_is_nodata() {
    let (verdict, _) = judge_under(vec![Fault::Empty]).await;
    assert_held_back(
        &verdict,
        "nodata",
        "canary's total query returned no series",
    );
    assert_eq!(verdict["verdict"], "inconclusive");
}

// A real store: a canary selector that matches nothing is nodata, never a promote.
async fn real_empty_result_is_nodata(kind: StoreKind) {
    let start = window_start();
    let store = TestStore::start(kind, &two_services(start));
    let app = spawn_app(store.url(), &repo_root().join("rules")).await;
    let mut body = request("checkout", start, start + MINUTES * 60, true);
    body["canary"] = json!({"track": "ghost"});
    let (status, verdict) = app.post_verdict(&body).await;
    assert_eq!(status, 200, "{verdict:#}");
    for metric in verdict["metrics"].as_array().expect("metrics") {
        assert_eq!(metric["outcome"], "nodata", "{metric:#}");
        assert!(
            metric["reason"]
                .as_str()
                .expect("reason")
                .contains("returned no series"),
            "{metric:#}"
        );
    }
    assert_eq!(verdict["verdict"], "inconclusive", "{verdict:#}");
    app.stop().await;
}

/// The canary sides of a simulation, to give them a fault.
fn canary_sides(simulation: &mut Simulation) -> impl Iterator<Item = &mut SideTraffic> {
    simulation
        .sides
        .iter_mut()
        .filter(|side| side.labels.get("track").map(String::as_str) == Some("canary"))
}

// A real store: a healthy canary whose series vanish ten minutes in is an error at the final look.
async fn vanished_canary_is_an_error(kind: StoreKind) {
    let start = window_start();
    let mut simulation = two_services(start);
    for side in canary_sides(&mut simulation) {
        side.vanish_after_secs = Some(10 * 60);
    }
    let store = TestStore::start(kind, &simulation);
    let app = spawn_app(store.url(), &repo_root().join("rules")).await;
    let (status, verdict) = app
        .post_verdict(&request("checkout", start, start + MINUTES * 60, true))
        .await;
    assert_eq!(status, 200, "{verdict:#}");
    for metric in verdict["metrics"].as_array().expect("metrics") {
        assert_eq!(metric["outcome"], "error", "{metric:#}");
        let reason = metric["reason"].as_str().expect("reason");
        assert!(reason.contains("canary's series vanished"), "{reason}");
    }
    assert_ne!(verdict["verdict"], "promote", "{verdict:#}");
    app.stop().await;
}

// A real store: a pod restart (counter reset) neither hides a broken canary's errors
// nor loses a healthy canary's requests: resets count from zero.
async fn counter_reset_hides_nothing(kind: StoreKind) {
    let start = window_start();
    let mut simulation = two_services(start);
    for side in canary_sides(&mut simulation) {
        side.restart_after_secs = Some(5 * 60);
    }
    let store = TestStore::start(kind, &simulation);
    let app = spawn_app(store.url(), &repo_root().join("rules")).await;

    let (status, broken) = app
        .post_verdict(&request("search", start, start + MINUTES * 60, true))
        .await;
    assert_eq!(status, 200, "{broken:#}");
    assert_eq!(broken["verdict"], "rollback", "{broken:#}");
    assert_eq!(broken["metrics"][0]["outcome"], "fail");

    let (status, healthy) = app
        .post_verdict(&request("checkout", start, start + MINUTES * 60, false))
        .await;
    assert_eq!(status, 200, "{healthy:#}");
    // A reset read as a drop would lose a pod's whole history.
    assert_sides_counted_alike(&healthy["metrics"][0]);
    assert_ne!(healthy["verdict"], "rollback", "{healthy:#}");
    app.stop().await;
}

/// Both sides of the simulation serve the same traffic: their counts agree within 10%.
fn assert_sides_counted_alike(metric: &serde_json::Value) {
    let canary = metric["canary"]["count"].as_f64().expect("canary count");
    let baseline = metric["baseline"]["count"]
        .as_f64()
        .expect("baseline count");
    assert!(
        (canary / baseline - 1.0).abs() < 0.1,
        "{}: canary {canary} baseline {baseline}",
        metric["name"]
    );
}

/// The `http` rules with counters summed over pods, as some teams write them.
const SUMMED: &str = r#"
metrics:
  - name: error-rate
    kind: ratio
    critical: true
    bad: sum(http_requests_total{service="$service", code=~"5.."})
    total: sum(http_requests_total{service="$service"})
    direction: increase
    tolerance: 0%
  - name: slow-requests
    kind: latency
    histogram: sum by (le) (http_request_duration_seconds_bucket{service="$service"})
    threshold_seconds: 0.25
    direction: increase
    tolerance: 20%
"#;

// Rules that sum counters over pods: a canary pod's restart drops the sum, and
// that step is left unknown instead of counting the other pod's whole history
// as new requests and errors, so a healthy canary is not rolled back.
async fn restart_under_a_sum_over_pods_is_not_a_burst(kind: StoreKind) {
    let start = window_start();
    let mut simulation = two_services(start);
    for side in canary_sides(&mut simulation) {
        side.restart_after_secs = Some(20 * 60);
    }
    let store = TestStore::start(kind, &simulation);
    let rules = tempfile::tempdir().expect("temp dir");
    std::fs::write(rules.path().join("http.yaml"), SUMMED).expect("write rules");
    let app = spawn_app(store.url(), rules.path()).await;

    let (status, healthy) = app
        .post_verdict(&request("checkout", start, start + MINUTES * 60, true))
        .await;
    assert_eq!(status, 200, "{healthy:#}");
    assert_eq!(healthy["verdict"], "promote", "{healthy:#}");
    // One unknown step of 120 is lost; read as a restart, the sum would add the
    // other pod's 20 minutes of history (+32%).
    for metric in healthy["metrics"].as_array().expect("metrics") {
        assert_sides_counted_alike(metric);
        let reason = metric["reason"].as_str().expect("reason");
        assert!(reason.contains("1 of 120 steps were left out"), "{reason}");
    }
    app.stop().await;
}

// The one-shot CLI against an unreachable Prometheus exits 2 (inconclusive) at the final look, never 0.
#[test]
fn judge_cli_without_prometheus_exits_inconclusive() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port");
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_canary-gate"))
        .arg("judge")
        .args(["--prometheus", &format!("http://{closed}")])
        .arg("--rules-dir")
        .arg(repo_root().join("rules"))
        .args(["--rules", "http", "--deployment", "checkout-1402"])
        .args(["--canary", "track=canary", "--baseline", "track=baseline"])
        .args(["--start", &(now - 1800).to_string()])
        .args(["--end", &(now - 60).to_string()])
        .args([
            "--var",
            "service=checkout",
            "--final",
            "--query-timeout",
            "1s",
        ])
        .output()
        .expect("run canary-gate judge");
    let verdict: Value = serde_json::from_slice(&output.stdout).expect("a JSON verdict");
    assert_eq!(output.status.code(), Some(2), "{verdict:#}");
    assert_held_back(&verdict, "error", "could not reach Prometheus");
}

// Regression: a canary whose pods crash-loop under rules that sum counters over pods had
// every step "left out" with no word why, and stayed inconclusive forever. Its reason now
// says the canary's summed counter kept falling and how often it restarted, and it is
// never promoted, not even at the final look with on_nodata: ignore.
async fn crash_looping_canary_under_sum_says_it_restarted(kind: StoreKind) {
    let start = window_start();
    let mut simulation = two_services(start);
    for side in canary_sides(&mut simulation) {
        side.restart_every_secs = Some(20);
    }
    let store = TestStore::start(kind, &simulation);
    let rules = tempfile::tempdir().expect("temp dir");
    // on_nodata: ignore, the most lenient policy, must not let it through either.
    let lenient = format!("on_nodata: ignore\n{SUMMED}");
    std::fs::write(rules.path().join("http.yaml"), lenient).expect("write rules");
    let app = spawn_app(store.url(), rules.path()).await;

    let (status, verdict) = app
        .post_verdict(&request("checkout", start, start + MINUTES * 60, true))
        .await;
    assert_eq!(status, 200, "{verdict:#}");
    assert_eq!(verdict["verdict"], "inconclusive", "{verdict:#}");
    // Restarts every 20 s against 15 s scrapes: the sum falls in 3 steps of 4.
    for metric in verdict["metrics"].as_array().expect("metrics") {
        assert_eq!(metric["outcome"], "inconclusive", "{metric:#}");
        let reason = metric["reason"].as_str().expect("reason");
        assert!(
            reason.contains("90 of 120 steps were left out")
                && reason.contains("the canary's summed counter fell in 90 steps")
                && reason
                    .contains("restarted (or went away) at least 90 times in 30m, about every 20s")
                && reason.contains("A canary that keeps restarting is not promoted."),
            "{reason}"
        );
        assert!(!reason.contains("baseline's summed counter"), "{reason}");
    }
    app.stop().await;
}

// A Prometheus that never answers gets an answer within the verdict's deadline, not after 3
// client deadlines: the metric is an error naming the deadline, the verdict inconclusive.
#[tokio::test]
async fn hang_is_answered_at_the_verdict_deadline() {
    let double = FaultyPrometheus::start(vec![Fault::Hang]).await;
    let (state, log_dir) = svc_state(&double.url, Duration::from_secs(30));
    let state = state.with_verdict_timeout(Duration::from_millis(500));
    let app = spawn_state(Arc::new(state), log_dir).await;
    let (status, verdict) = app.post_verdict(&svc_final_look()).await;
    assert_eq!(status, 200, "{verdict:#}");
    assert_held_back(&verdict, "error", "the verdict deadline of 500ms");
    assert_eq!(verdict["verdict"], "inconclusive", "{verdict:#}");
    let reason = verdict["reason"].as_str().expect("reason");
    assert!(reason.contains("verdict deadline of 500ms"), "{reason}");
    assert!(reason.contains("will not promote"), "{reason}");
    app.stop().await;
}

// The one-shot CLI keeps the same budget: against a Prometheus that never answers,
// `judge --verdict-timeout` answers inconclusive (exit 2) naming the deadline.
#[tokio::test]
async fn judge_cli_hang_is_answered_at_the_verdict_deadline() {
    let double = FaultyPrometheus::start(vec![Fault::Hang]).await;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_canary-gate"))
        .arg("judge")
        .args(["--prometheus", &double.url])
        .arg("--rules-dir")
        .arg(repo_root().join("tests/fixtures/faults"))
        .args(["--rules", "svc", "--deployment", "svc-1"])
        .args(["--canary", "track=canary", "--baseline", "track=baseline"])
        .args(["--start", &(now - 1800).to_string()])
        .args(["--end", &(now - 60).to_string()])
        .args([
            "--final",
            "--query-timeout",
            "30s",
            "--verdict-timeout",
            "1s",
        ])
        .output()
        .await
        .expect("run canary-gate judge");
    let verdict: Value = serde_json::from_slice(&output.stdout).expect("a JSON verdict");
    assert_eq!(output.status.code(), Some(2), "{verdict:#}");
    assert_held_back(&verdict, "error", "the verdict deadline of 1s");
}

on_both_stores!(
    real_empty_result_is_nodata,
    vanished_canary_is_an_error,
    counter_reset_hides_nothing,
    restart_under_a_sum_over_pods_is_not_a_burst,
    crash_looping_canary_under_sum_says_it_restarted,
);
