//! The collector's wire protocol over HTTP: Divolte's pixel and JSON source, the tracker's
//! batches, bad rows for every kind of failure, and a sink that goes down.

// Test code: a failed unwrap is a failed assertion.
#![allow(clippy::unwrap_used)]

mod support;

use std::sync::atomic::Ordering;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;

use support::{CHROME, TestCollector, config, event, signed};

#[tokio::test]
async fn a_pixel_event_is_answered_once_it_is_in_the_stream() {
    let c = TestCollector::start(config()).await;
    let query = signed(&event(
        "alice",
        "0:pageview10",
        &[("u", "(sbutton!buy!dqty!2!)")],
    ));
    let resp = c.pixel(&query, &[("User-Agent", CHROME)]).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let h = resp.headers().clone();
    assert_eq!(h["content-type"], "image/gif");
    assert_eq!(h["etag"], "\"6b3edc43-20ec-4078-bc47-e965dd76b88a\"");
    assert_eq!(h["cache-control"], "private, no-cache, proxy-revalidate");
    assert_eq!(h["pragma"], "no-cache");
    assert_eq!(h["expires"], "Fri, 14 Apr 1995 11:30:00 GMT");
    let body = resp.bytes().await.unwrap();
    assert_eq!(&body[..6], b"GIF89a");
    assert_eq!(body.len(), 43);

    // Answered means stored: the record is readable right away.
    let records = c.records("clicks").await;
    assert_eq!(records.len(), 1);
    assert_eq!(
        records[0].key.as_deref(),
        Some(&b"0:mf3k2a1b:alice"[..]),
        "keyed by party id"
    );
    let e = support::decode(&records[0].value);
    assert_eq!(e["partyId"], "0:mf3k2a1b:alice");
    assert_eq!(e["sessionId"], "0:mf3k2a1b:session1");
    assert_eq!(e["eventId"], "0:pageview10");
    assert_eq!(e["eventType"], "pageView");
    assert_eq!(
        e["clientTimestamp"],
        i64::from_str_radix("mf3k2a1b", 36).unwrap()
    );
    assert_eq!(e["firstInSession"], true);
    assert_eq!(e["detectedCorruption"], false);
    assert_eq!(e["detectedDuplicate"], false);
    assert_eq!(e["screenPixelWidth"], 1920);
    assert_eq!(e["screenPixelHeight"], 1080);
    assert_eq!(e["viewportPixelHeight"], 752);
    assert_eq!(e["devicePixelRatio"], 1.5);
    assert_eq!(e["eventParameters"], "{\"button\":\"buy\",\"qty\":2}");
    assert_eq!(e["remoteHost"], "127.0.0.1");
    assert_eq!(e["source"], "browser");
    assert_eq!(e["userAgentFamily"], "Chrome");
    assert_eq!(e["userAgentOsFamily"], "Windows");
    assert_eq!(e["userAgentDeviceCategory"], "desktop");
    assert_eq!(e["isBot"], false);
    assert_eq!(
        e["refererClass"], "email",
        "utm_medium=email wins over the search referrer"
    );
    assert_eq!(e["refererHost"], "google.com");
    assert_eq!(e["utmSource"], "newsletter");
    assert_eq!(e["clickId"], "abc");
    assert_eq!(e["clickIdType"], "gclid");
    let received = e["timestamp"].as_i64().unwrap();
    assert!(
        (received - records[0].timestamp).abs() < 5,
        "the record's time is the server's receive time"
    );
}

#[tokio::test]
async fn a_resent_pixel_with_the_sentinel_etag_is_dropped_with_304() {
    let c = TestCollector::start(config()).await;
    let metric = "eddy_collector_requests_total{answer=\"duplicate_etag\",endpoint=\"pixel\"}";
    let before = c.metric(metric).await;
    let query = signed(&event("bob", "0:pv0", &[]));
    let resp = c
        .pixel(
            &query,
            &[("If-None-Match", "\"6b3edc43-20ec-4078-bc47-e965dd76b88a\"")],
        )
        .await;
    assert_eq!(resp.status(), StatusCode::NOT_MODIFIED);
    assert!(c.records("clicks").await.is_empty());
    assert_eq!(c.metric(metric).await - before, 1.0);
}

#[tokio::test]
async fn checksums_flag_corrupt_events_or_send_them_to_bad_rows() {
    let c = TestCollector::start(config()).await;
    let good = signed(&event("carol", "0:pv0", &[]));
    // A proxy cut the URL short: the checksum no longer matches.
    let truncated = good.replace("utm_source%3Dnewsletter", "utm_source%3Dnews");
    assert_eq!(c.pixel(&truncated, &[]).await.status(), StatusCode::OK);
    let events = c.events().await;
    assert_eq!(events[0]["detectedCorruption"], true);
    drop(c);

    let mut cfg = config();
    cfg.discard_corrupted = true;
    let strict = TestCollector::start(cfg).await;
    assert_eq!(strict.pixel(&truncated, &[]).await.status(), StatusCode::OK);
    assert!(strict.records("clicks").await.is_empty());
    let bad = strict.bad_rows().await;
    assert_eq!(bad[0]["kind"], "checksum_violation");
    assert!(
        bad[0]["request"]["query"]
            .as_str()
            .unwrap()
            .contains("utm_source%3Dnews")
    );
}

#[tokio::test]
async fn duplicates_are_flagged_or_discarded() {
    let c = TestCollector::start(config()).await;
    let query = signed(&event("dave", "0:pv0", &[]));
    for _ in 0..2 {
        assert_eq!(c.pixel(&query, &[]).await.status(), StatusCode::OK);
    }
    let events = c.events().await;
    assert_eq!(
        (
            events[0]["detectedDuplicate"].clone(),
            events[1]["detectedDuplicate"].clone()
        ),
        (json!(false), json!(true))
    );
    drop(c);

    let mut cfg = config();
    cfg.discard_duplicates = true;
    let c = TestCollector::start(cfg).await;
    let metric = "eddy_collector_events_total{outcome=\"discarded_duplicate\"}";
    let before = c.metric(metric).await;
    for _ in 0..3 {
        assert_eq!(c.pixel(&query, &[]).await.status(), StatusCode::OK);
    }
    assert_eq!(c.events().await.len(), 1);
    assert_eq!(c.metric(metric).await - before, 2.0);
}

#[tokio::test]
async fn protocol_violations_become_bad_rows_with_the_raw_request() {
    let c = TestCollector::start(config()).await;
    let metric = "eddy_collector_bad_rows_total{kind=\"tracker_protocol_violation\"}";
    let before = c.metric(metric).await;
    let mut missing_party = event("erin", "0:pv0", &[]);
    missing_party.retain(|(k, _)| *k != "p");
    let query = signed(&missing_party);
    let resp = c
        .pixel(&query, &[("User-Agent", CHROME), ("Cookie", "secret=1")])
        .await;
    assert_eq!(
        resp.status(),
        StatusCode::OK,
        "a browser cannot act on an error; the bad row keeps the event"
    );
    assert!(c.records("clicks").await.is_empty());
    let bad = c.bad_rows().await;
    assert_eq!(bad.len(), 1);
    assert_eq!(bad[0]["kind"], "tracker_protocol_violation");
    assert_eq!(bad[0]["message"], "parameter p (party id) is missing");
    assert_eq!(bad[0]["request"]["method"], "GET");
    assert_eq!(bad[0]["request"]["path"], "/csc-event");
    assert_eq!(bad[0]["request"]["query"], query);
    assert_eq!(bad[0]["request"]["headers"]["user-agent"], CHROME);
    assert_eq!(bad[0]["request"]["headers"]["cookie"], "(removed)");
    assert!(
        bad[0]["collector"]
            .as_str()
            .unwrap()
            .starts_with("eddy-collector ")
    );

    let bad_mincode = signed(&event("erin", "0:pv1", &[("u", "(sbroken")]));
    c.pixel(&bad_mincode, &[]).await;
    let bad = c.bad_rows().await;
    assert!(
        bad[1]["message"]
            .as_str()
            .unwrap()
            .starts_with("parameter u (custom parameters): invalid mincode"),
        "{}",
        bad[1]
    );
    assert_eq!(c.metric(metric).await - before, 2.0);
}

#[tokio::test]
async fn oversized_requests_become_size_violations() {
    let mut cfg = config();
    cfg.max_request_bytes = 2048;
    let c = TestCollector::start(cfg).await;
    let huge = signed(&event(
        "frank",
        "0:pv0",
        &[("u", &format!("s{}!", "x".repeat(3000)))],
    ));
    assert_eq!(c.pixel(&huge, &[]).await.status(), StatusCode::OK);
    let body = (0..40)
        .map(|i| signed(&event("frank", &format!("0:pv{i}"), &[])))
        .collect::<Vec<_>>()
        .join("\n");
    let resp = c
        .client
        .post(format!("{}/csc-event", c.url))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert!(c.records("clicks").await.is_empty());
    let bad = c.bad_rows().await;
    assert_eq!(bad.len(), 2);
    assert!(bad.iter().all(|b| b["kind"] == "size_violation"), "{bad:?}");
    assert_eq!(
        bad[0]["message"],
        "the query string is larger than 2048 bytes (collector.max_request_bytes)"
    );
    assert_eq!(
        bad[1]["message"],
        "the batch is larger than 2048 bytes (collector.max_request_bytes)"
    );
    assert!(
        bad[1]["request"]["body"].as_str().unwrap().len() <= 2049,
        "the bad row keeps a prefix"
    );
}

#[tokio::test]
async fn a_batch_post_records_each_line_and_keeps_their_order() {
    let c = TestCollector::start(config()).await;
    let mut lines: Vec<String> = (0..5)
        .map(|i| {
            signed(&event(
                "grace",
                &format!("0:pv{i}"),
                &[("t", &format!("step{i}"))],
            ))
        })
        .collect();
    lines.insert(2, "p=not-an-id&s=x".into());
    let resp = c
        .client
        .post(format!("{}/csc-event", c.url))
        .header("Content-Type", "text/plain;charset=UTF-8")
        .header("Origin", "https://shop.example")
        .body(lines.join("\n") + "\n")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    assert_eq!(resp.headers()["access-control-allow-origin"], "*");
    let types: Vec<String> = c
        .events()
        .await
        .iter()
        .map(|e| e["eventType"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(types, ["step0", "step1", "step2", "step3", "step4"]);
    let bad = c.bad_rows().await;
    assert_eq!(bad.len(), 1);
    assert_eq!(
        bad[0]["request"]["body"], "p=not-an-id&s=x",
        "the bad row carries its own line"
    );
    assert!(
        bad[0]["message"]
            .as_str()
            .unwrap()
            .starts_with("parameter p (party id) is not an id")
    );
}

#[tokio::test]
async fn the_json_source_speaks_divoltes_format() {
    let c = TestCollector::start(config()).await;
    let url = |p: &str| format!("{}/json{p}", c.url);
    let body = json!({"session_id": "0:mf3k2a1b:app", "event_id": "app-1", "is_new_party": false,
                      "is_new_session": true, "client_timestamp_iso": "2026-11-30T10:00:00.000+01:00",
                      "event_type": "purchase", "parameters": {"amount": 12.5}});
    let resp = c
        .client
        .post(url("?p=0:mf3k2a1b:henry"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    let e = &c.events().await[0];
    assert_eq!(e["source"], "json");
    assert_eq!(e["partyId"], "0:mf3k2a1b:henry");
    assert_eq!(e["eventType"], "purchase");
    assert_eq!(e["clientTimestamp"], 1_796_029_200_000i64);
    assert_eq!(e["eventParameters"], "{\"amount\":12.5}");

    let resp = c
        .client
        .post(url("?p=0:mf3k2a1b:henry"))
        .body("{oops")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let err: serde_json::Value = resp.json().await.unwrap();
    assert!(
        err["error"]
            .as_str()
            .unwrap()
            .starts_with("the body is not a JSON event")
    );
    let resp = c.client.post(url("")).json(&body).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let big = json!({"session_id": "0:1:s", "event_id": "e", "is_new_party": true, "is_new_session": true,
                     "client_timestamp_iso": "2026-11-30T10:00:00Z", "parameters": "x".repeat(5000)});
    let resp = c
        .client
        .post(url("?p=0:1:p"))
        .json(&big)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let kinds: Vec<String> = c
        .bad_rows()
        .await
        .iter()
        .map(|b| b["kind"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        kinds,
        [
            "tracker_protocol_violation",
            "tracker_protocol_violation",
            "size_violation"
        ]
    );
    assert_eq!(c.events().await.len(), 1);
}

#[tokio::test]
async fn a_sink_that_is_down_gets_503_and_nothing_is_lost() {
    let mut cfg = config();
    cfg.sink_timeout_ms = 500;
    let c = TestCollector::start(cfg).await;
    let rejected = "eddy_collector_events_total{outcome=\"rejected\"}";
    let before = c.metric(rejected).await;
    let sent: Vec<String> = (0..20)
        .map(|i| signed(&event("ivy", &format!("0:pv{i}"), &[])))
        .collect();
    for q in &sent[..5] {
        assert_eq!(c.pixel(q, &[]).await.status(), StatusCode::OK);
    }
    c.stream.down.store(true, Ordering::SeqCst);
    let mut refused = Vec::new();
    for q in &sent[5..] {
        let resp = c.pixel(q, &[]).await;
        assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(resp.headers()["retry-after"], "1");
        refused.push(q.clone());
    }
    let ping = c
        .client
        .get(format!("{}/ping", c.url))
        .send()
        .await
        .unwrap();
    assert_eq!(ping.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(ping.text().await.unwrap().contains("the disk is gone"));
    assert_eq!(c.metric(rejected).await - before, 15.0);
    assert_eq!(c.metric("eddy_collector_sink_healthy").await, 0.0);

    // The sink comes back; the clients retry what was refused.
    c.stream.down.store(false, Ordering::SeqCst);
    for q in &refused {
        assert_eq!(c.pixel(q, &[]).await.status(), StatusCode::OK);
    }
    let ping = c
        .client
        .get(format!("{}/ping", c.url))
        .send()
        .await
        .unwrap();
    assert_eq!(
        (ping.status(), ping.text().await.unwrap()),
        (StatusCode::OK, "pong\n".to_string())
    );
    let ids: Vec<String> = c
        .events()
        .await
        .iter()
        .map(|e| e["eventId"].as_str().unwrap().to_string())
        .collect();
    let want: Vec<String> = (0..20).map(|i| format!("0:pv{i}")).collect();
    assert_eq!(ids, want, "every event exactly once, in order");
}

#[tokio::test]
async fn the_tracker_is_served_small_cached_and_under_both_names() {
    let c = TestCollector::start(config()).await;
    let resp = c
        .client
        .get(format!("{}/eddy.js", c.url))
        .header("Accept-Encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["content-encoding"], "gzip");
    assert_eq!(resp.headers()["cache-control"], "public, max-age=3600");
    let etag = resp.headers()["etag"].to_str().unwrap().to_string();
    let gz = resp.bytes().await.unwrap();
    assert!(
        gz.len() <= 2048,
        "the tracker is {} bytes gzipped",
        gz.len()
    );
    let plain = c
        .client
        .get(format!("{}/divolte.js", c.url))
        .send()
        .await
        .unwrap();
    assert!(plain.headers().get("content-encoding").is_none());
    let text = plain.text().await.unwrap();
    assert!(text.contains("csc-event") && text.contains("_dvp") && text.contains("_dvs"));
    let cached = c
        .client
        .get(format!("{}/eddy.js", c.url))
        .header("If-None-Match", etag)
        .send()
        .await
        .unwrap();
    assert_eq!(cached.status(), StatusCode::NOT_MODIFIED);
    let page = c
        .client
        .get(format!("{}/", c.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("<script src=\"/eddy.js\" async></script>"));
}

#[tokio::test]
async fn a_mapping_that_does_not_fit_the_schema_fails_start_up_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let schema = dir.path().join("events.avsc");
    std::fs::write(
        &schema,
        r#"{"type": "record", "name": "E", "fields": [
        {"name": "ts", "type": "long"}, {"name": "country", "type": "long"}]}"#,
    )
    .unwrap();
    let mapping = dir.path().join("mapping.toml");
    std::fs::write(
        &mapping,
        "[fields]\nts = \"timestamp\"\ncountry = \"geo.countryCode\"\n",
    )
    .unwrap();
    let mut cfg = config();
    cfg.schema_file = Some(schema);
    cfg.mapping_file = Some(mapping.clone());
    let log = eddy_stream::EmbeddedLog::open(dir.path().join("s")).unwrap();
    let err = eddy_collector::Collector::build(
        cfg,
        Some(std::sync::Arc::new(log)),
        std::sync::Arc::new(eddy_runtime::SystemClock),
        None,
    )
    .await
    .err()
    .unwrap()
    .to_string();
    assert!(err.contains(&mapping.display().to_string()), "{err}");
    assert!(
        err.contains(
            "mapping field country: geo.countryCode is a string, but the schema field is long"
        ),
        "{err}"
    );
}

#[tokio::test]
async fn a_slow_sink_times_out_with_503() {
    let mut cfg = config();
    cfg.sink_timeout_ms = 1;
    cfg.queue_capacity = 1;
    let c = TestCollector::start(cfg).await;
    let statuses = futures::future::join_all((0..50).map(|i| {
        let q = signed(&event("jack", &format!("0:pv{i}"), &[]));
        let c = &c;
        async move { c.pixel(&q, &[]).await.status() }
    }))
    .await;
    let refused = statuses
        .iter()
        .filter(|s| **s == StatusCode::SERVICE_UNAVAILABLE)
        .count();
    let accepted = statuses.iter().filter(|s| **s == StatusCode::OK).count();
    assert_eq!(refused + accepted, 50);
    assert!(
        refused > 0,
        "a 1 ms timeout and a one-request queue refuse some of 50 concurrent requests"
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    // Refused requests may still have been written (at least once); none is lost.
    assert!(c.events().await.len() >= accepted);
}
