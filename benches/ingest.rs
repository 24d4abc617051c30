//! Stream ingestion's hot path on one core: decode a message (JSON, or an Avro datum with an
//! inline schema), run it through the ingestion pipeline (timestamp, transforms, filter) and
//! add it to the in-memory index, with and without rollup, for a clickstream schema. Reports
//! rows/s (criterion's elements/s) and bytes per in-memory row. Avro runs both row by row and
//! in groups of messages (as the realtime task does: `decode_group` and `add_batch`), on 50,000
//! messages and, without rollup, on 1,000,000 (dictionaries too large for the caches, where
//! grouping lets the index overlap the cache misses of several rows). The end-to-end figures (from
//! the embedded log and Kafka, through a running node) come from benches/harness/ingest.py.

use apache_avro::Schema;
use apache_avro::types::{Record as AvroRecord, Value as Avro};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use serde_json::{Value, json};

use eddy_ingest::format::Record;
use eddy_ingest::message::{GROUP, Message, MessageDecoder};
use eddy_ingest::{Processed, RowPipeline};
use eddy_segment::input::InputRow;
use eddy_segment::{IncrementalIndex, IndexSpec};
use eddy_types::spec::ingest::{DataSchema, InputFormat};
use eddy_types::{DataSourceName, Interval, SegmentId};

const MESSAGES: usize = 50_000;
/// Messages of the large Avro case.
const LARGE: usize = 1_000_000;
const T0: i64 = 1_709_287_200_000;

const AVRO_SCHEMA: &str = r#"{"type": "record", "name": "Click", "fields": [
  {"name": "timestamp", "type": "long"}, {"name": "eventType", "type": "string"},
  {"name": "partyId", "type": "string"}, {"name": "sessionId", "type": "string"},
  {"name": "pageViewId", "type": "string"}, {"name": "location", "type": "string"},
  {"name": "referer", "type": ["null", "string"]}, {"name": "browser", "type": "string"},
  {"name": "os", "type": "string"}, {"name": "country", "type": "string"},
  {"name": "deviceType", "type": "string"}, {"name": "screenWidth", "type": "long"},
  {"name": "latencyMs", "type": "long"}]}"#;

fn events(n: usize) -> Vec<Value> {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    const TYPES: [&str; 4] = ["pageView", "click", "scroll", "signup"];
    const BROWSERS: [&str; 4] = ["Chrome", "Firefox", "Safari", "Edge"];
    const OSES: [&str; 5] = ["Windows", "macOS", "Linux", "Android", "iOS"];
    const COUNTRIES: [&str; 8] = ["US", "DE", "FR", "IN", "BR", "JP", "GB", "NL"];
    const DEVICES: [&str; 3] = ["desktop", "mobile", "tablet"];
    const WIDTHS: [i64; 5] = [1280, 1440, 1920, 390, 414];
    (0..n)
        .map(|i| {
            let r = next();
            let party = r % 20_000;
            let pick = |shift: u32, n: usize| (r >> shift) as usize % n;
            let referer = if r % 3 == 0 {
                Value::Null
            } else {
                json!(format!("https://ref{}.example/", r % 40))
            };
            json!({
                "timestamp": T0 + i as i64 * 20,
                "eventType": TYPES[pick(8, 4)],
                "partyId": format!("0:lqz{party:x}:a8Fj{}", party % 97),
                "sessionId": format!("0:lqz{:x}:s{}", party, (r >> 12) % 5),
                "pageViewId": format!("0:lqz{:x}:p{}", r >> 20, i),
                "location": format!("https://shop.example/p/{}", (r >> 16) % 800),
                "referer": referer,
                "browser": BROWSERS[pick(24, 4)],
                "os": OSES[pick(28, 5)],
                "country": COUNTRIES[pick(32, 8)],
                "deviceType": DEVICES[pick(36, 3)],
                "screenWidth": WIDTHS[pick(40, 5)],
                "latencyMs": (r >> 44) % 2000,
            })
        })
        .collect()
}

fn schema(rollup: bool) -> DataSchema {
    let mut dimensions = vec![
        json!("eventType"),
        json!("partyId"),
        json!("sessionId"),
        json!("location"),
        json!("referer"),
        json!("browser"),
        json!("os"),
        json!("country"),
        json!("deviceType"),
        json!({"type": "long", "name": "screenWidth"}),
    ];
    if !rollup {
        dimensions.push(json!("pageViewId"));
        dimensions.push(json!({"type": "long", "name": "latencyMs"}));
    }
    let query_granularity = if rollup { "minute" } else { "none" };
    serde_json::from_value(json!({
        "dataSource": "clicks",
        "timestampSpec": {"column": "timestamp", "format": "millis"},
        "dimensionsSpec": {"dimensions": dimensions},
        "metricsSpec": [{"type": "count", "name": "count"},
            {"type": "longSum", "name": "latency_sum", "fieldName": "latencyMs"}],
        "granularitySpec": {"segmentGranularity": "day",
            "queryGranularity": query_granularity, "rollup": rollup}
    }))
    .unwrap_or_else(|e| panic!("bench schema: {e}"))
}

fn index(schema: &DataSchema) -> IncrementalIndex {
    let id = SegmentId {
        datasource: DataSourceName::new("clicks").unwrap_or_else(|e| panic!("{e}")),
        interval: Interval {
            start: T0 - T0 % 86_400_000,
            end: T0 - T0 % 86_400_000 + 86_400_000,
        },
        version: "v".into(),
        partition: 0,
    };
    IncrementalIndex::new(id, IndexSpec::from_data_schema(schema))
}

fn message(value: &[u8]) -> Message<'_> {
    Message {
        value,
        key: None,
        timestamp: 0,
        topic: "clicks",
        headers: &[],
    }
}

/// Decodes every message and indexes it, row by row or, `grouped`, in groups of messages as
/// the realtime task reads them; returns the index.
fn ingest(
    decoder: &MessageDecoder,
    pipeline: &RowPipeline,
    schema: &DataSchema,
    messages: &[Vec<u8>],
    grouped: bool,
) -> IncrementalIndex {
    let mut idx = index(schema);
    let mut batch = decoder.batch();
    if !grouped {
        for m in messages {
            batch
                .decode(&message(m), &mut |r| {
                    if let Record::Row(row) = r
                        && let Processed::Keep { time, row } = pipeline.process(row)
                    {
                        idx.add(time, &row);
                    }
                    Ok(())
                })
                .unwrap_or_else(|e| panic!("{e}"));
        }
        return idx;
    }
    let mut group = Vec::with_capacity(GROUP);
    for chunk in messages.chunks(GROUP) {
        group.clear();
        group.extend(chunk.iter().map(|m| message(m)));
        batch
            .decode_group(&group, &mut |records| {
                let kept: Vec<_> = records
                    .iter()
                    .filter_map(|r| match r {
                        Record::Row(row) => match pipeline.process(*row) {
                            Processed::Keep { time, row } => Some((time, row)),
                            _ => None,
                        },
                        Record::Bad { .. } => None,
                    })
                    .collect();
                let rows: Vec<(i64, &dyn InputRow)> = kept
                    .iter()
                    .map(|(time, row)| (*time, row as &dyn InputRow))
                    .collect();
                idx.add_batch(&rows);
                Ok(())
            })
            .unwrap_or_else(|e| panic!("{e}"));
    }
    idx
}

fn avro_messages(schema: &Schema, events: &[Value]) -> Vec<Vec<u8>> {
    events
        .iter()
        .map(|e| {
            let mut r = AvroRecord::new(schema).unwrap_or_else(|| panic!("record"));
            for (k, v) in e.as_object().into_iter().flatten() {
                let value = match v {
                    Value::Null => Avro::Union(0, Box::new(Avro::Null)),
                    Value::String(s) if k == "referer" => {
                        Avro::Union(1, Box::new(Avro::String(s.clone())))
                    }
                    Value::String(s) => Avro::String(s.clone()),
                    Value::Number(n) => Avro::Long(n.as_i64().unwrap_or(0)),
                    _ => Avro::Null,
                };
                r.put(k, value);
            }
            #[allow(deprecated)]
            apache_avro::to_avro_datum(schema, r).unwrap_or_else(|e| panic!("{e}"))
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let small = events(MESSAGES);
    let json_messages: Vec<Vec<u8>> = small.iter().map(|e| e.to_string().into_bytes()).collect();
    let avro_schema = Schema::parse_str(AVRO_SCHEMA).unwrap_or_else(|e| panic!("{e}"));
    let avro_small = avro_messages(&avro_schema, &small);
    let formats: [(&str, InputFormat, &Vec<Vec<u8>>); 2] = [
        (
            "json",
            serde_json::from_value(json!({"type": "json"})).unwrap_or_else(|e| panic!("{e}")),
            &json_messages,
        ),
        (
            "avro",
            serde_json::from_value(
                json!({"type": "avro_stream", "avroBytesDecoder": {"type": "schema_inline",
            "schema": serde_json::from_str::<Value>(AVRO_SCHEMA).unwrap_or_default()}}),
            )
            .unwrap_or_else(|e| panic!("{e}")),
            &avro_small,
        ),
    ];
    let mut group = c.benchmark_group("stream_ingest");
    group.sample_size(10);
    for (name, format, messages) in &formats {
        let decoder = MessageDecoder::new(format)
            .unwrap_or_else(|e| panic!("{e}"))
            .unwrap_or_else(|| panic!("decoder"));
        for rollup in [false, true] {
            let schema = schema(rollup);
            let pipeline = RowPipeline::new(&schema, None).unwrap_or_else(|e| panic!("{e}"));
            let label = format!("{name}/{}", if rollup { "rollup" } else { "no_rollup" });
            let idx = ingest(&decoder, &pipeline, &schema, messages, false);
            println!(
                "{label}: {} rows in memory from {} messages, {:.0} bytes per row (the index's accounting)",
                idx.num_rows(),
                messages.len(),
                idx.bytes_in_memory() as f64 / idx.num_rows().max(1) as f64
            );
            group.throughput(Throughput::Elements(messages.len() as u64));
            group.bench_function(&label, |b| {
                b.iter(|| ingest(&decoder, &pipeline, &schema, messages, false))
            });
            if *name == "avro" {
                group.bench_function(format!("{label}/grouped"), |b| {
                    b.iter(|| ingest(&decoder, &pipeline, &schema, messages, true))
                });
            }
        }
    }
    let large = avro_messages(&avro_schema, &events(LARGE));
    let decoder = MessageDecoder::new(&formats[1].1)
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|| panic!("decoder"));
    let schema = schema(false);
    let pipeline = RowPipeline::new(&schema, None).unwrap_or_else(|e| panic!("{e}"));
    group.throughput(Throughput::Elements(LARGE as u64));
    group.bench_function("avro_1m/no_rollup", |b| {
        b.iter(|| ingest(&decoder, &pipeline, &schema, &large, false))
    });
    group.bench_function("avro_1m/no_rollup/grouped", |b| {
        b.iter(|| ingest(&decoder, &pipeline, &schema, &large, true))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
