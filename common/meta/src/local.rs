//! The embedded metadata store: one writer, an append-only log of commands fsynced before a
//! write is acknowledged, and periodic snapshots. It survives kill -9: a torn last record is
//! cut off on open, and a snapshot never double-applies (records carry sequence numbers).
//!
//! Files in the directory: `meta.snapshot` (JSON state) and `meta.log` (records of
//! `u32 len, u32 crc32, JSON {seq, cmd}`).

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::error::MetaError;
use crate::state::{Command, MetaState, Outcome};
use crate::store::MetadataStore;

/// Records in the log before a snapshot is taken.
const SNAPSHOT_EVERY: usize = 1000;

#[derive(Serialize, Deserialize)]
struct Record {
    seq: u64,
    cmd: Command,
}

struct Log {
    file: File,
    records: usize,
}

pub struct LocalMetadataStore {
    dir: PathBuf,
    log: Mutex<Log>,
    state: RwLock<Arc<MetaState>>,
    version: watch::Sender<u64>,
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> MetaError + '_ {
    move |source| MetaError::Io {
        path: path.display().to_string(),
        source,
    }
}

fn fsync_dir(dir: &Path) -> Result<(), MetaError> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(io(dir))
}

impl LocalMetadataStore {
    /// Opens (or creates) the store in `dir`, replaying the log.
    pub fn open(dir: &Path) -> Result<Self, MetaError> {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let snap_path = dir.join("meta.snapshot");
        let mut state: MetaState = match std::fs::read(&snap_path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| MetaError::Corrupt {
                path: snap_path.display().to_string(),
                reason: e.to_string(),
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => MetaState::default(),
            Err(e) => return Err(io(&snap_path)(e)),
        };
        let log_path = dir.join("meta.log");
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&log_path)
            .map_err(io(&log_path))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).map_err(io(&log_path))?;
        let mut pos = 0usize;
        let mut records = 0usize;
        let mut good_end = 0usize;
        while pos + 8 <= bytes.len() {
            let len = u32::from_le_bytes(bytes[pos..pos + 4].try_into().unwrap_or([0; 4])) as usize;
            let crc = u32::from_le_bytes(bytes[pos + 4..pos + 8].try_into().unwrap_or([0; 4]));
            let Some(payload) = bytes.get(pos + 8..pos + 8 + len) else {
                break;
            };
            if crc32fast::hash(payload) != crc {
                break;
            }
            let Ok(rec) = serde_json::from_slice::<Record>(payload) else {
                break;
            };
            if rec.seq > state.applied {
                if rec.seq != state.applied + 1 {
                    return Err(MetaError::Corrupt {
                        path: log_path.display().to_string(),
                        reason: format!("record {} follows {}", rec.seq, state.applied),
                    });
                }
                state.apply(&rec.cmd).map_err(|e| MetaError::Corrupt {
                    path: log_path.display().to_string(),
                    reason: format!("record {} does not apply: {e}", rec.seq),
                })?;
            }
            pos += 8 + len;
            good_end = pos;
            records += 1;
        }
        if good_end < bytes.len() {
            tracing::warn!(path = %log_path.display(), kept = good_end, dropped = bytes.len() - good_end, "cutting off a torn tail of the metadata log");
            file.set_len(good_end as u64).map_err(io(&log_path))?;
            file.sync_all().map_err(io(&log_path))?;
        }
        file.seek(SeekFrom::End(0)).map_err(io(&log_path))?;
        let (version, _) = watch::channel(state.applied);
        Ok(LocalMetadataStore {
            dir: dir.to_path_buf(),
            log: Mutex::new(Log { file, records }),
            state: RwLock::new(Arc::new(state)),
            version,
        })
    }

    fn apply_blocking(&self, cmd: Command) -> Result<Outcome, MetaError> {
        let mut log = self
            .log
            .lock()
            .map_err(|_| MetaError::Unavailable("metadata log lock poisoned".into()))?;
        let current = self.state();
        let mut next = (*current).clone();
        let outcome = next.apply(&cmd)?;
        let payload = serde_json::to_vec(&Record {
            seq: next.applied,
            cmd,
        })
        .map_err(|e| MetaError::Unavailable(format!("cannot encode a command: {e}")))?;
        let mut rec = Vec::with_capacity(payload.len() + 8);
        rec.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        rec.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
        rec.extend_from_slice(&payload);
        let log_path = self.dir.join("meta.log");
        log.file.write_all(&rec).map_err(io(&log_path))?;
        log.file.sync_data().map_err(io(&log_path))?;
        log.records += 1;
        let applied = next.applied;
        let next = Arc::new(next);
        *self
            .state
            .write()
            .map_err(|_| MetaError::Unavailable("metadata state lock poisoned".into()))? =
            next.clone();
        if log.records >= SNAPSHOT_EVERY {
            self.snapshot(&mut log, &next)?;
        }
        self.version.send_replace(applied);
        Ok(outcome)
    }

    /// Writes the state to `meta.snapshot` atomically and starts an empty log.
    fn snapshot(&self, log: &mut Log, state: &MetaState) -> Result<(), MetaError> {
        let tmp = self.dir.join("meta.snapshot.tmp");
        let bytes = serde_json::to_vec(state).map_err(|e| MetaError::Unavailable(e.to_string()))?;
        let mut f = File::create(&tmp).map_err(io(&tmp))?;
        f.write_all(&bytes).map_err(io(&tmp))?;
        f.sync_all().map_err(io(&tmp))?;
        let snap = self.dir.join("meta.snapshot");
        std::fs::rename(&tmp, &snap).map_err(io(&snap))?;
        fsync_dir(&self.dir)?;
        // Records up to the snapshot's sequence are skipped on replay, so truncating late is safe.
        let log_path = self.dir.join("meta.log");
        log.file.set_len(0).map_err(io(&log_path))?;
        log.file.seek(SeekFrom::Start(0)).map_err(io(&log_path))?;
        log.file.sync_all().map_err(io(&log_path))?;
        log.records = 0;
        Ok(())
    }
}

#[async_trait]
impl MetadataStore for Arc<LocalMetadataStore> {
    async fn apply(&self, cmd: Command) -> Result<Outcome, MetaError> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || this.apply_blocking(cmd))
            .await
            .map_err(|e| MetaError::Unavailable(format!("metadata writer stopped: {e}")))?
    }

    fn state(&self) -> Arc<MetaState> {
        LocalMetadataStore::state(self)
    }

    fn watch(&self) -> watch::Receiver<u64> {
        self.version.subscribe()
    }
}

impl LocalMetadataStore {
    pub fn state(&self) -> Arc<MetaState> {
        self.state.read().map(|s| s.clone()).unwrap_or_default()
    }
}
