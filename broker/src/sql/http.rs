//! Druid's SQL API: `POST /druid/v2/sql` (and `/druid/v2/sql/`) with JSON, text/plain or form
//! bodies, the five result formats with optional header rows, `X-Druid-SQL-Query-Id`, and
//! `DELETE /druid/v2/sql/{id}` to cancel.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use arrow::compute::cast;
use arrow::datatypes::{
    DataType, Float32Type, Float64Type, Int64Type, SchemaRef, TimeUnit, UInt64Type,
};
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
use eddy_types::time::format_iso;

use super::planner::{SqlEngine, SqlOptions, SqlOutput};
use super::rewrite::Parameter;
use super::table::type_names;
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
struct SqlRequest {
    query: String,
    #[serde(default)]
    result_format: Option<String>,
    #[serde(default)]
    header: bool,
    #[serde(default)]
    types_header: bool,
    #[serde(default)]
    sql_types_header: bool,
    #[serde(default)]
    context: serde_json::Map<String, Value>,
    #[serde(default)]
    parameters: Vec<Parameter>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Format {
    Object,
    Array,
    ObjectLines,
    ArrayLines,
    Csv,
}

impl Format {
    fn parse(s: Option<&str>) -> Result<Format, ApiError> {
        Ok(match s.unwrap_or("object") {
            "object" | "OBJECT" => Format::Object,
            "array" | "ARRAY" => Format::Array,
            "objectLines" | "objectlines" | "OBJECTLINES" => Format::ObjectLines,
            "arrayLines" | "arraylines" | "ARRAYLINES" => Format::ArrayLines,
            "csv" | "CSV" => Format::Csv,
            other => {
                return Err(ApiError::invalid(format!(
                    "resultFormat: unknown format {other:?}; use object, array, objectLines, arrayLines or csv"
                )));
            }
        })
    }

    fn content_type(self) -> &'static str {
        match self {
            Format::Object | Format::Array => "application/json",
            Format::ObjectLines | Format::ArrayLines => "text/plain",
            Format::Csv => "text/csv",
        }
    }
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

/// One cell as JSON text appended to `out`.
fn json_cell(out: &mut String, col: &ArrayRef, row: usize) {
    use std::fmt::Write;
    if col.is_null(row) {
        out.push_str("null");
        return;
    }
    match col.data_type() {
        DataType::Utf8 => push_json_str(out, col.as_string::<i32>().value(row)),
        DataType::LargeUtf8 => push_json_str(out, col.as_string::<i64>().value(row)),
        DataType::Utf8View => push_json_str(out, col.as_string_view().value(row)),
        DataType::Int64 => {
            let _ = write!(out, "{}", col.as_primitive::<Int64Type>().value(row));
        }
        DataType::UInt64 => {
            let _ = write!(out, "{}", col.as_primitive::<UInt64Type>().value(row));
        }
        DataType::Float64 => push_float(out, col.as_primitive::<Float64Type>().value(row)),
        DataType::Float32 => {
            push_float(out, f64::from(col.as_primitive::<Float32Type>().value(row)))
        }
        DataType::Boolean => out.push_str(if col.as_boolean().value(row) {
            "true"
        } else {
            "false"
        }),
        DataType::Timestamp(_, _) | DataType::Date32 | DataType::Date64 => {
            match millis_at(col, row) {
                Some(ms) => push_json_str(out, &format_iso(ms)),
                None => out.push_str("null"),
            }
        }
        t if t.is_integer() || t.is_floating() || matches!(t, DataType::Decimal128(_, _)) => {
            match cast(&col.slice(row, 1), &DataType::Float64) {
                Ok(f) if t.is_floating() || matches!(t, DataType::Decimal128(_, _)) => {
                    push_float(out, f.as_primitive::<Float64Type>().value(0))
                }
                _ => match cast(&col.slice(row, 1), &DataType::Int64) {
                    Ok(i) => {
                        let _ = write!(out, "{}", i.as_primitive::<Int64Type>().value(0));
                    }
                    Err(_) => out.push_str("null"),
                },
            }
        }
        DataType::List(_) | DataType::LargeList(_) => {
            let text = list_json(col, row);
            push_json_str(out, &text);
        }
        _ => match cast(&col.slice(row, 1), &DataType::Utf8) {
            Ok(s) => push_json_str(out, s.as_string::<i32>().value(0)),
            Err(_) => out.push_str("null"),
        },
    }
}

fn list_json(col: &ArrayRef, row: usize) -> String {
    let values = match col.data_type() {
        DataType::List(_) => col.as_list::<i32>().value(row),
        _ => col.as_list::<i64>().value(row),
    };
    let mut out = String::from("[");
    for i in 0..values.len() {
        if i > 0 {
            out.push(',');
        }
        json_cell(&mut out, &values, i);
    }
    out.push(']');
    out
}

fn millis_at(col: &ArrayRef, row: usize) -> Option<i64> {
    let t = cast(
        &col.slice(row, 1),
        &DataType::Timestamp(TimeUnit::Millisecond, None),
    )
    .ok()?;
    let i = cast(&t, &DataType::Int64).ok()?;
    let p = i.as_primitive::<Int64Type>();
    (!p.is_null(0)).then(|| p.value(0))
}

fn push_float(out: &mut String, f: f64) {
    use std::fmt::Write;
    if !f.is_finite() {
        out.push_str("null");
    } else if f == f.trunc() && f.abs() < 1e15 {
        let _ = write!(out, "{f:.1}");
    } else {
        let _ = write!(out, "{f}");
    }
}

fn push_json_str(out: &mut String, s: &str) {
    match serde_json::to_string(s) {
        Ok(q) => out.push_str(&q),
        Err(_) => out.push_str("null"),
    }
}

/// One cell as CSV text.
fn csv_cell(out: &mut String, col: &ArrayRef, row: usize) {
    if col.is_null(row) {
        return;
    }
    let mut text = String::new();
    json_cell(&mut text, col, row);
    let plain = match serde_json::from_str::<Value>(&text) {
        Ok(Value::String(s)) => s,
        _ => text,
    };
    push_csv(out, &plain);
}

fn push_csv(out: &mut String, s: &str) {
    if s.contains([',', '"', '\n', '\r']) {
        out.push('"');
        out.push_str(&s.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(s);
    }
}

/// Renders a result in `format`, with the header rows the request asks for.
fn render(out: &SqlOutput, format: Format, req: &SqlRequest) -> Result<String, DataFusionError> {
    let schema: &SchemaRef = &out.schema;
    let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    let types: Vec<(&str, &str)> = schema
        .fields()
        .iter()
        .map(|f| {
            let (druid, sql, _) = type_names(f.data_type());
            (druid, sql)
        })
        .collect();
    let mut s = String::new();
    let mut first = true;
    let open = |s: &mut String, first: &mut bool| match format {
        Format::Object | Format::Array => {
            s.push(if *first { '[' } else { ',' });
            *first = false;
        }
        _ => {}
    };
    let close_row = |s: &mut String| {
        if matches!(
            format,
            Format::ObjectLines | Format::ArrayLines | Format::Csv
        ) {
            s.push('\n');
        }
    };
    if req.header {
        match format {
            Format::Object | Format::ObjectLines => {
                open(&mut s, &mut first);
                s.push('{');
                for (i, name) in names.iter().enumerate() {
                    if i > 0 {
                        s.push(',');
                    }
                    push_json_str(&mut s, name);
                    s.push(':');
                    if req.types_header || req.sql_types_header {
                        s.push('{');
                        let mut parts = Vec::new();
                        if req.types_header {
                            parts.push(format!("\"type\":\"{}\"", types[i].0));
                        }
                        if req.sql_types_header {
                            parts.push(format!("\"sqlType\":\"{}\"", types[i].1));
                        }
                        s.push_str(&parts.join(","));
                        s.push('}');
                    } else {
                        s.push_str("null");
                    }
                }
                s.push('}');
                close_row(&mut s);
            }
            Format::Array | Format::ArrayLines | Format::Csv => {
                let mut lines: Vec<Vec<&str>> = vec![names.clone()];
                if req.types_header {
                    lines.push(types.iter().map(|t| t.0).collect());
                }
                if req.sql_types_header {
                    lines.push(types.iter().map(|t| t.1).collect());
                }
                for line in lines {
                    open(&mut s, &mut first);
                    if format == Format::Csv {
                        for (i, v) in line.iter().enumerate() {
                            if i > 0 {
                                s.push(',');
                            }
                            push_csv(&mut s, v);
                        }
                    } else {
                        s.push('[');
                        for (i, v) in line.iter().enumerate() {
                            if i > 0 {
                                s.push(',');
                            }
                            push_json_str(&mut s, v);
                        }
                        s.push(']');
                    }
                    close_row(&mut s);
                }
            }
        }
    }
    for batch in &out.batches {
        render_batch(&mut s, batch, format, &names, &mut first);
    }
    match format {
        Format::Object | Format::Array => {
            if first {
                s.push('[');
            }
            s.push_str("]\n");
        }
        Format::ObjectLines | Format::ArrayLines => s.push('\n'),
        Format::Csv => s.push('\n'),
    }
    Ok(s)
}

fn render_batch(
    s: &mut String,
    batch: &RecordBatch,
    format: Format,
    names: &[&str],
    first: &mut bool,
) {
    let cols = batch.columns();
    for row in 0..batch.num_rows() {
        if matches!(format, Format::Object | Format::Array) {
            s.push(if *first { '[' } else { ',' });
            *first = false;
        }
        match format {
            Format::Object | Format::ObjectLines => {
                s.push('{');
                for (i, col) in cols.iter().enumerate() {
                    if i > 0 {
                        s.push(',');
                    }
                    push_json_str(s, names[i]);
                    s.push(':');
                    json_cell(s, col, row);
                }
                s.push('}');
            }
            Format::Array | Format::ArrayLines => {
                s.push('[');
                for (i, col) in cols.iter().enumerate() {
                    if i > 0 {
                        s.push(',');
                    }
                    json_cell(s, col, row);
                }
                s.push(']');
            }
            Format::Csv => {
                for (i, col) in cols.iter().enumerate() {
                    if i > 0 {
                        s.push(',');
                    }
                    csv_cell(s, col, row);
                }
            }
        }
        if matches!(
            format,
            Format::ObjectLines | Format::ArrayLines | Format::Csv
        ) {
            s.push('\n');
        }
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

    #[test]
    fn csv_quotes_when_needed() {
        let mut s = String::new();
        push_csv(&mut s, "A,B \"x\"");
        assert_eq!(s, "\"A,B \"\"x\"\"\"");
    }
}
