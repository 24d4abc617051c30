//! Micro-benchmarks of the hot paths on one in-memory segment of synthetic clickstream rows:
//! building a segment (index, persist, write) and the per-segment query engine. The
//! side-by-side comparison with DuckDB lives in `benches/harness/` (see docs/benchmarks.md).

use std::sync::atomic::AtomicBool;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use serde_json::{Map, Value, json};

use eddy_query::engine::Context;
use eddy_query::{Query, execute, finalize, merge};
use eddy_segment::incremental::persist;
use eddy_segment::writer::write_vec;
use eddy_segment::{IncrementalIndex, IndexSpec, SegmentFile};
use eddy_types::spec::ingest::DataSchema;
use eddy_types::{DataSourceName, Interval, SegmentId};

const ROWS: usize = 200_000;
const T0: i64 = 1_372_636_800_000;

fn rows() -> Vec<Map<String, Value>> {
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    (0..ROWS)
        .map(|i| {
            let r = next();
            let user = (r % 50_000) * (r % 7 + 1);
            let country = ["US", "DE", "FR", "IN", "BR", "JP", "GB", "NL"][(r >> 20) as usize % 8];
            json!({
                "t": T0 + i as i64 * 400,
                "url": format!("http://site{}.example/page/{}", r % 300, (r >> 8) % 2000),
                "country": country,
                "user": user,
                "adv": if r % 50 == 0 { (r >> 30) % 10 } else { 0 },
                "latency": (r >> 40) % 1000,
            })
            .as_object()
            .cloned()
            .unwrap_or_default()
        })
        .collect()
}

fn spec() -> IndexSpec {
    let schema: DataSchema = serde_json::from_value(json!({
        "dataSource": "bench",
        "timestampSpec": {"column": "t"},
        "dimensionsSpec": {"dimensions": ["url", "country",
            {"type": "long", "name": "user", "createBitmapIndex": true},
            {"type": "long", "name": "adv", "createBitmapIndex": true},
            {"type": "long", "name": "latency"}]},
        "granularitySpec": {"rollup": false}
    }))
    .unwrap_or_else(|e| panic!("bench schema: {e}"));
    IndexSpec::from_data_schema(&schema)
}

fn id() -> SegmentId {
    SegmentId {
        datasource: DataSourceName::new("bench").unwrap_or_else(|e| panic!("{e}")),
        interval: Interval {
            start: T0,
            end: T0 + 86_400_000,
        },
        version: "v1".into(),
        partition: 0,
    }
}

fn build(rows: &[Map<String, Value>]) -> Vec<u8> {
    let mut index = IncrementalIndex::new(id(), spec());
    for r in rows {
        let t = r["t"].as_i64().unwrap_or(0);
        index.add(t, r);
    }
    write_vec(&persist(&index, id())).unwrap_or_else(|e| panic!("write: {e}"))
}

fn bench(c: &mut Criterion) {
    let data = rows();
    let mut g = c.benchmark_group("segment");
    g.throughput(Throughput::Elements(ROWS as u64));
    g.sample_size(10);
    g.bench_function("build_200k_rows", |b| b.iter(|| build(&data)));
    g.finish();

    let file =
        SegmentFile::from_bytes(build(&data).into(), "bench").unwrap_or_else(|e| panic!("{e}"));
    let queries = [
        (
            "count_filtered_numeric",
            json!({"queryType": "timeseries", "granularity": "all",
            "filter": {"type": "not", "field": {"type": "selector", "dimension": "adv", "value": "0"}},
            "aggregations": [{"type": "count", "name": "c"}]}),
        ),
        (
            "sum_two_columns",
            json!({"queryType": "timeseries", "granularity": "all",
            "aggregations": [{"type": "longSum", "name": "a", "fieldName": "adv"}, {"type": "doubleSum", "name": "l", "fieldName": "latency"}]}),
        ),
        (
            "distinct_users",
            json!({"queryType": "timeseries", "granularity": "all",
            "aggregations": [{"type": "cardinality", "name": "u", "fields": ["user"]}]}),
        ),
        (
            "like_on_dictionary",
            json!({"queryType": "timeseries", "granularity": "all",
            "filter": {"type": "like", "dimension": "url", "pattern": "%site1%"},
            "aggregations": [{"type": "count", "name": "c"}]}),
        ),
        (
            "topn_by_string",
            json!({"queryType": "topN", "granularity": "all", "dimension": "url", "threshold": 10,
            "metric": "c", "aggregations": [{"type": "count", "name": "c"}]}),
        ),
        (
            "topn_by_indexed_long",
            json!({"queryType": "topN", "granularity": "all", "dimension": "user", "threshold": 10,
            "metric": "c", "aggregations": [{"type": "count", "name": "c"}]}),
        ),
        (
            "groupby_hourly_two_dims",
            json!({"queryType": "groupBy", "granularity": "hour", "dimensions": ["country", "adv"],
            "aggregations": [{"type": "count", "name": "c"}, {"type": "longMax", "name": "m", "fieldName": "latency"}]}),
        ),
    ];
    let cancelled = AtomicBool::new(false);
    let ctx = Context {
        query_id: "bench",
        cancelled: &cancelled,
        deadline: None,
        timeout_ms: 0,
    };
    let mut g = c.benchmark_group("query_200k_rows");
    g.throughput(Throughput::Elements(ROWS as u64));
    for (name, mut q) in queries {
        q["dataSource"] = json!("bench");
        q["intervals"] = json!(["2013-01-01/2014-01-01"]);
        let query = Query::from_json(q).unwrap_or_else(|e| panic!("{name}: {e}"));
        g.bench_function(name, |b| {
            b.iter(|| {
                let p = execute(&query, &file, &[], &ctx).unwrap_or_else(|e| panic!("{e}"));
                finalize(
                    &query,
                    merge(&query, vec![p]).unwrap_or_else(|e| panic!("{e}")),
                )
                .unwrap_or_else(|e| panic!("{e}"))
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
