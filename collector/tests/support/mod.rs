//! A collector on 127.0.0.1:0 writing an embedded log in a temporary directory, requests built
//! the way the tracker builds them, and readers of what reached the topics.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use apache_avro::types::Value as Avro;
use async_trait::async_trait;
use eddy_collector::{CollectorConfig, CollectorEnv, CollectorHandle};
use eddy_runtime::{Shutdown, SystemClock};
use eddy_stream::{EmbeddedLog, ProduceRecord, StreamError, StreamSink, StreamSource};
use serde_json::Value;

pub const CHROME: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";

/// The embedded log, with a switch that makes every write fail (a sink that is down).
pub struct Switchable {
    pub log: EmbeddedLog,
    pub down: AtomicBool,
}

#[async_trait]
impl StreamSink for Switchable {
    async fn create_topic(&self, topic: &str, partitions: u32) -> Result<(), StreamError> {
        self.log.create_topic(topic, partitions).await
    }
    async fn produce(
        &self,
        topic: &str,
        records: Vec<ProduceRecord>,
    ) -> Result<Vec<(u32, u64)>, StreamError> {
        if self.down.load(Ordering::SeqCst) {
            return Err(StreamError::Unavailable("the disk is gone".into()));
        }
        self.log.produce(topic, records).await
    }
}

/// Metrics are process-wide: tests that read them run one at a time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

pub struct TestCollector {
    _serial: tokio::sync::MutexGuard<'static, ()>,
    pub url: String,
    pub stream: Arc<Switchable>,
    pub client: reqwest::Client,
    shutdown: Shutdown,
    _handle: CollectorHandle,
    _dir: tempfile::TempDir,
}

pub fn config() -> CollectorConfig {
    CollectorConfig {
        addr: "127.0.0.1:0".into(),
        sink_timeout_ms: 2_000,
        ..CollectorConfig::default()
    }
}

/// Starts a collector on 127.0.0.1:0 with `embedded` as its embedded stream; returns its URL
/// and the shutdown that stops it.
pub async fn serve(
    config: CollectorConfig,
    embedded: Option<Arc<dyn StreamSink>>,
) -> (CollectorHandle, Shutdown) {
    let shutdown = Shutdown::new();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let handle = eddy_collector::start(
        config,
        CollectorEnv {
            embedded,
            clock: Arc::new(SystemClock),
            shutdown: shutdown.clone(),
            listener: Some(listener),
            demo: None,
        },
    )
    .await
    .expect("the collector starts");
    (handle, shutdown)
}

impl TestCollector {
    pub async fn start(config: CollectorConfig) -> TestCollector {
        let serial = SERIAL.lock().await;
        let dir = tempfile::tempdir().unwrap();
        let log = EmbeddedLog::open(dir.path().join("streams")).unwrap();
        let stream = Arc::new(Switchable {
            log,
            down: AtomicBool::new(false),
        });
        let (handle, shutdown) = serve(config, Some(stream.clone())).await;
        TestCollector {
            _serial: serial,
            url: format!("http://{}", handle.addr),
            stream,
            client: reqwest::Client::builder().no_gzip().build().unwrap(),
            shutdown,
            _handle: handle,
            _dir: dir,
        }
    }

    pub async fn pixel(&self, query: &str, headers: &[(&str, &str)]) -> reqwest::Response {
        let mut req = self.client.get(format!("{}/csc-event?{query}", self.url));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        req.send().await.unwrap()
    }

    /// Everything in `topic`, in offset order per partition.
    pub async fn records(&self, topic: &str) -> Vec<eddy_stream::StreamRecord> {
        let offsets = match self.stream.log.offsets(topic).await {
            Ok(o) => o,
            Err(_) => return vec![],
        };
        let start: BTreeMap<u32, u64> =
            offsets.iter().map(|(p, (first, _))| (*p, *first)).collect();
        let total: u64 = offsets.values().map(|(a, b)| b - a).sum();
        let mut reader = self.stream.log.reader(topic, &start).await.unwrap();
        let mut out = Vec::new();
        while (out.len() as u64) < total {
            out.extend(
                reader
                    .poll(10_000, Duration::from_millis(200))
                    .await
                    .unwrap(),
            );
        }
        out
    }

    /// The event records, decoded with the built-in schema, as JSON objects.
    pub async fn events(&self) -> Vec<Value> {
        self.records("clicks")
            .await
            .iter()
            .map(|r| decode(&r.value))
            .collect()
    }

    pub async fn bad_rows(&self) -> Vec<Value> {
        self.records("clicks_bad_rows")
            .await
            .iter()
            .map(|r| serde_json::from_slice(&r.value).unwrap())
            .collect()
    }

    pub async fn metric(&self, line_prefix: &str) -> f64 {
        let text = self
            .client
            .get(format!("{}/metrics", self.url))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        text.lines()
            .find(|l| l.starts_with(line_prefix))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0)
    }
}

impl Drop for TestCollector {
    fn drop(&mut self) {
        self.shutdown.trigger();
    }
}

/// Decodes a bare Avro record of the built-in schema into JSON (unions unwrapped).
pub fn decode(bytes: &[u8]) -> Value {
    let schema = apache_avro::Schema::parse_str(eddy_collector::output::DEFAULT_SCHEMA).unwrap();
    let mut reader = bytes;
    #[allow(deprecated)]
    let value = apache_avro::from_avro_datum(&schema, &mut reader, None).unwrap();
    assert!(reader.is_empty(), "the record has trailing bytes");
    to_json(value)
}

fn to_json(v: Avro) -> Value {
    match v {
        Avro::Record(fields) => {
            Value::Object(fields.into_iter().map(|(k, v)| (k, to_json(v))).collect())
        }
        Avro::Union(_, inner) => to_json(*inner),
        Avro::Null => Value::Null,
        Avro::Boolean(b) => Value::Bool(b),
        Avro::Int(i) => Value::from(i),
        Avro::Long(i) | Avro::TimestampMillis(i) => Value::from(i),
        Avro::Double(d) => Value::from(d),
        Avro::String(s) => Value::String(s),
        other => panic!("unexpected Avro value {other:?}"),
    }
}

/// A query string with its checksum, as the tracker sends it.
pub fn signed(pairs: &[(&str, String)]) -> String {
    let pairs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
    eddy_collector::protocol::query::sign(&pairs)
}

/// An event of party `party` with id `event`, with the tracker's usual parameters plus `extra`.
pub fn event(party: &str, event: &str, extra: &[(&str, &str)]) -> Vec<(&'static str, String)> {
    let mut pairs: Vec<(&'static str, String)> = vec![
        ("p", format!("0:mf3k2a1b:{party}")),
        ("s", "0:mf3k2a1b:session1".into()),
        ("v", "0:pageview1".into()),
        ("e", event.into()),
        ("c", "mf3k2a1b".into()),
        ("n", "t".into()),
        ("f", "t".into()),
        (
            "l",
            "https://shop.example/p/42?utm_source=newsletter&utm_medium=email&gclid=abc".into(),
        ),
        ("r", "https://www.google.com/search?q=tea".into()),
        ("i", "1hc".into()),
        ("j", "u0".into()),
        ("k", "1.i".into()),
        ("w", "1hc".into()),
        ("h", "kw".into()),
        ("t", "pageView".into()),
    ];
    for (k, v) in extra {
        let key: &'static str = Box::leak(k.to_string().into_boxed_str());
        pairs.retain(|(name, _)| *name != key);
        pairs.push((key, v.to_string()));
    }
    pairs
}

/// Waits until `f` holds, up to `within`.
pub async fn eventually<F, Fut>(within: Duration, what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = std::time::Instant::now() + within;
    while !f().await {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
