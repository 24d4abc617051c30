//! Helpers for in-process node tests: a standalone node on 127.0.0.1:0 in a temporary data
//! directory, an HTTP client, and task and query shortcuts. Waits poll with deadlines.

#![allow(dead_code)]

pub mod process;
pub mod slt;
pub mod stream;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use eddy::config::Config;
use eddy::node::{Node, start_standalone};

pub struct TestNode {
    node: Option<Node>,
    pub url: String,
    /// The click collector's base URL, when the config enables it.
    pub collector_url: Option<String>,
    pub data_dir: PathBuf,
    client: reqwest::Client,
}

pub fn test_config(data_dir: &Path) -> Config {
    let mut c = Config::default();
    c.node.data_dir = data_dir.to_path_buf();
    c.http.flight_addr = "127.0.0.1:0".into();
    c.coordinator.period_ms = 200;
    c.query.threads = 2;
    c.ingest.await_availability_ms = 30_000;
    // Tests that want the collector turn it on (on port 0).
    c.collector.addr.clear();
    c
}

impl TestNode {
    pub async fn start(data_dir: &Path) -> TestNode {
        TestNode::start_with(test_config(data_dir)).await
    }

    pub async fn start_with(config: Config) -> TestNode {
        let data_dir = config.data_dir();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a test port");
        let node = start_standalone(config, Some(listener))
            .await
            .expect("start a standalone node");
        let url = format!("http://{}", node.addr);
        let collector_url = node.collector_addr.map(|a| format!("http://{a}"));
        TestNode {
            node: Some(node),
            url,
            collector_url,
            data_dir,
            client: reqwest::Client::new(),
        }
    }

    /// The node's embedded stream.
    pub fn streams(&self) -> eddy_stream::EmbeddedLog {
        self.node.as_ref().expect("running").streams.clone()
    }

    pub async fn stop(mut self) {
        if let Some(n) = self.node.take() {
            n.stop().await.expect("clean stop");
        }
    }

    pub async fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&str>,
    ) -> (StatusCode, Value, reqwest::header::HeaderMap) {
        let mut req = self.client.request(method, format!("{}{path}", self.url));
        if let Some(b) = body {
            req = req
                .header("Content-Type", "application/json")
                .body(b.to_string());
        }
        let resp = req.send().await.expect("request");
        let status = resp.status();
        let headers = resp.headers().clone();
        let text = resp.text().await.expect("body");
        let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, value, headers)
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        let (s, v, _) = self.request(reqwest::Method::GET, path, None).await;
        (s, v)
    }

    pub async fn post(&self, path: &str, body: &Value) -> (StatusCode, Value) {
        let (s, v, _) = self
            .request(reqwest::Method::POST, path, Some(&body.to_string()))
            .await;
        (s, v)
    }

    /// Runs a native query that must succeed.
    pub async fn query(&self, q: Value) -> Value {
        let (status, body) = self.post("/druid/v2", &q).await;
        assert_eq!(status, StatusCode::OK, "query failed: {body}\nquery: {q}");
        body
    }

    /// Submits a task and waits for it to end; returns its final status object.
    pub async fn ingest(&self, spec: &Value) -> Value {
        let (status, body) = self.post("/druid/indexer/v1/task", spec).await;
        assert_eq!(status, StatusCode::OK, "task refused: {body}");
        let id = body["task"].as_str().expect("task id").to_string();
        self.wait_task(&id).await
    }

    pub async fn wait_task(&self, id: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let (_, st) = self
                .get(&format!("/druid/indexer/v1/task/{id}/status"))
                .await;
            match st["status"]["status"].as_str() {
                Some("SUCCESS") | Some("FAILED") => return st["status"].clone(),
                _ if Instant::now() > deadline => panic!("task {id} did not finish: {st}"),
                _ => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }

    /// Waits until every used segment is served.
    pub async fn wait_loaded(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let (_, st) = self.get("/druid/coordinator/v1/loadstatus").await;
            let all = st
                .as_object()
                .is_some_and(|m| m.values().all(|v| v.as_f64() == Some(100.0)));
            if all {
                return;
            }
            assert!(Instant::now() < deadline, "segments did not load: {st}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for TestNode {
    fn drop(&mut self) {
        if let Some(n) = self.node.take() {
            n.shutdown.trigger();
        }
    }
}

pub fn repo_path(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// A node in a fresh temporary directory with the README's sample ingested.
pub async fn node_with_sample() -> (tempfile::TempDir, TestNode) {
    let dir = tempfile::tempdir().unwrap();
    let node = TestNode::start(dir.path()).await;
    let status = node.ingest(&sample_spec()).await;
    assert_eq!(status["status"], "SUCCESS", "{status}");
    (dir, node)
}

/// The README's sample ingestion spec, with its input made absolute.
pub fn sample_spec() -> Value {
    let text =
        std::fs::read_to_string(repo_path("examples/clicks-index.json")).expect("sample spec");
    let mut spec: Value = serde_json::from_str(&text).expect("sample spec is JSON");
    spec["spec"]["ioConfig"]["inputSource"]["baseDir"] =
        json!(repo_path("examples").display().to_string());
    spec
}

/// The sample rows, parsed, for computing expected answers independently.
pub fn sample_rows() -> Vec<Value> {
    std::fs::read_to_string(repo_path("examples/clicks-sample.json"))
        .expect("sample data")
        .lines()
        .map(|l| serde_json::from_str(l).expect("sample row"))
        .collect()
}

/// A batch spec over inline JSON lines.
pub fn inline_spec(
    datasource: &str,
    lines: &[Value],
    dimensions: Value,
    metrics: Value,
    append: bool,
) -> Value {
    let data: String = lines.iter().map(|l| format!("{l}\n")).collect();
    json!({
        "type": "index_parallel",
        "spec": {
            "dataSchema": {
                "dataSource": datasource,
                "timestampSpec": {"column": "time", "format": "auto"},
                "dimensionsSpec": {"dimensions": dimensions},
                "metricsSpec": metrics,
                "granularitySpec": {"segmentGranularity": "day", "queryGranularity": "none", "rollup": false}
            },
            "ioConfig": {"type": "index_parallel", "inputSource": {"type": "inline", "data": data}, "inputFormat": {"type": "json"}, "appendToExisting": append},
            "tuningConfig": {"type": "index_parallel"}
        }
    })
}
