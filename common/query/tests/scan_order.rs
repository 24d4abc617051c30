//! Scans ordered by a long or a string column with a limit over segments of many blocks, where each
//! segment skips the blocks (or dictionary ids) that cannot hold any of the first rows: the answers must be those
//! of sorting every row.

#![allow(clippy::unwrap_used)]

use std::cmp::Ordering;
use std::sync::atomic::AtomicBool;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

use eddy_query::engine::Context;
use eddy_query::{Query, execute, finalize, merge};
use eddy_segment::incremental::persist;
use eddy_segment::writer::write_vec;
use eddy_segment::{BLOCK_ROWS, IncrementalIndex, IndexSpec, SegmentFile, SegmentReader};
use eddy_types::spec::ingest::DataSchema;
use eddy_types::{DataSourceName, Interval, SegmentId};

const T0: i64 = 1_577_836_800_000; // 2020-01-01T00:00:00Z
const DAY: i64 = 86_400_000;

/// A row: time, the long `v`, the string `s`.
type Row = (i64, i64, Option<String>);

/// How `v` is drawn for row `i`.
type Shape = dyn Fn(&mut StdRng, usize) -> i64;

fn segment(rows: &[Row], persisted: bool) -> Box<dyn SegmentReader> {
    let schema: DataSchema = serde_json::from_value(json!({
        "dataSource": "t",
        "timestampSpec": {"column": "ts"},
        "dimensionsSpec": {"dimensions": [{"type": "long", "name": "v"}, "s"]},
        "granularitySpec": {"rollup": false, "queryGranularity": "none"}
    }))
    .unwrap();
    let id = SegmentId {
        datasource: DataSourceName::new("t").unwrap(),
        interval: Interval {
            start: T0,
            end: T0 + DAY,
        },
        version: "v1".into(),
        partition: 0,
    };
    let mut index = IncrementalIndex::new(id.clone(), IndexSpec::from_data_schema(&schema));
    for (t, v, text) in rows {
        index.add(*t, json!({"v": v, "s": text}).as_object().unwrap());
    }
    if !persisted {
        return Box::new(index);
    }
    let bytes = write_vec(&persist(&index, id)).unwrap();
    Box::new(SegmentFile::from_bytes(bytes.into(), "mem").unwrap())
}

/// (time, v, s) of the scan's rows, in answer order: ordered by `column` (then by time).
fn scan(
    segments: &[Box<dyn SegmentReader>],
    column: &str,
    descending: bool,
    nulls_first: bool,
    latest_first: bool,
    limit: usize,
    filter: &Value,
) -> Vec<Row> {
    let order = |d: bool| if d { "descending" } else { "ascending" };
    let mut q = json!({"queryType": "scan", "dataSource": "t", "intervals": ["2020-01-01/2020-01-02"],
        "columns": ["__time", "v", "s"], "limit": limit, "resultFormat": "compactedList",
        "orderBy": [{"columnName": column, "order": order(descending), "nullsFirst": nulls_first},
                    {"columnName": "__time", "order": order(latest_first)}]});
    if !filter.is_null() {
        q["filter"] = filter.clone();
    }
    let query = Query::from_json(q).unwrap();
    let cancelled = AtomicBool::new(false);
    let ctx = Context {
        query_id: "t",
        cancelled: &cancelled,
        deadline: None,
        timeout_ms: 0,
    };
    let partials = segments
        .iter()
        .map(|s| execute(&query, s.as_ref(), &[], &ctx).unwrap())
        .collect();
    let out = finalize(&query, merge(&query, partials).unwrap()).unwrap();
    let mut rows = Vec::new();
    for batch in out.as_array().unwrap() {
        for e in batch["events"].as_array().unwrap() {
            let e: &Vec<Value> = e.as_array().unwrap();
            rows.push((
                e[0].as_i64().unwrap(),
                e[1].as_i64().unwrap(),
                e[2].as_str().map(str::to_string),
            ));
        }
    }
    rows
}

#[test]
fn ordered_limited_scans_match_a_full_sort() {
    let mut rng = StdRng::seed_from_u64(5);
    let n = 3 * BLOCK_ROWS + 700;
    // Values rising with time (most blocks skipped), random ones (few skipped) and few distinct
    // ones (many ties with the last kept value, which later columns must decide).
    let shapes: [&Shape; 3] = [
        &|rng, i| i as i64 / 3 + rng.random_range(0..40),
        &|rng, _| rng.random_range(i64::MIN..i64::MAX),
        &|rng, _| rng.random_range(-2..3),
    ];
    for shape in shapes {
        let rows: Vec<Row> = (0..n)
            .map(|i| {
                let v = shape(&mut rng, i);
                let text = (v % 5 != 0).then(|| format!("k{}", v.rem_euclid(7)));
                (T0 + i as i64 * 1000, v, text)
            })
            .collect();
        let (a, b) = rows.split_at(n / 3);
        for persisted in [true, false] {
            let segments = vec![segment(a, persisted), segment(b, persisted)];
            for (column, descending, nulls_first, latest_first) in [
                ("v", false, true, false),
                ("v", false, true, true),
                ("v", true, false, false),
                ("v", true, false, true),
                ("s", false, true, true),
                ("s", false, false, false),
                ("s", true, true, false),
                ("s", true, false, true),
            ] {
                // Unfiltered, and without "k3" (a NOT filter, so every block is partly
                // selected; null s is unknown, so NOT drops it too).
                let filters = [
                    Value::Null,
                    json!({"type": "not", "field": {"type": "selector", "dimension": "s", "value": "k3"}}),
                ];
                for (filter, limit) in filters
                    .iter()
                    .flat_map(|f| [1, 7, 100, BLOCK_ROWS + 3].map(|l| (f, l)))
                {
                    let mut want: Vec<Row> = rows
                        .iter()
                        .filter(|r| filter.is_null() || r.2.as_deref().is_some_and(|s| s != "k3"))
                        .cloned()
                        .collect();
                    want.sort_by(|x, y| {
                        let first = if column == "v" {
                            x.1.cmp(&y.1)
                        } else {
                            match (&x.2, &y.2) {
                                (None, None) => Ordering::Equal,
                                (None, Some(_)) => Ordering::Less,
                                (Some(_), None) => Ordering::Greater,
                                (Some(p), Some(q)) => p.cmp(q),
                            }
                        };
                        let first = if descending { first.reverse() } else { first };
                        // Nulls (only in s) where asked, whatever the direction.
                        let first = match (&x.2, &y.2, column == "s") {
                            (None, Some(_), true) if nulls_first => Ordering::Less,
                            (None, Some(_), true) => Ordering::Greater,
                            (Some(_), None, true) if nulls_first => Ordering::Greater,
                            (Some(_), None, true) => Ordering::Less,
                            _ => first,
                        };
                        let by_t = if latest_first {
                            y.0.cmp(&x.0)
                        } else {
                            x.0.cmp(&y.0)
                        };
                        first.then(by_t)
                    });
                    want.truncate(limit);
                    assert_eq!(
                        scan(
                            &segments,
                            column,
                            descending,
                            nulls_first,
                            latest_first,
                            limit,
                            filter
                        ),
                        want,
                        "by {column}, descending {descending}, nulls first {nulls_first}, latest first {latest_first}, limit {limit}, persisted {persisted}, filter {filter}"
                    );
                }
            }
        }
    }
}
