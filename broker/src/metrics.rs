//! Broker metrics.

use std::sync::LazyLock;

use prometheus::{HistogramVec, IntCounterVec, register_histogram_vec, register_int_counter_vec};

pub static QUERIES: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "eddy_broker_queries_total",
        "Native queries by type and outcome",
        &["type", "outcome"]
    )
    .unwrap_or_else(|e| panic!("metric registration: {e}"))
});

pub static QUERY_SECONDS: LazyLock<HistogramVec> = LazyLock::new(|| {
    register_histogram_vec!(
        "eddy_broker_query_seconds",
        "Native query latency by type",
        &["type"],
        vec![0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0]
    )
    .unwrap_or_else(|e| panic!("metric registration: {e}"))
});

/// Registers every metric of this role, so `/metrics` lists them from the start.
pub fn register() {
    LazyLock::force(&QUERIES);
    LazyLock::force(&QUERY_SECONDS);
}
