//! Streams: partitioned, offset-addressed logs of keyed records. [`StreamSource`] reads from
//! chosen offsets; [`StreamSink`] appends and acknowledges once a record is durable. The
//! embedded implementation ([`EmbeddedLog`]) keeps each partition in a file under the data
//! directory; Kafka implements the same traits. [`conformance`] is the behaviour both must show.

pub mod conformance;
pub mod embedded;
mod error;
#[cfg(feature = "kafka")]
pub mod kafka;

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;

pub use embedded::EmbeddedLog;
pub use error::StreamError;
#[cfg(feature = "kafka")]
pub use kafka::KafkaStream;

/// A record to append. Without a key, records are spread over partitions in turn.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProduceRecord {
    pub key: Option<Vec<u8>>,
    pub value: Vec<u8>,
    /// Milliseconds since the epoch; the time of appending when absent.
    pub timestamp: Option<i64>,
}

/// A record read back, with where it sits in the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamRecord {
    pub partition: u32,
    pub offset: u64,
    pub timestamp: i64,
    pub key: Option<Vec<u8>>,
    pub value: Vec<u8>,
    /// Kafka record headers (the embedded log keeps none).
    pub headers: Vec<(String, Option<Vec<u8>>)>,
}

/// Per partition, the first offset still stored and the offset the next record will get.
pub type OffsetRange = BTreeMap<u32, (u64, u64)>;

#[async_trait]
pub trait StreamSource: Send + Sync {
    /// Partitions of `topic`; [`StreamError::UnknownTopic`] when it does not exist.
    async fn partitions(&self, topic: &str) -> Result<Vec<u32>, StreamError>;
    /// Earliest and next offsets of every partition.
    async fn offsets(&self, topic: &str) -> Result<OffsetRange, StreamError>;
    /// A reader positioned at `start` (partition -> next offset to read).
    async fn reader(
        &self,
        topic: &str,
        start: &BTreeMap<u32, u64>,
    ) -> Result<Box<dyn StreamReader>, StreamError>;
}

#[async_trait]
pub trait StreamReader: Send {
    /// Up to `max` records in offset order per partition, waiting up to `timeout` for the
    /// first; an empty batch when nothing arrived.
    async fn poll(
        &mut self,
        max: usize,
        timeout: Duration,
    ) -> Result<Vec<StreamRecord>, StreamError>;
}

/// Resolves once the records of a [`StreamSink::produce_ordered`] call are durable, with each
/// one's (partition, offset).
pub type Durable = std::pin::Pin<
    Box<dyn std::future::Future<Output = Result<Vec<(u32, u64)>, StreamError>> + Send + 'static>,
>;

#[async_trait]
pub trait StreamSink: Send + Sync {
    /// Creates `topic` with `partitions` partitions; [`StreamError::TopicExists`] if it exists.
    async fn create_topic(&self, topic: &str, partitions: u32) -> Result<(), StreamError>;
    /// Appends `records` to `topic` and returns each one's (partition, offset) once all are
    /// durable. On error none of them was acknowledged (some may still have been stored).
    async fn produce(
        &self,
        topic: &str,
        records: Vec<ProduceRecord>,
    ) -> Result<Vec<(u32, u64)>, StreamError>;

    /// Appends `records` after everything an earlier call appended, and returns as soon as
    /// that order is fixed, with a future that resolves once they are durable. A producer can
    /// keep several batches in flight this way and still have each key's records in order.
    /// By default the records are durable when this returns.
    async fn produce_ordered(
        &self,
        topic: &str,
        records: Vec<ProduceRecord>,
    ) -> Result<Durable, StreamError> {
        let acks = self.produce(topic, records).await;
        Ok(Box::pin(std::future::ready(acks)))
    }
}

/// The partition a keyed record goes to (a stable hash of the key).
pub fn partition_for_key(key: &[u8], partitions: u32) -> u32 {
    (xxhash_rust::xxh3::xxh3_64(key) % u64::from(partitions.max(1))) as u32
}

/// Checks a topic name: 1-249 characters of `[A-Za-z0-9._-]`, not `.` or `..` (Kafka's rule).
pub fn check_topic_name(topic: &str) -> Result<(), StreamError> {
    let ok = !topic.is_empty()
        && topic.len() <= 249
        && topic != "."
        && topic != ".."
        && topic
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(StreamError::Invalid(format!(
            "topic name {topic:?} is not valid: use 1 to 249 characters of letters, digits, '.', '_' and '-'"
        )))
    }
}
