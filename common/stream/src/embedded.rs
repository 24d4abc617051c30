//! The embedded stream: a durable, partitioned, offset-addressed log on local disk, for
//! `eddy standalone` when no Kafka is configured.
//!
//! Layout: `<root>/<topic>/partitions` holds the partition count; `<root>/<topic>/<p>.log` holds
//! partition `p` as a sequence of frames:
//!
//! ```text
//! len u32 | crc32 u32 | timestamp i64 | key_len i32 (-1: no key) | key | value
//! ```
//!
//! `len` counts the bytes after itself; the CRC covers everything after the CRC. A record's
//! offset is its position in the sequence. `produce` answers once an `fdatasync` covers the
//! batch, so an acknowledged record survives kill -9 and power loss; concurrent producers share
//! syncs (group commit, [`partition`]). Opening a partition checks every frame and cuts a torn
//! tail (a write the process died in the middle of, never acknowledged). Readers see durable
//! records only, find an offset through a sparse in-memory index, and wait for appends on a
//! watch channel ([`reader`]).

mod partition;
mod reader;

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use tokio::sync::watch;

use crate::{
    Durable, OffsetRange, ProduceRecord, StreamError, StreamReader, StreamSink, StreamSource,
    check_topic_name, partition_for_key,
};
use partition::{Partition, Ticket};
use reader::{Cursor, EmbeddedReader};

/// Largest record accepted (key plus value).
pub const MAX_RECORD_BYTES: usize = 16 << 20;
/// Partitions a topic may have.
const MAX_PARTITIONS: u32 = 1024;

struct Topic {
    partitions: Vec<Arc<Partition>>,
    /// Bumped after every durable append; readers wait on it.
    appended: Arc<watch::Sender<u64>>,
    /// Set (and readers woken) when the topic is deleted.
    deleted: Arc<AtomicBool>,
    round_robin: AtomicU32,
}

/// The embedded log. Cheap to clone; all clones share the open topics.
#[derive(Clone)]
pub struct EmbeddedLog {
    root: PathBuf,
    topics: Arc<Mutex<HashMap<String, Arc<Topic>>>>,
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn sync_dir(dir: &Path) -> Result<(), StreamError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| StreamError::io(dir, e))
}

impl EmbeddedLog {
    /// Opens (creating) the log under `root`. Topics open lazily.
    pub fn open(root: impl Into<PathBuf>) -> Result<EmbeddedLog, StreamError> {
        let root = root.into();
        std::fs::create_dir_all(&root).map_err(|e| StreamError::io(&root, e))?;
        Ok(EmbeddedLog {
            root,
            topics: Arc::new(Mutex::new(HashMap::new())),
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Names of the topics on disk, sorted.
    pub fn topics(&self) -> Result<Vec<String>, StreamError> {
        let mut out = Vec::new();
        let entries = std::fs::read_dir(&self.root).map_err(|e| StreamError::io(&self.root, e))?;
        for entry in entries.flatten() {
            if entry.path().join("partitions").exists()
                && let Some(name) = entry.file_name().to_str()
            {
                out.push(name.to_string());
            }
        }
        out.sort();
        Ok(out)
    }

    /// The open topic, opening it on the blocking pool the first time (that reads and checks
    /// every partition file).
    async fn open_topic(&self, name: &str) -> Result<Arc<Topic>, StreamError> {
        if let Some(t) = lock(&self.topics).get(name) {
            return Ok(t.clone());
        }
        let this = self.clone();
        let name = name.to_string();
        blocking(move || this.topic(&name)).await
    }

    fn topic(&self, name: &str) -> Result<Arc<Topic>, StreamError> {
        check_topic_name(name)?;
        if let Some(t) = lock(&self.topics).get(name) {
            return Ok(t.clone());
        }
        let dir = self.root.join(name);
        let count_path = dir.join("partitions");
        let text = match std::fs::read_to_string(&count_path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(StreamError::UnknownTopic(name.to_string()));
            }
            Err(e) => return Err(StreamError::io(&count_path, e)),
        };
        let n: u32 = text.trim().parse().map_err(|_| {
            StreamError::Invalid(format!(
                "{} should hold a partition count, found {text:?}",
                count_path.display()
            ))
        })?;
        let appended = Arc::new(watch::channel(0).0);
        let partitions = (0..n)
            .map(|p| Partition::open(dir.join(format!("{p}.log")), appended.clone()).map(Arc::new))
            .collect::<Result<Vec<_>, _>>()?;
        let total = partitions.iter().map(|p| p.snapshot().0).sum();
        appended.send_replace(total);
        let topic = Arc::new(Topic {
            partitions,
            appended,
            deleted: Arc::new(AtomicBool::new(false)),
            round_robin: AtomicU32::new(0),
        });
        let mut topics = lock(&self.topics);
        Ok(topics.entry(name.to_string()).or_insert(topic).clone())
    }

    fn create_blocking(&self, name: &str, partitions: u32) -> Result<(), StreamError> {
        check_topic_name(name)?;
        if partitions == 0 || partitions > MAX_PARTITIONS {
            return Err(StreamError::Invalid(format!(
                "partitions: a topic needs 1 to {MAX_PARTITIONS} partitions, got {partitions}"
            )));
        }
        let _guard = lock(&self.topics);
        let dir = self.root.join(name);
        let count_path = dir.join("partitions");
        if count_path.exists() {
            return Err(StreamError::TopicExists(name.to_string()));
        }
        std::fs::create_dir_all(&dir).map_err(|e| StreamError::io(&dir, e))?;
        for p in 0..partitions {
            let path = dir.join(format!("{p}.log"));
            File::create(&path)
                .and_then(|f| f.sync_all())
                .map_err(|e| StreamError::io(&path, e))?;
        }
        let tmp = dir.join("partitions.tmp");
        let mut f = File::create(&tmp).map_err(|e| StreamError::io(&tmp, e))?;
        f.write_all(format!("{partitions}\n").as_bytes())
            .and_then(|()| f.sync_all())
            .map_err(|e| StreamError::io(&tmp, e))?;
        std::fs::rename(&tmp, &count_path).map_err(|e| StreamError::io(&count_path, e))?;
        sync_dir(&dir)?;
        sync_dir(&self.root)?;
        tracing::info!(topic = name, partitions, "created embedded topic");
        Ok(())
    }

    /// Deletes a topic and its records. Readers already open keep what they have read; the
    /// topic's name is free for a new topic at once.
    pub async fn delete_topic(&self, name: &str) -> Result<(), StreamError> {
        check_topic_name(name)?;
        let this = self.clone();
        let name = name.to_string();
        blocking(move || {
            let mut topics = lock(&this.topics);
            let dir = this.root.join(&name);
            if !dir.join("partitions").exists() {
                return Err(StreamError::UnknownTopic(name));
            }
            if let Some(t) = topics.remove(&name) {
                t.deleted.store(true, Ordering::SeqCst);
                t.appended.send_modify(|_| {});
            }
            std::fs::remove_dir_all(&dir).map_err(|e| StreamError::io(&dir, e))?;
            sync_dir(&this.root)?;
            tracing::info!(topic = %name, "deleted embedded topic");
            Ok(())
        })
        .await
    }

    /// Creates `name` unless it exists (with any partition count).
    pub async fn ensure_topic(&self, name: &str, partitions: u32) -> Result<(), StreamError> {
        match self.create_topic(name, partitions).await {
            Ok(()) | Err(StreamError::TopicExists(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Writes the records (not yet durable) and returns, per partition, what to wait for. The
    /// writes go to the page cache and run inline, without a thread hop; the fsync, which does
    /// block, runs on the blocking pool.
    fn append(
        &self,
        topic: Arc<Topic>,
        records: &[ProduceRecord],
    ) -> Result<Appended, StreamError> {
        let n = topic.partitions.len() as u32;
        let mut by_partition: BTreeMap<u32, Vec<usize>> = BTreeMap::new();
        for (i, r) in records.iter().enumerate() {
            let size = r.value.len() + r.key.as_ref().map_or(0, Vec::len);
            if size > MAX_RECORD_BYTES {
                return Err(StreamError::Invalid(format!(
                    "record {i} is {size} bytes; the largest accepted is {MAX_RECORD_BYTES}"
                )));
            }
            let p = match &r.key {
                Some(k) => partition_for_key(k, n),
                None => topic.round_robin.fetch_add(1, Ordering::Relaxed) % n,
            };
            by_partition.entry(p).or_default().push(i);
        }
        let now = now_ms();
        let mut offsets = vec![(0u32, 0u64); records.len()];
        let mut tickets = Vec::with_capacity(by_partition.len());
        for (p, idx) in by_partition {
            let batch: Vec<&ProduceRecord> = idx.iter().map(|&i| &records[i]).collect();
            let ticket = topic.partitions[p as usize].append(&batch, now)?;
            for (k, &i) in idx.iter().enumerate() {
                offsets[i] = (p, ticket.first + k as u64);
            }
            tickets.push((p, ticket));
        }
        Ok(Appended {
            topic,
            tickets,
            offsets,
        })
    }
}

/// Records written and waiting to be durable.
struct Appended {
    topic: Arc<Topic>,
    tickets: Vec<(u32, Ticket)>,
    offsets: Vec<(u32, u64)>,
}

impl Appended {
    /// Waits until every partition synced them (readers are woken by the sync).
    async fn wait_durable(self) -> Result<Vec<(u32, u64)>, StreamError> {
        for (p, ticket) in &self.tickets {
            let partition = &self.topic.partitions[*p as usize];
            partition.request_sync();
            partition.wait_durable(*ticket).await?;
        }
        Ok(self.offsets)
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StreamError> + Send + 'static,
) -> Result<T, StreamError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| StreamError::Unavailable(format!("the stream thread stopped: {e}")))?
}

#[async_trait]
impl StreamSink for EmbeddedLog {
    async fn create_topic(&self, topic: &str, partitions: u32) -> Result<(), StreamError> {
        let this = self.clone();
        let name = topic.to_string();
        blocking(move || this.create_blocking(&name, partitions)).await
    }

    async fn produce(
        &self,
        topic: &str,
        records: Vec<ProduceRecord>,
    ) -> Result<Vec<(u32, u64)>, StreamError> {
        if records.is_empty() {
            self.topic(topic)?;
            return Ok(Vec::new());
        }
        let t = self.open_topic(topic).await?;
        self.append(t, &records)?.wait_durable().await
    }

    async fn produce_ordered(
        &self,
        topic: &str,
        records: Vec<ProduceRecord>,
    ) -> Result<Durable, StreamError> {
        let t = self.open_topic(topic).await?;
        let appended = self.append(t, &records)?;
        Ok(Box::pin(appended.wait_durable()))
    }
}

#[async_trait]
impl StreamSource for EmbeddedLog {
    async fn partitions(&self, topic: &str) -> Result<Vec<u32>, StreamError> {
        let t = self.topic(topic)?;
        Ok((0..t.partitions.len() as u32).collect())
    }

    async fn offsets(&self, topic: &str) -> Result<OffsetRange, StreamError> {
        let t = self.topic(topic)?;
        Ok(t.partitions
            .iter()
            .enumerate()
            .map(|(i, p)| (i as u32, (0, p.snapshot().0)))
            .collect())
    }

    async fn reader(
        &self,
        topic: &str,
        start: &BTreeMap<u32, u64>,
    ) -> Result<Box<dyn StreamReader>, StreamError> {
        let t = self.topic(topic)?;
        let mut cursors = Vec::with_capacity(start.len());
        for (&p, &offset) in start {
            let part = t
                .partitions
                .get(p as usize)
                .ok_or_else(|| StreamError::UnknownPartition {
                    topic: topic.to_string(),
                    partition: p,
                })?
                .clone();
            let next = part.snapshot().0;
            if offset > next {
                return Err(StreamError::OffsetOutOfRange {
                    topic: topic.to_string(),
                    partition: p,
                    offset,
                    earliest: 0,
                    next,
                });
            }
            let file = File::open(&part.path).map_err(|e| StreamError::io(&part.path, e))?;
            let position = part.position_of(&file, offset)?;
            cursors.push(Cursor {
                partition: p,
                part,
                file,
                offset,
                position,
            });
        }
        Ok(Box::new(EmbeddedReader {
            topic: topic.to_string(),
            appended: t.appended.subscribe(),
            deleted: t.deleted.clone(),
            cursors,
            next_cursor: 0,
            buf: Vec::new(),
        }))
    }
}
