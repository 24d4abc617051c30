//! Realtime tasks in the task list. Each generation of a task group is one Druid task
//! (`index_kafka`): stored in metadata as RUNNING when it starts and updated to SUCCESS or
//! FAILED when it ends, so `/druid/indexer/v1/tasks`, `/task/{id}/status` and `sys.tasks` show
//! them next to batch tasks. While one runs, its row counts come live from the group.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

use eddy_ingest::stats::RowStats;
use eddy_meta::{Command, TaskRecord, TaskState};
use eddy_types::spec::supervisor::SupervisorSpec;
use eddy_types::{DataSourceName, TaskId};

use super::StreamContext;
use super::group::GroupState;
use super::supervise::lock;

/// The Druid task type of realtime tasks.
pub const KIND: &str = "index_kafka";

/// Finished realtime tasks kept per datasource (a supervisor starts one per task group every
/// `taskDuration`; older records are forgotten so metadata stays small).
const KEEP_FINISHED: usize = 100;

/// Running realtime tasks of this node: each task's group and the group's counts when the task
/// started (the group's counts run on across its tasks).
#[derive(Default)]
pub struct LiveTasks {
    tasks: Mutex<HashMap<String, (Arc<GroupState>, RowStats)>>,
}

fn since(now: RowStats, base: RowStats) -> RowStats {
    RowStats {
        processed: now.processed - base.processed,
        processed_with_error: now.processed_with_error - base.processed_with_error,
        unparseable: now.unparseable - base.unparseable,
        thrown_away: now.thrown_away - base.thrown_away,
        processed_bytes: now.processed_bytes - base.processed_bytes,
    }
}

/// Druid's ingestion report for a realtime task: row counts and the last parse errors.
fn report(state: &GroupState, base: RowStats) -> Value {
    let rows = since(state.row_stats(), base);
    json!({
        "ingestionState": "BUILD_SEGMENTS",
        "rowStats": {"buildSegments": rows.to_json()},
        "unparseableEvents": {"buildSegments": lock(&state.errors).to_json()},
    })
}

impl LiveTasks {
    /// The live report of a running realtime task.
    pub fn report(&self, id: &str) -> Option<Value> {
        let tasks = lock(&self.tasks);
        let (state, base) = tasks.get(id)?;
        Some(report(state, *base))
    }

    /// Asks a running realtime task to hand off now; false when no such task runs here.
    pub fn hand_off(&self, id: &str) -> bool {
        match lock(&self.tasks).get(id) {
            Some((state, _)) => {
                state
                    .handoff_requested
                    .store(true, std::sync::atomic::Ordering::Relaxed);
                true
            }
            None => false,
        }
    }
}

/// The task's payload as `/task/{id}` shows it.
fn payload(spec: &SupervisorSpec, id: &str, group: u32, start: &BTreeMap<u32, u64>) -> Value {
    let topic = &spec.settings.topic;
    let offsets: serde_json::Map<String, Value> = start
        .iter()
        .map(|(p, o)| (p.to_string(), json!(o)))
        .collect();
    json!({
        "type": KIND,
        "id": id,
        "groupId": format!("{KIND}_{}", spec.datasource()),
        "dataSource": spec.datasource(),
        "supervisorId": spec.datasource(),
        "dataSchema": spec.raw.get("dataSchema"),
        "tuningConfig": spec.raw.get("tuningConfig"),
        "ioConfig": {
            "type": "kafka",
            "taskGroupId": group,
            "topic": topic,
            "startSequenceNumbers": {"type": "start", "stream": topic,
                "partitionSequenceNumberMap": offsets},
        },
    })
}

async fn apply(ctx: &StreamContext, cmd: Command) {
    if let Err(e) = ctx.meta.apply(cmd).await {
        tracing::warn!(error = %e, "cannot record a realtime task in metadata");
    }
}

/// Records a starting task. (Tasks metadata still shows running when the node starts were cut
/// short by a stop; the task runner marks them FAILED then.)
pub(super) async fn started(
    ctx: &StreamContext,
    spec: &SupervisorSpec,
    state: &Arc<GroupState>,
    id: &str,
    start: &BTreeMap<u32, u64>,
) {
    let Ok(task_id) = TaskId::new(id) else {
        return;
    };
    lock(&ctx.tasks.tasks).insert(id.to_string(), (state.clone(), state.row_stats()));
    apply(
        ctx,
        Command::PutTask {
            task: Box::new(TaskRecord {
                id: task_id,
                kind: KIND.into(),
                datasource: spec.datasource().clone(),
                state: TaskState::Running,
                created: state.started.load(std::sync::atomic::Ordering::Relaxed),
                duration: None,
                error: None,
                report: json!({}),
                spec: payload(spec, id, state.group, start),
            }),
        },
    )
    .await;
    forget_old(ctx, spec).await;
}

/// Records how a task ended: SUCCESS when what it read was published, FAILED with the reason
/// otherwise (its rows are read again by the next task).
pub(super) async fn ended(ctx: &StreamContext, id: &str, published: bool, error: Option<String>) {
    let Some((state, base)) = lock(&ctx.tasks.tasks).remove(id) else {
        return;
    };
    let Ok(task_id) = TaskId::new(id) else {
        return;
    };
    let began = state.started.load(std::sync::atomic::Ordering::Relaxed);
    let error = match (published, error) {
        (true, _) => None,
        (false, Some(e)) => Some(e),
        (false, None) => Some(
            "stopped without publishing (the supervisor was reset or its node stopped); its supervisor reads the rows again from the committed offsets"
                .into(),
        ),
    };
    apply(
        ctx,
        Command::UpdateTask {
            id: task_id,
            state: if published {
                TaskState::Success
            } else {
                TaskState::Failed
            },
            duration: Some((ctx.clock.now_ms() - began).max(0)),
            error,
            report: report(&state, base),
        },
    )
    .await;
}

/// Forgets the finished realtime tasks of `spec`'s datasource beyond the newest
/// [`KEEP_FINISHED`].
async fn forget_old(ctx: &StreamContext, spec: &SupervisorSpec) {
    let ids = old_finished(
        ctx.meta.state().tasks.values(),
        spec.datasource(),
        KEEP_FINISHED,
    );
    if !ids.is_empty() {
        apply(ctx, Command::ForgetTasks { ids }).await;
    }
}

/// The finished realtime tasks of `ds` older than its newest `keep`.
fn old_finished<'a>(
    tasks: impl Iterator<Item = &'a TaskRecord>,
    ds: &DataSourceName,
    keep: usize,
) -> Vec<TaskId> {
    let mut finished: Vec<(i64, &TaskId)> = tasks
        .filter(|t| t.kind == KIND && t.state != TaskState::Running && t.datasource == *ds)
        .map(|t| (t.created, &t.id))
        .collect();
    if finished.len() <= keep {
        return Vec::new();
    }
    finished.sort_unstable_by(|a, b| b.cmp(a));
    finished[keep..]
        .iter()
        .map(|(_, id)| (*id).clone())
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn task(id: &str, ds: &str, kind: &str, state: TaskState, created: i64) -> TaskRecord {
        TaskRecord {
            id: TaskId::new(id).unwrap(),
            kind: kind.into(),
            datasource: DataSourceName::new(ds).unwrap(),
            state,
            created,
            duration: None,
            error: None,
            report: json!({}),
            spec: json!({}),
        }
    }

    #[test]
    fn only_old_finished_realtime_tasks_of_the_datasource_are_forgotten() {
        let tasks = [
            task("a1", "a", KIND, TaskState::Success, 1),
            task("a2", "a", KIND, TaskState::Failed, 2),
            task("a3", "a", KIND, TaskState::Success, 3),
            task("a4", "a", KIND, TaskState::Success, 4),
            task("a0", "a", KIND, TaskState::Running, 0),
            task("batch", "a", "index_parallel", TaskState::Success, 0),
            task("b1", "b", KIND, TaskState::Success, 0),
        ];
        let ds = DataSourceName::new("a").unwrap();
        let mut old = old_finished(tasks.iter(), &ds, 2);
        old.sort();
        assert_eq!(
            old,
            [TaskId::new("a1").unwrap(), TaskId::new("a2").unwrap()]
        );
        assert!(old_finished(tasks.iter(), &ds, 4).is_empty());
    }
}
