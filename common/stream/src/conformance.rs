//! The behaviour every stream implementation must show, run against the embedded log and Kafka.
//! Each check takes a fresh topic name and the implementation as source and sink.

// Test code: a failed unwrap is a failed assertion.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use async_trait::async_trait;

use crate::{ProduceRecord, StreamError, StreamRecord, StreamSink, StreamSource};

/// How a test makes topics: through the sink, or through a test cluster's own API (rdkafka's
/// mock cluster has no CreateTopics).
#[async_trait(?Send)]
pub trait Topics {
    async fn create(&self, topic: &str, partitions: u32) -> Result<(), StreamError>;
    /// Whether creating an existing topic is refused (checked only when it is).
    fn refuses_duplicates(&self) -> bool {
        true
    }
}

/// Creates topics with [`StreamSink::create_topic`].
pub struct ViaSink<'a, S>(pub &'a S);

#[async_trait(?Send)]
impl<S: StreamSink> Topics for ViaSink<'_, S> {
    async fn create(&self, topic: &str, partitions: u32) -> Result<(), StreamError> {
        self.0.create_topic(topic, partitions).await
    }
}

fn record(key: Option<&str>, value: &str) -> ProduceRecord {
    ProduceRecord {
        key: key.map(|k| k.as_bytes().to_vec()),
        value: value.as_bytes().to_vec(),
        timestamp: None,
    }
}

/// Reads until `want` records arrived or `limit` passed.
pub async fn read_n(
    source: &dyn StreamSource,
    topic: &str,
    start: &BTreeMap<u32, u64>,
    want: usize,
    limit: Duration,
) -> Vec<StreamRecord> {
    let mut reader = source.reader(topic, start).await.unwrap();
    let deadline = Instant::now() + limit;
    let mut out = Vec::new();
    while out.len() < want && Instant::now() < deadline {
        out.extend(
            reader
                .poll(want - out.len(), Duration::from_millis(200))
                .await
                .unwrap(),
        );
    }
    out
}

fn from_zero(partitions: &[u32]) -> BTreeMap<u32, u64> {
    partitions.iter().map(|&p| (p, 0)).collect()
}

/// Produced records come back once each, in order within a partition, with the offsets the
/// acknowledgement gave; equal keys share a partition; offsets report the ends.
pub async fn produce_and_read_back<S: StreamSource + StreamSink>(
    s: &S,
    topics: &dyn Topics,
    topic: &str,
) {
    topics.create(topic, 3).await.unwrap();
    assert_eq!(s.partitions(topic).await.unwrap(), vec![0, 1, 2]);
    let records: Vec<ProduceRecord> = (0..300)
        .map(|i| record(Some(&format!("user-{}", i % 17)), &format!("event-{i}")))
        .collect();
    let acks = s.produce(topic, records.clone()).await.unwrap();
    assert_eq!(acks.len(), 300);
    let mut key_partition: BTreeMap<String, u32> = BTreeMap::new();
    for (i, (p, _)) in acks.iter().enumerate() {
        let key = format!("user-{}", i % 17);
        assert_eq!(
            *key_partition.entry(key).or_insert(*p),
            *p,
            "a key moved partitions"
        );
    }
    let offsets = s.offsets(topic).await.unwrap();
    for p in 0..3u32 {
        let produced = acks.iter().filter(|(q, _)| *q == p).count() as u64;
        let (earliest, next) = offsets[&p];
        assert_eq!(next - earliest, produced, "partition {p}");
    }
    let got = read_n(
        s,
        topic,
        &from_zero(&[0, 1, 2]),
        300,
        Duration::from_secs(20),
    )
    .await;
    assert_eq!(got.len(), 300, "every acknowledged record comes back once");
    let mut by_ack: BTreeMap<(u32, u64), &ProduceRecord> = BTreeMap::new();
    for (r, ack) in records.iter().zip(&acks) {
        by_ack.insert(*ack, r);
    }
    let mut last: BTreeMap<u32, u64> = BTreeMap::new();
    for r in &got {
        let sent = by_ack
            .get(&(r.partition, r.offset))
            .unwrap_or_else(|| panic!("unexpected record at {}/{}", r.partition, r.offset));
        assert_eq!(r.value, sent.value);
        assert_eq!(r.key, sent.key);
        if let Some(prev) = last.insert(r.partition, r.offset) {
            assert!(r.offset > prev, "offsets go up within a partition");
        }
    }
}

/// A reader starts exactly at the offsets it is given.
pub async fn read_from_offsets<S: StreamSource + StreamSink>(
    s: &S,
    topics: &dyn Topics,
    topic: &str,
) {
    topics.create(topic, 1).await.unwrap();
    let records: Vec<ProduceRecord> = (0..50).map(|i| record(None, &format!("v{i}"))).collect();
    let acks = s.produce(topic, records).await.unwrap();
    let first = acks[0].1;
    let start = BTreeMap::from([(0u32, first + 20)]);
    let got = read_n(s, topic, &start, 30, Duration::from_secs(20)).await;
    assert_eq!(got.len(), 30);
    assert_eq!(got[0].value, b"v20");
    assert_eq!(got[0].offset, first + 20);
    assert_eq!(got[29].value, b"v49");
    let end = BTreeMap::from([(0u32, first + 50)]);
    let none = read_n(s, topic, &end, 1, Duration::from_millis(500)).await;
    assert!(none.is_empty(), "nothing past the end");
}

/// A waiting poll wakes up when a record arrives, well before its timeout.
pub async fn poll_wakes_on_produce<S: StreamSource + StreamSink + Clone + 'static>(
    s: &S,
    topics: &dyn Topics,
    topic: &str,
) {
    topics.create(topic, 2).await.unwrap();
    let start = from_zero(&[0, 1]);
    let mut reader = s.reader(topic, &start).await.unwrap();
    let producer = s.clone();
    let name = topic.to_string();
    let task = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        producer
            .produce(&name, vec![record(Some("k"), "late")])
            .await
            .unwrap()
    });
    let began = Instant::now();
    let mut got = Vec::new();
    while got.is_empty() && began.elapsed() < Duration::from_secs(20) {
        got = reader.poll(10, Duration::from_secs(10)).await.unwrap();
    }
    task.await.unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].value, b"late");
    assert!(
        began.elapsed() < Duration::from_secs(8),
        "poll waited {:?} for a record produced after 300 ms",
        began.elapsed()
    );
}

/// Unknown topics are named in the error; creating a topic twice is refused.
pub async fn unknown_and_duplicate_topics<S: StreamSource + StreamSink>(
    s: &S,
    topics: &dyn Topics,
    topic: &str,
) {
    match s.partitions(topic).await {
        Err(StreamError::UnknownTopic(t)) => assert_eq!(t, topic),
        other => panic!("expected UnknownTopic, got {other:?}"),
    }
    topics.create(topic, 1).await.unwrap();
    if topics.refuses_duplicates() {
        assert!(matches!(
            topics.create(topic, 1).await,
            Err(StreamError::TopicExists(_))
        ));
    }
}

/// Batches handed over with `produce_ordered` one after another, durable later and in any
/// order of waiting, keep their order per key; concurrent plain produces all arrive.
pub async fn ordered_pipelining<S: StreamSource + StreamSink + Clone + 'static>(
    s: &S,
    topics: &dyn Topics,
    topic: &str,
) {
    topics.create(topic, 2).await.unwrap();
    let mut pending = Vec::new();
    for batch in 0..20 {
        let records = (0..5)
            .map(|i| record(Some("party"), &format!("{:03}", batch * 5 + i)))
            .collect();
        pending.push(s.produce_ordered(topic, records).await.unwrap());
    }
    // Waited for newest first: durability does not depend on the order of waiting.
    let mut acks = Vec::new();
    while let Some(d) = pending.pop() {
        acks.push(d.await.unwrap());
    }
    let offsets: Vec<u64> = acks.iter().rev().flatten().map(|(_, o)| *o).collect();
    assert!(offsets.windows(2).all(|w| w[0] < w[1]), "{offsets:?}");
    let concurrent = (0..10).map(|i| {
        let s = s.clone();
        let topic = topic.to_string();
        async move {
            s.produce(&topic, vec![record(Some("other"), &format!("c{i}"))])
                .await
        }
    });
    for r in futures::future::join_all(concurrent).await {
        r.unwrap();
    }
    let parts = s.partitions(topic).await.unwrap();
    let got = read_n(s, topic, &from_zero(&parts), 110, Duration::from_secs(20)).await;
    assert_eq!(got.len(), 110);
    let party: Vec<String> = got
        .iter()
        .filter(|r| r.key.as_deref() == Some(&b"party"[..]))
        .map(|r| String::from_utf8(r.value.clone()).unwrap())
        .collect();
    let want: Vec<String> = (0..100).map(|i| format!("{i:03}")).collect();
    assert_eq!(party, want);
}

/// Runs every check on fresh topics named after `prefix`.
pub async fn run_all<S: StreamSource + StreamSink + Clone + 'static>(
    s: &S,
    topics: &dyn Topics,
    prefix: &str,
) {
    produce_and_read_back(s, topics, &format!("{prefix}-roundtrip")).await;
    read_from_offsets(s, topics, &format!("{prefix}-offsets")).await;
    poll_wakes_on_produce(s, topics, &format!("{prefix}-wake")).await;
    unknown_and_duplicate_topics(s, topics, &format!("{prefix}-names")).await;
    ordered_pipelining(s, topics, &format!("{prefix}-ordered")).await;
}
