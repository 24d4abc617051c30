//! The stream conformance suite on Kafka, against rdkafka's mock cluster (real Kafka protocol
//! on 127.0.0.1 ports, inside this process).

#![cfg(feature = "kafka")]
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use async_trait::async_trait;
use rdkafka::mocking::MockCluster;

use eddy_stream::conformance::{self, Topics};
use eddy_stream::{KafkaStream, StreamError, StreamSink, StreamSource};

struct MockTopics<'a>(&'a MockCluster<'static, rdkafka::producer::DefaultProducerContext>);

#[async_trait(?Send)]
impl Topics for MockTopics<'_> {
    async fn create(&self, topic: &str, partitions: u32) -> Result<(), StreamError> {
        self.0
            .create_topic(topic, partitions as i32, 1)
            .map_err(|e| StreamError::Unavailable(e.to_string()))
    }
    fn refuses_duplicates(&self) -> bool {
        false
    }
}

fn stream(
    cluster: &MockCluster<'static, rdkafka::producer::DefaultProducerContext>,
) -> KafkaStream {
    KafkaStream::new(BTreeMap::from([(
        "bootstrap.servers".to_string(),
        cluster.bootstrap_servers(),
    )]))
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_on_the_mock_cluster() {
    let cluster = MockCluster::new(1).unwrap();
    let kafka = stream(&cluster);
    conformance::run_all(&kafka, &MockTopics(&cluster), "mock").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_are_named() {
    assert!(matches!(
        KafkaStream::new(BTreeMap::new()),
        Err(StreamError::Invalid(m)) if m.contains("bootstrap.servers")
    ));
    assert!(matches!(
        KafkaStream::new(BTreeMap::from([
            ("bootstrap.servers".to_string(), "127.0.0.1:9".to_string()),
            ("no.such.setting".to_string(), "1".to_string()),
        ])),
        Err(StreamError::Invalid(m)) if m.contains("no.such.setting")
    ));
    let cluster = MockCluster::new(1).unwrap();
    let kafka = stream(&cluster);
    cluster.create_topic("t", 2, 1).unwrap();
    let offsets = kafka.offsets("t").await.unwrap();
    assert_eq!(offsets, BTreeMap::from([(0, (0, 0)), (1, (0, 0))]));
    // The Java client's settings are dropped, not refused.
    KafkaStream::new(BTreeMap::from([
        ("bootstrap.servers".to_string(), cluster.bootstrap_servers()),
        ("key.deserializer".to_string(), "x".to_string()),
    ]))
    .unwrap();
    let _ = kafka.produce("t", vec![]).await.unwrap();
}

/// What a record carries besides its value (key, producer timestamp, headers with and without
/// values, an empty payload) comes through the reader as the producer sent it, and a poll
/// hands over at most `max` records, without waiting for more once some arrived.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reader_keeps_keys_timestamps_and_headers() {
    use rdkafka::message::{Header, OwnedHeaders};
    use rdkafka::producer::{FutureProducer, FutureRecord};
    use std::time::{Duration, Instant};

    let cluster = MockCluster::new(1).unwrap();
    cluster.create_topic("h", 1, 1).unwrap();
    let producer: FutureProducer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", cluster.bootstrap_servers())
        .create()
        .unwrap();
    let headers = OwnedHeaders::new()
        .insert(Header {
            key: "trace",
            value: Some(&b"abc"[..]),
        })
        .insert(Header::<&[u8]> {
            key: "flag",
            value: None,
        });
    producer
        .send(
            FutureRecord::to("h")
                .key(&b"party-1"[..])
                .payload(&b"{\"a\":1}"[..])
                .timestamp(1_700_000_000_123)
                .headers(headers),
            Duration::from_secs(10),
        )
        .await
        .unwrap();
    producer
        .send(
            FutureRecord::<[u8], [u8]>::to("h").timestamp(1_700_000_000_456),
            Duration::from_secs(10),
        )
        .await
        .unwrap();
    for i in 0..40 {
        let v = format!("{i}");
        producer
            .send(
                FutureRecord::<[u8], [u8]>::to("h").payload(v.as_bytes()),
                Duration::from_secs(10),
            )
            .await
            .unwrap();
    }

    let kafka = stream(&cluster);
    let got = conformance::read_n(
        &kafka,
        "h",
        &BTreeMap::from([(0, 0)]),
        2,
        Duration::from_secs(20),
    )
    .await;
    let (first, second) = (&got[0], &got[1]);
    assert_eq!((first.partition, first.offset), (0, 0));
    assert_eq!(first.key.as_deref(), Some(&b"party-1"[..]));
    assert_eq!(first.value, b"{\"a\":1}");
    assert_eq!(first.timestamp, 1_700_000_000_123);
    assert_eq!(
        first.headers,
        vec![
            ("trace".to_string(), Some(b"abc".to_vec())),
            ("flag".to_string(), None)
        ]
    );
    assert_eq!(second.offset, 1);
    assert_eq!(second.key, None);
    assert!(second.value.is_empty());
    assert_eq!(second.timestamp, 1_700_000_000_456);
    assert!(second.headers.is_empty());

    // 42 records are there: a poll for 10 gives 10, the next ones continue in order, and a
    // poll once all are read waits its timeout and gives none.
    let mut reader = kafka.reader("h", &BTreeMap::from([(0, 0)])).await.unwrap();
    let mut offsets = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while offsets.len() < 42 && Instant::now() < deadline {
        let batch = reader.poll(10, Duration::from_millis(500)).await.unwrap();
        assert!(batch.len() <= 10, "a poll for 10 gave {}", batch.len());
        offsets.extend(batch.iter().map(|r| r.offset));
    }
    assert_eq!(offsets, (0..42).collect::<Vec<u64>>());
    let began = Instant::now();
    assert!(
        reader
            .poll(10, Duration::from_millis(300))
            .await
            .unwrap()
            .is_empty()
    );
    assert!(began.elapsed() >= Duration::from_millis(250));
}
