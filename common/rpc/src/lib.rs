//! The interfaces roles use to reach each other. Only the `eddy` package decides whether an
//! implementation is in-process (the role's own struct) or remote.
//!
//! - [`DataNode`]: runs native queries on the segments a node serves (historicals, and realtime
//!   nodes) and reports what it serves. The broker's scatter-gather goes through it.
//! - [`HistoricalControl`]: load and drop commands from the coordinator.
//! - [`Availability`]: whether published segments are served yet (tasks wait on it before
//!   reporting success).

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use async_trait::async_trait;

use eddy_meta::SegmentRecord;
use eddy_query::{Partial, Query, QueryError};
use eddy_types::{ErrorCode, HasErrorCode, Interval, NodeId, SegmentId};

#[derive(Debug, thiserror::Error)]
pub enum RpcError {
    #[error(transparent)]
    Query(#[from] QueryError),
    #[error("node {node} is unavailable: {reason}")]
    Unavailable { node: String, reason: String },
    #[error("{0}")]
    Failed(String),
}

impl HasErrorCode for RpcError {
    fn error_code(&self) -> ErrorCode {
        match self {
            RpcError::Query(e) => e.error_code(),
            RpcError::Unavailable { .. } => ErrorCode::Unavailable,
            RpcError::Failed(_) => ErrorCode::Internal,
        }
    }
}

/// A segment to query and the parts of its interval that are visible in the timeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentSlice {
    pub id: SegmentId,
    pub clips: Vec<Interval>,
}

/// Cancellation and deadline of one query, shared by every node it runs on.
#[derive(Debug, Clone)]
pub struct QueryControl {
    pub query_id: String,
    pub cancelled: Arc<AtomicBool>,
    pub deadline: Option<Instant>,
    pub timeout_ms: u64,
}

/// A node's answer: the merged partial of the segments it had, and the ones it did not.
#[derive(Debug)]
pub struct NodeResult {
    pub partial: Option<Partial>,
    pub missing: Vec<SegmentId>,
}

#[async_trait]
pub trait DataNode: Send + Sync {
    fn node_id(&self) -> &NodeId;
    /// Segments this node can answer for now.
    fn served(&self) -> Vec<SegmentId>;
    /// Grows whenever the served set changes (lets callers cache what they derive from it).
    fn served_version(&self) -> u64;
    /// Columns of a served segment metadata does not know yet (a realtime one); `None` for
    /// published segments, whose columns are in metadata.
    fn unpublished_columns(&self, _id: &SegmentId) -> Option<Vec<eddy_meta::ColumnInfo>> {
        None
    }
    async fn run(
        &self,
        query: Arc<Query>,
        segments: Vec<SegmentSlice>,
        control: QueryControl,
    ) -> Result<NodeResult, RpcError>;
}

#[async_trait]
pub trait HistoricalControl: Send + Sync {
    fn node_id(&self) -> &NodeId;
    fn served(&self) -> Vec<SegmentId>;
    /// Bytes of segments held, and the configured maximum.
    fn usage(&self) -> (u64, u64);
    async fn load(&self, segment: SegmentRecord) -> Result<(), RpcError>;
    async fn drop_segment(&self, id: &SegmentId) -> Result<(), RpcError>;
}

#[async_trait]
pub trait Availability: Send + Sync {
    /// Waits until every segment is served somewhere, or the timeout passes; returns whether
    /// they all are.
    async fn wait_served(&self, ids: &[SegmentId], timeout: Duration) -> bool;
}

/// Segments that could not be loaded, and why (the coordinator knows; the broker asks).
pub trait SegmentHealth: Send + Sync {
    fn load_failures(&self) -> Vec<(SegmentId, String)>;
}
