//! A behavioural test suite every `MetadataStore` must pass (the embedded one and, later, the
//! Raft one), so both keep one contract.

// Test code: a failed unwrap is a failed assertion.
#![allow(clippy::unwrap_used)]

use serde_json::json;

use eddy_types::{DataSourceName, Interval, SegmentId, TaskId};

use crate::error::MetaError;
use crate::state::{ColumnInfo, Command, Outcome, SegmentRecord, TaskRecord, TaskState};
use crate::store::MetadataStore;

pub fn segment(ds: &str, day: i64, version: &str, partition: u32) -> SegmentRecord {
    let start = 1_577_836_800_000 + day * 86_400_000;
    let id = SegmentId {
        datasource: DataSourceName::new(ds).unwrap_or_else(|e| panic!("test datasource name: {e}")),
        interval: Interval {
            start,
            end: start + 86_400_000,
        },
        version: version.into(),
        partition,
    };
    SegmentRecord {
        path: id.storage_path(),
        id,
        size: 100,
        num_rows: 10,
        columns: vec![ColumnInfo {
            name: "page".into(),
            kind: "STRING".into(),
            role: "dimension".into(),
        }],
        crc32: 7,
        used: true,
        created: 1,
    }
}

/// Runs every check against a fresh, empty store.
pub async fn run_all(store: &dyn MetadataStore) {
    let mut watch = store.watch();
    let start = *watch.borrow_and_update();

    // Publishing is atomic and idempotent for identical records.
    let a = segment("wiki", 0, "v1", 0);
    let b = segment("wiki", 1, "v1", 0);
    assert_eq!(
        store
            .apply(Command::PublishSegments {
                segments: vec![a.clone(), b.clone()]
            })
            .await
            .unwrap(),
        Outcome::Published(2)
    );
    assert!(
        watch.has_changed().unwrap(),
        "watchers hear about publishes"
    );
    store
        .apply(Command::PublishSegments {
            segments: vec![a.clone()],
        })
        .await
        .unwrap();
    let mut changed = a.clone();
    changed.size = 999;
    let c = segment("wiki", 2, "v1", 0);
    let err = store
        .apply(Command::PublishSegments {
            segments: vec![c.clone(), changed],
        })
        .await
        .unwrap_err();
    assert!(matches!(err, MetaError::Conflict(_)), "{err}");
    assert!(
        !store.state().segments.contains_key(&c.id),
        "a failed publish changes nothing"
    );
    assert_eq!(store.state().used_segments().count(), 2);
    assert_eq!(
        store.state().datasources(),
        vec![DataSourceName::new("wiki").unwrap()]
    );

    // Marking unused by interval and by id.
    let day1 = b.id.interval;
    let out = store
        .apply(Command::MarkUnused {
            datasource: DataSourceName::new("wiki").unwrap(),
            interval: Some(day1),
            now: 5,
        })
        .await
        .unwrap();
    assert_eq!(out, Outcome::MarkedUnused(1));
    assert!(!store.state().segments[&b.id].used);
    store
        .apply(Command::MarkSegmentsUnused {
            ids: vec![a.id.clone()],
        })
        .await
        .unwrap();
    assert!(store.state().datasources().is_empty());

    // Tasks.
    let id = TaskId::new("index_parallel_wiki_1").unwrap();
    let task = TaskRecord {
        id: id.clone(),
        kind: "index_parallel".into(),
        datasource: DataSourceName::new("wiki").unwrap(),
        state: TaskState::Running,
        created: 10,
        duration: None,
        error: None,
        report: json!({}),
        spec: json!({"type": "index_parallel"}),
    };
    store
        .apply(Command::PutTask {
            task: Box::new(task.clone()),
        })
        .await
        .unwrap();
    assert!(matches!(
        store
            .apply(Command::PutTask {
                task: Box::new(task)
            })
            .await,
        Err(MetaError::Conflict(_))
    ));
    store
        .apply(Command::UpdateTask {
            id: id.clone(),
            state: TaskState::Success,
            duration: Some(5),
            error: None,
            report: json!({"rows": 3}),
        })
        .await
        .unwrap();
    assert_eq!(store.state().tasks[&id].state, TaskState::Success);
    // Only finished tasks are forgotten.
    let running = TaskRecord {
        id: TaskId::new("t-running").unwrap(),
        state: TaskState::Running,
        ..store.state().tasks[&id].clone()
    };
    store
        .apply(Command::PutTask {
            task: Box::new(running.clone()),
        })
        .await
        .unwrap();
    store
        .apply(Command::ForgetTasks {
            ids: vec![running.id.clone(), TaskId::new("never").unwrap()],
        })
        .await
        .unwrap();
    assert!(store.state().tasks.contains_key(&running.id));
    let missing = TaskId::new("nope").unwrap();
    assert!(matches!(
        store
            .apply(Command::UpdateTask {
                id: missing,
                state: TaskState::Failed,
                duration: None,
                error: None,
                report: json!({})
            })
            .await,
        Err(MetaError::NotFound(_))
    ));
    store
        .apply(Command::ForgetTasks {
            ids: vec![id.clone()],
        })
        .await
        .unwrap();
    assert!(!store.state().tasks.contains_key(&id));
    assert!(*watch.borrow_and_update() > start);
    stream_publish_is_compare_and_set(store).await;
}

/// Offsets move only from where the publishing task started, together with its segments.
async fn stream_publish_is_compare_and_set(store: &dyn MetadataStore) {
    use std::collections::BTreeMap;

    use crate::supervisor::{SpecVersion, SupervisorRecord, SupervisorState};

    let ds = DataSourceName::new("clicks").unwrap();
    let sup = SupervisorRecord {
        id: "clicks".into(),
        datasource: ds.clone(),
        spec: json!({"type": "kafka"}),
        state: SupervisorState::Running,
        history: vec![SpecVersion {
            spec: json!({"type": "kafka"}),
            version: "2020-01-01T00:00:00.000Z".into(),
        }],
    };
    for _ in 0..2 {
        store
            .apply(Command::PutSupervisor {
                supervisor: Box::new(sup.clone()),
            })
            .await
            .unwrap();
    }
    assert_eq!(store.state().supervisors["clicks"].history.len(), 2);
    store
        .apply(Command::SetSupervisorState {
            id: "clicks".into(),
            state: SupervisorState::Suspended,
        })
        .await
        .unwrap();
    assert_eq!(
        store.state().supervisors["clicks"].state,
        SupervisorState::Suspended
    );

    let publish = |start: BTreeMap<u32, Option<u64>>, end: BTreeMap<u32, u64>, day: i64| {
        Command::PublishStream {
            datasource: ds.clone(),
            stream: "clicks".into(),
            start,
            end,
            segments: vec![segment("clicks", day, "v1", 0)],
        }
    };
    store
        .apply(publish(
            BTreeMap::from([(0, None), (1, None)]),
            BTreeMap::from([(0, 10), (1, 5)]),
            0,
        ))
        .await
        .unwrap();
    assert_eq!(
        store.state().offsets_of(&ds, "clicks"),
        BTreeMap::from([(0, 10), (1, 5)])
    );
    // A second task that started from the same (now stale) offsets must not publish.
    let stale = store
        .apply(publish(
            BTreeMap::from([(0, None)]),
            BTreeMap::from([(0, 12)]),
            1,
        ))
        .await
        .unwrap_err();
    assert!(
        matches!(stale, MetaError::Conflict(ref m) if m.contains("partition 0")),
        "{stale}"
    );
    assert_eq!(
        store.state().used_segments_of(&ds).count(),
        1,
        "nothing published"
    );
    store
        .apply(publish(
            BTreeMap::from([(0, Some(10))]),
            BTreeMap::from([(0, 20)]),
            1,
        ))
        .await
        .unwrap();
    assert_eq!(
        store.state().offsets_of(&ds, "clicks"),
        BTreeMap::from([(0, 20), (1, 5)])
    );
    assert!(store.state().offsets_of(&ds, "other-topic").is_empty());
    store
        .apply(Command::ResetOffsets {
            datasource: ds.clone(),
            stream: "clicks".into(),
            partitions: Some(BTreeMap::from([(1, 2)])),
        })
        .await
        .unwrap();
    assert_eq!(
        store.state().offsets_of(&ds, "clicks"),
        BTreeMap::from([(0, 20), (1, 2)])
    );
    store
        .apply(Command::ResetOffsets {
            datasource: ds.clone(),
            stream: "clicks".into(),
            partitions: None,
        })
        .await
        .unwrap();
    assert!(store.state().offsets_of(&ds, "clicks").is_empty());
}
