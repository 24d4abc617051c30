use super::*;
use crate::model::Query;
use crate::partial::GroupRow;

fn group_by(limit_spec: Value) -> GroupByQuery {
    let q = json!({
        "queryType": "groupBy", "dataSource": "t", "granularity": "all",
        "intervals": ["2020-01-01/2021-01-01"],
        "dimensions": [{"type": "default", "dimension": "k", "outputName": "k", "outputType": "LONG"}],
        "aggregations": [{"type": "count", "name": "c"}, {"type": "longSum", "name": "s", "fieldName": "v"}],
        "limitSpec": limit_spec,
    });
    match serde_json::from_value::<Query>(q).expect("a groupBy query") {
        Query::GroupBy(q) => q,
        other => panic!("not a groupBy: {other:?}"),
    }
}

#[test]
fn ordering_in_parallel_pieces_equals_one_ordering() {
    // Enough groups to be split; counts with many ties (so the limit's cut keeps far more
    // than the limit), sums with few.
    let rows: Vec<GroupRow> = (0..300_000i64)
        .map(|i| GroupRow {
            bucket: 0,
            key: vec![KeyValue::Long((i * 7919) % 300_007)],
            aggs: vec![
                AggValue::Long(Some(1 + i % 3)),
                AggValue::Long(Some((i * 31) % 1000)),
            ],
        })
        .collect();
    let set = GroupSet::from_rows(rows);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap();
    let specs = [
        // A plain aggregator first (cut from the states), then a key column for ties.
        json!({"type": "default", "limit": 10, "offset": 3,
               "columns": [{"dimension": "c", "direction": "descending"}]}),
        json!({"type": "default", "limit": 25,
               "columns": [{"dimension": "s", "direction": "ascending"},
                           {"dimension": "k", "direction": "descending", "dimensionOrder": "numeric"}]}),
        json!({"type": "default", "limit": 5,
               "columns": [{"dimension": "k", "direction": "ascending", "dimensionOrder": "numeric"}]}),
    ];
    for spec in specs {
        let q = group_by(spec.clone());
        let all: Vec<usize> = (0..set.len()).collect();
        let one = order_all(&q, &set, all.clone());
        let pieces = pool.install(|| order_groups(&q, &set, all));
        assert_eq!(pieces, one, "{spec}");
        assert_eq!(one.len(), wanted(&q).unwrap());
    }
}
