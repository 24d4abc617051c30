//! Kafka through rdkafka (librdkafka). Reading assigns partitions at explicit offsets: offsets
//! live in Eddy's metadata, never in Kafka consumer groups, so nothing is committed to Kafka.
//! Producing is idempotent with `acks=all` and Java's murmur2 key partitioner, so records keyed
//! by one id land where Java producers would put them.
//!
//! librdkafka calls block, so they run on the blocking pool.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Headers, Message};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{Offset, TopicPartitionList};

use crate::{
    Durable, OffsetRange, ProduceRecord, StreamError, StreamReader, StreamRecord, StreamSink,
    StreamSource,
};

/// How long metadata and watermark requests may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// A Kafka cluster reached with the given client properties (`bootstrap.servers` and any
/// librdkafka setting, as in a supervisor's `consumerProperties`).
#[derive(Clone)]
pub struct KafkaStream {
    properties: Arc<BTreeMap<String, String>>,
    /// For metadata and watermarks.
    meta: Arc<BaseConsumer>,
    producer: Arc<std::sync::OnceLock<FutureProducer>>,
}

/// Settings that only the Java client knows; librdkafka refuses them, so they are dropped.
const JAVA_ONLY: &[&str] = &[
    "key.deserializer",
    "value.deserializer",
    "key.serializer",
    "value.serializer",
    "sasl.jaas.config",
];

fn unavailable(what: &str, e: &KafkaError) -> StreamError {
    StreamError::Unavailable(format!("{what}: {e}"))
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StreamError> + Send + 'static,
) -> Result<T, StreamError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| StreamError::Unavailable(format!("the Kafka client thread stopped: {e}")))?
}

/// Runs a blocking librdkafka call on this thread, telling a multi-threaded runtime to move its
/// other tasks away meanwhile (a current-thread runtime just runs it). For reads: the records
/// are allocated on the thread that indexes and frees them, so the allocator reuses their
/// memory batch after batch (allocated on a blocking-pool thread and freed on another, each
/// batch took fresh pages).
fn on_this_thread<T>(f: impl FnOnce() -> Result<T, StreamError>) -> Result<T, StreamError> {
    match tokio::runtime::Handle::current().runtime_flavor() {
        tokio::runtime::RuntimeFlavor::CurrentThread => f(),
        _ => tokio::task::block_in_place(f),
    }
}

impl KafkaStream {
    /// Checks the properties by building a client; errors name the bad property.
    pub fn new(properties: BTreeMap<String, String>) -> Result<KafkaStream, StreamError> {
        if !properties.contains_key("bootstrap.servers") {
            return Err(StreamError::Invalid(
                "consumerProperties: bootstrap.servers is required for Kafka".into(),
            ));
        }
        let properties = Arc::new(properties);
        let meta = Self::config(&properties, true)
            .create::<BaseConsumer>()
            .map_err(|e| StreamError::Invalid(format!("consumerProperties: {e}")))?;
        Ok(KafkaStream {
            properties,
            meta: Arc::new(meta),
            producer: Arc::new(std::sync::OnceLock::new()),
        })
    }

    fn config(properties: &BTreeMap<String, String>, consumer: bool) -> ClientConfig {
        let mut c = ClientConfig::new();
        if consumer {
            c.set("group.id", "eddy")
                .set("enable.auto.commit", "false")
                .set("enable.auto.offset.store", "false")
                .set("isolation.level", "read_committed")
                .set("auto.offset.reset", "error")
                .set("enable.partition.eof", "false");
        } else {
            c.set("acks", "all")
                .set("enable.idempotence", "true")
                .set("partitioner", "murmur2_random")
                .set("linger.ms", "5");
        }
        for (k, v) in properties.iter() {
            if !JAVA_ONLY.contains(&k.as_str()) {
                c.set(k, v);
            }
        }
        // Offsets are Eddy's; Kafka must never move them.
        if consumer {
            c.set("enable.auto.commit", "false");
        }
        c
    }

    fn producer(&self) -> Result<&FutureProducer, StreamError> {
        if let Some(p) = self.producer.get() {
            return Ok(p);
        }
        let p = Self::config(&self.properties, false)
            .create::<FutureProducer>()
            .map_err(|e| StreamError::Invalid(format!("producer properties: {e}")))?;
        Ok(self.producer.get_or_init(|| p))
    }

    fn partitions_blocking(meta: &BaseConsumer, topic: &str) -> Result<Vec<u32>, StreamError> {
        let md = meta
            .fetch_metadata(Some(topic), REQUEST_TIMEOUT)
            .map_err(|e| unavailable("reading Kafka metadata", &e))?;
        let Some(t) = md.topics().iter().find(|t| t.name() == topic) else {
            return Err(StreamError::UnknownTopic(topic.to_string()));
        };
        match t.error() {
            None => {}
            Some(RDKafkaRespErr::RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART) => {
                return Err(StreamError::UnknownTopic(topic.to_string()));
            }
            Some(e) => {
                return Err(StreamError::Unavailable(format!(
                    "metadata of topic {topic:?}: {}",
                    RDKafkaErrorCode::from(e)
                )));
            }
        }
        if t.partitions().is_empty() {
            return Err(StreamError::UnknownTopic(topic.to_string()));
        }
        let mut out: Vec<u32> = t.partitions().iter().map(|p| p.id() as u32).collect();
        out.sort_unstable();
        Ok(out)
    }
}

#[async_trait]
impl StreamSource for KafkaStream {
    async fn partitions(&self, topic: &str) -> Result<Vec<u32>, StreamError> {
        let meta = self.meta.clone();
        let topic = topic.to_string();
        blocking(move || Self::partitions_blocking(&meta, &topic)).await
    }

    async fn offsets(&self, topic: &str) -> Result<OffsetRange, StreamError> {
        let meta = self.meta.clone();
        let topic = topic.to_string();
        blocking(move || {
            let mut out = BTreeMap::new();
            for p in Self::partitions_blocking(&meta, &topic)? {
                let (low, high) = meta
                    .fetch_watermarks(&topic, p as i32, REQUEST_TIMEOUT)
                    .map_err(|e| unavailable(&format!("offsets of {topic}/{p}"), &e))?;
                out.insert(p, (low.max(0) as u64, high.max(0) as u64));
            }
            Ok(out)
        })
        .await
    }

    async fn reader(
        &self,
        topic: &str,
        start: &BTreeMap<u32, u64>,
    ) -> Result<Box<dyn StreamReader>, StreamError> {
        let consumer = Self::config(&self.properties, true)
            .create::<BaseConsumer>()
            .map_err(|e| StreamError::Invalid(format!("consumerProperties: {e}")))?;
        let mut tpl = TopicPartitionList::new();
        for (&p, &o) in start {
            tpl.add_partition_offset(topic, p as i32, Offset::Offset(o as i64))
                .map_err(|e| StreamError::Invalid(format!("offset {o} of partition {p}: {e}")))?;
        }
        consumer
            .assign(&tpl)
            .map_err(|e| unavailable("assigning partitions", &e))?;
        Ok(Box::new(KafkaReader {
            consumer: Arc::new(consumer),
        }))
    }
}

struct KafkaReader {
    consumer: Arc<BaseConsumer>,
}

fn to_record(m: &rdkafka::message::BorrowedMessage<'_>) -> StreamRecord {
    let headers = m
        .headers()
        .map(|h| {
            (0..h.count())
                .filter_map(|i| h.try_get(i))
                .map(|x| (x.key.to_string(), x.value.map(<[u8]>::to_vec)))
                .collect()
        })
        .unwrap_or_default();
    StreamRecord {
        partition: m.partition() as u32,
        offset: m.offset() as u64,
        timestamp: m.timestamp().to_millis().unwrap_or(0),
        key: m.key().map(<[u8]>::to_vec),
        value: m.payload().map(<[u8]>::to_vec).unwrap_or_default(),
        headers,
    }
}

#[async_trait]
impl StreamReader for KafkaReader {
    async fn poll(
        &mut self,
        max: usize,
        timeout: Duration,
    ) -> Result<Vec<StreamRecord>, StreamError> {
        let consumer = &self.consumer;
        on_this_thread(|| {
            let mut out = Vec::new();
            let mut wait = timeout;
            while out.len() < max.max(1) {
                match consumer.poll(wait) {
                    None => break,
                    Some(Ok(m)) => out.push(to_record(&m)),
                    Some(Err(KafkaError::PartitionEOF(_))) => {}
                    Some(Err(e)) if out.is_empty() => {
                        return Err(unavailable("reading from Kafka", &e));
                    }
                    // Hand over what was read; the error comes back on the next poll.
                    Some(Err(_)) => break,
                }
                wait = Duration::ZERO;
            }
            Ok(out)
        })
    }
}

#[async_trait]
impl StreamSink for KafkaStream {
    async fn create_topic(&self, topic: &str, partitions: u32) -> Result<(), StreamError> {
        crate::check_topic_name(topic)?;
        let admin: AdminClient<DefaultClientContext> = Self::config(&self.properties, false)
            .create()
            .map_err(|e| StreamError::Invalid(format!("admin client properties: {e}")))?;
        let replication = self
            .properties
            .get("eddy.replication.factor")
            .and_then(|r| r.parse().ok())
            .unwrap_or(1);
        let new = NewTopic::new(
            topic,
            partitions as i32,
            TopicReplication::Fixed(replication),
        );
        let results = admin
            .create_topics(
                [&new],
                &AdminOptions::new()
                    .operation_timeout(Some(REQUEST_TIMEOUT))
                    .request_timeout(Some(REQUEST_TIMEOUT)),
            )
            .await
            .map_err(|e| unavailable("creating a topic", &e))?;
        for r in results {
            match r {
                Ok(_) => {}
                Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {
                    return Err(StreamError::TopicExists(topic.to_string()));
                }
                Err((_, code)) => {
                    return Err(StreamError::Unavailable(format!(
                        "creating topic {topic:?}: {code}"
                    )));
                }
            }
        }
        // Wait until the topic's metadata shows its partitions.
        for _ in 0..50 {
            if self
                .partitions(topic)
                .await
                .is_ok_and(|p| p.len() == partitions as usize)
            {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(())
    }

    async fn produce(
        &self,
        topic: &str,
        records: Vec<ProduceRecord>,
    ) -> Result<Vec<(u32, u64)>, StreamError> {
        let producer = self.producer()?;
        let sends = records.iter().map(|r| {
            let mut rec = FutureRecord::<[u8], [u8]>::to(topic).payload(&r.value[..]);
            if let Some(k) = &r.key {
                rec = rec.key(&k[..]);
            }
            if let Some(t) = r.timestamp {
                rec = rec.timestamp(t);
            }
            producer.send(rec, Duration::from_secs(30))
        });
        let results = futures::future::join_all(sends).await;
        delivered(topic, results.into_iter().map(|r| r.map_err(|(e, _)| e)))
    }

    async fn produce_ordered(
        &self,
        topic: &str,
        records: Vec<ProduceRecord>,
    ) -> Result<Durable, StreamError> {
        let producer = self.producer()?;
        let mut pending = Vec::with_capacity(records.len());
        for r in &records {
            let mut rec = FutureRecord::<[u8], [u8]>::to(topic).payload(&r.value[..]);
            if let Some(k) = &r.key {
                rec = rec.key(&k[..]);
            }
            if let Some(t) = r.timestamp {
                rec = rec.timestamp(t);
            }
            // Enqueued now, in call order; a full queue waits for room (the same record is
            // offered again, so the order holds).
            loop {
                match producer.send_result(rec) {
                    Ok(delivery) => {
                        pending.push(delivery);
                        break;
                    }
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                        rec = back;
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    }
                    Err((e, _)) => return Err(unavailable("producing to Kafka", &e)),
                }
            }
        }
        let topic = topic.to_string();
        Ok(Box::pin(async move {
            let results = futures::future::join_all(pending).await;
            delivered(
                &topic,
                results.into_iter().map(|r| match r {
                    Ok(delivery) => delivery.map_err(|(e, _)| e),
                    Err(_) => Err(KafkaError::Canceled),
                }),
            )
        }))
    }
}

/// Each record's (partition, offset), or the first failure.
fn delivered(
    topic: &str,
    results: impl Iterator<Item = Result<rdkafka::producer::future_producer::Delivery, KafkaError>>,
) -> Result<Vec<(u32, u64)>, StreamError> {
    let mut out = Vec::new();
    for result in results {
        match result {
            Ok(d) => out.push((d.partition as u32, d.offset as u64)),
            Err(KafkaError::MessageProduction(RDKafkaErrorCode::UnknownTopicOrPartition)) => {
                return Err(StreamError::UnknownTopic(topic.to_string()));
            }
            Err(e) => return Err(unavailable("producing to Kafka", &e)),
        }
    }
    Ok(out)
}
