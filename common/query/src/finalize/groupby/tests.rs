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
        // The same order as sorting every group, cut after.
        let mut unlimited = spec.clone();
        unlimited.as_object_mut().unwrap().remove("limit");
        let sorted = order_all(&group_by(unlimited), &set, (0..set.len()).collect());
        assert_eq!(sorted.len(), set.len());
        assert_eq!(one, sorted[..one.len()], "{spec}");
    }
}

#[test]
fn first_n_equals_sorting_then_cutting() {
    // Ties in the first field only: among tied items any may be kept, so the values compare.
    let items: Vec<(u32, u32)> = (0..50_000u32)
        .map(|i| ((i * 7919) % 1013, (i * 31) % 50_021))
        .collect();
    for n in [1, 2, 7, 100, 1013, 49_999, 50_000, 60_000] {
        let by_both = |a: &(u32, u32), b: &(u32, u32)| a.cmp(b);
        let mut sorted = items.clone();
        sorted.sort_unstable();
        sorted.truncate(n);
        assert_eq!(first_n(items.iter().copied(), n, by_both), sorted, "n={n}");
        let by_first = |a: &(u32, u32), b: &(u32, u32)| a.0.cmp(&b.0);
        let firsts: Vec<u32> = first_n(items.iter().copied(), n, by_first)
            .iter()
            .map(|x| x.0)
            .collect();
        let expected: Vec<u32> = sorted.iter().map(|x| x.0).collect();
        assert_eq!(firsts, expected, "n={n}");
    }
    assert!(first_n(items.iter().copied(), 0, |a, b| a.cmp(b)).is_empty());
}
