//! The collector writing Kafka (rdkafka's mock cluster: the real protocol on 127.0.0.1):
//! records keyed by party id, bare or Confluent-framed with a schema id a registry hands out,
//! and 503 while the cluster cannot take records.

#![cfg(feature = "kafka")]
// Test code: a failed unwrap is a failed assertion.
#![allow(clippy::unwrap_used)]

mod support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::routing::post;
use rdkafka::mocking::MockCluster;
use reqwest::StatusCode;
use serde_json::{Value, json};

use eddy_collector::CollectorConfig;
use eddy_collector::config::SinkKind;
use eddy_collector::output::Framing;
use eddy_runtime::Shutdown;
use eddy_stream::{KafkaStream, StreamSource};
use support::{event, signed};

/// A mock cluster that outlives the test's runtime: destroying it while the collector's producer
/// is still connected blocks (rdkafka waits for its clients).
/// The mock answers no CreateTopics requests, so its topics are made here.
fn mock_cluster() -> &'static MockCluster<'static, rdkafka::producer::DefaultProducerContext> {
    let cluster = Box::leak(Box::new(MockCluster::new(1).unwrap()));
    cluster.create_topic("clicks", 3, 1).unwrap();
    cluster.create_topic("clicks_bad_rows", 1, 1).unwrap();
    cluster
}

async fn start(config: CollectorConfig) -> (String, Shutdown) {
    let (handle, shutdown) = support::serve(config, None).await;
    (format!("http://{}", handle.addr), shutdown)
}

fn kafka_config(servers: &str) -> CollectorConfig {
    let mut c = support::config();
    c.sink = SinkKind::Kafka;
    c.partitions = 3;
    c.kafka.insert("bootstrap.servers".into(), servers.into());
    c
}

async fn read_all(kafka: &KafkaStream, topic: &str, want: usize) -> Vec<eddy_stream::StreamRecord> {
    let partitions = kafka.partitions(topic).await.unwrap();
    let start: BTreeMap<u32, u64> = partitions.iter().map(|p| (*p, 0)).collect();
    let mut reader = kafka.reader(topic, &start).await.unwrap();
    let mut out = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while out.len() < want && std::time::Instant::now() < deadline {
        out.extend(reader.poll(1000, Duration::from_millis(200)).await.unwrap());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_are_keyed_by_party_and_acknowledged_by_kafka() {
    let cluster = mock_cluster();
    let servers = cluster.bootstrap_servers();
    let (url, _stop) = start(kafka_config(&servers)).await;
    let client = reqwest::Client::new();
    for (party, n) in [("anna", 3), ("ben", 2), ("cleo", 4)] {
        for i in 0..n {
            let q = signed(&event(party, &format!("0:pv{i}"), &[]));
            let resp = client
                .get(format!("{url}/csc-event?{q}"))
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), StatusCode::OK);
        }
    }
    let kafka =
        KafkaStream::new(BTreeMap::from([("bootstrap.servers".to_string(), servers)])).unwrap();
    let records = read_all(&kafka, "clicks", 9).await;
    assert_eq!(records.len(), 9);
    let mut partition_of: BTreeMap<String, u32> = BTreeMap::new();
    for r in &records {
        let key = String::from_utf8(r.key.clone().unwrap()).unwrap();
        let e = support::decode(&r.value);
        assert_eq!(e["partyId"], key.as_str(), "the key is the party id");
        assert_eq!(
            *partition_of.entry(key).or_insert(r.partition),
            r.partition,
            "a party stays in one partition"
        );
    }
    // Within a party, Kafka kept the order the collector acknowledged in.
    let anna: Vec<String> = records
        .iter()
        .map(|r| support::decode(&r.value))
        .filter(|e| e["partyId"] == "0:mf3k2a1b:anna")
        .map(|e| e["eventId"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(anna, ["0:pv0", "0:pv1", "0:pv2"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confluent_framing_registers_the_schema_and_writes_its_id() {
    let seen = Arc::new(std::sync::Mutex::new(Vec::<(String, Value)>::new()));
    let registry = {
        let seen = seen.clone();
        axum::Router::new().route(
            "/subjects/{subject}/versions",
            post(
                move |axum::extract::Path(subject): axum::extract::Path<String>,
                      Json(body): Json<Value>| {
                    let seen = seen.clone();
                    async move {
                        seen.lock().unwrap().push((subject, body));
                        Json(json!({"id": 42}))
                    }
                },
            ),
        )
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let registry_url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, registry).await });

    let cluster = mock_cluster();
    let servers = cluster.bootstrap_servers();
    let mut cfg = kafka_config(&servers);
    cfg.framing = Framing::Confluent;
    cfg.schema_registry_url = Some(registry_url);
    let (url, _stop) = start(cfg).await;
    let q = signed(&event("dora", "0:pv0", &[]));
    assert_eq!(
        reqwest::get(format!("{url}/csc-event?{q}"))
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );

    let registered = seen.lock().unwrap().clone();
    assert_eq!(registered.len(), 1);
    assert_eq!(registered[0].0, "clicks-value");
    let schema: Value = serde_json::from_str(registered[0].1["schema"].as_str().unwrap()).unwrap();
    assert_eq!(schema["name"], "ClickEvent");

    let kafka =
        KafkaStream::new(BTreeMap::from([("bootstrap.servers".to_string(), servers)])).unwrap();
    let records = read_all(&kafka, "clicks", 1).await;
    assert_eq!(
        &records[0].value[..5],
        &[0, 0, 0, 0, 42],
        "magic byte and schema id"
    );
    assert_eq!(
        support::decode(&records[0].value[5..])["partyId"],
        "0:mf3k2a1b:dora"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_cluster_gets_503() {
    let cluster = mock_cluster();
    let servers = cluster.bootstrap_servers();
    let mut cfg = kafka_config(&servers);
    cfg.sink_timeout_ms = 1000;
    cfg.kafka.insert("message.timeout.ms".into(), "1500".into());
    let (url, _stop) = start(cfg).await;
    cluster.broker_down(1).unwrap();
    let q = signed(&event("emil", "0:pv0", &[]));
    let resp = reqwest::get(format!("{url}/csc-event?{q}")).await.unwrap();
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    let ping = reqwest::get(format!("{url}/ping")).await.unwrap();
    assert_eq!(ping.status(), StatusCode::SERVICE_UNAVAILABLE);
}
