//! A realtime task group: reads its partitions from the committed offsets, indexes rows (served
//! at once), spills to disk, and at hand-off uploads the parts and publishes them together with
//! the offsets they were read up to, in one compare-and-set metadata command. A crash at any
//! point loses only unpublished work, which is read again from the committed offsets: every
//! event is counted exactly once. With `replicas` > 1 each copy of the group runs this loop;
//! only the active one hands off (see [`super::replica`]).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::sync::watch;

use eddy_ingest::format::{self, Record};
use eddy_ingest::message::{GROUP, Message, MessageDecoder};
use eddy_ingest::source::Entity;
use eddy_ingest::{Processed, RowPipeline};
use eddy_segment::IndexSpec;
use eddy_segment::input::InputRow;
use eddy_stream::{StreamError, StreamReader, StreamRecord, StreamSource};
use eddy_types::spec::supervisor::SupervisorSpec;

use super::StreamContext;
use super::appender::{Added, Appender};
use super::group::GroupState;
use super::handoff::publish;
use super::record;
use super::replica::ReplicaSet;
use super::supervise::lock;
use crate::batch::row_text;
use crate::metrics;

/// What a stop request asks of running tasks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    Run,
    /// Publish what was read, then end (suspend, terminate, a new spec).
    Publish,
    /// End without publishing (the node is stopping; the rows are read again after restart).
    Abandon,
}

/// Runs CPU-bound work on this task's thread, telling a multi-threaded runtime to move other
/// tasks away meanwhile (a current-thread runtime, as in some tests, just runs it).
pub(crate) fn blocking<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::current().runtime_flavor() {
        tokio::runtime::RuntimeFlavor::CurrentThread => f(),
        _ => tokio::task::block_in_place(f),
    }
}

/// Records read per poll.
const BATCH: usize = 10_000;

/// Decodes records and feeds rows through the pipeline into the appender.
struct Indexer<'a> {
    ctx: &'a StreamContext,
    spec: &'a SupervisorSpec,
    state: &'a GroupState,
    pipeline: &'a RowPipeline,
    decoder: Option<&'a MessageDecoder>,
    appender: &'a mut Appender,
    /// Rows before this time are late, after that one early (thrown away).
    window: (i64, i64),
    /// The clock when the batch started (for allocating time chunks).
    now: i64,
    /// Rows indexed in this batch, added to the shared stats when it ends.
    processed: u64,
}

impl Indexer<'_> {
    fn unparseable(&self, raw: &str, reason: &str) {
        lock(&self.state.stats).unparseable += 1;
        lock(&self.state.errors).record("unparseable", raw, reason, self.ctx.clock.now_ms());
    }

    fn thrown_away(&self, raw: Option<&str>, reason: Option<&str>) {
        lock(&self.state.stats).thrown_away += 1;
        if let (Some(raw), Some(reason)) = (raw, reason) {
            lock(&self.state.errors).record("thrownAway", raw, reason, self.ctx.clock.now_ms());
        }
    }

    /// Runs decoded records through the pipeline and adds the rows kept, together, to the
    /// appender; counts and records what was thrown away or could not be read.
    fn records(&mut self, records: &[Record<'_>]) -> Result<(), String> {
        let mut kept = Vec::with_capacity(records.len());
        for rec in records {
            let row = match rec {
                Record::Bad { raw, reason } => {
                    self.unparseable(raw, reason);
                    continue;
                }
                Record::Row(row) => *row,
            };
            match self.pipeline.process(row) {
                Processed::ThrownAway => self.thrown_away(None, None),
                Processed::Unparseable(reason) => self.unparseable(&row_text(row), &reason),
                Processed::Keep { time, .. } if time < self.window.0 || time >= self.window.1 => {
                    self.thrown_away(None, None)
                }
                Processed::Keep { time, row } => kept.push((time, row)),
            }
        }
        let rows: Vec<(i64, &dyn InputRow)> = kept
            .iter()
            .map(|(time, row)| (*time, row as &dyn InputRow))
            .collect();
        let added = self.appender.add_batch(&rows, self.now)?;
        for (&(_, row), added) in rows.iter().zip(added) {
            match added {
                Added::Indexed { errors } => {
                    self.processed += 1;
                    if !errors.is_empty() {
                        lock(&self.state.stats).processed_with_error += 1;
                        lock(&self.state.errors).record(
                            "processedWithError",
                            &row_text(row),
                            &errors.join("; "),
                            self.ctx.clock.now_ms(),
                        );
                    }
                }
                Added::Rejected(reason) => self.thrown_away(Some(&row_text(row)), Some(&reason)),
            }
        }
        Ok(())
    }

    fn batch(&mut self, records: &[StreamRecord]) -> Result<(), String> {
        let bytes: u64 = records.iter().map(|r| r.value.len() as u64).sum();
        lock(&self.state.stats).processed_bytes += bytes;
        self.now = self.ctx.clock.now_ms();
        let result = self.decode_batch(records, bytes);
        lock(&self.state.stats).processed += std::mem::take(&mut self.processed);
        result
    }

    fn decode_batch(&mut self, records: &[StreamRecord], bytes: u64) -> Result<(), String> {
        let (decoder, spec) = (self.decoder, self.spec);
        let mut failure: Option<String> = None;
        let mut group = |records: &[Record<'_>]| -> Result<(), eddy_ingest::IngestError> {
            if let Err(e) = self.records(records)
                && failure.is_none()
            {
                failure = Some(e);
            }
            Ok(())
        };
        match decoder {
            Some(decoder) => {
                let mut batch = decoder.batch();
                let topic = &spec.settings.topic;
                let mut messages = Vec::with_capacity(GROUP);
                for records in records.chunks(GROUP) {
                    messages.clear();
                    messages.extend(records.iter().map(|r| Message {
                        value: &r.value,
                        key: r.key.as_deref(),
                        timestamp: r.timestamp,
                        topic,
                        headers: &r.headers,
                    }));
                    batch
                        .decode_group(&messages, &mut group)
                        .map_err(|e| e.to_string())?;
                }
            }
            None => {
                // Delimited lines: one record per line, a whole batch parsed in one pass.
                let mut text = String::with_capacity(bytes as usize + records.len());
                for r in records {
                    text.push_str(String::from_utf8_lossy(&r.value).trim_end_matches('\n'));
                    text.push('\n');
                }
                let entity = Entity::Inline(text.into());
                let counter = Arc::new(std::sync::atomic::AtomicU64::new(0));
                format::read(&entity, &spec.io_config.input_format, &counter, &mut |r| {
                    group(std::slice::from_ref(&r))
                })
                .map_err(|e| e.to_string())?;
            }
        }
        match failure {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

/// Fetches the schemas `records` need from the schema registry. A schema the registry does not
/// have leaves its records unparseable; a registry that cannot be reached fails the task (it
/// starts again from the committed offsets), so no record is dropped for an outage.
async fn fetch_schemas(
    decoder: &mut MessageDecoder,
    records: &[StreamRecord],
) -> Result<(), String> {
    let Some(url) = decoder.registry_url().map(str::to_string) else {
        return Ok(());
    };
    for id in decoder.missing_schemas(records.iter().map(|r| r.value.as_slice())) {
        let endpoint = format!("{url}/schemas/ids/{id}");
        let resp = reqwest::Client::new()
            .get(&endpoint)
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .map_err(|e| format!("cannot reach the schema registry at {endpoint}: {e}"))?;
        if resp.status() == reqwest::StatusCode::NOT_FOUND {
            continue;
        }
        if !resp.status().is_success() {
            return Err(format!(
                "the schema registry answered {} for {endpoint}",
                resp.status()
            ));
        }
        let body: Value = resp
            .json()
            .await
            .map_err(|e| format!("the schema registry's answer for {endpoint} is not JSON: {e}"))?;
        let text = body.get("schema").and_then(Value::as_str).ok_or_else(|| {
            format!("the schema registry's answer for {endpoint} has no \"schema\"")
        })?;
        decoder.add_schema(id, text)?;
    }
    Ok(())
}

/// Why a generation ended.
enum End {
    /// Published; the next generation starts where this one ended.
    HandedOff,
    /// Told to stop; what was read is published.
    Stopped,
    /// Told to stop without publishing (the rows are read again from the committed offsets).
    Abandoned,
    /// The topic was deleted; what was read from it is published (it can never be read again).
    TopicGone(String),
    /// A standby replica's rows were published by the active one (or it was told to start
    /// again): it dropped them and starts over from the committed offsets.
    Behind,
}

/// Runs the group until told to stop; errors end it (the supervisor starts it again).
pub async fn run_group(
    ctx: Arc<StreamContext>,
    spec: Arc<SupervisorSpec>,
    state: Arc<GroupState>,
    mut stop: watch::Receiver<Stop>,
) -> Result<(), String> {
    let result = run_generations(&ctx, &spec, &state, &mut stop).await;
    state.replicas.leave(state.replica);
    result
}

async fn run_generations(
    ctx: &Arc<StreamContext>,
    spec: &Arc<SupervisorSpec>,
    state: &Arc<GroupState>,
    stop: &mut watch::Receiver<Stop>,
) -> Result<(), String> {
    loop {
        match generation(ctx, spec, state, stop).await? {
            End::HandedOff | End::Behind => continue,
            End::Stopped | End::Abandoned => return Ok(()),
            End::TopicGone(topic) => {
                return Err(format!(
                    "topic {topic:?} does not exist any more; the rows read from it were handed off"
                ));
            }
        }
    }
}

fn new_task_id(spec: &SupervisorSpec) -> String {
    let suffix = &uuid::Uuid::new_v4().simple().to_string()[..8];
    format!("index_kafka_{}_{suffix}", spec.datasource())
}

/// Where each partition starts: the committed offset, or (first run) the earliest or latest.
async fn starting_offsets(
    ctx: &StreamContext,
    source: &dyn StreamSource,
    spec: &SupervisorSpec,
    partitions: &[u32],
) -> Result<(BTreeMap<u32, u64>, BTreeMap<u32, Option<u64>>), String> {
    let s = &spec.settings;
    let committed = ctx.meta.state().offsets_of(spec.datasource(), &s.topic);
    let range = source.offsets(&s.topic).await.map_err(|e| e.to_string())?;
    let mut start = BTreeMap::new();
    let mut expected = BTreeMap::new();
    for &p in partitions {
        let (earliest, next) = *range
            .get(&p)
            .ok_or_else(|| format!("partition {p} of topic {:?} is gone", s.topic))?;
        let fresh = if spec.io_config.use_earliest_offset {
            earliest
        } else {
            next
        };
        let offset = match committed.get(&p) {
            Some(&o) if o >= earliest && o <= next => o,
            Some(&o) => {
                if !spec.tuning_config.reset_offset_automatically {
                    return Err(format!(
                        "the committed offset {o} of partition {p} is outside what topic {:?} holds ({earliest}..{next}); reset the supervisor or set resetOffsetAutomatically",
                        s.topic
                    ));
                }
                tracing::warn!(
                    partition = p,
                    offset = o,
                    "committed offset out of range; resetting automatically"
                );
                fresh
            }
            None => fresh,
        };
        start.insert(p, offset);
        expected.insert(p, committed.get(&p).copied());
    }
    Ok((start, expected))
}

async fn generation(
    ctx: &Arc<StreamContext>,
    spec: &Arc<SupervisorSpec>,
    state: &Arc<GroupState>,
    stop: &mut watch::Receiver<Stop>,
) -> Result<End, String> {
    let s = &spec.settings;
    let replicas = &state.replicas;
    // Read before the committed offsets: a hand-off in between makes this generation behind.
    let epoch = replicas.handoffs();
    let source = ctx.source(spec)?;
    let (start, expected) = starting_offsets(ctx, source.as_ref(), spec, &state.partitions).await?;
    let mut reader = source
        .reader(&s.topic, &start)
        .await
        .map_err(|e: StreamError| e.to_string())?;
    let task_id = new_task_id(spec);
    let began = ctx.clock.now_ms();
    *lock(&state.task_id) = task_id.clone();
    state.started.store(began, Ordering::Relaxed);
    state.sample(began);
    *lock(&state.starting_offsets) = start.clone();
    *lock(&state.current_offsets) = start.clone();
    record::started(ctx, spec, state, &task_id, &start).await;
    replicas.join(state.replica, epoch);
    let signals = Signals {
        stop,
        replicas,
        epoch,
        handoffs: replicas.watch(),
    };
    let result = index(ctx, spec, state, signals, reader.as_mut(), start, expected).await;
    let (published, error) = match &result {
        Ok(End::Abandoned) => (false, None),
        Ok(_) => (true, None),
        Err(e) => (false, Some(e.clone())),
    };
    record::ended(ctx, &task_id, published, error).await;
    result
}

/// What tells a generation to end: stop requests and, as a replica, the group's hand-offs.
struct Signals<'a> {
    stop: &'a mut watch::Receiver<Stop>,
    replicas: &'a ReplicaSet,
    /// The group's hand-offs when the generation started.
    epoch: u64,
    handoffs: watch::Receiver<u64>,
}

/// Reads, indexes and persists until the task ends, then publishes (or abandons) what it read.
async fn index(
    ctx: &Arc<StreamContext>,
    spec: &Arc<SupervisorSpec>,
    state: &Arc<GroupState>,
    mut signals: Signals<'_>,
    reader: &mut dyn StreamReader,
    start: BTreeMap<u32, u64>,
    expected: BTreeMap<u32, Option<u64>>,
) -> Result<End, String> {
    let s = &spec.settings;
    let began = state.started.load(Ordering::Relaxed);
    let task_id = lock(&state.task_id).clone();
    let schema = &spec.data_schema;
    let pipeline = RowPipeline::new(schema, None).map_err(|e| e.to_string())?;
    let mut decoder =
        MessageDecoder::new(&spec.io_config.input_format).map_err(|e| e.to_string())?;
    let max_bytes = if s.max_bytes_in_memory > 0 {
        s.max_bytes_in_memory as usize
    } else {
        ctx.max_bytes_in_memory
    };
    let mut appender = Appender::new(
        schema.data_source.clone(),
        IndexSpec::from_data_schema(schema)
            .with_row_capacity(s.max_rows_in_memory.min(s.max_rows_per_segment) as usize),
        schema.granularity_spec.segment_granularity,
        (s.max_rows_per_segment, max_bytes),
        (ctx.node.clone(), signals.replicas.owner(state.replica)),
        ctx.allocator.clone(),
        ctx.work_dir
            .join(schema.data_source.as_str())
            .join(&task_id),
    );
    let window = (
        match (s.late_rejection_ms, s.late_rejection_start) {
            (Some(p), Some(t)) => (began - p).max(t),
            (Some(p), None) => began - p,
            (None, Some(t)) => t,
            (None, None) => i64::MIN,
        },
        s.early_rejection_ms
            .map_or(i64::MAX, |p| began + s.task_duration_ms + p),
    );
    let mut last_persist = Instant::now();
    let generation_started = Instant::now();
    let mut current = start;
    let poll = Duration::from_millis(s.poll_timeout_ms);
    let ds = schema.data_source.as_str().to_string();
    let replica = state.replica;
    let published_before = state.published.load(Ordering::Relaxed);
    let result = loop {
        let mode = *signals.stop.borrow();
        let active = signals.replicas.is_active(replica);
        if !active {
            // A standby: its rows are dropped when the active replica publishes (then they are
            // in segments) or when it is told to start again.
            let published = *signals.handoffs.borrow_and_update() != signals.epoch;
            if published || state.handoff_requested.swap(false, Ordering::Relaxed) {
                appender.abandon();
                break Ok(End::Behind);
            }
            if mode == Stop::Publish {
                appender.abandon();
                break Ok(End::Stopped);
            }
        }
        match mode {
            Stop::Abandon => {
                appender.abandon();
                break Ok(End::Abandoned);
            }
            Stop::Publish => {
                break publish(ctx, spec, state, &mut appender, &expected, &current)
                    .await
                    .map(|()| End::Stopped);
            }
            Stop::Run => {}
        }
        let records = tokio::select! {
            r = reader.poll(BATCH, poll) => match r {
                Ok(records) => records,
                Err(eddy_stream::StreamError::UnknownTopic(topic)) => {
                    if !active {
                        // The active copy publishes what was read.
                        appender.abandon();
                        break Ok(End::TopicGone(topic));
                    }
                    break publish(ctx, spec, state, &mut appender, &expected, &current)
                        .await
                        .map(|()| End::TopicGone(topic));
                }
                Err(e) => break Err(e.to_string()),
            },
            _ = signals.stop.changed() => continue,
            _ = signals.handoffs.changed(), if !active => continue,
        };
        if !records.is_empty() {
            if let Some(d) = decoder.as_mut()
                && let Err(e) = fetch_schemas(d, &records).await
            {
                break Err(e);
            }
            let before = state.row_stats();
            let indexed = blocking(|| {
                Indexer {
                    ctx,
                    spec,
                    state,
                    pipeline: &pipeline,
                    decoder: decoder.as_ref(),
                    appender: &mut appender,
                    window,
                    now: 0,
                    processed: 0,
                }
                .batch(&records)
            });
            if let Err(e) = indexed {
                break Err(e);
            }
            for r in &records {
                current.insert(r.partition, r.offset + 1);
            }
            *lock(&state.current_offsets) = current.clone();
            let after = state.row_stats();
            for (outcome, n) in [
                ("processed", after.processed - before.processed),
                ("unparseable", after.unparseable - before.unparseable),
                ("thrownAway", after.thrown_away - before.thrown_away),
                (
                    "processedWithError",
                    after.processed_with_error - before.processed_with_error,
                ),
            ] {
                if n > 0 {
                    metrics::STREAM_ROWS
                        .with_label_values(&[&ds, outcome])
                        .inc_by(n);
                }
            }
            if after.unparseable > s.max_parse_exceptions {
                appender.abandon();
                break Err(format!(
                    "{} rows could not be parsed, more than maxParseExceptions ({}); the task stopped (see the supervisor's stats and status for the last errors)",
                    after.unparseable, s.max_parse_exceptions
                ));
            }
        }
        state.sample(ctx.clock.now_ms());
        if appender.rows_in_memory() as u64 >= s.max_rows_in_memory
            || appender.bytes_in_memory() >= max_bytes
            || last_persist.elapsed() >= Duration::from_millis(s.intermediate_persist_ms as u64)
        {
            if let Err(e) = blocking(|| appender.persist_all()) {
                break Err(e);
            }
            last_persist = Instant::now();
        }
        let elapsed = generation_started.elapsed().as_millis() as i64;
        if !active {
            continue;
        }
        if elapsed >= s.task_duration_ms
            || elapsed >= s.intermediate_handoff_ms
            || appender.total_rows() >= s.max_total_rows
            || state.handoff_requested.swap(false, Ordering::Relaxed)
        {
            break publish(ctx, spec, state, &mut appender, &expected, &current)
                .await
                .map(|()| End::HandedOff);
        }
    };
    if state.published.load(Ordering::Relaxed) > published_before {
        signals.replicas.handed_off();
    }
    if !matches!(result, Ok(End::HandedOff)) {
        // A failed active replica's standby takes over before the failed one's rows go.
        signals.replicas.leave(replica);
    }
    // Whatever was not published is dropped (and read again by the next generation).
    if result.is_err() {
        appender.abandon();
    }
    let _ = std::fs::remove_dir_all(appender.work_dir());
    result
}
