//! Exactly-once under crashes, with the real binary: while events are produced into the
//! embedded stream, the process is killed with SIGKILL at random moments and aborted inside
//! hand-offs (after the upload and before the publish; after the publish and before a
//! historical serves the segments), then started again. In the end COUNT(*) and the sum of a
//! unique per-event value equal exactly what was acknowledged.

// Test code: a failed unwrap is a failed assertion.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

use common::process::{Node, spawn_standalone, spawn_standalone_with, wait_exit};

fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

fn post(url: &str, body: String) -> reqwest::blocking::Response {
    client()
        .post(url)
        .header("Content-Type", "application/json")
        .body(body)
        .send()
        .unwrap()
}

fn spec() -> Value {
    json!({"type": "kafka", "spec": {
        "dataSchema": {
            "dataSource": "events",
            "timestampSpec": {"column": "ts", "format": "iso"},
            "dimensionsSpec": {"dimensions": ["page", {"type": "long", "name": "uid"}]},
            "granularitySpec": {"segmentGranularity": "hour", "queryGranularity": "none", "rollup": false}},
        "ioConfig": {"topic": "events", "inputFormat": {"type": "json"}, "useEarliestOffset": true,
            "taskCount": 2, "taskDuration": "PT1S"},
        "tuningConfig": {"type": "kafka", "maxRowsInMemory": 300, "intermediatePersistPeriod": "PT1S"}}})
}

/// Produces events `first..first+n`; true when acknowledged.
fn produce(url: &str, first: u64, n: u64) -> bool {
    let body: Vec<String> = (first..first + n)
        .map(|i| {
            json!({"ts": format!("2024-03-01T{:02}:{:02}:00Z", 10 + i % 3, i % 60), "page": format!("/p{}", i % 11), "uid": i})
                .to_string()
        })
        .collect();
    client()
        .post(format!("{url}/eddy/v1/streams/events?key=page"))
        .body(body.join("\n"))
        .send()
        .is_ok_and(|r| r.status().is_success())
}

fn totals(url: &str) -> Option<(u64, u64)> {
    let resp = client()
        .post(format!("{url}/druid/v2/sql"))
        .header("Content-Type", "application/json")
        .body(json!({"query": "SELECT COUNT(*) AS n, SUM(uid) AS s FROM events"}).to_string())
        .send()
        .ok()?;
    let v: Value = resp.json().ok()?;
    Some((v[0]["n"].as_u64()?, v[0]["s"].as_u64()?))
}

fn kill9(node: &mut Node) {
    let status = std::process::Command::new("kill")
        .args(["-9", &node.0.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    wait_exit(&mut node.0, Duration::from_secs(10));
}

#[test]
fn no_event_lost_or_counted_twice_across_crashes() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x5eed);
    let (mut node, mut url) = spawn_standalone(&data);
    let resp = post(
        &format!("{url}/eddy/v1/streams"),
        json!({"topic": "events", "partitions": 3}).to_string(),
    );
    assert!(resp.status().is_success());
    let resp = post(
        &format!("{url}/druid/indexer/v1/supervisor"),
        spec().to_string(),
    );
    assert!(resp.status().is_success(), "{}", resp.text().unwrap());

    let mut next = 1u64;
    let batch = 40u64;
    // Crash plan: random SIGKILLs, and aborts inside hand-off at both critical points.
    let plan = [
        "kill",
        "after_upload",
        "kill",
        "after_publish",
        "kill",
        "kill",
        "after_upload",
    ];
    for (round, how) in plan.iter().enumerate() {
        let batches = rng.random_range(3..8);
        for _ in 0..batches {
            assert!(produce(&url, next, batch), "round {round}: produce refused");
            next += batch;
            std::thread::sleep(Duration::from_millis(rng.random_range(0..250)));
        }
        match *how {
            "kill" => {
                std::thread::sleep(Duration::from_millis(rng.random_range(0..1500)));
                kill9(&mut node);
                (node, url) = spawn_standalone(&data);
            }
            point => {
                // Restart with the crash point armed; the next hand-off (taskDuration is one
                // second) aborts the process there.
                kill9(&mut node);
                (node, url) = spawn_standalone_with(&data, &[("EDDY_CRASH_AT", point)]);
                assert!(produce(&url, next, batch), "round {round}: produce refused");
                next += batch;
                let status = wait_exit(&mut node.0, Duration::from_secs(60));
                assert!(
                    !status.success(),
                    "round {round}: the process should abort at {point}"
                );
                (node, url) = spawn_standalone(&data);
            }
        }
    }
    let produced = next - 1;
    let want = (produced, (1..=produced).sum::<u64>());
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut stable_since: Option<Instant> = None;
    loop {
        let got = totals(&url);
        if let Some(g) = got {
            assert!(g.0 <= want.0, "counted twice: {g:?} > {want:?}");
        }
        if got == Some(want) {
            // Stay equal across a few hand-offs.
            let since = *stable_since.get_or_insert_with(Instant::now);
            if since.elapsed() > Duration::from_secs(3) {
                break;
            }
        } else {
            stable_since = None;
        }
        assert!(Instant::now() < deadline, "totals {got:?}, want {want:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
    println!(
        "{produced} events counted exactly once across {} crashes",
        plan.len()
    );
    drop(node);
}
