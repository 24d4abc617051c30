//! The replicas of one task group (`ioConfig.replicas`): copies that read the same partitions
//! from the same committed offsets and index them independently, so the group's rows stay
//! queryable when one copy fails. Exactly one replica is *active*: queries read its pieces
//! only (the realtime node hides the others') and only it publishes. When it hands off, the
//! standbys drop what they hold and start again from the offsets it committed; when it fails,
//! a standby that started from the current committed offsets takes over at once, with the
//! rows it already indexed.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::watch;

use super::node::{Owner, RealtimeNode};
use super::supervise::lock;

/// Replica set numbers, unique on this node.
static NEXT_SET: AtomicU64 = AtomicU64::new(1);

struct Members {
    active: Option<u32>,
    /// Replicas running a generation, with the hand-off count their generation started at.
    running: BTreeMap<u32, u64>,
}

pub struct ReplicaSet {
    set: u64,
    replicas: u32,
    node: Arc<RealtimeNode>,
    members: Mutex<Members>,
    /// Hand-offs published by the group; a standby whose generation started before the last
    /// one holds rows that are now published and starts again.
    handoffs: watch::Sender<u64>,
}

impl ReplicaSet {
    pub fn new(node: Arc<RealtimeNode>, replicas: u32) -> Arc<ReplicaSet> {
        Arc::new(ReplicaSet {
            set: NEXT_SET.fetch_add(1, Ordering::Relaxed),
            replicas: replicas.max(1),
            node,
            members: Mutex::new(Members {
                active: None,
                running: BTreeMap::new(),
            }),
            handoffs: watch::channel(0).0,
        })
    }

    /// What `replica`'s pieces are tagged with on the realtime node (nothing with one replica:
    /// its pieces are always served).
    pub fn owner(&self, replica: u32) -> Option<Owner> {
        (self.replicas > 1).then_some(Owner {
            set: self.set,
            replica,
        })
    }

    /// Hand-offs so far (read before a generation reads the committed offsets).
    pub fn handoffs(&self) -> u64 {
        *self.handoffs.borrow()
    }

    pub fn watch(&self) -> watch::Receiver<u64> {
        self.handoffs.subscribe()
    }

    /// `replica` starts a generation that began reading at hand-off count `epoch`; it becomes
    /// active when no replica is and its offsets are the committed ones.
    pub fn join(&self, replica: u32, epoch: u64) {
        let mut m = lock(&self.members);
        m.running.insert(replica, epoch);
        if m.active.is_none() && epoch == self.handoffs() {
            m.active = Some(replica);
            self.show(m.active);
        }
    }

    pub fn is_active(&self, replica: u32) -> bool {
        self.replicas == 1 || lock(&self.members).active == Some(replica)
    }

    /// The active replica published its rows: standbys start again from the new offsets.
    pub fn handed_off(&self) {
        self.handoffs.send_modify(|n| *n += 1);
    }

    /// `replica` stops (failed, stopped, or starting again). When it was active, a standby
    /// that read from the committed offsets takes over in the same step, so queries go on
    /// seeing the group's rows; its own pieces are hidden from then on.
    pub fn leave(&self, replica: u32) {
        let mut m = lock(&self.members);
        m.running.remove(&replica);
        if m.active != Some(replica) {
            return;
        }
        let current = self.handoffs();
        m.active = m
            .running
            .iter()
            .find(|(_, epoch)| **epoch == current)
            .map(|(r, _)| *r);
        if let Some(next) = m.active {
            tracing::info!(
                replica = next,
                failed = replica,
                "a standby replica of a task group takes over"
            );
        }
        self.show(m.active);
    }

    fn show(&self, replica: Option<u32>) {
        if self.replicas > 1 {
            self.node.set_active(self.set, replica);
        }
    }
}

impl Drop for ReplicaSet {
    fn drop(&mut self) {
        self.show(None);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::collections::HashSet;
    use std::sync::RwLock;

    use eddy_rpc::DataNode;
    use eddy_runtime::CpuPool;
    use eddy_segment::{IncrementalIndex, IndexSpec};
    use eddy_types::granularity::Granularity;
    use eddy_types::{DataSourceName, Interval, NodeId, SegmentId};

    use super::*;
    use crate::stream::node::Hydrant;

    fn id(partition: u32) -> SegmentId {
        SegmentId {
            datasource: DataSourceName::new("events").unwrap(),
            interval: Interval::new(0, 3_600_000).unwrap(),
            version: "v1".into(),
            partition,
        }
    }

    fn piece(node: &RealtimeNode, partition: u32, owner: Option<Owner>) {
        let spec = IndexSpec {
            dimensions: Vec::new(),
            discover: true,
            exclusions: HashSet::new(),
            metrics: Vec::new(),
            query_granularity: Granularity::None,
            rollup: false,
            time_position: Some(0),
            row_capacity: 0,
        };
        let index = IncrementalIndex::new(id(partition), spec);
        node.announce(
            id(partition),
            Hydrant::Live(Arc::new(RwLock::new(index))),
            owner,
        );
    }

    fn node() -> Arc<RealtimeNode> {
        RealtimeNode::new(
            NodeId::new("test-realtime").unwrap(),
            CpuPool::new(1, "test").unwrap(),
        )
    }

    fn served(node: &RealtimeNode) -> Vec<u32> {
        let mut p: Vec<u32> = node.served().iter().map(|s| s.partition).collect();
        p.sort_unstable();
        p
    }

    #[test]
    fn only_the_active_replica_is_served_and_a_current_standby_takes_over() {
        let node = node();
        let set = ReplicaSet::new(node.clone(), 3);
        set.join(0, 0);
        set.join(1, 0);
        piece(&node, 0, set.owner(0));
        piece(&node, 1, set.owner(1));
        piece(&node, 9, None);
        assert!(set.is_active(0) && !set.is_active(1));
        assert_eq!(served(&node), [0, 9]);

        // The active copy publishes piece 0: it stays served whoever is active. Copy 1 began
        // before that hand-off, so it cannot take over; copy 2 began after it and can.
        node.release(&[id(0)]);
        set.handed_off();
        set.join(2, set.handoffs());
        piece(&node, 2, set.owner(2));
        set.leave(0);
        assert!(set.is_active(2));
        assert_eq!(served(&node), [0, 2, 9]);

        // With no current standby nobody is served until a copy starts afresh.
        set.leave(2);
        assert_eq!(served(&node), [0, 9]);
        set.leave(1);
        set.join(1, set.handoffs());
        assert!(set.is_active(1));
        assert_eq!(served(&node), [0, 1, 9]);
        drop(set);
        assert_eq!(served(&node), [0, 9]);
    }

    #[test]
    fn one_replica_is_always_served() {
        let node = node();
        let set = ReplicaSet::new(node.clone(), 1);
        assert_eq!(set.owner(0), None);
        piece(&node, 0, set.owner(0));
        set.leave(0);
        assert!(set.is_active(0));
        assert_eq!(served(&node), [0]);
    }
}
