//! `DELETE /druid/v2/{queryId}` reaches a running query: the broker registers the query under
//! its id, and cancelling sets the flag every data node of that query watches. A data node that
//! holds the query until it sees the flag makes this deterministic.

// Test code: a failed unwrap is a failed assertion.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use async_trait::async_trait;

use eddy_broker::{Broker, BrokerConfig};
use eddy_meta::conformance::segment;
use eddy_meta::{Command, LocalMetadataStore, MetadataStore};
use eddy_query::{Query, QueryError};
use eddy_rpc::{DataNode, NodeResult, QueryControl, RpcError, SegmentHealth, SegmentSlice};
use eddy_runtime::pool::CpuPool;
use eddy_types::{NodeId, SegmentId};

/// Serves one segment and answers a query only when it is cancelled (or after ten seconds).
struct WaitsForCancel {
    id: NodeId,
    segment: SegmentId,
}

#[async_trait]
impl DataNode for WaitsForCancel {
    fn node_id(&self) -> &NodeId {
        &self.id
    }

    fn served(&self) -> Vec<SegmentId> {
        vec![self.segment.clone()]
    }

    fn served_version(&self) -> u64 {
        1
    }

    async fn run(
        &self,
        _query: Arc<Query>,
        _segments: Vec<SegmentSlice>,
        control: QueryControl,
    ) -> Result<NodeResult, RpcError> {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !control.cancelled.load(Ordering::Relaxed) {
            if Instant::now() > deadline {
                return Err(RpcError::Failed("never cancelled".into()));
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        Err(QueryError::Cancelled(control.query_id.clone()).into())
    }
}

struct Healthy;

impl SegmentHealth for Healthy {
    fn load_failures(&self) -> Vec<(SegmentId, String)> {
        Vec::new()
    }
}

#[tokio::test]
async fn delete_cancels_the_running_query() {
    let dir = tempfile::tempdir().unwrap();
    let meta = Arc::new(LocalMetadataStore::open(dir.path()).unwrap());
    let record = segment("wiki", 0, "v1", 0);
    meta.apply(Command::PublishSegments {
        segments: vec![record.clone()],
    })
    .await
    .unwrap();
    let node = Arc::new(WaitsForCancel {
        id: NodeId::new("fake").unwrap(),
        segment: record.id.clone(),
    });
    let broker = Broker::new(
        Arc::new(meta),
        vec![node],
        Arc::new(Healthy),
        CpuPool::new(1, "test").unwrap(),
        BrokerConfig::default(),
    );
    let query = Query::from_json_bytes(
        br#"{"queryType": "timeseries", "dataSource": "wiki", "granularity": "all",
             "intervals": ["2020-01-01/2020-01-02"],
             "aggregations": [{"type": "count", "name": "c"}]}"#,
    )
    .unwrap();

    assert!(!broker.cancel("q-1"), "nothing runs yet");
    let running = {
        let broker = broker.clone();
        tokio::spawn(async move { broker.run(query, "q-1").await })
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while !broker.cancel("q-1") {
        assert!(Instant::now() < deadline, "the query never registered");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let result = running.await.unwrap();
    match result {
        Err(QueryError::Cancelled(id)) => assert_eq!(id, "q-1"),
        other => panic!("expected a cancellation, got {other:?}"),
    }
    assert!(!broker.cancel("q-1"), "a finished query is forgotten");
}
