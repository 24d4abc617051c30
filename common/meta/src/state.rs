//! The metadata state machine: segments, tasks, supervisors, stream offsets. `apply` is pure and deterministic (time comes in
//! the command), so a local log and a Raft group replay the same commands to the same state.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use eddy_types::{DataSourceName, Interval, SegmentId, TaskId};

use crate::error::MetaError;
use crate::supervisor::{StreamOffsets, SupervisorRecord, SupervisorState};

/// A column of a published segment: name and Druid type (`STRING`, `LONG`, ...).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ColumnInfo {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub role: String,
}

/// A published segment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SegmentRecord {
    pub id: SegmentId,
    pub size: u64,
    pub num_rows: u64,
    pub columns: Vec<ColumnInfo>,
    /// Key of the file in deep storage.
    pub path: String,
    /// CRC-32 of the whole file, checked by historicals after download.
    pub crc32: u32,
    pub used: bool,
    /// When it was published (ms).
    pub created: i64,
}

impl SegmentRecord {
    pub fn dimensions(&self) -> impl Iterator<Item = &str> {
        self.columns
            .iter()
            .filter(|c| c.role == "dimension")
            .map(|c| c.name.as_str())
    }

    pub fn metrics(&self) -> impl Iterator<Item = &str> {
        self.columns
            .iter()
            .filter(|c| c.role == "metric")
            .map(|c| c.name.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum TaskState {
    Running,
    Success,
    Failed,
}

/// An ingestion task as the Overlord tracks it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskRecord {
    pub id: TaskId,
    #[serde(rename = "type")]
    pub kind: String,
    pub datasource: DataSourceName,
    pub state: TaskState,
    pub created: i64,
    /// Milliseconds it ran, once done.
    pub duration: Option<i64>,
    pub error: Option<String>,
    /// Row counts, progress and parse errors (Druid's ingestion report shape).
    pub report: Value,
    pub spec: Value,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(
    tag = "type",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum Command {
    /// Publishes segments atomically: all or none.
    PublishSegments {
        segments: Vec<SegmentRecord>,
    },
    /// Marks used segments of a datasource unused, all or those overlapping `interval`.
    MarkUnused {
        datasource: DataSourceName,
        interval: Option<Interval>,
        now: i64,
    },
    /// Marks specific segments unused (e.g. overshadowed ones).
    MarkSegmentsUnused {
        ids: Vec<SegmentId>,
    },
    PutTask {
        task: Box<TaskRecord>,
    },
    UpdateTask {
        id: TaskId,
        state: TaskState,
        duration: Option<i64>,
        error: Option<String>,
        report: Value,
    },
    /// Forgets finished tasks (running ones and unknown ids are left alone).
    ForgetTasks {
        ids: Vec<TaskId>,
    },
    /// Creates or replaces a supervisor (appending to its history).
    PutSupervisor {
        supervisor: Box<SupervisorRecord>,
    },
    SetSupervisorState {
        id: String,
        state: SupervisorState,
    },
    /// Clears a datasource's committed offsets, or sets some partitions' offsets of `stream`.
    ResetOffsets {
        datasource: DataSourceName,
        stream: String,
        partitions: Option<BTreeMap<u32, u64>>,
    },
    /// Publishes segments and moves stream offsets from `start` to `end` in one step, only if
    /// the committed offsets still equal `start`.
    PublishStream {
        datasource: DataSourceName,
        stream: String,
        start: BTreeMap<u32, Option<u64>>,
        end: BTreeMap<u32, u64>,
        segments: Vec<SegmentRecord>,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Outcome {
    Published(usize),
    MarkedUnused(usize),
    TaskStored,
    SupervisorStored,
    OffsetsReset,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MetaState {
    /// Commands applied so far.
    pub applied: u64,
    #[serde(with = "records")]
    pub segments: BTreeMap<SegmentId, SegmentRecord>,
    #[serde(with = "records")]
    pub tasks: BTreeMap<TaskId, TaskRecord>,
    #[serde(default, with = "records")]
    pub supervisors: BTreeMap<String, SupervisorRecord>,
    /// Committed stream offsets per datasource.
    #[serde(default)]
    pub stream_offsets: BTreeMap<String, StreamOffsets>,
}

/// Records that know their own key, so keyed maps serialize as plain lists.
pub trait Keyed {
    type Key: Ord + Clone;
    fn key(&self) -> &Self::Key;
}

impl Keyed for SegmentRecord {
    type Key = SegmentId;
    fn key(&self) -> &SegmentId {
        &self.id
    }
}

impl Keyed for TaskRecord {
    type Key = TaskId;
    fn key(&self) -> &TaskId {
        &self.id
    }
}

mod records {
    use std::collections::BTreeMap;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use super::Keyed;

    pub fn serialize<V: Keyed + Serialize, S: Serializer>(
        map: &BTreeMap<V::Key, V>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.collect_seq(map.values())
    }

    pub fn deserialize<'de, V: Keyed + Deserialize<'de>, D: Deserializer<'de>>(
        d: D,
    ) -> Result<BTreeMap<V::Key, V>, D::Error> {
        let list: Vec<V> = Vec::deserialize(d)?;
        Ok(list.into_iter().map(|v| (v.key().clone(), v)).collect())
    }
}

impl MetaState {
    pub fn apply(&mut self, cmd: &Command) -> Result<Outcome, MetaError> {
        let outcome = match cmd {
            Command::PublishSegments { segments } => {
                self.check_publishable(segments)?;
                for s in segments {
                    self.segments.insert(s.id.clone(), s.clone());
                }
                Outcome::Published(segments.len())
            }
            Command::MarkUnused {
                datasource,
                interval,
                ..
            } => {
                let mut n = 0;
                for s in self.segments.values_mut() {
                    if s.used
                        && &s.id.datasource == datasource
                        && interval.is_none_or(|i| i.overlaps(&s.id.interval))
                    {
                        s.used = false;
                        n += 1;
                    }
                }
                Outcome::MarkedUnused(n)
            }
            Command::MarkSegmentsUnused { ids } => {
                let mut n = 0;
                for id in ids {
                    if let Some(s) = self.segments.get_mut(id)
                        && s.used
                    {
                        s.used = false;
                        n += 1;
                    }
                }
                Outcome::MarkedUnused(n)
            }
            Command::PutTask { task } => {
                if self.tasks.contains_key(&task.id) {
                    return Err(MetaError::Conflict(format!(
                        "task {} already exists",
                        task.id
                    )));
                }
                self.tasks.insert(task.id.clone(), (**task).clone());
                Outcome::TaskStored
            }
            Command::UpdateTask {
                id,
                state,
                duration,
                error,
                report,
            } => {
                let task = self
                    .tasks
                    .get_mut(id)
                    .ok_or_else(|| MetaError::NotFound(format!("task {id}")))?;
                task.state = *state;
                task.duration = *duration;
                task.error.clone_from(error);
                task.report = report.clone();
                Outcome::TaskStored
            }
            Command::ForgetTasks { ids } => {
                for id in ids {
                    if self
                        .tasks
                        .get(id)
                        .is_some_and(|t| t.state != TaskState::Running)
                    {
                        self.tasks.remove(id);
                    }
                }
                Outcome::TaskStored
            }
            Command::PutSupervisor { supervisor } => {
                self.put_supervisor(&supervisor.id, supervisor);
                Outcome::SupervisorStored
            }
            Command::SetSupervisorState { id, state } => {
                self.set_supervisor_state(id, *state)?;
                Outcome::SupervisorStored
            }
            Command::ResetOffsets {
                datasource,
                stream,
                partitions,
            } => {
                self.reset_offsets(datasource, stream, partitions.as_ref());
                Outcome::OffsetsReset
            }
            Command::PublishStream {
                datasource,
                stream,
                start,
                end,
                segments,
            } => {
                self.publish_stream(datasource, stream, start, end, segments)?;
                Outcome::Published(segments.len())
            }
        };
        self.applied += 1;
        Ok(outcome)
    }

    /// Refuses segments already published with other contents.
    pub(crate) fn check_publishable(&self, segments: &[SegmentRecord]) -> Result<(), MetaError> {
        for s in segments {
            if let Some(existing) = self.segments.get(&s.id)
                && existing != s
            {
                return Err(MetaError::Conflict(format!(
                    "segment {} is already published with other contents",
                    s.id
                )));
            }
        }
        Ok(())
    }

    pub fn used_segments(&self) -> impl Iterator<Item = &SegmentRecord> {
        self.segments.values().filter(|s| s.used)
    }

    pub fn used_segments_of<'a>(
        &'a self,
        ds: &'a DataSourceName,
    ) -> impl Iterator<Item = &'a SegmentRecord> + 'a {
        self.used_segments().filter(move |s| &s.id.datasource == ds)
    }

    /// Datasources with at least one used segment, sorted.
    pub fn datasources(&self) -> Vec<DataSourceName> {
        let mut out: Vec<DataSourceName> = self
            .used_segments()
            .map(|s| s.id.datasource.clone())
            .collect();
        out.dedup();
        out
    }
}
