//! A source for replaying a past window look by look: each range query is
//! sent once, over the whole window, and every look's range query is answered
//! from that answer.
//!
//! This is exact, not an approximation: a range query evaluates its PromQL at
//! `start + k * step`, and the value at each instant depends only on data up
//! to it. A look's window is queried on the same grid (see
//! [`crate::measure::window_range`]: aligned to the canary's start), so its
//! range is a prefix of the whole window's, and its answer is the whole
//! answer's points up to the look's end.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::OnceCell;

use super::contract::{MetricSource, RangeSpec, Series, SourceError};

/// What makes two range queries answerable from one whole-window answer: the
/// same PromQL on the same grid (start and step).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Grid {
    promql: String,
    start_secs: i64,
    step_secs: u64,
}

/// A [`MetricSource`] that answers range queries ending at or before
/// `end_secs` by slicing one answer over the whole window, fetched the first
/// time its PromQL is asked. Instant queries, and range queries it cannot
/// answer from a whole-window answer, go to the inner source each time.
pub struct WindowCache<S> {
    inner: S,
    end_secs: i64,
    windows: Mutex<HashMap<Grid, Arc<OnceCell<Vec<Series>>>>>,
    sent: AtomicU64,
}

impl<S> std::fmt::Debug for WindowCache<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WindowCache")
            .field("end_secs", &self.end_secs)
            .field("sent", &self.sent)
            .finish_non_exhaustive()
    }
}

impl<S: MetricSource> WindowCache<S> {
    /// Wraps `inner` for looks that end at or before `end_secs` (unix seconds).
    pub fn new(inner: S, end_secs: i64) -> Self {
        WindowCache {
            inner,
            end_secs,
            windows: Mutex::new(HashMap::new()),
            sent: AtomicU64::new(0),
        }
    }

    /// How many queries were sent to the inner source so far, range and
    /// instant, failed ones included; a retrying inner source's own retries
    /// are not counted.
    pub fn sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }

    /// The whole window's answer for `grid`, asked of the inner source the
    /// first time; a failed fetch is not kept, so the next look asks again.
    async fn whole_window(&self, grid: Grid) -> Result<Vec<Series>, SourceError> {
        let cell = {
            let mut windows = self.windows.lock().unwrap_or_else(|p| p.into_inner());
            Arc::clone(windows.entry(grid.clone()).or_default())
        };
        // The last point of the look's grid at or before the window's end.
        let step = grid.step_secs.max(1) as i64;
        let range = RangeSpec {
            start_secs: grid.start_secs,
            end_secs: grid.start_secs + (self.end_secs - grid.start_secs).max(0) / step * step,
            step_secs: grid.step_secs,
        };
        let series = cell
            .get_or_try_init(|| async {
                self.sent.fetch_add(1, Ordering::Relaxed);
                self.inner.range_query(&grid.promql, range).await
            })
            .await?;
        Ok(series.clone())
    }
}

/// The points of `series` from `range`'s start to its end, both included;
/// series left with no point are dropped, as the store would not return them.
fn slice(series: Vec<Series>, range: RangeSpec) -> Vec<Series> {
    series
        .into_iter()
        .filter_map(|mut one| {
            one.points
                .retain(|(t, _)| range.start_secs <= *t && *t <= range.end_secs);
            (!one.points.is_empty()).then_some(one)
        })
        .collect()
}

impl<S: MetricSource> MetricSource for WindowCache<S> {
    async fn range_query(
        &self,
        promql: &str,
        range: RangeSpec,
    ) -> Result<Vec<Series>, SourceError> {
        if range.end_secs > self.end_secs {
            self.sent.fetch_add(1, Ordering::Relaxed);
            return self.inner.range_query(promql, range).await;
        }
        let grid = Grid {
            promql: promql.to_string(),
            start_secs: range.start_secs,
            step_secs: range.step_secs,
        };
        Ok(slice(self.whole_window(grid).await?, range))
    }

    async fn instant_query(&self, promql: &str, at_secs: i64) -> Result<Vec<Series>, SourceError> {
        self.sent.fetch_add(1, Ordering::Relaxed);
        self.inner.instant_query(promql, at_secs).await
    }

    async fn ready(&self) -> Result<(), SourceError> {
        self.inner.ready().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    /// A source whose every range answer is one series with a point at each
    /// step of the asked range, valued at its time.
    struct Clock;

    impl MetricSource for Clock {
        async fn range_query(&self, _: &str, range: RangeSpec) -> Result<Vec<Series>, SourceError> {
            let points = (range.start_secs..=range.end_secs)
                .step_by(range.step_secs as usize)
                .map(|t| (t, t as f64))
                .collect();
            Ok(vec![Series {
                labels: BTreeMap::new(),
                points,
            }])
        }
        async fn instant_query(&self, _: &str, at_secs: i64) -> Result<Vec<Series>, SourceError> {
            Ok(vec![Series {
                labels: BTreeMap::new(),
                points: vec![(at_secs, at_secs as f64)],
            }])
        }
        async fn ready(&self) -> Result<(), SourceError> {
            Ok(())
        }
    }

    // Pins the cache's promise: each look's range answer equals the inner
    // source's own answer for that range, and each PromQL reaches it once.
    #[tokio::test]
    async fn looks_are_answered_from_one_whole_window_query() {
        let cache = WindowCache::new(Clock, 1_000 + 600);
        for look_end in (1_030..=1_600).step_by(30) {
            let range = crate::measure::window_range(1_000, look_end, 15);
            for promql in ["a", "b"] {
                let cached = cache.range_query(promql, range).await.expect("answers");
                let direct = Clock.range_query(promql, range).await.expect("answers");
                assert_eq!(cached, direct, "look ending {look_end}");
            }
        }
        assert_eq!(cache.sent(), 2);
        // Past the window, the inner source is asked.
        let past = crate::measure::window_range(1_000, 1_700, 15);
        cache.range_query("a", past).await.expect("answers");
        assert_eq!(cache.sent(), 3);
    }
}
