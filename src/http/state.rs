//! What every handler of the HTTP door shares. At the bottom of `http/`
//! with the error type: it uses no handler.

use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::http::{HeaderMap, header};
use time::OffsetDateTime;

use crate::http::admission::VerdictLimits;
use crate::http::auth::AccessPolicy;
use crate::pipe::looks::Looks;
use crate::pipe::{self, DEFAULT_VERDICT_TIMEOUT, PipeError, Run};
use crate::report;
use crate::request::VerdictRequest;
use crate::rules::RulesStore;
use crate::rules::store::{self, ReloadSummary};
use crate::source::{MetricSource, Sources};
use crate::telemetry::metrics::Metrics;
use crate::verdict::Verdict;
use crate::verdict::log::VerdictLog;

/// Builds the sources again from their configuration (secrets read anew), for a reload.
pub type SourcesLoader<S> = Box<dyn Fn() -> Result<Sources<S>, String> + Send + Sync>;

/// The sources, the rules, the log and the policies of one server.
pub struct AppState<S> {
    /// The metric sources in force, replaced whole by a reload.
    sources: RwLock<Arc<Sources<S>>>,
    /// How a reload builds them again; `None` keeps them as they are.
    reload_sources: Option<SourcesLoader<S>>,
    /// The rule sets in force, reloaded in place.
    pub rules: Arc<RulesStore>,
    pub log: VerdictLog,
    /// Who may call which endpoint; open unless [`AppState::with_access`] says otherwise.
    pub access: Arc<AccessPolicy>,
    /// How many verdicts run at once and wait in line.
    pub limits: Arc<VerdictLimits>,
    /// Base URL people reach this server at, for `report_url`; when `None`,
    /// the request's Host header is used.
    pub public_url: Option<String>,
    /// The budget of one whole verdict, queries and retries included.
    pub verdict_timeout: Duration,
    /// The server's own metrics, served at `/metrics`.
    pub metrics: Arc<Metrics>,
    /// What the last looks at each canary's metrics kept, for the next.
    pub looks: Arc<Looks>,
}

impl<S: MetricSource> AppState<S> {
    /// State with one metric source, the default, and the rules loaded from
    /// `rules_dir`; load errors are logged, not fatal.
    pub fn new(source: S, rules_dir: PathBuf, log: VerdictLog) -> AppState<S> {
        AppState::with_sources(Sources::single(source), rules_dir, log)
    }

    /// [`AppState::new`] with named sources.
    pub fn with_sources(sources: Sources<S>, rules_dir: PathBuf, log: VerdictLog) -> AppState<S> {
        let metrics = Arc::new(Metrics::new());
        for (name, _) in sources.iter() {
            metrics.declare_source(name);
        }
        let counted = Arc::clone(&metrics);
        let rules = RulesStore::open(rules_dir).with_reload_hook(Box::new(move |summary| {
            counted.rules_reloaded(summary.errors.is_empty())
        }));
        metrics.rules_loaded_at_start(rules.current().errors.is_empty());
        AppState {
            sources: RwLock::new(Arc::new(sources)),
            reload_sources: None,
            rules: Arc::new(rules),
            log,
            access: Arc::new(AccessPolicy::default()),
            limits: Arc::new(VerdictLimits::default().counting_refusals(metrics.refusals())),
            public_url: None,
            verdict_timeout: DEFAULT_VERDICT_TIMEOUT,
            metrics,
            looks: Arc::new(Looks::new()),
        }
    }

    /// The same state with `access` guarding the endpoints.
    pub fn with_access(mut self, access: AccessPolicy) -> AppState<S> {
        self.access = Arc::new(access);
        self
    }

    /// The same state with other verdict limits.
    pub fn with_limits(mut self, limits: VerdictLimits) -> AppState<S> {
        self.limits = Arc::new(limits.counting_refusals(self.metrics.refusals()));
        self
    }

    /// The same state with another budget per verdict.
    pub fn with_verdict_timeout(mut self, verdict_timeout: Duration) -> AppState<S> {
        self.verdict_timeout = verdict_timeout;
        self
    }

    /// The same state, building its sources again with `loader` at every reload.
    pub fn with_sources_loader(mut self, loader: SourcesLoader<S>) -> AppState<S> {
        self.reload_sources = Some(loader);
        self
    }

    /// The sources in force now.
    pub fn sources(&self) -> Arc<Sources<S>> {
        self.sources
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Builds the sources again (their secrets read anew) and puts them in
    /// force; on a failure the sources in force stay, and the error is returned.
    pub fn reload_sources(&self) -> Result<(), String> {
        let Some(loader) = &self.reload_sources else {
            return Ok(());
        };
        let fresh = loader()?;
        for (name, _) in fresh.iter() {
            self.metrics.declare_source(name);
        }
        *self.sources.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(fresh);
        Ok(())
    }

    /// Judges `request` through the pipe as of now, with this server's
    /// sources, rules, log and deadline: what both verdict doors do.
    pub async fn judge(&self, request: VerdictRequest) -> Result<Verdict, PipeError> {
        let rules = self.rules.current();
        let now = OffsetDateTime::now_utc();
        pipe::judge(
            &self.sources(),
            &rules,
            Some(&self.log),
            request,
            now,
            self.run(),
        )
        .await
    }

    /// Reads the sources' configuration (and secrets) and the rules folder
    /// again, and puts what is good in force: what `SIGHUP` and
    /// `POST /v1/rules/reload` do. A config that fails keeps the sources in
    /// force, and its error joins the summary's errors.
    pub async fn reload(self: &Arc<Self>) -> ReloadSummary {
        let state = self.clone();
        let sources = tokio::task::spawn_blocking(move || state.reload_sources())
            .await
            .unwrap_or_else(|e| Err(format!("the source reload task failed: {e}")));
        let mut summary = store::reload(&self.rules).await;
        if let Err(error) = sources {
            tracing::error!(%error, "the config file's sources failed to reload; the sources in force stay");
            summary.errors.push(error);
        }
        summary
    }

    /// The same state, with reports linked under `public_url`.
    pub fn with_public_url(mut self, public_url: Option<String>) -> AppState<S> {
        self.public_url = public_url;
        self
    }
}

impl<S> AppState<S> {
    /// How a verdict asked of this server now is run: within the verdict
    /// timeout from now, counted in the server's metrics, its looks kept
    /// for the next.
    pub fn run(&self) -> Run<'_> {
        Run::within(self.verdict_timeout, self.metrics.as_ref()).keeping_looks(&self.looks)
    }

    /// `verdict` with its `report_url`: under `--public-url` when given, else
    /// under the Host the request was sent to, else a path relative to this server.
    pub fn with_report_url(&self, headers: &HeaderMap, mut verdict: Verdict) -> Verdict {
        let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
        verdict.report_url = Some(report::report_url(
            self.public_url.as_deref(),
            host,
            &verdict.id,
        ));
        verdict
    }
}
