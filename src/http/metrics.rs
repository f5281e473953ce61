//! `GET /metrics`: the server's own metrics in the Prometheus text format,
//! for Prometheus to scrape. Open like the probes (see `auth::ALWAYS_OPEN`).

use std::sync::Arc;

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};

use crate::http::state::AppState;
use crate::source::MetricSource;
use crate::telemetry::metrics::CONTENT_TYPE;

/// `GET /metrics`, with the verdicts in flight and queued as of this scrape.
pub async fn serve<S: MetricSource>(State(state): State<Arc<AppState<S>>>) -> Response {
    let text = state
        .metrics
        .encode(state.limits.running(), state.limits.queued());
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], text).into_response()
}
