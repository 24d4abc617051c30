use serde_json::{Map, Value, json};

use eddy_types::spec::ingest::DataSchema;
use eddy_types::{DataSourceName, Interval, SegmentId};

use super::*;
use crate::file::SegmentFile;
use crate::reader::SegmentReader;
use crate::writer::write_vec;

fn seg_id() -> SegmentId {
    SegmentId {
        datasource: DataSourceName::new("t").unwrap(),
        interval: Interval::parse("2020-01-01/2020-01-02").unwrap(),
        version: "v1".into(),
        partition: 0,
    }
}

fn schema(v: Value) -> DataSchema {
    serde_json::from_value(v).unwrap()
}

fn row(v: Value) -> Map<String, Value> {
    v.as_object().unwrap().clone()
}

fn reopen(index: &IncrementalIndex) -> SegmentFile {
    let data = persist(index, seg_id());
    let bytes = write_vec(&data).unwrap();
    SegmentFile::from_bytes(bytes.into(), "test").unwrap()
}

const T0: i64 = 1_577_836_800_000; // 2020-01-01

#[test]
fn rollup_combines_rows_at_query_granularity() {
    let ds = schema(json!({
        "dataSource": "t",
        "dimensionsSpec": {"dimensions": ["page", {"type": "long", "name": "code"}]},
        "metricsSpec": [
            {"type": "count", "name": "count"},
            {"type": "longSum", "name": "bytes", "fieldName": "bytes"},
            {"type": "doubleMax", "name": "maxLatency", "fieldName": "latency"},
            {"type": "hyperUnique", "name": "users", "fieldName": "user"}
        ],
        "granularitySpec": {"queryGranularity": "minute", "rollup": true}
    }));
    let mut index = IncrementalIndex::new(seg_id(), IndexSpec::from_data_schema(&ds));
    let rows = [
        (
            T0 + 1_000,
            json!({"page": "a", "code": 200, "bytes": 10, "latency": 1.5, "user": "u1"}),
        ),
        (
            T0 + 2_000,
            json!({"page": "a", "code": 200, "bytes": 5, "latency": 3.0, "user": "u2"}),
        ),
        (
            T0 + 3_000,
            json!({"page": "a", "code": "404", "bytes": 1, "user": "u1"}),
        ),
        (
            T0 + 61_000,
            json!({"page": "a", "code": 200, "bytes": 7, "user": "u1"}),
        ),
        (T0 + 4_000, json!({"page": "b", "bytes": "3"})),
    ];
    let mut rolled = 0;
    for (t, r) in &rows {
        let out = index.add(*t, &row(r.clone()));
        assert!(out.errors.is_empty(), "{:?}", out.errors);
        rolled += usize::from(out.rolled_up);
    }
    assert_eq!(rolled, 1);
    assert_eq!(index.num_rows(), 4);
    for reader in [&index as &dyn SegmentReader, &reopen(&index)] {
        let mut dumped = crate::dump::rows(reader).unwrap();
        dumped.sort_by_key(|r| {
            (
                r["__time"].as_i64(),
                r["page"].to_string(),
                r["code"].to_string(),
            )
        });
        let first = &dumped[0];
        assert_eq!(first["__time"], json!(T0));
        assert_eq!(first["page"], json!("a"));
        assert_eq!(first["code"], json!(200));
        assert_eq!(first["count"], json!(2));
        assert_eq!(first["bytes"], json!(15));
        assert_eq!(first["maxLatency"], json!(3.0));
        assert_eq!(first["users"], json!(2.0));
        let b = dumped.iter().find(|r| r["page"] == json!("b")).unwrap();
        assert_eq!(b["code"], Value::Null);
        assert_eq!(b["maxLatency"], Value::Null);
        assert_eq!(b["bytes"], json!(3));
    }
}

#[test]
fn schemaless_discovery_and_multi_values() {
    let ds = schema(json!({
        "dataSource": "t",
        "timestampSpec": {"column": "ts"},
        "dimensionsSpec": {"dimensionExclusions": ["secret"]},
        "metricsSpec": [{"type": "count", "name": "count"}],
        "granularitySpec": {"rollup": false}
    }));
    let mut index = IncrementalIndex::new(seg_id(), IndexSpec::from_data_schema(&ds));
    index.add(T0, &row(json!({"ts": 1, "a": "x", "secret": "s"})));
    index.add(
        T0 + 1,
        &row(json!({"ts": 1, "a": "y", "tags": ["t2", "t1", "t2"], "n": 5})),
    );
    index.add(T0 + 2, &row(json!({"ts": 1, "tags": [], "obj": {"k": 1}})));
    let names: Vec<_> = index
        .schema()
        .dimensions()
        .map(|c| c.name.clone())
        .collect();
    assert_eq!(names, ["a", "tags", "n", "obj"]);
    let file = reopen(&index);
    assert!(file.schema().column("tags").unwrap().multi_value);
    let rows = crate::dump::rows(&file).unwrap();
    assert_eq!(rows[0]["tags"], Value::Null);
    assert_eq!(rows[1]["tags"], json!(["t1", "t2", "t2"]));
    assert_eq!(rows[1]["n"], json!("5"));
    assert_eq!(rows[2]["a"], Value::Null);
    assert_eq!(rows[2]["obj"], json!("{\"k\":1}"));
    assert!(rows[0].get("secret").is_none());
}

#[test]
fn custom_sort_order_puts_dimensions_before_time() {
    let ds = schema(json!({
        "dataSource": "t",
        "dimensionsSpec": {"dimensions": ["site", {"type": "long", "name": "__time"}], "forceSegmentSortByTime": false},
        "granularitySpec": {"rollup": false}
    }));
    let mut index = IncrementalIndex::new(seg_id(), IndexSpec::from_data_schema(&ds));
    for (t, site) in [(3, "b"), (1, "b"), (2, "a"), (0, "c")] {
        index.add(T0 + t, &row(json!({"site": site})));
    }
    assert_eq!(index.schema().sort_order, ["site", "__time"]);
    let file = reopen(&index);
    assert!(!file.time_sorted());
    let rows = crate::dump::rows(&file).unwrap();
    let order: Vec<(String, i64)> = rows
        .iter()
        .map(|r| {
            (
                r["site"].as_str().unwrap().to_string(),
                r["__time"].as_i64().unwrap() - T0,
            )
        })
        .collect();
    assert_eq!(
        order,
        [
            ("a".into(), 2),
            ("b".into(), 1),
            ("b".into(), 3),
            ("c".into(), 0)
        ]
    );
}

#[test]
fn bad_numbers_are_reported_and_nulled() {
    let ds = schema(json!({
        "dataSource": "t",
        "dimensionsSpec": {"dimensions": [{"type": "long", "name": "n"}]},
        "metricsSpec": [{"type": "doubleSum", "name": "s", "fieldName": "v"}]
    }));
    let mut index = IncrementalIndex::new(seg_id(), IndexSpec::from_data_schema(&ds));
    let out = index.add(T0, &row(json!({"n": "abc", "v": "x"})));
    assert_eq!(out.errors.len(), 2, "{:?}", out.errors);
    assert!(out.errors[0].contains("\"n\""));
    let rows = crate::dump::rows(&index).unwrap();
    assert_eq!(rows[0]["n"], Value::Null);
}

/// Bitmaps are built when read and extended when rows arrive between reads: each read sees
/// exactly the rows added so far, for single values, multi-values, nulls and a dimension
/// discovered after rows were added.
#[test]
fn bitmaps_follow_rows_added_between_reads() {
    use crate::reader::ColumnRef;
    let ds = schema(json!({
        "dataSource": "t",
        "timestampSpec": {"column": "ts"},
        "dimensionsSpec": {"dimensions": []},
        "metricsSpec": [{"type": "count", "name": "count"}],
        "granularitySpec": {"rollup": false}
    }));
    let mut index = IncrementalIndex::new(seg_id(), IndexSpec::from_data_schema(&ds));
    let rows_of = |index: &IncrementalIndex, dim: &str, value: Option<&str>| -> Vec<u32> {
        let Some(ColumnRef::String(col)) = index.column(dim) else {
            panic!("no string column {dim}");
        };
        match col.lookup(value).unwrap() {
            Some(id) => col.bitmap(id).unwrap().iter().collect(),
            None => Vec::new(),
        }
    };
    index.add(T0, &row(json!({"a": "x"})));
    index.add(T0, &row(json!({"a": "y"})));
    assert_eq!(rows_of(&index, "a", Some("x")), [0]);
    index.add(T0, &row(json!({"a": "x"})));
    index.add(T0, &row(json!({"b": "late"})));
    assert_eq!(rows_of(&index, "a", Some("x")), [0, 2]);
    assert_eq!(rows_of(&index, "a", None), [3]);
    assert_eq!(rows_of(&index, "b", None), [0, 1, 2]);
    assert_eq!(rows_of(&index, "b", Some("late")), [3]);
    index.add(T0, &row(json!({"a": ["y", "z"], "b": "late"})));
    assert_eq!(rows_of(&index, "a", Some("y")), [1, 4]);
    assert_eq!(rows_of(&index, "a", Some("z")), [4]);
    assert_eq!(rows_of(&index, "b", Some("late")), [3, 4]);
    assert!(index.column_stats("b").unwrap().has_nulls);
}

/// Merging persisted parts gives the rows one index would have held: rows that roll up across
/// parts combine (counts and sums add, min and max keep, sketches union), nulls, multi-values
/// and numeric dimensions survive, and without rollup every row is kept.
#[test]
fn merging_parts_equals_indexing_everything_once() {
    for rollup in [true, false] {
        let ds = schema(json!({
            "dataSource": "t",
            "dimensionsSpec": {"dimensions": ["page", {"type": "long", "name": "code"},
                {"type": "string", "name": "tags", "multiValueHandling": "SORTED_ARRAY"}]},
            "metricsSpec": [
                {"type": "count", "name": "count"},
                {"type": "longSum", "name": "bytes", "fieldName": "bytes"},
                {"type": "doubleMin", "name": "minLatency", "fieldName": "latency"},
                {"type": "doubleMax", "name": "maxLatency", "fieldName": "latency"},
                {"type": "hyperUnique", "name": "users", "fieldName": "user"}
            ],
            "granularitySpec": {"queryGranularity": "minute", "rollup": rollup}
        }));
        let spec = IndexSpec::from_data_schema(&ds);
        let input: Vec<(i64, Value)> = (0..300)
            .map(|i| {
                let mut r = json!({"page": format!("/p{}", i % 5), "bytes": i, "latency": (i % 13) as f64 / 2.0,
                    "user": format!("u{}", i % 17)});
                if i % 4 != 0 {
                    r["code"] = json!(200 + i % 3);
                }
                if i % 6 == 0 {
                    r["tags"] = json!([format!("t{}", i % 4), "a"]);
                }
                (T0 + (i as i64 % 7) * 20_000, r)
            })
            .collect();
        let mut whole = IncrementalIndex::new(seg_id(), spec.clone());
        for (t, r) in &input {
            whole.add(*t, &row(r.clone()));
        }
        let mut merged = IncrementalIndex::new(seg_id(), spec.clone());
        for part in input.chunks(70) {
            let mut index = IncrementalIndex::new(seg_id(), spec.clone());
            for (t, r) in part {
                index.add(*t, &row(r.clone()));
            }
            merged.add_segment(&reopen(&index)).unwrap();
        }
        assert_eq!(merged.num_rows(), whole.num_rows(), "rollup {rollup}");
        let sorted = |index: &IncrementalIndex| {
            let mut rows = crate::dump::rows(&reopen(index)).unwrap();
            rows.sort_by_key(|r| Value::Object(r.clone()).to_string());
            rows
        };
        assert_eq!(sorted(&merged), sorted(&whole), "rollup {rollup}");
        if rollup {
            assert!(whole.num_rows() < 300);
        }
    }
}

/// Dictionaries large enough to be prefetched, one of them nearly unique per row (sized for
/// the expected rows at once): every row keeps its values, lookups find each value, and the
/// persisted segment reads the same rows back.
#[test]
fn large_and_nearly_unique_dictionaries_keep_every_value() {
    use crate::reader::ColumnRef;
    let ds = schema(json!({
        "dataSource": "t",
        "dimensionsSpec": {"dimensions": ["party", "view", "kind"]},
        "metricsSpec": [{"type": "count", "name": "count"}],
        "granularitySpec": {"rollup": false}
    }));
    let rows = 150_000;
    let spec = IndexSpec::from_data_schema(&ds).with_row_capacity(rows);
    let mut index = IncrementalIndex::new(seg_id(), spec);
    let value = |i: usize| {
        (
            format!("0:party{}", (i * 7919) % 9_000),
            format!("0:view:{i}"),
            ["a", "b", "c"][i % 3],
        )
    };
    for i in 0..rows {
        let (party, view, kind) = value(i);
        // Every 1000th row has no view (null) and a number where a string is expected.
        let r = if i % 1000 == 999 {
            json!({"party": party, "kind": 5})
        } else {
            json!({"party": party, "view": view, "kind": kind})
        };
        index.add(T0 + i as i64, &row(r));
    }
    assert_eq!(index.num_rows(), rows);
    let Some(ColumnRef::String(views)) = index.column("view") else {
        panic!("no view column");
    };
    let Some(ColumnRef::String(parties)) = index.column("party") else {
        panic!("no party column");
    };
    assert_eq!(parties.cardinality(), 9_000 + 1);
    assert_eq!(views.cardinality() as usize, rows - rows / 1000 + 1);
    for i in (0..rows).step_by(997) {
        let (party, view, _) = value(i);
        let id = parties.lookup(Some(&party)).unwrap().expect("party found");
        assert!(parties.bitmap(id).unwrap().contains(i as u32), "row {i}");
        if i % 1000 != 999 {
            let id = views.lookup(Some(&view)).unwrap().expect("view found");
            assert_eq!(
                views.bitmap(id).unwrap().iter().collect::<Vec<_>>(),
                [i as u32]
            );
        }
    }
    assert_eq!(views.lookup(Some("0:view:none")).unwrap(), None);
    let dumped = crate::dump::rows(&reopen(&index)).unwrap();
    assert_eq!(dumped.len(), rows);
    for (i, r) in dumped.iter().enumerate().step_by(1009) {
        let (party, view, kind) = value(i);
        assert_eq!(r["party"], json!(party), "row {i}");
        if i % 1000 == 999 {
            assert_eq!(r["view"], Value::Null, "row {i}");
            assert_eq!(r["kind"], json!("5"), "row {i}");
        } else {
            assert_eq!(
                (&r["view"], &r["kind"]),
                (&json!(view), &json!(kind)),
                "row {i}"
            );
        }
    }
}

#[test]
fn a_batch_adds_rows_as_they_would_be_added_one_by_one() {
    for rollup in [false, true] {
        let ds = schema(json!({
            "dataSource": "t",
            "dimensionsSpec": {"dimensions": [
                "kind", "id", "tags", {"type": "long", "name": "code"}
            ]},
            "metricsSpec": [
                {"type": "count", "name": "count"},
                {"type": "longSum", "name": "bytes", "fieldName": "bytes"}
            ],
            "granularitySpec": {"queryGranularity": "minute", "rollup": rollup}
        }));
        // Enough distinct ids that their dictionary is large (its lookups are prefetched)
        // and grows while batches are added; repeats, so rows roll up; nulls, lists and a
        // value that is not a number, so each kind of value and an error pass a batch.
        let rows: Vec<(i64, Map<String, Value>)> = (0..20_000u64)
            .map(|n| {
                // Each row twice, ten thousand rows apart.
                let i = n % 10_000;
                let id = (i * 7919) % 9_000;
                let kind = ["a", "b", "c"][(i % 3) as usize];
                let mut r = json!({"kind": kind, "id": format!("id-{id}"),
                    "code": if i % 97 == 0 { json!("oops") } else { json!(200 + i % 4) },
                    "bytes": n});
                if i % 5 == 0 {
                    r["tags"] = json!(["x", format!("t{}", i % 11)]);
                }
                if i % 13 == 0 {
                    r["kind"] = Value::Null;
                }
                (T0 + (i as i64 % 7) * 60_000, row(r))
            })
            .collect();
        let spec = IndexSpec::from_data_schema(&ds);
        let mut one_by_one = IncrementalIndex::new(seg_id(), spec.clone());
        let expected: Vec<AddOutcome> = rows.iter().map(|(t, r)| one_by_one.add(*t, r)).collect();
        let mut batched = IncrementalIndex::new(seg_id(), spec);
        let mut outcomes = Vec::new();
        // Groups of 16 and a shorter last one.
        for group in rows.chunks(16) {
            let group: Vec<(i64, &dyn InputRow)> = group
                .iter()
                .map(|(t, r)| (*t, r as &dyn InputRow))
                .collect();
            outcomes.extend(batched.add_batch(&group));
        }
        assert_eq!(outcomes, expected, "rollup {rollup}");
        assert!(expected.iter().any(|o| !o.errors.is_empty()));
        assert_eq!(expected.iter().any(|o| o.rolled_up), rollup);
        assert_eq!(batched.num_rows(), one_by_one.num_rows());
        assert_eq!(batched.bytes_in_memory(), one_by_one.bytes_in_memory());
        assert_eq!(
            crate::dump::rows(&batched).unwrap(),
            crate::dump::rows(&one_by_one).unwrap(),
            "rollup {rollup}"
        );
    }
}
