//! A Prometheus double that answers each query as a test scripts it: healthy
//! counters, or a fault a real Prometheus cannot be made to produce on demand
//! (a hang, a 502 page, warnings, NaN samples...). It listens on loopback port 0.
//!
//! Baseline queries (those without `track="canary"`) are always answered
//! healthily; canary queries follow the script, call by call.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Form, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};
use tokio::sync::watch;

use canary_gate::http::AppState;
use canary_gate::http::admission::VerdictLimits;
use canary_gate::source::{Coalescing, PrometheusSource, Retrying};
use canary_gate::verdict::log::VerdictLog;

use super::{TestApp, repo_root, service_source, spawn_state};

/// Errors per second in the double's healthy counters.
const ERRORS_PER_SECOND: f64 = 1.0;
/// Requests per second in the double's healthy counters.
const REQUESTS_PER_SECOND: f64 = 100.0;

/// The source stack `canary-gate serve` uses.
pub type ServiceSource = Coalescing<Retrying<PrometheusSource>>;

/// The real server with the `svc` rules against the Prometheus at `url`, with
/// the client deadline `timeout` and the verdict `limits`; returns its state too.
pub async fn svc_app(
    url: &str,
    timeout: Duration,
    limits: VerdictLimits,
) -> (TestApp, Arc<AppState<ServiceSource>>) {
    let (state, log_dir) = svc_state(url, timeout);
    let state = Arc::new(state.with_limits(limits));
    (spawn_state(Arc::clone(&state), log_dir).await, state)
}

/// The state [`svc_app`] serves, with a fresh verdict log folder, for tests
/// that adjust it (a verdict timeout, access) before serving it.
pub fn svc_state(url: &str, timeout: Duration) -> (AppState<ServiceSource>, tempfile::TempDir) {
    let log_dir = tempfile::tempdir().expect("temp dir");
    let log = VerdictLog::open(log_dir.path()).expect("log dir");
    let state = AppState::new(
        service_source(url, timeout),
        repo_root().join("tests/fixtures/faults"),
        log,
    );
    (state, log_dir)
}

/// The final look at the `svc` canary (rules in `tests/fixtures/faults`) over the last half hour.
pub fn svc_final_look() -> Value {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    json!({
        "rules": "svc",
        "deployment": "svc-1",
        "canary": {"track": "canary"},
        "baseline": {"track": "baseline"},
        "start": now - 1800,
        "end": now - 60,
        "final": true,
    })
}

/// What the double does with one canary query.
#[derive(Clone, Debug)]
pub enum Fault {
    /// Healthy counters, the same as the baseline's.
    Healthy,
    /// Never answers.
    Hang,
    /// An HTTP status with a plain-text (or HTML) body.
    Status(u16, &'static str),
    /// An HTTP status with a JSON body, e.g. a Prometheus error envelope.
    Json(u16, Value),
    /// Healthy counters, but one sample in the middle has this value (`NaN`, `+Inf`).
    Sample(&'static str),
    /// A success with no series.
    Empty,
    /// Healthy counters with a warning that the answer may be partial.
    Warning(&'static str),
}

#[derive(Default)]
struct Script {
    faults: Vec<Fault>,
    /// Calls seen per query text.
    calls: HashMap<String, usize>,
}

struct Shared {
    script: Mutex<Script>,
    /// While true, every query waits before it is answered.
    held: watch::Sender<bool>,
    /// Queries that have arrived, held or not.
    arrived: watch::Sender<usize>,
    /// The method and headers of every query, in arrival order.
    requests: Mutex<Vec<(Method, HeaderMap)>>,
}

/// A running double.
pub struct FaultyPrometheus {
    pub url: String,
    shared: Arc<Shared>,
}

impl FaultyPrometheus {
    /// Starts the double; canary query number n (per query text) gets
    /// `faults[n]`, or the last fault once the list runs out.
    pub async fn start(faults: Vec<Fault>) -> FaultyPrometheus {
        let shared = Arc::new(Shared {
            script: Mutex::new(Script {
                faults,
                calls: HashMap::new(),
            }),
            held: watch::channel(false).0,
            arrived: watch::channel(0).0,
            requests: Mutex::new(Vec::new()),
        });
        let app = Router::new()
            .route("/api/v1/query_range", get(range_query).post(range_query))
            .route("/api/v1/query", get(instant_query).post(instant_query))
            .route(
                "/-/ready",
                get(|| async { "Prometheus Server is Ready.\n" }),
            )
            .with_state(Arc::clone(&shared));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind port 0");
        let url = format!("http://{}", listener.local_addr().expect("address"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        FaultyPrometheus { url, shared }
    }

    /// How many times a query whose text contains `needle` was asked.
    pub fn calls(&self, needle: &str) -> usize {
        let script = self.shared.script.lock().expect("script lock");
        script
            .calls
            .iter()
            .filter(|(query, _)| query.contains(needle))
            .map(|(_, n)| n)
            .sum()
    }

    /// The method and headers of every query that arrived, in order.
    pub fn requests(&self) -> Vec<(Method, HeaderMap)> {
        self.shared.requests.lock().expect("requests lock").clone()
    }

    /// From now on, queries wait until [`FaultyPrometheus::release`].
    pub fn hold(&self) {
        self.shared.held.send_replace(true);
    }

    /// Lets every held query (and all later ones) through.
    pub fn release(&self) {
        self.shared.held.send_replace(false);
    }

    /// Waits until at least `count` queries have arrived.
    pub async fn wait_arrivals(&self, count: usize) {
        let mut arrived = self.shared.arrived.subscribe();
        arrived
            .wait_for(|n| *n >= count)
            .await
            .expect("the double is running");
    }
}

// `Form` reads a GET's query string and a POST's form body, as Prometheus does.
async fn range_query(
    State(shared): State<Arc<Shared>>,
    method: Method,
    headers: HeaderMap,
    Form(params): Form<HashMap<String, String>>,
) -> Response {
    record(&shared, method, headers);
    answer(shared, params, true).await
}

async fn instant_query(
    State(shared): State<Arc<Shared>>,
    method: Method,
    headers: HeaderMap,
    Form(params): Form<HashMap<String, String>>,
) -> Response {
    record(&shared, method, headers);
    answer(shared, params, false).await
}

/// Keeps a query's method and headers, for tests of what reached the store.
fn record(shared: &Shared, method: Method, headers: HeaderMap) {
    shared
        .requests
        .lock()
        .expect("requests lock")
        .push((method, headers));
}

async fn answer(shared: Arc<Shared>, params: HashMap<String, String>, range: bool) -> Response {
    let query = params.get("query").cloned().unwrap_or_default();
    let fault = {
        let mut script = shared.script.lock().expect("script lock");
        let call = script.calls.entry(query.clone()).or_insert(0);
        let index = *call;
        *call += 1;
        if query.contains("track=\"canary\"") {
            let last = script.faults.len().saturating_sub(1);
            script
                .faults
                .get(index.min(last))
                .cloned()
                .unwrap_or(Fault::Healthy)
        } else {
            Fault::Healthy
        }
    };
    shared.arrived.send_modify(|n| *n += 1);
    let mut held = shared.held.subscribe();
    let _ = held.wait_for(|h| !*h).await;

    let number = |name: &str| params.get(name).and_then(|v| v.parse::<f64>().ok());
    let (start, end, step) = if range {
        (
            number("start").unwrap_or(0.0),
            number("end").unwrap_or(0.0),
            number("step").unwrap_or(60.0).max(1.0),
        )
    } else {
        let at = number("time").unwrap_or(0.0);
        (at, at, 1.0)
    };
    let per_second = if query.contains("errors_total") {
        ERRORS_PER_SECOND
    } else {
        REQUESTS_PER_SECOND
    };
    let healthy = |odd: Option<&str>| {
        let mut values = Vec::new();
        let mut t = start;
        while t <= end {
            values.push(json!([t, format!("{}", per_second * (t - start + step))]));
            t += step;
        }
        if let Some(odd) = odd {
            let middle = values.len() / 2;
            if let Some(sample) = values.get_mut(middle) {
                sample[1] = json!(odd);
            }
        }
        let series = if range {
            json!({"metric": {}, "values": values})
        } else {
            json!({"metric": {}, "value": values.last().cloned().unwrap_or(json!([start, "0"]))})
        };
        json!({"resultType": if range {"matrix"} else {"vector"}, "result": [series]})
    };
    match fault {
        Fault::Healthy => Json(json!({"status": "success", "data": healthy(None)})).into_response(),
        Fault::Hang => std::future::pending().await,
        Fault::Status(status, body) => (
            StatusCode::from_u16(status).expect("a valid status"),
            [(header::CONTENT_TYPE, "text/html")],
            body,
        )
            .into_response(),
        Fault::Json(status, body) => (
            StatusCode::from_u16(status).expect("a valid status"),
            Json(body),
        )
            .into_response(),
        Fault::Sample(value) => {
            Json(json!({"status": "success", "data": healthy(Some(value))})).into_response()
        }
        Fault::Empty => Json(json!({
            "status": "success",
            "data": {"resultType": if range {"matrix"} else {"vector"}, "result": []}
        }))
        .into_response(),
        Fault::Warning(warning) => Json(json!({
            "status": "success",
            "data": healthy(None),
            "warnings": [warning],
        }))
        .into_response(),
    }
}
