//! Historical metrics.

use std::sync::LazyLock;

use prometheus::{IntCounterVec, IntGauge, register_int_counter_vec, register_int_gauge};

pub static SEGMENTS_SERVED: LazyLock<IntGauge> = LazyLock::new(|| {
    register_int_gauge!(
        "eddy_historical_segments_served",
        "Segments the historical serves"
    )
    .unwrap_or_else(|e| panic!("metric registration: {e}"))
});

pub static BYTES_SERVED: LazyLock<IntGauge> = LazyLock::new(|| {
    register_int_gauge!(
        "eddy_historical_bytes_served",
        "Bytes of segments the historical serves"
    )
    .unwrap_or_else(|e| panic!("metric registration: {e}"))
});

pub static LOADS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "eddy_historical_segment_loads_total",
        "Segment loads by outcome",
        &["outcome"]
    )
    .unwrap_or_else(|e| panic!("metric registration: {e}"))
});

/// Registers every metric of this role, so `/metrics` lists them from the start.
pub fn register() {
    LazyLock::force(&SEGMENTS_SERVED);
    LazyLock::force(&BYTES_SERVED);
    LazyLock::force(&LOADS);
}
