//! What every handler of the HTTP door shares. At the bottom of `http/`
//! with the error type: it uses no handler.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::http::{HeaderMap, header};

use crate::http::admission::VerdictLimits;
use crate::http::auth::AccessPolicy;
use crate::pipe::{DEFAULT_VERDICT_TIMEOUT, Run};
use crate::report;
use crate::rules::RulesStore;
use crate::source::MetricSource;
use crate::telemetry::metrics::Metrics;
use crate::verdict::Verdict;
use crate::verdict::log::VerdictLog;

/// The source, the rules, the log and the policies of one server.
pub struct AppState<S> {
    pub source: S,
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
}

impl<S: MetricSource> AppState<S> {
    /// State with the rules loaded from `rules_dir`; load errors are logged, not fatal.
    pub fn new(source: S, rules_dir: PathBuf, log: VerdictLog) -> AppState<S> {
        let metrics = Arc::new(Metrics::new());
        let counted = Arc::clone(&metrics);
        let rules = RulesStore::open(rules_dir).with_reload_hook(Box::new(move |summary| {
            counted.rules_reloaded(summary.errors.is_empty())
        }));
        metrics.rules_loaded_at_start(rules.current().errors.is_empty());
        AppState {
            source,
            rules: Arc::new(rules),
            log,
            access: Arc::new(AccessPolicy::default()),
            limits: Arc::new(VerdictLimits::default().counting_refusals(metrics.refusals())),
            public_url: None,
            verdict_timeout: DEFAULT_VERDICT_TIMEOUT,
            metrics,
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

    /// The same state, with reports linked under `public_url`.
    pub fn with_public_url(mut self, public_url: Option<String>) -> AppState<S> {
        self.public_url = public_url;
        self
    }
}

impl<S> AppState<S> {
    /// How a verdict asked of this server now is run: within the verdict
    /// timeout from now, counted in the server's metrics.
    pub fn run(&self) -> Run<'_> {
        Run::within(self.verdict_timeout, self.metrics.as_ref())
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
