//! Stream ingestion end to end in one process: a supervisor spec POSTed over HTTP reads the
//! embedded stream, rows answer SQL as soon as they are read, bad records are counted with
//! their reasons, hand-off moves data to the historical without gaps or double counting, and
//! the supervisor API behaves as Druid's does.

// Test code: a failed unwrap is a failed assertion.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use common::TestNode;
use common::stream::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn supervisor_reads_the_stream_and_hands_off_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let node = TestNode::start(dir.path()).await;
    let (status, body) = create_topic(&node, "events", 3).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = node.post(SUP, &spec("events")).await;
    assert_eq!((status, body), (StatusCode::OK, json!({"id": "events"})));

    // Rows answer queries as soon as they are read.
    let ack = produce(&node, "events", &events(1, 300)).await;
    assert_eq!(ack["records"], 300);
    let took = wait_totals(&node, (300, sum_range(1, 300)), Duration::from_secs(20)).await;
    println!("300 events visible in SQL {took:?} after the produce acknowledgement");

    // Bad records are counted with reasons and stop nothing.
    produce(
        &node,
        "events",
        "not json\n{\"page\": \"/no-time\", \"uid\": 0}\n[1, 2]",
    )
    .await;
    produce(&node, "events", &events(301, 10)).await;
    wait_totals(&node, (310, sum_range(1, 310)), Duration::from_secs(20)).await;
    let payload = wait_status(&node, "lag reaches 0", |p| {
        p["aggregateLag"] == 0 && offsets_sum(&p["latestOffsets"]) == 313
    })
    .await;
    assert_eq!(payload["activeTasks"].as_array().unwrap().len(), 2);
    assert_eq!(payload["partitions"], 3);
    assert_eq!(payload["state"], "RUNNING");
    assert_eq!(payload["healthy"], true);
    let (_, stats) = node.get(&format!("{SUP}/events/stats")).await;
    let tasks: Vec<&Value> = stats
        .as_object()
        .unwrap()
        .values()
        .flat_map(|g| g.as_object().unwrap().values())
        .collect();
    let total = |k: &str| -> u64 {
        tasks
            .iter()
            .map(|t| t["totals"]["buildSegments"][k].as_u64().unwrap())
            .sum()
    };
    assert_eq!((total("processed"), total("unparseable")), (310, 3));
    let reasons: String = tasks
        .iter()
        .map(|t| t["unparseableEvents"]["buildSegments"].to_string())
        .collect();
    assert!(reasons.contains("invalid JSON"), "{reasons}");
    assert!(
        reasons.contains("expected a JSON object, got an array"),
        "{reasons}"
    );
    assert!(
        reasons.contains("ts"),
        "the missing timestamp is named: {reasons}"
    );

    // Hand-off: segments and offsets publish together, a historical takes over, and the totals
    // never change on the way.
    let (status, _) = node
        .post(
            &format!("{SUP}/events/taskGroups/handoff"),
            &json!({"taskGroupIds": []}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let watch = async {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            assert_eq!(totals(&node).await, (310, sum_range(1, 310)));
            let served = sql(
                &node,
                "SELECT COUNT(*) AS n FROM sys.server_segments WHERE server LIKE '%-historical'",
            )
            .await;
            let published = sql(
                &node,
                "SELECT COUNT(*) AS n FROM sys.segments WHERE is_published = 1",
            )
            .await;
            if served[0]["n"].as_u64().unwrap() > 0 && served[0]["n"] == published[0]["n"] {
                break;
            }
            assert!(Instant::now() < deadline, "hand-off did not finish");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    watch.await;
    let payload = wait_status(&node, "offsets committed", |p| {
        offsets_sum(&p["committedOffsets"]) == 313
    })
    .await;
    assert_eq!(payload["aggregateLag"], 0);
    // Two hours of data: segments for both hour chunks.
    let chunks = sql(
        &node,
        "SELECT COUNT(DISTINCT \"start\") AS n FROM sys.segments",
    )
    .await;
    assert_eq!(chunks[0]["n"], 2);

    // Reading continues after the hand-off.
    produce(&node, "events", &events(311, 20)).await;
    wait_totals(&node, (330, sum_range(1, 330)), Duration::from_secs(20)).await;

    // Suspend publishes and stops reading; resume reads what arrived meanwhile.
    let (status, body) = node
        .post(&format!("{SUP}/events/suspend"), &json!({}))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["suspended"], true);
    let (status, body) = node
        .post(&format!("{SUP}/events/suspend"), &json!({}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "[events] is already suspended");
    let (_, st) = node.get(&format!("{SUP}?state=true")).await;
    assert_eq!(
        st,
        json!([{"id": "events", "state": "SUSPENDED", "detailedState": "SUSPENDED", "healthy": true, "suspended": true}])
    );
    produce(&node, "events", &events(331, 5)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        totals(&node).await,
        (330, sum_range(1, 330)),
        "suspended reads nothing"
    );
    let (status, body) = node.post(&format!("{SUP}/events/resume"), &json!({})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["suspended"], false);
    wait_totals(&node, (335, sum_range(1, 335)), Duration::from_secs(20)).await;

    // The spec echo, lists and history.
    let (_, echo) = node.get(&format!("{SUP}/events")).await;
    assert_eq!(
        echo["spec"]["dataSchema"]["granularitySpec"]["segmentGranularity"],
        "HOUR"
    );
    assert_eq!(echo["ioConfig"]["taskDuration"], "PT3600S");
    let (_, ids) = node.get(SUP).await;
    assert_eq!(ids, json!(["events"]));
    let (_, full) = node.get(&format!("{SUP}?full")).await;
    assert_eq!(full[0]["spec"]["spec"]["ioConfig"]["stream"], "events");
    let (_, health) = node.get(&format!("{SUP}/events/health")).await;
    assert_eq!(health, json!({"healthy": true}));

    // Terminate leaves history behind.
    let (status, body) = node
        .post(&format!("{SUP}/events/terminate"), &json!({}))
        .await;
    assert_eq!((status, body), (StatusCode::OK, json!({"id": "events"})));
    let (status, body) = node.get(&format!("{SUP}/events")).await;
    assert_eq!(
        (status, body),
        (
            StatusCode::NOT_FOUND,
            json!({"error": "[events] does not exist"})
        )
    );
    let (_, history) = node.get(&format!("{SUP}/events/history")).await;
    assert_eq!(history.as_array().unwrap().len(), 1);
    let (_, ids) = node.get(SUP).await;
    assert_eq!(ids, json!([]));
    // Everything read was published before the supervisor stopped.
    wait_totals(&node, (335, sum_range(1, 335)), Duration::from_secs(20)).await;
    let committed = node
        .post(
            "/druid/v2/sql",
            &json!({"query": "SELECT SUM(num_rows) AS n FROM sys.segments WHERE is_published = 1"}),
        )
        .await;
    assert_eq!(committed.1[0]["n"], 335);
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_specs_are_refused_with_the_field_named() {
    let dir = tempfile::tempdir().unwrap();
    let node = TestNode::start(dir.path()).await;
    let mut bad = spec("events");
    bad["spec"]["ioConfig"]["taskCount"] = json!(0);
    let (status, body) = node.post(SUP, &bad).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "spec.ioConfig.taskCount: must be at least 1");
    let mut bad = spec("events");
    bad["spec"]["dataSchema"]["metricsSpec"][0]["type"] = json!("cnt");
    let (status, body) = node.post(SUP, &bad).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .starts_with("spec.dataSchema.metricsSpec[0]"),
        "{body}"
    );
    let mut kafka = spec("events");
    kafka["spec"]["ioConfig"]["consumerProperties"] =
        json!({"bootstrap.servers": "127.0.0.1:9", "no.such.setting": 1});
    let (status, body) = node.post(SUP, &kafka).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let error = body["error"].as_str().unwrap();
    assert!(
        error.starts_with("spec.ioConfig.consumerProperties") && error.contains("no.such.setting"),
        "{body}"
    );
    let resp = reqwest::Client::new()
        .post(format!("{}{SUP}", node.url))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(spec("events").to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    for path in [
        "/missing",
        "/missing/status",
        "/missing/health",
        "/missing/stats",
    ] {
        let (status, body) = node.get(&format!("{SUP}{path}")).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(body["error"], "[missing] does not exist");
    }
    for path in ["/suspendAll", "/resumeAll", "/terminateAll"] {
        let (status, body) = node.post(&format!("{SUP}{path}"), &json!({})).await;
        assert_eq!(
            (status, body),
            (StatusCode::OK, json!({"status": "success"}))
        );
    }
    // A topic that does not exist yet: the supervisor says why, and starts once it appears.
    let (status, _) = node.post(SUP, &spec("later")).await;
    assert_eq!(status, StatusCode::OK);
    let payload = wait_status(&node, "unhealthy without a topic", |p| {
        p["detailedState"] == "UNABLE_TO_CONNECT_TO_STREAM"
    })
    .await;
    assert_eq!(payload["state"], "UNHEALTHY_SUPERVISOR");
    assert!(
        payload["recentErrors"]
            .to_string()
            .contains("topic \\\"later\\\" does not exist"),
        "{payload}"
    );
    let (status, _) = node.get(&format!("{SUP}/events/health")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    produce(&node, "later", &events(1, 5)).await;
    wait_totals(&node, (5, sum_range(1, 5)), Duration::from_secs(20)).await;
    wait_status(&node, "healthy once the topic exists", |p| {
        p["state"] == "RUNNING"
    })
    .await;
    // A huge record that is not JSON is counted; the events around it still arrive.
    let huge = format!("{{\"page\": \"{}", "x".repeat(2 << 20));
    produce(
        &node,
        "later",
        &format!("{}\n{huge}\n{}", events(6, 2), events(8, 2)),
    )
    .await;
    wait_totals(&node, (9, sum_range(1, 9)), Duration::from_secs(20)).await;
    // A deleted topic shows in the status with the reason; the data read stays queryable.
    let (status, _, _) = node
        .request(reqwest::Method::DELETE, "/eddy/v1/streams/later", None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let payload = wait_status(&node, "a deleted topic is reported", |p| {
        p["detailedState"] == "LOST_CONTACT_WITH_STREAM"
    })
    .await;
    assert!(
        payload["recentErrors"]
            .to_string()
            .contains("does not exist"),
        "{payload}"
    );
    assert_eq!(totals(&node).await, (9, sum_range(1, 9)));
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_reads_again_from_the_committed_offsets() {
    let dir = tempfile::tempdir().unwrap();
    let node = TestNode::start(dir.path()).await;
    node.post(SUP, &spec("events")).await;
    produce(&node, "events", &events(1, 100)).await;
    wait_totals(&node, (100, sum_range(1, 100)), Duration::from_secs(20)).await;
    node.post(&format!("{SUP}/events/taskGroups/handoff"), &json!({}))
        .await;
    wait_status(&node, "committed", |p| {
        offsets_sum(&p["committedOffsets"]) == 100
    })
    .await;
    // Read but not published when the node stops: read again after the restart.
    produce(&node, "events", &events(101, 50)).await;
    wait_totals(&node, (150, sum_range(1, 150)), Duration::from_secs(20)).await;
    node.stop().await;

    let node = TestNode::start(dir.path()).await;
    wait_totals(&node, (150, sum_range(1, 150)), Duration::from_secs(30)).await;
    let (_, ids) = node.get(SUP).await;
    assert_eq!(
        ids,
        json!(["events"]),
        "the supervisor survives the restart"
    );
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_supervisor_reads_the_mock_cluster() {
    use eddy_stream::{KafkaStream, ProduceRecord, StreamSink};

    let cluster = rdkafka::mocking::MockCluster::new(1).unwrap();
    cluster.create_topic("kevents", 2, 1).unwrap();
    let servers = cluster.bootstrap_servers();
    let dir = tempfile::tempdir().unwrap();
    let node = TestNode::start(dir.path()).await;
    let mut s = spec("kevents");
    s["spec"]["ioConfig"]["consumerProperties"] = json!({"bootstrap.servers": servers});
    let (status, body) = node.post(SUP, &s).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let kafka = KafkaStream::new(std::collections::BTreeMap::from([(
        "bootstrap.servers".to_string(),
        servers.clone(),
    )]))
    .unwrap();
    let records: Vec<ProduceRecord> = events(1, 200)
        .lines()
        .map(|l| ProduceRecord {
            key: Some(l.as_bytes()[..20].to_vec()),
            value: l.as_bytes().to_vec(),
            timestamp: None,
        })
        .collect();
    kafka.produce("kevents", records).await.unwrap();
    let took = wait_totals(&node, (200, sum_range(1, 200)), Duration::from_secs(30)).await;
    println!("200 Kafka events visible in SQL {took:?} after the acknowledgement");
    node.post(&format!("{SUP}/events/taskGroups/handoff"), &json!({}))
        .await;
    let payload = wait_status(&node, "offsets committed", |p| {
        offsets_sum(&p["committedOffsets"]) == 200
    })
    .await;
    assert_eq!(offsets_sum(&payload["latestOffsets"]), 200);
    assert_eq!(payload["aggregateLag"], 0);
    wait_totals(&node, (200, sum_range(1, 200)), Duration::from_secs(30)).await;
    node.post(&format!("{SUP}/events/terminate"), &json!({}))
        .await;
    node.stop().await;
}
