//! The realtime data node: serves the segments realtime tasks are building (in-memory indexes
//! and their persisted spills) to the broker until historicals take them over. When a task
//! group runs several replicas, each replica's pieces carry an [`Owner`] and only the group's
//! active replica is announced, so queries count each row once.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use async_trait::async_trait;
use rayon::prelude::*;

use eddy_meta::ColumnInfo;
use eddy_query::engine::Context;
use eddy_query::{Partial, Query, QueryError, execute, merge_segments};
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

fn write<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|p| p.into_inner())
}

/// The replica of a task group a piece was built by (groups with one replica have none).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Owner {
    /// The group's replica set (unique on this node).
    pub set: u64,
    pub replica: u32,
}

struct Piece {
    hydrant: Hydrant,
    owner: Option<Owner>,
}

#[derive(Default)]
struct Served {
    pieces: HashMap<SegmentId, Piece>,
    /// The replica whose pieces are announced, per replica set (none: no replica's are).
    active: HashMap<u64, u32>,
}

impl Served {
    fn visible(&self, owner: Option<Owner>) -> bool {
        owner.is_none_or(|o| self.active.get(&o.set) == Some(&o.replica))
    }
}

pub struct RealtimeNode {
    id: NodeId,
    pool: CpuPool,
    served: RwLock<Served>,
    version: AtomicU64,
}

impl RealtimeNode {
    pub fn new(id: NodeId, pool: CpuPool) -> Arc<Self> {
        Arc::new(RealtimeNode {
            id,
            pool,
            served: RwLock::new(Served::default()),
            version: AtomicU64::new(0),
        })
    }

    /// Changes what is served in one step (a query sees all of it or none) and tells the
    /// broker.
    fn change(&self, f: impl FnOnce(&mut Served)) {
        let pieces = {
            let mut served = write(&self.served);
            f(&mut served);
            served.pieces.len()
        };
        self.version.fetch_add(1, Ordering::Release);
        crate::metrics::REALTIME_SEGMENTS.set(pieces as i64);
    }

    /// Serves `id` from `hydrant` (replacing what served it before), built by `owner`.
    pub fn announce(&self, id: SegmentId, hydrant: Hydrant, owner: Option<Owner>) {
        self.change(|s| {
            s.pieces.insert(id, Piece { hydrant, owner });
        });
    }

    /// Serves `id` from `hydrant` in place of `old`, in one step: a query sees either all of
    /// `old` or the replacement (which holds the same rows).
    pub fn replace(
        &self,
        old: &[SegmentId],
        id: SegmentId,
        hydrant: Hydrant,
        owner: Option<Owner>,
    ) {
        self.change(|s| {
            for o in old {
                s.pieces.remove(o);
            }
            s.pieces.insert(id, Piece { hydrant, owner });
        });
    }

    pub fn unannounce(&self, id: &SegmentId) {
        if read(&self.served).pieces.contains_key(id) {
            self.change(|s| {
                s.pieces.remove(id);
            });
        }
    }

    /// Announces the pieces of `replica` of the set (and hides the other replicas') in one
    /// step; `None` announces none of the set's replicas.
    pub fn set_active(&self, set: u64, replica: Option<u32>) {
        self.change(|s| match replica {
            Some(r) => {
                s.active.insert(set, r);
            }
            None => {
                s.active.remove(&set);
            }
        });
    }

    /// Announces `ids` whoever built them: they are published, so no replica holds their rows
    /// any more and they stay served until a historical serves them.
    pub fn release(&self, ids: &[SegmentId]) {
        self.change(|s| {
            for id in ids {
                if let Some(p) = s.pieces.get_mut(id) {
                    p.owner = None;
                }
            }
        });
    }

    /// Rows held by in-memory indexes, every replica's (for `/status` and tests).
    pub fn rows_in_memory(&self) -> usize {
        read(&self.served)
            .pieces
            .values()
            .map(|p| match &p.hydrant {
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
        let served = read(&self.served);
        served
            .pieces
            .iter()
            .filter(|(_, p)| served.visible(p.owner))
            .map(|(id, _)| id.clone())
            .collect()
    }

    fn served_version(&self) -> u64 {
        self.version.load(Ordering::Acquire)
    }

    fn unpublished_columns(&self, id: &SegmentId) -> Option<Vec<ColumnInfo>> {
        let hydrant = read(&self.served).pieces.get(id)?.hydrant.clone();
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
                match map.pieces.get(&s.id) {
                    Some(p) => found.push((p.hydrant.clone(), s)),
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
                pool.install(|| {
                    let parts = found.par_iter().map(|(hydrant, slice)| match hydrant {
                        Hydrant::Live(index) => execute(&query, &*read(index), &slice.clips, &ctx),
                        Hydrant::Persisted(file) => {
                            execute(&query, file.as_ref(), &slice.clips, &ctx)
                        }
                    });
                    merge_segments(&query, found.len(), parts)
                })
            })
            .await?;
        Ok(NodeResult {
            partial: Some(partial),
            missing,
        })
    }
}
