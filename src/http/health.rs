//! The probes: `GET /healthz` (the process is up) and `GET /readyz` (the
//! metric store answers and rules are loaded).

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use futures_util::future::join_all;
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
    let sources = state.sources();
    let answers = join_all(
        sources
            .iter()
            .map(|(name, source)| async move { (name, source.ready().await) }),
    )
    .await;
    let all_ready = answers.iter().all(|(_, answer)| answer.is_ok());
    // One source says just its state; several say each one's by name.
    let words: Vec<String> = answers
        .iter()
        .map(|(name, answer)| {
            let state = match answer {
                Ok(()) => "ready".to_string(),
                Err(e) => e.to_string(),
            };
            match answers.len() {
                1 => state,
                _ => format!("{name}: {state}"),
            }
        })
        .collect();
    let ready = all_ready && !loaded.sets.is_empty();
    let readiness = Readiness {
        ready,
        prometheus: words.join("; "),
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
