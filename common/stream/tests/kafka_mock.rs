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
