//! Rows of the `sys` tables: segments (published, and realtime ones still being built),
//! servers, which server holds which segment, tasks and supervisors.

use eddy_meta::SupervisorState;
use eddy_types::time::format_iso;

use super::catalog::{Cell, NULL_I, NULL_S, i, s};
use crate::Broker;

pub fn segment_rows(broker: &Broker) -> Vec<Vec<Cell>> {
    let state = broker.meta_state();
    let served = broker.served_segments();
    let mut replicas: std::collections::HashMap<&eddy_types::SegmentId, i64> =
        std::collections::HashMap::new();
    for (_, ids) in &served {
        for id in ids {
            *replicas.entry(id).or_default() += 1;
        }
    }
    let mut out: Vec<Vec<Cell>> = state
        .segments
        .values()
        .filter(|r| r.used)
        .map(|r| {
            let n = replicas.get(&r.id).copied().unwrap_or(0);
            let dims: Vec<&str> = r.dimensions().collect();
            let metrics: Vec<&str> = r.metrics().collect();
            vec![
                s(r.id.to_string()),
                s(r.id.datasource.to_string()),
                s(format_iso(r.id.interval.start)),
                s(format_iso(r.id.interval.end)),
                i(r.size as i64),
                s(r.id.version.clone()),
                i(i64::from(r.id.partition)),
                i(n),
                i(r.num_rows as i64),
                i(1),
                i(1),
                i(i64::from(n > 0)),
                i(0),
                i(0),
                s(format!(
                    r#"{{"type":"numbered","partitionNum":{},"partitions":0}}"#,
                    r.id.partition
                )),
                s(serde_json::to_string(&dims).unwrap_or_default()),
                s(serde_json::to_string(&metrics).unwrap_or_default()),
                NULL_S,
                i(1),
            ]
        })
        .collect();
    // Realtime segments metadata does not know yet: served, not published.
    for (_, ids) in &served {
        for id in ids.iter().filter(|id| !state.segments.contains_key(*id)) {
            out.push(vec![
                s(id.to_string()),
                s(id.datasource.to_string()),
                s(format_iso(id.interval.start)),
                s(format_iso(id.interval.end)),
                i(0),
                s(id.version.clone()),
                i(i64::from(id.partition)),
                i(1),
                i(0),
                i(1),
                i(0),
                i(1),
                i(1),
                i(0),
                s(format!(
                    r#"{{"type":"numbered","partitionNum":{},"partitions":0}}"#,
                    id.partition
                )),
                NULL_S,
                NULL_S,
                NULL_S,
                i(0),
            ]);
        }
    }
    out
}

pub fn server_rows(broker: &Broker) -> Vec<Vec<Cell>> {
    broker
        .served_segments()
        .iter()
        .map(|(node, ids)| {
            vec![
                s(node.clone()),
                s(node.clone()),
                NULL_I,
                NULL_I,
                s(if node.ends_with("-realtime") {
                    "indexer"
                } else {
                    "historical"
                }),
                s("_default_tier"),
                i(ids.len() as i64),
                NULL_I,
                i(0),
                NULL_S,
            ]
        })
        .collect()
}

pub fn server_segment_rows(broker: &Broker) -> Vec<Vec<Cell>> {
    let mut out = Vec::new();
    for (node, ids) in broker.served_segments() {
        for id in ids {
            out.push(vec![s(node.clone()), s(id.to_string())]);
        }
    }
    out
}

pub fn task_rows(broker: &Broker) -> Vec<Vec<Cell>> {
    let state = broker.meta_state();
    state
        .tasks
        .values()
        .map(|t| {
            let status = format!("{:?}", t.state).to_uppercase();
            let runner = if status == "RUNNING" {
                "RUNNING"
            } else {
                "NONE"
            };
            vec![
                s(t.id.to_string()),
                s(t.id.to_string()),
                s(t.kind.clone()),
                s(t.datasource.to_string()),
                s(format_iso(t.created)),
                s(format_iso(t.created)),
                s(status),
                s(runner),
                match t.duration {
                    Some(d) => i(d),
                    None => NULL_I,
                },
                NULL_S,
                NULL_S,
                NULL_I,
                NULL_I,
                match &t.error {
                    Some(e) => s(e.clone()),
                    None => NULL_S,
                },
            ]
        })
        .collect()
}

pub fn supervisor_rows(broker: &Broker) -> Vec<Vec<Cell>> {
    let state = broker.meta_state();
    state
        .supervisors
        .values()
        .filter(|r| r.state != SupervisorState::Terminated)
        .map(|r| {
            let suspended = r.state == SupervisorState::Suspended;
            let state = if suspended { "SUSPENDED" } else { "RUNNING" };
            let topic = r
                .spec
                .pointer("/spec/ioConfig/topic")
                .and_then(serde_json::Value::as_str)
                .unwrap_or_default()
                .to_string();
            vec![
                s(r.id.clone()),
                s(state),
                s(state),
                i(1),
                s("kafka"),
                s(topic),
                i(i64::from(suspended)),
                s(r.spec.to_string()),
            ]
        })
        .collect()
}
