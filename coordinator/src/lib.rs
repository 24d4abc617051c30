//! The coordinator role: the metadata authority and segment placement. It watches metadata and
//! what each historical serves, and hands out load and drop commands until every used,
//! non-overshadowed segment is served `replicants` times. It also serves Druid's coordinator
//! HTTP API.

mod api;
mod plan;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use futures::stream::{FuturesUnordered, StreamExt};
use tokio::sync::Notify;

use eddy_meta::{Command, MetadataStore};
use eddy_rpc::{Availability, HistoricalControl, SegmentHealth};
use eddy_runtime::Shutdown;
use eddy_types::{NodeId, SegmentId};

pub use api::router;
pub use plan::{Plan, owners, plan};

#[derive(Debug, Clone)]
pub struct CoordinatorConfig {
    /// Copies of each segment across historicals.
    pub replicants: usize,
    /// How often placement is reconsidered when nothing changes.
    pub period: Duration,
    /// Loads running at once per historical.
    pub load_concurrency: usize,
}

impl Default for CoordinatorConfig {
    fn default() -> Self {
        CoordinatorConfig {
            replicants: 1,
            period: Duration::from_secs(5),
            load_concurrency: 4,
        }
    }
}

pub struct Coordinator {
    meta: Arc<dyn MetadataStore>,
    historicals: Vec<Arc<dyn HistoricalControl>>,
    config: CoordinatorConfig,
    /// Wakes the placement loop.
    wake: Notify,
    /// Signalled after every round that loaded or dropped something.
    progress: Notify,
    /// Last load failure per segment, shown in load status.
    failures: Mutex<std::collections::HashMap<SegmentId, String>>,
}

impl Coordinator {
    pub fn start(
        meta: Arc<dyn MetadataStore>,
        historicals: Vec<Arc<dyn HistoricalControl>>,
        config: CoordinatorConfig,
        shutdown: Shutdown,
    ) -> Arc<Self> {
        let this = Arc::new(Coordinator {
            meta,
            historicals,
            config,
            wake: Notify::new(),
            progress: Notify::new(),
            failures: Mutex::new(Default::default()),
        });
        let runner = this.clone();
        tokio::spawn(async move { runner.run(shutdown).await });
        this
    }

    pub fn metadata(&self) -> &Arc<dyn MetadataStore> {
        &self.meta
    }

    pub fn historicals(&self) -> &[Arc<dyn HistoricalControl>] {
        &self.historicals
    }

    /// Wakes the placement loop now (e.g. after a publish).
    pub fn poke(&self) {
        self.wake.notify_one();
    }

    async fn run(self: Arc<Self>, shutdown: Shutdown) {
        let mut watch = self.meta.watch();
        loop {
            if let Err(e) = self.reconcile().await {
                tracing::warn!(error = %e, "segment placement round failed");
            }
            tokio::select! {
                _ = shutdown.wait() => return,
                _ = watch.changed() => {}
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(self.config.period) => {}
            }
        }
    }

    /// One placement round: mark overshadowed segments unused, then load and drop.
    pub async fn reconcile(&self) -> Result<(), eddy_meta::MetaError> {
        let state = self.meta.state();
        let used: Vec<_> = state.used_segments().collect();
        let nodes: Vec<NodeId> = self
            .historicals
            .iter()
            .map(|h| h.node_id().clone())
            .collect();
        let served: Vec<HashSet<SegmentId>> = self
            .historicals
            .iter()
            .map(|h| h.served().into_iter().collect())
            .collect();
        let p = plan(&used, &nodes, &served, self.config.replicants);
        if !p.mark_unused.is_empty() {
            tracing::info!(
                count = p.mark_unused.len(),
                "marking overshadowed segments unused"
            );
            self.meta
                .apply(Command::MarkSegmentsUnused {
                    ids: p.mark_unused.clone(),
                })
                .await?;
        }
        let records: std::collections::HashMap<&SegmentId, _> =
            used.iter().map(|s| (&s.id, *s)).collect();
        let mut loads = FuturesUnordered::new();
        for (n, id) in &p.load {
            let Some(record) = records.get(id) else {
                continue;
            };
            let node = self.historicals[*n].clone();
            let record = (*record).clone();
            loads.push(async move {
                let id = record.id.clone();
                (id, node.load(record).await)
            });
            if loads.len() >= self.config.load_concurrency * self.historicals.len().max(1) {
                self.finish_one(&mut loads).await;
            }
        }
        while !loads.is_empty() {
            self.finish_one(&mut loads).await;
        }
        for (n, id) in &p.drop {
            if let Err(e) = self.historicals[*n].drop_segment(id).await {
                tracing::warn!(segment = %id, error = %e, "drop failed");
            }
        }
        if !p.load.is_empty() || !p.drop.is_empty() {
            self.progress.notify_waiters();
        }
        Ok(())
    }

    async fn finish_one<F>(&self, loads: &mut FuturesUnordered<F>)
    where
        F: std::future::Future<Output = (SegmentId, Result<(), eddy_rpc::RpcError>)>,
    {
        if let Some((id, result)) = loads.next().await {
            let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
            match result {
                Ok(()) => {
                    failures.remove(&id);
                }
                Err(e) => {
                    tracing::warn!(segment = %id, error = %e, "segment load failed");
                    failures.insert(id, e.to_string());
                }
            }
        }
    }

    fn all_served(&self) -> HashSet<SegmentId> {
        self.historicals.iter().flat_map(|h| h.served()).collect()
    }
}

#[async_trait]
impl Availability for Coordinator {
    async fn wait_served(&self, ids: &[SegmentId], timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        self.poke();
        loop {
            // Register before checking, so a round finishing in between is not missed.
            let notified = self.progress.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let served = self.all_served();
            if ids.iter().all(|id| served.contains(id)) {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                let served = self.all_served();
                return ids.iter().all(|id| served.contains(id));
            }
        }
    }
}

impl SegmentHealth for Coordinator {
    fn load_failures(&self) -> Vec<(SegmentId, String)> {
        self.failures
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }
}
