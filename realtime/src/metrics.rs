//! Indexing metrics.

use std::sync::LazyLock;

use prometheus::{IntCounterVec, register_int_counter_vec};

pub static TASKS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "eddy_indexing_tasks_total",
        "Ingestion tasks by outcome",
        &["outcome"]
    )
    .unwrap_or_else(|e| panic!("metric registration: {e}"))
});

/// Registers every metric of this role, so `/metrics` lists them from the start.
pub fn register() {
    LazyLock::force(&TASKS);
}
