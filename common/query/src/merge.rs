//! Merging partial results: per segment on a data node (in parallel, folding as segments
//! finish), then per node on the broker. Merges are associative and commutative.

use crate::error::QueryError;
use crate::finalize::TopNScorer;
use crate::model::{Query, TopNQuery};
use std::sync::{Mutex, OnceLock};

use rayon::prelude::*;

use crate::partial::{
    AggKind, GroupMerger, GroupedPartial, PARTITION_MIN_GROUPS, Partial, Partitioned, SearchPartial,
};

/// A fold poisoned by a panic: its groups cannot be trusted.
fn panicked() -> QueryError {
    QueryError::Internal("a segment merge panicked".into())
}

fn mismatch() -> QueryError {
    QueryError::Internal("partial results of different query types cannot merge".into())
}

/// A merge in progress. Start with [`Merging::new`], [`add`](Merging::add) partials in any
/// order, then [`finish`](Merging::finish). A data node merges its segments with
/// [`merge_segments`].
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

/// Merges the partials of one node's segments as they are produced, on the current rayon pool.
/// Each pool thread merges the partials it produced into its own merge. Once a thread's groups
/// pass [`PARTITION_MIN_GROUPS`] its merge becomes a [`Partitioned`] spread: each further
/// segment's groups are copied into partitions and the segment's own arrays freed, and at the
/// end every partition folds what all threads copied into it, partitions in parallel.
/// `segments` is how many partials will come; it sizes the partitions.
pub fn merge_segments<I>(query: &Query, segments: usize, parts: I) -> Result<Partial, QueryError>
where
    I: ParallelIterator<Item = Result<Partial, QueryError>>,
{
    let kinds = match Merging::new(query) {
        Merging::Grouped(m) => Some(m.kinds().to_vec()),
        _ => None,
    };
    let shared = Shared {
        query,
        kinds,
        segments: segments.max(1),
        threads: rayon::current_num_threads().max(1),
        hasher: hashbrown::DefaultHashBuilder::default(),
        bits: OnceLock::new(),
    };
    let threads = shared.threads;
    let folds: Vec<Mutex<Fold>> = (0..threads).map(|_| Mutex::new(Fold::new(query))).collect();
    parts.try_for_each(|part| {
        let part = part?;
        let slot = rayon::current_thread_index().unwrap_or(0) % threads;
        // Only this thread takes this lock, and folding starts no rayon work, so it never waits.
        folds[slot]
            .lock()
            .map_err(|_| panicked())?
            .add(part, &shared)
    })?;
    let folds: Vec<Fold> = folds
        .into_iter()
        .map(|f| f.into_inner().map_err(|_| panicked()))
        .collect::<Result<_, _>>()?;
    let Some(bits) = shared.bits.get().copied() else {
        let mut merging = Merging::new(query);
        for f in folds {
            if let Fold::Plain { merging: m, .. } = f {
                merging.add(m.into_partial())?;
            }
        }
        return Ok(merging.finish(query));
    };
    let mut spreads: Vec<Partitioned> = Vec::with_capacity(folds.len());
    for f in folds {
        spreads.push(match f {
            Fold::Split(p) => p,
            Fold::Plain { merging, .. } => {
                let mut p = Partitioned::new(bits, shared.hasher, 0);
                match merging.into_partial() {
                    Partial::Grouped(g) => p.add(g),
                    _ => return Err(mismatch()),
                }
                p
            }
        });
    }
    let kinds = shared.kinds.clone().unwrap_or_default();
    let merged = Partitioned::finish(&kinds, spreads);
    merge(query, vec![Partial::Grouped(merged)])
}

/// What every thread's fold of one query shares.
struct Shared<'q> {
    query: &'q Query,
    /// The aggregators' kinds, for grouped queries.
    kinds: Option<Vec<AggKind>>,
    segments: usize,
    /// Query threads, each with its own fold.
    threads: usize,
    hasher: hashbrown::DefaultHashBuilder,
    /// Partition bits, fixed by the first fold that splits: all folds must agree.
    bits: OnceLock<u32>,
}

/// One thread's merge of the partials it produced.
enum Fold {
    Plain {
        merging: Merging,
        groups: usize,
        seen: usize,
    },
    Split(Partitioned),
}

impl Fold {
    fn new(query: &Query) -> Self {
        Fold::Plain {
            merging: Merging::new(query),
            groups: 0,
            seen: 0,
        }
    }

    fn add(&mut self, part: Partial, shared: &Shared<'_>) -> Result<(), QueryError> {
        match (&mut *self, part) {
            (Fold::Split(p), Partial::Grouped(g)) => p.add(g),
            (Fold::Split(_), _) => return Err(mismatch()),
            (
                Fold::Plain {
                    merging,
                    groups,
                    seen,
                },
                part,
            ) => {
                if let Partial::Grouped(g) = &part {
                    *groups += g.groups.len();
                }
                *seen += 1;
                merging.add(part)?;
                if shared.kinds.is_none() || *groups < PARTITION_MIN_GROUPS {
                    return Ok(());
                }
                // As many groups again per segment still to come, at most.
                let expected = groups.saturating_mul(shared.segments) / *seen;
                let bits = *shared.bits.get_or_init(|| Partitioned::bits_for(expected));
                // This thread's share of the segments.
                let mine = expected / shared.threads;
                let mut split = Partitioned::new(bits, shared.hasher, mine);
                let merging = std::mem::replace(merging, Merging::new(shared.query));
                match merging.into_partial() {
                    Partial::Grouped(g) => split.add(g),
                    _ => return Err(mismatch()),
                }
                *self = Fold::Split(split);
            }
        }
        Ok(())
    }
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
        let in_any_order = merge_segments(&q, 3, reordered.into_par_iter().map(Ok)).unwrap();
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
    fn large_merges_across_threads_equal_a_sequential_merge() {
        let q: Query = serde_json::from_value(serde_json::json!({
            "queryType": "groupBy", "dataSource": "d", "intervals": ["2020/2021"],
            "granularity": "all", "dimensions": ["k"],
            "aggregations": [{"type": "count", "name": "c"}]
        }))
        .unwrap();
        // Twelve segments of 20,000 groups each, overlapping, well past the partitioning point.
        let parts: Vec<GroupedPartial> = (0..12)
            .map(|s| {
                let rows: Vec<(String, i64)> = (0..20_000)
                    .map(|i| (format!("k{}", (i * 7 + s * 5_000) % 90_001), i % 9 + 1))
                    .collect();
                let rows: Vec<(&str, i64)> = rows.iter().map(|(k, c)| (k.as_str(), *c)).collect();
                part(&rows)
            })
            .collect();
        assert!(parts.iter().map(|p| p.groups.len()).sum::<usize>() > 3 * PARTITION_MIN_GROUPS);
        let seq = merge(&q, parts.iter().cloned().map(Partial::Grouped).collect()).unwrap();
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap();
        let folded = pool
            .install(|| {
                merge_segments(
                    &q,
                    parts.len(),
                    parts.par_iter().cloned().map(|p| Ok(Partial::Grouped(p))),
                )
            })
            .unwrap();
        assert!(counts(&seq).len() > PARTITION_MIN_GROUPS);
        assert!(counts(&seq) == counts(&folded));
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
