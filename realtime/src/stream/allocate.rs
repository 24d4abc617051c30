//! Segment allocation for realtime rows: which time chunk, version and partition number a new
//! in-memory index gets. Rows append to the chunk's existing version (new partition numbers),
//! so realtime data never overshadows what is already published; a chunk with no data gets a
//! fresh version. Allocations are shared by every task of this node, so two tasks writing the
//! same hour get different partitions.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use eddy_meta::MetadataStore;
use eddy_types::granularity::Granularity;
use eddy_types::time::format_iso;
use eddy_types::{DataSourceName, Interval, SegmentId};

struct Chunk {
    interval: Interval,
    version: String,
    next_partition: u32,
}

pub struct Allocator {
    meta: Arc<dyn MetadataStore>,
    chunks: Mutex<HashMap<DataSourceName, Vec<Chunk>>>,
}

impl Allocator {
    pub fn new(meta: Arc<dyn MetadataStore>) -> Self {
        Allocator {
            meta,
            chunks: Mutex::new(HashMap::new()),
        }
    }

    /// A new segment id for a row of `ds` at time `t`.
    pub fn allocate(
        &self,
        ds: &DataSourceName,
        t: i64,
        granularity: &Granularity,
        now: i64,
    ) -> Result<SegmentId, String> {
        let mut all = self.chunks.lock().unwrap_or_else(|p| p.into_inner());
        let chunks = all.entry(ds.clone()).or_default();
        if let Some(c) = chunks.iter_mut().find(|c| c.interval.contains(t)) {
            let partition = c.next_partition;
            c.next_partition += 1;
            return Ok(SegmentId {
                datasource: ds.clone(),
                interval: c.interval,
                version: c.version.clone(),
                partition,
            });
        }
        let state = self.meta.state();
        let used: Vec<&SegmentId> = state.used_segments_of(ds).map(|s| &s.id).collect();
        let chunk = match used
            .iter()
            .filter(|s| s.interval.contains(t))
            .max_by(|a, b| a.version.cmp(&b.version))
        {
            Some(newest) => {
                let partition = used
                    .iter()
                    .filter(|s| s.interval == newest.interval && s.version == newest.version)
                    .map(|s| s.partition)
                    .max()
                    .unwrap_or(0);
                Chunk {
                    interval: newest.interval,
                    version: newest.version.clone(),
                    next_partition: partition + 1,
                }
            }
            None => {
                let start = granularity.bucket_start(t);
                let interval = Interval {
                    start,
                    end: granularity.next_bucket(start),
                };
                if let Some(other) = used.iter().find(|s| s.interval.overlaps(&interval)) {
                    return Err(format!(
                        "the time chunk {interval} of this row overlaps segment {other} of another segment granularity; ingest this time range with the granularity it already has"
                    ));
                }
                Chunk {
                    interval,
                    version: format_iso(now),
                    next_partition: 0,
                }
            }
        };
        let id = SegmentId {
            datasource: ds.clone(),
            interval: chunk.interval,
            version: chunk.version.clone(),
            partition: chunk.next_partition,
        };
        chunks.push(Chunk {
            next_partition: chunk.next_partition + 1,
            ..chunk
        });
        Ok(id)
    }
}
