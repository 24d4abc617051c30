//! Batch ingestion's replace and append semantics, and the coordinator's datasource and segment
//! endpoints, on a standalone node.

// Test code: a failed unwrap is a failed assertion.
#![allow(clippy::unwrap_used)]

mod common;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use common::{TestNode, inline_spec, node_with_sample};

const INTERVAL: &str = "2023-06-01/2023-08-01";

#[tokio::test]
async fn replace_and_append_semantics() {
    let dir = tempfile::tempdir().unwrap();
    let node = TestNode::start(dir.path()).await;
    let dims = json!(["k"]);
    let metrics = json!([{"type": "longSum", "name": "v", "fieldName": "v"}]);
    let day = |v: i64| -> Vec<Value> {
        (0..10)
            .map(|i| json!({"time": format!("2023-06-27T0{i}:00:00Z"), "k": "a", "v": v}))
            .collect()
    };
    async fn sum(node: &TestNode) -> Value {
        let q = json!({"queryType": "timeseries", "dataSource": "r", "intervals": [INTERVAL], "granularity": "all",
            "aggregations": [{"type": "longSum", "name": "v", "fieldName": "v"}, {"type": "count", "name": "rows"}]});
        node.query(q).await[0]["result"].clone()
    }
    assert_eq!(
        node.ingest(&inline_spec(
            "r",
            &day(1),
            dims.clone(),
            metrics.clone(),
            false
        ))
        .await["status"],
        "SUCCESS"
    );
    assert_eq!(sum(&node).await, json!({"v": 10, "rows": 10}));
    // Replacing the day: the new version overshadows the old one entirely.
    assert_eq!(
        node.ingest(&inline_spec(
            "r",
            &day(5),
            dims.clone(),
            metrics.clone(),
            false
        ))
        .await["status"],
        "SUCCESS"
    );
    assert_eq!(sum(&node).await, json!({"v": 50, "rows": 10}));
    // Appending adds a partition to the current version.
    assert_eq!(
        node.ingest(&inline_spec(
            "r",
            &day(2),
            dims.clone(),
            metrics.clone(),
            true
        ))
        .await["status"],
        "SUCCESS"
    );
    assert_eq!(sum(&node).await, json!({"v": 70, "rows": 20}));
    node.wait_loaded().await;
    let (_, segs) = node
        .get("/druid/coordinator/v1/datasources/r/segments")
        .await;
    assert_eq!(
        segs.as_array().unwrap().len(),
        2,
        "the replaced segment is marked unused: {segs}"
    );
    node.stop().await;
}

#[tokio::test]
async fn coordinator_endpoints() {
    let (_dir, node) = node_with_sample().await;
    node.wait_loaded().await;
    let (_, names) = node.get("/druid/coordinator/v1/datasources").await;
    assert_eq!(names, json!(["clicks"]));
    let (_, simple) = node.get("/druid/coordinator/v1/datasources?simple").await;
    assert_eq!(simple[0]["name"], "clicks");
    assert_eq!(simple[0]["properties"]["segments"]["count"], 2);
    let (_, ds) = node.get("/druid/coordinator/v1/datasources/clicks").await;
    assert_eq!(ds["segments"]["minTime"], "2023-06-27T00:00:00.000Z");
    let (_, ivs) = node
        .get("/druid/coordinator/v1/datasources/clicks/intervals")
        .await;
    assert_eq!(ivs.as_array().unwrap().len(), 2);
    let (_, load) = node.get("/druid/coordinator/v1/loadstatus").await;
    assert_eq!(load["clicks"], 100.0);
    let (_, servers) = node.get("/druid/coordinator/v1/servers?simple").await;
    assert!(servers[0]["currSize"].as_u64().unwrap() > 0);
    let (_, rules) = node.get("/druid/coordinator/v1/rules").await;
    assert_eq!(rules["_default"][0]["type"], "loadForever");
    let (_, leader) = node.get("/druid/coordinator/v1/isLeader").await;
    assert_eq!(leader, json!({"leader": true}));
    // Marking the datasource unused removes it from queries and listings.
    let (s, v, _) = node
        .request(
            Method::DELETE,
            "/druid/coordinator/v1/datasources/clicks",
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["numChangedSegments"], 2);
    let (_, names) = node.get("/druid/coordinator/v1/datasources").await;
    assert_eq!(names, json!([]));
    let (_, all) = node
        .get("/druid/coordinator/v1/metadata/datasources?includeUnused")
        .await;
    assert_eq!(all, json!(["clicks"]));
    let (s, _) = node
        .post(
            "/druid/v2",
            &json!({"queryType": "timeBoundary", "dataSource": "clicks"}),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, _, _) = node
        .request(
            Method::DELETE,
            "/druid/coordinator/v1/datasources/never",
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    node.stop().await;
}
