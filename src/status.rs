//! Node status endpoints in Druid's shapes (`/status`, `/status/health`,
//! `/status/properties`, `/status/selfDiscovered`), Prometheus `/metrics`, and the JSON 404.

use axum::http::{StatusCode, Uri, header};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Map, Value, json};

use eddy_runtime::http::ApiError;

use crate::config::Config;

pub const VERSION: &str = env!("CARGO_PKG_VERSION");

pub fn router(config: Config) -> Router {
    let properties = flatten_config(&config);
    Router::new()
        .route("/status", get(status))
        .route("/status/health", get(|| async { Json(json!(true)) }))
        .route(
            "/status/properties",
            get(move || async move { Json(properties) }),
        )
        .route(
            "/status/selfDiscovered/status",
            get(|| async { Json(json!({"selfDiscovered": true})) }),
        )
        .route("/status/selfDiscovered", get(|| async { StatusCode::OK }))
        .route("/metrics", get(metrics))
}

/// Resident and total memory from /proc (zeros where unavailable).
fn memory() -> Value {
    let read_kb = |file: &str, key: &str| -> u64 {
        std::fs::read_to_string(file)
            .ok()
            .and_then(|t| {
                t.lines()
                    .find(|l| l.starts_with(key))
                    .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
            })
            .unwrap_or(0)
            * 1024
    };
    let total = read_kb("/proc/meminfo", "MemTotal:");
    let available = read_kb("/proc/meminfo", "MemAvailable:");
    let used = read_kb("/proc/self/status", "VmRSS:");
    json!({"maxMemory": total, "totalMemory": total, "freeMemory": available, "usedMemory": used, "directMemory": 0})
}

async fn status() -> Json<Value> {
    Json(json!({
        "version": VERSION,
        "modules": [
            {"name": "eddy-coordinator", "artifact": "eddy", "version": VERSION},
            {"name": "eddy-historical", "artifact": "eddy", "version": VERSION},
            {"name": "eddy-indexer", "artifact": "eddy", "version": VERSION},
            {"name": "eddy-broker", "artifact": "eddy", "version": VERSION}
        ],
        "memory": memory(),
    }))
}

async fn metrics() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        eddy_runtime::telemetry::render_metrics(),
    )
}

fn flatten_config(config: &Config) -> Value {
    let mut out = Map::new();
    if let Ok(Value::Object(sections)) = serde_json::to_value(config) {
        for (section, v) in sections {
            if let Value::Object(keys) = v {
                for (k, v) in keys {
                    let text = match v {
                        Value::String(s) => s,
                        Value::Null => continue,
                        other => other.to_string(),
                    };
                    out.insert(format!("eddy.{section}.{k}"), Value::String(text));
                }
            }
        }
    }
    Value::Object(out)
}

pub async fn not_found(uri: Uri) -> ApiError {
    ApiError::not_found(format!("no such endpoint: {}", uri.path()))
}
