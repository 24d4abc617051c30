//! Indexing metrics.

use std::sync::LazyLock;

use prometheus::{IntCounterVec, IntGauge, register_int_counter_vec, register_int_gauge};

pub static TASKS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "eddy_indexing_tasks_total",
        "Ingestion tasks by outcome",
        &["outcome"]
    )
    .unwrap_or_else(|e| panic!("metric registration: {e}"))
});

/// Stream rows by what became of them (processed, unparseable, thrownAway, processedWithError).
pub static STREAM_ROWS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "eddy_stream_rows_total",
        "Rows read from streams by datasource and outcome",
        &["datasource", "outcome"]
    )
    .unwrap_or_else(|e| panic!("metric registration: {e}"))
});

/// Stream hand-offs by outcome (published, conflict, failed).
pub static HANDOFFS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "eddy_stream_handoffs_total",
        "Realtime publishes of segments and offsets by outcome",
        &["datasource", "outcome"]
    )
    .unwrap_or_else(|e| panic!("metric registration: {e}"))
});

pub static REALTIME_SEGMENTS: LazyLock<IntGauge> = LazyLock::new(|| {
    register_int_gauge!(
        "eddy_realtime_segments",
        "Segments served by realtime tasks (in memory or persisted locally)"
    )
    .unwrap_or_else(|e| panic!("metric registration: {e}"))
});

/// Registers every metric of this role, so `/metrics` lists them from the start.
pub fn register() {
    LazyLock::force(&TASKS);
    LazyLock::force(&STREAM_ROWS);
    LazyLock::force(&HANDOFFS);
    LazyLock::force(&REALTIME_SEGMENTS);
}
