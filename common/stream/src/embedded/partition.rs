//! One partition file: the frame format, recovery of a torn tail, the sparse offset index, and
//! appends with group commit.
//!
//! An append writes its frames at the tail (into the page cache) and gets the offsets they will
//! have; it is durable once an `fdatasync` that started after the write has finished. The sync
//! runs in a loop on the blocking pool, one loop per partition at a time, for as long as there
//! is something unsynced: appends that arrive while a sync runs are covered by the next one
//! (group commit), and waiters watch the durable count without a thread of their own. Readers
//! see a record only once it is durable (the [`Extent`]), so offsets handed out to consumers
//! are never lost in a crash.
//!
//! A failed write counts nothing (the next append overwrites its bytes). A failed sync rewinds
//! the tail to the durable end: every append not yet durable fails, and appends start again
//! from there.

use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use tokio::sync::watch;

use crate::{ProduceRecord, StreamError, StreamRecord};

/// Records between two entries of the sparse offset index.
pub(super) const STRIDE: u64 = 64;
/// Bytes of a frame before the key.
pub(super) const HEADER: usize = 4 + 4 + 8 + 4;

/// The durable part: where the partition ends and where every `STRIDE`th record starts.
#[derive(Default)]
pub(super) struct Extent {
    pub(super) count: u64,
    pub(super) end: u64,
    pub(super) sparse: Vec<u64>,
}

/// What has been written, durable or not.
struct Tail {
    file: File,
    count: u64,
    end: u64,
    /// Index entries of written records that are not durable yet.
    pending_sparse: Vec<u64>,
    /// Bumped by every rewind.
    epoch: u64,
    /// For each ended epoch, the durable record count it ended with: its appends up to there
    /// are durable, the others were dropped.
    epoch_ends: Vec<u64>,
}

#[derive(Default)]
struct SyncState {
    /// A sync loop runs.
    running: bool,
    /// Why the last failed sync failed.
    last_failure: Option<String>,
}

/// What waiters watch: the epoch and the durable record count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Durability {
    epoch: u64,
    count: u64,
}

pub(super) struct Partition {
    pub(super) path: PathBuf,
    tail: Mutex<Tail>,
    /// A second handle on the file, so a sync does not hold up appends.
    sync_file: File,
    pub(super) extent: RwLock<Extent>,
    sync: Mutex<SyncState>,
    durable: watch::Sender<Durability>,
    /// The topic's signal to readers: bumped by records that became durable.
    readers: Arc<watch::Sender<u64>>,
}

/// What an append must wait for: its last offset + 1, written in `epoch`.
#[derive(Debug, Clone, Copy)]
pub(super) struct Ticket {
    pub(super) first: u64,
    target: u64,
    epoch: u64,
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
pub(super) fn frame_len(buf: &[u8]) -> Option<usize> {
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

pub(super) fn decode(frame: &[u8], partition: u32, offset: u64) -> StreamRecord {
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

impl Partition {
    pub(super) fn open(
        path: PathBuf,
        readers: Arc<watch::Sender<u64>>,
    ) -> Result<Partition, StreamError> {
        if !path.exists() {
            File::create(&path)
                .and_then(|f| f.sync_all())
                .map_err(|e| StreamError::io(&path, e))?;
        }
        let extent = recover(&path)?;
        let file = OpenOptions::new()
            .write(true)
            .open(&path)
            .map_err(|e| StreamError::io(&path, e))?;
        let sync_file = file.try_clone().map_err(|e| StreamError::io(&path, e))?;
        let durable = watch::channel(Durability {
            epoch: 0,
            count: extent.count,
        })
        .0;
        Ok(Partition {
            tail: Mutex::new(Tail {
                file,
                count: extent.count,
                end: extent.end,
                pending_sparse: Vec::new(),
                epoch: 0,
                epoch_ends: Vec::new(),
            }),
            sync_file,
            path,
            extent: RwLock::new(extent),
            sync: Mutex::new(SyncState::default()),
            durable,
            readers,
        })
    }

    /// Writes records at the tail (not yet durable); they get consecutive offsets from the
    /// returned ticket's `first`, in the order appends take the tail.
    pub(super) fn append(
        &self,
        records: &[&ProduceRecord],
        now: i64,
    ) -> Result<Ticket, StreamError> {
        let mut tail = lock(&self.tail);
        let (first, start) = (tail.count, tail.end);
        let mut buf = Vec::new();
        let mut index = Vec::new();
        for (i, r) in records.iter().enumerate() {
            if (first + i as u64).is_multiple_of(STRIDE) {
                index.push(start + buf.len() as u64);
            }
            encode(
                &mut buf,
                r.timestamp.unwrap_or(now),
                r.key.as_deref(),
                &r.value,
            );
        }
        if let Err(e) = tail.file.write_all_at(&buf, start) {
            // Nothing was counted; the next append overwrites the partial write.
            return Err(StreamError::io(&self.path, e));
        }
        tail.count += records.len() as u64;
        tail.end += buf.len() as u64;
        tail.pending_sparse.extend(index);
        Ok(Ticket {
            first,
            target: tail.count,
            epoch: tail.epoch,
        })
    }

    /// Starts a sync loop unless one runs (the running one sees the new appends).
    pub(super) fn request_sync(self: &Arc<Self>) {
        let mut state = lock(&self.sync);
        if state.running {
            return;
        }
        state.running = true;
        let this = self.clone();
        tokio::task::spawn_blocking(move || this.sync_loop());
    }

    /// Syncs until nothing written is left unsynced.
    fn sync_loop(&self) {
        loop {
            let failure = self.sync_once();
            let mut state = lock(&self.sync);
            let done = failure.is_some() || {
                let tail = lock(&self.tail);
                tail.count <= self.durable_count()
            };
            if failure.is_some() {
                state.last_failure = failure;
            }
            if done {
                state.running = false;
                return;
            }
        }
    }

    /// Waits until the ticket's records are durable (call [`Partition::request_sync`] after
    /// appending).
    pub(super) async fn wait_durable(&self, ticket: Ticket) -> Result<(), StreamError> {
        let mut rx = self.durable.subscribe();
        loop {
            let now = *rx.borrow_and_update();
            if ticket.epoch < now.epoch {
                // A sync failed since the append: it counts if it was durable before that.
                let dropped = {
                    let tail = lock(&self.tail);
                    ticket.target > tail.epoch_ends[ticket.epoch as usize]
                };
                if !dropped {
                    return Ok(());
                }
                let why = lock(&self.sync).last_failure.clone();
                return Err(StreamError::Unavailable(format!(
                    "syncing {} failed before these records were durable: {}",
                    self.path.display(),
                    why.as_deref().unwrap_or("unknown error")
                )));
            }
            if now.count >= ticket.target {
                return Ok(());
            }
            if rx.changed().await.is_err() {
                return Err(StreamError::Unavailable(format!(
                    "{} was closed",
                    self.path.display()
                )));
            }
        }
    }

    /// Syncs everything written so far and makes it visible. A failure rewinds the tail to
    /// the durable end (ending the epoch) and is returned.
    fn sync_once(&self) -> Option<String> {
        let (count, end, index) = {
            let mut tail = lock(&self.tail);
            (
                tail.count,
                tail.end,
                std::mem::take(&mut tail.pending_sparse),
            )
        };
        match self.sync_file.sync_data() {
            Ok(()) => {
                let added = {
                    let mut e = self.extent.write().unwrap_or_else(|p| p.into_inner());
                    let added = count - e.count;
                    e.sparse.extend(index);
                    e.count = count;
                    e.end = end;
                    added
                };
                self.durable.send_modify(|d| d.count = count);
                if added > 0 {
                    self.readers.send_modify(|v| *v += added);
                }
                None
            }
            Err(err) => {
                let epoch = {
                    let mut tail = lock(&self.tail);
                    let e = self.extent.read().unwrap_or_else(|p| p.into_inner());
                    tail.epoch_ends.push(e.count);
                    tail.epoch += 1;
                    tail.count = e.count;
                    tail.end = e.end;
                    tail.pending_sparse.clear();
                    tail.epoch
                };
                tracing::warn!(path = %self.path.display(), error = %err, "a stream partition sync failed; appends not yet durable are dropped");
                self.durable.send_modify(|d| d.epoch = epoch);
                Some(err.to_string())
            }
        }
    }

    fn durable_count(&self) -> u64 {
        self.extent.read().unwrap_or_else(|p| p.into_inner()).count
    }

    /// (records, bytes) that are durable.
    pub(super) fn snapshot(&self) -> (u64, u64) {
        let e = self.extent.read().unwrap_or_else(|p| p.into_inner());
        (e.count, e.end)
    }

    /// The byte position of `offset` (which must be ≤ count), found from the sparse index.
    pub(super) fn position_of(&self, file: &File, offset: u64) -> Result<u64, StreamError> {
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
