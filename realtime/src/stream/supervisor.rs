//! Supervisors: one per datasource, stored in metadata (so they survive restarts). A running
//! supervisor discovers the topic's partitions, spreads them over `taskCount` task groups
//! (partition `p` goes to group `p % taskCount`, `replicas` copies of each), restarts copies that
//! fail, and reports state, offsets, lag and row counts for the supervisor API.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use eddy_meta::{Command, MetaError, SpecVersion, SupervisorRecord, SupervisorState};
use eddy_types::spec::ingest::InputFormat;
use eddy_types::spec::supervisor::SupervisorSpec;
use eddy_types::time::format_iso;
use eddy_types::{ErrorCode, HasErrorCode};

use super::StreamContext;
use super::supervise::{RunStatus, lock, state_of, supervise};
use super::task::Stop;

#[derive(Debug, thiserror::Error)]
pub enum SupervisorError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    NotFound(String),
    #[error(transparent)]
    Meta(#[from] MetaError),
}

impl HasErrorCode for SupervisorError {
    fn error_code(&self) -> ErrorCode {
        match self {
            SupervisorError::Invalid(_) => ErrorCode::InvalidInput,
            SupervisorError::NotFound(_) => ErrorCode::NotFound,
            SupervisorError::Meta(e) => e.error_code(),
        }
    }
}

struct Running {
    spec: Arc<SupervisorSpec>,
    stop: watch::Sender<Stop>,
    handle: JoinHandle<()>,
    status: Arc<RunStatus>,
}

pub struct Supervisors {
    ctx: Arc<StreamContext>,
    running: tokio::sync::Mutex<HashMap<String, Running>>,
}

fn parse_stored(record: &SupervisorRecord) -> Result<SupervisorSpec, String> {
    SupervisorSpec::from_json_bytes(record.spec.to_string().as_bytes())
}

impl Supervisors {
    /// Starts every supervisor metadata shows running. Local parts left by a previous run are
    /// deleted: nothing unpublished is kept, the rows are read again from committed offsets.
    pub async fn start(ctx: Arc<StreamContext>) -> Arc<Self> {
        if ctx.work_dir.exists()
            && let Err(e) = std::fs::remove_dir_all(&ctx.work_dir)
        {
            tracing::warn!(dir = %ctx.work_dir.display(), error = %e, "cannot clear the realtime work directory");
        }
        let this = Arc::new(Supervisors {
            ctx,
            running: tokio::sync::Mutex::new(HashMap::new()),
        });
        let records: Vec<SupervisorRecord> = this
            .ctx
            .meta
            .state()
            .supervisors
            .values()
            .filter(|s| s.state == SupervisorState::Running)
            .cloned()
            .collect();
        let mut running = this.running.lock().await;
        for r in records {
            match parse_stored(&r) {
                Ok(spec) => {
                    running.insert(r.id.clone(), this.launch(Arc::new(spec)));
                }
                Err(e) => {
                    tracing::error!(supervisor = %r.id, error = %e, "a stored supervisor spec no longer parses; it is not started");
                }
            }
        }
        drop(running);
        this
    }

    fn launch(&self, spec: Arc<SupervisorSpec>) -> Running {
        let (stop, rx) = watch::channel(Stop::Run);
        let status = Arc::new(RunStatus::new());
        let handle = tokio::spawn(supervise(
            self.ctx.clone(),
            spec.clone(),
            status.clone(),
            rx,
        ));
        Running {
            spec,
            stop,
            handle,
            status,
        }
    }

    /// Stops a running supervisor's tasks (publishing or not) and waits for them.
    async fn halt(&self, id: &str, mode: Stop) {
        let run = self.running.lock().await.remove(id);
        if let Some(run) = run {
            *lock(&run.status.detailed) = "STOPPING";
            let _ = run.stop.send(mode);
            let limit = Duration::from_millis(run.spec.settings.completion_timeout_ms as u64);
            if tokio::time::timeout(limit, run.handle).await.is_err() {
                tracing::error!(
                    supervisor = id,
                    "tasks did not stop within completionTimeout"
                );
            }
        }
    }

    /// Stops every supervisor without publishing (the node is shutting down).
    pub async fn shutdown(&self) {
        let ids: Vec<String> = self.running.lock().await.keys().cloned().collect();
        for id in ids {
            self.halt(&id, Stop::Abandon).await;
        }
    }

    fn record(&self, id: &str) -> Result<SupervisorRecord, SupervisorError> {
        self.ctx
            .meta
            .state()
            .supervisors
            .get(id)
            .filter(|r| r.state != SupervisorState::Terminated)
            .cloned()
            .ok_or_else(|| SupervisorError::NotFound(format!("[{id}] does not exist")))
    }

    fn spec_of(&self, id: &str) -> Result<(SupervisorRecord, SupervisorSpec), SupervisorError> {
        let record = self.record(id)?;
        let spec = parse_stored(&record).map_err(SupervisorError::Invalid)?;
        Ok((record, spec))
    }

    /// Creates or replaces the datasource's supervisor; returns its id.
    pub async fn submit(
        &self,
        body: &[u8],
        skip_restart_if_unmodified: bool,
    ) -> Result<String, SupervisorError> {
        let spec = SupervisorSpec::from_json_bytes(body).map_err(SupervisorError::Invalid)?;
        self.ctx.source(&spec).map_err(SupervisorError::Invalid)?;
        eddy_ingest::message::MessageDecoder::new(&spec.io_config.input_format)
            .map_err(|e| SupervisorError::Invalid(e.to_string()))?;
        if !matches!(
            spec.io_config.input_format,
            InputFormat::AvroStream { .. } | InputFormat::Kafka { .. }
        ) {
            eddy_ingest::format::validate(&spec.io_config.input_format)
                .map_err(|e| SupervisorError::Invalid(e.to_string()))?;
        }
        eddy_ingest::RowPipeline::new(&spec.data_schema, None)
            .map_err(|e| SupervisorError::Invalid(e.to_string()))?;
        let id = spec.datasource().as_str().to_string();
        let previous = self.ctx.meta.state().supervisors.get(&id).cloned();
        let unchanged = previous
            .as_ref()
            .is_some_and(|p| p.state != SupervisorState::Terminated && p.spec == spec.raw);
        if skip_restart_if_unmodified && unchanged {
            return Ok(id);
        }
        let state = if spec.suspended {
            SupervisorState::Suspended
        } else {
            SupervisorState::Running
        };
        self.ctx
            .meta
            .apply(Command::PutSupervisor {
                supervisor: Box::new(SupervisorRecord {
                    id: id.clone(),
                    datasource: spec.datasource().clone(),
                    spec: spec.raw.clone(),
                    state,
                    history: vec![SpecVersion {
                        spec: spec.raw.clone(),
                        version: format_iso(self.ctx.clock.now_ms()),
                    }],
                }),
            })
            .await?;
        self.halt(&id, Stop::Publish).await;
        if state == SupervisorState::Running {
            let run = self.launch(Arc::new(spec));
            self.running.lock().await.insert(id.clone(), run);
        }
        tracing::info!(supervisor = %id, "supervisor spec stored");
        Ok(id)
    }

    /// Ids of supervisors that are not terminated, sorted.
    pub fn ids(&self) -> Vec<String> {
        self.ctx
            .meta
            .state()
            .supervisors
            .values()
            .filter(|r| r.state != SupervisorState::Terminated)
            .map(|r| r.id.clone())
            .collect()
    }

    /// The spec as Druid echoes it.
    pub fn spec(&self, id: &str) -> Result<Value, SupervisorError> {
        let (record, spec) = self.spec_of(id)?;
        Ok(spec
            .with_suspended(record.state == SupervisorState::Suspended)
            .normalized())
    }

    async fn detailed_state(
        &self,
        record: &SupervisorRecord,
    ) -> (&'static str, Option<Arc<RunStatus>>) {
        if record.state == SupervisorState::Suspended {
            return ("SUSPENDED", None);
        }
        match self.running.lock().await.get(&record.id) {
            Some(run) => (run.status.detailed(), Some(run.status.clone())),
            None => ("PENDING", None),
        }
    }

    /// `{id, state, detailedState, healthy, suspended}` (plus `spec` when `full`).
    pub async fn summary(&self, id: &str, full: bool) -> Result<Value, SupervisorError> {
        let (record, spec) = self.spec_of(id)?;
        let (detailed, _) = self.detailed_state(&record).await;
        let suspended = record.state == SupervisorState::Suspended;
        let mut out = json!({
            "id": id,
            "state": state_of(detailed),
            "detailedState": detailed,
            "healthy": healthy(detailed),
            "suspended": suspended,
        });
        if full {
            out["spec"] = spec.with_suspended(suspended).normalized();
        }
        Ok(out)
    }

    pub async fn health(&self, id: &str) -> Result<bool, SupervisorError> {
        let record = self.record(id)?;
        Ok(healthy(self.detailed_state(&record).await.0))
    }

    /// Druid's supervisor status report.
    pub async fn status(&self, id: &str) -> Result<Value, SupervisorError> {
        let (record, spec) = self.spec_of(id)?;
        let (detailed, run) = self.detailed_state(&record).await;
        let s = &spec.settings;
        let now = self.ctx.clock.now_ms();
        let latest: BTreeMap<u32, u64> = match self.ctx.source(&spec) {
            Ok(source) => source
                .offsets(&s.topic)
                .await
                .map(|r| r.into_iter().map(|(p, (_, next))| (p, next)).collect())
                .unwrap_or_default(),
            Err(_) => BTreeMap::new(),
        };
        let committed = self
            .ctx
            .meta
            .state()
            .offsets_of(spec.datasource(), &s.topic);
        let mut active = Vec::new();
        let mut publishing = Vec::new();
        let mut lag_of: BTreeMap<u32, i64> = BTreeMap::new();
        let mut recent_errors = Vec::new();
        if let Some(run) = &run {
            for g in lock(&run.groups).values() {
                let current = lock(&g.current_offsets).clone();
                let lag: BTreeMap<String, i64> = current
                    .iter()
                    .map(|(p, o)| {
                        let l = latest.get(p).map_or(0, |l| *l as i64 - *o as i64);
                        // Replicas read the same partitions: the group lags as its best copy.
                        let least = lag_of.entry(*p).or_insert(l);
                        *least = (*least).min(l);
                        (p.to_string(), l)
                    })
                    .collect();
                let started = g.started.load(Ordering::Relaxed);
                let remaining = ((started + s.task_duration_ms - now) / 1000).max(0);
                let task = json!({
                    "id": g.task_id(),
                    "startingOffsets": string_keys(&lock(&g.starting_offsets)),
                    "startTime": format_iso(started),
                    "remainingSeconds": remaining,
                    "type": if g.publishing.load(Ordering::Relaxed) { "PUBLISHING" } else { "ACTIVE" },
                    "currentOffsets": string_keys(&current),
                    "lag": lag,
                });
                if g.publishing.load(Ordering::Relaxed) {
                    publishing.push(task);
                } else {
                    active.push(task);
                }
            }
            recent_errors = lock(&run.recent_errors).iter().cloned().collect();
        }
        // Partitions no task reads yet lag behind the committed offsets.
        for (p, l) in &latest {
            lag_of
                .entry(*p)
                .or_insert_with(|| committed.get(p).map_or(0, |c| *l as i64 - *c as i64));
        }
        let aggregate: i64 = lag_of.values().map(|l| (*l).max(0)).sum();
        let minimum = lag_of.values().copied().min().unwrap_or(0).max(0);
        let updated = run
            .as_ref()
            .map_or(0, |r| r.offsets_updated.load(Ordering::Relaxed) as i64);
        Ok(json!({
            "id": id,
            "generationTime": format_iso(now),
            "payload": {
                "dataSource": spec.datasource(),
                "stream": s.topic,
                "partitions": latest.len(),
                "replicas": s.replicas,
                "durationSeconds": s.task_duration_ms / 1000,
                "activeTasks": active,
                "publishingTasks": publishing,
                "latestOffsets": string_keys(&latest),
                "committedOffsets": string_keys(&committed),
                "minimumLag": minimum,
                "aggregateLag": aggregate,
                "offsetsLastUpdated": if updated > 0 { json!(format_iso(updated)) } else { Value::Null },
                "suspended": record.state == SupervisorState::Suspended,
                "healthy": healthy(detailed),
                "state": state_of(detailed),
                "detailedState": detailed,
                "recentErrors": recent_errors,
            }
        }))
    }

    /// Row counts per task group and task: moving averages and totals.
    pub async fn stats(&self, id: &str) -> Result<Value, SupervisorError> {
        self.record(id)?;
        let now = self.ctx.clock.now_ms();
        let mut out = serde_json::Map::new();
        if let Some(run) = self.running.lock().await.get(id) {
            for g in lock(&run.status.groups).values() {
                let task = json!({
                    "movingAverages": {"buildSegments": {
                        "1m": g.moving_average(now, 60_000),
                        "5m": g.moving_average(now, 300_000),
                        "15m": g.moving_average(now, 900_000),
                    }},
                    "totals": {"buildSegments": g.row_stats().to_json()},
                    "unparseableEvents": {"buildSegments": g.parse_errors()},
                });
                // Replicas of a group are listed under it, each by its task id.
                let group = out.entry(g.group.to_string()).or_insert_with(|| json!({}));
                if let Some(tasks) = group.as_object_mut() {
                    tasks.insert(g.task_id(), task);
                }
            }
        }
        Ok(Value::Object(out))
    }

    async fn set_state(&self, id: &str, want: SupervisorState) -> Result<Value, SupervisorError> {
        let (record, spec) = self.spec_of(id)?;
        if record.state == want {
            let what = if want == SupervisorState::Suspended {
                "suspended"
            } else {
                "running"
            };
            return Err(SupervisorError::Invalid(format!(
                "[{id}] is already {what}"
            )));
        }
        self.ctx
            .meta
            .apply(Command::SetSupervisorState {
                id: id.to_string(),
                state: want,
            })
            .await?;
        if want == SupervisorState::Suspended {
            self.halt(id, Stop::Publish).await;
        } else {
            let run = self.launch(Arc::new(spec.clone()));
            self.running.lock().await.insert(id.to_string(), run);
        }
        Ok(spec
            .with_suspended(want == SupervisorState::Suspended)
            .normalized())
    }

    pub async fn suspend(&self, id: &str) -> Result<Value, SupervisorError> {
        self.set_state(id, SupervisorState::Suspended).await
    }

    pub async fn resume(&self, id: &str) -> Result<Value, SupervisorError> {
        self.set_state(id, SupervisorState::Running).await
    }

    /// Stops the supervisor for good (its tasks publish first); the history is kept.
    pub async fn terminate(&self, id: &str) -> Result<(), SupervisorError> {
        self.record(id)?;
        self.ctx
            .meta
            .apply(Command::SetSupervisorState {
                id: id.to_string(),
                state: SupervisorState::Terminated,
            })
            .await?;
        self.halt(id, Stop::Publish).await;
        Ok(())
    }

    /// Applies `op` to every supervisor it fits, ignoring those already there.
    pub async fn for_all(&self, want: Option<SupervisorState>) {
        for id in self.ids() {
            let result = match want {
                Some(SupervisorState::Suspended) => self.suspend(&id).await.map(|_| ()),
                Some(SupervisorState::Running) => self.resume(&id).await.map(|_| ()),
                _ => self.terminate(&id).await,
            };
            if let Err(e) = result {
                tracing::debug!(supervisor = %id, error = %e, "bulk supervisor change skipped");
            }
        }
    }

    /// Forgets committed offsets (all, or the given partitions' new values) and restarts the
    /// tasks without publishing; reading resumes per `useEarliestOffset` or at the given offsets.
    pub async fn reset(
        &self,
        id: &str,
        partitions: Option<BTreeMap<u32, u64>>,
    ) -> Result<(), SupervisorError> {
        let (record, spec) = self.spec_of(id)?;
        self.halt(id, Stop::Abandon).await;
        self.ctx
            .meta
            .apply(Command::ResetOffsets {
                datasource: spec.datasource().clone(),
                stream: spec.settings.topic.clone(),
                partitions,
            })
            .await?;
        if record.state == SupervisorState::Running {
            let run = self.launch(Arc::new(spec));
            self.running.lock().await.insert(id.to_string(), run);
        }
        Ok(())
    }

    /// Asks task groups (all when `groups` is empty) to hand off now.
    pub async fn handoff(&self, id: &str, groups: &[u32]) -> Result<(), SupervisorError> {
        self.record(id)?;
        if let Some(run) = self.running.lock().await.get(id) {
            for g in lock(&run.status.groups).values() {
                // Standby copies start again when the active one publishes.
                if (groups.is_empty() || groups.contains(&g.group)) && g.is_active() {
                    g.handoff_requested.store(true, Ordering::Relaxed);
                }
            }
        }
        Ok(())
    }

    /// Spec history: of one supervisor (terminated ones included), or of all.
    pub fn history(&self, id: Option<&str>) -> Result<Value, SupervisorError> {
        let state = self.ctx.meta.state();
        let list = |r: &SupervisorRecord| -> Value {
            Value::Array(
                r.history
                    .iter()
                    .rev()
                    .map(|h| json!({"spec": h.spec, "version": h.version}))
                    .collect(),
            )
        };
        match id {
            Some(id) => state
                .supervisors
                .get(id)
                .map(list)
                .ok_or_else(|| SupervisorError::NotFound(format!("[{id}] does not exist"))),
            None => Ok(Value::Object(
                state
                    .supervisors
                    .values()
                    .map(|r| (r.id.clone(), list(r)))
                    .collect(),
            )),
        }
    }
}

fn healthy(detailed: &str) -> bool {
    !matches!(
        state_of(detailed),
        "UNHEALTHY_SUPERVISOR" | "UNHEALTHY_TASKS"
    )
}

fn string_keys(m: &BTreeMap<u32, u64>) -> Value {
    Value::Object(m.iter().map(|(k, v)| (k.to_string(), json!(v))).collect())
}
