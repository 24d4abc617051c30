//! The historical's local segment cache: segments downloaded from deep storage, verified, and
//! kept on disk by id. A download goes to a temporary file, is checked against the published
//! CRC-32, fsynced and renamed, so the cache never holds a partial segment under its real name.

use std::path::{Path, PathBuf};

use eddy_types::SegmentId;

use crate::deep::DeepStorage;
use crate::error::StorageError;

#[derive(Debug, Clone)]
pub struct SegmentCache {
    dir: PathBuf,
}

impl SegmentCache {
    pub fn open(dir: &Path) -> Result<Self, StorageError> {
        std::fs::create_dir_all(dir).map_err(|e| StorageError::io(dir, e))?;
        // Leftovers of interrupted downloads.
        if let Ok(entries) = std::fs::read_dir(dir) {
            for e in entries.flatten() {
                if e.path().extension().is_some_and(|x| x == "tmp") {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
        Ok(SegmentCache {
            dir: dir.to_path_buf(),
        })
    }

    pub fn path_of(&self, id: &SegmentId) -> PathBuf {
        let name = id.storage_path().replace('/', "__");
        self.dir.join(format!("{name}.seg"))
    }

    /// Makes sure the segment is in the cache with the expected checksum; returns its path.
    pub async fn fetch(
        &self,
        deep: &DeepStorage,
        id: &SegmentId,
        key: &str,
        crc32: u32,
    ) -> Result<PathBuf, StorageError> {
        let path = self.path_of(id);
        if tokio::fs::try_exists(&path).await.unwrap_or(false) {
            let p = path.clone();
            let existing =
                tokio::task::spawn_blocking(move || std::fs::read(&p).map(|b| crc32fast::hash(&b)))
                    .await
                    .map_err(|e| StorageError::Config(e.to_string()))?;
            match existing {
                Ok(c) if c == crc32 => return Ok(path),
                _ => {
                    tracing::warn!(segment = %id, "cached copy does not match its checksum; downloading again");
                    let _ = tokio::fs::remove_file(&path).await;
                }
            }
        }
        let tmp = path.with_extension("tmp");
        let got = deep.download(key, &tmp).await?;
        if got.crc32 != crc32 {
            let _ = tokio::fs::remove_file(&tmp).await;
            return Err(StorageError::Checksum {
                key: key.to_string(),
                expected: crc32,
                actual: got.crc32,
            });
        }
        tokio::fs::rename(&tmp, &path)
            .await
            .map_err(|e| StorageError::io(&path, e))?;
        Ok(path)
    }

    pub async fn remove(&self, id: &SegmentId) {
        let _ = tokio::fs::remove_file(self.path_of(id)).await;
    }

    /// Segment files present in the cache.
    pub fn cached_files(&self) -> Vec<PathBuf> {
        std::fs::read_dir(&self.dir)
            .map(|rd| {
                rd.flatten()
                    .map(|e| e.path())
                    .filter(|p| p.extension().is_some_and(|x| x == "seg"))
                    .collect()
            })
            .unwrap_or_default()
    }
}
