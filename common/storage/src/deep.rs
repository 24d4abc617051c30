//! Deep storage: where published segments live, over any `object_store` backend. Configured by
//! URI: `file:///abs/dir`, `memory://`, `s3://bucket/prefix` (credentials and region from the
//! standard AWS environment variables), `gs://bucket/prefix` (GOOGLE_* variables).

use std::path::Path as FsPath;
use std::sync::Arc;

use futures::StreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload, WriteMultipart};
use tokio::io::AsyncWriteExt;

use crate::error::StorageError;

/// Files larger than this are uploaded in parts.
const MULTIPART_THRESHOLD: u64 = 16 << 20;
const PART_SIZE: usize = 8 << 20;

#[derive(Clone, Debug)]
pub struct DeepStorage {
    store: Arc<dyn ObjectStore>,
    prefix: Path,
    uri: String,
    /// For `file://` storage: its directory, so files can be hard-linked instead of copied.
    local_root: Option<std::path::PathBuf>,
}

/// What an upload stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Uploaded {
    pub size: u64,
    pub crc32: u32,
}

impl DeepStorage {
    /// Wraps an object store directly (tests decorate it, e.g. to inject failures).
    pub fn new(store: Arc<dyn ObjectStore>, prefix: &str, uri: &str) -> Self {
        DeepStorage {
            store,
            prefix: Path::from(prefix),
            uri: uri.to_string(),
            local_root: None,
        }
    }

    pub fn from_uri(uri: &str) -> Result<Self, StorageError> {
        let bad =
            |reason: &str| StorageError::Config(format!("deep storage uri {uri:?}: {reason}"));
        let (scheme, rest) = uri
            .split_once("://")
            .ok_or_else(|| bad("expected scheme://..., like file:///var/lib/eddy/deep"))?;
        match scheme {
            "file" => {
                if !rest.starts_with('/') {
                    return Err(bad(
                        "a file uri needs an absolute path, like file:///var/lib/eddy/deep",
                    ));
                }
                std::fs::create_dir_all(rest)
                    .map_err(|e| bad(&format!("cannot create {rest}: {e}")))?;
                let local = object_store::local::LocalFileSystem::new_with_prefix(rest)
                    .map_err(|e| bad(&e.to_string()))?;
                let mut deep = DeepStorage::new(Arc::new(local), "", uri);
                deep.local_root = Some(std::path::PathBuf::from(rest));
                Ok(deep)
            }
            "memory" => Ok(DeepStorage::new(
                Arc::new(object_store::memory::InMemory::new()),
                "",
                uri,
            )),
            "s3" | "s3a" => {
                let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
                let s3 = object_store::aws::AmazonS3Builder::from_env()
                    .with_bucket_name(bucket)
                    .build()
                    .map_err(|e| bad(&e.to_string()))?;
                Ok(DeepStorage::new(Arc::new(s3), prefix, uri))
            }
            "gs" => {
                let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
                let gcs = object_store::gcp::GoogleCloudStorageBuilder::from_env()
                    .with_bucket_name(bucket)
                    .build()
                    .map_err(|e| bad(&e.to_string()))?;
                Ok(DeepStorage::new(Arc::new(gcs), prefix, uri))
            }
            other => Err(bad(&format!(
                "unknown scheme {other:?}: use file, memory, s3 or gs"
            ))),
        }
    }

    pub fn uri(&self) -> &str {
        &self.uri
    }

    fn location(&self, key: &str) -> Path {
        if self.prefix.as_ref().is_empty() {
            Path::from(key)
        } else {
            Path::from(format!("{}/{key}", self.prefix))
        }
    }

    /// Links `from` to `to` on a local disk (no copy); false when they are on different devices
    /// or links are not possible.
    async fn try_link(from: &FsPath, to: &FsPath) -> bool {
        if let Some(parent) = to.parent()
            && tokio::fs::create_dir_all(parent).await.is_err()
        {
            return false;
        }
        let _ = tokio::fs::remove_file(to).await;
        tokio::fs::hard_link(from, to).await.is_ok()
    }

    async fn crc_of(file: &FsPath) -> Result<Uploaded, StorageError> {
        let path = file.to_path_buf();
        tokio::task::spawn_blocking(move || -> std::io::Result<Uploaded> {
            use std::io::Read;
            let mut f = std::fs::File::open(&path)?;
            let mut hasher = crc32fast::Hasher::new();
            let mut buf = vec![0u8; 1 << 20];
            let mut size = 0u64;
            loop {
                let n = f.read(&mut buf)?;
                if n == 0 {
                    break;
                }
                hasher.update(&buf[..n]);
                size += n as u64;
            }
            Ok(Uploaded {
                size,
                crc32: hasher.finalize(),
            })
        })
        .await
        .map_err(|e| StorageError::Config(e.to_string()))?
        .map_err(|e| StorageError::io(file, e))
    }

    /// Uploads a local file to `key`, returning its size and CRC-32. On `file://` storage on
    /// the same disk the file is hard-linked rather than copied; callers hand the file over
    /// (they must not change it afterwards).
    pub async fn upload(&self, key: &str, file: &FsPath) -> Result<Uploaded, StorageError> {
        if let Some(root) = &self.local_root
            && Self::try_link(file, &root.join(key)).await
        {
            return Self::crc_of(file).await;
        }
        let location = self.location(key);
        let len = tokio::fs::metadata(file)
            .await
            .map_err(|e| StorageError::io(file, e))?
            .len();
        if len <= MULTIPART_THRESHOLD {
            let bytes = tokio::fs::read(file)
                .await
                .map_err(|e| StorageError::io(file, e))?;
            let crc32 = crc32fast::hash(&bytes);
            self.store
                .put(&location, PutPayload::from(bytes))
                .await
                .map_err(|e| StorageError::store(key, e))?;
            return Ok(Uploaded { size: len, crc32 });
        }
        let upload = self
            .store
            .put_multipart(&location)
            .await
            .map_err(|e| StorageError::store(key, e))?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, PART_SIZE);
        let mut hasher = crc32fast::Hasher::new();
        let mut f = tokio::fs::File::open(file)
            .await
            .map_err(|e| StorageError::io(file, e))?;
        let mut buf = vec![0u8; PART_SIZE];
        loop {
            use tokio::io::AsyncReadExt;
            let n = f
                .read(&mut buf)
                .await
                .map_err(|e| StorageError::io(file, e))?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            writer
                .wait_for_capacity(4)
                .await
                .map_err(|e| StorageError::store(key, e))?;
            writer.write(&buf[..n]);
        }
        writer
            .finish()
            .await
            .map_err(|e| StorageError::store(key, e))?;
        Ok(Uploaded {
            size: len,
            crc32: hasher.finalize(),
        })
    }

    /// Downloads `key` to `dest`, returning the CRC-32 of what was written. Always a copy: the
    /// cache must not share files with deep storage.
    pub async fn download(&self, key: &str, dest: &FsPath) -> Result<Uploaded, StorageError> {
        let result = self
            .store
            .get(&self.location(key))
            .await
            .map_err(|e| StorageError::store(key, e))?;
        let mut stream = result.into_stream();
        let mut out = tokio::fs::File::create(dest)
            .await
            .map_err(|e| StorageError::io(dest, e))?;
        let mut hasher = crc32fast::Hasher::new();
        let mut size = 0u64;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| StorageError::store(key, e))?;
            hasher.update(&chunk);
            size += chunk.len() as u64;
            out.write_all(&chunk)
                .await
                .map_err(|e| StorageError::io(dest, e))?;
        }
        out.sync_all()
            .await
            .map_err(|e| StorageError::io(dest, e))?;
        Ok(Uploaded {
            size,
            crc32: hasher.finalize(),
        })
    }

    pub async fn exists(&self, key: &str) -> Result<bool, StorageError> {
        match self.store.head(&self.location(key)).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(StorageError::store(key, e)),
        }
    }

    pub async fn delete(&self, key: &str) -> Result<(), StorageError> {
        match self.store.delete(&self.location(key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(StorageError::store(key, e)),
        }
    }
}
