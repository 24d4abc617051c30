//! Druid's coordinator HTTP API: datasources, segments, load status, servers, rules, leader.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::routing::get;
use serde_json::{Value, json};

use eddy_meta::{Command, Outcome, SegmentRecord};
use eddy_runtime::http::ApiError;
use eddy_types::time::format_iso;
use eddy_types::{DataSourceName, Interval};

use crate::Coordinator;

type Params = Query<HashMap<String, String>>;

pub fn router(coordinator: Arc<Coordinator>) -> Router {
    Router::new()
        .route("/druid/coordinator/v1/datasources", get(datasources))
        .route(
            "/druid/coordinator/v1/datasources/{ds}",
            get(datasource).delete(mark_unused),
        )
        .route(
            "/druid/coordinator/v1/datasources/{ds}/intervals",
            get(intervals),
        )
        .route(
            "/druid/coordinator/v1/datasources/{ds}/intervals/{interval}",
            axum::routing::delete(mark_interval_unused),
        )
        .route(
            "/druid/coordinator/v1/datasources/{ds}/segments",
            get(segments),
        )
        .route("/druid/coordinator/v1/loadstatus", get(loadstatus))
        .route(
            "/druid/coordinator/v1/metadata/datasources",
            get(metadata_datasources),
        )
        .route(
            "/druid/coordinator/v1/metadata/datasources/{ds}/segments",
            get(metadata_segments),
        )
        .route("/druid/coordinator/v1/servers", get(servers))
        .route("/druid/coordinator/v1/rules", get(rules))
        .route("/druid/coordinator/v1/rules/{ds}", get(rules_of))
        .route("/druid/coordinator/v1/leader", get(leader))
        .route("/druid/coordinator/v1/isLeader", get(is_leader))
        .route("/druid/indexer/v1/leader", get(leader))
        .route("/druid/indexer/v1/isLeader", get(is_leader))
        .with_state(coordinator)
}

fn ds_name(ds: &str) -> Result<DataSourceName, ApiError> {
    DataSourceName::new(ds).map_err(|e| ApiError::invalid(e.to_string()))
}

fn summary(name: &DataSourceName, segs: &[&SegmentRecord], replicants: usize) -> Value {
    let size: u64 = segs.iter().map(|s| s.size).sum();
    json!({
        "name": name,
        "properties": {
            "tiers": {"_default_tier": {"size": size, "segmentCount": segs.len(), "replicatedSize": size * replicants as u64}},
            "segments": {
                "minTime": segs.iter().map(|s| s.id.interval.start).min().map(format_iso),
                "maxTime": segs.iter().map(|s| s.id.interval.end).max().map(format_iso),
                "size": size,
                "count": segs.len(),
                "replicatedSize": size * replicants as u64,
            }
        }
    })
}

fn by_datasource(c: &Coordinator) -> BTreeMap<DataSourceName, Vec<SegmentRecord>> {
    let state = c.meta.state();
    let mut out: BTreeMap<DataSourceName, Vec<SegmentRecord>> = BTreeMap::new();
    for s in state.used_segments() {
        out.entry(s.id.datasource.clone())
            .or_default()
            .push(s.clone());
    }
    out
}

async fn datasources(State(c): State<Arc<Coordinator>>, Query(q): Params) -> Json<Value> {
    let all = by_datasource(&c);
    if q.contains_key("simple") || q.contains_key("full") {
        return Json(Value::Array(
            all.iter()
                .map(|(name, segs)| {
                    let refs: Vec<&SegmentRecord> = segs.iter().collect();
                    let mut v = summary(name, &refs, c.config.replicants);
                    if q.contains_key("full") {
                        v["segments"] = json!(segs.iter().map(segment_json).collect::<Vec<_>>());
                    }
                    v
                })
                .collect(),
        ));
    }
    Json(json!(all.keys().collect::<Vec<_>>()))
}

fn segment_json(s: &SegmentRecord) -> Value {
    json!({
        "dataSource": s.id.datasource,
        "interval": s.id.interval.to_string(),
        "version": s.id.version,
        "shardSpec": {"type": "numbered", "partitionNum": s.id.partition},
        "dimensions": s.dimensions().collect::<Vec<_>>().join(","),
        "metrics": s.metrics().collect::<Vec<_>>().join(","),
        "binaryVersion": 9,
        "size": s.size,
        "identifier": s.id.to_string(),
        "loadSpec": {"type": "eddy", "path": s.path},
    })
}

async fn datasource(
    State(c): State<Arc<Coordinator>>,
    Path(ds): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let name = ds_name(&ds)?;
    let all = by_datasource(&c);
    let segs = all
        .get(&name)
        .ok_or_else(|| ApiError::not_found(format!("datasource {ds:?} has no used segments")))?;
    let refs: Vec<&SegmentRecord> = segs.iter().collect();
    Ok(Json(
        summary(&name, &refs, c.config.replicants)["properties"].clone(),
    ))
}

async fn mark_unused(
    State(c): State<Arc<Coordinator>>,
    Path(ds): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let name = ds_name(&ds)?;
    if !c
        .meta
        .state()
        .segments
        .values()
        .any(|s| s.id.datasource == name)
    {
        return Err(ApiError::not_found(format!(
            "datasource {ds:?} does not exist"
        )));
    }
    let out = c
        .meta
        .apply(Command::MarkUnused {
            datasource: name,
            interval: None,
            now: 0,
        })
        .await?;
    c.poke();
    let n = if let Outcome::MarkedUnused(n) = out {
        n
    } else {
        0
    };
    Ok(Json(json!({"numChangedSegments": n})))
}

async fn mark_interval_unused(
    State(c): State<Arc<Coordinator>>,
    Path((ds, interval)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let name = ds_name(&ds)?;
    let iv = Interval::parse_url_form(&interval).map_err(|e| ApiError::invalid(e.to_string()))?;
    let out = c
        .meta
        .apply(Command::MarkUnused {
            datasource: name,
            interval: Some(iv),
            now: 0,
        })
        .await?;
    c.poke();
    let n = if let Outcome::MarkedUnused(n) = out {
        n
    } else {
        0
    };
    Ok(Json(json!({"numChangedSegments": n})))
}

async fn intervals(
    State(c): State<Arc<Coordinator>>,
    Path(ds): Path<String>,
    Query(q): Params,
) -> Result<Json<Value>, ApiError> {
    let name = ds_name(&ds)?;
    let all = by_datasource(&c);
    let segs = all
        .get(&name)
        .ok_or_else(|| ApiError::not_found(format!("datasource {ds:?} has no used segments")))?;
    let mut per: BTreeMap<Interval, (u64, usize)> = BTreeMap::new();
    for s in segs {
        let e = per.entry(s.id.interval).or_default();
        e.0 += s.size;
        e.1 += 1;
    }
    if q.contains_key("simple") || q.contains_key("full") {
        let m: serde_json::Map<String, Value> = per
            .iter()
            .rev()
            .map(|(iv, (size, count))| (iv.to_string(), json!({"size": size, "count": count})))
            .collect();
        return Ok(Json(Value::Object(m)));
    }
    Ok(Json(json!(
        per.keys().rev().map(|i| i.to_string()).collect::<Vec<_>>()
    )))
}

async fn segments(
    State(c): State<Arc<Coordinator>>,
    Path(ds): Path<String>,
    Query(q): Params,
) -> Result<Json<Value>, ApiError> {
    let name = ds_name(&ds)?;
    let all = by_datasource(&c);
    let segs = all.get(&name).cloned().unwrap_or_default();
    if q.contains_key("full") {
        return Ok(Json(json!(
            segs.iter().map(segment_json).collect::<Vec<_>>()
        )));
    }
    Ok(Json(json!(
        segs.iter().map(|s| s.id.to_string()).collect::<Vec<_>>()
    )))
}

async fn metadata_datasources(State(c): State<Arc<Coordinator>>, Query(q): Params) -> Json<Value> {
    let state = c.meta.state();
    let names: HashSet<DataSourceName> = if q.contains_key("includeUnused") {
        state
            .segments
            .values()
            .map(|s| s.id.datasource.clone())
            .collect()
    } else {
        state.datasources().into_iter().collect()
    };
    let mut names: Vec<DataSourceName> = names.into_iter().collect();
    names.sort();
    Json(json!(names))
}

async fn metadata_segments(
    State(c): State<Arc<Coordinator>>,
    Path(ds): Path<String>,
    Query(q): Params,
) -> Result<Json<Value>, ApiError> {
    let name = ds_name(&ds)?;
    let state = c.meta.state();
    let segs: Vec<&SegmentRecord> = state.used_segments_of(&name).collect();
    if q.contains_key("full") {
        return Ok(Json(json!(
            segs.iter().map(|s| segment_json(s)).collect::<Vec<_>>()
        )));
    }
    Ok(Json(json!(
        segs.iter().map(|s| s.id.to_string()).collect::<Vec<_>>()
    )))
}

/// Druid's load status: percent (or count left with `?simple`) of wanted segments served.
async fn loadstatus(State(c): State<Arc<Coordinator>>, Query(q): Params) -> Json<Value> {
    let served: HashSet<_> = c.historicals.iter().flat_map(|h| h.served()).collect();
    let mut per: BTreeMap<DataSourceName, (usize, usize)> = BTreeMap::new();
    for s in c.meta.state().used_segments() {
        let e = per.entry(s.id.datasource.clone()).or_default();
        e.0 += 1;
        if served.contains(&s.id) {
            e.1 += 1;
        }
    }
    let simple = q.contains_key("simple");
    let map: serde_json::Map<String, Value> = per
        .into_iter()
        .map(|(ds, (total, loaded))| {
            let v = if simple {
                json!(total - loaded)
            } else {
                json!(if total == 0 {
                    100.0
                } else {
                    100.0 * loaded as f64 / total as f64
                })
            };
            (ds.to_string(), v)
        })
        .collect();
    if q.contains_key("full") {
        return Json(json!({"_default_tier": map}));
    }
    Json(Value::Object(map))
}

async fn servers(State(c): State<Arc<Coordinator>>) -> Json<Value> {
    Json(Value::Array(
        c.historicals
            .iter()
            .map(|h| {
                let (used, max) = h.usage();
                json!({"host": h.node_id(), "tier": "_default_tier", "type": "historical", "currSize": used, "maxSize": max, "priority": 0})
            })
            .collect(),
    ))
}

fn default_rule(c: &Coordinator) -> Value {
    json!([{"tieredReplicants": {"_default_tier": c.config.replicants}, "type": "loadForever"}])
}

async fn rules(State(c): State<Arc<Coordinator>>) -> Json<Value> {
    Json(json!({"_default": default_rule(&c)}))
}

async fn rules_of(State(_c): State<Arc<Coordinator>>, Path(_ds): Path<String>) -> Json<Value> {
    Json(json!([]))
}

async fn leader() -> String {
    format!("http://{}", eddy_runtime::http::host())
}

async fn is_leader() -> Json<Value> {
    Json(json!({"leader": true}))
}
