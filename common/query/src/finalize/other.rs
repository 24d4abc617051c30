//! Results of scan, search, timeBoundary, segmentMetadata and dataSourceMetadata.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use eddy_types::TIME_COLUMN;
use eddy_types::time::format_iso;

use super::bucket_time;
use crate::compare::{compare_scan_keys, compare_strings, natural_cmp};
use crate::model::{
    Bound, ScanOrder, ScanQuery, ScanResultFormat, SearchQuery, SearchSort, SegmentMetadataQuery,
    TimeBoundaryQuery,
};
use crate::partial::{ScanBatch, SearchPartial, SegmentAnalysis};

pub fn scan(q: &ScanQuery, batches: Vec<ScanBatch>) -> Value {
    let offset = q.offset.unwrap_or(0);
    let limit = q.limit.unwrap_or(usize::MAX);
    let legacy_time = |columns: &[String]| -> Vec<String> {
        columns
            .iter()
            .map(|c| {
                if q.legacy && c == TIME_COLUMN {
                    "timestamp".to_string()
                } else {
                    c.clone()
                }
            })
            .collect()
    };
    let render = |columns: &[String], row: Vec<Value>| -> Value {
        let row: Vec<Value> = columns
            .iter()
            .zip(row)
            .map(|(c, v)| {
                if q.legacy && c == TIME_COLUMN {
                    v.as_i64()
                        .map_or(Value::Null, |t| Value::String(format_iso(t)))
                } else {
                    v
                }
            })
            .collect();
        match q.result_format {
            ScanResultFormat::CompactedList => Value::Array(row),
            ScanResultFormat::List => Value::Object(
                legacy_time(columns)
                    .into_iter()
                    .zip(row)
                    .collect::<Map<String, Value>>(),
            ),
        }
    };
    if q.order != ScanOrder::None || !q.order_by.is_empty() {
        let columns: Vec<String> = if q.columns.is_empty() {
            let mut cols: Vec<String> = Vec::new();
            for b in &batches {
                for c in &b.columns {
                    if !cols.contains(c) {
                        cols.push(c.clone());
                    }
                }
            }
            cols
        } else {
            q.columns.clone()
        };
        let mut rows: Vec<(i64, Vec<Value>, Vec<Value>)> = Vec::new();
        for b in batches {
            let mut keys = b.keys.into_iter();
            for (t, row) in b.times.into_iter().zip(b.rows) {
                let mut by_name: Map<String, Value> = b.columns.iter().cloned().zip(row).collect();
                rows.push((
                    t,
                    keys.next().unwrap_or_default(),
                    columns
                        .iter()
                        .map(|c| by_name.remove(c).unwrap_or(Value::Null))
                        .collect(),
                ));
            }
        }
        if q.order_by.is_empty() {
            rows.sort_by_key(|(t, _, _)| *t);
            if q.order == ScanOrder::Descending {
                rows.reverse();
            }
        } else {
            rows.sort_by(|a, b| compare_scan_keys(&a.1, &b.1, &q.order_by));
        }
        let events: Vec<Value> = rows
            .into_iter()
            .skip(offset)
            .take(limit)
            .map(|(_, _, r)| render(&columns, r))
            .collect();
        if events.is_empty() {
            return json!([]);
        }
        return json!([{"segmentId": null, "columns": legacy_time(&columns), "events": events}]);
    }
    let mut skip = offset;
    let mut left = limit;
    let mut out = Vec::new();
    for b in batches {
        if left == 0 {
            break;
        }
        let n = b.rows.len();
        if skip >= n {
            skip -= n;
            continue;
        }
        let events: Vec<Value> = b
            .rows
            .into_iter()
            .skip(skip)
            .take(left)
            .map(|r| render(&b.columns, r))
            .collect();
        skip = 0;
        left -= events.len();
        out.push(json!({"segmentId": b.segment_id, "columns": legacy_time(&b.columns), "events": events}));
    }
    Value::Array(out)
}

pub fn search(q: &SearchQuery, partial: SearchPartial) -> Value {
    let mut by_bucket: BTreeMap<i64, Vec<(String, String, u64)>> = BTreeMap::new();
    for ((bucket, dim, value), count) in partial.counts {
        by_bucket
            .entry(bucket)
            .or_default()
            .push((dim, value, count));
    }
    let limit = q.limit.unwrap_or(1000);
    let mut out = Vec::new();
    for (bucket, mut hits) in by_bucket {
        hits.sort_by(|a, b| {
            let o = match q.sort {
                SearchSort::Lexicographic => a.1.cmp(&b.1),
                SearchSort::Alphanumeric => natural_cmp(&a.1, &b.1),
                SearchSort::Strlen => a.1.len().cmp(&b.1.len()).then_with(|| a.1.cmp(&b.1)),
                SearchSort::Numeric => {
                    compare_strings(eddy_types::spec::StringComparator::Numeric, &a.1, &b.1)
                }
            };
            if o == Ordering::Equal {
                a.0.cmp(&b.0)
            } else {
                o
            }
        });
        hits.truncate(limit);
        let ts = if q.granularity.is_all() {
            q.intervals.first().map_or(0, |i| i.start)
        } else {
            bucket
        };
        let result: Vec<Value> = hits
            .into_iter()
            .map(|(d, v, c)| json!({"dimension": d, "value": v, "count": c}))
            .collect();
        out.push(json!({"timestamp": bucket_time(&q.granularity, ts), "result": result}));
    }
    Value::Array(out)
}

pub fn time_boundary(q: &TimeBoundaryQuery, min: Option<i64>, max: Option<i64>) -> Value {
    let (Some(lo), Some(hi)) = (min, max) else {
        return json!([]);
    };
    match q.bound {
        Some(Bound::MinTime) => {
            json!([{"timestamp": format_iso(lo), "result": {"minTime": format_iso(lo)}}])
        }
        Some(Bound::MaxTime) => {
            json!([{"timestamp": format_iso(hi), "result": {"maxTime": format_iso(hi)}}])
        }
        None => {
            json!([{"timestamp": format_iso(lo), "result": {"minTime": format_iso(lo), "maxTime": format_iso(hi)}}])
        }
    }
}

fn analysis_json(a: SegmentAnalysis, q: &SegmentMetadataQuery) -> Value {
    let wants = |t: &str| match &q.analysis_types {
        None => matches!(t, "cardinality" | "interval" | "minmax"),
        Some(list) => list.iter().any(|x| x.eq_ignore_ascii_case(t)),
    };
    let aggregators: Option<Map<String, Value>> = wants("aggregators").then(|| {
        a.aggregators
            .iter()
            .map(|s| {
                (
                    s.name().to_string(),
                    serde_json::to_value(s).unwrap_or(Value::Null),
                )
            })
            .collect()
    });
    json!({
        "id": a.id,
        "intervals": if wants("interval") { json!(a.intervals.iter().map(|i| i.to_string()).collect::<Vec<_>>()) } else { Value::Null },
        "columns": a.columns,
        "size": a.size,
        "numRows": a.num_rows,
        "aggregators": aggregators,
        "timestampSpec": null,
        "queryGranularity": a.query_granularity,
        "rollup": a.rollup,
    })
}

fn merge_column(into: &mut Value, other: &Value) {
    let (Some(a), Some(b)) = (into.as_object_mut(), other.as_object()) else {
        return;
    };
    for flag in ["hasMultipleValues", "hasNulls"] {
        let v = a.get(flag).and_then(Value::as_bool).unwrap_or(false)
            || b.get(flag).and_then(Value::as_bool).unwrap_or(false);
        a.insert(flag.into(), Value::Bool(v));
    }
    let size = a.get("size").and_then(Value::as_u64).unwrap_or(0)
        + b.get("size").and_then(Value::as_u64).unwrap_or(0);
    a.insert("size".into(), Value::from(size));
    if let (Some(x), Some(y)) = (
        a.get("cardinality").and_then(Value::as_u64),
        b.get("cardinality").and_then(Value::as_u64),
    ) {
        a.insert("cardinality".into(), Value::from(x.max(y)));
    }
    for (key, pick_min) in [("minValue", true), ("maxValue", false)] {
        if let (Some(x), Some(y)) = (
            a.get(key).and_then(Value::as_str),
            b.get(key).and_then(Value::as_str),
        ) {
            let keep = if (x <= y) == pick_min {
                x.to_string()
            } else {
                y.to_string()
            };
            a.insert(key.into(), Value::String(keep));
        } else if a.get(key).is_none_or(Value::is_null) {
            a.insert(key.into(), b.get(key).cloned().unwrap_or(Value::Null));
        }
    }
    if a.get("type") != b.get("type") {
        a.insert(
            "errorMessage".into(),
            Value::String(format!(
                "cannot merge types {:?} and {:?}",
                a.get("type"),
                b.get("type")
            )),
        );
    }
}

pub fn segment_metadata(q: &SegmentMetadataQuery, mut analyses: Vec<SegmentAnalysis>) -> Value {
    analyses.sort_by(|a, b| a.id.cmp(&b.id));
    if !q.merge || analyses.len() <= 1 {
        return Value::Array(analyses.into_iter().map(|a| analysis_json(a, q)).collect());
    }
    let mut iter = analyses.into_iter();
    let Some(mut merged) = iter.next() else {
        return json!([]);
    };
    for a in iter {
        merged.intervals.extend(a.intervals);
        merged.size += a.size;
        merged.num_rows += a.num_rows;
        for (name, col) in a.columns {
            match merged.columns.get_mut(&name) {
                Some(existing) => merge_column(existing, &col),
                None => {
                    merged.columns.insert(name, col);
                }
            }
        }
        for agg in a.aggregators {
            if !merged.aggregators.iter().any(|x| x.name() == agg.name()) {
                merged.aggregators.push(agg);
            }
        }
        if merged.rollup != a.rollup {
            merged.rollup = None;
        }
    }
    merged.id = "merged".into();
    merged.intervals = eddy_types::interval::condense(merged.intervals);
    json!([analysis_json(merged, q)])
}

pub fn datasource_metadata(max_time: Option<i64>) -> Value {
    match max_time {
        None => json!([]),
        Some(t) => {
            json!([{"timestamp": format_iso(t), "result": {"maxIngestedEventTime": format_iso(t)}}])
        }
    }
}
