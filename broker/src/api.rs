//! Druid's broker HTTP API for native queries: `POST /druid/v2` (and `/druid/v2/`, `?pretty`),
//! `DELETE /druid/v2/{queryId}`, and datasource introspection.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query as UrlQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde_json::{Value, json};

use eddy_query::Query;
use eddy_runtime::http::ApiError;
use eddy_types::{DataSourceName, ErrorCode};

use crate::Broker;

pub fn router(broker: Arc<Broker>) -> Router {
    Router::new()
        .route("/druid/v2", post(native))
        .route("/druid/v2/", post(native))
        .route("/druid/v2/{id}", delete(cancel))
        .route("/druid/v2/datasources", get(datasources))
        .route("/druid/v2/datasources/{ds}", get(datasource))
        .route("/druid/v2/datasources/{ds}/dimensions", get(dimensions))
        .route("/druid/v2/datasources/{ds}/metrics", get(metrics))
        .route(
            "/druid/broker/v1/loadstatus",
            get(|| async { Json(json!({"inventoryInitialized": true})) }),
        )
        .route(
            "/druid/broker/v1/readiness",
            get(|| async { StatusCode::OK }),
        )
        .with_state(broker.clone())
        .merge(crate::sql::routes(broker))
}

fn error_response(e: ApiError, query_id: &str) -> Response {
    let mut resp = e.into_response();
    if let Ok(v) = HeaderValue::from_str(query_id) {
        resp.headers_mut().insert("X-Druid-Query-Id", v);
    }
    resp
}

async fn native(
    State(b): State<Arc<Broker>>,
    UrlQuery(params): UrlQuery<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let fallback_id = uuid::Uuid::new_v4().to_string();
    if headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.contains("smile"))
    {
        let e = ApiError::new(
            ErrorCode::Unsupported,
            "Smile request bodies are not supported; send JSON (Content-Type: application/json)",
        );
        return error_response(e, &fallback_id);
    }
    let mut query = match Query::from_json_bytes(&body) {
        Ok(q) => q,
        Err(e) => return error_response(ApiError::from(e), &fallback_id),
    };
    let query_id = query.context().query_id().unwrap_or(fallback_id);
    query.context_mut().set("queryId", json!(query_id));
    match b.run(query, &query_id).await {
        Ok(result) => {
            let pretty = params.contains_key("pretty");
            let mut body = if pretty {
                serde_json::to_vec_pretty(&result)
            } else {
                serde_json::to_vec(&result)
            }
            .unwrap_or_default();
            if pretty {
                body.push(b'\n');
            }
            let mut resp = (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "application/json")],
                body,
            )
                .into_response();
            if let Ok(v) = HeaderValue::from_str(&query_id) {
                resp.headers_mut().insert("X-Druid-Query-Id", v);
            }
            resp.headers_mut()
                .insert("X-Druid-Response-Context", HeaderValue::from_static("{}"));
            resp
        }
        Err(e) => error_response(ApiError::from(e), &query_id),
    }
}

async fn cancel(State(b): State<Arc<Broker>>, Path(id): Path<String>) -> Response {
    if b.cancel(&id) {
        StatusCode::ACCEPTED.into_response()
    } else {
        ApiError::not_found(format!("query {id} is not running")).into_response()
    }
}

async fn datasources(State(b): State<Arc<Broker>>) -> Json<Value> {
    Json(json!(b.datasources()))
}

fn known(b: &Broker, ds: &str) -> Result<DataSourceName, ApiError> {
    let name = DataSourceName::new(ds).map_err(|e| ApiError::invalid(e.to_string()))?;
    if !b.datasources().contains(&name) {
        return Err(ApiError::not_found(format!(
            "datasource {ds:?} does not exist"
        )));
    }
    Ok(name)
}

async fn datasource(
    State(b): State<Arc<Broker>>,
    Path(ds): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let name = known(&b, &ds)?;
    let (dims, metrics) = b.columns(&name);
    Ok(Json(json!({"dimensions": dims, "metrics": metrics})))
}

async fn dimensions(
    State(b): State<Arc<Broker>>,
    Path(ds): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let name = known(&b, &ds)?;
    Ok(Json(json!(b.columns(&name).0)))
}

async fn metrics(
    State(b): State<Arc<Broker>>,
    Path(ds): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let name = known(&b, &ds)?;
    Ok(Json(json!(b.columns(&name).1)))
}
