//! One running supervisor: its loop (discover partitions, keep one task group per partition
//! set running with `replicas` copies, restart copies that fail, stop them all when told) and
//! the status it shows.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use eddy_types::spec::supervisor::SupervisorSpec;
use eddy_types::time::format_iso;

use super::StreamContext;
use super::group::GroupState;
use super::replica::ReplicaSet;
use super::task::{Stop, run_group};

/// Recent supervisor-level errors kept for `/status`.
const RECENT_ERRORS: usize = 10;
/// Consecutive task failures that make a supervisor UNHEALTHY_TASKS (Druid's threshold).
const UNHEALTHY_TASKS_AFTER: u32 = 3;

/// What a running supervisor shows.
pub struct RunStatus {
    pub(super) detailed: Mutex<&'static str>,
    pub(super) recent_errors: Mutex<VecDeque<Value>>,
    /// Every running copy, by task group and replica.
    pub(super) groups: Mutex<BTreeMap<(u32, u32), Arc<GroupState>>>,
    pub(super) task_failures: AtomicU32,
    pub(super) partitions: AtomicU32,
    pub(super) offsets_updated: AtomicU64,
}

pub(super) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl RunStatus {
    pub(super) fn new() -> Self {
        RunStatus {
            detailed: Mutex::new("PENDING"),
            recent_errors: Mutex::new(VecDeque::new()),
            groups: Mutex::new(BTreeMap::new()),
            task_failures: AtomicU32::new(0),
            partitions: AtomicU32::new(0),
            offsets_updated: AtomicU64::new(0),
        }
    }

    pub(super) fn error(&self, now: i64, message: &str) {
        tracing::warn!(error = message, "supervisor error");
        let mut e = lock(&self.recent_errors);
        e.push_back(json!({"timestamp": format_iso(now), "exceptionClass": "org.apache.druid.java.util.common.ISE", "message": message, "streamException": false}));
        while e.len() > RECENT_ERRORS {
            e.pop_front();
        }
    }

    pub(super) fn detailed(&self) -> &'static str {
        if self.task_failures.load(Ordering::Relaxed) >= UNHEALTHY_TASKS_AFTER {
            return "UNHEALTHY_TASKS";
        }
        *lock(&self.detailed)
    }
}

/// The basic state for a detailed one.
pub(super) fn state_of(detailed: &str) -> &'static str {
    match detailed {
        "RUNNING" => "RUNNING",
        "SUSPENDED" => "SUSPENDED",
        "STOPPING" => "STOPPING",
        "UNHEALTHY_TASKS" => "UNHEALTHY_TASKS",
        "UNABLE_TO_CONNECT_TO_STREAM" | "LOST_CONTACT_WITH_STREAM" => "UNHEALTHY_SUPERVISOR",
        _ => "PENDING",
    }
}

/// One copy of a task group.
struct Group {
    state: Arc<GroupState>,
    stop: watch::Sender<Stop>,
    handle: JoinHandle<Result<(), String>>,
}

/// The supervisor's loop: discover partitions, keep each task group's copies running, restart
/// failed copies, and stop them all (publishing or not) when told.
pub(super) async fn supervise(
    ctx: Arc<StreamContext>,
    spec: Arc<SupervisorSpec>,
    status: Arc<RunStatus>,
    mut stop: watch::Receiver<Stop>,
) {
    let s = &spec.settings;
    let mut groups: BTreeMap<(u32, u32), Group> = BTreeMap::new();
    let mut sets: BTreeMap<u32, Arc<ReplicaSet>> = BTreeMap::new();
    let mut connected = false;
    *lock(&status.detailed) = "CONNECTING_TO_STREAM";
    if spec.io_config.start_delay.is_some() && s.start_delay_ms > 0 {
        tokio::select! {
            () = tokio::time::sleep(Duration::from_millis(s.start_delay_ms as u64)) => {}
            _ = stop.changed() => {}
        }
    }
    let mut next_discovery = tokio::time::Instant::now();
    loop {
        let mode = *stop.borrow();
        if mode != Stop::Run {
            for g in groups.values() {
                let _ = g.stop.send(mode);
            }
            for (_, g) in std::mem::take(&mut groups) {
                finish_group(&ctx, &status, g).await;
            }
            return;
        }
        // Reap groups that ended by themselves (failures); they start again below.
        let ended: Vec<(u32, u32)> = groups
            .iter()
            .filter(|(_, g)| g.handle.is_finished())
            .map(|(k, _)| *k)
            .collect();
        for k in ended {
            if let Some(g) = groups.remove(&k) {
                finish_group(&ctx, &status, g).await;
                lock(&status.groups).remove(&k);
                next_discovery = tokio::time::Instant::now() + Duration::from_secs(1);
            }
        }
        if tokio::time::Instant::now() >= next_discovery {
            let source = ctx.source(&spec);
            let discovered = match &source {
                Ok(src) => src.partitions(&s.topic).await.map_err(|e| e.to_string()),
                Err(e) => Err(e.clone()),
            };
            match discovered {
                Err(e) => {
                    status.error(
                        ctx.clock.now_ms(),
                        &format!("cannot read topic {:?}: {e}", s.topic),
                    );
                    *lock(&status.detailed) = if connected {
                        "LOST_CONTACT_WITH_STREAM"
                    } else {
                        "UNABLE_TO_CONNECT_TO_STREAM"
                    };
                    next_discovery = tokio::time::Instant::now() + Duration::from_secs(1);
                }
                Ok(partitions) => {
                    if !connected {
                        *lock(&status.detailed) = "CREATING_TASKS";
                    }
                    connected = true;
                    status
                        .partitions
                        .store(partitions.len() as u32, Ordering::Relaxed);
                    status
                        .offsets_updated
                        .store(ctx.clock.now_ms() as u64, Ordering::Relaxed);
                    let n = (s.task_count as usize).min(partitions.len()).max(1) as u32;
                    let mut wanted: BTreeMap<u32, Vec<u32>> = BTreeMap::new();
                    for p in partitions {
                        wanted.entry(p % n).or_default().push(p);
                    }
                    // Groups whose partitions changed publish and start over.
                    let changed: Vec<(u32, u32)> = groups
                        .iter()
                        .filter(|(k, g)| wanted.get(&k.0) != Some(&g.state.partitions))
                        .map(|(k, _)| *k)
                        .collect();
                    for k in &changed {
                        if let Some(g) = groups.get(k) {
                            let _ = g.stop.send(Stop::Publish);
                        }
                    }
                    for k in changed {
                        if let Some(g) = groups.remove(&k) {
                            finish_group(&ctx, &status, g).await;
                            lock(&status.groups).remove(&k);
                            sets.remove(&k.0);
                        }
                    }
                    for (k, parts) in wanted {
                        let set = sets
                            .entry(k)
                            .or_insert_with(|| ReplicaSet::new(ctx.node.clone(), s.replicas))
                            .clone();
                        for replica in 0..s.replicas.max(1) {
                            if groups.contains_key(&(k, replica)) {
                                continue;
                            }
                            let state = Arc::new(GroupState::new(
                                (k, replica),
                                set.clone(),
                                parts.clone(),
                                s.max_saved_parse_exceptions,
                            ));
                            let (tx, rx) = watch::channel(Stop::Run);
                            let handle = tokio::spawn(run_group(
                                ctx.clone(),
                                spec.clone(),
                                state.clone(),
                                rx,
                            ));
                            lock(&status.groups).insert((k, replica), state.clone());
                            groups.insert(
                                (k, replica),
                                Group {
                                    state,
                                    stop: tx,
                                    handle,
                                },
                            );
                        }
                    }
                    *lock(&status.detailed) = "RUNNING";
                    next_discovery =
                        tokio::time::Instant::now() + Duration::from_millis(s.period_ms as u64);
                }
            }
        }
        // Publishing groups reset the failure count.
        if groups
            .values()
            .any(|g| g.state.published.load(Ordering::Relaxed) > 0)
        {
            status.task_failures.store(0, Ordering::Relaxed);
        }
        tokio::select! {
            () = tokio::time::sleep(Duration::from_millis(250)) => {}
            _ = stop.changed() => {}
        }
    }
}

async fn finish_group(ctx: &StreamContext, status: &RunStatus, g: Group) {
    match g.handle.await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            status.task_failures.fetch_add(1, Ordering::Relaxed);
            status.error(
                ctx.clock.now_ms(),
                &format!(
                    "task {} (group {}) failed: {e}",
                    g.state.task_id(),
                    g.state.group
                ),
            );
        }
        Err(e) => {
            status.task_failures.fetch_add(1, Ordering::Relaxed);
            status.error(
                ctx.clock.now_ms(),
                &format!("task group {} stopped: {e}", g.state.group),
            );
        }
    }
}
