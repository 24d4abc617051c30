//! The collector inside a standalone node: it starts with a ready `clicks` supervisor, events
//! sent to it answer SQL within a second, the demo page reads them back, and a terminated
//! supervisor stays terminated across restarts.

// Test code: a failed unwrap is a failed assertion.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use common::{TestNode, test_config};
use eddy_collector::protocol::query::{sign, to_base36};

const UA: &str = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15";

fn pixel(party: &str, n: u32, kind: &str) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let owned = [
        // Ids carry their creation time: the party and its session were created once.
        ("p", format!("0:mf3k2a1b:{party}")),
        ("s", format!("0:mf3k2a1b:s-{party}")),
        ("v", "0:pv".to_string()),
        ("e", format!("0:pv{n:x}")),
        ("c", to_base36(now)),
        ("n", if n == 0 { "t" } else { "f" }.to_string()),
        ("f", if n == 0 { "t" } else { "f" }.to_string()),
        ("l", format!("https://shop.example/item/{n}?utm_source=ads")),
        ("t", kind.to_string()),
        ("u", format!("(dn!{}!)", to_base36(i64::from(n)))),
    ];
    let pairs: Vec<(&str, &str)> = owned.iter().map(|(k, v)| (*k, v.as_str())).collect();
    sign(&pairs)
}

async fn collector_node(dir: &std::path::Path) -> TestNode {
    let mut c = test_config(dir);
    c.collector.addr = "127.0.0.1:0".into();
    TestNode::start_with(c).await
}

async fn sql(node: &TestNode, q: &str) -> (StatusCode, Value) {
    node.post("/druid/v2/sql", &json!({"query": q})).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clicks_reach_sql_within_a_second() {
    let dir = tempfile::tempdir().unwrap();
    let node = collector_node(dir.path()).await;
    let collector = node.collector_url.clone().expect("the collector runs");
    let (_, ids) = node.get("/druid/indexer/v1/supervisor").await;
    assert_eq!(
        ids,
        json!(["clicks"]),
        "standalone starts the clicks supervisor"
    );
    let client = reqwest::Client::new();

    let party = format!("p{}", std::process::id());
    let mut worst = Duration::ZERO;
    for n in 0..5u32 {
        let kind = if n == 0 { "pageView" } else { "addToCart" };
        let resp = client
            .get(format!("{collector}/csc-event?{}", pixel(&party, n, kind)))
            .header("User-Agent", UA)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        let acked = Instant::now();
        let q = format!("SELECT COUNT(*) AS n FROM clicks WHERE partyId LIKE '%:{party}'");
        loop {
            let (status, body) = sql(&node, &q).await;
            if status == StatusCode::OK && body[0]["n"] == json!(n + 1) {
                break;
            }
            assert!(
                acked.elapsed() < Duration::from_secs(10),
                "event {n} not visible: {status} {body}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        worst = worst.max(acked.elapsed());
    }
    println!("slowest event to become visible in SQL after its acknowledgement: {worst:?}");
    assert!(worst < Duration::from_secs(3), "{worst:?}");

    let q = format!(
        "SELECT eventType, userAgentFamily, utmSource, refererClass, screenPixelWidth FROM clicks \
         WHERE partyId LIKE '%:{party}' ORDER BY __time, eventId"
    );
    let (status, rows) = sql(&node, &q).await;
    assert_eq!(status, StatusCode::OK, "{rows}");
    let first = json!({"eventType": "pageView", "userAgentFamily": "Safari", "utmSource": "ads", "refererClass": "direct", "screenPixelWidth": null});
    assert_eq!(rows[0], first, "{rows}");
    assert_eq!(rows.as_array().unwrap().len(), 5);
    assert!(
        rows.as_array().unwrap()[1..]
            .iter()
            .all(|r| r["eventType"] == "addToCart")
    );

    // The demo page reads a party's events back through SQL.
    let (status, rows) = sql(
        &node,
        &format!("SELECT partyId FROM clicks WHERE partyId LIKE '%:{party}' LIMIT 1"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let party_id = rows[0]["partyId"].as_str().unwrap().to_string();
    let demo: Value = client
        .get(format!("{collector}/demo/events"))
        .query(&[("party", &party_id)])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(demo.as_array().unwrap().len(), 5, "{demo}");
    assert_eq!(
        demo[0]["eventParameters"], "{\"n\":4}",
        "newest first: {demo}"
    );
    let page = client
        .get(format!("{collector}/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("divolte.signal('signup'"));
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_terminated_clicks_supervisor_stays_terminated() {
    let dir = tempfile::tempdir().unwrap();
    let node = collector_node(dir.path()).await;
    let (status, _) = node
        .post("/druid/indexer/v1/supervisor/clicks/terminate", &json!({}))
        .await;
    assert_eq!(status, StatusCode::OK);
    node.stop().await;
    let node = collector_node(dir.path()).await;
    let (_, ids) = node.get("/druid/indexer/v1/supervisor").await;
    assert_eq!(ids, json!([]));
    node.stop().await;
}
