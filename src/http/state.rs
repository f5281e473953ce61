//! What every handler of the HTTP door shares. At the bottom of `http/`
//! with the error type: it uses no handler.

use std::path::PathBuf;
use std::sync::Arc;

use axum::http::{HeaderMap, header};

use crate::http::admission::VerdictLimits;
use crate::http::auth::AccessPolicy;
use crate::report;
use crate::rules::RulesStore;
use crate::source::MetricSource;
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
}

impl<S: MetricSource> AppState<S> {
    /// State with the rules loaded from `rules_dir`; load errors are logged, not fatal.
    pub fn new(source: S, rules_dir: PathBuf, log: VerdictLog) -> AppState<S> {
        AppState {
            source,
            rules: Arc::new(RulesStore::open(rules_dir)),
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
}

impl<S> AppState<S> {
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
