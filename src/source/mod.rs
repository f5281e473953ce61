//! Where measurements come from: Prometheus, or anything that answers PromQL
//! the same way (a test double, a file).
//!
//! The judge only sees the [`MetricSource`] trait, so a fault-injecting double
//! or another store fits beside the real client.

mod prometheus;

use std::collections::BTreeMap;
use std::future::Future;

pub use prometheus::{DEFAULT_QUERY_TIMEOUT, PrometheusSource};

/// The labels and samples of one series from a range query.
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    pub labels: BTreeMap<String, String>,
    /// `(unix seconds, value)` in time order.
    pub points: Vec<(i64, f64)>,
}

/// The time range and resolution of a range query, in unix seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
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
    #[error("Prometheus did not answer within {0} s")]
    Timeout(u64),
    /// The source answered with an error about the query or its own state.
    #[error("Prometheus answered with an error ({kind}): {message}")]
    Query { kind: String, message: String },
    /// The answer could not be understood.
    #[error("Prometheus sent an answer canary-gate cannot read: {0}")]
    BadResponse(String),
}

impl SourceError {
    /// Whether asking again soon may succeed.
    pub fn is_transient(&self) -> bool {
        match self {
            SourceError::Unreachable(_) | SourceError::Timeout(_) => true,
            SourceError::Query { kind, .. } => {
                matches!(
                    kind.as_str(),
                    "timeout" | "unavailable" | "internal" | "canceled"
                )
            }
            SourceError::BadResponse(_) => false,
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
