//! The embedded log: the shared stream conformance suite, plus durability across reopening and
//! recovery from a torn tail.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::io::Write;
use std::time::Duration;

use eddy_stream::conformance::{self, read_n};
use eddy_stream::{EmbeddedLog, ProduceRecord, StreamError, StreamSink, StreamSource};

fn rec(value: &str) -> ProduceRecord {
    ProduceRecord {
        key: Some(b"k".to_vec()),
        value: value.as_bytes().to_vec(),
        timestamp: Some(1_700_000_000_000),
    }
}

#[tokio::test]
async fn conformance_suite() {
    let dir = tempfile::tempdir().unwrap();
    let log = EmbeddedLog::open(dir.path()).unwrap();
    conformance::run_all(&log, &conformance::ViaSink(&log), "t").await;
}

#[tokio::test]
async fn records_survive_reopening_and_a_torn_tail_is_cut() {
    let dir = tempfile::tempdir().unwrap();
    {
        let log = EmbeddedLog::open(dir.path()).unwrap();
        log.create_topic("clicks", 1).await.unwrap();
        let acks = log
            .produce("clicks", (0..100).map(|i| rec(&format!("e{i}"))).collect())
            .await
            .unwrap();
        assert_eq!(acks.last(), Some(&(0, 99)));
    }
    // A write that died half-way: a frame header promising more bytes than follow.
    let path = dir.path().join("clicks").join("0.log");
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    f.write_all(&[200, 0, 0, 0, 1, 2, 3]).unwrap();
    drop(f);
    let log = EmbeddedLog::open(dir.path()).unwrap();
    assert_eq!(log.topics().unwrap(), vec!["clicks".to_string()]);
    assert_eq!(log.offsets("clicks").await.unwrap()[&0], (0, 100));
    let acks = log.produce("clicks", vec![rec("after")]).await.unwrap();
    assert_eq!(acks, vec![(0, 100)]);
    let got = read_n(
        &log,
        "clicks",
        &BTreeMap::from([(0, 95)]),
        6,
        Duration::from_secs(5),
    )
    .await;
    let values: Vec<String> = got
        .iter()
        .map(|r| String::from_utf8(r.value.clone()).unwrap())
        .collect();
    assert_eq!(values, ["e95", "e96", "e97", "e98", "e99", "after"]);
    assert_eq!(got[0].timestamp, 1_700_000_000_000);
}

#[tokio::test]
async fn a_corrupt_frame_ends_the_partition_there() {
    let dir = tempfile::tempdir().unwrap();
    {
        let log = EmbeddedLog::open(dir.path()).unwrap();
        log.create_topic("t", 1).await.unwrap();
        log.produce("t", (0..10).map(|i| rec(&format!("v{i}"))).collect())
            .await
            .unwrap();
    }
    let path = dir.path().join("t").join("0.log");
    let mut bytes = std::fs::read(&path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&path, &bytes).unwrap();
    let log = EmbeddedLog::open(dir.path()).unwrap();
    assert_eq!(log.offsets("t").await.unwrap()[&0], (0, 9));
}

#[tokio::test]
async fn bad_requests_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let log = EmbeddedLog::open(dir.path()).unwrap();
    assert!(matches!(
        log.create_topic("a/b", 1).await,
        Err(StreamError::Invalid(m)) if m.contains("a/b")
    ));
    assert!(matches!(
        log.create_topic("zero", 0).await,
        Err(StreamError::Invalid(m)) if m.contains("partitions")
    ));
    log.create_topic("one", 1).await.unwrap();
    assert!(matches!(
        log.reader("one", &BTreeMap::from([(3, 0)])).await,
        Err(StreamError::UnknownPartition { partition: 3, .. })
    ));
    assert!(matches!(
        log.reader("one", &BTreeMap::from([(0, 5)])).await,
        Err(StreamError::OffsetOutOfRange {
            offset: 5,
            next: 0,
            ..
        })
    ));
    let huge = ProduceRecord {
        key: None,
        value: vec![0; eddy_stream::embedded::MAX_RECORD_BYTES + 1],
        timestamp: None,
    };
    assert!(matches!(
        log.produce("one", vec![huge]).await,
        Err(StreamError::Invalid(m)) if m.contains("bytes")
    ));
    assert!(matches!(
        log.produce("missing", vec![rec("x")]).await,
        Err(StreamError::UnknownTopic(_))
    ));
}

#[tokio::test]
async fn a_deleted_topic_ends_its_readers_after_what_they_can_still_read() {
    let dir = tempfile::tempdir().unwrap();
    let log = EmbeddedLog::open(dir.path()).unwrap();
    log.create_topic("gone", 1).await.unwrap();
    log.produce("gone", vec![rec("a"), rec("b")]).await.unwrap();
    let mut reader = log.reader("gone", &BTreeMap::from([(0, 0)])).await.unwrap();
    log.delete_topic("gone").await.unwrap();
    let read = reader.poll(10, Duration::from_millis(100)).await.unwrap();
    assert_eq!(read.len(), 2);
    let err = reader.poll(10, Duration::from_secs(5)).await.unwrap_err();
    assert!(
        matches!(err, StreamError::UnknownTopic(ref t) if t == "gone"),
        "{err}"
    );
    assert!(matches!(
        log.partitions("gone").await,
        Err(StreamError::UnknownTopic(_))
    ));
    assert!(matches!(
        log.delete_topic("gone").await,
        Err(StreamError::UnknownTopic(_))
    ));
    // The name is free again.
    log.create_topic("gone", 2).await.unwrap();
    assert_eq!(log.partitions("gone").await.unwrap(), vec![0, 1]);
}
