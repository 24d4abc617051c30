//! Merging partial results: per segment on a data node (in parallel, folding as segments
//! finish), then per node on the broker. Merges are associative and commutative.

use crate::error::QueryError;
use crate::finalize::TopNScorer;
use crate::model::{Query, TopNQuery};
use crate::partial::{
    AggKind, GroupMerger, GroupedPartial, PARTITION_MIN_GROUPS, Partial, SearchPartial,
    merge_partitioned,
};

fn mismatch() -> QueryError {
    QueryError::Internal("partial results of different query types cannot merge".into())
}

/// A merge in progress. Start with [`Merging::new`], [`add`](Merging::add) partials in any
/// order, then [`finish`](Merging::finish). A data node merges its segments with
/// [`merge_parallel`].
pub enum Merging {
    Grouped(Box<GroupMerger>),
    Scan(Vec<crate::partial::ScanBatch>),
    Search(SearchPartial),
    TimeBoundary { min: Option<i64>, max: Option<i64> },
    SegmentMetadata(Vec<crate::partial::SegmentAnalysis>),
    DataSourceMetadata { max_time: Option<i64> },
}

fn min_opt(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, y) => x.or(y),
    }
}

fn max_opt(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.max(y)),
        (x, y) => x.or(y),
    }
}

impl Merging {
    pub fn new(query: &Query) -> Merging {
        let aggs = match query {
            Query::Timeseries(q) => &q.aggregations,
            Query::TopN(q) => &q.aggregations,
            Query::GroupBy(q) => &q.aggregations,
            Query::Scan(_) => return Merging::Scan(Vec::new()),
            Query::Search(_) => return Merging::Search(SearchPartial::default()),
            Query::TimeBoundary(_) => {
                return Merging::TimeBoundary {
                    min: None,
                    max: None,
                };
            }
            Query::SegmentMetadata(_) => return Merging::SegmentMetadata(Vec::new()),
            Query::DataSourceMetadata(_) => {
                return Merging::DataSourceMetadata { max_time: None };
            }
        };
        Merging::Grouped(Box::new(GroupMerger::new(
            aggs.iter().map(AggKind::of).collect(),
        )))
    }

    pub fn add(&mut self, part: Partial) -> Result<(), QueryError> {
        match (self, part) {
            (Merging::Grouped(m), Partial::Grouped(g)) => m.absorb(g),
            (Merging::Scan(all), Partial::Scan(b)) => all.extend(b),
            (Merging::Search(out), Partial::Search(s)) => {
                for (k, v) in s.counts {
                    *out.counts.entry(k).or_default() += v;
                }
            }
            (Merging::TimeBoundary { min, max }, Partial::TimeBoundary { min: lo, max: hi }) => {
                *min = min_opt(*min, lo);
                *max = max_opt(*max, hi);
            }
            (Merging::SegmentMetadata(all), Partial::SegmentMetadata(a)) => all.extend(a),
            (
                Merging::DataSourceMetadata { max_time },
                Partial::DataSourceMetadata { max_time: t },
            ) => *max_time = max_opt(*max_time, t),
            _ => return Err(mismatch()),
        }
        Ok(())
    }

    fn into_partial(self) -> Partial {
        match self {
            Merging::Grouped(m) => Partial::Grouped(m.finish()),
            Merging::Scan(b) => Partial::Scan(b),
            Merging::Search(s) => Partial::Search(s),
            Merging::TimeBoundary { min, max } => Partial::TimeBoundary { min, max },
            Merging::SegmentMetadata(a) => Partial::SegmentMetadata(a),
            Merging::DataSourceMetadata { max_time } => Partial::DataSourceMetadata { max_time },
        }
    }

    /// The merged partial. Scan batches come in segment order. A topN keeps, per time bucket, only the rows that can still reach
    /// the answer: the best `max(threshold, minTopNThreshold)` by its metric, as on segments.
    pub fn finish(self, query: &Query) -> Partial {
        match (query, self.into_partial()) {
            (Query::TopN(q), Partial::Grouped(g)) => Partial::Grouped(prune_topn(q, g)),
            // Segments finish in any order; unordered scans still page the same way each time.
            (_, Partial::Scan(mut batches)) => {
                batches.sort_by(|a, b| a.segment_id.cmp(&b.segment_id));
                Partial::Scan(batches)
            }
            (_, p) => p,
        }
    }
}

/// Merges partials of one query.
pub fn merge(query: &Query, parts: Vec<Partial>) -> Result<Partial, QueryError> {
    let mut merging = Merging::new(query);
    for part in parts {
        merging.add(part)?;
    }
    Ok(merging.finish(query))
}

/// Merges the partials of one node's segments on the current rayon pool: large grouped
/// results partition by partition in parallel ([`merge_partitioned`]), others in one pass.
pub fn merge_parallel(query: &Query, parts: Vec<Partial>) -> Result<Partial, QueryError> {
    let groups: Option<usize> = parts
        .iter()
        .map(|p| match p {
            Partial::Grouped(g) => Some(g.groups.len()),
            _ => None,
        })
        .sum();
    let aggs = match query {
        Query::Timeseries(q) => &q.aggregations,
        Query::TopN(q) => &q.aggregations,
        Query::GroupBy(q) => &q.aggregations,
        _ => return merge(query, parts),
    };
    if parts.len() < 2 || groups.is_none_or(|n| n < PARTITION_MIN_GROUPS) {
        return merge(query, parts);
    }
    let kinds: Vec<AggKind> = aggs.iter().map(AggKind::of).collect();
    let grouped: Vec<GroupedPartial> = parts
        .into_iter()
        .filter_map(|p| match p {
            Partial::Grouped(g) => Some(g),
            _ => None,
        })
        .collect();
    merge(
        query,
        vec![Partial::Grouped(merge_partitioned(&kinds, grouped))],
    )
}

fn prune_topn(q: &TopNQuery, mut g: GroupedPartial) -> GroupedPartial {
    let keep = q.threshold.max(q.context.min_top_n_threshold());
    if !q.metric.ranks_by_value() || keep == 0 || g.groups.len() <= keep {
        return g;
    }
    let scorer = TopNScorer::new(q);
    let mut states = Vec::new();
    let mut scored: Vec<(i64, f64, usize)> = (0..g.groups.len())
        .map(|i| {
            g.groups.states_into(i, &mut states);
            (g.groups.bucket(i), scorer.score(&states), i)
        })
        .collect();
    scored.sort_unstable_by_key(|(b, _, _)| *b);
    let mut kept: Vec<usize> = Vec::new();
    for bucket in scored.chunk_by_mut(|a, b| a.0 == b.0) {
        let n = bucket.len().min(keep);
        if bucket.len() > keep {
            bucket.select_nth_unstable_by(keep - 1, |a, b| a.1.total_cmp(&b.1));
        }
        kept.extend(bucket[..n].iter().map(|(_, _, i)| *i));
    }
    kept.sort_unstable();
    g.groups = g.groups.select(&kept);
    g
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::partial::{AggValue, GroupRow, GroupSet, KeyValue};

    fn part(rows: &[(&str, i64)]) -> GroupedPartial {
        GroupedPartial {
            groups: GroupSet::from_rows(
                rows.iter()
                    .map(|(k, c)| GroupRow {
                        bucket: 0,
                        key: vec![KeyValue::Str(k.to_string())],
                        aggs: vec![AggValue::Long(Some(*c))],
                    })
                    .collect(),
            ),
            covered: Vec::new(),
        }
    }

    fn topn(threshold: usize, min: usize) -> Query {
        serde_json::from_value(serde_json::json!({
            "queryType": "topN", "dataSource": "d", "intervals": ["2020/2021"],
            "granularity": "all", "dimension": "k", "metric": "c", "threshold": threshold,
            "aggregations": [{"type": "count", "name": "c"}],
            "context": {"minTopNThreshold": min}
        }))
        .unwrap()
    }

    fn counts(p: &Partial) -> Vec<(String, i64)> {
        let Partial::Grouped(g) = p else {
            panic!("not grouped")
        };
        let mut out: Vec<(String, i64)> = g
            .groups
            .clone()
            .into_rows()
            .iter()
            .map(|r| match (&r.key[0], &r.aggs[0]) {
                (KeyValue::Str(k), AggValue::Long(Some(c))) => (k.clone(), *c),
                other => panic!("unexpected row {other:?}"),
            })
            .collect();
        out.sort();
        out
    }

    #[test]
    fn merges_in_any_order_equal_a_sequential_merge() {
        let q = topn(10, 1000);
        let parts = [
            part(&[("a", 1), ("b", 2)]),
            part(&[("b", 3), ("c", 4)]),
            part(&[("a", 5), ("d", 6)]),
        ];
        let seq = merge(&q, parts.iter().cloned().map(Partial::Grouped).collect()).unwrap();
        let reordered = [2, 0, 1].map(|i| Partial::Grouped(parts[i].clone()));
        let in_any_order = merge_parallel(&q, reordered.into()).unwrap();
        assert_eq!(counts(&seq), counts(&in_any_order));
        assert_eq!(
            counts(&seq),
            vec![
                ("a".into(), 6),
                ("b".into(), 5),
                ("c".into(), 4),
                ("d".into(), 6)
            ]
        );
    }

    #[test]
    fn topn_merge_keeps_the_best_rows_per_bucket() {
        let q = topn(1, 2);
        let merged = merge(
            &q,
            vec![
                Partial::Grouped(part(&[("a", 1), ("b", 7)])),
                Partial::Grouped(part(&[("c", 4), ("a", 1)])),
            ],
        )
        .unwrap();
        assert_eq!(counts(&merged), vec![("b".into(), 7), ("c".into(), 4)]);
    }

    #[test]
    fn mismatched_partials_are_an_error() {
        let q = topn(1, 1);
        let err = merge(
            &q,
            vec![Partial::TimeBoundary {
                min: None,
                max: None,
            }],
        )
        .unwrap_err();
        assert!(err.to_string().contains("cannot merge"), "{err}");
    }
}
