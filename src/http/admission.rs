//! Admission: what the server lets in. Bodies up to [`MAX_BODY_BYTES`], and
//! verdicts: at most so many judged at once, at most so many more waiting
//! their turn, and past that a `503` with `Retry-After` instead of an
//! ever-growing pile of requests in memory.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus_client::metrics::counter::Counter;
use tokio::sync::Semaphore;

use crate::http::error::ApiError;

/// Largest request body accepted, in bytes.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Default number of verdicts judged at the same time.
pub const DEFAULT_MAX_CONCURRENT_VERDICTS: usize = 16;
/// Default number of verdict requests waiting for a turn.
pub const DEFAULT_MAX_QUEUED_VERDICTS: usize = 64;
/// Seconds a refused client is told to wait before asking again.
pub const RETRY_AFTER_SECS: u64 = 5;

/// The verdict slots and the queue in front of them.
#[derive(Debug)]
pub struct VerdictLimits {
    slots: Arc<Semaphore>,
    max_concurrent: usize,
    queued: AtomicUsize,
    max_queued: usize,
    /// Counts the 503 refusals, for `/metrics`.
    refused: Counter,
}

impl Default for VerdictLimits {
    fn default() -> Self {
        VerdictLimits::new(DEFAULT_MAX_CONCURRENT_VERDICTS, DEFAULT_MAX_QUEUED_VERDICTS)
    }
}

/// Takes a waiter off the queue count when it leaves, served or cancelled.
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl VerdictLimits {
    /// At most `max_concurrent` verdicts at once (at least 1) and `max_queued` waiting.
    pub fn new(max_concurrent: usize, max_queued: usize) -> Self {
        let max_concurrent = max_concurrent.max(1);
        VerdictLimits {
            slots: Arc::new(Semaphore::new(max_concurrent)),
            max_concurrent,
            queued: AtomicUsize::new(0),
            max_queued,
            refused: Counter::default(),
        }
    }

    /// The same limits, counting each refusal on `refused`.
    pub fn counting_refusals(mut self, refused: Counter) -> Self {
        self.refused = refused;
        self
    }

    /// Verdicts being judged now.
    pub fn running(&self) -> usize {
        self.max_concurrent - self.slots.available_permits()
    }

    /// Requests waiting for a slot now.
    pub fn queued(&self) -> usize {
        self.queued.load(Ordering::SeqCst)
    }

    /// Waits for a slot, or refuses at once when the queue is full. The slot
    /// is held until the returned permit is dropped.
    pub async fn admit(&self) -> Option<tokio::sync::OwnedSemaphorePermit> {
        if let Ok(permit) = Arc::clone(&self.slots).try_acquire_owned() {
            return Some(permit);
        }
        let joined = self
            .queued
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |waiting| {
                (waiting < self.max_queued).then_some(waiting + 1)
            });
        if joined.is_err() {
            return None;
        }
        let _waiting = Waiting(&self.queued);
        // The semaphore is never closed, so acquiring only fails if it were.
        Arc::clone(&self.slots).acquire_owned().await.ok()
    }
}

/// Middleware for the verdict route: runs the request in a slot, or answers 503.
pub async fn limit_verdicts(
    State(limits): State<Arc<VerdictLimits>>,
    request: Request,
    next: Next,
) -> Response {
    match limits.admit().await {
        Some(_slot) => next.run(request).await,
        None => {
            limits.refused.inc();
            tracing::warn!(
                running = limits.running(),
                queued = limits.queued(),
                "verdict refused: too many in flight"
            );
            ApiError::Busy {
                message: format!(
                    "{} verdicts are being judged and {} are waiting, the most this server takes; ask again in {RETRY_AFTER_SECS} s",
                    limits.running(),
                    limits.queued()
                ),
                retry_after_secs: RETRY_AFTER_SECS,
            }
            .into_response()
        }
    }
}
