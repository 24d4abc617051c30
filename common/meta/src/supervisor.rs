//! Supervisor specs and the stream offsets their tasks have committed. Offsets move only
//! together with the segments read up to them ([`Command::PublishStream`]), and only from the
//! offsets the task started at: that compare-and-set is what makes stream ingestion exactly-once.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use eddy_types::DataSourceName;

use crate::error::MetaError;
use crate::state::{Keyed, MetaState, SegmentRecord};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum SupervisorState {
    Running,
    Suspended,
    /// Terminated: kept as a tombstone with its history, reads nothing.
    Terminated,
}

/// One version of a supervisor's spec, for `/history`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpecVersion {
    pub spec: Value,
    /// ISO time it was submitted.
    pub version: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SupervisorRecord {
    pub id: String,
    pub datasource: DataSourceName,
    /// The spec as submitted (validated); normalized when echoed.
    pub spec: Value,
    pub state: SupervisorState,
    pub history: Vec<SpecVersion>,
}

impl Keyed for SupervisorRecord {
    type Key = String;
    fn key(&self) -> &String {
        &self.id
    }
}

/// Committed offsets of a datasource's stream: per partition, the next offset to read.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamOffsets {
    pub stream: String,
    pub partitions: BTreeMap<u32, u64>,
}

impl MetaState {
    /// The committed offsets of `datasource` for `stream` (empty when none or another stream).
    pub fn offsets_of(&self, datasource: &DataSourceName, stream: &str) -> BTreeMap<u32, u64> {
        self.stream_offsets
            .get(datasource.as_str())
            .filter(|o| o.stream == stream)
            .map(|o| o.partitions.clone())
            .unwrap_or_default()
    }

    pub(crate) fn put_supervisor(&mut self, id: &str, record: &SupervisorRecord) {
        let entry = self
            .supervisors
            .entry(id.to_string())
            .or_insert_with(|| SupervisorRecord {
                history: Vec::new(),
                ..record.clone()
            });
        let history = std::mem::take(&mut entry.history);
        *entry = record.clone();
        entry.history = history;
        entry.history.extend(record.history.iter().cloned());
    }

    pub(crate) fn set_supervisor_state(
        &mut self,
        id: &str,
        state: SupervisorState,
    ) -> Result<(), MetaError> {
        let s = self
            .supervisors
            .get_mut(id)
            .ok_or_else(|| MetaError::NotFound(format!("supervisor {id}")))?;
        s.state = state;
        Ok(())
    }

    pub(crate) fn reset_offsets(
        &mut self,
        datasource: &DataSourceName,
        stream: &str,
        partitions: Option<&BTreeMap<u32, u64>>,
    ) {
        match partitions {
            None => {
                self.stream_offsets.remove(datasource.as_str());
            }
            Some(set) => {
                let o = self
                    .stream_offsets
                    .entry(datasource.as_str().to_string())
                    .or_default();
                if o.stream != stream {
                    *o = StreamOffsets {
                        stream: stream.to_string(),
                        partitions: BTreeMap::new(),
                    };
                }
                o.partitions.extend(set.iter().map(|(p, v)| (*p, *v)));
            }
        }
    }

    /// Publishes `segments` and moves offsets from `start` to `end`, only if the committed
    /// offsets still equal `start` (`None`: nothing committed for that partition).
    pub(crate) fn publish_stream(
        &mut self,
        datasource: &DataSourceName,
        stream: &str,
        start: &BTreeMap<u32, Option<u64>>,
        end: &BTreeMap<u32, u64>,
        segments: &[SegmentRecord],
    ) -> Result<(), MetaError> {
        let committed = self.offsets_of(datasource, stream);
        for (p, expected) in start {
            let have = committed.get(p).copied();
            if have != *expected {
                return Err(MetaError::Conflict(format!(
                    "offsets of {datasource} partition {p} of {stream:?} are {} in metadata, not {} where the task started; another task or a reset moved them",
                    have.map_or("unset".into(), |v| v.to_string()),
                    expected.map_or("unset".into(), |v| v.to_string()),
                )));
            }
        }
        self.check_publishable(segments)?;
        for s in segments {
            self.segments.insert(s.id.clone(), s.clone());
        }
        let entry = self
            .stream_offsets
            .entry(datasource.as_str().to_string())
            .or_default();
        if entry.stream != stream {
            *entry = StreamOffsets {
                stream: stream.to_string(),
                partitions: BTreeMap::new(),
            };
        }
        entry.partitions.extend(end.iter().map(|(p, v)| (*p, *v)));
        Ok(())
    }
}
