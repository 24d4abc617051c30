//! The indexing role. It runs ingestion tasks and serves Druid's task API
//! (`/druid/indexer/v1/task...`). Batch tasks (`index_parallel`) read files, index rows,
//! persist and upload segments, publish them in one metadata command and wait for a historical
//! to serve them. Stream supervisors run realtime task groups that make rows queryable as they
//! arrive and hand off segments with their offsets exactly once (see [`stream`]).

mod api;
mod batch;
mod live;
pub mod metrics;
pub mod stream;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};

use eddy_ingest::IngestError;
use eddy_meta::{Command, MetaError, MetadataStore, TaskRecord, TaskState};
use eddy_rpc::Availability;
use eddy_runtime::{SharedClock, Shutdown};
use eddy_storage::DeepStorage;
use eddy_types::spec::ingest::IndexTaskSpec;
use eddy_types::{ErrorCode, HasErrorCode, TaskId};

pub use api::router;
pub use batch::DEFAULT_MAX_ROWS_IN_MEMORY;
use live::LiveTask;
use stream::LiveTasks;

#[derive(Debug, thiserror::Error)]
pub enum TaskError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Failed(String),
    #[error(transparent)]
    Meta(#[from] MetaError),
}

impl From<IngestError> for TaskError {
    fn from(e: IngestError) -> Self {
        match e {
            IngestError::Spec(m) => TaskError::Invalid(m),
            other => TaskError::Failed(other.to_string()),
        }
    }
}

impl HasErrorCode for TaskError {
    fn error_code(&self) -> ErrorCode {
        match self {
            TaskError::Invalid(_) => ErrorCode::InvalidInput,
            TaskError::NotFound(_) => ErrorCode::NotFound,
            TaskError::Failed(_) => ErrorCode::Internal,
            TaskError::Meta(e) => e.error_code(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct TaskRunnerConfig {
    pub work_dir: PathBuf,
    pub max_rows_in_memory: usize,
    /// Default wait for published segments to be served before a task reports success.
    pub await_availability: Duration,
}

pub struct TaskRunner {
    meta: Arc<dyn MetadataStore>,
    deep: DeepStorage,
    availability: Arc<dyn Availability>,
    clock: SharedClock,
    config: TaskRunnerConfig,
    work_dir: PathBuf,
    live: Mutex<HashMap<TaskId, Arc<LiveTask>>>,
    /// Realtime tasks of the stream supervisors (listed with the batch tasks).
    stream_tasks: Arc<LiveTasks>,
    shutdown: Shutdown,
}

impl TaskRunner {
    /// Starts the runner. Tasks the metadata shows as running were interrupted by a stop: they
    /// are marked failed.
    pub async fn start(
        meta: Arc<dyn MetadataStore>,
        deep: DeepStorage,
        availability: Arc<dyn Availability>,
        clock: SharedClock,
        config: TaskRunnerConfig,
        shutdown: Shutdown,
    ) -> Result<Arc<Self>, TaskError> {
        std::fs::create_dir_all(&config.work_dir).map_err(|e| {
            TaskError::Failed(format!("creating {}: {e}", config.work_dir.display()))
        })?;
        let interrupted: Vec<TaskRecord> = meta
            .state()
            .tasks
            .values()
            .filter(|t| t.state == TaskState::Running)
            .cloned()
            .collect();
        for t in interrupted {
            let duration = clock.now_ms() - t.created;
            let error = if t.kind == stream::TASK_KIND {
                "interrupted: the node stopped while the task was running; its supervisor reads the rows again from the committed offsets"
            } else {
                "interrupted: the node stopped while the task was running; submit it again"
            };
            meta.apply(Command::UpdateTask {
                id: t.id.clone(),
                state: TaskState::Failed,
                duration: Some(duration),
                error: Some(error.into()),
                report: t.report.clone(),
            })
            .await?;
        }
        Ok(Arc::new(TaskRunner {
            meta,
            deep,
            availability,
            clock,
            work_dir: config.work_dir.clone(),
            config,
            live: Mutex::new(HashMap::new()),
            stream_tasks: Arc::default(),
            shutdown,
        }))
    }

    /// Validates and starts a task; returns its id.
    pub async fn submit(self: &Arc<Self>, body: &[u8]) -> Result<TaskId, TaskError> {
        let spec = IndexTaskSpec::from_json_bytes(body).map_err(TaskError::Invalid)?;
        eddy_ingest::format::validate(&spec.spec.io_config.input_format)?;
        eddy_ingest::source::list(&spec.spec.io_config.input_source)?;
        eddy_ingest::RowPipeline::new(&spec.spec.data_schema, None)?;
        let now = self.clock.now_ms();
        let id = match &spec.id {
            Some(id) => TaskId::new(id).map_err(|e| TaskError::Invalid(format!("id: {e}")))?,
            None => {
                let suffix: String = uuid::Uuid::new_v4().simple().to_string()[..8].to_string();
                let ts = eddy_types::time::format_iso(now).replace(':', "-");
                TaskId::new(format!(
                    "{}_{}_{suffix}_{ts}",
                    spec.kind, spec.spec.data_schema.data_source
                ))
                .map_err(|e| TaskError::Invalid(e.to_string()))?
            }
        };
        let raw: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        let record = TaskRecord {
            id: id.clone(),
            kind: spec.kind.clone(),
            datasource: spec.spec.data_schema.data_source.clone(),
            state: TaskState::Running,
            created: now,
            duration: None,
            error: None,
            report: json!({}),
            spec: raw,
        };
        self.meta
            .apply(Command::PutTask {
                task: Box::new(record),
            })
            .await?;
        let live = Arc::new(LiveTask::new(
            id.clone(),
            spec.spec.tuning_config.max_saved_parse_exceptions(),
            self.clock.clone(),
        ));
        self.live
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id.clone(), live.clone());
        metrics::TASKS.with_label_values(&["started"]).inc();
        let this = self.clone();
        tokio::spawn(async move { this.execute(spec, live, now).await });
        Ok(id)
    }

    async fn execute(self: Arc<Self>, spec: IndexTaskSpec, live: Arc<LiveTask>, started: i64) {
        let shutdown = self.shutdown.clone();
        let watcher = {
            let live = live.clone();
            tokio::spawn(async move {
                shutdown.wait().await;
                live.cancel();
            })
        };
        let result = batch::run(&self, &spec, live.clone()).await;
        watcher.abort();
        if result.is_ok() {
            live.set_phase(live::Phase::Done);
        }
        let duration = Some(self.clock.now_ms() - started);
        let (state, error, ingestion_state) = match &result {
            Ok(outcome) => {
                tracing::info!(task = %live.id, segments = outcome.segments.len(), available = outcome.available, "task succeeded");
                (TaskState::Success, None, "COMPLETED")
            }
            Err(e) => {
                tracing::warn!(task = %live.id, error = %e, "task failed");
                (TaskState::Failed, Some(e.to_string()), "FAILED")
            }
        };
        let mut report = live.report(ingestion_state, error.as_deref());
        if let Ok(outcome) = &result {
            report["segmentAvailabilityConfirmed"] = json!(outcome.available);
            report["segments"] = json!(
                outcome
                    .segments
                    .iter()
                    .map(|s| s.to_string())
                    .collect::<Vec<_>>()
            );
        }
        metrics::TASKS
            .with_label_values(&[if state == TaskState::Success {
                "succeeded"
            } else {
                "failed"
            }])
            .inc();
        if let Err(e) = self
            .meta
            .apply(Command::UpdateTask {
                id: live.id.clone(),
                state,
                duration,
                error,
                report,
            })
            .await
        {
            tracing::error!(task = %live.id, error = %e, "cannot record the task's end");
        }
        self.live
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&live.id);
    }

    pub fn live(&self, id: &TaskId) -> Option<Arc<LiveTask>> {
        self.live
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            .cloned()
    }

    /// The realtime tasks running here; the stream supervisors register theirs in it.
    pub fn stream_tasks(&self) -> Arc<LiveTasks> {
        self.stream_tasks.clone()
    }

    /// Asks a running task to stop: a batch task fails with "shut down"; a realtime task hands
    /// off what it read now and its supervisor starts the next one.
    pub fn shutdown_task(&self, id: &TaskId) -> Result<(), TaskError> {
        if let Some(l) = self.live(id) {
            l.cancel();
            return Ok(());
        }
        if self.stream_tasks.hand_off(id.as_str()) {
            return Ok(());
        }
        Err(TaskError::NotFound(format!("task {id} is not running")))
    }

    pub fn metadata(&self) -> &Arc<dyn MetadataStore> {
        &self.meta
    }
}
