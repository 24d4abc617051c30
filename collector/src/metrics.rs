//! Collector metrics (on `/metrics` of the collector's own port and of the node).

use std::sync::LazyLock;

use prometheus::{
    Histogram, IntCounter, IntCounterVec, IntGauge, register_histogram, register_int_counter,
    register_int_counter_vec, register_int_gauge,
};

fn fail(e: prometheus::Error) -> ! {
    panic!("metric registration: {e}")
}

/// Requests by endpoint (`pixel`, `batch`, `json`) and answer (`accepted`, `duplicate_etag`,
/// `unavailable`, `overloaded`, `too_large`, `invalid`).
pub static REQUESTS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "eddy_collector_requests_total",
        "Collector requests by endpoint and answer",
        &["endpoint", "answer"]
    )
    .unwrap_or_else(|e| fail(e))
});

/// Events by what became of them: `recorded`, `bad_row`, `discarded_duplicate`,
/// `discarded_corrupt`, `discarded_bot`, `discarded_do_not_track`, `rejected` (the sink did
/// not take them; the client was told).
pub static EVENTS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "eddy_collector_events_total",
        "Collector events by outcome",
        &["outcome"]
    )
    .unwrap_or_else(|e| fail(e))
});

/// Bad rows by violation kind.
pub static BAD_ROWS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "eddy_collector_bad_rows_total",
        "Collector bad rows by kind",
        &["kind"]
    )
    .unwrap_or_else(|e| fail(e))
});

pub static QUEUED: LazyLock<IntGauge> = LazyLock::new(|| {
    register_int_gauge!("eddy_collector_sink_queue", "Records waiting for the sink")
        .unwrap_or_else(|e| fail(e))
});

pub static SINK_FAILURES: LazyLock<IntCounter> = LazyLock::new(|| {
    register_int_counter!(
        "eddy_collector_sink_failures_total",
        "Sink writes that failed (their records were answered with 503)"
    )
    .unwrap_or_else(|e| fail(e))
});

pub static SINK_HEALTHY: LazyLock<IntGauge> = LazyLock::new(|| {
    register_int_gauge!(
        "eddy_collector_sink_healthy",
        "1 while the sink accepts records, 0 after a failure until a write succeeds"
    )
    .unwrap_or_else(|e| fail(e))
});

pub static SINK_LATENCY: LazyLock<Histogram> = LazyLock::new(|| {
    register_histogram!(
        "eddy_collector_sink_write_seconds",
        "Time for the sink to acknowledge a batch",
        vec![
            0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.5, 1.0, 5.0
        ]
    )
    .unwrap_or_else(|e| fail(e))
});

pub static GEO_RELOAD_FAILURES: LazyLock<IntCounter> = LazyLock::new(|| {
    register_int_counter!(
        "eddy_collector_geo_reload_failures_total",
        "Geo-IP database files that changed but could not be loaded"
    )
    .unwrap_or_else(|e| fail(e))
});

/// Registers every metric, so `/metrics` lists them from the start.
pub fn register() {
    LazyLock::force(&REQUESTS);
    LazyLock::force(&EVENTS);
    LazyLock::force(&BAD_ROWS);
    LazyLock::force(&QUEUED);
    LazyLock::force(&SINK_FAILURES);
    LazyLock::force(&SINK_HEALTHY);
    LazyLock::force(&SINK_LATENCY);
    LazyLock::force(&GEO_RELOAD_FAILURES);
}
