//! The HTTP door into the pipe: `POST /v1/verdicts` and the read endpoints.
//!
//! [`run`] takes its listener and its shutdown signal from the caller, so tests
//! start the real server on port 0.

use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::handler::Handler;
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use tokio::net::TcpListener;

use crate::analyze::{AnalyzeError, analyze};
use crate::auth::{self, AccessPolicy};
use crate::flagger;
use crate::limits::{VerdictLimits, limit_verdicts};
use crate::log::{Filter, LogRecord, VerdictLog};
use crate::report;
use crate::request::{Judgement, MAX_WINDOW_SECS, VerdictRequest};
use crate::rules::{self, LoadedRules};
use crate::source::MetricSource;
use crate::verdict::{Outcome, Verdict};
use crate::{openapi, rules_api};

/// Largest request body accepted, in bytes.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// Most verdicts one history request returns.
pub const MAX_HISTORY: usize = 1000;
/// Most verdicts the history page lists.
pub const HISTORY_PAGE_ROWS: usize = 200;

/// What every handler shares.
pub struct AppState<S> {
    pub source: S,
    pub rules_dir: PathBuf,
    pub rules: RwLock<Arc<LoadedRules>>,
    pub log: VerdictLog,
    /// Who may call which endpoint; open unless [`AppState::with_access`] says otherwise.
    pub access: Arc<AccessPolicy>,
    /// How many verdicts run at once and wait in line.
    pub limits: Arc<VerdictLimits>,
    /// Base URL people reach this server at, for `report_url`; when `None`,
    /// the request's Host header is used.
    pub public_url: Option<String>,
}

impl<S: MetricSource> AppState<S> {
    /// State with the rules loaded from `rules_dir`; load errors are logged, not fatal.
    pub fn new(source: S, rules_dir: PathBuf, log: VerdictLog) -> AppState<S> {
        let loaded = rules::load_dir(&rules_dir);
        for error in &loaded.errors {
            tracing::error!(%error, "rule file rejected");
        }
        tracing::info!(rule_sets = ?loaded.sets.keys().collect::<Vec<_>>(), dir = %rules_dir.display(), "rules loaded");
        AppState {
            source,
            rules_dir,
            rules: RwLock::new(Arc::new(loaded)),
            log,
            access: Arc::new(AccessPolicy::default()),
            limits: Arc::new(VerdictLimits::default()),
            public_url: None,
        }
    }

    /// The same state with `access` guarding the endpoints.
    pub fn with_access(mut self, access: AccessPolicy) -> AppState<S> {
        self.access = Arc::new(access);
        self
    }

    /// The same state with other verdict limits.
    pub fn with_limits(mut self, limits: VerdictLimits) -> AppState<S> {
        self.limits = Arc::new(limits);
        self
    }

    /// The same state, with reports linked under `public_url`.
    pub fn with_public_url(mut self, public_url: Option<String>) -> AppState<S> {
        self.public_url = public_url;
        self
    }

    fn rules(&self) -> Arc<LoadedRules> {
        self.rules.read().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// An error answer: a status and a JSON body that says what is wrong.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl ApiError {
    pub(crate) fn new(
        status: StatusCode,
        code: &'static str,
        message: impl Into<String>,
    ) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: ErrorDetail<'a>,
}

#[derive(Serialize)]
struct ErrorDetail<'a> {
    code: &'a str,
    message: &'a str,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code,
                message: &self.message,
            },
        };
        (self.status, Json(body)).into_response()
    }
}

impl From<AnalyzeError> for ApiError {
    fn from(error: AnalyzeError) -> ApiError {
        match error {
            AnalyzeError::Plan(e) => {
                ApiError::new(StatusCode::BAD_REQUEST, "bad_request", e.to_string())
            }
        }
    }
}

/// The routes, bound to `state`.
pub fn router<S: MetricSource>(state: Arc<AppState<S>>) -> Router {
    // Every route that judges takes a verdict slot first.
    let limited = axum::middleware::from_fn_with_state(state.limits.clone(), limit_verdicts);
    Router::new()
        .route(
            "/v1/verdicts",
            get(list_verdicts::<S>).post(create_verdict::<S>.layer(limited.clone())),
        )
        .route("/v1/verdicts/{id}", get(get_verdict::<S>))
        .route("/v1/flagger", post(flagger_webhook::<S>.layer(limited)))
        .route("/", get(history_page::<S>))
        .route("/verdicts/{id}", get(report_page::<S>))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(ready::<S>))
        .route("/openapi.json", get(openapi::serve))
        .merge(rules_api::routes::<S>())
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

async fn create_verdict<S: MetricSource>(
    State(state): State<Arc<AppState<S>>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Verdict>, ApiError> {
    let request: VerdictRequest = serde_json::from_slice(&body).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_request",
            format!("the request body is not a valid verdict request: {e}"),
        )
    })?;
    let verdict = judge_and_log(&state, request).await?;
    Ok(Json(with_report_url(&state, &headers, verdict)))
}

/// Flagger's webhook: 200 to pass the check, 412 for a rollback, 503 when a
/// metric could not be read; the verdict is the body either way.
async fn flagger_webhook<S: MetricSource>(
    State(state): State<Arc<AppState<S>>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<Verdict>), ApiError> {
    let payload: flagger::WebhookPayload = serde_json::from_slice(&body).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_request",
            format!("the body is not a Flagger webhook payload: {e}"),
        )
    })?;
    let request = flagger::to_request(&payload)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "bad_request", e.to_string()))?;
    let verdict = judge_and_log(&state, request).await?;
    let status = StatusCode::from_u16(flagger::status_for(&verdict))
        .unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
    Ok((status, Json(with_report_url(&state, &headers, verdict))))
}

/// The start of the first logged verdict of `deployment` under `rules` that
/// could still open a window ending at `now_secs`.
async fn first_start<S: MetricSource>(
    state: &AppState<S>,
    deployment: &str,
    rules: &str,
    now_secs: i64,
) -> Result<Option<i64>, ApiError> {
    // A window spans at most MAX_WINDOW_SECS, so a first look older than that
    // (and a day's slack for the file boundary) cannot start a valid one.
    let since_secs = now_secs - MAX_WINDOW_SECS - 24 * 3600;
    let (deployment, rules) = (deployment.to_string(), rules.to_string());
    state
        .log
        .blocking(move |log| log.first_start(&deployment, &rules, since_secs))
        .await
        .map_err(log_unreadable)
}

/// The pipe behind every write door: validate, judge, log, answer.
async fn judge_and_log<S: MetricSource>(
    state: &AppState<S>,
    request: VerdictRequest,
) -> Result<Verdict, ApiError> {
    let now = OffsetDateTime::now_utc();
    let first = match request.start {
        Some(_) => None,
        None => {
            first_start(
                state,
                &request.deployment,
                &request.rules,
                now.unix_timestamp(),
            )
            .await?
        }
    };
    let judgement = Judgement::parse(&request, now.unix_timestamp(), first)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "bad_request", e.to_string()))?;
    let loaded = state.rules();
    let Some(rule_set) = loaded.sets.get(&judgement.rules) else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_rules",
            loaded.missing(&judgement.rules),
        ));
    };
    let verdict = analyze(&state.source, rule_set, &judgement, now).await?;
    let record = LogRecord { verdict, request };
    state.log.append_async(record.clone()).await.map_err(|e| {
        tracing::error!(error = %e, "could not record a verdict");
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "log_unwritable",
            format!(
                "the verdict could not be recorded in the verdict log, so it is not given: {e}"
            ),
        )
    })?;
    tracing::info!(
        id = %record.verdict.id,
        deployment = %record.verdict.deployment,
        rules = %record.verdict.rules,
        verdict = record.verdict.verdict.as_str(),
        reason = %record.verdict.reason,
        "verdict"
    );
    Ok(record.verdict)
}

/// Filters for `GET /v1/verdicts`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct HistoryQuery {
    deployment: Option<String>,
    rules: Option<String>,
    verdict: Option<Outcome>,
    limit: Option<usize>,
}

#[derive(Serialize)]
struct History {
    verdicts: Vec<Verdict>,
    /// Log lines that could not be read, as `file:line`, in the files read for this answer.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    unreadable: Vec<String>,
}

async fn list_verdicts<S: MetricSource>(
    State(state): State<Arc<AppState<S>>>,
    headers: HeaderMap,
    query: Result<Query<HistoryQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<History>, ApiError> {
    let Query(query) =
        query.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "bad_request", e.body_text()))?;
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
        .map_err(log_unreadable)?;
    let verdicts = contents
        .records
        .into_iter()
        .map(|r| with_report_url(&state, &headers, r.verdict))
        .collect();
    Ok(Json(History {
        verdicts,
        unreadable: contents.unreadable,
    }))
}

async fn get_verdict<S: MetricSource>(
    State(state): State<Arc<AppState<S>>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<Verdict>, ApiError> {
    let verdict = find_verdict(&state, &id).await?;
    Ok(Json(with_report_url(&state, &headers, verdict)))
}

/// The verdict `id` from the log, newest record first.
async fn find_verdict<S: MetricSource>(state: &AppState<S>, id: &str) -> Result<Verdict, ApiError> {
    let wanted = id.to_string();
    state
        .log
        .blocking(move |log| log.find(&wanted))
        .await
        .map_err(log_unreadable)?
        .map(|r| r.verdict)
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                format!("no verdict with id `{id}` in the log"),
            )
        })
}

fn log_unreadable(error: std::io::Error) -> ApiError {
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "log_unreadable",
        format!("the verdict log cannot be read: {error}"),
    )
}

#[derive(Serialize)]
struct Readiness {
    ready: bool,
    prometheus: String,
    rule_sets: Vec<String>,
    rule_errors: Vec<String>,
}

async fn ready<S: MetricSource>(
    State(state): State<Arc<AppState<S>>>,
) -> (StatusCode, Json<Readiness>) {
    let loaded = state.rules();
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

/// `verdict` with its `report_url`: under `--public-url` when given, else
/// under the Host the request was sent to, else a path relative to this server.
fn with_report_url<S>(state: &AppState<S>, headers: &HeaderMap, mut verdict: Verdict) -> Verdict {
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    verdict.report_url = Some(report::report_url(
        state.public_url.as_deref(),
        host,
        &verdict.id,
    ));
    verdict
}

/// The history page's form; empty fields mean "any".
#[derive(Debug, Default, Deserialize)]
struct HistoryForm {
    rules: Option<String>,
    deployment: Option<String>,
    verdict: Option<String>,
}

async fn history_page<S: MetricSource>(
    State(state): State<Arc<AppState<S>>>,
    query: Result<Query<HistoryForm>, axum::extract::rejection::QueryRejection>,
) -> Result<Html<String>, ApiError> {
    // A malformed query string lists everything rather than failing the page.
    let form = query.map(|Query(form)| form).unwrap_or_default();
    let given = |field: Option<String>| field.filter(|v| !v.trim().is_empty());
    let filter = Filter {
        rules: given(form.rules),
        deployment: given(form.deployment),
        verdict: given(form.verdict)
            .and_then(|v| serde_json::from_value(serde_json::Value::String(v)).ok()),
        since_secs: None,
    };
    let shown = filter.clone();
    let contents = state
        .log
        .blocking(move |log| log.newest(&shown, HISTORY_PAGE_ROWS))
        .await
        .map_err(log_unreadable)?;
    let verdicts: Vec<Verdict> = contents.records.into_iter().map(|r| r.verdict).collect();
    Ok(Html(report::history_page(
        &verdicts,
        &filter,
        contents.unreadable.len(),
    )))
}

async fn report_page<S: MetricSource>(
    State(state): State<Arc<AppState<S>>>,
    Path(id): Path<String>,
) -> Response {
    match find_verdict(&state, &id).await {
        Ok(verdict) => Html(report::verdict_page(&verdict)).into_response(),
        Err(error) => (
            error.status,
            Html(report::no_such_verdict_page(&error.message)),
        )
            .into_response(),
    }
}
