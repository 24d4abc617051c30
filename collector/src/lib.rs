//! The click collector: a Divolte-compatible tracker and endpoint. Events arrive as pixel
//! GETs, batched POSTs or JSON, are validated, enriched and mapped onto an Avro record, and are
//! acknowledged once the stream (Kafka or the embedded log) holds them. Bad input goes to a
//! bad-rows topic with the reason.

pub mod config;
pub mod dedup;
pub mod enrich;
pub mod event;
pub mod http;
pub mod metrics;
pub mod output;
pub mod pipeline;
pub mod privacy;
pub mod protocol;
pub mod sink;
pub mod tracker;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use eddy_runtime::{SharedClock, Shutdown};
use eddy_stream::{StreamError, StreamSink};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

pub use config::CollectorConfig;

use config::SinkKind;
use enrich::Enricher;
use enrich::geo::GeoDb;
use enrich::ua::UserAgentParser;
use output::{DEFAULT_MAPPING, DEFAULT_SCHEMA, Encoder, Framing, Mapping};
use pipeline::Pipeline;
use sink::Sink;
use tracker::TrackerScript;

/// Lets the demo page show a party's latest events (the node answers it with SQL).
#[async_trait]
pub trait DemoEvents: Send + Sync {
    async fn recent(&self, party_id: &str) -> Result<serde_json::Value, String>;
}

/// What the node gives the collector.
pub struct CollectorEnv {
    /// The node's embedded stream, which `sink = "embedded"` writes (any [`StreamSink`]).
    pub embedded: Option<Arc<dyn StreamSink>>,
    pub clock: SharedClock,
    pub shutdown: Shutdown,
    /// Overrides `collector.addr` (tests bind port 0).
    pub listener: Option<TcpListener>,
    pub demo: Option<Arc<dyn DemoEvents>>,
}

#[derive(Debug, thiserror::Error)]
pub enum CollectorError {
    #[error("{0}")]
    Config(String),
    #[error("cannot read {what} {path}: {source}")]
    Read {
        what: &'static str,
        path: String,
        source: std::io::Error,
    },
    #[error("cannot listen on {addr} (collector.addr): {source}")]
    Listen {
        addr: String,
        source: std::io::Error,
    },
    #[error("the collector's sink: {0}")]
    Stream(#[from] StreamError),
}

/// A running collector's shared state.
pub struct Collector {
    pub config: CollectorConfig,
    pub pipeline: Pipeline,
    pub sink: Sink,
    pub script: TrackerScript,
    pub clock: SharedClock,
    pub demo: Option<Arc<dyn DemoEvents>>,
}

pub struct CollectorHandle {
    pub addr: SocketAddr,
    pub server: JoinHandle<Result<(), std::io::Error>>,
}

fn read(what: &'static str, path: &std::path::Path) -> Result<String, CollectorError> {
    std::fs::read_to_string(path).map_err(|source| CollectorError::Read {
        what,
        path: path.display().to_string(),
        source,
    })
}

/// The schema and mapping the config names (or the built-in ones), compiled and checked.
pub fn load_mapping(config: &CollectorConfig) -> Result<(String, Mapping), CollectorError> {
    let (schema, mapping) = match (&config.schema_file, &config.mapping_file) {
        (Some(s), Some(m)) => (read("the schema", s)?, read("the mapping", m)?),
        _ => (DEFAULT_SCHEMA.to_string(), DEFAULT_MAPPING.to_string()),
    };
    let origin = config
        .mapping_file
        .as_ref()
        .map_or("the built-in mapping".to_string(), |m| {
            m.display().to_string()
        });
    let compiled = Mapping::compile(&schema, &mapping)
        .map_err(|e| CollectorError::Config(format!("{origin} does not fit the schema:\n{e}")))?;
    Ok((schema, compiled))
}

/// The stream records go to, with the collector's topics in place.
async fn open_stream(
    config: &CollectorConfig,
    embedded: Option<Arc<dyn StreamSink>>,
) -> Result<Arc<dyn StreamSink>, CollectorError> {
    match config.sink {
        SinkKind::Embedded => {
            let Some(log) = embedded else {
                return Err(CollectorError::Config(
                    "collector.sink = \"embedded\" needs a node with an embedded stream; use sink = \"kafka\" here".into(),
                ));
            };
            for topic in [&config.topic, &config.bad_rows_topic] {
                match log.create_topic(topic, config.partitions).await {
                    Ok(()) | Err(StreamError::TopicExists(_)) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            Ok(log)
        }
        SinkKind::Kafka => kafka_stream(config).await,
    }
}

/// A Kafka producer; topics that do not exist are created (a cluster that refuses is warned
/// about: it may create them on first produce).
#[cfg(feature = "kafka")]
async fn kafka_stream(config: &CollectorConfig) -> Result<Arc<dyn StreamSink>, CollectorError> {
    use eddy_stream::StreamSource;
    let mut properties = config.kafka.clone();
    // A request waits for its batch: linger briefly (librdkafka's default is 5 ms).
    properties
        .entry("linger.ms".to_string())
        .or_insert_with(|| "1".to_string());
    let stream = eddy_stream::KafkaStream::new(properties)
        .map_err(|e| CollectorError::Config(format!("collector.kafka: {e}")))?;
    for topic in [&config.topic, &config.bad_rows_topic] {
        let created = match stream.partitions(topic).await {
            Ok(_) => continue,
            Err(StreamError::UnknownTopic(_)) => {
                stream.create_topic(topic, config.partitions).await
            }
            Err(e) => Err(e),
        };
        match created {
            Ok(()) | Err(StreamError::TopicExists(_)) => {}
            Err(e) => {
                tracing::warn!(%topic, error = %e, "cannot check or create the topic; producing to it anyway")
            }
        }
    }
    Ok(Arc::new(stream))
}

#[cfg(not(feature = "kafka"))]
async fn kafka_stream(_: &CollectorConfig) -> Result<Arc<dyn StreamSink>, CollectorError> {
    Err(CollectorError::Config(
        "this build has no Kafka support (feature kafka)".into(),
    ))
}

/// Registers the schema under `<topic>-value` and returns its id.
async fn register_schema(url: &str, topic: &str, schema: &str) -> Result<u32, CollectorError> {
    let endpoint = format!(
        "{}/subjects/{topic}-value/versions",
        url.trim_end_matches('/')
    );
    let fail = |why: String| {
        CollectorError::Config(format!(
            "collector.schema_registry_url: registering the schema at {endpoint}: {why}"
        ))
    };
    let response = reqwest::Client::new()
        .post(&endpoint)
        .header("Content-Type", "application/vnd.schemaregistry.v1+json")
        .json(&serde_json::json!({"schema": schema}))
        .send()
        .await
        .map_err(|e| fail(e.to_string()))?;
    let status = response.status();
    let body: serde_json::Value = response.json().await.map_err(|e| fail(e.to_string()))?;
    if !status.is_success() {
        return Err(fail(format!("{status}: {body}")));
    }
    body["id"]
        .as_u64()
        .and_then(|id| u32::try_from(id).ok())
        .ok_or_else(|| fail(format!("the answer has no id: {body}")))
}

impl Collector {
    /// Builds the collector from its config: everything that can be wrong with the schema,
    /// mapping, rules or database files is an error here, before anything listens.
    pub async fn build(
        config: CollectorConfig,
        embedded: Option<Arc<dyn StreamSink>>,
        clock: SharedClock,
        demo: Option<Arc<dyn DemoEvents>>,
    ) -> Result<Collector, CollectorError> {
        config.validate().map_err(CollectorError::Config)?;
        metrics::register();
        let (schema_text, mapping) = load_mapping(&config)?;
        let rules = config
            .user_agent
            .rules
            .as_ref()
            .map(|p| p.display().to_string());
        let user_agents = tokio::task::spawn_blocking({
            let cache = config.user_agent.cache_size;
            move || UserAgentParser::new(rules.as_deref(), cache)
        })
        .await
        .map_err(|e| CollectorError::Config(format!("loading the user-agent rules: {e}")))?
        .map_err(|e| CollectorError::Config(format!("collector.user_agent.rules: {e}")))?;
        let geo = match &config.geo.database {
            None => None,
            Some(p) => Some(Arc::new(GeoDb::open(p).map_err(|e| {
                CollectorError::Config(format!("collector.geo.database: {e}"))
            })?)),
        };
        let stream = open_stream(&config, embedded).await?;
        let schema_id = match (&config.framing, &config.schema_registry_url) {
            (Framing::Confluent, Some(url)) if config.schema_id == 0 => {
                register_schema(url, &config.topic, &schema_text).await?
            }
            _ => config.schema_id,
        };
        let encoder = Encoder::new(mapping, config.framing, schema_id);
        let enricher = Enricher {
            user_agents,
            geo,
            internal_domains: config.internal_domains.clone(),
        };
        tracing::info!(rules = %enricher.user_agents.rules_version(), schema_id, topic = %config.topic, "collector ready");
        let sink = Sink::start(
            stream,
            config.topic.clone(),
            config.bad_rows_topic.clone(),
            config.queue_capacity,
            Duration::from_millis(config.sink_timeout_ms),
        );
        Ok(Collector {
            pipeline: Pipeline::new(&config, encoder, enricher),
            script: TrackerScript::build(&config),
            sink,
            clock,
            demo,
            config,
        })
    }
}

/// Builds the collector and serves it until shutdown.
pub async fn start(
    config: CollectorConfig,
    env: CollectorEnv,
) -> Result<CollectorHandle, CollectorError> {
    let collector = Arc::new(Collector::build(config, env.embedded, env.clock, env.demo).await?);
    let listener = match env.listener {
        Some(l) => l,
        None => TcpListener::bind(&collector.config.addr)
            .await
            .map_err(|source| CollectorError::Listen {
                addr: collector.config.addr.clone(),
                source,
            })?,
    };
    let addr = listener
        .local_addr()
        .map_err(|source| CollectorError::Listen {
            addr: collector.config.addr.clone(),
            source,
        })?;
    if let Some(db) = collector.pipeline.enricher.geo.clone() {
        let stop = env.shutdown.clone();
        let period = Duration::from_millis(collector.config.geo.reload_interval_ms);
        tokio::spawn(db.watch(period, async move { stop.wait().await }));
    }
    tracing::info!(%addr, "collector listening on http://{addr} (tracker at /eddy.js)");
    let app = http::router(collector).into_make_service_with_connect_info::<SocketAddr>();
    let stop = env.shutdown;
    let server = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move { stop.wait().await })
            .await
    });
    Ok(CollectorHandle { addr, server })
}
