//! HTTP-level tests of a standalone node: every endpoint of the core engine, with answers
//! checked against values computed independently from the sample data, and bad input answered
//! with clear errors while the node keeps serving.

// Test code: a failed unwrap is a failed assertion.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use common::{TestNode, inline_spec, node_with_sample, sample_rows};

const INTERVAL: &str = "2023-06-01/2023-08-01";

fn count_by(rows: &[Value], field: &str) -> BTreeMap<String, u64> {
    let mut m = BTreeMap::new();
    for r in rows {
        let k = r[field].as_str().map_or("null".to_string(), str::to_string);
        *m.entry(k).or_default() += 1;
    }
    m
}

#[tokio::test]
async fn status_endpoints_and_unknown_paths() {
    let dir = tempfile::tempdir().unwrap();
    let node = TestNode::start(dir.path()).await;
    let (s, v) = node.get("/status/health").await;
    assert_eq!((s, v), (StatusCode::OK, json!(true)));
    let (s, v) = node.get("/status").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["version"], env!("CARGO_PKG_VERSION"));
    assert!(v["memory"]["usedMemory"].as_u64().is_some());
    let (_, props) = node.get("/status/properties").await;
    assert_eq!(props["eddy.coordinator.replicants"], "1");
    let (s, text) = node.get("/metrics").await;
    assert_eq!(s, StatusCode::OK);
    assert!(text.as_str().unwrap().contains("eddy_"), "{text}");
    let (s, v) = node.get("/no/such/thing").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert!(
        v["errorMessage"]
            .as_str()
            .unwrap()
            .contains("/no/such/thing")
    );
    node.stop().await;
}

#[tokio::test]
async fn task_api_reports_rows_progress_and_errors() {
    let dir = tempfile::tempdir().unwrap();
    let node = TestNode::start(dir.path()).await;
    let mut lines: Vec<Value> = (0..20)
        .map(|i| json!({"time": format!("2023-06-27T00:00:{i:02}Z"), "page": "p", "n": i}))
        .collect();
    lines.push(json!({"page": "no time"}));
    lines.push(json!({"time": "not a time", "page": "x"}));
    let spec = inline_spec(
        "t1",
        &lines,
        json!(["page", {"type": "long", "name": "n"}]),
        json!([{"type": "count", "name": "count"}]),
        false,
    );
    let status = node.ingest(&spec).await;
    assert_eq!(status["status"], "SUCCESS", "{status}");
    assert_eq!(status["statusCode"], "SUCCESS");
    assert_eq!(status["dataSource"], "t1");
    assert_eq!(status["rowStats"]["processed"], 20);
    assert_eq!(status["rowStats"]["unparseable"], 2);
    assert_eq!(status["progress"]["fraction"], 1.0);
    let errors = status["parseErrors"].as_array().unwrap();
    assert_eq!(errors.len(), 2);
    assert!(
        errors[1]["details"][0]
            .as_str()
            .unwrap()
            .contains("not a time"),
        "{errors:?}"
    );
    let id = status["id"].as_str().unwrap();
    let (s, report) = node
        .get(&format!("/druid/indexer/v1/task/{id}/reports"))
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        report["ingestionStatsAndErrors"]["payload"]["rowStats"]["buildSegments"]["processed"],
        20
    );
    assert_eq!(
        report["ingestionStatsAndErrors"]["payload"]["segmentAvailabilityConfirmed"],
        true
    );
    let (_, payload) = node.get(&format!("/druid/indexer/v1/task/{id}")).await;
    assert_eq!(payload["payload"]["type"], "index_parallel");
    let (_, list) = node.get("/druid/indexer/v1/tasks?state=complete").await;
    assert_eq!(list.as_array().unwrap().len(), 1);
    let (_, running) = node.get("/druid/indexer/v1/runningTasks").await;
    assert_eq!(running, json!([]));

    // Bad specs are refused at submission, naming the field.
    let mut bad = spec.clone();
    bad["spec"]["dataSchema"]["granularitySpec"]["segmentGranularity"] = json!("fortnight");
    let (s, e) = node.post("/druid/indexer/v1/task", &bad).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(
        e["errorMessage"]
            .as_str()
            .unwrap()
            .contains("segmentGranularity"),
        "{e}"
    );
    let mut bad = spec.clone();
    bad["spec"]["ioConfig"]["inputSource"] = json!({"type": "local", "baseDir": "/no/such/dir"});
    let (s, e) = node.post("/druid/indexer/v1/task", &bad).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(
        e["errorMessage"].as_str().unwrap().contains("baseDir"),
        "{e}"
    );
    let (s, _) = node.get("/druid/indexer/v1/task/nope/status").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // Too many parse errors fail the task with a clear reason.
    let mut strict = inline_spec("t2", &lines, json!(["page"]), json!([]), false);
    strict["spec"]["tuningConfig"]["maxParseExceptions"] = json!(1);
    let status = node.ingest(&strict).await;
    assert_eq!(status["status"], "FAILED");
    assert!(
        status["errorMsg"]
            .as_str()
            .unwrap()
            .contains("maxParseExceptions"),
        "{status}"
    );
    node.stop().await;
}

#[tokio::test]
async fn native_queries_answer_like_druid() {
    let (_dir, node) = node_with_sample().await;
    let rows = sample_rows();
    let total = rows.len() as u64;
    let bytes: i64 = rows.iter().map(|r| r["bytes"].as_i64().unwrap()).sum();
    let users: BTreeSet<&str> = rows
        .iter()
        .map(|r| r["user_id"].as_str().unwrap())
        .collect();

    // timeseries, granularity all, with post-aggregators.
    let ts = node
        .query(json!({"queryType": "timeseries", "dataSource": "clicks", "intervals": [INTERVAL], "granularity": "all",
            "aggregations": [{"type": "longSum", "name": "rows", "fieldName": "count"}, {"type": "longSum", "name": "bytes", "fieldName": "bytes"},
                             {"type": "hyperUnique", "name": "users", "fieldName": "unique_users", "round": true}],
            "postAggregations": [{"type": "arithmetic", "name": "avg_bytes", "fn": "/", "fields": [
                {"type": "fieldAccess", "fieldName": "bytes"}, {"type": "fieldAccess", "fieldName": "rows"}]}]}))
        .await;
    assert_eq!(ts[0]["timestamp"], "2023-06-27T00:00:00.000Z");
    assert_eq!(ts[0]["result"]["rows"], total);
    assert_eq!(ts[0]["result"]["bytes"], bytes);
    assert_eq!(ts[0]["result"]["users"], users.len());
    let avg = ts[0]["result"]["avg_bytes"].as_f64().unwrap();
    assert!((avg - bytes as f64 / total as f64).abs() < 1e-6);

    // timeseries by day: buckets only where segments are, with a grand total.
    let daily = node
        .query(json!({"queryType": "timeseries", "dataSource": "clicks", "intervals": ["2023-06-26/2023-06-30"], "granularity": "day",
            "aggregations": [{"type": "count", "name": "rows"}], "context": {"grandTotal": true}}))
        .await;
    let days: Vec<&str> = daily
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["timestamp"].as_str().unwrap_or("total"))
        .collect();
    assert_eq!(
        days,
        [
            "2023-06-27T00:00:00.000Z",
            "2023-06-28T00:00:00.000Z",
            "total"
        ]
    );
    assert_eq!(daily[2]["result"]["rows"], total);
    // Empty interior buckets are filled: count 0, sums null.
    let hourly = node
        .query(json!({"queryType": "timeseries", "dataSource": "clicks", "intervals": ["2023-06-27T00:00:00Z/2023-06-27T04:00:00Z"],
            "granularity": "hour", "filter": {"type": "interval", "dimension": "__time",
                "intervals": ["2023-06-27T00:00:00Z/2023-06-27T01:00:00Z", "2023-06-27T03:00:00Z/2023-06-27T04:00:00Z"]},
            "aggregations": [{"type": "count", "name": "rows"}, {"type": "longSum", "name": "b", "fieldName": "bytes"}]}))
        .await;
    let hours: Vec<(u64, bool)> = hourly
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["result"]["rows"].as_u64().unwrap(),
                r["result"]["b"].is_null(),
            )
        })
        .collect();
    assert_eq!(hours.len(), 4);
    assert!(hours[0].0 > 0 && hours[3].0 > 0);
    assert_eq!((hours[1], hours[2]), ((0, true), (0, true)));
    let skipped = node
        .query(json!({"queryType": "timeseries", "dataSource": "clicks", "intervals": ["2023-06-27T00:00:00Z/2023-06-27T04:00:00Z"],
            "granularity": "hour", "filter": {"type": "interval", "dimension": "__time", "intervals": ["2023-06-27T00:00:00Z/2023-06-27T01:00:00Z"]},
            "aggregations": [{"type": "count", "name": "rows"}], "context": {"skipEmptyBuckets": "true"}}))
        .await;
    assert_eq!(skipped.as_array().unwrap().len(), 1);

    // topN by count.
    let by_country = count_by(&rows, "country");
    let top = node
        .query(json!({"queryType": "topN", "dataSource": "clicks", "intervals": [INTERVAL], "granularity": "all", "dimension": "country",
            "threshold": 3, "metric": "rows", "aggregations": [{"type": "count", "name": "rows"}]}))
        .await;
    let result = top[0]["result"].as_array().unwrap();
    assert_eq!(result.len(), 3);
    let mut want: Vec<(&String, &u64)> = by_country.iter().collect();
    want.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    for (got, (country, n)) in result.iter().zip(want) {
        assert_eq!(got["rows"], *n);
        assert_eq!(got["country"].as_str().unwrap_or("null"), country);
    }

    // groupBy with filter, having, limitSpec and subtotals.
    let gb = node
        .query(json!({"queryType": "groupBy", "dataSource": "clicks", "intervals": [INTERVAL], "granularity": "all",
            "dimensions": ["browser", "page"], "filter": {"type": "selector", "dimension": "browser", "value": "Chrome"},
            "aggregations": [{"type": "count", "name": "rows"}],
            "having": {"type": "greaterThan", "aggregation": "rows", "value": 1},
            "limitSpec": {"type": "default", "limit": 5, "columns": [{"dimension": "rows", "direction": "descending"}]}}))
        .await;
    let events = gb.as_array().unwrap();
    assert!(!events.is_empty() && events.len() <= 5);
    assert_eq!(events[0]["version"], "v1");
    assert!(events.iter().all(|e| e["event"]["browser"] == "Chrome"));
    let counts: Vec<u64> = events
        .iter()
        .map(|e| e["event"]["rows"].as_u64().unwrap())
        .collect();
    assert!(counts.windows(2).all(|w| w[0] >= w[1]), "{counts:?}");
    let chrome_pages =
        rows.iter()
            .filter(|r| r["browser"] == "Chrome")
            .fold(BTreeMap::new(), |mut m, r| {
                *m.entry(r["page"].as_str().unwrap().to_string())
                    .or_insert(0u64) += 1;
                m
            });
    assert_eq!(counts[0], *chrome_pages.values().max().unwrap());
    let sub = node
        .query(json!({"queryType": "groupBy", "dataSource": "clicks", "intervals": [INTERVAL], "granularity": "all",
            "dimensions": ["browser"], "aggregations": [{"type": "count", "name": "rows"}], "subtotalsSpec": [["browser"], []]}))
        .await;
    let sub = sub.as_array().unwrap();
    assert_eq!(sub.len(), 5, "4 browsers and a grand total: {sub:?}");
    assert_eq!(sub[4]["event"]["rows"], total);

    // scan, list and compactedList, time-ordered.
    let scan = node
        .query(json!({"queryType": "scan", "dataSource": "clicks", "intervals": [INTERVAL], "columns": ["__time", "page", "bytes"],
            "limit": 3, "order": "ascending"}))
        .await;
    let events = scan[0]["events"].as_array().unwrap();
    assert_eq!(events.len(), 3);
    assert_eq!(events[0]["page"], rows[0]["page"]);
    assert_eq!(events[0]["bytes"], rows[0]["bytes"]);
    assert_eq!(events[0]["__time"], 1_687_824_028_000i64);
    let compact = node
        .query(json!({"queryType": "scan", "dataSource": "clicks", "intervals": [INTERVAL], "columns": ["page"],
            "resultFormat": "compactedList", "limit": 2, "offset": 1}))
        .await;
    assert_eq!(compact[0]["columns"], json!(["page"]));
    assert!(compact[0]["events"][0].is_array());
    assert!(
        compact[0]["segmentId"]
            .as_str()
            .unwrap()
            .starts_with("clicks_")
    );

    // search, timeBoundary, segmentMetadata, dataSourceMetadata.
    let search = node
        .query(json!({"queryType": "search", "dataSource": "clicks", "intervals": [INTERVAL], "granularity": "all",
            "searchDimensions": ["page"], "query": {"type": "insensitive_contains", "value": "DOCS"}}))
        .await;
    let hits = search[0]["result"].as_array().unwrap();
    let docs = count_by(&rows, "page");
    assert_eq!(
        hits.len(),
        docs.keys().filter(|p| p.contains("docs")).count()
    );
    for h in hits {
        assert_eq!(h["count"], docs[h["value"].as_str().unwrap()]);
    }
    let tb = node
        .query(json!({"queryType": "timeBoundary", "dataSource": "clicks"}))
        .await;
    assert_eq!(tb[0]["result"]["minTime"], "2023-06-27T00:00:28.000Z");
    let meta = node
        .query(json!({"queryType": "segmentMetadata", "dataSource": "clicks", "merge": true, "analysisTypes": ["cardinality", "minmax", "size", "rollup"]}))
        .await;
    assert_eq!(meta[0]["numRows"], total);
    assert_eq!(meta[0]["columns"]["page"]["type"], "STRING");
    assert_eq!(meta[0]["columns"]["latency_ms"]["type"], "LONG");
    assert_eq!(
        meta[0]["columns"]["unique_users"]["typeSignature"],
        "COMPLEX<hyperUnique>"
    );
    assert_eq!(meta[0]["columns"]["page"]["cardinality"], docs.len());
    assert_eq!(meta[0]["rollup"], false);
    let dsm = node
        .query(json!({"queryType": "dataSourceMetadata", "dataSource": "clicks"}))
        .await;
    assert!(
        dsm[0]["result"]["maxIngestedEventTime"]
            .as_str()
            .unwrap()
            .starts_with("2023-06-28")
    );

    // Trailing slash, ?pretty, query id echo.
    let (s, v, h) = node
        .request(Method::POST, "/druid/v2/?pretty", Some(&json!({"queryType": "timeBoundary", "dataSource": "clicks", "context": {"queryId": "q-123"}}).to_string()))
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(h["x-druid-query-id"], "q-123");
    assert!(v.is_array());

    // Datasource introspection.
    let (_, dss) = node.get("/druid/v2/datasources").await;
    assert_eq!(dss, json!(["clicks"]));
    let (_, cols) = node.get("/druid/v2/datasources/clicks").await;
    assert!(
        cols["dimensions"]
            .as_array()
            .unwrap()
            .contains(&json!("page"))
    );
    assert!(
        cols["metrics"]
            .as_array()
            .unwrap()
            .contains(&json!("bytes"))
    );
    node.stop().await;
}

#[tokio::test]
async fn bad_queries_get_clear_errors_and_the_node_keeps_serving() {
    let (_dir, node) = node_with_sample().await;
    let base = json!({"queryType": "timeseries", "dataSource": "clicks", "intervals": [INTERVAL], "granularity": "all",
        "aggregations": [{"type": "count", "name": "rows"}]});
    let cases: Vec<(Option<Value>, &str, StatusCode, &str, &str)> = vec![
        (
            None,
            "{not json",
            StatusCode::BAD_REQUEST,
            "Json parse failed",
            "malformed JSON",
        ),
        (
            Some(json!({"queryType": "teleport", "dataSource": "clicks"})),
            "",
            StatusCode::BAD_REQUEST,
            "Json parse failed",
            "teleport",
        ),
        (
            Some(json!({"filter": {"type": "selector", "dimension": "colour", "value": "red"}})),
            "",
            StatusCode::BAD_REQUEST,
            "Invalid input",
            "\"colour\"",
        ),
        (
            Some(json!({"intervals": ["2023-06-30/2023-06-01"]})),
            "",
            StatusCode::BAD_REQUEST,
            "Json parse failed",
            "intervals",
        ),
        (
            Some(json!({"granularity": "fortnight"})),
            "",
            StatusCode::BAD_REQUEST,
            "Json parse failed",
            "granularity",
        ),
        (
            Some(json!({"dataSource": "nope"})),
            "",
            StatusCode::BAD_REQUEST,
            "Invalid input",
            "\"nope\"",
        ),
        (
            Some(json!({"aggregations": [{"type": "longSum", "name": "x"}]})),
            "",
            StatusCode::BAD_REQUEST,
            "Invalid input",
            "fieldName",
        ),
        (
            Some(
                json!({"filter": {"type": "selector", "dimension": "page", "value": "/", "extractionFn": {"type": "upper"}}}),
            ),
            "",
            StatusCode::NOT_IMPLEMENTED,
            "Unsupported operation",
            "extractionFn",
        ),
    ];
    for (patch, raw, want_status, want_error, want_text) in cases {
        let body = match patch {
            None => raw.to_string(),
            Some(p) => {
                let mut q = base.clone();
                for (k, v) in p.as_object().unwrap() {
                    q[k] = v.clone();
                }
                q.to_string()
            }
        };
        let (s, v, _) = node.request(Method::POST, "/druid/v2", Some(&body)).await;
        assert_eq!(s, want_status, "{body} -> {v}");
        assert_eq!(v["error"], want_error, "{body} -> {v}");
        let msg = v["errorMessage"].as_str().unwrap();
        assert!(msg.contains(want_text), "{body} -> {msg}");
        assert!(v["errorClass"].is_string() && v["host"].is_string(), "{v}");
    }
    // Still serving.
    let ok = node.query(base).await;
    assert_eq!(ok[0]["result"]["rows"], sample_rows().len());
    let (s, _, _) = node
        .request(Method::DELETE, "/druid/v2/not-running", None)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    node.stop().await;
}

#[tokio::test]
async fn timeouts_are_enforced() {
    let dir = tempfile::tempdir().unwrap();
    let node = TestNode::start(dir.path()).await;
    let lines: Vec<Value> =
        (0..60_000).map(|i| json!({"time": 1_687_824_000_000i64 + i * 1000, "k": format!("key-{}", i % 5000), "v": i})).collect();
    let spec = inline_spec(
        "big",
        &lines,
        json!(["k", {"type": "long", "name": "v"}]),
        json!([{"type": "count", "name": "c"}]),
        false,
    );
    assert_eq!(node.ingest(&spec).await["status"], "SUCCESS");
    let q = json!({"queryType": "groupBy", "dataSource": "big", "intervals": [INTERVAL], "granularity": "minute",
        "dimensions": ["k", "v"], "aggregations": [{"type": "count", "name": "rows"}], "context": {"timeout": 1, "queryId": "slow-1"}});
    let (s, v) = node.post("/druid/v2", &q).await;
    assert_eq!(s, StatusCode::GATEWAY_TIMEOUT, "{v}");
    assert_eq!(v["error"], "Query timeout");
    assert!(v["errorMessage"].as_str().unwrap().contains("slow-1"));
    node.stop().await;
}
