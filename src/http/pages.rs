//! The pages a person reads: `GET /` (the history) and `GET /verdicts/{id}`
//! (one verdict's report), both drawn from the verdict log by [`crate::report`].

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;

use crate::http::error::ApiError;
use crate::http::state::AppState;
use crate::http::verdicts;
use crate::report;
use crate::source::MetricSource;
use crate::verdict::Verdict;
use crate::verdict::log::Filter;

/// Most verdicts the history page lists.
pub const HISTORY_PAGE_ROWS: usize = 200;

/// The history page's form; empty fields mean "any".
#[derive(Debug, Default, Deserialize)]
pub struct HistoryForm {
    rules: Option<String>,
    deployment: Option<String>,
    verdict: Option<String>,
}

/// `GET /`: the newest verdicts, filtered by the form.
pub async fn history<S: MetricSource>(
    State(state): State<Arc<AppState<S>>>,
    query: Result<Query<HistoryForm>, axum::extract::rejection::QueryRejection>,
) -> Result<Html<String>, ApiError> {
    // A malformed query string lists everything rather than failing the page.
    let form = query.map(|Query(form)| form).unwrap_or_default();
    let given = |field: Option<String>| field.filter(|v| !v.trim().is_empty());
    let filter = Filter {
        rules: given(form.rules),
        deployment: given(form.deployment),
        verdict: given(form.verdict).and_then(|v| v.parse().ok()),
        since_secs: None,
    };
    let shown = filter.clone();
    let contents = state
        .log
        .blocking(move |log| log.newest(&shown, HISTORY_PAGE_ROWS))
        .await
        .map_err(ApiError::LogUnreadable)?;
    let verdicts: Vec<Verdict> = contents.records.into_iter().map(|r| r.verdict).collect();
    Ok(Html(report::history_page(
        &verdicts,
        &filter,
        contents.unreadable.len(),
    )))
}

/// `GET /verdicts/{id}`: the report, or a page that says why there is none.
pub async fn report<S: MetricSource>(
    State(state): State<Arc<AppState<S>>>,
    Path(id): Path<String>,
) -> Response {
    match verdicts::find(&state, &id).await {
        Ok(verdict) => Html(report::verdict_page(&verdict)).into_response(),
        Err(error) => (
            error.status(),
            Html(report::no_such_verdict_page(&error.to_string())),
        )
            .into_response(),
    }
}
