//! The HTTP door into the pipe: `POST /v1/verdicts`, Flagger's webhook, the
//! read endpoints, the pages and the probes.
//!
//! Inside `http/`, imports only go down: [`error`] and [`state`] at the bottom
//! (with [`admission`] and [`auth`], the layers every request passes), the
//! handlers above them ([`verdicts`], [`flagger`], [`rules`], [`pages`],
//! [`health`], [`metrics`], [`openapi`]), and this file, which routes to the
//! handlers.
//! [`run`] takes its listener and its shutdown signal from the caller, so
//! tests start the real server on port 0.

pub mod admission;
pub mod auth;
pub mod error;
pub mod flagger;
pub mod health;
pub mod metrics;
pub mod openapi;
pub mod pages;
pub mod rules;
pub mod state;
pub mod verdicts;

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::handler::Handler;
use axum::middleware;
use axum::routing::{get, post};
use tokio::net::TcpListener;

pub use admission::MAX_BODY_BYTES;
pub use error::ApiError;
pub use pages::HISTORY_PAGE_ROWS;
pub use state::AppState;
pub use verdicts::MAX_HISTORY;

use crate::source::MetricSource;

/// The routes, bound to `state`.
pub fn router<S: MetricSource>(state: Arc<AppState<S>>) -> Router {
    // Every route that judges takes a verdict slot first.
    let limited = middleware::from_fn_with_state(state.limits.clone(), admission::limit_verdicts);
    Router::new()
        .route(
            "/v1/verdicts",
            get(verdicts::list::<S>).post(verdicts::create::<S>.layer(limited.clone())),
        )
        .route("/v1/verdicts/{id}", get(verdicts::get::<S>))
        .route("/v1/flagger", post(flagger::webhook::<S>.layer(limited)))
        .route("/", get(pages::history::<S>))
        .route("/verdicts/{id}", get(pages::report::<S>))
        .route("/healthz", get(health::alive))
        .route("/readyz", get(health::ready::<S>))
        .route("/metrics", get(metrics::serve::<S>))
        .route("/openapi.json", get(openapi::serve))
        .merge(rules::routes::<S>())
        .fallback(openapi::not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(middleware::from_fn_with_state(
            state.access.clone(),
            auth::require_token,
        ))
        .layer(middleware::map_response(openapi::json_errors))
        .with_state(state)
}

/// Serves until `shutdown` resolves, then finishes the requests in flight.
pub async fn run<S: MetricSource>(
    listener: TcpListener,
    state: Arc<AppState<S>>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
}
