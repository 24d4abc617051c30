//! Upload, download and cache verification on the file and memory backends.

// Test code: a failed unwrap is a failed assertion.
#![allow(clippy::unwrap_used)]

use eddy_storage::{DeepStorage, SegmentCache, StorageError};
use eddy_types::{DataSourceName, Interval, SegmentId};

fn id() -> SegmentId {
    SegmentId {
        datasource: DataSourceName::new("d").unwrap(),
        interval: Interval::parse("2020-01-01/P1D").unwrap(),
        version: "v1".into(),
        partition: 0,
    }
}

async fn round_trip(deep: DeepStorage, size: usize) {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("segment.bin");
    let data: Vec<u8> = (0..size).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(&src, &data).unwrap();
    let key = id().storage_path() + "/segment.eddy";
    let up = deep.upload(&key, &src).await.unwrap();
    assert_eq!(up.size, size as u64);
    assert_eq!(up.crc32, crc32fast::hash(&data));
    assert!(deep.exists(&key).await.unwrap());
    let cache = SegmentCache::open(&dir.path().join("cache")).unwrap();
    let path = cache.fetch(&deep, &id(), &key, up.crc32).await.unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), data);
    // A second fetch reuses the verified copy; a damaged copy is downloaded again.
    std::fs::write(&path, b"damaged").unwrap();
    let again = cache.fetch(&deep, &id(), &key, up.crc32).await.unwrap();
    assert_eq!(std::fs::read(&again).unwrap(), data);
    // A wrong expected checksum is refused and leaves nothing behind.
    cache.remove(&id()).await;
    let err = cache
        .fetch(&deep, &id(), &key, up.crc32 ^ 1)
        .await
        .unwrap_err();
    assert!(matches!(err, StorageError::Checksum { .. }), "{err}");
    assert!(!cache.path_of(&id()).exists());
    deep.delete(&key).await.unwrap();
    assert!(!deep.exists(&key).await.unwrap());
}

#[tokio::test]
async fn file_backend() {
    let root = tempfile::tempdir().unwrap();
    let uri = format!("file://{}", root.path().join("deep").display());
    round_trip(DeepStorage::from_uri(&uri).unwrap(), 100_000).await;
    round_trip(DeepStorage::from_uri(&uri).unwrap(), 20 << 20).await;
}

#[tokio::test]
async fn memory_backend() {
    round_trip(DeepStorage::from_uri("memory://").unwrap(), 1000).await;
}

#[test]
fn bad_uris_are_explained() {
    for uri in ["nope", "ftp://x", "file://relative/path"] {
        let e = DeepStorage::from_uri(uri).unwrap_err().to_string();
        assert!(e.contains(uri), "{e}");
    }
}
