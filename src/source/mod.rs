//! Where measurements come from: Prometheus, or anything that answers PromQL
//! the same way (a test double, a file).
//!
//! The pipe only sees the [`MetricSource`] trait, so a fault-injecting double
//! or another store fits beside the real client. The fourth stage of the
//! pipe: it knows PromQL only as text, and uses only [`crate::text`].

mod coalesce;
pub mod config;
mod contract;
mod matrix_scan;
pub mod memory;
mod prometheus;
mod retry;
pub mod sources;
mod tls;
mod window_cache;

use std::time::Duration;

pub use coalesce::Coalescing;
pub use config::{SourceSettings, SourcesConfig};
pub use contract::{MetricSource, RangeSpec, Series, SourceError};
pub use memory::MemorySource;
pub use prometheus::{DEFAULT_QUERY_TIMEOUT, PrometheusSource};
#[doc(hidden)]
pub use prometheus::{
    read_answer as read_prometheus_answer, read_answer_by_serde as read_prometheus_answer_by_serde,
};
pub use retry::{FIRST_BACKOFF, MAX_ATTEMPTS, MAX_BACKOFF, RetryPolicy, Retrying};
pub use sources::Sources;
pub use window_cache::WindowCache;

/// The source both doors judge with: Prometheus, each query retried while its
/// faults are transient, and identical queries of concurrent verdicts sent once.
pub type PrometheusStack = Coalescing<Retrying<PrometheusSource>>;

/// A [`PrometheusStack`] for every source of `config`, by name.
pub fn prometheus_sources(config: &SourcesConfig) -> Result<Sources<PrometheusStack>, SourceError> {
    let mut stacks = std::collections::BTreeMap::new();
    for (name, settings) in &config.sources {
        let source = PrometheusSource::from_settings(settings)?;
        let stack = Coalescing::new(Retrying::new(source, RetryPolicy::default()));
        stacks.insert(name.clone(), stack);
    }
    Sources::new(stacks, &config.default_source).map_err(SourceError::Unreachable)
}

/// [`PrometheusStack`] for the server at `url`, each query given up after
/// `query_timeout`.
pub fn prometheus_stack(
    url: &str,
    query_timeout: Duration,
) -> Result<PrometheusStack, SourceError> {
    let source = PrometheusSource::new(url, query_timeout)?;
    Ok(Coalescing::new(Retrying::new(
        source,
        RetryPolicy::default(),
    )))
}
