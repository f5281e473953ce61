//! Bounded retries with exponential backoff around any [`MetricSource`], for
//! transient faults only (see [`SourceError::is_transient`]): a bad query is
//! answered at once, never asked again.

use std::future::Future;
use std::time::Duration;

use super::contract::{MetricSource, RangeSpec, Series, SourceError};

/// Most attempts per query, the first included.
pub const MAX_ATTEMPTS: u32 = 3;
/// Pause before the first retry; each later pause doubles it.
pub const FIRST_BACKOFF: Duration = Duration::from_millis(250);
/// Longest pause between two attempts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// How often and how patiently to ask again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Most attempts per query, the first included (at least 1).
    pub max_attempts: u32,
    /// Pause before the first retry.
    pub first_backoff: Duration,
    /// Longest pause.
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: MAX_ATTEMPTS,
            first_backoff: FIRST_BACKOFF,
            max_backoff: MAX_BACKOFF,
        }
    }
}

impl RetryPolicy {
    /// The pause after failed attempt number `attempt` (1-based).
    pub fn backoff(&self, attempt: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempt.saturating_sub(1));
        self.first_backoff
            .saturating_mul(factor)
            .min(self.max_backoff)
    }

    /// Runs `attempt` until it succeeds, fails for good, or the attempts run out.
    async fn run<F, Fut>(&self, mut attempt: F) -> Result<Vec<Series>, SourceError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<Vec<Series>, SourceError>>,
    {
        let mut tried = 1;
        loop {
            match attempt().await {
                Err(error) if error.is_transient() && tried < self.max_attempts.max(1) => {
                    tracing::warn!(%error, attempt = tried, "transient Prometheus fault; asking again");
                    tokio::time::sleep(self.backoff(tried)).await;
                    tried += 1;
                }
                other => return other,
            }
        }
    }
}

/// A [`MetricSource`] that asks its inner source again after transient faults.
#[derive(Clone, Debug)]
pub struct Retrying<S> {
    inner: S,
    policy: RetryPolicy,
}

impl<S> Retrying<S> {
    /// Wraps `inner` with the retry `policy`.
    pub fn new(inner: S, policy: RetryPolicy) -> Self {
        Retrying { inner, policy }
    }
}

impl<S: MetricSource> MetricSource for Retrying<S> {
    async fn range_query(
        &self,
        promql: &str,
        range: RangeSpec,
    ) -> Result<Vec<Series>, SourceError> {
        self.policy
            .run(|| self.inner.range_query(promql, range))
            .await
    }

    async fn instant_query(&self, promql: &str, at_secs: i64) -> Result<Vec<Series>, SourceError> {
        self.policy
            .run(|| self.inner.instant_query(promql, at_secs))
            .await
    }

    async fn ready(&self) -> Result<(), SourceError> {
        // Readiness reports the state now; retrying would only hide it.
        self.inner.ready().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Backoff doubles from the first pause and stops at the cap.
    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let policy = RetryPolicy::default();
        assert_eq!(policy.backoff(1), FIRST_BACKOFF);
        assert_eq!(policy.backoff(2), FIRST_BACKOFF * 2);
        assert_eq!(policy.backoff(30), MAX_BACKOFF);
    }
}
