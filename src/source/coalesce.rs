//! Coalescing: concurrent verdicts that need the same query at the same time
//! share one request to Prometheus instead of sending it once each.
//!
//! Only queries in flight are shared; an answer is never kept after it
//! arrives, so nothing is ever served stale.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use futures_util::FutureExt;
use futures_util::future::{BoxFuture, Shared};

use super::contract::{MetricSource, RangeSpec, Series, SourceError};

/// What makes two queries the same: the PromQL and the range or instant.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Key {
    Range(String, RangeSpec),
    Instant(String, i64),
}

type Answer = Result<Vec<Series>, SourceError>;
type Flight = Shared<BoxFuture<'static, Answer>>;

/// A [`MetricSource`] that sends each distinct in-flight query once.
pub struct Coalescing<S> {
    inner: Arc<S>,
    flights: Arc<Mutex<HashMap<Key, Flight>>>,
    joined: AtomicU64,
}

impl<S> std::fmt::Debug for Coalescing<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Coalescing")
            .field("joined", &self.joined)
            .finish_non_exhaustive()
    }
}

impl<S: MetricSource> Coalescing<S> {
    /// Wraps `inner`.
    pub fn new(inner: S) -> Self {
        Coalescing {
            inner: Arc::new(inner),
            flights: Arc::new(Mutex::new(HashMap::new())),
            joined: AtomicU64::new(0),
        }
    }

    /// How many queries so far were answered by joining one already in flight.
    pub fn joined(&self) -> u64 {
        self.joined.load(Ordering::Relaxed)
    }

    /// Joins the flight for `key`, or starts one that runs `send` on the inner source.
    async fn fetch(
        &self,
        key: Key,
        send: impl FnOnce(Arc<S>) -> BoxFuture<'static, Answer>,
    ) -> Answer {
        let flight = {
            let mut flights = self.flights.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(flight) = flights.get(&key) {
                self.joined.fetch_add(1, Ordering::Relaxed);
                flight.clone()
            } else {
                // The query runs as its own task, so it finishes (and leaves the
                // map) even when every verdict waiting on it is cancelled.
                let flights_map = Arc::clone(&self.flights);
                let own_key = key.clone();
                let query = send(Arc::clone(&self.inner));
                let task = tokio::spawn(async move {
                    let answer = query.await;
                    flights_map
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .remove(&own_key);
                    answer
                });
                let flight: Flight = async move {
                    task.await.unwrap_or_else(|e| {
                        Err(SourceError::BadResponse(format!(
                            "internal: the query task ended early: {e}"
                        )))
                    })
                }
                .boxed()
                .shared();
                flights.insert(key, flight.clone());
                flight
            }
        };
        flight.await
    }
}

impl<S: MetricSource> MetricSource for Coalescing<S> {
    async fn range_query(&self, promql: &str, range: RangeSpec) -> Answer {
        let owned = promql.to_string();
        self.fetch(Key::Range(owned.clone(), range), move |inner| {
            async move { inner.range_query(&owned, range).await }.boxed()
        })
        .await
    }

    async fn instant_query(&self, promql: &str, at_secs: i64) -> Answer {
        let owned = promql.to_string();
        self.fetch(Key::Instant(owned.clone(), at_secs), move |inner| {
            async move { inner.instant_query(&owned, at_secs).await }.boxed()
        })
        .await
    }

    async fn ready(&self) -> Result<(), SourceError> {
        self.inner.ready().await
    }
}
