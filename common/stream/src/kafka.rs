//! Kafka through rdkafka (librdkafka). Reading assigns partitions at explicit offsets: offsets
//! live in Eddy's metadata, never in Kafka consumer groups, so nothing is committed to Kafka.
//! Producing is idempotent with `acks=all` and Java's murmur2 key partitioner, so records keyed
//! by one id land where Java producers would put them.
//!
//! librdkafka calls block, so they run on the blocking pool.

use std::collections::BTreeMap;
use std::ffi::CStr;
use std::ptr::NonNull;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::bindings as rdsys;
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
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
        let queue = ConsumerQueue::of(&consumer)?;
        Ok(Box::new(KafkaReader {
            queue,
            _consumer: consumer,
        }))
    }
}

/// Reads the consumer's queue in batches through librdkafka's C API. The Rust client hands over
/// one message per poll, each wrapped in an event with its own queue round trip and reference
/// count; a batch per call took about a fifth less CPU per record from Kafka into the index
/// (docs/benchmarks.md).
struct KafkaReader {
    // Declared first so that it is dropped first: the queue holds a reference into the
    // consumer, which must outlive it.
    queue: ConsumerQueue,
    _consumer: BaseConsumer,
}

/// A reference to a consumer's message queue, released on drop.
struct ConsumerQueue(NonNull<rdsys::rd_kafka_queue_t>);

// SAFETY: librdkafka queues are internally locked and may be used from any thread.
unsafe impl Send for ConsumerQueue {}

impl Drop for ConsumerQueue {
    fn drop(&mut self) {
        // SAFETY: the pointer came from rd_kafka_queue_get_consumer and is released once.
        unsafe { rdsys::rd_kafka_queue_destroy(self.0.as_ptr()) }
    }
}

/// Messages handed out by librdkafka, destroyed on drop (also when conversion stops early).
struct Messages(Vec<*mut rdsys::rd_kafka_message_t>);

impl Drop for Messages {
    fn drop(&mut self) {
        for &m in &self.0 {
            // SAFETY: each pointer is a message librdkafka handed out and is destroyed once.
            unsafe { rdsys::rd_kafka_message_destroy(m) }
        }
    }
}

impl ConsumerQueue {
    fn of(consumer: &BaseConsumer) -> Result<ConsumerQueue, StreamError> {
        // SAFETY: the client pointer is live; the returned reference is owned by the result.
        let queue = unsafe { rdsys::rd_kafka_queue_get_consumer(consumer.client().native_ptr()) };
        NonNull::new(queue).map(ConsumerQueue).ok_or_else(|| {
            StreamError::Invalid("consumerProperties: the Kafka consumer has no queue".into())
        })
    }

    /// Waits up to `timeout` for the first message, then takes up to `max - 1` more of those
    /// already fetched, without waiting for a full batch.
    fn read(&self, max: usize, timeout: Duration) -> Result<Vec<StreamRecord>, StreamError> {
        let queue = self.0.as_ptr();
        let wait = i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX);
        let mut messages = Messages(Vec::with_capacity(max));
        // SAFETY: the queue is live; a returned message is owned by `messages`.
        let first = unsafe { rdsys::rd_kafka_consume_queue(queue, wait) };
        if first.is_null() {
            return Ok(Vec::new());
        }
        messages.0.push(first);
        if max > 1 {
            let room = messages.0.spare_capacity_mut();
            // SAFETY: librdkafka writes at most `room.len()` message pointers into `room`.
            let n = unsafe {
                rdsys::rd_kafka_consume_batch_queue(queue, 0, room.as_mut_ptr().cast(), room.len())
            };
            if let Ok(n) = usize::try_from(n) {
                // SAFETY: the first `n` slots after the first message were written above.
                unsafe { messages.0.set_len(1 + n.min(max - 1)) };
            }
        }
        let mut out = Vec::with_capacity(messages.0.len());
        let mut error = None;
        for &m in &messages.0 {
            // SAFETY: a live message, destroyed only when `messages` drops after this loop.
            let m = unsafe { &*m };
            match m.err {
                RDKafkaRespErr::RD_KAFKA_RESP_ERR_NO_ERROR => out.push(to_record(m)),
                RDKafkaRespErr::RD_KAFKA_RESP_ERR__PARTITION_EOF => {}
                _ if error.is_none() => error = Some(message_error(m)),
                _ => {}
            }
        }
        match error {
            Some(e) if out.is_empty() => Err(e),
            // Hand over what was read; a lasting failure comes back on the next poll.
            _ => Ok(out),
        }
    }
}

/// Bytes at `ptr` (null for none), copied out of a message.
fn bytes(ptr: *const std::ffi::c_void, len: usize) -> Option<Vec<u8>> {
    // SAFETY: librdkafka gives `len` readable bytes at a non-null `ptr`.
    (!ptr.is_null()).then(|| unsafe { std::slice::from_raw_parts(ptr.cast::<u8>(), len) }.to_vec())
}

fn to_record(m: &rdsys::rd_kafka_message_t) -> StreamRecord {
    let mut headers = Vec::new();
    let mut hdrs = std::ptr::null_mut();
    // SAFETY: `m` is a live message; its headers live as long as it does.
    if unsafe { rdsys::rd_kafka_message_headers(m, &mut hdrs) }
        == RDKafkaRespErr::RD_KAFKA_RESP_ERR_NO_ERROR
    {
        // SAFETY: `hdrs` was just set to the message's headers.
        let count = unsafe { rdsys::rd_kafka_header_cnt(hdrs) };
        for i in 0..count {
            let (mut name, mut value, mut size) = (std::ptr::null(), std::ptr::null(), 0);
            // SAFETY: `i` is below the header count; the outputs are written on success.
            if unsafe { rdsys::rd_kafka_header_get_all(hdrs, i, &mut name, &mut value, &mut size) }
                == RDKafkaRespErr::RD_KAFKA_RESP_ERR_NO_ERROR
            {
                // SAFETY: header names are NUL-terminated strings owned by the message.
                let name = unsafe { CStr::from_ptr(name) }
                    .to_string_lossy()
                    .into_owned();
                headers.push((name, bytes(value, size)));
            }
        }
    }
    let mut kind = rdsys::rd_kafka_timestamp_type_t::RD_KAFKA_TIMESTAMP_NOT_AVAILABLE;
    // SAFETY: `m` is a live message.
    let timestamp = unsafe { rdsys::rd_kafka_message_timestamp(m, &mut kind) };
    StreamRecord {
        partition: m.partition as u32,
        offset: m.offset as u64,
        timestamp: timestamp.max(0),
        key: bytes(m.key, m.key_len),
        value: bytes(m.payload, m.len).unwrap_or_default(),
        headers,
    }
}

/// A consumer error carried by a message, with librdkafka's explanation.
fn message_error(m: &rdsys::rd_kafka_message_t) -> StreamError {
    // SAFETY: `m` is a live error message; the string is NUL-terminated and lives as long.
    let text = unsafe { CStr::from_ptr(rdsys::rd_kafka_message_errstr(m)) }.to_string_lossy();
    StreamError::Unavailable(format!(
        "reading from Kafka: {text} ({})",
        RDKafkaErrorCode::from(m.err)
    ))
}

#[async_trait]
impl StreamReader for KafkaReader {
    async fn poll(
        &mut self,
        max: usize,
        timeout: Duration,
    ) -> Result<Vec<StreamRecord>, StreamError> {
        let queue = &self.queue;
        on_this_thread(|| queue.read(max.max(1), timeout))
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
