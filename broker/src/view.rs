//! What the broker knows about one datasource, derived from metadata and what nodes serve, and
//! cached until either changes: the segments of complete publishes with the nodes serving them,
//! the datasource's columns, and the used segments (for load-failure checks).

use std::collections::HashSet;

use hashbrown::HashMap;

use eddy_meta::MetaState;
use eddy_rpc::DataNode;
use eddy_types::{DataSourceName, Interval, SegmentId};

pub struct DsView {
    /// Metadata version and summed node versions this view was built from.
    pub key: (u64, u64),
    /// Segments of complete publishes, each with the nodes serving it.
    pub candidates: Vec<(SegmentId, Vec<usize>)>,
    /// Column names across used segments (and `__time`).
    pub columns: HashSet<String>,
    /// Every used segment, for load-failure checks.
    pub used: Vec<(SegmentId, Interval)>,
    /// Whether the datasource exists at all (used segments or served data).
    pub known: bool,
}

impl DsView {
    pub fn build(
        ds: &DataSourceName,
        state: &MetaState,
        nodes: &[std::sync::Arc<dyn DataNode>],
        key: (u64, u64),
    ) -> DsView {
        let mut servers: HashMap<SegmentId, Vec<usize>> = HashMap::new();
        for (i, n) in nodes.iter().enumerate() {
            for s in n.served() {
                if &s.datasource == ds {
                    servers.entry(s).or_default().push(i);
                }
            }
        }
        let records: Vec<_> = state.used_segments_of(ds).collect();
        // A publish (version and publish time) takes part only when every segment of it is
        // served somewhere: readers never see part of a replacement.
        let mut complete: HashMap<(&str, i64), bool> = HashMap::new();
        for r in &records {
            *complete
                .entry((r.id.version.as_str(), r.created))
                .or_insert(true) &= servers.contains_key(&r.id);
        }
        let mut candidates: Vec<(SegmentId, Vec<usize>)> = records
            .iter()
            .filter(|r| complete[&(r.id.version.as_str(), r.created)])
            .filter_map(|r| servers.get(&r.id).map(|n| (r.id.clone(), n.clone())))
            .collect();
        let mut columns: HashSet<String> = records
            .iter()
            .flat_map(|r| r.columns.iter().map(|c| c.name.clone()))
            .collect();
        // Realtime segments metadata does not know yet take part as they are: their version is
        // the one their time chunk is appended to, so the timeline places them with the rest.
        for (id, on) in &servers {
            if state.segments.contains_key(id) {
                continue;
            }
            candidates.push((id.clone(), on.clone()));
            for &i in on {
                if let Some(cols) = nodes[i].unpublished_columns(id) {
                    columns.extend(cols.into_iter().map(|c| c.name));
                }
            }
        }
        candidates.sort_by(|a, b| a.0.cmp(&b.0));
        columns.insert(eddy_types::TIME_COLUMN.to_string());
        let used = records
            .iter()
            .map(|r| (r.id.clone(), r.id.interval))
            .collect();
        // Served segments count unless metadata marked them unused (they are being dropped);
        // segments metadata does not know yet (realtime ones) do count.
        let served_live = servers
            .keys()
            .any(|id| state.segments.get(id).is_none_or(|r| r.used));
        DsView {
            key,
            candidates,
            columns,
            used,
            known: !records.is_empty() || served_live,
        }
    }
}
