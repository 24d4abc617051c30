//! groupBy results: events with finalized aggregates, `having`, `limitSpec` ordering with offset
//! and limit, and `subtotalsSpec` result sets.

use std::cmp::Ordering;
use std::collections::HashMap;

use serde_json::{Map, Value, json};

use eddy_types::spec::StringComparator;
use eddy_types::spec::dimension::ValueType;

use super::having::{compile_having, having_matches};
use super::{all_timestamp, bucket_time, dim_json, for_each_result, result_map};
use crate::compare::{NumLit, compare_strings};
use crate::error::QueryError;
use crate::model::{GroupByQuery, SortDirection};
use crate::partial::{AggKind, AggValue, GroupRow, GroupedPartial, KeyValue};

/// Orders dimension values: nulls first; `ordering` on text when given, else numbers numerically
/// and text lexicographically.
pub fn compare_keys(a: &KeyValue, b: &KeyValue, ordering: Option<StringComparator>) -> Ordering {
    match (a, b) {
        (KeyValue::Null, KeyValue::Null) => Ordering::Equal,
        (KeyValue::Null, _) => Ordering::Less,
        (_, KeyValue::Null) => Ordering::Greater,
        _ => match ordering {
            Some(o) => compare_strings(
                o,
                &a.to_text().unwrap_or_default(),
                &b.to_text().unwrap_or_default(),
            ),
            None => match (a, b) {
                (KeyValue::Long(x), KeyValue::Long(y)) => x.cmp(y),
                (KeyValue::Double(x), KeyValue::Double(y)) => {
                    f64::from_bits(*x).total_cmp(&f64::from_bits(*y))
                }
                (KeyValue::Long(x), KeyValue::Double(y)) => {
                    (*x as f64).total_cmp(&f64::from_bits(*y))
                }
                (KeyValue::Double(x), KeyValue::Long(y)) => {
                    f64::from_bits(*x).total_cmp(&(*y as f64))
                }
                _ => a.to_text().cmp(&b.to_text()),
            },
        },
    }
}

/// Default ordering of a dimension by its output type: lexicographic for STRING outputs.
pub(super) fn dim_ordering(output_type: Option<ValueType>) -> Option<StringComparator> {
    match output_type {
        None | Some(ValueType::String) => Some(StringComparator::Lexicographic),
        Some(_) => None,
    }
}

fn compare_json_numbers(a: &Value, b: &Value) -> Ordering {
    match (a.as_f64(), b.as_f64()) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Less,
        (Some(_), None) => Ordering::Greater,
        (Some(x), Some(y)) => x.total_cmp(&y),
    }
}

struct Event {
    bucket: i64,
    key: Vec<KeyValue>,
    aggs: Vec<AggValue>,
    /// The output row; with a limit and no having, only the `limitSpec` columns until the
    /// event is among those returned.
    values: Map<String, Value>,
}

pub fn finalize(q: &GroupByQuery, merged: GroupedPartial) -> Result<Value, QueryError> {
    let having = q.having.as_ref().map(compile_having).transpose()?;
    let kinds: Vec<AggKind> = q.aggregations.iter().map(AggKind::of).collect();
    let sets: Vec<Vec<GroupRow>> = match &q.subtotals_spec {
        None => vec![merged.rows],
        Some(subtotals) => subtotals
            .iter()
            .map(|subset| {
                let keep: Vec<bool> = q
                    .dimensions
                    .iter()
                    .map(|d| subset.contains(&d.output_name))
                    .collect();
                let mut index: HashMap<(i64, Vec<KeyValue>), usize> = HashMap::new();
                let mut rows: Vec<GroupRow> = Vec::new();
                for row in &merged.rows {
                    let key: Vec<KeyValue> = row
                        .key
                        .iter()
                        .zip(&keep)
                        .map(|(k, keep)| if *keep { k.clone() } else { KeyValue::Null })
                        .collect();
                    match index.get(&(row.bucket, key.clone())) {
                        Some(&i) => {
                            for ((kind, into), other) in kinds
                                .iter()
                                .zip(rows[i].aggs.iter_mut())
                                .zip(row.aggs.clone())
                            {
                                kind.combine(into, other);
                            }
                        }
                        None => {
                            index.insert((row.bucket, key.clone()), rows.len());
                            rows.push(GroupRow {
                                bucket: row.bucket,
                                key,
                                aggs: row.aggs.clone(),
                            });
                        }
                    }
                }
                rows
            })
            .collect(),
    };
    let all_ts = all_timestamp(&merged.covered, &q.intervals);
    let mut out = Vec::new();
    for (s, rows) in sets.into_iter().enumerate() {
        let subset = q.subtotals_spec.as_ref().map(|st| &st[s]);
        let output = |key: &[KeyValue], aggs: &[AggValue]| {
            let mut values = Map::new();
            for (d, k) in q.dimensions.iter().zip(key) {
                if subset.is_none_or(|st| st.contains(&d.output_name)) {
                    values.insert(d.output_name.clone(), dim_json(k, d.output_type));
                }
            }
            result_map(&q.aggregations, &q.post_aggregations, aggs, &mut values);
            values
        };
        // With a limit and no having, most groups are only compared: the ordering computes
        // the values it reads, and only the returned groups get their output row.
        let light = having.is_none() && q.limit_spec.as_ref().is_some_and(|l| l.limit.is_some());
        let mut events: Vec<Event> = rows
            .into_iter()
            .map(|row| Event {
                values: if light {
                    Map::new()
                } else {
                    output(&row.key, &row.aggs)
                },
                bucket: row.bucket,
                key: row.key,
                aggs: row.aggs,
            })
            .collect();
        if let Some(h) = &having {
            events.retain(|e| having_matches(h, &e.values));
        }
        sort_events(q, &mut events, light);
        let offset = q.limit_spec.as_ref().and_then(|l| l.offset).unwrap_or(0);
        let limit = q
            .limit_spec
            .as_ref()
            .and_then(|l| l.limit)
            .unwrap_or(usize::MAX);
        for mut e in events.into_iter().skip(offset).take(limit) {
            if light {
                e.values = output(&e.key, &e.aggs);
            }
            let ts = if q.granularity.is_all() {
                all_ts
            } else {
                e.bucket
            };
            out.push(json!({"version": "v1", "timestamp": bucket_time(&q.granularity, ts), "event": e.values}));
        }
    }
    Ok(Value::Array(out))
}

/// Keeps a segment's first `offset + limit` groups when the answer is the first groups by key
/// (a limit, ordered by dimensions only or not at all, no having, no subtotals): the groups
/// the query returns are then among every segment's first ones, with all their rows, since no
/// more than `offset + limit - 1` groups come before one of them anywhere.
pub fn prune_to_limit(q: &GroupByQuery, rows: Vec<GroupRow>) -> Vec<GroupRow> {
    let Some(spec) = &q.limit_spec else {
        return rows;
    };
    let Some(limit) = spec.limit else {
        return rows;
    };
    let wanted = limit.saturating_add(spec.offset.unwrap_or(0));
    let by_keys = spec
        .columns
        .iter()
        .all(|c| q.dimensions.iter().any(|d| d.output_name == c.dimension));
    if !by_keys || q.having.is_some() || q.subtotals_spec.is_some() || rows.len() <= wanted {
        return rows;
    }
    let mut events: Vec<Event> = rows
        .into_iter()
        .map(|r| Event {
            bucket: r.bucket,
            key: r.key,
            aggs: r.aggs,
            values: Map::new(),
        })
        .collect();
    sort_events(q, &mut events, false);
    events
        .into_iter()
        .map(|e| GroupRow {
            bucket: e.bucket,
            key: e.key,
            aggs: e.aggs,
        })
        .collect()
}

/// One event's value for one `limitSpec` column, read once before sorting.
enum SortVal<'e> {
    /// A grouping dimension: its key, and its number when the column orders numerically.
    Dim {
        key: &'e KeyValue,
        num: Option<f64>,
        ordering: Option<StringComparator>,
    },
    /// An aggregator or post-aggregator output.
    Value(&'e Value, Option<StringComparator>),
}

fn compare_sort_vals(x: &SortVal<'_>, y: &SortVal<'_>) -> Ordering {
    match (x, y) {
        (
            SortVal::Dim {
                key: a,
                num: na,
                ordering,
            },
            SortVal::Dim {
                key: b, num: nb, ..
            },
        ) => match (ordering, na, nb) {
            (Some(StringComparator::Numeric) | None, Some(p), Some(q)) => p.total_cmp(q),
            _ => compare_keys(a, b, *ordering),
        },
        (SortVal::Value(a, order), SortVal::Value(b, _)) => match (a, b) {
            (Value::String(p), Value::String(q)) => {
                compare_strings(order.unwrap_or_default(), p, q)
            }
            _ => compare_json_numbers(a, b),
        },
        _ => Ordering::Equal,
    }
}

/// Orders events by bucket, the `limitSpec` columns, then every dimension (a total order:
/// no two events share a bucket and key). With a limit only the first `offset + limit` are
/// kept: they are selected first, then ordered. `light` events have no output row yet: the
/// aggregate values the ordering reads are computed here.
fn sort_events(q: &GroupByQuery, events: &mut Vec<Event>, light: bool) {
    let columns = q
        .limit_spec
        .as_ref()
        .map(|l| l.columns.as_slice())
        .unwrap_or(&[]);
    let wanted = q.limit_spec.as_ref().and_then(|l| l.limit).map(|limit| {
        limit.saturating_add(q.limit_spec.as_ref().and_then(|l| l.offset).unwrap_or(0))
    });
    let dim_index: HashMap<&str, usize> = q
        .dimensions
        .iter()
        .enumerate()
        .map(|(i, d)| (d.output_name.as_str(), i))
        .collect();
    let dim_orderings: Vec<Option<StringComparator>> = q
        .dimensions
        .iter()
        .map(|d| dim_ordering(d.output_type))
        .collect();
    let mut order: Vec<usize> = (0..events.len()).collect();
    let width = columns.len();
    // Aggregate outputs the ordering reads, `width` per event (light events only).
    let mut computed: Vec<Value> = Vec::new();
    if light && width > 0 {
        computed.resize(events.len() * width, Value::Null);
        for (e, slots) in events.iter().zip(computed.chunks_mut(width)) {
            let wanted = |name: &str| columns.iter().any(|c| c.dimension == name);
            for_each_result(
                &q.aggregations,
                &q.post_aggregations,
                &e.aggs,
                wanted,
                |name, v| {
                    for (c, slot) in columns.iter().zip(slots.iter_mut()) {
                        if c.dimension == name {
                            *slot = v.clone();
                        }
                    }
                },
            );
        }
    }
    {
        let mut keys: Vec<SortVal<'_>> = Vec::with_capacity(events.len() * width);
        for (i, e) in events.iter().enumerate() {
            for (k, c) in columns.iter().enumerate() {
                keys.push(match dim_index.get(c.dimension.as_str()) {
                    Some(&d) => {
                        let ordering = c.dimension_order.or(dim_orderings[d]);
                        let key = &e.key[d];
                        let num = match (ordering, key) {
                            (Some(StringComparator::Numeric) | None, KeyValue::Long(v)) => {
                                Some(*v as f64)
                            }
                            (Some(StringComparator::Numeric) | None, _) => key
                                .to_text()
                                .and_then(|t| NumLit::parse(&t))
                                .map(|n| n.as_f64()),
                            _ => None,
                        };
                        SortVal::Dim { key, num, ordering }
                    }
                    None if light => SortVal::Value(&computed[i * width + k], c.dimension_order),
                    None => SortVal::Value(
                        e.values.get(&c.dimension).unwrap_or(&Value::Null),
                        c.dimension_order,
                    ),
                });
            }
        }
        let cmp = |&i: &usize, &j: &usize| -> Ordering {
            let (a, b) = (&events[i], &events[j]);
            let mut ord = a.bucket.cmp(&b.bucket);
            let (ki, kj) = (&keys[i * width..][..width], &keys[j * width..][..width]);
            for (c, (x, y)) in columns.iter().zip(ki.iter().zip(kj)) {
                if ord != Ordering::Equal {
                    break;
                }
                let o = compare_sort_vals(x, y);
                ord = if c.direction == SortDirection::Descending {
                    o.reverse()
                } else {
                    o
                };
            }
            if ord != Ordering::Equal {
                return ord;
            }
            for (d, ordering) in dim_orderings.iter().enumerate() {
                let o = compare_keys(&a.key[d], &b.key[d], *ordering);
                if o != Ordering::Equal {
                    return o;
                }
            }
            Ordering::Equal
        };
        // A cheap first cut on the bucket and the first column's number (when every event has
        // one): the n-th best by that number is found over a compact array, and only events
        // not behind it stay. Numbers convert monotonically, so every event the exact order
        // could return stays (ties included), and the full order decides among them.
        let cut: Option<Vec<(i64, f64)>> = (width > 0)
            .then(|| {
                let descending = columns[0].direction == SortDirection::Descending;
                events
                    .iter()
                    .enumerate()
                    .map(|(i, e)| {
                        let v = match &keys[i * width] {
                            SortVal::Value(v, _) => v.as_f64(),
                            SortVal::Dim {
                                num,
                                ordering: Some(StringComparator::Numeric) | None,
                                ..
                            } => *num,
                            SortVal::Dim { .. } => None,
                        }?;
                        Some((e.bucket, if descending { -v } else { v }))
                    })
                    .collect()
            })
            .flatten();
        match wanted {
            Some(n) if n < order.len() => {
                if n > 0 {
                    if let Some(cut) = &cut {
                        let by_cut = |i: &usize, j: &usize| {
                            let (a, b) = (cut[*i], cut[*j]);
                            a.0.cmp(&b.0).then(a.1.total_cmp(&b.1))
                        };
                        order.select_nth_unstable_by(n - 1, by_cut);
                        let pivot = order[n - 1];
                        order.retain(|i| by_cut(i, &pivot) != Ordering::Greater);
                    }
                    order.select_nth_unstable_by(n - 1, cmp);
                }
                order.truncate(n);
                order.sort_unstable_by(cmp);
            }
            _ => order.sort_unstable_by(cmp),
        }
    }
    let mut slots: Vec<Option<Event>> = std::mem::take(events).into_iter().map(Some).collect();
    *events = order.into_iter().filter_map(|i| slots[i].take()).collect();
}
