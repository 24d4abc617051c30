//! The historical role: loads published segments from deep storage into a local cache (on the
//! coordinator's command), opens them memory-mapped and verified, and runs native queries on
//! them in parallel on the CPU pool.

pub mod metrics;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use async_trait::async_trait;
use rayon::prelude::*;

use eddy_meta::SegmentRecord;
use eddy_query::engine::Context;
use eddy_query::{Partial, Query, QueryError, execute, merge_segments};
use eddy_rpc::{DataNode, HistoricalControl, NodeResult, QueryControl, RpcError, SegmentSlice};
use eddy_runtime::CpuPool;
use eddy_segment::{SegmentFile, SegmentReader};
use eddy_storage::{DeepStorage, SegmentCache};
use eddy_types::{NodeId, SegmentId};

#[derive(Debug, Clone)]
pub struct HistoricalConfig {
    pub node_id: NodeId,
    pub cache_dir: std::path::PathBuf,
    /// Bytes of segments this node may hold (reported to the coordinator).
    pub max_size: u64,
}

pub struct Historical {
    id: NodeId,
    cache: SegmentCache,
    deep: DeepStorage,
    pool: CpuPool,
    max_size: u64,
    segments: RwLock<HashMap<SegmentId, Arc<SegmentFile>>>,
    version: std::sync::atomic::AtomicU64,
}

impl Historical {
    pub fn start(
        config: HistoricalConfig,
        deep: DeepStorage,
        pool: CpuPool,
    ) -> Result<Arc<Self>, RpcError> {
        let cache =
            SegmentCache::open(&config.cache_dir).map_err(|e| RpcError::Failed(e.to_string()))?;
        Ok(Arc::new(Historical {
            id: config.node_id,
            cache,
            deep,
            pool,
            max_size: config.max_size,
            segments: RwLock::new(HashMap::new()),
            version: std::sync::atomic::AtomicU64::new(0),
        }))
    }

    fn snapshot(
        &self,
        ids: &[SegmentSlice],
    ) -> (Vec<(Arc<SegmentFile>, SegmentSlice)>, Vec<SegmentId>) {
        let map = self.segments.read().unwrap_or_else(|p| p.into_inner());
        let mut found = Vec::with_capacity(ids.len());
        let mut missing = Vec::new();
        for s in ids {
            match map.get(&s.id) {
                Some(seg) => found.push((seg.clone(), s.clone())),
                None => missing.push(s.id.clone()),
            }
        }
        (found, missing)
    }

    fn update_gauges(&self) {
        self.version
            .fetch_add(1, std::sync::atomic::Ordering::Release);
        let map = self.segments.read().unwrap_or_else(|p| p.into_inner());
        metrics::SEGMENTS_SERVED.set(map.len() as i64);
        metrics::BYTES_SERVED.set(map.values().map(|s| s.size_bytes() as i64).sum());
    }
}

#[async_trait]
impl HistoricalControl for Historical {
    fn node_id(&self) -> &NodeId {
        &self.id
    }

    fn served(&self) -> Vec<SegmentId> {
        self.segments
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .keys()
            .cloned()
            .collect()
    }

    fn usage(&self) -> (u64, u64) {
        let used = self
            .segments
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .map(|s| s.size_bytes())
            .sum();
        (used, self.max_size)
    }

    async fn load(&self, segment: SegmentRecord) -> Result<(), RpcError> {
        if self
            .segments
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .contains_key(&segment.id)
        {
            return Ok(());
        }
        let path = match self
            .cache
            .fetch(&self.deep, &segment.id, &segment.path, segment.crc32)
            .await
        {
            Ok(p) => p,
            Err(e) => {
                metrics::LOADS.with_label_values(&["failed"]).inc();
                return Err(RpcError::Failed(format!("loading {}: {e}", segment.id)));
            }
        };
        let opened = self.pool.run(move || SegmentFile::open(&path)).await;
        let file = match opened {
            Ok(f) => f,
            Err(e) => {
                metrics::LOADS.with_label_values(&["failed"]).inc();
                self.cache.remove(&segment.id).await;
                return Err(RpcError::Failed(format!("opening {}: {e}", segment.id)));
            }
        };
        if file.segment_id() != &segment.id {
            metrics::LOADS.with_label_values(&["failed"]).inc();
            return Err(RpcError::Failed(format!(
                "file for {} holds segment {}",
                segment.id,
                file.segment_id()
            )));
        }
        self.segments
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(segment.id.clone(), Arc::new(file));
        metrics::LOADS.with_label_values(&["loaded"]).inc();
        self.update_gauges();
        tracing::info!(segment = %segment.id, "segment loaded");
        Ok(())
    }

    async fn drop_segment(&self, id: &SegmentId) -> Result<(), RpcError> {
        let removed = self
            .segments
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
        if removed.is_some() {
            // Running queries keep their Arc; the mapping goes away when they finish.
            self.cache.remove(id).await;
            self.update_gauges();
            tracing::info!(segment = %id, "segment dropped");
        }
        Ok(())
    }
}

#[async_trait]
impl DataNode for Historical {
    fn node_id(&self) -> &NodeId {
        &self.id
    }

    fn served(&self) -> Vec<SegmentId> {
        HistoricalControl::served(self)
    }

    fn served_version(&self) -> u64 {
        self.version.load(std::sync::atomic::Ordering::Acquire)
    }

    async fn run(
        &self,
        query: Arc<Query>,
        segments: Vec<SegmentSlice>,
        control: QueryControl,
    ) -> Result<NodeResult, RpcError> {
        let (found, missing) = self.snapshot(&segments);
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
                // Segments run in parallel; their partials then merge on the same pool.
                pool.install(|| {
                    let parts = found
                        .par_iter()
                        .map(|(seg, slice)| execute(&query, seg.as_ref(), &slice.clips, &ctx));
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
