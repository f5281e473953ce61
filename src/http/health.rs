//! The probes: `GET /healthz` (the process is up) and `GET /readyz` (the
//! metric store answers and rules are loaded).

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;

use crate::http::state::AppState;
use crate::source::MetricSource;

/// `GET /healthz`.
pub async fn alive() -> &'static str {
    "ok\n"
}

/// The answer of `GET /readyz`.
#[derive(Serialize)]
pub struct Readiness {
    ready: bool,
    prometheus: String,
    rule_sets: Vec<String>,
    rule_errors: Vec<String>,
}

/// `GET /readyz`: 200 when the source answers and at least one rule set is in force.
pub async fn ready<S: MetricSource>(
    State(state): State<Arc<AppState<S>>>,
) -> (StatusCode, Json<Readiness>) {
    let loaded = state.rules.current();
    let source = state.source.ready().await;
    let ready = source.is_ok() && !loaded.sets.is_empty();
    let readiness = Readiness {
        ready,
        prometheus: match source {
            Ok(()) => "ready".into(),
            Err(e) => e.to_string(),
        },
        rule_sets: loaded.sets.keys().cloned().collect(),
        rule_errors: loaded.errors.iter().map(|e| e.to_string()).collect(),
    };
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(readiness))
}
