//! Merging partial results and turning the merged result into Druid's JSON response shapes:
//! finalized aggregates, post-aggregators, empty-bucket filling, orderings, limits.

mod groupby;
mod having;

pub use groupby::prune_to_limit;
mod other;

use std::cmp::Ordering;
use std::collections::BTreeMap;

use serde_json::{Map, Number, Value, json};

use eddy_types::spec::AggregatorSpec;
use eddy_types::time::format_iso_in;
use eddy_types::{Granularity, Interval};

use crate::error::QueryError;
use crate::model::{PostAggregator, Query, TimeseriesQuery, TopNMetric, TopNQuery, postagg::Num};
use crate::partial::{AggKind, AggValue, GroupRow, GroupedPartial, Partial, Scalar, ValueKind};

/// Most empty buckets a timeseries fills before refusing.
const MAX_FILLED_BUCKETS: usize = 1_000_000;

pub fn json_f64(v: f64) -> Value {
    Number::from_f64(v).map_or(Value::Null, Value::Number)
}

/// A float printed as its shortest f32 form ("0.1", not "0.10000000149011612").
pub fn json_f32(v: f32) -> Value {
    format!("{v}")
        .parse::<f64>()
        .ok()
        .and_then(Number::from_f64)
        .map_or(Value::Null, Value::Number)
}

fn scalar_json(s: &Scalar, kind: ValueKind) -> Value {
    match s {
        Scalar::Null => Value::Null,
        Scalar::Long(v) => Value::from(*v),
        Scalar::Double(v) if kind == ValueKind::Float => json_f32(*v as f32),
        Scalar::Double(v) => json_f64(*v),
        Scalar::Str(s) => Value::String(s.clone()),
    }
}

/// The finalized JSON value of an aggregate.
pub fn agg_json(kind: AggKind, v: &AggValue) -> Value {
    match (kind, v) {
        (_, AggValue::Long(x)) => x.map_or(Value::Null, Value::from),
        (AggKind::FloatSum | AggKind::FloatMin | AggKind::FloatMax, AggValue::Double(x)) => {
            x.map_or(Value::Null, |f| json_f32(f as f32))
        }
        (_, AggValue::Double(x)) => x.map_or(Value::Null, json_f64),
        (AggKind::Sketch { round: true }, AggValue::Sketch(h)) => {
            Value::from(h.estimate().round() as i64)
        }
        (_, AggValue::Sketch(h)) => json_f64(h.estimate()),
        (AggKind::First(k) | AggKind::Last(k), AggValue::Timed { value, .. }) => {
            scalar_json(value, k)
        }
        (_, AggValue::Text(t)) => t.as_ref().map_or(Value::Null, |s| Value::String(s.clone())),
        _ => Value::Null,
    }
}

/// The finalized number of an aggregate, for post-aggregators and rankings.
pub fn agg_num(kind: AggKind, v: &AggValue) -> Option<Num> {
    match v {
        AggValue::Long(x) => x.map(Num::Long),
        AggValue::Double(x) => x.map(Num::Double),
        AggValue::Sketch(h) => Some(match kind {
            AggKind::Sketch { round: true } => Num::Long(h.estimate().round() as i64),
            _ => Num::Double(h.estimate()),
        }),
        AggValue::Timed {
            value: Scalar::Long(x),
            ..
        } => Some(Num::Long(*x)),
        AggValue::Timed {
            value: Scalar::Double(x),
            ..
        } => Some(Num::Double(*x)),
        _ => None,
    }
}

fn num_json(n: Option<Num>) -> Value {
    match n {
        None => Value::Null,
        Some(Num::Long(v)) => Value::from(v),
        Some(Num::Double(v)) => json_f64(v),
    }
}

/// Aggregates and post-aggregates of one row, by output name, in query order.
pub fn result_map(
    aggs: &[AggregatorSpec],
    posts: &[PostAggregator],
    values: &[AggValue],
    out: &mut Map<String, Value>,
) {
    for_each_result(
        aggs,
        posts,
        values,
        |_| true,
        |name, v| {
            out.insert(name.to_string(), v);
        },
    );
}

/// Calls `emit(name, value)` for each aggregate and post-aggregate output `wanted` accepts, in
/// query order (post-aggregators may read any earlier output, wanted or not).
pub fn for_each_result(
    aggs: &[AggregatorSpec],
    posts: &[PostAggregator],
    values: &[AggValue],
    wanted: impl Fn(&str) -> bool,
    mut emit: impl FnMut(&str, Value),
) {
    let mut nums: Vec<(&str, Option<Num>)> = Vec::with_capacity(aggs.len() + posts.len());
    for (spec, v) in aggs.iter().zip(values) {
        let kind = AggKind::of(spec);
        if wanted(spec.name()) {
            emit(spec.name(), agg_json(kind, v));
        }
        nums.push((spec.name(), agg_num(kind, v)));
    }
    for p in posts {
        let value = p.compute(&|name| {
            nums.iter()
                .rev()
                .find(|(n, _)| *n == name)
                .and_then(|(_, v)| *v)
        });
        if wanted(p.name()) {
            emit(p.name(), num_json(value));
        }
        nums.push((p.name(), value));
    }
}

/// The value a topN ranks by, from a row's states.
fn topn_metric_value(q: &TopNQuery, metric: &str, values: &[AggValue]) -> Option<f64> {
    if let Some(i) = q.aggregations.iter().position(|a| a.name() == metric) {
        return agg_num(AggKind::of(&q.aggregations[i]), &values[i]).map(Num::as_f64);
    }
    let kinds: Vec<AggKind> = q.aggregations.iter().map(AggKind::of).collect();
    let mut nums: Vec<(&str, Option<Num>)> = q
        .aggregations
        .iter()
        .zip(&kinds)
        .zip(values)
        .map(|((a, k), v)| (a.name(), agg_num(*k, v)))
        .collect();
    if let Some((_, v)) = nums.iter().find(|(n, _)| *n == metric) {
        return v.map(Num::as_f64);
    }
    for p in &q.post_aggregations {
        let v = p.compute(&|name| {
            nums.iter()
                .rev()
                .find(|(n, _)| *n == name)
                .and_then(|(_, v)| *v)
        });
        if p.name() == metric {
            return v.map(Num::as_f64);
        }
        nums.push((p.name(), v));
    }
    None
}

/// A topN's ranking, resolved once per query: when the metric names an aggregator directly
/// (possibly inverted), a row's score reads that one state; otherwise it goes through
/// [`topn_score`].
pub struct TopNScorer<'q> {
    query: &'q TopNQuery,
    direct: Option<(usize, AggKind, bool)>,
}

impl<'q> TopNScorer<'q> {
    pub fn new(query: &'q TopNQuery) -> Self {
        let (name, inverted) = match &query.metric {
            TopNMetric::Numeric(name) => (Some(name), false),
            TopNMetric::Inverted(inner) => match &**inner {
                TopNMetric::Numeric(name) => (Some(name), true),
                _ => (None, false),
            },
            TopNMetric::Dimension { .. } => (None, false),
        };
        let direct = name
            .and_then(|n| query.aggregations.iter().position(|a| a.name() == n))
            .map(|i| (i, AggKind::of(&query.aggregations[i]), inverted));
        TopNScorer { query, direct }
    }

    /// The one aggregator the score reads, if that is all it reads.
    pub fn reads(&self) -> Option<usize> {
        self.direct.map(|(i, _, _)| i)
    }

    /// Lower ranks first, as [`topn_score`].
    #[inline]
    pub fn score(&self, values: &[AggValue]) -> f64 {
        match self.direct {
            Some((i, kind, inverted)) => {
                match agg_num(kind, &values[i])
                    .map(Num::as_f64)
                    .filter(|v| !v.is_nan())
                {
                    None => f64::INFINITY,
                    Some(v) if inverted => v,
                    Some(v) => -v,
                }
            }
            None => topn_score(self.query, values),
        }
    }
}

/// A topN row's rank score: lower ranks first, nulls last (+inf). Numeric metrics rank
/// descending, inverted ones ascending; dimension orderings score 0 (ties broken by value).
pub fn topn_score(q: &TopNQuery, values: &[AggValue]) -> f64 {
    fn go(q: &TopNQuery, m: &TopNMetric, values: &[AggValue]) -> f64 {
        match m {
            TopNMetric::Numeric(name) => topn_metric_value(q, name, values)
                .filter(|v| !v.is_nan())
                .map_or(f64::INFINITY, |v| -v),
            TopNMetric::Inverted(inner) => {
                let s = go(q, inner, values);
                if s == f64::INFINITY { s } else { -s }
            }
            TopNMetric::Dimension { .. } => 0.0,
        }
    }
    go(q, &q.metric, values)
}

/// Formats a bucket start in the granularity's zone.
pub fn bucket_time(granularity: &Granularity, t: i64) -> Value {
    Value::String(format_iso_in(t, &granularity.time_zone()))
}

/// Timestamp of the single bucket of an `all` granularity query.
pub fn all_timestamp(covered: &[Interval], intervals: &[Interval]) -> i64 {
    covered.first().or(intervals.first()).map_or(0, |i| i.start)
}

/// The JSON response body (an array) for a merged partial.
pub fn finalize(query: &Query, merged: Partial) -> Result<Value, QueryError> {
    match (query, merged) {
        (Query::Timeseries(q), Partial::Grouped(g)) => timeseries(q, g),
        (Query::TopN(q), Partial::Grouped(g)) => Ok(topn(q, g)),
        (Query::GroupBy(q), Partial::Grouped(g)) => groupby::finalize(q, g),
        (Query::Scan(q), Partial::Scan(b)) => Ok(other::scan(q, b)),
        (Query::Search(q), Partial::Search(s)) => Ok(other::search(q, s)),
        (Query::TimeBoundary(q), Partial::TimeBoundary { min, max }) => {
            Ok(other::time_boundary(q, min, max))
        }
        (Query::SegmentMetadata(q), Partial::SegmentMetadata(a)) => {
            Ok(other::segment_metadata(q, a))
        }
        (Query::DataSourceMetadata(_), Partial::DataSourceMetadata { max_time }) => {
            Ok(other::datasource_metadata(max_time))
        }
        _ => Err(QueryError::Internal(
            "partial result does not match the query type".into(),
        )),
    }
}

fn timeseries(q: &TimeseriesQuery, merged: GroupedPartial) -> Result<Value, QueryError> {
    let kinds: Vec<AggKind> = q.aggregations.iter().map(AggKind::of).collect();
    let empty: Vec<AggValue> = kinds.iter().map(|k| k.empty()).collect();
    let mut by_bucket: BTreeMap<i64, Vec<AggValue>> = BTreeMap::new();
    for row in merged.groups.into_rows() {
        by_bucket.insert(row.bucket, row.aggs);
    }
    let intervals = q.intervals.clone();
    let mut buckets: Vec<(i64, Vec<AggValue>)> = Vec::new();
    if q.granularity.is_all() {
        if !merged.covered.is_empty() || !by_bucket.is_empty() {
            let values = by_bucket
                .into_values()
                .next()
                .unwrap_or_else(|| empty.clone());
            buckets.push((all_timestamp(&merged.covered, &intervals), values));
        }
    } else if q.context.skip_empty_buckets() {
        buckets.extend(by_bucket);
    } else {
        let mut starts: Vec<i64> = Vec::new();
        for iv in &merged.covered {
            for b in q.granularity.buckets(*iv) {
                starts.push(b.start);
                if starts.len() > MAX_FILLED_BUCKETS {
                    return Err(QueryError::ResourceLimit(format!(
                        "granularity {} over these intervals makes more than {MAX_FILLED_BUCKETS} buckets; use a coarser granularity or skipEmptyBuckets",
                        q.granularity
                    )));
                }
            }
        }
        starts.extend(by_bucket.keys().copied());
        starts.sort_unstable();
        starts.dedup();
        for s in starts {
            let v = by_bucket.remove(&s).unwrap_or_else(|| empty.clone());
            buckets.push((s, v));
        }
    }
    if q.descending {
        buckets.reverse();
    }
    if let Some(limit) = q.limit {
        buckets.truncate(limit);
    }
    let mut out: Vec<Value> = Vec::with_capacity(buckets.len() + 1);
    let mut total: Option<Vec<AggValue>> = None;
    for (t, values) in buckets {
        let mut result = Map::new();
        result_map(&q.aggregations, &q.post_aggregations, &values, &mut result);
        if q.context.grand_total() {
            match &mut total {
                None => total = Some(values),
                Some(acc) => {
                    for ((k, a), v) in kinds.iter().zip(acc.iter_mut()).zip(values) {
                        k.combine(a, v);
                    }
                }
            }
        }
        out.push(json!({"timestamp": bucket_time(&q.granularity, t), "result": result}));
    }
    if q.context.grand_total() {
        let mut result = Map::new();
        result_map(
            &q.aggregations,
            &q.post_aggregations,
            &total.unwrap_or(empty),
            &mut result,
        );
        out.push(json!({"timestamp": null, "result": result}));
    }
    Ok(Value::Array(out))
}

/// A dimension value as the dimension spec's output type shows it.
pub fn dim_json(
    key: &crate::partial::KeyValue,
    output_type: Option<eddy_types::spec::dimension::ValueType>,
) -> Value {
    use crate::partial::KeyValue as K;
    use eddy_types::spec::dimension::ValueType as T;
    match (output_type.unwrap_or(T::String), key) {
        (_, K::Null) => Value::Null,
        (T::String, k) => k.to_text().map_or(Value::Null, Value::String),
        (T::Long, K::Long(v)) => Value::from(*v),
        (T::Long, K::Double(b)) => Value::from(f64::from_bits(*b) as i64),
        (T::Long, K::Str(s)) => {
            crate::compare::NumLit::parse(s).map_or(Value::Null, |n| Value::from(n.as_f64() as i64))
        }
        (T::Double | T::Float, K::Long(v)) => json_f64(*v as f64),
        (T::Double | T::Float, K::Double(b)) => json_f64(f64::from_bits(*b)),
        (T::Double | T::Float, K::Str(s)) => {
            crate::compare::NumLit::parse(s).map_or(Value::Null, |n| json_f64(n.as_f64()))
        }
    }
}

fn topn(q: &TopNQuery, merged: GroupedPartial) -> Value {
    let mut by_bucket: BTreeMap<i64, Vec<GroupRow>> = BTreeMap::new();
    for row in merged.groups.into_rows() {
        by_bucket.entry(row.bucket).or_default().push(row);
    }
    let ordering = groupby::dim_ordering(q.dimension.output_type);
    let dim_cmp =
        |a: &GroupRow, b: &GroupRow| groupby::compare_keys(&a.key[0], &b.key[0], ordering);
    let mut out = Vec::new();
    for (bucket, mut rows) in by_bucket {
        match &q.metric {
            TopNMetric::Dimension {
                ordering,
                previous_stop,
            } => {
                rows.retain(|r| match (previous_stop, r.key[0].to_text()) {
                    (Some(stop), Some(v)) => {
                        crate::compare::compare_strings(*ordering, &v, stop) == Ordering::Greater
                    }
                    (Some(_), None) => false,
                    (None, _) => true,
                });
                rows.sort_by(|a, b| groupby::compare_keys(&a.key[0], &b.key[0], Some(*ordering)));
            }
            TopNMetric::Inverted(inner) if matches!(**inner, TopNMetric::Dimension { .. }) => {
                rows.sort_by(|a, b| dim_cmp(b, a));
            }
            _ => {
                let scorer = TopNScorer::new(q);
                let mut scored: Vec<(f64, GroupRow)> = rows
                    .into_iter()
                    .map(|r| (scorer.score(&r.aggs), r))
                    .collect();
                let order = |a: &(f64, GroupRow), b: &(f64, GroupRow)| {
                    a.0.total_cmp(&b.0).then_with(|| dim_cmp(&a.1, &b.1))
                };
                // Only the best `threshold` rows need ordering.
                if q.threshold > 0 && scored.len() > q.threshold {
                    scored.select_nth_unstable_by(q.threshold - 1, order);
                    scored.truncate(q.threshold);
                }
                scored.sort_by(order);
                rows = scored.into_iter().map(|(_, r)| r).collect();
            }
        }
        rows.truncate(q.threshold);
        let timestamp = if q.granularity.is_all() {
            all_timestamp(&merged.covered, &q.intervals)
        } else {
            bucket
        };
        let results: Vec<Value> = rows
            .iter()
            .map(|r| {
                let mut m = Map::new();
                m.insert(
                    q.dimension.output_name.clone(),
                    dim_json(&r.key[0], q.dimension.output_type),
                );
                result_map(&q.aggregations, &q.post_aggregations, &r.aggs, &mut m);
                Value::Object(m)
            })
            .collect();
        out.push(json!({"timestamp": bucket_time(&q.granularity, timestamp), "result": results}));
    }
    Value::Array(out)
}
