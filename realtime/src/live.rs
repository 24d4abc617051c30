//! Progress of a running task, updated by the indexing thread and read by the status API.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};

use serde_json::{Value, json};

use eddy_ingest::RowStats;
use eddy_ingest::stats::{Keep, ParseErrors};
use eddy_types::TaskId;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Phase {
    Waiting = 0,
    Reading = 1,
    Building = 2,
    Publishing = 3,
    AwaitingHandoff = 4,
    Done = 5,
}

impl Phase {
    fn name(v: u8) -> &'static str {
        match v {
            1 => "READING",
            2 => "BUILDING_SEGMENTS",
            3 => "PUBLISHING",
            4 => "AWAITING_HANDOFF",
            5 => "COMPLETED",
            _ => "WAITING",
        }
    }
}

pub struct LiveTask {
    pub id: TaskId,
    pub bytes_read: Arc<AtomicU64>,
    pub bytes_total: AtomicU64,
    pub stats: Mutex<RowStats>,
    errors: Mutex<ParseErrors>,
    phase: AtomicU8,
    cancelled: AtomicBool,
    clock: eddy_runtime::SharedClock,
}

impl LiveTask {
    pub fn new(id: TaskId, max_saved_errors: usize, clock: eddy_runtime::SharedClock) -> Self {
        LiveTask {
            id,
            bytes_read: Arc::new(AtomicU64::new(0)),
            bytes_total: AtomicU64::new(0),
            stats: Mutex::new(RowStats::default()),
            errors: Mutex::new(ParseErrors::new(Keep::First, max_saved_errors)),
            phase: AtomicU8::new(Phase::Waiting as u8),
            cancelled: AtomicBool::new(false),
            clock,
        }
    }

    pub fn set_phase(&self, p: Phase) {
        self.phase.store(p as u8, Ordering::Relaxed);
    }

    pub fn cancel(&self) {
        self.cancelled.store(true, Ordering::Relaxed);
    }

    pub fn cancelled(&self) -> bool {
        self.cancelled.load(Ordering::Relaxed)
    }

    pub fn unparseable(&self, raw: &str, reason: &str) {
        self.stats
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .unparseable += 1;
        self.errors
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .record("unparseable", raw, reason, self.clock.now_ms());
    }

    /// A row that was indexed, with some values it could not read.
    pub fn parse_error(&self, raw: &str, reason: &str) {
        self.errors
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .record("processedWithError", raw, reason, self.clock.now_ms());
    }

    /// `{phase, bytesRead, bytesTotal, fraction}`.
    pub fn progress(&self) -> Value {
        let read = self.bytes_read.load(Ordering::Relaxed);
        let total = self.bytes_total.load(Ordering::Relaxed);
        let phase = self.phase.load(Ordering::Relaxed);
        let fraction = match phase {
            0 => 0.0,
            1 if total > 0 => (read as f64 / total as f64).min(1.0) * 0.9,
            1 => 0.0,
            2 => 0.92,
            3 => 0.95,
            4 => 0.98,
            _ => 1.0,
        };
        json!({"phase": Phase::name(phase), "bytesRead": read, "bytesTotal": total, "fraction": fraction})
    }

    pub fn row_stats(&self) -> RowStats {
        let mut s = *self.stats.lock().unwrap_or_else(|p| p.into_inner());
        s.processed_bytes = self.bytes_read.load(Ordering::Relaxed);
        s
    }

    pub fn parse_errors(&self) -> Value {
        self.errors
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .to_json()
    }

    /// Druid's `ingestionStatsAndErrors` payload.
    pub fn report(&self, state: &str, error: Option<&str>) -> Value {
        json!({
            "ingestionState": state,
            "rowStats": {"buildSegments": self.row_stats().to_json()},
            "unparseableEvents": {"buildSegments": self.parse_errors()},
            "errorMsg": error,
            "progress": self.progress(),
        })
    }
}
