//! Restarts: published data answers the same after a stop and start, and a damaged segment
//! file makes queries over it fail clearly while the rest keeps serving.

// Test code: a failed unwrap is a failed assertion.
#![allow(clippy::unwrap_used)]

mod common;

use reqwest::StatusCode;
use serde_json::{Value, json};

use common::{TestNode, inline_spec, sample_spec};

fn queries() -> Vec<Value> {
    let iv = ["2023-06-01/2023-08-01"];
    vec![
        json!({"queryType": "timeseries", "dataSource": "clicks", "intervals": iv, "granularity": "hour",
            "aggregations": [{"type": "longSum", "name": "rows", "fieldName": "count"}, {"type": "hyperUnique", "name": "u", "fieldName": "unique_users"}]}),
        json!({"queryType": "topN", "dataSource": "clicks", "intervals": iv, "granularity": "all", "dimension": "page", "threshold": 5,
            "metric": "bytes", "aggregations": [{"type": "longSum", "name": "bytes", "fieldName": "bytes"}]}),
        json!({"queryType": "groupBy", "dataSource": "clicks", "intervals": iv, "granularity": "day", "dimensions": ["country", "browser"],
            "aggregations": [{"type": "count", "name": "rows"}, {"type": "longMax", "name": "slowest", "fieldName": "latency_ms"}]}),
        json!({"queryType": "scan", "dataSource": "clicks", "intervals": iv, "columns": ["__time", "user_id"], "order": "descending", "limit": 7}),
    ]
}

#[tokio::test]
async fn same_answers_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let node = TestNode::start(dir.path()).await;
    assert_eq!(node.ingest(&sample_spec()).await["status"], "SUCCESS");
    let mut before = Vec::new();
    for q in queries() {
        before.push(node.query(q).await);
    }
    node.stop().await;

    let node = TestNode::start(dir.path()).await;
    node.wait_loaded().await;
    for (q, want) in queries().into_iter().zip(before) {
        assert_eq!(node.query(q.clone()).await, want, "{q}");
    }
    // Task history survives too.
    let (_, tasks) = node.get("/druid/indexer/v1/tasks").await;
    assert_eq!(tasks.as_array().unwrap().len(), 1);
    node.stop().await;
}

#[tokio::test]
async fn damaged_segment_fails_its_queries_only() {
    let dir = tempfile::tempdir().unwrap();
    let node = TestNode::start(dir.path()).await;
    assert_eq!(node.ingest(&sample_spec()).await["status"], "SUCCESS");
    let other = inline_spec(
        "other",
        &[json!({"time": "2023-06-27T00:00:00Z", "k": "a"})],
        json!(["k"]),
        json!([{"type": "count", "name": "c"}]),
        false,
    );
    assert_eq!(node.ingest(&other).await["status"], "SUCCESS");
    node.stop().await;

    // Damage the clicks segments in deep storage and drop the local cache, so the historical
    // must load the damaged copies again.
    let mut damaged = 0;
    for entry in walk(&dir.path().join("deep/clicks")) {
        if entry.to_string_lossy().ends_with(".eddy") {
            let mut bytes = std::fs::read(&entry).unwrap();
            let mid = bytes.len() / 2;
            bytes[mid] ^= 0xff;
            std::fs::remove_file(&entry).unwrap();
            std::fs::write(&entry, bytes).unwrap();
            damaged += 1;
        }
    }
    assert_eq!(damaged, 2);
    std::fs::remove_dir_all(dir.path().join("cache")).unwrap();

    let node = TestNode::start(dir.path()).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let (status, body) = loop {
        let (s, b) = node.post("/druid/v2", &queries()[0]).await;
        if s != StatusCode::OK || std::time::Instant::now() > deadline {
            break (s, b);
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    let msg = body["errorMessage"].as_str().unwrap();
    assert!(
        msg.contains("clicks_2023-06-2") && msg.contains("checksum"),
        "{msg}"
    );
    // The healthy datasource is served once the historical has loaded it again.
    let q = json!({"queryType": "timeseries", "dataSource": "other", "intervals": ["2023-06-01/2023-08-01"], "granularity": "all",
        "aggregations": [{"type": "longSum", "name": "c", "fieldName": "c"}]});
    let ok = loop {
        let ok = node.query(q.clone()).await;
        if ok[0]["result"]["c"] == 1 || std::time::Instant::now() > deadline {
            break ok;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert_eq!(ok[0]["result"]["c"], 1, "{ok}");
    node.stop().await;
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}
