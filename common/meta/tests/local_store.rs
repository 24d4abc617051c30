//! The embedded store passes the shared conformance suite and keeps every acknowledged write
//! across restarts, torn writes and snapshots.

// Test code: a failed unwrap is a failed assertion.
#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::sync::Arc;

use eddy_meta::conformance::{run_all, segment};
use eddy_meta::{Command, LocalMetadataStore, MetadataStore};

#[tokio::test]
async fn conformance() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(LocalMetadataStore::open(dir.path()).unwrap());
    run_all(&store).await;
}

#[tokio::test]
async fn state_survives_reopen_and_torn_tail() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Arc::new(LocalMetadataStore::open(dir.path()).unwrap());
        for day in 0..5 {
            store
                .apply(Command::PublishSegments {
                    segments: vec![segment("ds", day, "v1", 0)],
                })
                .await
                .unwrap();
        }
    }
    // A crash in the middle of the next write leaves half a record.
    let mut log = std::fs::OpenOptions::new()
        .append(true)
        .open(dir.path().join("meta.log"))
        .unwrap();
    log.write_all(&[200, 0, 0, 0, 1, 2, 3]).unwrap();
    drop(log);
    let store = Arc::new(LocalMetadataStore::open(dir.path()).unwrap());
    assert_eq!(store.state().used_segments().count(), 5);
    assert_eq!(store.state().applied, 5);
    store
        .apply(Command::PublishSegments {
            segments: vec![segment("ds", 9, "v1", 0)],
        })
        .await
        .unwrap();
    drop(store);
    let store = Arc::new(LocalMetadataStore::open(dir.path()).unwrap());
    assert_eq!(store.state().used_segments().count(), 6);
}

#[tokio::test]
async fn snapshots_keep_everything() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Arc::new(LocalMetadataStore::open(dir.path()).unwrap());
        for day in 0..1_205 {
            store
                .apply(Command::PublishSegments {
                    segments: vec![segment("ds", day, "v1", 0)],
                })
                .await
                .unwrap();
        }
    }
    assert!(dir.path().join("meta.snapshot").exists());
    let store = Arc::new(LocalMetadataStore::open(dir.path()).unwrap());
    assert_eq!(store.state().used_segments().count(), 1_205);
    assert_eq!(store.state().applied, 1_205);
}
