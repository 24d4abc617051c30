//! Helpers for stream ingestion tests: a supervisor spec over the embedded stream, events with
//! unique ids, producing, SQL totals and waits on the supervisor's status.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use super::TestNode;

pub const SUP: &str = "/druid/indexer/v1/supervisor";

pub fn spec(topic: &str) -> Value {
    json!({"type": "kafka", "spec": {
        "dataSchema": {
            "dataSource": "events",
            "timestampSpec": {"column": "ts", "format": "iso"},
            "dimensionsSpec": {"dimensions": ["page", {"type": "long", "name": "uid"}]},
            "metricsSpec": [{"type": "count", "name": "count"}],
            "granularitySpec": {"segmentGranularity": "hour", "queryGranularity": "none", "rollup": false}},
        "ioConfig": {"type": "kafka", "topic": topic, "inputFormat": {"type": "json"},
            "useEarliestOffset": true, "taskCount": 2, "taskDuration": "PT1H"},
        "tuningConfig": {"type": "kafka", "maxSavedParseExceptions": 5}}})
}

/// `n` events with unique ids from `first`, spread over two hours of one day.
pub fn events(first: u64, n: u64) -> String {
    (first..first + n)
        .map(|i| {
            json!({"ts": format!("2024-03-01T{:02}:{:02}:00Z", 10 + i % 2, i % 60), "page": format!("/p{}", i % 7), "uid": i})
                .to_string()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Creates an embedded topic; the answer's status and body.
pub async fn create_topic(node: &TestNode, topic: &str, partitions: u32) -> (StatusCode, Value) {
    node.post(
        "/eddy/v1/streams",
        &json!({"topic": topic, "partitions": partitions}),
    )
    .await
}

pub async fn produce(node: &TestNode, topic: &str, body: &str) -> Value {
    let resp = reqwest::Client::new()
        .post(format!("{}/eddy/v1/streams/{topic}?key=page", node.url))
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    resp.json().await.unwrap()
}

pub async fn sql(node: &TestNode, q: &str) -> Value {
    let (status, body) = node.post("/druid/v2/sql", &json!({"query": q})).await;
    assert_eq!(status, StatusCode::OK, "{q}: {body}");
    body
}

/// (rows, sum of uid) of the datasource, (0, 0) before it exists.
pub async fn totals(node: &TestNode) -> (u64, u64) {
    let (status, body) = node
        .post(
            "/druid/v2/sql",
            &json!({"query": "SELECT COUNT(*) AS n, SUM(uid) AS s FROM events"}),
        )
        .await;
    if status != StatusCode::OK {
        return (0, 0);
    }
    (
        body[0]["n"].as_u64().unwrap_or(0),
        body[0]["s"].as_u64().unwrap_or(0),
    )
}

/// Waits until the totals equal `want`, checking they never exceed it; returns how long it took.
pub async fn wait_totals(node: &TestNode, want: (u64, u64), limit: Duration) -> Duration {
    let began = Instant::now();
    loop {
        let got = totals(node).await;
        assert!(
            got.0 <= want.0,
            "more rows than produced: {got:?} > {want:?}"
        );
        if got == want {
            return began.elapsed();
        }
        assert!(
            began.elapsed() < limit,
            "rows did not arrive: {got:?}, want {want:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub fn sum_range(first: u64, n: u64) -> u64 {
    (first..first + n).sum()
}

pub async fn wait_status(node: &TestNode, what: &str, ok: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, st) = node.get(&format!("{SUP}/events/status")).await;
        if ok(&st["payload"]) {
            return st["payload"].clone();
        }
        assert!(Instant::now() < deadline, "{what}: {st}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub fn offsets_sum(v: &Value) -> u64 {
    v.as_object()
        .map_or(0, |m| m.values().filter_map(Value::as_u64).sum())
}
