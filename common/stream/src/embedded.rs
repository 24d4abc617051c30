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
//! offset is its position in the sequence. `produce` writes a batch and `fdatasync`s before it
//! answers, so an acknowledged record survives kill -9 and power loss. Opening a partition
//! checks every frame and cuts a torn tail (a write the process died in the middle of, never
//! acknowledged). Readers find an offset through a sparse in-memory index (one position per
//! [`STRIDE`] records) and wait for appends on a watch channel.

use std::collections::{BTreeMap, HashMap};
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use tokio::sync::watch;

use crate::{
    OffsetRange, ProduceRecord, StreamError, StreamReader, StreamRecord, StreamSink, StreamSource,
    check_topic_name, partition_for_key,
};

/// Records between two entries of the sparse offset index.
const STRIDE: u64 = 64;
/// Bytes of a frame before the key.
const HEADER: usize = 4 + 4 + 8 + 4;
/// Largest record accepted (key plus value).
pub const MAX_RECORD_BYTES: usize = 16 << 20;
/// Partitions a topic may have.
const MAX_PARTITIONS: u32 = 1024;

/// Where a partition ends and where every `STRIDE`th record starts.
#[derive(Default)]
struct Extent {
    count: u64,
    end: u64,
    sparse: Vec<u64>,
}

struct Partition {
    path: PathBuf,
    writer: Mutex<File>,
    extent: RwLock<Extent>,
}

struct Topic {
    partitions: Vec<Arc<Partition>>,
    /// Bumped after every durable append; readers wait on it.
    appended: watch::Sender<u64>,
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

/// Scans a partition file, returning its extent and the length of its valid prefix.
fn recover(path: &Path) -> Result<Extent, StreamError> {
    let mut file = File::open(path).map_err(|e| StreamError::io(path, e))?;
    let mut data = Vec::new();
    file.read_to_end(&mut data)
        .map_err(|e| StreamError::io(path, e))?;
    let mut extent = Extent::default();
    let mut pos = 0usize;
    while let Some(len) = frame_len(&data[pos..]) {
        let frame = &data[pos..pos + 4 + len];
        let crc = u32::from_le_bytes([frame[4], frame[5], frame[6], frame[7]]);
        if crc32fast::hash(&frame[8..]) != crc {
            break;
        }
        if extent.count % STRIDE == 0 {
            extent.sparse.push(pos as u64);
        }
        extent.count += 1;
        pos += 4 + len;
    }
    extent.end = pos as u64;
    if pos < data.len() {
        tracing::warn!(path = %path.display(), kept = pos, dropped = data.len() - pos, "cutting a torn tail off a stream partition (an unacknowledged write)");
        let f = OpenOptions::new()
            .write(true)
            .open(path)
            .map_err(|e| StreamError::io(path, e))?;
        f.set_len(pos as u64)
            .and_then(|()| f.sync_all())
            .map_err(|e| StreamError::io(path, e))?;
    }
    Ok(extent)
}

/// The length after the length field of the complete frame starting `buf`, if it is complete.
fn frame_len(buf: &[u8]) -> Option<usize> {
    if buf.len() < HEADER {
        return None;
    }
    let len = u32::from_le_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
    (len >= HEADER - 4 && buf.len() >= 4 + len).then_some(len)
}

fn encode(out: &mut Vec<u8>, timestamp: i64, key: Option<&[u8]>, value: &[u8]) {
    let key_len = key.map_or(0, <[u8]>::len);
    let len = (HEADER - 4 + key_len + value.len()) as u32;
    out.extend_from_slice(&len.to_le_bytes());
    let crc_at = out.len();
    out.extend_from_slice(&[0; 4]);
    let body = out.len();
    out.extend_from_slice(&timestamp.to_le_bytes());
    out.extend_from_slice(&key.map_or(-1i32, |k| k.len() as i32).to_le_bytes());
    if let Some(k) = key {
        out.extend_from_slice(k);
    }
    out.extend_from_slice(value);
    let crc = crc32fast::hash(&out[body..]);
    out[crc_at..crc_at + 4].copy_from_slice(&crc.to_le_bytes());
}

fn decode(frame: &[u8], partition: u32, offset: u64) -> StreamRecord {
    let timestamp = i64::from_le_bytes(frame[8..16].try_into().unwrap_or([0; 8]));
    let key_len = i32::from_le_bytes(frame[16..20].try_into().unwrap_or([0; 4]));
    let (key, value_at) = if key_len < 0 {
        (None, HEADER)
    } else {
        let end = HEADER + key_len as usize;
        (Some(frame[HEADER..end].to_vec()), end)
    };
    StreamRecord {
        partition,
        offset,
        timestamp,
        key,
        value: frame[value_at..].to_vec(),
        headers: Vec::new(),
    }
}

fn sync_dir(dir: &Path) -> Result<(), StreamError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| StreamError::io(dir, e))
}

impl Partition {
    fn open(path: PathBuf) -> Result<Partition, StreamError> {
        if !path.exists() {
            File::create(&path)
                .and_then(|f| f.sync_all())
                .map_err(|e| StreamError::io(&path, e))?;
        }
        let extent = recover(&path)?;
        let writer = OpenOptions::new()
            .write(true)
            .open(&path)
            .map_err(|e| StreamError::io(&path, e))?;
        Ok(Partition {
            path,
            writer: Mutex::new(writer),
            extent: RwLock::new(extent),
        })
    }

    /// Appends records durably; returns the first offset.
    fn append(&self, records: &[&ProduceRecord], now: i64) -> Result<u64, StreamError> {
        let writer = lock(&self.writer);
        let (first, start) = {
            let e = self.extent.read().unwrap_or_else(|p| p.into_inner());
            (e.count, e.end)
        };
        let mut buf = Vec::new();
        let mut starts = Vec::with_capacity(records.len());
        for r in records {
            starts.push(start + buf.len() as u64);
            encode(
                &mut buf,
                r.timestamp.unwrap_or(now),
                r.key.as_deref(),
                &r.value,
            );
        }
        let written = writer
            .write_all_at(&buf, start)
            .and_then(|()| writer.sync_data());
        if let Err(e) = written {
            // Nothing past `end` counts; a later append overwrites the partial write.
            return Err(StreamError::io(&self.path, e));
        }
        let mut e = self.extent.write().unwrap_or_else(|p| p.into_inner());
        for (i, pos) in starts.into_iter().enumerate() {
            if (first + i as u64).is_multiple_of(STRIDE) {
                e.sparse.push(pos);
            }
        }
        e.count += records.len() as u64;
        e.end = start + buf.len() as u64;
        drop(writer);
        Ok(first)
    }

    fn snapshot(&self) -> (u64, u64) {
        let e = self.extent.read().unwrap_or_else(|p| p.into_inner());
        (e.count, e.end)
    }

    /// The byte position of `offset` (which must be ≤ count), found from the sparse index.
    fn position_of(&self, file: &File, offset: u64) -> Result<u64, StreamError> {
        let (mut pos, mut at, end) = {
            let e = self.extent.read().unwrap_or_else(|p| p.into_inner());
            if offset == e.count {
                return Ok(e.end);
            }
            let slot = (offset / STRIDE) as usize;
            (e.sparse[slot], slot as u64 * STRIDE, e.end)
        };
        let mut len_buf = [0u8; 4];
        while at < offset && pos < end {
            file.read_exact_at(&mut len_buf, pos)
                .map_err(|e| StreamError::io(&self.path, e))?;
            pos += 4 + u64::from(u32::from_le_bytes(len_buf));
            at += 1;
        }
        Ok(pos)
    }
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
        let partitions = (0..n)
            .map(|p| Partition::open(dir.join(format!("{p}.log"))).map(Arc::new))
            .collect::<Result<Vec<_>, _>>()?;
        let total = partitions.iter().map(|p| p.snapshot().0).sum();
        let topic = Arc::new(Topic {
            partitions,
            appended: watch::channel(total).0,
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
        tokio::task::spawn_blocking(move || {
            let mut topics = lock(&this.topics);
            let dir = this.root.join(&name);
            if !dir.join("partitions").exists() {
                return Err(StreamError::UnknownTopic(name));
            }
            topics.remove(&name);
            std::fs::remove_dir_all(&dir).map_err(|e| StreamError::io(&dir, e))?;
            sync_dir(&this.root)?;
            tracing::info!(topic = %name, "deleted embedded topic");
            Ok(())
        })
        .await
        .map_err(|e| StreamError::Unavailable(format!("the stream thread stopped: {e}")))?
    }

    /// Creates `name` unless it exists (with any partition count).
    pub async fn ensure_topic(&self, name: &str, partitions: u32) -> Result<(), StreamError> {
        match self.create_topic(name, partitions).await {
            Ok(()) | Err(StreamError::TopicExists(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    fn produce_blocking(
        &self,
        name: &str,
        records: &[ProduceRecord],
    ) -> Result<Vec<(u32, u64)>, StreamError> {
        let topic = self.topic(name)?;
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
        let mut out = vec![(0u32, 0u64); records.len()];
        for (p, idx) in by_partition {
            let batch: Vec<&ProduceRecord> = idx.iter().map(|&i| &records[i]).collect();
            let first = topic.partitions[p as usize].append(&batch, now)?;
            for (k, &i) in idx.iter().enumerate() {
                out[i] = (p, first + k as u64);
            }
        }
        topic.appended.send_modify(|v| *v += records.len() as u64);
        Ok(out)
    }
}

#[async_trait]
impl StreamSink for EmbeddedLog {
    async fn create_topic(&self, topic: &str, partitions: u32) -> Result<(), StreamError> {
        let this = self.clone();
        let name = topic.to_string();
        tokio::task::spawn_blocking(move || this.create_blocking(&name, partitions))
            .await
            .map_err(|e| StreamError::Unavailable(format!("the stream thread stopped: {e}")))?
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
        let this = self.clone();
        let name = topic.to_string();
        tokio::task::spawn_blocking(move || this.produce_blocking(&name, &records))
            .await
            .map_err(|e| StreamError::Unavailable(format!("the stream thread stopped: {e}")))?
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
            cursors,
            next_cursor: 0,
            buf: Vec::new(),
        }))
    }
}

struct Cursor {
    partition: u32,
    part: Arc<Partition>,
    file: File,
    offset: u64,
    position: u64,
}

struct EmbeddedReader {
    topic: String,
    /// Closed when the topic is deleted.
    appended: watch::Receiver<u64>,
    cursors: Vec<Cursor>,
    next_cursor: usize,
    buf: Vec<u8>,
}

/// Bytes read from a partition file at once.
const READ_CHUNK: usize = 1 << 20;

impl Cursor {
    /// Reads up to `max` committed records into `out`.
    fn read(
        &mut self,
        max: usize,
        buf: &mut Vec<u8>,
        out: &mut Vec<StreamRecord>,
    ) -> Result<(), StreamError> {
        let (count, end) = self.part.snapshot();
        let mut taken = 0;
        while taken < max && self.offset < count && self.position < end {
            let want = ((end - self.position) as usize).min(READ_CHUNK.max(HEADER));
            buf.resize(want, 0);
            self.file
                .read_exact_at(buf, self.position)
                .map_err(|e| StreamError::io(&self.part.path, e))?;
            let mut pos = 0usize;
            let mut progressed = false;
            while taken < max && self.offset < count {
                let Some(len) = frame_len(&buf[pos..]) else {
                    break;
                };
                out.push(decode(
                    &buf[pos..pos + 4 + len],
                    self.partition,
                    self.offset,
                ));
                pos += 4 + len;
                self.offset += 1;
                taken += 1;
                progressed = true;
            }
            self.position += pos as u64;
            if !progressed {
                // One frame larger than the chunk: read exactly it.
                let mut len_buf = [0u8; 4];
                self.file
                    .read_exact_at(&mut len_buf, self.position)
                    .map_err(|e| StreamError::io(&self.part.path, e))?;
                let len = u32::from_le_bytes(len_buf) as usize;
                buf.resize(4 + len, 0);
                self.file
                    .read_exact_at(buf, self.position)
                    .map_err(|e| StreamError::io(&self.part.path, e))?;
                out.push(decode(buf, self.partition, self.offset));
                self.position += (4 + len) as u64;
                self.offset += 1;
                taken += 1;
            }
        }
        Ok(())
    }
}

impl EmbeddedReader {
    fn read_available(&mut self, max: usize) -> Result<Vec<StreamRecord>, StreamError> {
        let mut out = Vec::new();
        let n = self.cursors.len();
        for i in 0..n {
            if out.len() >= max {
                break;
            }
            // Start from a different partition each time, so none starves.
            let c = (self.next_cursor + i) % n;
            let room = max - out.len();
            self.cursors[c].read(room, &mut self.buf, &mut out)?;
        }
        if n > 0 {
            self.next_cursor = (self.next_cursor + 1) % n;
        }
        if self.buf.capacity() > 4 * READ_CHUNK {
            self.buf = Vec::new();
        }
        Ok(out)
    }
}

#[async_trait]
impl StreamReader for EmbeddedReader {
    async fn poll(
        &mut self,
        max: usize,
        timeout: Duration,
    ) -> Result<Vec<StreamRecord>, StreamError> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            self.appended.borrow_and_update();
            // Reads hit the page cache of a file this process just wrote.
            let batch = self.read_available(max.max(1))?;
            if !batch.is_empty() {
                return Ok(batch);
            }
            match tokio::time::timeout_at(deadline, self.appended.changed()).await {
                Ok(Ok(())) => continue,
                // Every record was read and the topic is gone.
                Ok(Err(_)) => return Err(StreamError::UnknownTopic(self.topic.clone())),
                Err(_) => return Ok(Vec::new()),
            }
        }
    }
}
