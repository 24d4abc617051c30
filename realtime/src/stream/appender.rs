//! A realtime task's rows, per time chunk: an in-memory index taking rows (served at once) and
//! the parts already persisted to local disk (served from there). Persisting is the spill: past
//! `maxRowsInMemory`, `maxBytesInMemory` or `intermediatePersistPeriod` each in-memory index is
//! written out as an immutable segment file and the next rows start a new partition. At
//! hand-off the parts of each time chunk are merged (consecutive parts together while they
//! hold at most `maxRowsPerSegment` rows and took at most `maxBytesInMemory` in memory), then
//! every part is uploaded and published.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use eddy_meta::ColumnInfo;
use eddy_segment::incremental::persist;
use eddy_segment::input::InputRow;
use eddy_segment::writer::write_file;
use eddy_segment::{IncrementalIndex, IndexSpec, SegmentFile};
use eddy_types::granularity::Granularity;
use eddy_types::{DataSourceName, Interval, SegmentId};

use super::allocate::Allocator;
use super::node::{Hydrant, Owner, RealtimeNode, columns_of};

/// A persisted, not yet published part of a time chunk.
#[derive(Debug, Clone)]
pub struct Part {
    pub id: SegmentId,
    pub path: PathBuf,
    pub num_rows: u64,
    /// Bytes its rows took in memory (what merging it again costs).
    pub bytes: usize,
    pub columns: Vec<ColumnInfo>,
}

struct Live {
    id: SegmentId,
    index: Arc<RwLock<IncrementalIndex>>,
}

struct ChunkSink {
    interval: Interval,
    live: Option<Live>,
    parts: Vec<Part>,
}

pub struct Appender {
    ds: DataSourceName,
    index_spec: IndexSpec,
    granularity: Granularity,
    max_rows_per_segment: u64,
    /// The most in-memory bytes a merge of parts may take (the task's `maxBytesInMemory`).
    max_merge_bytes: usize,
    node: Arc<RealtimeNode>,
    /// The replica whose pieces these are (when the group has several).
    owner: Option<Owner>,
    allocator: Arc<Allocator>,
    work_dir: PathBuf,
    chunks: BTreeMap<i64, ChunkSink>,
    rows_in_memory: usize,
    bytes_in_memory: usize,
    total_rows: u64,
}

/// What adding a row did.
pub enum Added {
    Indexed {
        errors: Vec<String>,
    },
    /// The row's time chunk cannot be allocated (the reason).
    Rejected(String),
}

fn write<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|p| p.into_inner())
}

fn read<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(|p| p.into_inner())
}

impl Appender {
    pub fn new(
        ds: DataSourceName,
        index_spec: IndexSpec,
        granularity: Granularity,
        (max_rows_per_segment, max_merge_bytes): (u64, usize),
        (node, owner): (Arc<RealtimeNode>, Option<Owner>),
        allocator: Arc<Allocator>,
        work_dir: PathBuf,
    ) -> Appender {
        Appender {
            ds,
            index_spec,
            granularity,
            max_rows_per_segment,
            max_merge_bytes,
            node,
            owner,
            allocator,
            work_dir,
            chunks: BTreeMap::new(),
            rows_in_memory: 0,
            bytes_in_memory: 0,
            total_rows: 0,
        }
    }

    pub fn rows_in_memory(&self) -> usize {
        self.rows_in_memory
    }

    pub fn bytes_in_memory(&self) -> usize {
        self.bytes_in_memory
    }

    /// Rows held, in memory and persisted (after rollup).
    pub fn total_rows(&self) -> u64 {
        self.total_rows
    }

    pub fn is_empty(&self) -> bool {
        self.total_rows == 0
    }

    /// Adds rows in their order, each to the in-memory index of its time chunk (allocating the
    /// chunk's segment on first use); consecutive rows of one chunk go to the index together
    /// ([`IncrementalIndex::add_batch`]). Returns what became of each row.
    pub fn add_batch(
        &mut self,
        rows: &[(i64, &dyn InputRow)],
        now: i64,
    ) -> Result<Vec<Added>, String> {
        let mut added = Vec::with_capacity(rows.len());
        let mut rest = rows;
        while let Some(&(time, _)) = rest.first() {
            let chunk = match self.live_chunk(time, now)? {
                Ok(chunk) => chunk,
                Err(reason) => {
                    added.push(Added::Rejected(reason));
                    rest = &rest[1..];
                    continue;
                }
            };
            let Some(sink) = self.chunks.get_mut(&chunk) else {
                return Err("a time chunk vanished while adding a row".into());
            };
            let Some(live) = &sink.live else {
                return Err("a time chunk has no in-memory index".into());
            };
            let (outcomes, rows, bytes_before, bytes_after) = {
                let mut index = write(&live.index);
                let rows_before = index.num_rows();
                // Never past the segment's row limit: each row adds at most one.
                let room = (self.max_rows_per_segment as usize)
                    .saturating_sub(rows_before)
                    .max(1);
                let run = rest
                    .iter()
                    .take(room)
                    .take_while(|(t, _)| sink.interval.contains(*t))
                    .count();
                let bytes_before = index.bytes_in_memory();
                let outcomes = index.add_batch(&rest[..run]);
                rest = &rest[run..];
                let rows = index.num_rows();
                self.rows_in_memory += rows - rows_before;
                self.total_rows += (rows - rows_before) as u64;
                (outcomes, rows, bytes_before, index.bytes_in_memory())
            };
            self.bytes_in_memory =
                self.bytes_in_memory + bytes_after - bytes_before.min(bytes_after);
            added.extend(
                outcomes
                    .into_iter()
                    .map(|o| Added::Indexed { errors: o.errors }),
            );
            if rows as u64 >= self.max_rows_per_segment {
                self.persist_chunk(chunk)?;
            }
        }
        Ok(added)
    }

    /// The start of the time chunk `time` belongs to, with an in-memory index ready, or why
    /// no segment could be allocated for it.
    fn live_chunk(&mut self, time: i64, now: i64) -> Result<Result<i64, String>, String> {
        let chunk = match self
            .chunks
            .range(..=time)
            .next_back()
            .filter(|(_, c)| c.interval.contains(time))
        {
            Some((&start, _)) => start,
            None => {
                let id = match self
                    .allocator
                    .allocate(&self.ds, time, &self.granularity, now)
                {
                    Ok(id) => id,
                    Err(reason) => return Ok(Err(reason)),
                };
                let start = id.interval.start;
                let index = self.start_index(id.clone());
                self.chunks.insert(
                    start,
                    ChunkSink {
                        interval: id.interval,
                        live: Some(Live { id, index }),
                        parts: Vec::new(),
                    },
                );
                start
            }
        };
        if self.chunks[&chunk].live.is_none() {
            let id = self
                .allocator
                .allocate(&self.ds, time, &self.granularity, now)?;
            let index = self.start_index(id.clone());
            if let Some(c) = self.chunks.get_mut(&chunk) {
                c.live = Some(Live { id, index });
            }
        }
        Ok(Ok(chunk))
    }

    fn start_index(&self, id: SegmentId) -> Arc<RwLock<IncrementalIndex>> {
        let index = Arc::new(RwLock::new(IncrementalIndex::new(
            id.clone(),
            self.index_spec.clone(),
        )));
        self.node
            .announce(id, Hydrant::Live(index.clone()), self.owner);
        index
    }

    fn persist_chunk(&mut self, start: i64) -> Result<(), String> {
        let Some(sink) = self.chunks.get_mut(&start) else {
            return Ok(());
        };
        let Some(live) = sink.live.take() else {
            return Ok(());
        };
        let (data, rows, bytes) = {
            let index = read(&live.index);
            if index.is_empty() {
                drop(index);
                self.node.unannounce(&live.id);
                return Ok(());
            }
            (
                persist(&index, live.id.clone()),
                index.num_rows(),
                index.bytes_in_memory(),
            )
        };
        let path = self.work_dir.join(format!(
            "{}_{}_{}.eddy",
            live.id.interval.start, live.id.interval.end, live.id.partition
        ));
        let written = std::fs::create_dir_all(&self.work_dir)
            .map_err(|e| format!("creating {}: {e}", self.work_dir.display()))
            .and_then(|()| {
                write_file(&path, &data).map_err(|e| format!("persisting {}: {e}", live.id))
            })
            .and_then(|_| {
                SegmentFile::open(&path)
                    .map_err(|e| format!("opening the persisted {}: {e}", live.id))
            });
        let file = match written {
            Ok(file) => file,
            Err(e) => {
                // Still in memory and served: it goes with the rest when the task abandons.
                sink.live = Some(live);
                return Err(e);
            }
        };
        let columns = columns_of(&file);
        self.node.announce(
            live.id.clone(),
            Hydrant::Persisted(Arc::new(file)),
            self.owner,
        );
        sink.parts.push(Part {
            id: live.id,
            path,
            num_rows: rows as u64,
            bytes,
            columns,
        });
        self.rows_in_memory -= rows.min(self.rows_in_memory);
        self.bytes_in_memory -= bytes.min(self.bytes_in_memory);
        Ok(())
    }

    /// Persists every in-memory index (the spill).
    pub fn persist_all(&mut self) -> Result<(), String> {
        let starts: Vec<i64> = self.chunks.keys().copied().collect();
        for s in starts {
            self.persist_chunk(s)?;
        }
        Ok(())
    }

    /// Persists everything, merges each chunk's parts and hands them over to publish; the
    /// appender is empty after. The parts stay served until the caller unannounces them.
    pub fn finish(&mut self) -> Result<Vec<Part>, String> {
        self.persist_all()?;
        let mut parts = Vec::new();
        for (_, chunk) in std::mem::take(&mut self.chunks) {
            parts.extend(self.merge_parts(chunk.parts));
        }
        self.total_rows = 0;
        Ok(parts)
    }

    /// Merges runs of consecutive parts of one chunk. A run that cannot be merged (an I/O
    /// error) stays as its parts: merging only saves segments, it never loses rows.
    fn merge_parts(&self, parts: Vec<Part>) -> Vec<Part> {
        // Runs of parts with their rows and in-memory bytes.
        let mut runs: Vec<(Vec<Part>, u64, usize)> = Vec::new();
        for p in parts {
            match runs.last_mut() {
                Some((run, rows, bytes))
                    if *rows + p.num_rows <= self.max_rows_per_segment
                        && *bytes + p.bytes <= self.max_merge_bytes =>
                {
                    *rows += p.num_rows;
                    *bytes += p.bytes;
                    run.push(p);
                }
                _ => {
                    let (rows, bytes) = (p.num_rows, p.bytes);
                    runs.push((vec![p], rows, bytes));
                }
            }
        }
        let mut out = Vec::new();
        for (run, _, _) in runs {
            if run.len() < 2 {
                out.extend(run);
                continue;
            }
            match self.merge_run(&run) {
                Ok(merged) => {
                    for p in &run {
                        remove_file(&p.path);
                    }
                    out.push(merged);
                }
                Err(e) => {
                    tracing::warn!(parts = run.len(), error = %e, "cannot merge realtime parts; publishing them as they are");
                    out.extend(run);
                }
            }
        }
        out
    }

    /// One segment with the rows of `run` (rolled up together), served in its place under the
    /// first part's id.
    fn merge_run(&self, run: &[Part]) -> Result<Part, String> {
        let id = run[0].id.clone();
        let rows: u64 = run.iter().map(|p| p.num_rows).sum();
        let mut index = IncrementalIndex::new(
            id.clone(),
            self.index_spec.clone().with_row_capacity(rows as usize),
        );
        for p in run {
            let file = SegmentFile::open(&p.path)
                .map_err(|e| format!("opening {}: {e}", p.path.display()))?;
            index
                .add_segment(&file)
                .map_err(|e| format!("reading {}: {e}", p.path.display()))?;
        }
        let path = self.work_dir.join(format!(
            "{}_{}_{}_merged.eddy",
            id.interval.start, id.interval.end, id.partition
        ));
        write_file(&path, &persist(&index, id.clone()))
            .map_err(|e| format!("writing the merged {id}: {e}"))?;
        let file = SegmentFile::open(&path).map_err(|e| format!("opening the merged {id}: {e}"))?;
        let columns = columns_of(&file);
        let old: Vec<SegmentId> = run.iter().map(|p| p.id.clone()).collect();
        self.node.replace(
            &old,
            id.clone(),
            Hydrant::Persisted(Arc::new(file)),
            self.owner,
        );
        tracing::debug!(segment = %id, parts = run.len(), rows = index.num_rows(), "merged realtime parts");
        Ok(Part {
            id,
            path,
            num_rows: index.num_rows() as u64,
            bytes: index.bytes_in_memory(),
            columns,
        })
    }

    /// Stops serving everything held and deletes the local files (the rows will be read again
    /// from the stream).
    pub fn abandon(&mut self) {
        for (_, c) in std::mem::take(&mut self.chunks) {
            if let Some(live) = c.live {
                self.node.unannounce(&live.id);
            }
            discard(&self.node, &c.parts);
        }
        self.rows_in_memory = 0;
        self.bytes_in_memory = 0;
        self.total_rows = 0;
    }

    pub fn work_dir(&self) -> &Path {
        &self.work_dir
    }
}

/// Stops serving `parts` and deletes their files.
pub fn discard(node: &RealtimeNode, parts: &[Part]) {
    for p in parts {
        node.unannounce(&p.id);
        remove_file(&p.path);
    }
}

fn remove_file(path: &Path) {
    if let Err(e) = std::fs::remove_file(path)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(path = %path.display(), error = %e, "cannot delete a persisted realtime part");
    }
}
