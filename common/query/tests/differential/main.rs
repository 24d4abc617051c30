//! Differential test: random rows and random native queries through the engine (over persisted
//! segment files and live incremental indexes) and through the naive reference evaluator; the
//! answers must match. `EDDY_DIFF_CASES` (default 400) and `EDDY_DIFF_SEED` (default 7) scale it:
//! `EDDY_DIFF_CASES=20000 cargo test -p eddy-query --test differential` for a long run.

// Test code: a failed unwrap is a failed assertion.
#![allow(clippy::unwrap_used)]

mod reference;

use std::collections::BTreeMap;
use std::sync::atomic::AtomicBool;

use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

use eddy_query::engine::Context;
use eddy_query::{Query, execute, finalize, merge};
use eddy_segment::incremental::persist;
use eddy_segment::writer::write_vec;
use eddy_segment::{IncrementalIndex, IndexSpec, SegmentFile, SegmentReader};
use eddy_types::spec::ingest::DataSchema;
use eddy_types::{DataSourceName, Interval, SegmentId};

use reference::{Cell, Row};

const DAY: i64 = 86_400_000;
const T0: i64 = 1_577_836_800_000; // 2020-01-01T00:00:00Z

fn schema() -> DataSchema {
    serde_json::from_value(json!({
        "dataSource": "t",
        "timestampSpec": {"column": "ts"},
        "dimensionsSpec": {"dimensions": [
            "s1", {"type": "string", "name": "s2", "createBitmapIndex": false}, "m",
            {"type": "long", "name": "l", "createBitmapIndex": true},
            {"type": "long", "name": "l2"},
            {"type": "double", "name": "d"}
        ]},
        "metricsSpec": [
            {"type": "count", "name": "cnt"},
            {"type": "longSum", "name": "met_l", "fieldName": "met_l"},
            {"type": "doubleSum", "name": "met_d", "fieldName": "met_d"},
            {"type": "hyperUnique", "name": "hu", "fieldName": "s2"}
        ],
        "granularitySpec": {"rollup": false, "queryGranularity": "none"}
    }))
    .unwrap()
}

fn random_rows(rng: &mut StdRng, n: usize) -> Vec<(Value, Row)> {
    let mut times: Vec<i64> = Vec::new();
    while times.len() < n {
        let t = T0 + rng.random_range(0..3 * DAY);
        if !times.contains(&t) {
            times.push(t);
        }
    }
    times
        .into_iter()
        .map(|t| {
            let s1: Option<String> = [None, Some(""), Some("a"), Some("b"), Some("c"), Some("dd"), Some("Ab"), Some("né")].choose(rng).unwrap().map(str::to_string);
            let s2: Option<String> = if rng.random_bool(0.1) { None } else { Some(rng.random_range(0..50).to_string()) };
            let m: Option<Vec<String>> = match rng.random_range(0..5) {
                0 => None,
                1 => Some(vec![]),
                _ => {
                    let k = rng.random_range(1..4);
                    let mut v: Vec<String> = (0..k).map(|_| (*["x", "y", "z"].choose(rng).unwrap()).to_string()).collect();
                    v.sort();
                    Some(v)
                }
            };
            let l: Option<i64> = if rng.random_bool(0.15) { None } else { Some(rng.random_range(0..20)) };
            let l2: Option<i64> = if rng.random_bool(0.1) { None } else { Some(rng.random_range(-100..100)) };
            let d: Option<f64> = if rng.random_bool(0.1) { None } else { Some(f64::from(rng.random_range(-40..40)) * 0.25) };
            let met_l: Option<i64> = if rng.random_bool(0.1) { None } else { Some(rng.random_range(0..1000)) };
            let met_d: Option<f64> = if rng.random_bool(0.1) { None } else { Some(f64::from(rng.random_range(0..400)) * 0.5) };
            let input = json!({"s1": s1, "s2": s2, "m": m, "l": l, "l2": l2, "d": d, "met_l": met_l, "met_d": met_d});
            let mut cells = BTreeMap::new();
            cells.insert("s1".into(), s1.map_or(Cell::Null, Cell::Str));
            cells.insert("s2".into(), s2.clone().map_or(Cell::Null, Cell::Str));
            cells.insert("m".into(), m.map_or(Cell::Null, Cell::Multi));
            cells.insert("l".into(), l.map_or(Cell::Null, Cell::Long));
            cells.insert("l2".into(), l2.map_or(Cell::Null, Cell::Long));
            cells.insert("d".into(), d.map_or(Cell::Null, Cell::Double));
            cells.insert("cnt".into(), Cell::Long(1));
            cells.insert("met_l".into(), met_l.map_or(Cell::Null, Cell::Long));
            cells.insert("met_d".into(), met_d.map_or(Cell::Null, Cell::Double));
            cells.insert("hu".into(), Cell::Multi(s2.into_iter().collect()));
            (input, Row { time: t, cells })
        })
        .collect()
}

/// Segments by day, some days split in two partitions; some persisted, some left in memory.
fn build_segments(rng: &mut StdRng, rows: &[(Value, Row)]) -> Vec<Box<dyn SegmentReader>> {
    let spec = IndexSpec::from_data_schema(&schema());
    let mut out: Vec<Box<dyn SegmentReader>> = Vec::new();
    for day in 0..3 {
        let chunk = Interval {
            start: T0 + day * DAY,
            end: T0 + (day + 1) * DAY,
        };
        let in_day: Vec<&(Value, Row)> = rows
            .iter()
            .filter(|(_, r)| chunk.contains(r.time))
            .collect();
        let parts = if rng.random_bool(0.5) { 2 } else { 1 };
        for p in 0..parts {
            let id = SegmentId {
                datasource: DataSourceName::new("t").unwrap(),
                interval: chunk,
                version: "v1".into(),
                partition: p,
            };
            let mut index = IncrementalIndex::new(id.clone(), spec.clone());
            for (i, (input, row)) in in_day.iter().enumerate() {
                if i as u32 % parts == p {
                    index.add(row.time, input.as_object().unwrap());
                }
            }
            if rng.random_bool(0.7) {
                let bytes = write_vec(&persist(&index, id)).unwrap();
                out.push(Box::new(
                    SegmentFile::from_bytes(bytes.into(), "mem").unwrap(),
                ));
            } else {
                out.push(Box::new(index));
            }
        }
    }
    out
}

fn iso(t: i64) -> String {
    eddy_types::time::format_iso(t)
}

fn random_leaf(rng: &mut StdRng) -> Value {
    let col: &str = ["s1", "s2", "m", "l", "l2", "d", "nope"]
        .choose(rng)
        .unwrap();
    let sample = |rng: &mut StdRng, col: &str| -> Value {
        match col {
            "s1" => json!((*["", "a", "b", "c", "dd", "Ab", "zz"].choose(rng).unwrap())),
            "s2" => json!(rng.random_range(0..55).to_string()),
            "m" => json!((*["x", "y", "z", "w"].choose(rng).unwrap())),
            "l" => json!(rng.random_range(-2..22).to_string()),
            "l2" => json!(rng.random_range(-110..110).to_string()),
            "d" => json!((f64::from(rng.random_range(-40..40)) * 0.25).to_string()),
            _ => json!("q"),
        }
    };
    match rng.random_range(0..11) {
        0 => {
            json!({"type": "selector", "dimension": col, "value": if rng.random_bool(0.15) { Value::Null } else { sample(rng, col) }})
        }
        1 => {
            json!({"type": "in", "dimension": col, "values": [sample(rng, col), sample(rng, col), if rng.random_bool(0.2) { Value::Null } else { sample(rng, col) }]})
        }
        2 => {
            let numeric = rng.random_bool(0.5);
            let (mut a, mut b) = (sample(rng, col), sample(rng, col));
            if numeric && a.as_str().and_then(|s| s.parse::<f64>().ok()).is_none() {
                a = json!("3");
            }
            if numeric && b.as_str().and_then(|s| s.parse::<f64>().ok()).is_none() {
                b = json!("30");
            }
            let mut f = json!({"type": "bound", "dimension": col, "lowerStrict": rng.random_bool(0.5), "upperStrict": rng.random_bool(0.5)});
            if numeric {
                f["ordering"] = json!("numeric");
            }
            if rng.random_bool(0.8) {
                f["lower"] = a;
            }
            if rng.random_bool(0.8) {
                f["upper"] = b;
            }
            f
        }
        3 => {
            json!({"type": "like", "dimension": col, "pattern": (*["a%", "%b", "_", "%1%", "1_", "%"].choose(rng).unwrap())})
        }
        4 => {
            json!({"type": "regex", "dimension": col, "pattern": (*["^a", "b$", "[0-2]", "x|z", "."].choose(rng).unwrap())})
        }
        5 => {
            json!({"type": "search", "dimension": col, "query": {"type": "insensitive_contains", "value": (*["a", "B", "1", "x"].choose(rng).unwrap())}})
        }
        6 => json!({"type": "null", "column": col}),
        7 => {
            let lo = T0 + rng.random_range(0..3 * DAY);
            let hi = lo + rng.random_range(0..DAY);
            json!({"type": "interval", "dimension": "__time", "intervals": [format!("{}/{}", iso(lo), iso(hi))]})
        }
        8 => match col {
            "l" | "l2" => {
                json!({"type": "equals", "column": col, "matchValueType": "LONG", "matchValue": rng.random_range(-2..22)})
            }
            "d" => {
                json!({"type": "equals", "column": col, "matchValueType": "DOUBLE", "matchValue": f64::from(rng.random_range(-8..8)) * 0.25})
            }
            _ => {
                json!({"type": "equals", "column": col, "matchValueType": "STRING", "matchValue": sample(rng, col)})
            }
        },
        9 => match col {
            "l" | "l2" | "d" => {
                json!({"type": "range", "column": col, "matchValueType": if col == "d" { "DOUBLE" } else { "LONG" },
                                      "lower": rng.random_range(-5..10), "upper": rng.random_range(5..25),
                                      "lowerOpen": rng.random_bool(0.5), "upperOpen": rng.random_bool(0.5)})
            }
            _ => {
                json!({"type": "range", "column": col, "matchValueType": "STRING", "lower": sample(rng, col), "lowerOpen": rng.random_bool(0.5)})
            }
        },
        _ => json!({"type": if rng.random_bool(0.5) { "true" } else { "false" }}),
    }
}

fn random_filter(rng: &mut StdRng, depth: u32) -> Value {
    if depth == 0 || rng.random_bool(0.5) {
        return random_leaf(rng);
    }
    match rng.random_range(0..3) {
        0 => {
            json!({"type": "and", "fields": [random_filter(rng, depth - 1), random_filter(rng, depth - 1)]})
        }
        1 => {
            json!({"type": "or", "fields": [random_filter(rng, depth - 1), random_filter(rng, depth - 1)]})
        }
        _ => json!({"type": "not", "field": random_filter(rng, depth - 1)}),
    }
}

fn random_aggs(rng: &mut StdRng) -> Vec<Value> {
    let pool = [
        json!({"type": "count", "name": "rows"}),
        json!({"type": "longSum", "name": "sum_l", "fieldName": "met_l"}),
        json!({"type": "longSum", "name": "sum_cnt", "fieldName": "cnt"}),
        json!({"type": "doubleSum", "name": "sum_d", "fieldName": "met_d"}),
        json!({"type": "doubleSum", "name": "sum_dim_d", "fieldName": "d"}),
        json!({"type": "longMin", "name": "min_l2", "fieldName": "l2"}),
        json!({"type": "longMax", "name": "max_l", "fieldName": "l"}),
        json!({"type": "doubleMin", "name": "min_d", "fieldName": "d"}),
        json!({"type": "doubleMax", "name": "max_md", "fieldName": "met_d"}),
        json!({"type": "longSum", "name": "sum_s2", "fieldName": "s2"}),
        json!({"type": "longSum", "name": "sum_idx", "fieldName": "l"}),
        json!({"type": "doubleSum", "name": "dsum_idx", "fieldName": "l"}),
        json!({"type": "longMin", "name": "min_idx", "fieldName": "l"}),
        json!({"type": "doubleMax", "name": "max_d", "fieldName": "d"}),
        json!({"type": "longSum", "name": "sum_missing", "fieldName": "nope"}),
        json!({"type": "cardinality", "name": "u_s2", "fields": ["s2"]}),
        json!({"type": "cardinality", "name": "u_m", "fieldNames": ["m"]}),
        json!({"type": "cardinality", "name": "u_l", "fields": ["l"]}),
        json!({"type": "hyperUnique", "name": "u_hu", "fieldName": "hu"}),
        json!({"type": "longFirst", "name": "first_l", "fieldName": "met_l"}),
        json!({"type": "longLast", "name": "last_l", "fieldName": "met_l"}),
        json!({"type": "stringFirst", "name": "first_s2", "fieldName": "s2"}),
        json!({"type": "stringLast", "name": "last_s1", "fieldName": "s1"}),
        json!({"type": "stringMin", "name": "min_s1", "fieldName": "s1"}),
        json!({"type": "stringMax", "name": "max_m", "fieldName": "m"}),
        json!({"type": "stringMin", "name": "min_s2", "fieldName": "s2"}),
        json!({"type": "stringMax", "name": "max_nope", "fieldName": "nope"}),
    ];
    let mut aggs: Vec<Value> = vec![json!({"type": "count", "name": "rows"})];
    for _ in 0..rng.random_range(0..4) {
        let a = pool.choose(rng).unwrap().clone();
        if !aggs.iter().any(|x| x["name"] == a["name"]) {
            aggs.push(a);
        }
    }
    if rng.random_bool(0.3) {
        let inner = if rng.random_bool(0.5) {
            json!({"type": "count", "name": "f_rows"})
        } else {
            json!({"type": "longSum", "name": "f_rows", "fieldName": "met_l"})
        };
        aggs.push(
            json!({"type": "filtered", "filter": random_filter(rng, 1), "aggregator": inner}),
        );
    }
    aggs
}

fn random_granularity(rng: &mut StdRng) -> Value {
    [
        json!("all"),
        json!("all"),
        json!("hour"),
        json!("six_hour"),
        json!("day"),
        json!("fifteen_minute"),
        json!("week"),
        json!("month"),
        json!({"type": "period", "period": "P1D", "timeZone": "America/Los_Angeles"}),
        json!({"type": "period", "period": "PT1H", "timeZone": "Asia/Kolkata"}),
        json!({"type": "duration", "duration": 7_200_000, "origin": "2020-01-01T00:30:00Z"}),
    ]
    .choose(rng)
    .unwrap()
    .clone()
}

fn random_intervals(rng: &mut StdRng) -> Value {
    let mut out = Vec::new();
    for _ in 0..rng.random_range(1..3) {
        let lo = T0 - DAY / 2 + rng.random_range(0..4 * DAY);
        let hi = lo + rng.random_range(1..3 * DAY);
        out.push(format!("{}/{}", iso(lo), iso(hi)));
    }
    if rng.random_bool(0.3) {
        out = vec![format!("{}/{}", iso(T0 - DAY), iso(T0 + 4 * DAY))];
    }
    json!(out)
}

fn random_query(rng: &mut StdRng) -> Value {
    let mut q = json!({"dataSource": "t", "intervals": random_intervals(rng)});
    if rng.random_bool(0.7) {
        q["filter"] = random_filter(rng, 2);
    }
    let aggs = random_aggs(rng);
    match rng.random_range(0..10) {
        0..=2 => {
            q["queryType"] = json!("timeseries");
            q["granularity"] = random_granularity(rng);
            q["aggregations"] = json!(aggs);
            q["context"] = json!({"skipEmptyBuckets": rng.random_bool(0.3), "grandTotal": rng.random_bool(0.3)});
            q["descending"] = json!(rng.random_bool(0.3));
            if rng.random_bool(0.2) {
                q["limit"] = json!(rng.random_range(1..5));
            }
            if rng.random_bool(0.3) {
                q["postAggregations"] = json!([{"type": "arithmetic", "name": "ratio", "fn": "/", "fields": [
                    {"type": "fieldAccess", "fieldName": aggs.last().unwrap()["name"].as_str().unwrap_or("rows")},
                    {"type": "fieldAccess", "fieldName": "rows"}]},
                    {"type": "constant", "name": "k", "value": 2.5}]);
            }
        }
        3..=4 => {
            q["queryType"] = json!("topN");
            q["granularity"] = if rng.random_bool(0.7) {
                json!("all")
            } else {
                json!("day")
            };
            let dim: &str = ["s1", "s2", "m", "l"].choose(rng).unwrap();
            q["dimension"] = if dim == "l" && rng.random_bool(0.5) {
                json!({"type": "default", "dimension": "l", "outputName": "el", "outputType": "LONG"})
            } else {
                json!(dim)
            };
            q["threshold"] = json!(rng.random_range(1..8));
            q["aggregations"] = json!(aggs);
            q["metric"] = match rng.random_range(0..4) {
                0 => json!({"type": "inverted", "metric": "rows"}),
                1 => json!({"type": "dimension", "ordering": "lexicographic"}),
                _ => json!(
                    aggs[rng.random_range(0..aggs.len())]["name"]
                        .as_str()
                        .unwrap_or("rows")
                ),
            };
        }
        5..=7 => {
            q["queryType"] = json!("groupBy");
            q["granularity"] = if rng.random_bool(0.6) {
                json!("all")
            } else {
                random_granularity(rng)
            };
            let mut dims: Vec<Value> = Vec::new();
            for _ in 0..rng.random_range(0..3) {
                let d: &str = ["s1", "s2", "m", "l", "l2", "d"].choose(rng).unwrap();
                if !dims.iter().any(|x| x == d) {
                    dims.push(json!(d));
                }
            }
            if rng.random_bool(0.2) {
                dims.push(json!({"type": "default", "dimension": "l2", "outputName": "l2long", "outputType": "LONG"}));
            }
            if rng.random_bool(0.3) {
                q["virtualColumns"] = virtuals();
                // Both virtual columns (32 bits of ids each, as their cardinality is unknown)
                // with another part make a key that does not pack into 64 bits.
                let both = rng.random_bool(0.4);
                for v in ["vh", "vl"] {
                    if both || rng.random_bool(0.5) {
                        dims.push(json!({"type": "default", "dimension": v, "outputName": v, "outputType": "LONG"}));
                    }
                }
                if rng.random_bool(0.3) {
                    dims.push(json!({"type": "default", "dimension": "vu", "outputName": "vu", "outputType": "STRING"}));
                }
            }
            let mut aggs = aggs.clone();
            if rng.random_bool(0.3) {
                q["virtualColumns"] = virtuals();
                let t: &str = ["longSum", "longMax", "doubleMin"].choose(rng).unwrap();
                aggs.push(json!({"type": t, "name": "agg_vs", "fieldName": "vs"}));
                aggs.push(json!({"type": "longSum", "name": "agg_vn", "fieldName": "vn"}));
            }
            q["dimensions"] = json!(dims);
            q["aggregations"] = json!(aggs);
            if rng.random_bool(0.3) {
                q["having"] = json!({"type": "greaterThan", "aggregation": "rows", "value": rng.random_range(0..4)});
            }
            if rng.random_bool(0.5) {
                // Ordered by a measure, or by the keys alone (what each segment can prune to).
                let direction = |rng: &mut StdRng| {
                    if rng.random_bool(0.6) {
                        "descending"
                    } else {
                        "ascending"
                    }
                };
                let mut columns: Vec<Value> = Vec::new();
                if rng.random_bool(0.3) {
                    // A grouping dimension first: strings order as text, l2long as a number.
                    let names: Vec<Value> = dims
                        .iter()
                        .map(|d| d.get("outputName").unwrap_or(d).clone())
                        .collect();
                    if let Some(name) = names.choose(rng) {
                        columns.push(json!({"dimension": name, "direction": direction(rng)}));
                    }
                }
                if rng.random_bool(0.6) {
                    // Mostly the row count; sometimes another of the query's aggregators.
                    let named: Vec<Value> =
                        aggs.iter().filter_map(|a| a.get("name").cloned()).collect();
                    let measure = match named.choose(rng) {
                        Some(n) if rng.random_bool(0.4) => n.clone(),
                        _ => json!("rows"),
                    };
                    columns.push(json!({"dimension": measure, "direction": direction(rng)}));
                }
                let columns = json!(columns);
                q["limitSpec"] = json!({"type": "default", "limit": rng.random_range(1..15), "offset": rng.random_range(0..3),
                    "columns": columns});
            }
        }
        8 => {
            q["queryType"] = json!("scan");
            q["order"] = json!(if rng.random_bool(0.5) {
                "ascending"
            } else {
                "descending"
            });
            q["columns"] = json!(["__time", "s1", "m", "l", "d", "met_l", "nope"]);
            q["limit"] = json!(rng.random_range(1..30));
            if rng.random_bool(0.3) {
                q["offset"] = json!(rng.random_range(0..5));
            }
        }
        _ => {
            if rng.random_bool(0.5) {
                q["queryType"] = json!("timeBoundary");
            } else {
                q["queryType"] = json!("search");
                q["searchDimensions"] = json!(["s1", "s2"]);
                q["query"] = json!({"type": "insensitive_contains", "value": (*["a", "b", "1", "2"].choose(rng).unwrap())});
            }
        }
    }
    q
}

/// Expression virtual columns the generated groupBys may group on (reference.rs computes them
/// independently: `vh` is the hour in New York, `vl` is `l + 1`, `vu` is `s1` in capitals;
/// aggregators read `vs`, the length of `s1`, and `vn`, whether `s1` is not null).
fn virtuals() -> Value {
    json!([
        {"type": "expression", "name": "vh", "outputType": "LONG",
         "expression": "timestamp_extract(__time, 'HOUR', 'America/New_York')"},
        {"type": "expression", "name": "vl", "outputType": "LONG", "expression": "\"l\" + 1"},
        {"type": "expression", "name": "vs", "outputType": "LONG", "expression": "strlen(\"s1\")"},
        {"type": "expression", "name": "vu", "outputType": "STRING", "expression": "upper(\"s1\")"},
        {"type": "expression", "name": "vn", "outputType": "LONG", "expression": "notnull(strlen(\"s1\"))"},
    ])
}

fn run_engine(q: &Value, segments: &[Box<dyn SegmentReader>]) -> Value {
    let query =
        Query::from_json(q.clone()).unwrap_or_else(|e| panic!("query did not parse: {e}\n{q}"));
    let cancelled = AtomicBool::new(false);
    let ctx = Context {
        query_id: "t",
        cancelled: &cancelled,
        deadline: None,
        timeout_ms: 0,
    };
    let intervals = query.intervals();
    let partials: Vec<_> = segments
        .iter()
        .filter(|s| {
            intervals
                .iter()
                .any(|i| i.overlaps(&s.segment_id().interval))
        })
        .map(|s| {
            execute(&query, s.as_ref(), &[], &ctx)
                .unwrap_or_else(|e| panic!("execute failed: {e}\n{q}"))
        })
        .collect();
    let merged = merge(&query, partials).unwrap();
    finalize(&query, merged).unwrap()
}

/// Equal JSON, with doubles compared to a relative 1e-9.
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            if let (Some(p), Some(q)) = (x.as_i64(), y.as_i64()) {
                return p == q;
            }
            let (p, q) = (x.as_f64().unwrap(), y.as_f64().unwrap());
            (p - q).abs() <= 1e-9 * p.abs().max(q.abs()).max(1.0)
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same(p, q))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => a == b,
    }
}

#[test]
fn engine_matches_reference() {
    let cases: usize = std::env::var("EDDY_DIFF_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(400);
    let seed: u64 = std::env::var("EDDY_DIFF_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(7);
    let mut rng = StdRng::seed_from_u64(seed);
    let mut checked = 0;
    for dataset in 0..(cases / 50).max(1) {
        let n = rng.random_range(20..400);
        let rows = random_rows(&mut rng, n);
        let segments = build_segments(&mut rng, &rows);
        let chunks: Vec<(i64, i64)> = (0..3).map(|d| (T0 + d * DAY, T0 + (d + 1) * DAY)).collect();
        let plain: Vec<Row> = rows.iter().map(|(_, r)| r.clone()).collect();
        for _ in 0..50 {
            let q = random_query(&mut rng);
            let got = run_engine(&q, &segments);
            let want = reference::run(&q, &plain, &chunks);
            assert!(
                same(&got, &want),
                "dataset {dataset} (seed {seed}) query:\n{}\nengine:\n{}\nreference:\n{}",
                serde_json::to_string_pretty(&q).unwrap(),
                serde_json::to_string_pretty(&got).unwrap(),
                serde_json::to_string_pretty(&want).unwrap()
            );
            checked += 1;
        }
    }
    assert!(checked >= cases.min(50), "ran {checked} cases");
}
