//! The realtime data node: serves the segments realtime tasks are building (in-memory indexes
//! and their persisted spills) to the broker until historicals take them over.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use async_trait::async_trait;
use rayon::prelude::*;

use eddy_meta::ColumnInfo;
use eddy_query::engine::Context;
use eddy_query::{Merging, Partial, Query, QueryError, execute};
use eddy_rpc::{DataNode, NodeResult, QueryControl, RpcError, SegmentSlice};
use eddy_runtime::CpuPool;
use eddy_segment::{IncrementalIndex, SegmentFile, SegmentReader};
use eddy_types::{NodeId, SegmentId};

/// One queryable piece of a realtime segment.
#[derive(Clone)]
pub enum Hydrant {
    /// Still taking rows; queries read it under the lock, between the writer's batches.
    Live(Arc<RwLock<IncrementalIndex>>),
    /// Persisted to local disk, immutable.
    Persisted(Arc<SegmentFile>),
}

/// A segment's columns as metadata records them.
pub fn columns_of(reader: &dyn SegmentReader) -> Vec<ColumnInfo> {
    reader
        .schema()
        .columns
        .iter()
        .map(|c| ColumnInfo {
            name: c.name.clone(),
            kind: c.kind.druid_type().to_string(),
            role: match c.role {
                eddy_segment::ColumnRole::Dimension => "dimension".into(),
                eddy_segment::ColumnRole::Metric => "metric".into(),
            },
        })
        .collect()
}

fn read<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(|p| p.into_inner())
}

pub struct RealtimeNode {
    id: NodeId,
    pool: CpuPool,
    served: RwLock<HashMap<SegmentId, Hydrant>>,
    version: AtomicU64,
}

impl RealtimeNode {
    pub fn new(id: NodeId, pool: CpuPool) -> Arc<Self> {
        Arc::new(RealtimeNode {
            id,
            pool,
            served: RwLock::new(HashMap::new()),
            version: AtomicU64::new(0),
        })
    }

    /// Serves `id` from `hydrant` (replacing what served it before).
    pub fn announce(&self, id: SegmentId, hydrant: Hydrant) {
        self.served
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id, hydrant);
        self.version.fetch_add(1, Ordering::Release);
        crate::metrics::REALTIME_SEGMENTS.set(read(&self.served).len() as i64);
    }

    /// Serves `id` from `hydrant` in place of `old`, in one step: a query sees either all of
    /// `old` or the replacement (which holds the same rows).
    pub fn replace(&self, old: &[SegmentId], id: SegmentId, hydrant: Hydrant) {
        {
            let mut served = self.served.write().unwrap_or_else(|p| p.into_inner());
            for o in old {
                served.remove(o);
            }
            served.insert(id, hydrant);
        }
        self.version.fetch_add(1, Ordering::Release);
        crate::metrics::REALTIME_SEGMENTS.set(read(&self.served).len() as i64);
    }

    pub fn unannounce(&self, id: &SegmentId) {
        let removed = self
            .served
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
        if removed.is_some() {
            self.version.fetch_add(1, Ordering::Release);
        }
        crate::metrics::REALTIME_SEGMENTS.set(read(&self.served).len() as i64);
    }

    /// Rows held by in-memory indexes (for `/status` and tests).
    pub fn rows_in_memory(&self) -> usize {
        read(&self.served)
            .values()
            .map(|h| match h {
                Hydrant::Live(i) => read(i).num_rows(),
                Hydrant::Persisted(_) => 0,
            })
            .sum()
    }
}

#[async_trait]
impl DataNode for RealtimeNode {
    fn node_id(&self) -> &NodeId {
        &self.id
    }

    fn served(&self) -> Vec<SegmentId> {
        read(&self.served).keys().cloned().collect()
    }

    fn served_version(&self) -> u64 {
        self.version.load(Ordering::Acquire)
    }

    fn unpublished_columns(&self, id: &SegmentId) -> Option<Vec<ColumnInfo>> {
        let hydrant = read(&self.served).get(id)?.clone();
        Some(match hydrant {
            Hydrant::Live(i) => columns_of(&*read(&i)),
            Hydrant::Persisted(f) => columns_of(f.as_ref()),
        })
    }

    async fn run(
        &self,
        query: Arc<Query>,
        segments: Vec<SegmentSlice>,
        control: QueryControl,
    ) -> Result<NodeResult, RpcError> {
        let (found, missing) = {
            let map = read(&self.served);
            let mut found = Vec::with_capacity(segments.len());
            let mut missing = Vec::new();
            for s in segments {
                match map.get(&s.id) {
                    Some(h) => found.push((h.clone(), s)),
                    None => missing.push(s.id),
                }
            }
            (found, missing)
        };
        if found.is_empty() {
            return Ok(NodeResult {
                partial: None,
                missing,
            });
        }
        let pool = self.pool.clone();
        let partial = self
            .pool
            .run(move || -> Result<Partial, QueryError> {
                let ctx = Context {
                    query_id: &control.query_id,
                    cancelled: &control.cancelled,
                    deadline: control.deadline,
                    timeout_ms: control.timeout_ms,
                };
                let merged = pool.install(|| {
                    found
                        .par_iter()
                        .try_fold(
                            || Merging::new(&query),
                            |mut acc, (hydrant, slice)| {
                                let part = match hydrant {
                                    Hydrant::Live(index) => {
                                        execute(&query, &*read(index), &slice.clips, &ctx)?
                                    }
                                    Hydrant::Persisted(file) => {
                                        execute(&query, file.as_ref(), &slice.clips, &ctx)?
                                    }
                                };
                                acc.add(part)?;
                                Ok::<_, QueryError>(acc)
                            },
                        )
                        .try_reduce(|| Merging::new(&query), Merging::join)
                })?;
                Ok(merged.finish(&query))
            })
            .await?;
        Ok(NodeResult {
            partial: Some(partial),
            missing,
        })
    }
}
