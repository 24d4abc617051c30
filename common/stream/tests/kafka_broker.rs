//! The stream conformance suite against a real Kafka-protocol broker process. Ignored by
//! default: scripts/kafka-e2e starts a broker on loopback and runs it with
//! `EDDY_TEST_KAFKA=127.0.0.1:PORT cargo test -p eddy-stream --test kafka_broker -- --ignored`.

#![cfg(feature = "kafka")]
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use eddy_stream::KafkaStream;
use eddy_stream::conformance::{self, ViaSink};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a broker: run by scripts/kafka-e2e"]
async fn conformance_on_a_real_broker() {
    let servers = std::env::var("EDDY_TEST_KAFKA").expect("EDDY_TEST_KAFKA=host:port");
    let kafka =
        KafkaStream::new(BTreeMap::from([("bootstrap.servers".to_string(), servers)])).unwrap();
    let prefix = format!("conf{}", std::process::id());
    conformance::run_all(&kafka, &ViaSink(&kafka), &prefix).await;
}
