//! The verdict endpoints: `POST /v1/verdicts` judges a canary through the
//! pipe; `GET /v1/verdicts` and `GET /v1/verdicts/{id}` read the verdict log.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use serde::{Deserialize, Serialize};

use crate::http::error::ApiError;
use crate::http::state::AppState;
use crate::request::VerdictRequest;
use crate::source::MetricSource;
use crate::verdict::log::Filter;
use crate::verdict::{Outcome, Verdict};

/// Most verdicts one history request returns.
pub const MAX_HISTORY: usize = 1000;

/// `POST /v1/verdicts`.
pub async fn create<S: MetricSource>(
    State(state): State<Arc<AppState<S>>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Verdict>, ApiError> {
    let request: VerdictRequest = serde_json::from_slice(&body).map_err(|e| {
        ApiError::BadRequest(format!(
            "the request body is not a valid verdict request: {e}"
        ))
    })?;
    let verdict = state.judge(request).await?;
    Ok(Json(state.with_report_url(&headers, verdict)))
}

/// Filters for `GET /v1/verdicts`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HistoryQuery {
    deployment: Option<String>,
    rules: Option<String>,
    verdict: Option<Outcome>,
    limit: Option<usize>,
}

/// The answer of `GET /v1/verdicts`.
#[derive(Serialize)]
pub struct History {
    verdicts: Vec<Verdict>,
    /// Log lines that could not be read, as `file:line`, in the files read for this answer.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    unreadable: Vec<String>,
}

/// `GET /v1/verdicts`: the newest verdicts that pass the filters.
pub async fn list<S: MetricSource>(
    State(state): State<Arc<AppState<S>>>,
    headers: HeaderMap,
    query: Result<Query<HistoryQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<History>, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let limit = query.limit.unwrap_or(100).min(MAX_HISTORY);
    let filter = Filter {
        deployment: query.deployment,
        rules: query.rules,
        verdict: query.verdict,
        since_secs: None,
    };
    let contents = state
        .log
        .blocking(move |log| log.newest(&filter, limit))
        .await
        .map_err(ApiError::LogUnreadable)?;
    let verdicts = contents
        .records
        .into_iter()
        .map(|r| state.with_report_url(&headers, r.verdict))
        .collect();
    Ok(Json(History {
        verdicts,
        unreadable: contents.unreadable,
    }))
}

/// `GET /v1/verdicts/{id}`.
pub async fn get<S: MetricSource>(
    State(state): State<Arc<AppState<S>>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<Verdict>, ApiError> {
    let verdict = find(&state, &id).await?;
    Ok(Json(state.with_report_url(&headers, verdict)))
}

/// The verdict `id` from the log, newest record first.
pub async fn find<S: MetricSource>(state: &AppState<S>, id: &str) -> Result<Verdict, ApiError> {
    let wanted = id.to_string();
    state
        .log
        .blocking(move |log| log.find(&wanted))
        .await
        .map_err(ApiError::LogUnreadable)?
        .map(|r| r.verdict)
        .ok_or_else(|| ApiError::NotFound(format!("no verdict with id `{id}` in the log")))
}
