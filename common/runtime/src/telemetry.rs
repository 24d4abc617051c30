//! Logging and metrics set-up. Metrics are registered in the process-wide Prometheus registry
//! by each crate's `metrics` module and exported on `/metrics`.

use prometheus::{Encoder, TextEncoder};

/// Installs the tracing subscriber; `RUST_LOG` overrides `default_level`.
pub fn init_logging(default_level: &str, json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false);
    let result = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
    if result.is_err() {
        // Already installed (tests start several nodes in one process).
    }
}

/// Prometheus text exposition of every registered metric.
pub fn render_metrics() -> String {
    let mut buf = Vec::new();
    let _ = TextEncoder::new().encode(&prometheus::gather(), &mut buf);
    String::from_utf8(buf).unwrap_or_default()
}

/// `eddy_build_info{version="..."} 1`, registered once at start.
pub fn register_build_info(version: &str) {
    static DONE: std::sync::OnceLock<()> = std::sync::OnceLock::new();
    DONE.get_or_init(|| {
        if let Ok(g) = prometheus::IntGaugeVec::new(
            prometheus::Opts::new("eddy_build_info", "Eddy's version"),
            &["version"],
        ) {
            g.with_label_values(&[version]).set(1);
            let _ = prometheus::register(Box::new(g));
        }
    });
}
