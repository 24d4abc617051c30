//! The batch ingestion task (`index_parallel`): read the input, index rows per time chunk,
//! persist segments, upload them to deep storage, publish them in one metadata command, and wait
//! until they are served.
//!
//! Each time chunk (`segmentGranularity`) gets an incremental index; a chunk's index becomes a
//! finished partition when it reaches `maxRowsPerSegment`, or when all indexes together hold
//! `maxRowsInMemory` rows (then the largest one is finished early, so memory stays bounded).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use eddy_ingest::format::{self, Record};
use eddy_ingest::source::{self, Entity};
use eddy_ingest::{IngestError, Processed, RowPipeline};
use eddy_meta::{ColumnInfo, Command, SegmentRecord};
use eddy_segment::incremental::persist;
use eddy_segment::writer::write_file;
use eddy_segment::{IncrementalIndex, IndexSpec, SegmentReader};
use eddy_types::spec::ingest::IndexTaskSpec;
use eddy_types::time::format_iso;
use eddy_types::{Interval, SegmentId};

use crate::live::{LiveTask, Phase};
use crate::{TaskError, TaskRunner};

/// Rows held in memory across all chunks before one is finished early.
pub const DEFAULT_MAX_ROWS_IN_MEMORY: usize = 1_000_000;

struct Chunk {
    interval: Interval,
    version: String,
    next_partition: u32,
    index: Option<IncrementalIndex>,
}

/// A persisted, not yet published segment.
struct Built {
    id: SegmentId,
    file: PathBuf,
    num_rows: u64,
    columns: Vec<ColumnInfo>,
}

pub struct BatchOutcome {
    pub segments: Vec<SegmentId>,
    pub available: bool,
}

fn columns_of(index: &IncrementalIndex) -> Vec<ColumnInfo> {
    index
        .schema()
        .columns
        .iter()
        .map(|c| ColumnInfo {
            name: c.name.clone(),
            kind: c.kind.druid_type().to_string(),
            role: match c.role {
                eddy_segment::ColumnRole::Dimension => "dimension".into(),
                eddy_segment::ColumnRole::Metric => "metric".into(),
            },
        })
        .collect()
}

fn finish(chunk: &mut Chunk, work: &Path, out: &mut Vec<Built>) -> Result<(), TaskError> {
    let Some(index) = chunk.index.take() else {
        return Ok(());
    };
    if index.is_empty() {
        return Ok(());
    }
    let id = SegmentId {
        datasource: index.segment_id().datasource.clone(),
        interval: chunk.interval,
        version: chunk.version.clone(),
        partition: chunk.next_partition,
    };
    chunk.next_partition += 1;
    let data = persist(&index, id.clone());
    let file = work.join(format!("segment-{}.eddy", out.len()));
    write_file(&file, &data)
        .map_err(|e| TaskError::Failed(format!("writing segment {id}: {e}")))?;
    out.push(Built {
        id,
        file,
        num_rows: index.num_rows() as u64,
        columns: columns_of(&index),
    });
    Ok(())
}

/// Reads and indexes everything, returning persisted segments. Runs on a blocking thread.
fn build(
    spec: &IndexTaskSpec,
    entities: &[Entity],
    live: &LiveTask,
    versions: &dyn Fn(Interval) -> (String, u32),
    work: &Path,
    max_rows_in_memory: usize,
) -> Result<Vec<Built>, TaskError> {
    let schema = &spec.spec.data_schema;
    let tuning = &spec.spec.tuning_config;
    let gran = &schema.granularity_spec;
    let pipeline = RowPipeline::new(schema, gran.intervals.clone()).map_err(TaskError::from)?;
    let index_spec = IndexSpec::from_data_schema(schema);
    let max_rows_per_segment = tuning.max_rows_per_segment();
    let max_rows_in_memory = tuning
        .max_rows_in_memory
        .unwrap_or(max_rows_in_memory)
        .max(1000);
    let max_parse_exceptions = tuning.max_parse_exceptions();
    let mut chunks: BTreeMap<i64, Chunk> = BTreeMap::new();
    let mut built: Vec<Built> = Vec::new();
    let mut in_memory = 0usize;
    let mut bucketer = gran.segment_granularity.bucketer();
    let fmt = &spec.spec.io_config.input_format;
    for entity in entities {
        let mut sink = |rec: Record<'_>| -> Result<(), IngestError> {
            if live.cancelled() {
                return Err(IngestError::Io("the task was shut down".into()));
            }
            let row = match rec {
                Record::Bad { raw, reason } => {
                    live.unparseable(&raw, &reason);
                    return check_parse_limit(live, max_parse_exceptions);
                }
                Record::Row(r) => r,
            };
            match pipeline.process(row) {
                Processed::ThrownAway => {
                    live.stats
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .thrown_away += 1
                }
                Processed::Unparseable(reason) => {
                    live.unparseable(&row_text(row), &reason);
                    check_parse_limit(live, max_parse_exceptions)?;
                }
                Processed::Keep {
                    time,
                    row: transformed,
                } => {
                    let start = bucketer.bucket_start(time);
                    let chunk = chunks.entry(start).or_insert_with(|| {
                        let interval = Interval {
                            start,
                            end: gran.segment_granularity.next_bucket(start),
                        };
                        let (version, next_partition) = versions(interval);
                        Chunk {
                            interval,
                            version,
                            next_partition,
                            index: None,
                        }
                    });
                    let index = chunk.index.get_or_insert_with(|| {
                        let id = SegmentId {
                            datasource: schema.data_source.clone(),
                            interval: chunk.interval,
                            version: chunk.version.clone(),
                            partition: chunk.next_partition,
                        };
                        IncrementalIndex::new(id, index_spec.clone())
                    });
                    let before = index.num_rows();
                    let outcome = index.add(time, &transformed);
                    in_memory += index.num_rows() - before;
                    {
                        let mut s = live.stats.lock().unwrap_or_else(|p| p.into_inner());
                        s.processed += 1;
                        if !outcome.errors.is_empty() {
                            s.processed_with_error += 1;
                        }
                    }
                    if !outcome.errors.is_empty() {
                        live.parse_error(&row_text(&transformed), &outcome.errors.join("; "));
                    }
                    if index.num_rows() >= max_rows_per_segment {
                        in_memory -= index.num_rows();
                        finish(chunk, work, &mut built)
                            .map_err(|e| IngestError::Io(e.to_string()))?;
                    } else if in_memory >= max_rows_in_memory {
                        // Finish the largest chunk early to bound memory.
                        if let Some((_, biggest)) = chunks
                            .iter_mut()
                            .max_by_key(|(_, c)| c.index.as_ref().map_or(0, |i| i.num_rows()))
                        {
                            in_memory -= biggest.index.as_ref().map_or(0, |i| i.num_rows());
                            finish(biggest, work, &mut built)
                                .map_err(|e| IngestError::Io(e.to_string()))?;
                        }
                    }
                }
            }
            Ok(())
        };
        format::read(entity, fmt, &live.bytes_read, &mut sink).map_err(TaskError::from)?;
    }
    live.set_phase(Phase::Building);
    for chunk in chunks.values_mut() {
        finish(chunk, work, &mut built)?;
    }
    Ok(built)
}

pub(crate) fn row_text(row: &dyn eddy_segment::input::InputRow) -> String {
    let mut names = Vec::new();
    row.field_names(&mut names);
    let mut m = serde_json::Map::new();
    for n in names.iter().take(64) {
        let v = match row.get(n) {
            eddy_segment::input::InputValue::Null => serde_json::Value::Null,
            other => serde_json::Value::String(
                other
                    .as_text()
                    .map(|t| t.into_owned())
                    .unwrap_or_else(|| format!("{other:?}")),
            ),
        };
        m.insert(n.clone(), v);
    }
    serde_json::Value::Object(m).to_string()
}

fn check_parse_limit(live: &LiveTask, max: u64) -> Result<(), IngestError> {
    let n = live
        .stats
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .unparseable;
    if n > max {
        return Err(IngestError::TooManyParseErrors(format!(
            "{n} rows could not be parsed, more than maxParseExceptions ({max}); see the task report for the first errors"
        )));
    }
    Ok(())
}

/// A version string later than any used version of the datasource (they compare as text).
fn fresh_version(runner: &TaskRunner, spec: &IndexTaskSpec) -> String {
    let now = runner.clock.now_ms();
    let state = runner.meta.state();
    let newest = state
        .used_segments_of(&spec.spec.data_schema.data_source)
        .map(|s| s.id.version.clone())
        .max();
    let candidate = format_iso(now);
    match newest {
        Some(v) if v >= candidate => {
            eddy_types::time::parse_iso(&v).map_or(format!("{v}1"), |t| format_iso(t + 1))
        }
        _ => candidate,
    }
}

pub async fn run(
    runner: &TaskRunner,
    spec: &IndexTaskSpec,
    live: Arc<LiveTask>,
) -> Result<BatchOutcome, TaskError> {
    let work = runner.work_dir.join(live.id.as_str());
    tokio::fs::create_dir_all(&work)
        .await
        .map_err(|e| TaskError::Failed(format!("creating {}: {e}", work.display())))?;
    let result = run_in(runner, spec, live, &work).await;
    let _ = tokio::fs::remove_dir_all(&work).await;
    result
}

async fn run_in(
    runner: &TaskRunner,
    spec: &IndexTaskSpec,
    live: Arc<LiveTask>,
    work: &Path,
) -> Result<BatchOutcome, TaskError> {
    live.set_phase(Phase::Reading);
    let listed = source::list(&spec.spec.io_config.input_source)?;
    let mut entities = Vec::with_capacity(listed.len());
    for (i, e) in listed.iter().enumerate() {
        entities.push(source::materialize(e, work, i).await?);
    }
    let total: u64 = entities.iter().filter_map(Entity::size).sum();
    live.bytes_total.store(total, Ordering::Relaxed);
    let fresh = fresh_version(runner, spec);
    let versions: BTreeMap<i64, (String, u32)> = BTreeMap::new();
    let versions = std::sync::Mutex::new(versions);
    let built = {
        let spec = spec.clone();
        let live = live.clone();
        let work = work.to_path_buf();
        let runner_versions = {
            let state = runner.meta.state();
            let ds = spec.spec.data_schema.data_source.clone();
            let append = spec.spec.io_config.append_to_existing;
            let existing: Vec<(Interval, String, u32)> = if append {
                state
                    .used_segments_of(&ds)
                    .map(|s| (s.id.interval, s.id.version.clone(), s.id.partition))
                    .collect()
            } else {
                Vec::new()
            };
            (existing, fresh.clone())
        };
        let max_rows_in_memory = runner.config.max_rows_in_memory;
        tokio::task::spawn_blocking(move || {
            let (existing, fresh) = runner_versions;
            let pick = |interval: Interval| -> (String, u32) {
                let mut cache = versions.lock().unwrap_or_else(|p| p.into_inner());
                cache
                    .entry(interval.start)
                    .or_insert_with(|| {
                        existing
                            .iter()
                            .filter(|(iv, _, _)| *iv == interval)
                            .max_by(|a, b| (&a.1, a.2).cmp(&(&b.1, b.2)))
                            .map_or((fresh.clone(), 0), |(_, v, p)| (v.clone(), p + 1))
                    })
                    .clone()
            };
            build(&spec, &entities, &live, &pick, &work, max_rows_in_memory)
        })
        .await
        .map_err(|e| TaskError::Failed(format!("the indexing thread stopped: {e}")))??
    };
    if live.cancelled() {
        return Err(TaskError::Failed("the task was shut down".into()));
    }
    live.set_phase(Phase::Publishing);
    let now = runner.clock.now_ms();
    let mut records = Vec::with_capacity(built.len());
    for b in &built {
        let key = format!("{}/index.eddy", b.id.storage_path());
        let up = runner
            .deep
            .upload(&key, &b.file)
            .await
            .map_err(|e| TaskError::Failed(format!("uploading {}: {e}", b.id)))?;
        records.push(SegmentRecord {
            id: b.id.clone(),
            size: up.size,
            num_rows: b.num_rows,
            columns: b.columns.clone(),
            path: key,
            crc32: up.crc32,
            used: true,
            created: now,
        });
    }
    let ids: Vec<SegmentId> = records.iter().map(|r| r.id.clone()).collect();
    if !records.is_empty() {
        runner
            .meta
            .apply(Command::PublishSegments { segments: records })
            .await
            .map_err(|e| TaskError::Failed(format!("publishing: {e}")))?;
        tracing::info!(task = %live.id, segments = ids.len(), "published segments");
    }
    live.set_phase(Phase::AwaitingHandoff);
    let wait = spec
        .spec
        .tuning_config
        .await_segment_availability_timeout_millis
        .map_or(runner.config.await_availability, |ms| {
            Duration::from_millis(ms.max(0) as u64)
        });
    let available =
        ids.is_empty() || wait.is_zero() || runner.availability.wait_served(&ids, wait).await;
    Ok(BatchOutcome {
        segments: ids,
        available,
    })
}
