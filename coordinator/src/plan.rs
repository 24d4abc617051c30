//! Segment placement, pure: from the used segments and what each historical serves, decide
//! which segments to load where, which to drop, and which are overshadowed.
//!
//! A segment is overshadowed only by newer versions that are already served in full, so the
//! old version stays loaded (and queryable) until the new one can answer everywhere: a reader
//! never sees a mix.

use std::collections::{BTreeMap, HashMap, HashSet};

use eddy_meta::{SegmentRecord, overshadowed};
use eddy_types::{DataSourceName, NodeId, SegmentId};

#[derive(Debug, Default, PartialEq, Eq)]
pub struct Plan {
    pub load: Vec<(usize, SegmentId)>,
    pub drop: Vec<(usize, SegmentId)>,
    pub mark_unused: Vec<SegmentId>,
}

/// Rendezvous hashing: the `n` nodes that rank highest for this segment.
pub fn owners(segment: &SegmentId, nodes: &[NodeId], n: usize) -> Vec<usize> {
    let mut ranked: Vec<(u64, usize)> = nodes
        .iter()
        .enumerate()
        .map(|(i, node)| {
            (
                xxhash_rust::xxh3::xxh3_64(format!("{node}|{segment}").as_bytes()),
                i,
            )
        })
        .collect();
    ranked.sort_unstable_by(|a, b| b.cmp(a));
    ranked.into_iter().take(n.max(1)).map(|(_, i)| i).collect()
}

pub fn plan(
    used: &[&SegmentRecord],
    nodes: &[NodeId],
    served: &[HashSet<SegmentId>],
    replicants: usize,
) -> Plan {
    let served_anywhere: HashSet<&SegmentId> = served.iter().flatten().collect();
    let mut by_ds: BTreeMap<&DataSourceName, Vec<&SegmentRecord>> = BTreeMap::new();
    for s in used {
        by_ds.entry(&s.id.datasource).or_default().push(s);
    }
    let mut mark_unused: Vec<SegmentId> = Vec::new();
    for records in by_ds.values() {
        // Publishes (version, publish time) whose every segment is served.
        let mut publishes: HashMap<(&str, i64), bool> = HashMap::new();
        for r in records {
            *publishes
                .entry((r.id.version.as_str(), r.created))
                .or_insert(true) &= served_anywhere.contains(&r.id);
        }
        let is_ready = |r: &SegmentRecord| publishes[&(r.id.version.as_str(), r.created)];
        let ready: Vec<&SegmentId> = records
            .iter()
            .filter(|r| is_ready(r))
            .map(|r| &r.id)
            .collect();
        mark_unused.extend(overshadowed(&ready));
        for id in records.iter().filter(|r| !is_ready(r)).map(|r| &r.id) {
            let mut with = ready.clone();
            with.push(id);
            if overshadowed(&with).contains(id) {
                mark_unused.push(id.clone());
            }
        }
    }
    let gone: HashSet<&SegmentId> = mark_unused.iter().collect();
    let mut wanted: HashMap<&SegmentId, Vec<usize>> = HashMap::new();
    for s in used {
        if !gone.contains(&s.id) && !nodes.is_empty() {
            wanted.insert(&s.id, owners(&s.id, nodes, replicants.min(nodes.len())));
        }
    }
    let mut load = Vec::new();
    for (id, owners) in &wanted {
        for n in owners {
            if !served[*n].contains(*id) {
                load.push((*n, (*id).clone()));
            }
        }
    }
    let mut drop = Vec::new();
    for (n, set) in served.iter().enumerate() {
        for id in set {
            let keep = match wanted.get(id) {
                Some(owners) => {
                    owners.contains(&n) || !owners.iter().all(|o| served[*o].contains(id))
                }
                None => false,
            };
            if !keep {
                drop.push((n, id.clone()));
            }
        }
    }
    load.sort();
    drop.sort();
    Plan {
        load,
        drop,
        mark_unused,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use eddy_meta::conformance::segment;

    fn node(n: &str) -> NodeId {
        NodeId::new(n).unwrap()
    }

    #[test]
    fn loads_everything_once_and_keeps_old_versions_until_new_ones_serve() {
        let v1 = segment("d", 0, "v1", 0);
        let v2a = segment("d", 0, "v2", 0);
        let v2b = segment("d", 0, "v2", 1);
        let nodes = [node("h1")];
        let used = [&v1, &v2a, &v2b];
        // Only v1 is served: load v2, keep v1.
        let served = [HashSet::from([v1.id.clone()])];
        let p = plan(&used, &nodes, &served, 1);
        assert_eq!(p.load.len(), 2);
        assert!(p.drop.is_empty() && p.mark_unused.is_empty(), "{p:?}");
        // v2 half served: still keep v1.
        let served = [HashSet::from([v1.id.clone(), v2a.id.clone()])];
        let p = plan(&used, &nodes, &served, 1);
        assert!(p.mark_unused.is_empty(), "{p:?}");
        // v2 fully served: v1 is overshadowed, dropped and marked unused.
        let served = [HashSet::from([
            v1.id.clone(),
            v2a.id.clone(),
            v2b.id.clone(),
        ])];
        let p = plan(&used, &nodes, &served, 1);
        assert_eq!(p.mark_unused, vec![v1.id.clone()]);
        assert_eq!(p.drop, vec![(0, v1.id.clone())]);
    }

    #[test]
    fn replicas_spread_over_nodes() {
        let segs: Vec<_> = (0..50).map(|d| segment("d", d, "v1", 0)).collect();
        let used: Vec<&SegmentRecord> = segs.iter().collect();
        let nodes = [node("a"), node("b"), node("c")];
        let served = [HashSet::new(), HashSet::new(), HashSet::new()];
        let p = plan(&used, &nodes, &served, 2);
        assert_eq!(p.load.len(), 100);
        for n in 0..3 {
            let count = p.load.iter().filter(|(i, _)| *i == n).count();
            assert!((15..=50).contains(&count), "node {n} got {count}");
        }
        // Unused segments are dropped.
        let served = [
            HashSet::from([segment("x", 1, "v1", 0).id]),
            HashSet::new(),
            HashSet::new(),
        ];
        assert_eq!(plan(&[], &nodes, &served, 2).drop.len(), 1);
    }
}
