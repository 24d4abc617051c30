//! HTTP: Druid's supervisor API (`/druid/indexer/v1/supervisor...`) and Eddy's embedded stream
//! API (`/eddy/v1/streams...`: create, list and delete topics, produce records).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};

use eddy_meta::SupervisorState;
use eddy_runtime::http::ApiError;
use eddy_stream::{EmbeddedLog, ProduceRecord, StreamSink, StreamSource};
use eddy_types::HasErrorCode;

use super::{SupervisorError, Supervisors};

/// Supervisor errors in Druid's shape: `{"error": "<message>"}`.
struct SupError(StatusCode, String);

impl From<SupervisorError> for SupError {
    fn from(e: SupervisorError) -> Self {
        let status = StatusCode::from_u16(e.error_code().http_status())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        SupError(status, e.to_string())
    }
}

impl IntoResponse for SupError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({"error": self.1}))).into_response()
    }
}

type SupResult = Result<Json<Value>, SupError>;

pub fn supervisor_router(supervisors: Arc<Supervisors>) -> Router {
    Router::new()
        .route("/druid/indexer/v1/supervisor", get(list).post(submit))
        .route("/druid/indexer/v1/supervisor/history", get(history_all))
        .route("/druid/indexer/v1/supervisor/suspendAll", post(suspend_all))
        .route("/druid/indexer/v1/supervisor/resumeAll", post(resume_all))
        .route(
            "/druid/indexer/v1/supervisor/terminateAll",
            post(terminate_all),
        )
        .route("/druid/indexer/v1/supervisor/{id}", get(spec))
        .route("/druid/indexer/v1/supervisor/{id}/status", get(status))
        .route("/druid/indexer/v1/supervisor/{id}/health", get(health))
        .route("/druid/indexer/v1/supervisor/{id}/stats", get(stats))
        .route("/druid/indexer/v1/supervisor/{id}/history", get(history))
        .route("/druid/indexer/v1/supervisor/{id}/suspend", post(suspend))
        .route("/druid/indexer/v1/supervisor/{id}/resume", post(resume))
        .route("/druid/indexer/v1/supervisor/{id}/reset", post(reset))
        .route(
            "/druid/indexer/v1/supervisor/{id}/resetOffsets",
            post(reset_offsets),
        )
        .route(
            "/druid/indexer/v1/supervisor/{id}/terminate",
            post(terminate),
        )
        .route(
            "/druid/indexer/v1/supervisor/{id}/shutdown",
            post(terminate),
        )
        .route(
            "/druid/indexer/v1/supervisor/{id}/taskGroups/handoff",
            post(handoff),
        )
        .with_state(supervisors)
}

async fn submit(
    State(s): State<Arc<Supervisors>>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, SupError> {
    if let Some(ct) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        && !ct.to_ascii_lowercase().contains("json")
    {
        return Err(SupError(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("Content-Type {ct:?} is not supported; send the spec as application/json"),
        ));
    }
    let skip = q
        .get("skipRestartIfUnmodified")
        .is_some_and(|v| v.is_empty() || v == "true");
    let id = s.submit(&body, skip).await?;
    Ok(Json(json!({"id": id})))
}

async fn list(
    State(s): State<Arc<Supervisors>>,
    Query(q): Query<HashMap<String, String>>,
) -> SupResult {
    let full = q.contains_key("full");
    let with_state = q.get("state").is_some_and(|v| v == "true");
    if !full && !with_state {
        return Ok(Json(json!(s.ids())));
    }
    let mut out = Vec::new();
    for id in s.ids() {
        out.push(s.summary(&id, full).await?);
    }
    Ok(Json(Value::Array(out)))
}

async fn spec(State(s): State<Arc<Supervisors>>, Path(id): Path<String>) -> SupResult {
    Ok(Json(s.spec(&id)?))
}

async fn status(State(s): State<Arc<Supervisors>>, Path(id): Path<String>) -> SupResult {
    Ok(Json(s.status(&id).await?))
}

async fn health(
    State(s): State<Arc<Supervisors>>,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<Value>), SupError> {
    let healthy = s.health(&id).await?;
    let code = if healthy {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    Ok((code, Json(json!({"healthy": healthy}))))
}

async fn stats(State(s): State<Arc<Supervisors>>, Path(id): Path<String>) -> SupResult {
    Ok(Json(s.stats(&id).await?))
}

async fn history(State(s): State<Arc<Supervisors>>, Path(id): Path<String>) -> SupResult {
    Ok(Json(s.history(Some(&id))?))
}

async fn history_all(State(s): State<Arc<Supervisors>>) -> SupResult {
    Ok(Json(s.history(None)?))
}

async fn suspend(State(s): State<Arc<Supervisors>>, Path(id): Path<String>) -> SupResult {
    Ok(Json(s.suspend(&id).await?))
}

async fn resume(State(s): State<Arc<Supervisors>>, Path(id): Path<String>) -> SupResult {
    Ok(Json(s.resume(&id).await?))
}

async fn terminate(State(s): State<Arc<Supervisors>>, Path(id): Path<String>) -> SupResult {
    s.terminate(&id).await?;
    Ok(Json(json!({"id": id})))
}

async fn reset(State(s): State<Arc<Supervisors>>, Path(id): Path<String>) -> SupResult {
    s.reset(&id, None).await?;
    Ok(Json(json!({"id": id})))
}

/// `{"type":"kafka","partitions":{"type":"end","stream":..,"partitionOffsetMap":{"0":100}}}`.
async fn reset_offsets(
    State(s): State<Arc<Supervisors>>,
    Path(id): Path<String>,
    body: Bytes,
) -> SupResult {
    let v: Value = serde_json::from_slice(&body).map_err(|e| {
        SupError(
            StatusCode::BAD_REQUEST,
            format!("the body is not valid JSON: {e}"),
        )
    })?;
    let map = v
        .pointer("/partitions/partitionOffsetMap")
        .and_then(Value::as_object)
        .ok_or_else(|| {
            SupError(
                StatusCode::BAD_REQUEST,
                "partitions.partitionOffsetMap: missing; give {\"0\": offset, ...}".into(),
            )
        })?;
    let mut offsets = BTreeMap::new();
    for (k, o) in map {
        let p: u32 = k.parse().map_err(|_| {
            SupError(
                StatusCode::BAD_REQUEST,
                format!("partitions.partitionOffsetMap: {k:?} is not a partition number"),
            )
        })?;
        let o = o.as_u64().ok_or_else(|| {
            SupError(
                StatusCode::BAD_REQUEST,
                format!(
                    "partitions.partitionOffsetMap.{k}: expected a non-negative offset, got {o}"
                ),
            )
        })?;
        offsets.insert(p, o);
    }
    s.reset(&id, Some(offsets)).await?;
    Ok(Json(json!({"id": id})))
}

async fn handoff(
    State(s): State<Arc<Supervisors>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<StatusCode, SupError> {
    let groups: Vec<u32> = if body.is_empty() {
        Vec::new()
    } else {
        let v: Value = serde_json::from_slice(&body).map_err(|e| {
            SupError(
                StatusCode::BAD_REQUEST,
                format!("the body is not valid JSON: {e}"),
            )
        })?;
        v.get("taskGroupIds")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|g| g.as_u64().map(|g| g as u32))
                    .collect()
            })
            .unwrap_or_default()
    };
    s.handoff(&id, &groups).await?;
    Ok(StatusCode::OK)
}

async fn bulk(s: &Supervisors, want: Option<SupervisorState>) -> Json<Value> {
    s.for_all(want).await;
    Json(json!({"status": "success"}))
}

async fn suspend_all(State(s): State<Arc<Supervisors>>) -> Json<Value> {
    bulk(&s, Some(SupervisorState::Suspended)).await
}

async fn resume_all(State(s): State<Arc<Supervisors>>) -> Json<Value> {
    bulk(&s, Some(SupervisorState::Running)).await
}

async fn terminate_all(State(s): State<Arc<Supervisors>>) -> Json<Value> {
    bulk(&s, None).await
}

/// The embedded stream's HTTP API.
#[derive(Clone)]
pub struct StreamApi {
    pub log: EmbeddedLog,
    /// Partitions of topics created by a first produce.
    pub default_partitions: u32,
}

pub fn stream_router(api: StreamApi) -> Router {
    Router::new()
        .route("/eddy/v1/streams", get(topics).post(create_topic))
        .route(
            "/eddy/v1/streams/{topic}",
            get(topic).post(produce).delete(delete_topic),
        )
        .with_state(api)
}

async fn topic_json(log: &EmbeddedLog, name: &str) -> Result<Value, ApiError> {
    let offsets = log.offsets(name).await?;
    Ok(json!({
        "topic": name,
        "partitions": offsets.len(),
        "offsets": offsets.iter().map(|(p, (_, next))| (p.to_string(), json!(next))).collect::<serde_json::Map<_, _>>(),
    }))
}

async fn topics(State(api): State<StreamApi>) -> Result<Json<Value>, ApiError> {
    let mut out = Vec::new();
    for t in api.log.topics()? {
        out.push(topic_json(&api.log, &t).await?);
    }
    Ok(Json(Value::Array(out)))
}

async fn topic(
    State(api): State<StreamApi>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(topic_json(&api.log, &name).await?))
}

async fn delete_topic(
    State(api): State<StreamApi>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    api.log.delete_topic(&name).await?;
    Ok(Json(json!({"topic": name, "deleted": true})))
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateTopic {
    topic: String,
    #[serde(default)]
    partitions: Option<u32>,
}

async fn create_topic(
    State(api): State<StreamApi>,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let req: CreateTopic = eddy_runtime::http::parse_json(&body, "the topic request")?;
    let partitions = req.partitions.unwrap_or(api.default_partitions);
    api.log.create_topic(&req.topic, partitions).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"topic": req.topic, "partitions": partitions})),
    ))
}

/// Appends one record per non-empty line (or per element when the body is a JSON array, or per
/// record of an Avro container file sent as `application/avro`, each written as a bare datum of
/// the file's schema, as `avro_stream` with `schema_inline` reads it) and answers once they are
/// durable. `?key=field` keys each JSON record by that field's value;
/// `?partitions=N` sets the partition count when this creates the topic.
async fn produce(
    State(api): State<StreamApi>,
    Path(name): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let partitions = match q.get("partitions") {
        Some(p) => p
            .parse()
            .map_err(|_| ApiError::invalid(format!("partitions: {p:?} is not a number")))?,
        None => api.default_partitions,
    };
    let key_field = q.get("key").map(String::as_str);
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let records = if content_type.contains("avro") {
        avro_records(&body)?
    } else {
        split_records(&body, key_field)?
    };
    api.log.ensure_topic(&name, partitions).await?;
    let acks = api.log.produce(&name, records).await?;
    let mut ranges: BTreeMap<u32, (u64, u64)> = BTreeMap::new();
    for (p, o) in &acks {
        let r = ranges.entry(*p).or_insert((*o, *o));
        r.0 = r.0.min(*o);
        r.1 = r.1.max(*o);
    }
    Ok(Json(json!({
        "topic": name,
        "records": acks.len(),
        "offsets": ranges.iter().map(|(p, (a, b))| (p.to_string(), json!({"first": a, "last": b}))).collect::<serde_json::Map<_, _>>(),
    })))
}

fn key_of(line: &[u8], field: Option<&str>) -> Option<Vec<u8>> {
    let field = field?;
    let v: Value = serde_json::from_slice(line).ok()?;
    match v.get(field)? {
        Value::Null => None,
        Value::String(s) => Some(s.as_bytes().to_vec()),
        other => Some(other.to_string().into_bytes()),
    }
}

fn split_records(body: &[u8], key_field: Option<&str>) -> Result<Vec<ProduceRecord>, ApiError> {
    let trimmed = body.trim_ascii_start();
    if trimmed.first() == Some(&b'[') {
        let items: Vec<Value> = serde_json::from_slice(trimmed).map_err(|e| {
            ApiError::invalid(format!(
                "the body starts like a JSON array but is not one: {e}"
            ))
        })?;
        return Ok(items
            .into_iter()
            .map(|v| {
                let value = v.to_string().into_bytes();
                ProduceRecord {
                    key: key_of(&value, key_field),
                    value,
                    timestamp: None,
                }
            })
            .collect());
    }
    Ok(body
        .split(|b| *b == b'\n')
        .map(<[u8]>::trim_ascii)
        .filter(|l| !l.is_empty())
        .map(|line| ProduceRecord {
            key: key_of(line, key_field),
            value: line.to_vec(),
            timestamp: None,
        })
        .collect())
}

/// The records of an Avro object container file, each re-encoded as a bare datum.
fn avro_records(body: &[u8]) -> Result<Vec<ProduceRecord>, ApiError> {
    let reader = apache_avro::Reader::new(body)
        .map_err(|e| ApiError::invalid(format!("the body is not an Avro container file: {e}")))?;
    let schema = reader.writer_schema().clone();
    let mut out = Vec::new();
    for (i, value) in reader.enumerate() {
        let value = value.map_err(|e| ApiError::invalid(format!("Avro record {i}: {e}")))?;
        #[allow(deprecated)]
        let datum = apache_avro::to_avro_datum(&schema, value)
            .map_err(|e| ApiError::invalid(format!("Avro record {i}: {e}")))?;
        out.push(ProduceRecord {
            key: None,
            value: datum,
            timestamp: None,
        });
    }
    Ok(out)
}
