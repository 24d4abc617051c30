//! What one copy of a task group shows while it runs: its task, offsets, row counts, saved
//! parse errors and rate samples, read by the status, stats and task endpoints.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64};
use std::sync::{Arc, Mutex};

use serde_json::Value;

use eddy_ingest::RowStats;
use eddy_ingest::stats::{Keep, ParseErrors};

use super::replica::ReplicaSet;
use super::supervise::lock;

/// Progress of one copy of a task group, read by the status and stats endpoints.
pub struct GroupState {
    pub group: u32,
    /// Which copy of the group this is (0 when `replicas` is 1).
    pub replica: u32,
    /// The group's copies.
    pub replicas: Arc<ReplicaSet>,
    pub partitions: Vec<u32>,
    pub task_id: Mutex<String>,
    pub started: AtomicI64,
    pub starting_offsets: Mutex<BTreeMap<u32, u64>>,
    pub current_offsets: Mutex<BTreeMap<u32, u64>>,
    pub stats: Mutex<RowStats>,
    pub errors: Mutex<ParseErrors>,
    /// (time, totals) every few seconds, for moving averages.
    pub samples: Mutex<VecDeque<(i64, RowStats)>>,
    pub publishing: AtomicBool,
    pub handoff_requested: AtomicBool,
    /// Successful publishes.
    pub published: AtomicU64,
}

impl GroupState {
    pub fn new(
        (group, replica): (u32, u32),
        replicas: Arc<ReplicaSet>,
        partitions: Vec<u32>,
        max_saved: usize,
    ) -> Self {
        GroupState {
            group,
            replica,
            replicas,
            partitions,
            task_id: Mutex::new(String::new()),
            started: AtomicI64::new(0),
            starting_offsets: Mutex::new(BTreeMap::new()),
            current_offsets: Mutex::new(BTreeMap::new()),
            stats: Mutex::new(RowStats::default()),
            errors: Mutex::new(ParseErrors::new(Keep::Last, max_saved)),
            samples: Mutex::new(VecDeque::new()),
            publishing: AtomicBool::new(false),
            handoff_requested: AtomicBool::new(false),
            published: AtomicU64::new(0),
        }
    }

    pub fn task_id(&self) -> String {
        lock(&self.task_id).clone()
    }

    /// Whether this copy is the one queries read and that publishes.
    pub fn is_active(&self) -> bool {
        self.replicas.is_active(self.replica)
    }

    pub fn row_stats(&self) -> RowStats {
        *lock(&self.stats)
    }

    pub fn parse_errors(&self) -> Value {
        lock(&self.errors).to_json()
    }

    /// Average rows per second over the last `window_ms`, per counter.
    pub fn moving_average(&self, now: i64, window_ms: i64) -> Value {
        let current = self.row_stats();
        let samples = lock(&self.samples);
        let base = samples
            .iter()
            .find(|(t, _)| *t >= now - window_ms)
            .or(samples.front())
            .copied()
            .unwrap_or((now, current));
        let secs = ((now - base.0) as f64 / 1000.0).max(1.0);
        let rate = |a: u64, b: u64| (a.saturating_sub(b)) as f64 / secs;
        serde_json::json!({
            "processed": rate(current.processed, base.1.processed),
            "processedBytes": rate(current.processed_bytes, base.1.processed_bytes),
            "unparseable": rate(current.unparseable, base.1.unparseable),
            "thrownAway": rate(current.thrown_away, base.1.thrown_away),
            "processedWithError": rate(current.processed_with_error, base.1.processed_with_error),
        })
    }

    pub(super) fn sample(&self, now: i64) {
        let current = self.row_stats();
        let mut samples = lock(&self.samples);
        if samples.back().is_none_or(|(t, _)| now - t >= 5_000) {
            samples.push_back((now, current));
            while samples.front().is_some_and(|(t, _)| now - t > 16 * 60_000) {
                samples.pop_front();
            }
        }
    }
}
