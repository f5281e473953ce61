//! Where measurements come from: Prometheus, or anything that answers PromQL
//! the same way (a test double, a file).
//!
//! The judge only sees the [`MetricSource`] trait, so a fault-injecting double
//! or another store fits beside the real client.

mod coalesce;
mod prometheus;
mod retry;
mod tls;

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

pub use coalesce::Coalescing;
pub use prometheus::{DEFAULT_QUERY_TIMEOUT, PrometheusSource};
pub use retry::{FIRST_BACKOFF, MAX_ATTEMPTS, MAX_BACKOFF, RetryPolicy, Retrying};

/// The labels and samples of one series from a range query.
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    pub labels: BTreeMap<String, String>,
    /// `(unix seconds, value)` in time order.
    pub points: Vec<(i64, f64)>,
}

/// The time range and resolution of a range query, in unix seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RangeSpec {
    pub start_secs: i64,
    pub end_secs: i64,
    pub step_secs: u64,
}

/// Why a source could not answer a query.
#[derive(Clone, Debug, thiserror::Error, PartialEq)]
pub enum SourceError {
    /// Nothing answered at the address.
    #[error("could not reach Prometheus: {0}")]
    Unreachable(String),
    /// The source did not answer within the client's deadline.
    #[error("Prometheus did not answer within the {0:?} deadline (timeout)")]
    Timeout(Duration),
    /// The source answered with an HTTP error status and no readable API error.
    #[error("Prometheus answered HTTP {status}: {body}")]
    Http { status: u16, body: String },
    /// The source answered with an error about the query or its own state.
    #[error("Prometheus answered with an error ({kind}): {message}")]
    Query { kind: String, message: String },
    /// The source answered, but warned that the data may be partial.
    #[error("Prometheus warned that its answer may be partial: {}", .0.join("; "))]
    Partial(Vec<String>),
    /// The answer could not be understood.
    #[error("Prometheus sent an answer canary-gate cannot read: {0}")]
    BadResponse(String),
}

impl SourceError {
    /// Whether asking again soon may succeed: connection errors, timeouts,
    /// the gateway statuses 502/503/504 and Prometheus's own `timeout` and
    /// `unavailable` errors. A bad query (4xx, `bad_data`) never is.
    pub fn is_transient(&self) -> bool {
        match self {
            SourceError::Unreachable(_) | SourceError::Timeout(_) => true,
            SourceError::Http { status, .. } => matches!(status, 502..=504),
            SourceError::Query { kind, .. } => matches!(kind.as_str(), "timeout" | "unavailable"),
            SourceError::Partial(_) | SourceError::BadResponse(_) => false,
        }
    }
}

/// Anything that answers PromQL range and instant queries.
pub trait MetricSource: Send + Sync + 'static {
    /// Evaluates `promql` at every step of `range`.
    fn range_query(
        &self,
        promql: &str,
        range: RangeSpec,
    ) -> impl Future<Output = Result<Vec<Series>, SourceError>> + Send;

    /// Evaluates `promql` at one instant; each series has one point.
    fn instant_query(
        &self,
        promql: &str,
        at_secs: i64,
    ) -> impl Future<Output = Result<Vec<Series>, SourceError>> + Send;

    /// Whether the source is up and ready to answer.
    fn ready(&self) -> impl Future<Output = Result<(), SourceError>> + Send;
}
