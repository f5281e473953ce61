//! What a server keeps of its looks between requests: each metric's
//! [`LookMemory`] from the last look at the same canary, so the next look's
//! statistics go on from it rather than walk the whole window again (see
//! [`crate::stats::counts::ratio_test_from`]).
//!
//! A memory is taken out for a look and put back after it, so two looks at
//! once never share one: the second judges afresh. It is keyed by
//! everything that makes two looks the same canary's same metric; the
//! memory checks for itself that its test and its steps are the window's, so
//! a key that matches a stale memory (a rule reload, data that changed) costs
//! a fresh look and never a different answer.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::judge::LookMemory;

/// Most memories kept at once. A look a minute at 1,024 metrics of canaries
/// in flight is far more than one server judges.
pub const MAX_LOOKS_KEPT: usize = 1024;

/// Most bytes the memories kept may hold together. A 24-hour window of one
/// counts metric holds about 0.6 MB (its steps, blocks and path) and of a
/// latency distribution about 1.4 MB, so a canary of `rules/http.yaml` at
/// 24 hours keeps about 2 MB and at 2 hours about 0.17 MB: this holds 16 of
/// the first, about 190 of the second, or one canary of 50 counts metrics
/// at 24 hours (about 30 MB). The bound is what the memories may add to a
/// server's working set whatever it judged before (16 concurrent 24-hour
/// verdicts peak at 63 to 85 MB without any, BENCHMARKS.md); at 16 MiB a
/// 50-metric canary's next looks at 24 hours were all fresh again, at no
/// gain in the measured peak. A canary whose memory was let go only pays a
/// fresh look.
pub const MAX_LOOKS_BYTES: usize = 32 * 1024 * 1024;

/// What makes two looks the same canary's same metric: the rule set (by
/// name and content, so a changed rule set keys apart), the metric, the
/// queries sent for it (the sides' selectors and vars are in them), the
/// source, the window's start and its step.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct LookKey {
    pub rules: String,
    pub rules_hash: String,
    pub metric: String,
    pub queries: Vec<String>,
    pub source: String,
    pub start_secs: i64,
    pub step_secs: u64,
}

/// The server's memories, least recently put first to go.
#[derive(Debug, Default)]
pub struct Looks {
    kept: Mutex<Kept>,
}

#[derive(Debug, Default)]
struct Kept {
    /// Each memory with its size and when it was put (a count).
    memories: HashMap<LookKey, (LookMemory, usize, u64)>,
    /// The sum of their sizes.
    bytes: usize,
    /// Puts so far: the clock of the order they go in.
    puts: u64,
}

impl Looks {
    /// An empty store.
    pub fn new() -> Looks {
        Looks::default()
    }

    /// Takes the memory kept under `key`, if any: it is no longer kept.
    pub fn take(&self, key: &LookKey) -> Option<LookMemory> {
        let mut kept = self.kept.lock().unwrap_or_else(|p| p.into_inner());
        let (memory, size, _) = kept.memories.remove(key)?;
        kept.bytes -= size;
        Some(memory)
    }

    /// Keeps `memory` under `key`, letting the least recently put memories
    /// go while more than [`MAX_LOOKS_KEPT`] or [`MAX_LOOKS_BYTES`] are
    /// kept. A memory larger than the byte bound alone is not kept.
    pub fn put(&self, key: LookKey, memory: LookMemory) {
        let size = memory.size_bytes();
        if size > MAX_LOOKS_BYTES {
            return;
        }
        let mut kept = self.kept.lock().unwrap_or_else(|p| p.into_inner());
        kept.puts += 1;
        let at = kept.puts;
        if let Some((_, old, _)) = kept.memories.insert(key, (memory, size, at)) {
            kept.bytes -= old;
        }
        kept.bytes += size;
        while kept.memories.len() > MAX_LOOKS_KEPT || kept.bytes > MAX_LOOKS_BYTES {
            // The oldest put: a linear scan, over at most MAX_LOOKS_KEPT
            // entries, only when the store is full.
            let oldest = kept
                .memories
                .iter()
                .min_by_key(|(_, (_, _, at))| *at)
                .map(|(key, _)| key.clone());
            let Some(oldest) = oldest else { break };
            if let Some((_, size, _)) = kept.memories.remove(&oldest) {
                kept.bytes -= size;
            }
        }
    }

    /// How many memories and bytes are kept.
    pub fn len_and_bytes(&self) -> (usize, usize) {
        let kept = self.kept.lock().unwrap_or_else(|p| p.into_inner());
        (kept.memories.len(), kept.bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::Direction;
    use crate::stats::counts::{RatioTest, StepCounts, ratio_test_from};

    fn key(metric: usize) -> LookKey {
        LookKey {
            rules: "http".into(),
            rules_hash: "abc".into(),
            metric: format!("metric-{metric}"),
            queries: vec!["sum(rate(x[1m]))".into()],
            source: "default".into(),
            start_secs: 0,
            step_secs: 15,
        }
    }

    fn memory(steps: usize) -> LookMemory {
        let counts = vec![
            StepCounts {
                canary_bad: 1.0,
                canary_total: 100.0,
                baseline_bad: 1.0,
                baseline_total: 100.0,
            };
            steps
        ];
        let test = RatioTest::new(Direction::Increase, 0.0, 0.01).expect("valid");
        LookMemory::Counts(ratio_test_from(&counts, &test, None).1)
    }

    // Pins that a memory is taken once, and that the count bound lets the
    // least recently put memories go first.
    #[test]
    fn memories_are_taken_once_and_the_oldest_go_first() {
        let looks = Looks::new();
        for metric in 0..MAX_LOOKS_KEPT + 2 {
            looks.put(key(metric), memory(3));
        }
        let (count, bytes) = looks.len_and_bytes();
        assert_eq!(count, MAX_LOOKS_KEPT);
        assert!(bytes > 0 && bytes <= MAX_LOOKS_BYTES);
        assert!(looks.take(&key(0)).is_none() && looks.take(&key(1)).is_none());
        assert!(looks.take(&key(2)).is_some());
        assert!(looks.take(&key(2)).is_none());
        assert_eq!(looks.len_and_bytes().0, MAX_LOOKS_KEPT - 1);
    }

    // Pins that the byte bound holds: a day's memories of 24-hour windows
    // fill it and no more.
    #[test]
    fn the_bytes_kept_stay_under_the_bound() {
        let looks = Looks::new();
        let day = memory(5761);
        let size = day.size_bytes();
        for metric in 0..(MAX_LOOKS_BYTES / size + 5) {
            looks.put(key(metric), day.clone());
        }
        let (count, bytes) = looks.len_and_bytes();
        assert!(bytes <= MAX_LOOKS_BYTES);
        assert_eq!(count, MAX_LOOKS_BYTES / size);
    }
}
