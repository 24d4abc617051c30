//! Druid's SQL API: `POST /druid/v2/sql` (and `/druid/v2/sql/`) with JSON, text/plain or form
//! bodies, the five result formats with optional header rows, `X-Druid-SQL-Query-Id`, and
//! `DELETE /druid/v2/sql/{id}` to cancel.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, post};
use datafusion::common::DataFusionError;
use serde::Deserialize;
use serde_json::Value;

use eddy_query::QueryError;
use eddy_runtime::http::ApiError;
use eddy_types::ErrorCode;

use super::planner::{SqlEngine, SqlOptions};
use super::render::{Format, render};
use super::rewrite::Parameter;
use crate::Broker;

pub struct SqlApi {
    engine: SqlEngine,
    broker: Arc<Broker>,
    running: Mutex<HashMap<String, tokio::task::AbortHandle>>,
}

pub fn routes(broker: Arc<Broker>) -> Router {
    let api = Arc::new(SqlApi {
        engine: SqlEngine::new(broker.clone()),
        broker,
        running: Mutex::new(HashMap::new()),
    });
    Router::new()
        .route("/druid/v2/sql", post(sql))
        .route("/druid/v2/sql/", post(sql))
        .route("/druid/v2/sql/{id}", delete(cancel))
        .with_state(api)
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct SqlRequest {
    pub(super) query: String,
    #[serde(default)]
    pub(super) result_format: Option<String>,
    #[serde(default)]
    pub(super) header: bool,
    #[serde(default)]
    pub(super) types_header: bool,
    #[serde(default)]
    pub(super) sql_types_header: bool,
    #[serde(default)]
    pub(super) context: serde_json::Map<String, Value>,
    #[serde(default)]
    pub(super) parameters: Vec<Parameter>,
}

/// `%xx` and `+` decoding of a form body.
fn url_decode(s: &[u8]) -> String {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        match s[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < s.len() => {
                let hex = std::str::from_utf8(&s[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn parse_request(headers: &HeaderMap, body: &[u8]) -> Result<SqlRequest, ApiError> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json")
        .to_ascii_lowercase();
    let raw = |query: String| SqlRequest {
        query,
        result_format: None,
        header: false,
        types_header: false,
        sql_types_header: false,
        context: Default::default(),
        parameters: vec![],
    };
    if ct.starts_with("text/plain") {
        return Ok(raw(String::from_utf8_lossy(body).into_owned()));
    }
    if ct.starts_with("application/x-www-form-urlencoded") {
        return Ok(raw(url_decode(body)));
    }
    if !ct.starts_with("application/json") {
        return Err(ApiError::new(
            ErrorCode::Unsupported,
            format!(
                "unsupported Content-Type {ct:?}; send application/json, text/plain or application/x-www-form-urlencoded"
            ),
        ));
    }
    eddy_runtime::http::parse_json::<SqlRequest>(body, "SQL request")
}

fn options(req: &SqlRequest) -> Result<SqlOptions, ApiError> {
    let ctx = &req.context;
    let query_id = match ctx.get("sqlQueryId") {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        Some(Value::String(_)) | None => uuid::Uuid::new_v4().to_string(),
        Some(other) => {
            return Err(ApiError::invalid(format!(
                "context.sqlQueryId must be a string, got {other}"
            )));
        }
    };
    let time_zone = match ctx.get("sqlTimeZone") {
        Some(Value::String(s)) => Some(s.clone()),
        None | Some(Value::Null) => None,
        Some(other) => {
            return Err(ApiError::invalid(format!(
                "context.sqlTimeZone must be a string like \"America/Los_Angeles\", got {other}"
            )));
        }
    };
    let flag = |key: &str| match ctx.get(key) {
        Some(Value::Bool(b)) => Some(*b),
        Some(Value::String(s)) => Some(s.eq_ignore_ascii_case("true")),
        _ => None,
    };
    let approx = flag("useApproximateCountDistinct");
    let pre_aggregate = flag("eddyPreAggregate");
    let mut native_context = serde_json::Map::new();
    for (k, v) in ctx {
        if !k.starts_with("sql") {
            native_context.insert(k.clone(), v.clone());
        }
    }
    Ok(SqlOptions {
        query_id,
        time_zone,
        approx_count_distinct: approx,
        pre_aggregate,
        native_context,
        parameters: req.parameters.clone(),
    })
}

/// Maps a planning or execution failure to Druid's error body and status.
pub(crate) fn sql_error(e: &DataFusionError) -> ApiError {
    if let DataFusionError::External(inner) = e.find_root()
        && let Some(q) = inner.downcast_ref::<QueryError>()
    {
        return ApiError::from_error(q);
    }
    match e.find_root() {
        DataFusionError::SQL(p, _) => ApiError::new(ErrorCode::SqlParse, p.to_string()),
        DataFusionError::Plan(_)
        | DataFusionError::SchemaError(_, _)
        | DataFusionError::NotImplemented(_) => {
            ApiError::new(ErrorCode::PlanValidation, strip_prefix(&e.to_string()))
        }
        DataFusionError::Execution(m) => ApiError::new(ErrorCode::InvalidInput, m.clone()),
        DataFusionError::ResourcesExhausted(m) => {
            ApiError::new(ErrorCode::ResourceLimitExceeded, m.clone())
        }
        _ => ApiError::new(ErrorCode::Internal, e.to_string()),
    }
}

fn strip_prefix(m: &str) -> String {
    m.trim_start_matches("Error during planning: ")
        .trim_start_matches("Schema error: ")
        .trim_start_matches("This feature is not implemented: ")
        .to_string()
}

fn with_id(mut resp: Response, id: &str) -> Response {
    if let Ok(v) = HeaderValue::from_str(id) {
        resp.headers_mut().insert("X-Druid-SQL-Query-Id", v);
    }
    resp
}

async fn sql(State(api): State<Arc<SqlApi>>, headers: HeaderMap, body: Bytes) -> Response {
    let req = match parse_request(&headers, &body) {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    let (opts, format) =
        match options(&req).and_then(|o| Ok((o, Format::parse(req.result_format.as_deref())?))) {
            Ok(v) => v,
            Err(e) => return e.into_response(),
        };
    let id = opts.query_id.clone();
    let api2 = api.clone();
    let sql_text = req.query.clone();
    let task_opts = opts.clone();
    let task = tokio::spawn(async move { api2.engine.execute(&sql_text, &task_opts).await });
    api.running
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(id.clone(), task.abort_handle());
    // The statement's deadline: context.timeout (ms) or the broker's default.
    let timeout_ms = req
        .context
        .get("timeout")
        .and_then(Value::as_u64)
        .unwrap_or(api.broker.default_timeout_ms());
    let abort = task.abort_handle();
    let outcome =
        match tokio::time::timeout(std::time::Duration::from_millis(timeout_ms), task).await {
            Ok(o) => o,
            Err(_) => {
                abort.abort();
                api.broker.cancel_prefix(&format!("{id}#"));
                api.running
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(&id);
                let e = ApiError::from_error(&QueryError::Timeout {
                    query_id: id.clone(),
                    timeout_ms,
                });
                return with_id(e.into_response(), &id);
            }
        };
    api.running
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .remove(&id);
    let out = match outcome {
        Ok(Ok(out)) => out,
        Ok(Err(e)) => return with_id(sql_error(&e).into_response(), &id),
        Err(join) if join.is_cancelled() => {
            let e = ApiError::from_error(&QueryError::Cancelled(id.clone()));
            return with_id(e.into_response(), &id);
        }
        Err(join) => {
            let e = ApiError::new(ErrorCode::Internal, format!("SQL query failed: {join}"));
            return with_id(e.into_response(), &id);
        }
    };
    let body = match render(&out, format, &req) {
        Ok(b) => b,
        Err(e) => return with_id(sql_error(&e).into_response(), &id),
    };
    let mut resp = (StatusCode::OK, body).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    if req.header {
        resp.headers_mut().insert(
            "X-Druid-SQL-Header-Included",
            HeaderValue::from_static("yes"),
        );
    }
    with_id(resp, &id)
}

async fn cancel(State(api): State<Arc<SqlApi>>, Path(id): Path<String>) -> Response {
    let handle = api
        .running
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .remove(&id);
    match handle {
        Some(h) => {
            h.abort();
            api.broker.cancel_prefix(&format!("{id}#"));
            StatusCode::ACCEPTED.into_response()
        }
        None => ApiError::not_found(format!("no running SQL query with id {id:?}")).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_bodies_decode() {
        assert_eq!(url_decode(b"SELECT+1%2C2"), "SELECT 1,2");
        assert_eq!(url_decode(b"100%"), "100%");
    }
}
