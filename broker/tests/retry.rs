//! A data node that stops serving some segments while a query runs: the broker asks again,
//! and counts each row once. A realtime node's standby replica taking over is the hard case:
//! the rows stay the same but move to other segment ids, so answers from the old ids cannot be
//! combined with the new ids'.

// Test code: a failed unwrap is a failed assertion.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use serde_json::json;

use eddy_broker::{Broker, BrokerConfig};
use eddy_meta::{ColumnInfo, LocalMetadataStore};
use eddy_query::engine::Context;
use eddy_query::{Partial, Query, QueryError, execute, merge};
use eddy_rpc::{DataNode, NodeResult, QueryControl, RpcError, SegmentHealth, SegmentSlice};
use eddy_runtime::pool::CpuPool;
use eddy_segment::{IncrementalIndex, IndexSpec};
use eddy_types::spec::ingest::DataSchema;
use eddy_types::{DataSourceName, Interval, NodeId, SegmentId};

const HOUR: i64 = 3_600_000;
const T0: i64 = 1_577_836_800_000; // 2020-01-01T00:00:00Z

type Pieces = HashMap<SegmentId, Arc<IncrementalIndex>>;

/// One hour's piece with `rows` rows, numbered from `first`.
fn piece(hour: i64, partition: u32, first: i64, rows: i64) -> (SegmentId, Arc<IncrementalIndex>) {
    let schema: DataSchema = serde_json::from_value(json!({
        "dataSource": "events",
        "timestampSpec": {"column": "ts"},
        "dimensionsSpec": {"dimensions": [{"type": "long", "name": "uid"}]},
        "granularitySpec": {"rollup": false, "queryGranularity": "none"}
    }))
    .unwrap();
    let id = SegmentId {
        datasource: DataSourceName::new("events").unwrap(),
        interval: Interval::new(T0 + hour * HOUR, T0 + (hour + 1) * HOUR).unwrap(),
        version: "v1".into(),
        partition,
    };
    let mut index = IncrementalIndex::new(id.clone(), IndexSpec::from_data_schema(&schema));
    for uid in first..first + rows {
        index.add(
            T0 + hour * HOUR + uid,
            json!({ "uid": uid }).as_object().unwrap(),
        );
    }
    (id, Arc::new(index))
}

/// Serves the pieces of one replica of a task group (two hours). At the first query the
/// replica fails: the standby's pieces (the same rows, other ids) are served from then on,
/// and the failed replica's first hour is already gone while that query reads the rest.
struct FailsOver {
    id: NodeId,
    pieces: Mutex<Pieces>,
    standby: Mutex<Option<Pieces>>,
    version: AtomicU64,
}

#[async_trait]
impl DataNode for FailsOver {
    fn node_id(&self) -> &NodeId {
        &self.id
    }

    fn served(&self) -> Vec<SegmentId> {
        self.pieces.lock().unwrap().keys().cloned().collect()
    }

    fn served_version(&self) -> u64 {
        self.version.load(Ordering::Acquire)
    }

    fn unpublished_columns(&self, _id: &SegmentId) -> Option<Vec<ColumnInfo>> {
        Some(vec![ColumnInfo {
            name: "uid".into(),
            kind: "LONG".into(),
            role: "dimension".into(),
        }])
    }

    async fn run(
        &self,
        query: Arc<Query>,
        segments: Vec<SegmentSlice>,
        control: QueryControl,
    ) -> Result<NodeResult, RpcError> {
        let mut reading = self.pieces.lock().unwrap().clone();
        if let Some(standby) = self.standby.lock().unwrap().take() {
            *self.pieces.lock().unwrap() = standby;
            self.version.fetch_add(1, Ordering::Release);
            reading.retain(|id, _| id.partition != 0);
        }
        let ctx = Context {
            query_id: &control.query_id,
            cancelled: &control.cancelled,
            deadline: None,
            timeout_ms: 0,
        };
        let mut parts: Vec<Partial> = Vec::new();
        let mut missing = Vec::new();
        for s in segments {
            match reading.get(&s.id) {
                Some(index) => parts.push(execute(&query, index.as_ref(), &s.clips, &ctx)?),
                None => missing.push(s.id),
            }
        }
        let partial = (!parts.is_empty())
            .then(|| merge(&query, parts))
            .transpose()
            .map_err(RpcError::Query)?;
        Ok(NodeResult { partial, missing })
    }
}

struct Healthy;

impl SegmentHealth for Healthy {
    fn load_failures(&self) -> Vec<(SegmentId, String)> {
        Vec::new()
    }
}

#[tokio::test]
async fn rows_moved_to_a_standby_replica_are_counted_once() {
    let dir = tempfile::tempdir().unwrap();
    let meta = Arc::new(LocalMetadataStore::open(dir.path()).unwrap());
    // Hour 0 holds uids 1..=20 and hour 1 uids 21..=50, in the active replica's partitions
    // 0 and 1 and in the standby's 2 and 3.
    let active: Pieces = [piece(0, 0, 1, 20), piece(1, 1, 21, 30)].into();
    let standby: Pieces = [piece(0, 2, 1, 20), piece(1, 3, 21, 30)].into();
    let node = Arc::new(FailsOver {
        id: NodeId::new("realtime").unwrap(),
        pieces: Mutex::new(active),
        standby: Mutex::new(Some(standby)),
        version: AtomicU64::new(1),
    });
    let broker = Broker::new(
        Arc::new(meta),
        vec![node.clone()],
        Arc::new(Healthy),
        CpuPool::new(1, "test").unwrap(),
        BrokerConfig::default(),
    );
    let query = Query::from_json(json!({
        "queryType": "timeseries", "dataSource": "events", "granularity": "all",
        "intervals": ["2020-01-01/2020-01-02"],
        "aggregations": [{"type": "count", "name": "n"}, {"type": "longSum", "name": "s", "fieldName": "uid"}]
    }))
    .unwrap();
    let answer: Result<_, QueryError> = broker.run(query, "q-1").await;
    let answer = answer.unwrap();
    assert!(
        node.standby.lock().unwrap().is_none(),
        "the replica failed over"
    );
    assert_eq!(
        answer,
        json!([{"timestamp": "2020-01-01T00:00:00.000Z", "result": {"n": 50, "s": 1275}}])
    );
}
