//! Druid's task API: submit, status (with progress and row counts), reports, payload,
//! shutdown, and task lists.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};

use eddy_meta::{TaskRecord, TaskState};
use eddy_runtime::http::ApiError;
use eddy_types::TaskId;
use eddy_types::time::format_iso;

use crate::TaskRunner;

pub fn router(runner: Arc<TaskRunner>) -> Router {
    Router::new()
        .route("/druid/indexer/v1/task", post(submit))
        .route("/druid/indexer/v1/task/{id}", get(payload))
        .route("/druid/indexer/v1/task/{id}/status", get(status))
        .route("/druid/indexer/v1/task/{id}/reports", get(reports))
        .route("/druid/indexer/v1/task/{id}/shutdown", post(shutdown))
        .route("/druid/indexer/v1/tasks", get(tasks))
        .route("/druid/indexer/v1/runningTasks", get(running))
        .route("/druid/indexer/v1/completeTasks", get(complete))
        .route("/druid/indexer/v1/waitingTasks", get(empty))
        .route("/druid/indexer/v1/pendingTasks", get(empty))
        .with_state(runner)
}

async fn submit(State(r): State<Arc<TaskRunner>>, body: Bytes) -> Result<Json<Value>, ApiError> {
    let id = r.submit(&body).await?;
    Ok(Json(json!({"task": id})))
}

fn task_id(id: &str) -> Result<TaskId, ApiError> {
    TaskId::new(id).map_err(|e| ApiError::invalid(e.to_string()))
}

fn record(r: &TaskRunner, id: &TaskId) -> Result<TaskRecord, ApiError> {
    r.metadata()
        .state()
        .tasks
        .get(id)
        .cloned()
        .ok_or_else(|| ApiError::not_found(format!("task {id} does not exist")))
}

fn state_name(s: TaskState) -> &'static str {
    match s {
        TaskState::Running => "RUNNING",
        TaskState::Success => "SUCCESS",
        TaskState::Failed => "FAILED",
    }
}

/// Druid's task status object, with Eddy's progress and row counts added.
fn status_json(r: &TaskRunner, t: &TaskRecord) -> Value {
    let live = r.live(&t.id);
    let (progress, row_stats, parse_errors) = match &live {
        Some(l) => (l.progress(), l.row_stats().to_json(), l.parse_errors()),
        None => {
            let report = stored_or_stream_report(r, t);
            (
                report.get("progress").cloned().unwrap_or(Value::Null),
                report
                    .pointer("/rowStats/buildSegments")
                    .cloned()
                    .unwrap_or(Value::Null),
                report
                    .pointer("/unparseableEvents/buildSegments")
                    .cloned()
                    .unwrap_or(json!([])),
            )
        }
    };
    let state = state_name(t.state);
    json!({
        "id": t.id,
        "groupId": t.id,
        "type": t.kind,
        "createdTime": format_iso(t.created),
        "queueInsertionTime": format_iso(t.created),
        "statusCode": state,
        "status": state,
        "runnerStatusCode": if t.state == TaskState::Running { "RUNNING" } else { "NONE" },
        "duration": t.duration.unwrap_or(-1),
        "location": {"host": null, "port": -1, "tlsPort": -1},
        "dataSource": t.datasource,
        "errorMsg": t.error,
        "progress": progress,
        "rowStats": row_stats,
        "parseErrors": parse_errors,
    })
}

/// A finished task's stored report, or a running realtime task's live one.
fn stored_or_stream_report(r: &TaskRunner, t: &TaskRecord) -> Value {
    match t.state {
        TaskState::Running => r
            .stream_tasks()
            .report(t.id.as_str())
            .unwrap_or_else(|| t.report.clone()),
        _ => t.report.clone(),
    }
}

async fn status(
    State(r): State<Arc<TaskRunner>>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id = task_id(&id)?;
    let t = record(&r, &id)?;
    Ok(Json(json!({"task": id, "status": status_json(&r, &t)})))
}

async fn reports(
    State(r): State<Arc<TaskRunner>>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id = task_id(&id)?;
    let t = record(&r, &id)?;
    let payload = match r.live(&id) {
        Some(l) => l.report("BUILD_SEGMENTS", None),
        None => stored_or_stream_report(&r, &t),
    };
    Ok(Json(
        json!({"ingestionStatsAndErrors": {"taskId": id, "payload": payload, "type": "ingestionStatsAndErrors"}}),
    ))
}

async fn payload(
    State(r): State<Arc<TaskRunner>>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id = task_id(&id)?;
    let t = record(&r, &id)?;
    Ok(Json(json!({"task": id, "payload": t.spec})))
}

async fn shutdown(
    State(r): State<Arc<TaskRunner>>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id = task_id(&id)?;
    record(&r, &id)?;
    r.shutdown_task(&id)?;
    Ok(Json(json!({"task": id})))
}

fn list(
    r: &TaskRunner,
    keep: &dyn Fn(&TaskRecord) -> bool,
    datasource: Option<&String>,
) -> Json<Value> {
    let state = r.metadata().state();
    let mut tasks: Vec<&TaskRecord> = state
        .tasks
        .values()
        .filter(|t| keep(t) && datasource.is_none_or(|d| t.datasource.as_str() == d))
        .collect();
    tasks.sort_by_key(|t| std::cmp::Reverse(t.created));
    Json(Value::Array(
        tasks.into_iter().map(|t| status_json(r, t)).collect(),
    ))
}

async fn tasks(
    State(r): State<Arc<TaskRunner>>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let ds = q.get("datasource");
    Ok(match q.get("state").map(String::as_str) {
        None => list(&r, &|_| true, ds),
        Some("running") => list(&r, &|t| t.state == TaskState::Running, ds),
        Some("complete") => list(&r, &|t| t.state != TaskState::Running, ds),
        Some("waiting") | Some("pending") => Json(json!([])),
        Some(other) => {
            return Err(ApiError::invalid(format!(
                "state {other:?}: expected running, complete, waiting or pending"
            )));
        }
    })
}

async fn running(State(r): State<Arc<TaskRunner>>) -> Json<Value> {
    list(&r, &|t| t.state == TaskState::Running, None)
}

async fn complete(State(r): State<Arc<TaskRunner>>) -> Json<Value> {
    list(&r, &|t| t.state != TaskState::Running, None)
}

async fn empty() -> Json<Value> {
    Json(json!([]))
}
