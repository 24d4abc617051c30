//! Realtime tasks as Druid tasks (listed, with payloads and live row counts, shut down, failed
//! by a restart) and the merge of a time chunk's spills at hand-off.

// Test code: a failed unwrap is a failed assertion.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use common::TestNode;
use common::stream::*;

/// Polls the task list until `ok` holds for it.
async fn wait_tasks(node: &TestNode, what: &str, ok: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, list) = node.get("/druid/indexer/v1/tasks?datasource=events").await;
        assert_eq!(status, StatusCode::OK, "{list}");
        let list = list.as_array().unwrap().clone();
        if ok(&list) {
            return list;
        }
        assert!(Instant::now() < deadline, "{what}: {list:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn with_status<'a>(list: &'a [Value], status: &str) -> Vec<&'a Value> {
    list.iter().filter(|t| t["status"] == status).collect()
}

/// Realtime tasks are Druid tasks: listed (with live row counts) next to batch tasks, in
/// sys.tasks, with a payload; a shutdown hands off and the supervisor starts the next task; a
/// restart marks the cut-short tasks FAILED.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn realtime_tasks_are_listed_with_their_rows() {
    let dir = tempfile::tempdir().unwrap();
    let node = TestNode::start(dir.path()).await;
    create_topic(&node, "events", 2).await;
    node.post(SUP, &spec("events")).await;
    produce(&node, "events", &events(1, 40)).await;
    wait_totals(&node, (40, sum_range(1, 40)), Duration::from_secs(20)).await;

    let list = wait_tasks(&node, "two running tasks with every row", |l| {
        let running = with_status(l, "RUNNING");
        running.len() == 2
            && running
                .iter()
                .map(|t| t["rowStats"]["processed"].as_u64().unwrap_or(0))
                .sum::<u64>()
                == 40
    })
    .await;
    for t in &list {
        assert_eq!(t["type"], "index_kafka");
        assert_eq!(t["dataSource"], "events");
        assert!(t["id"].as_str().unwrap().starts_with("index_kafka_events_"));
    }
    let id = list[0]["id"].as_str().unwrap().to_string();
    let (_, payload) = node.get(&format!("/druid/indexer/v1/task/{id}")).await;
    assert_eq!(payload["payload"]["type"], "index_kafka");
    assert_eq!(payload["payload"]["ioConfig"]["topic"], "events");
    let sys = sql(
        &node,
        "SELECT COUNT(*) AS n FROM sys.tasks WHERE \"type\" = 'index_kafka' AND status = 'RUNNING' AND datasource = 'events'",
    )
    .await;
    assert_eq!(sys[0]["n"], 2);

    // A shutdown ends the task with what it read published; its group goes on with a new task.
    let rows_of_first = list[0]["rowStats"]["processed"].as_u64().unwrap();
    let (status, body) = node
        .post(&format!("/druid/indexer/v1/task/{id}/shutdown"), &json!({}))
        .await;
    assert_eq!((status, body), (StatusCode::OK, json!({"task": id})));
    let list = wait_tasks(&node, "the task succeeds and a new one runs", |l| {
        with_status(l, "SUCCESS").len() == 1 && with_status(l, "RUNNING").len() == 2
    })
    .await;
    let done = with_status(&list, "SUCCESS")[0];
    assert_eq!(done["id"], id.as_str());
    assert_eq!(done["rowStats"]["processed"], rows_of_first);
    assert!(done["duration"].as_i64().unwrap() >= 0);
    assert!(done["errorMsg"].is_null(), "{done}");
    let (_, status) = node
        .get(&format!("/druid/indexer/v1/task/{id}/status"))
        .await;
    assert_eq!(status["status"]["status"], "SUCCESS");
    wait_totals(&node, (40, sum_range(1, 40)), Duration::from_secs(20)).await;

    // Tasks cut short by a stop are FAILED after the restart, and new ones run.
    node.stop().await;
    let node = TestNode::start(dir.path()).await;
    let list = wait_tasks(&node, "cut-short tasks fail, new ones run", |l| {
        with_status(l, "FAILED").len() == 2 && with_status(l, "RUNNING").len() == 2
    })
    .await;
    for t in with_status(&list, "FAILED") {
        let why = t["errorMsg"].as_str().unwrap_or_default();
        assert!(why.contains("reads the rows again"), "{why}");
    }
    wait_totals(&node, (40, sum_range(1, 40)), Duration::from_secs(30)).await;
    node.stop().await;
}

/// Spills are merged at hand-off: a task that persisted many small parts of one time chunk
/// publishes one segment, with rows that roll up across parts combined, and the totals never
/// change on the way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spills_are_merged_into_one_segment_at_hand_off() {
    let dir = tempfile::tempdir().unwrap();
    let node = TestNode::start(dir.path()).await;
    let spec = json!({"type": "kafka", "spec": {
        "dataSchema": {
            "dataSource": "merged",
            "timestampSpec": {"column": "ts", "format": "iso"},
            "dimensionsSpec": {"dimensions": ["page"]},
            "metricsSpec": [{"type": "count", "name": "count"},
                {"type": "longSum", "name": "uids", "fieldName": "uid"},
                {"type": "hyperUnique", "name": "users", "fieldName": "uid"}],
            "granularitySpec": {"segmentGranularity": "day", "queryGranularity": "hour", "rollup": true}},
        "ioConfig": {"type": "kafka", "topic": "merged", "inputFormat": {"type": "json"},
            "useEarliestOffset": true, "taskCount": 1},
        "tuningConfig": {"type": "kafka", "maxRowsInMemory": 5}}});
    create_topic(&node, "merged", 1).await;
    let (status, body) = node.post(SUP, &spec).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let query = "SELECT SUM(\"count\") AS n, SUM(uids) AS s, APPROX_COUNT_DISTINCT_BUILTIN(users) AS u FROM merged";
    let totals = || async { sql(&node, query).await[0].clone() };
    // Six batches of ten events over seven pages of one hour: each batch rolls up to seven
    // rows and spills (maxRowsInMemory 5), so six parts hold the chunk.
    for batch in 0..6u64 {
        produce(
            &node,
            "merged",
            &events(1 + batch * 10, 10).replace("T11:", "T10:"),
        )
        .await;
        let deadline = Instant::now() + Duration::from_secs(20);
        // The datasource appears with the first rows: until then SQL does not know the table.
        let indexed = || async {
            let (status, body) = node.post("/druid/v2/sql", &json!({"query": query})).await;
            (status == StatusCode::OK).then(|| body[0]["n"].clone())
        };
        while indexed().await != Some(json!((batch + 1) * 10)) {
            assert!(Instant::now() < deadline, "batch {batch} not indexed");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let parts = sql(
        &node,
        "SELECT COUNT(*) AS n FROM sys.segments WHERE datasource = 'merged' AND is_realtime = 1",
    )
    .await;
    assert!(
        parts[0]["n"].as_u64().unwrap() >= 6,
        "the chunk is held in several parts before hand-off: {parts}"
    );
    let before = totals().await;
    assert_eq!(before["s"], sum_range(1, 60));
    node.post(&format!("{SUP}/merged/taskGroups/handoff"), &json!({}))
        .await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        assert_eq!(totals().await, before, "totals change during hand-off");
        let published = sql(
            &node,
            "SELECT COUNT(*) AS n, SUM(num_rows) AS r FROM sys.segments WHERE datasource = 'merged' AND is_published = 1",
        )
        .await;
        let served = sql(
            &node,
            "SELECT COUNT(*) AS n FROM sys.server_segments WHERE server LIKE '%-historical' AND segment_id LIKE 'merged_%'",
        )
        .await;
        if published[0]["n"] == 1 && served[0]["n"] == 1 {
            // Seven pages: the six parts' rows rolled up into one row per page.
            assert_eq!(published[0]["r"], 7, "{published}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "hand-off did not finish: {published} {served}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(totals().await, before);
    node.stop().await;
}

/// Polls the totals for `dur`: they only grow from `floor` rows, never pass `want`, and equal
/// it at the end.
async fn steady_totals(node: &TestNode, floor: u64, want: (u64, u64), dur: Duration) {
    let until = Instant::now() + dur;
    let mut last = (floor, 0);
    while Instant::now() < until || last != want {
        let got = totals(node).await;
        assert!(got.0 >= last.0, "rows went missing: {got:?} after {last:?}");
        assert!(got.0 <= want.0, "rows counted twice: {got:?} > {want:?}");
        last = got;
        assert!(
            Instant::now() < until + Duration::from_secs(20),
            "rows did not arrive: {got:?}, want {want:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Makes a realtime task's persists fail (its work directory becomes a file), as a broken disk
/// would.
fn break_disk_of(node: &TestNode, task: &str) {
    let dir = node.data_dir.join("tasks/realtime/events").join(task);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.parent().unwrap()).unwrap();
    std::fs::write(&dir, b"not a directory").unwrap();
}

/// `replicas: 2` runs two copies of the task group: queries count each row once, the copies'
/// rows stay queryable when either fails (the standby takes over at once, with the rows it
/// indexed, while the failed copy starts again), and a hand-off publishes one copy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_keep_rows_queryable_when_one_fails() {
    let dir = tempfile::tempdir().unwrap();
    let node = TestNode::start(dir.path()).await;
    create_topic(&node, "events", 1).await;
    let mut spec = spec("events");
    spec["spec"]["ioConfig"]["taskCount"] = json!(1);
    spec["spec"]["ioConfig"]["replicas"] = json!(2);
    spec["spec"]["tuningConfig"]["intermediatePersistPeriod"] = json!("PT0.3S");
    let (status, body) = node.post(SUP, &spec).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    produce(&node, "events", &events(1, 40)).await;
    let both = |rows: u64| {
        move |l: &[Value]| {
            let running = with_status(l, "RUNNING");
            running.len() == 2
                && running
                    .iter()
                    .all(|t| t["rowStats"]["processed"].as_u64() == Some(rows))
        }
    };
    let list = wait_tasks(&node, "two copies with every row", both(40)).await;
    steady_totals(
        &node,
        40,
        (40, sum_range(1, 40)),
        Duration::from_millis(500),
    )
    .await;
    let st = wait_status(&node, "two active tasks", |p| {
        p["activeTasks"].as_array().is_some_and(|a| a.len() == 2)
    })
    .await;
    assert_eq!(st["replicas"], 2);
    let (_, stats) = node.get(&format!("{SUP}/events/stats")).await;
    assert_eq!(stats["0"].as_object().unwrap().len(), 2, "{stats}");

    // Each original copy fails in turn while new rows come; one of them is the active copy
    // when it fails. The rows never leave the queries.
    let originals: Vec<String> = list
        .iter()
        .filter(|t| t["status"] == "RUNNING")
        .map(|t| t["id"].as_str().unwrap().to_string())
        .collect();
    let mut produced = 40;
    for (failures, task) in originals.iter().enumerate() {
        break_disk_of(&node, task);
        produce(&node, "events", &events(produced + 1, 10)).await;
        produced += 10;
        let want = (produced, sum_range(1, produced));
        let began = Instant::now();
        let mut seen_failure = false;
        while !seen_failure || began.elapsed() < Duration::from_secs(2) {
            steady_totals(&node, produced - 10, want, Duration::from_millis(100)).await;
            let (_, list) = node.get("/druid/indexer/v1/tasks?datasource=events").await;
            let failed = with_status(list.as_array().unwrap(), "FAILED");
            seen_failure = failed.len() == failures + 1;
            assert!(
                began.elapsed() < Duration::from_secs(20),
                "{task} did not fail: {list}"
            );
        }
        let (_, st) = node
            .get(&format!("/druid/indexer/v1/task/{task}/status"))
            .await;
        let why = st["status"]["errorMsg"].as_str().unwrap_or_default();
        assert!(why.contains(task.as_str()), "{st}");
        wait_tasks(&node, "the failed copy runs again", both(produced)).await;
    }

    // A hand-off publishes the active copy only; the standby starts again from its offsets.
    node.post(&format!("{SUP}/events/taskGroups/handoff"), &json!({}))
        .await;
    let want = (produced, sum_range(1, produced));
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        steady_totals(&node, produced, want, Duration::from_millis(50)).await;
        let published = sql(
            &node,
            "SELECT COUNT(*) AS n, SUM(num_rows) AS r FROM sys.segments WHERE datasource = 'events' AND is_published = 1",
        )
        .await;
        let served = sql(
            &node,
            "SELECT COUNT(*) AS n FROM sys.server_segments WHERE server LIKE '%-historical' AND segment_id LIKE 'events_%'",
        )
        .await;
        if published[0]["n"].as_u64() > Some(0) && served[0]["n"] == published[0]["n"] {
            assert_eq!(published[0]["r"], produced, "{published}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no hand-off: {published} {served}"
        );
    }
    let list = wait_tasks(&node, "both copies go on", |l| {
        with_status(l, "RUNNING").len() == 2 && with_status(l, "SUCCESS").len() == 2
    })
    .await;
    assert_eq!(with_status(&list, "FAILED").len(), 2);
    steady_totals(&node, produced, want, Duration::from_millis(500)).await;
    node.stop().await;
}
