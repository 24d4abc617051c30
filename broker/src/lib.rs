//! The broker role: the query front. For a native query it checks the datasource and columns,
//! takes a timeline snapshot (newest complete publishes of what data nodes serve), sends each
//! node one request for its segments, merges the partial results and finalizes them.

mod api;
pub mod metrics;
pub mod sql;
mod view;

use std::collections::{BTreeSet, HashSet};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::future::join_all;
use hashbrown::HashMap;

use eddy_meta::{MetadataStore, visible};
use eddy_query::{Partial, Query, QueryError, finalize, merge};
use eddy_rpc::{DataNode, QueryControl, RpcError, SegmentHealth, SegmentSlice};
use eddy_runtime::CpuPool;
use eddy_types::{DataSourceName, Interval, SegmentId};

pub use api::router;
use view::DsView;

#[derive(Debug, Clone)]
pub struct BrokerConfig {
    /// Timeout when the query gives none (ms).
    pub default_timeout_ms: u64,
    /// Longest timeout a query may ask for (ms).
    pub max_timeout_ms: u64,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        BrokerConfig {
            default_timeout_ms: 300_000,
            max_timeout_ms: 3_600_000,
        }
    }
}

impl std::fmt::Debug for Broker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Broker")
            .field("nodes", &self.nodes.len())
            .finish()
    }
}

pub struct Broker {
    meta: Arc<dyn MetadataStore>,
    nodes: Vec<Arc<dyn DataNode>>,
    health: Arc<dyn SegmentHealth>,
    pool: CpuPool,
    config: BrokerConfig,
    running: Mutex<HashMap<String, Arc<AtomicBool>>>,
    views: Mutex<HashMap<DataSourceName, Arc<DsView>>>,
}

/// Retries when a node no longer has a segment the timeline gave it.
const MISSING_RETRIES: usize = 3;

impl Broker {
    pub fn new(
        meta: Arc<dyn MetadataStore>,
        nodes: Vec<Arc<dyn DataNode>>,
        health: Arc<dyn SegmentHealth>,
        pool: CpuPool,
        config: BrokerConfig,
    ) -> Arc<Self> {
        Arc::new(Broker {
            meta,
            nodes,
            health,
            pool,
            config,
            running: Mutex::new(HashMap::new()),
            views: Mutex::new(HashMap::new()),
        })
    }

    /// The datasource's view, rebuilt only when metadata or served segments changed.
    fn view(&self, ds: &DataSourceName) -> Arc<DsView> {
        let state = self.meta.state();
        let key = (
            state.applied,
            self.nodes.iter().map(|n| n.served_version()).sum::<u64>(),
        );
        if let Some(v) = self.views.lock().unwrap_or_else(|p| p.into_inner()).get(ds)
            && v.key == key
        {
            return v.clone();
        }
        let view = Arc::new(DsView::build(ds, &state, &self.nodes, key));
        self.views
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(ds.clone(), view.clone());
        view
    }

    /// Datasources with used segments or served data.
    pub fn datasources(&self) -> BTreeSet<DataSourceName> {
        let mut out: BTreeSet<DataSourceName> =
            self.meta.state().datasources().into_iter().collect();
        for n in &self.nodes {
            out.extend(n.served().into_iter().map(|s| s.datasource));
        }
        out
    }

    /// (dimensions, metrics) of a datasource across its used segments.
    pub fn columns(&self, ds: &DataSourceName) -> (Vec<String>, Vec<String>) {
        let state = self.meta.state();
        let mut dims: BTreeSet<String> = BTreeSet::new();
        let mut metrics: BTreeSet<String> = BTreeSet::new();
        for s in state.used_segments_of(ds) {
            dims.extend(s.dimensions().map(str::to_string));
            metrics.extend(s.metrics().map(str::to_string));
        }
        for cols in self.unpublished_columns(ds, &state) {
            for c in cols {
                match c.role.as_str() {
                    "dimension" => dims.insert(c.name),
                    _ => metrics.insert(c.name),
                };
            }
        }
        (dims.into_iter().collect(), metrics.into_iter().collect())
    }

    /// Columns of a datasource with their Druid types (`STRING`, `LONG`, ...): `__time` first,
    /// then dimensions and metrics in the order of the newest segment, then older columns.
    /// When segments disagree on a type, the widest wins (STRING over DOUBLE over LONG).
    pub fn column_types(&self, ds: &DataSourceName) -> Vec<(String, String)> {
        let state = self.meta.state();
        let mut records: Vec<_> = state.used_segments_of(ds).collect();
        records.sort_by_key(|r| std::cmp::Reverse((r.id.interval.end, r.created)));
        // Realtime columns come first: they are the newest.
        let realtime = self.unpublished_columns(ds, &state);
        let mut column_lists: Vec<&[eddy_meta::ColumnInfo]> =
            realtime.iter().map(Vec::as_slice).collect();
        column_lists.extend(records.iter().map(|r| r.columns.as_slice()));
        let mut out: Vec<(String, String)> =
            vec![(eddy_types::TIME_COLUMN.to_string(), "LONG".to_string())];
        let mut index: HashMap<String, usize> = HashMap::new();
        for role in ["dimension", "metric"] {
            for cols in &column_lists {
                for c in cols.iter().filter(|c| c.role == role) {
                    match index.get(&c.name) {
                        Some(&i) => out[i].1 = widest(&out[i].1, &c.kind).to_string(),
                        None => {
                            index.insert(c.name.clone(), out.len());
                            out.push((c.name.clone(), c.kind.clone()));
                        }
                    }
                }
            }
        }
        out
    }

    /// Columns of the served segments of `ds` that metadata does not know yet (realtime).
    fn unpublished_columns(
        &self,
        ds: &DataSourceName,
        state: &eddy_meta::MetaState,
    ) -> Vec<Vec<eddy_meta::ColumnInfo>> {
        let mut out = Vec::new();
        for n in &self.nodes {
            for id in n.served() {
                if &id.datasource == ds
                    && !state.segments.contains_key(&id)
                    && let Some(cols) = n.unpublished_columns(&id)
                {
                    out.push(cols);
                }
            }
        }
        out
    }

    /// Timeout of a query that names none (ms).
    pub fn default_timeout_ms(&self) -> u64 {
        self.config.default_timeout_ms
    }

    /// The metadata snapshot queries are planned against.
    pub fn meta_state(&self) -> Arc<eddy_meta::MetaState> {
        self.meta.state()
    }

    /// Each data node's id with the segments it serves.
    pub fn served_segments(&self) -> Vec<(String, Vec<SegmentId>)> {
        self.nodes
            .iter()
            .map(|n| (n.node_id().to_string(), n.served()))
            .collect()
    }

    /// Cancels every running query whose id starts with `prefix` (the native queries of one
    /// SQL statement); returns how many were running.
    pub fn cancel_prefix(&self, prefix: &str) -> usize {
        let running = self.running.lock().unwrap_or_else(|p| p.into_inner());
        let mut n = 0;
        for (id, flag) in running.iter() {
            if id.starts_with(prefix) {
                flag.store(true, std::sync::atomic::Ordering::Relaxed);
                n += 1;
            }
        }
        n
    }

    /// Cancels a running query; false when no such query runs.
    pub fn cancel(&self, query_id: &str) -> bool {
        match self
            .running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(query_id)
        {
            Some(flag) => {
                flag.store(true, std::sync::atomic::Ordering::Relaxed);
                true
            }
            None => false,
        }
    }

    fn check_columns(&self, query: &Query, view: &DsView) -> Result<(), QueryError> {
        let unknown: Vec<String> = query
            .referenced_columns()
            .into_iter()
            .filter(|c| !view.columns.contains(c))
            .collect();
        if unknown.is_empty() {
            return Ok(());
        }
        let mut cols: Vec<&str> = view.columns.iter().map(String::as_str).collect();
        cols.sort_unstable();
        Err(QueryError::Invalid(format!(
            "unknown column{} {} in dataSource {:?}; its columns are {}",
            if unknown.len() > 1 { "s" } else { "" },
            unknown
                .iter()
                .map(|c| format!("{c:?}"))
                .collect::<Vec<_>>()
                .join(", "),
            query.data_source().as_str(),
            cols.join(", ")
        )))
    }

    /// Fails when a segment the query needs could not be loaded: better an error than an answer
    /// that silently misses data.
    fn check_loadable(&self, view: &DsView, intervals: &[Interval]) -> Result<(), QueryError> {
        let failures = self.health.load_failures();
        if failures.is_empty() {
            return Ok(());
        }
        let needed: HashSet<&SegmentId> = view
            .used
            .iter()
            .filter(|(_, iv)| intervals.iter().any(|i| i.overlaps(iv)))
            .map(|(id, _)| id)
            .collect();
        let bad: Vec<String> = failures
            .iter()
            .filter(|(id, _)| needed.contains(id))
            .map(|(id, why)| format!("{id}: {why}"))
            .collect();
        if bad.is_empty() {
            return Ok(());
        }
        Err(QueryError::Unavailable(format!(
            "{} segment{} this query needs cannot be loaded: {}",
            bad.len(),
            if bad.len() > 1 { "s" } else { "" },
            bad.join("; ")
        )))
    }

    /// Runs a native query and returns Druid's JSON result.
    pub async fn run(&self, query: Query, query_id: &str) -> Result<serde_json::Value, QueryError> {
        let kind = query.type_name();
        let timer = metrics::QUERY_SECONDS
            .with_label_values(&[kind])
            .start_timer();
        let result = self.run_inner(query, query_id).await;
        timer.observe_duration();
        let outcome = match &result {
            Ok(_) => "ok",
            Err(QueryError::Timeout { .. }) => "timeout",
            Err(QueryError::Cancelled(_)) => "cancelled",
            Err(_) => "error",
        };
        metrics::QUERIES.with_label_values(&[kind, outcome]).inc();
        result
    }

    async fn run_inner(
        &self,
        query: Query,
        query_id: &str,
    ) -> Result<serde_json::Value, QueryError> {
        let ds = query.data_source().clone();
        let view = self.view(&ds);
        if !view.known {
            let known: Vec<String> = self
                .datasources()
                .into_iter()
                .map(|d| d.to_string())
                .collect();
            return Err(QueryError::Invalid(format!(
                "unknown dataSource {:?}; known datasources: [{}]",
                ds.as_str(),
                known.join(", ")
            )));
        }
        self.check_columns(&query, &view)?;
        let intervals = query.intervals();
        self.check_loadable(&view, &intervals)?;
        let timeout_ms = query
            .context()
            .timeout_ms()
            .unwrap_or(self.config.default_timeout_ms)
            .min(self.config.max_timeout_ms);
        let cancelled = Arc::new(AtomicBool::new(false));
        self.running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(query_id.to_string(), cancelled.clone());
        let control = QueryControl {
            query_id: query_id.to_string(),
            cancelled: cancelled.clone(),
            deadline: Some(Instant::now() + Duration::from_millis(timeout_ms)),
            timeout_ms,
        };
        let query = Arc::new(query);
        let work = self.scatter_gather(query.clone(), &ds, view, &intervals, control);
        let outcome = tokio::time::timeout(Duration::from_millis(timeout_ms), work).await;
        self.running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(query_id);
        match outcome {
            Err(_) => {
                cancelled.store(true, std::sync::atomic::Ordering::Relaxed);
                Err(QueryError::Timeout {
                    query_id: query_id.to_string(),
                    timeout_ms,
                })
            }
            Ok(Err(e)) => Err(e),
            Ok(Ok(partials)) => {
                let q = query.clone();
                self.pool
                    .run(move || {
                        let merged = merge(&q, partials)?;
                        finalize(&q, merged)
                    })
                    .await
            }
        }
    }

    async fn scatter_gather(
        &self,
        query: Arc<Query>,
        ds: &DataSourceName,
        mut view: Arc<DsView>,
        intervals: &[Interval],
        control: QueryControl,
    ) -> Result<Vec<Partial>, QueryError> {
        let mut partials: Vec<Partial> = Vec::new();
        let mut done: HashSet<SegmentId> = HashSet::new();
        let mut missing: Vec<SegmentId> = Vec::new();
        for attempt in 0..=MISSING_RETRIES {
            if attempt > 0 {
                view = self.view(ds);
            }
            let mut asks = plan(&view, intervals, &done);
            if !missing.is_empty() {
                let lost: HashSet<&SegmentId> = missing.iter().collect();
                let planned = asks
                    .iter()
                    .flat_map(|(_, s)| s)
                    .filter(|s| lost.contains(&s.id));
                if planned.count() == lost.len() {
                    // Every missing segment is served by another node now (the realtime node
                    // dropped its copy once a historical served it; a historical dropped
                    // one another historical also serves): ask for those only.
                    for (_, slices) in &mut asks {
                        slices.retain(|s| lost.contains(&s.id));
                    }
                    asks.retain(|(_, slices)| !slices.is_empty());
                } else {
                    // Some rows moved to other segment ids (a standby replica took over, parts
                    // were merged): the answers so far cannot be combined with the new
                    // segments without counting rows twice or missing some, so start again.
                    partials.clear();
                    done.clear();
                    asks = plan(&view, intervals, &done);
                }
                missing.clear();
            }
            if asks.is_empty() {
                break;
            }
            let calls = asks.into_iter().map(|(node, slices)| {
                let node = self.nodes[node].clone();
                let query = query.clone();
                let control = control.clone();
                async move {
                    let ids: Vec<SegmentId> = slices.iter().map(|s| s.id.clone()).collect();
                    (ids, node.run(query, slices, control).await)
                }
            });
            for (ids, result) in join_all(calls).await {
                let result = result.map_err(|e| match e {
                    RpcError::Query(q) => q,
                    other => QueryError::Internal(other.to_string()),
                })?;
                let lost: HashSet<&SegmentId> = result.missing.iter().collect();
                done.extend(ids.iter().filter(|id| !lost.contains(id)).cloned());
                missing.extend(result.missing);
                partials.extend(result.partial);
            }
            if missing.is_empty() {
                break;
            }
            if attempt == MISSING_RETRIES {
                return Err(QueryError::Internal(format!(
                    "segments became unavailable while the query ran: {}",
                    missing
                        .iter()
                        .map(|s| s.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
            tracing::debug!(
                count = missing.len(),
                "retrying segments a node no longer serves"
            );
            tokio::time::sleep(Duration::from_millis(20 * (attempt as u64 + 1))).await;
        }
        Ok(partials)
    }
}

/// The wider of two Druid column types.
fn widest<'a>(a: &'a str, b: &'a str) -> &'a str {
    let rank = |t: &str| match t {
        "LONG" => 0,
        "FLOAT" => 1,
        "DOUBLE" => 2,
        "STRING" => 4,
        _ => 3,
    };
    if rank(b) > rank(a) { b } else { a }
}

/// Node → segment slices for the visible segments of complete publishes, skipping `done`.
fn plan(
    view: &DsView,
    intervals: &[Interval],
    done: &HashSet<SegmentId>,
) -> Vec<(usize, Vec<SegmentSlice>)> {
    let candidates: Vec<&SegmentId> = view.candidates.iter().map(|(id, _)| id).collect();
    let servers: HashMap<&SegmentId, &Vec<usize>> =
        view.candidates.iter().map(|(id, n)| (id, n)).collect();
    let mut by_node: HashMap<usize, Vec<SegmentSlice>> = HashMap::new();
    for v in visible(&candidates, intervals) {
        if done.contains(&v.id) {
            continue;
        }
        let Some(nodes) = servers.get(&v.id) else {
            continue;
        };
        // Spread replicas: pick by the segment's hash.
        let pick = nodes[(xxhash_rust::xxh3::xxh3_64(v.id.version.as_bytes()) as usize
            + v.id.interval.start as usize)
            % nodes.len()];
        by_node.entry(pick).or_default().push(SegmentSlice {
            id: v.id,
            clips: v.clips,
        });
    }
    let mut out: Vec<(usize, Vec<SegmentSlice>)> = by_node.into_iter().collect();
    out.sort_by_key(|(n, _)| *n);
    out
}
