//! Stream input formats end to end: Avro with the schema registry's framing (against a test
//! server speaking the registry's `GET /schemas/ids/{id}`), Avro container files produced over
//! HTTP and read with an inline schema, Kafka's wrapper format (key and timestamp as columns),
//! CSV lines, and late-message rejection.

// Test code: a failed unwrap is a failed assertion.
#![allow(clippy::unwrap_used, deprecated)]

mod common;

use std::time::{Duration, Instant};

use apache_avro::Schema;
use apache_avro::types::{Record as AvroRecord, Value as Avro};
use reqwest::StatusCode;
use serde_json::{Value, json};

use common::TestNode;
use eddy_stream::{ProduceRecord, StreamSink};

const SUP: &str = "/druid/indexer/v1/supervisor";
const SCHEMA: &str = r#"{"type": "record", "name": "Click", "fields": [
    {"name": "ts", "type": "long"}, {"name": "page", "type": "string"}, {"name": "uid", "type": "long"}]}"#;

fn click(schema: &Schema, uid: i64) -> Avro {
    let mut r = AvroRecord::new(schema).unwrap();
    r.put("ts", Avro::Long(1_709_287_200_000 + uid * 1000));
    r.put("page", Avro::String(format!("/p{}", uid % 3)));
    r.put("uid", Avro::Long(uid));
    r.into()
}

fn spec(ds: &str, topic: &str, format: Value, ts: Value) -> Value {
    json!({"type": "kafka", "spec": {
        "dataSchema": {"dataSource": ds, "timestampSpec": ts,
            "dimensionsSpec": {"dimensions": ["page", {"type": "long", "name": "uid"}, "kafka.key"]},
            "granularitySpec": {"segmentGranularity": "day", "queryGranularity": "none", "rollup": false}},
        "ioConfig": {"topic": topic, "inputFormat": format, "useEarliestOffset": true},
        "tuningConfig": {"type": "kafka", "maxSavedParseExceptions": 10}}})
}

async fn rows(node: &TestNode, q: &str) -> Value {
    let (status, body) = node.post("/druid/v2/sql", &json!({"query": q})).await;
    if status == StatusCode::OK {
        body
    } else {
        json!([])
    }
}

async fn wait_rows(node: &TestNode, q: &str, want: Value) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let got = rows(node, q).await;
        if got == want {
            return;
        }
        assert!(Instant::now() < deadline, "{q}: {got}, want {want}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Serves `GET /schemas/ids/7` like a Confluent schema registry; other ids are 404.
async fn registry() -> String {
    use axum::routing::get;
    let app = axum::Router::new().route(
        "/schemas/ids/{id}",
        get(
            |axum::extract::Path(id): axum::extract::Path<u32>| async move {
                if id == 7 {
                    (StatusCode::OK, axum::Json(json!({"schema": SCHEMA})))
                } else {
                    (
                        StatusCode::NOT_FOUND,
                        axum::Json(json!({"error_code": 40403, "message": "Schema not found"})),
                    )
                }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn avro_kafka_and_csv_formats() {
    let dir = tempfile::tempdir().unwrap();
    let node = TestNode::start(dir.path()).await;
    let streams = node.streams();
    let schema = Schema::parse_str(SCHEMA).unwrap();

    // Avro with Confluent framing; one record names a schema the registry does not have.
    let url = registry().await;
    streams.create_topic("framed", 1).await.unwrap();
    let mut records: Vec<ProduceRecord> = (1..=20)
        .map(|uid| {
            let mut value = vec![0, 0, 0, 0, 7];
            value.extend(apache_avro::to_avro_datum(&schema, click(&schema, uid)).unwrap());
            ProduceRecord {
                key: None,
                value,
                timestamp: None,
            }
        })
        .collect();
    records.push(ProduceRecord {
        key: None,
        value: vec![0, 0, 0, 0, 99, 1, 2],
        timestamp: None,
    });
    streams.produce("framed", records).await.unwrap();
    let format =
        json!({"type": "avro_stream", "avroBytesDecoder": {"type": "schema_registry", "url": url}});
    let (status, body) = node
        .post(
            SUP,
            &spec(
                "framed",
                "framed",
                format,
                json!({"column": "ts", "format": "millis"}),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    wait_rows(
        &node,
        "SELECT COUNT(*) AS n, SUM(uid) AS s FROM framed",
        json!([{"n": 20, "s": 210}]),
    )
    .await;
    let (_, stats) = node.get(&format!("{SUP}/framed/stats")).await;
    assert!(
        stats
            .to_string()
            .contains("schema 99 is not in the schema registry"),
        "{stats}"
    );

    // An Avro container file over HTTP, read with the inline schema.
    let mut writer = apache_avro::Writer::new(&schema, Vec::new()).unwrap();
    for uid in 1..=10 {
        writer.append(click(&schema, uid)).unwrap();
    }
    let file = writer.into_inner().unwrap();
    let resp = reqwest::Client::new()
        .post(format!("{}/eddy/v1/streams/ocf", node.url))
        .header("Content-Type", "application/avro")
        .body(file)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let format = json!({"type": "avro_stream", "avroBytesDecoder": {"type": "schema_inline",
        "schema": serde_json::from_str::<Value>(SCHEMA).unwrap()}});
    node.post(
        SUP,
        &spec(
            "inline",
            "ocf",
            format,
            json!({"column": "ts", "format": "millis"}),
        ),
    )
    .await;
    wait_rows(
        &node,
        "SELECT page, COUNT(*) AS n FROM inline GROUP BY 1 ORDER BY 1",
        json!([{"page": "/p0", "n": 3}, {"page": "/p1", "n": 4}, {"page": "/p2", "n": 3}]),
    )
    .await;

    // Kafka's wrapper: the message key and timestamp become columns.
    streams.create_topic("wrapped", 1).await.unwrap();
    let records: Vec<ProduceRecord> = (1..=6)
        .map(|i| ProduceRecord {
            key: Some(format!("user-{}", i % 2).into_bytes()),
            value: json!({"page": "/w", "uid": i}).to_string().into_bytes(),
            timestamp: Some(1_709_287_200_000 + i),
        })
        .collect();
    streams.produce("wrapped", records).await.unwrap();
    let format = json!({"type": "kafka", "valueFormat": {"type": "json"}});
    node.post(
        SUP,
        &spec(
            "wrapped",
            "wrapped",
            format,
            json!({"column": "kafka.timestamp", "format": "millis"}),
        ),
    )
    .await;
    wait_rows(&node, "SELECT \"kafka.key\" AS k, COUNT(*) AS n, MIN(__time) AS t FROM wrapped GROUP BY 1 ORDER BY 1",
        json!([{"k": "user-0", "n": 3, "t": "2024-03-01T10:00:00.002Z"}, {"k": "user-1", "n": 3, "t": "2024-03-01T10:00:00.001Z"}])).await;

    // CSV lines, with late messages rejected.
    let body = "2024-03-01T10:00:00Z,/c,1\n2024-03-01T10:00:01Z,/c,2\n2024-03-01T10:00:02Z,/c,3\n";
    let resp = reqwest::Client::new()
        .post(format!("{}/eddy/v1/streams/lines", node.url))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let format = json!({"type": "csv", "columns": ["ts", "page", "uid"]});
    node.post(
        SUP,
        &spec(
            "lines",
            "lines",
            format,
            json!({"column": "ts", "format": "iso"}),
        ),
    )
    .await;
    wait_rows(
        &node,
        "SELECT COUNT(*) AS n, SUM(uid) AS s FROM lines",
        json!([{"n": 3, "s": 6}]),
    )
    .await;
    let mut late = spec(
        "late",
        "lines",
        json!({"type": "csv", "columns": ["ts", "page", "uid"]}),
        json!({"column": "ts", "format": "iso"}),
    );
    late["spec"]["ioConfig"]["lateMessageRejectionStartDateTime"] = json!("2024-03-01T10:00:01Z");
    node.post(SUP, &late).await;
    wait_rows(
        &node,
        "SELECT COUNT(*) AS n, SUM(uid) AS s FROM late",
        json!([{"n": 2, "s": 5}]),
    )
    .await;
    let (_, stats) = node.get(&format!("{SUP}/late/stats")).await;
    assert!(stats.to_string().contains("\"thrownAway\":1"), "{stats}");
    node.stop().await;
}
