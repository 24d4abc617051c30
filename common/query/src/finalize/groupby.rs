//! groupBy results: events with finalized aggregates, `having`, `limitSpec` ordering with offset
//! and limit, and `subtotalsSpec` result sets.

use std::cmp::Ordering;

use rayon::prelude::*;
use serde_json::{Map, Value, json};

use eddy_types::spec::StringComparator;
use eddy_types::spec::dimension::ValueType;

use super::having::{compile_having, having_matches};
use super::{all_timestamp, bucket_time, dim_json, for_each_result, result_map};
use crate::compare::{NumLit, compare_strings};
use crate::error::QueryError;
use crate::model::{GroupByQuery, SortDirection};
use crate::partial::{AggKind, AggValue, GroupSet, GroupedPartial, Key, KeyValue};

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

pub fn finalize(q: &GroupByQuery, merged: GroupedPartial) -> Result<Value, QueryError> {
    let having = q.having.as_ref().map(compile_having).transpose()?;
    let kinds: Vec<AggKind> = q.aggregations.iter().map(AggKind::of).collect();
    let sets: Vec<GroupSet> = match &q.subtotals_spec {
        None => vec![merged.groups],
        Some(subtotals) => subtotals
            .iter()
            .map(|subset| {
                let keep: Vec<bool> = q
                    .dimensions
                    .iter()
                    .map(|d| subset.contains(&d.output_name))
                    .collect();
                merged.groups.masked(&keep, &kinds)
            })
            .collect(),
    };
    let all_ts = all_timestamp(&merged.covered, &q.intervals);
    let offset = q.limit_spec.as_ref().and_then(|l| l.offset).unwrap_or(0);
    let limit = q
        .limit_spec
        .as_ref()
        .and_then(|l| l.limit)
        .unwrap_or(usize::MAX);
    let mut out = Vec::new();
    let mut states: Vec<AggValue> = Vec::new();
    for (s, set) in sets.into_iter().enumerate() {
        let subset = q.subtotals_spec.as_ref().map(|st| &st[s]);
        let mut output = |g: usize| {
            let mut values = Map::new();
            for (d, k) in q.dimensions.iter().zip(set.key(g)) {
                if subset.is_none_or(|st| st.contains(&d.output_name)) {
                    values.insert(
                        d.output_name.clone(),
                        dim_json(&set.key_value(*k), d.output_type),
                    );
                }
            }
            set.states_into(g, &mut states);
            result_map(&q.aggregations, &q.post_aggregations, &states, &mut values);
            values
        };
        let mut groups: Vec<usize> = (0..set.len()).collect();
        if let Some(h) = &having {
            groups.retain(|&g| having_matches(h, &output(g)));
        }
        // Only the returned groups get an output row; the ordering computes what it reads.
        let order = order_groups(q, &set, groups);
        for g in order.into_iter().skip(offset).take(limit) {
            let ts = if q.granularity.is_all() {
                all_ts
            } else {
                set.bucket(g)
            };
            out.push(json!({"version": "v1", "timestamp": bucket_time(&q.granularity, ts), "event": output(g)}));
        }
    }
    Ok(Value::Array(out))
}

/// Keeps a segment's first `offset + limit` groups when the answer is the first groups by key
/// (a limit, ordered by dimensions only or not at all, no having, no subtotals): the groups
/// the query returns are then among every segment's first ones, with all their rows, since no
/// more than `offset + limit - 1` groups come before one of them anywhere.
pub fn prune_to_limit(q: &GroupByQuery, groups: GroupSet) -> GroupSet {
    let Some(spec) = &q.limit_spec else {
        return groups;
    };
    let Some(limit) = spec.limit else {
        return groups;
    };
    let wanted = limit.saturating_add(spec.offset.unwrap_or(0));
    let by_keys = spec
        .columns
        .iter()
        .all(|c| q.dimensions.iter().any(|d| d.output_name == c.dimension));
    if !by_keys || q.having.is_some() || q.subtotals_spec.is_some() || groups.len() <= wanted {
        return groups;
    }
    let order = order_groups(q, &groups, (0..groups.len()).collect());
    groups.select(&order)
}

/// What one `limitSpec` column orders by.
enum Column {
    /// A grouping dimension (its index in the key) under a string ordering, or numerically.
    Dim(usize, Option<StringComparator>),
    /// An aggregator or post-aggregator output.
    Value(Option<StringComparator>),
}

/// One group's value for one `limitSpec` column, computed once before ordering.
enum Cell {
    /// A dimension's number, when its column orders numerically and the value is one.
    Dim(Option<f64>),
    Num(Option<f64>),
    Text(String),
}

impl Cell {
    fn number(&self) -> Option<f64> {
        match self {
            Cell::Dim(n) | Cell::Num(n) => *n,
            Cell::Text(_) => None,
        }
    }
}

fn compare_cells(
    set: &GroupSet,
    column: &Column,
    (ga, a): (usize, &Cell),
    (gb, b): (usize, &Cell),
) -> Ordering {
    match column {
        Column::Dim(d, ordering) => match (ordering, a.number(), b.number()) {
            (Some(StringComparator::Numeric) | None, Some(p), Some(q)) => p.total_cmp(&q),
            _ => compare_parts(set, set.key(ga)[*d], set.key(gb)[*d], *ordering),
        },
        Column::Value(order) => match (a, b) {
            (Cell::Text(p), Cell::Text(q)) => compare_strings(order.unwrap_or_default(), p, q),
            // A null (a string aggregator over no values) orders before every string.
            (Cell::Text(_), _) => Ordering::Greater,
            (_, Cell::Text(_)) => Ordering::Less,
            _ => match (a.number(), b.number()) {
                (None, None) => Ordering::Equal,
                (None, Some(_)) => Ordering::Less,
                (Some(_), None) => Ordering::Greater,
                (Some(x), Some(y)) => x.total_cmp(&y),
            },
        },
    }
}

/// [`compare_keys`] on key cells, without making values for strings and numbers.
fn compare_parts(set: &GroupSet, a: Key, b: Key, ordering: Option<StringComparator>) -> Ordering {
    match (a, b, ordering) {
        (Key::Null, Key::Null, _) => Ordering::Equal,
        (Key::Null, _, _) => Ordering::Less,
        (_, Key::Null, _) => Ordering::Greater,
        (Key::Str(x), Key::Str(y), Some(o)) => compare_strings(o, set.text(x), set.text(y)),
        (Key::Long(x), Key::Long(y), None | Some(StringComparator::Numeric)) => x.cmp(&y),
        _ => compare_keys(&set.key_value(a), &set.key_value(b), ordering),
    }
}

/// When a limit orders first by an aggregator's number (`ORDER BY COUNT(*) DESC LIMIT 10`), the
/// groups not behind the `wanted`-th best by the bucket and that number, read straight from the
/// states (ties included, so the full order below still decides among them). Millions of groups
/// then never have their result columns computed. `None` for other orders (nothing cut).
fn cut_by_aggregate(
    q: &GroupByQuery,
    set: &GroupSet,
    groups: &[usize],
    wanted: Option<usize>,
) -> Option<Vec<usize>> {
    let first = q.limit_spec.as_ref()?.columns.first()?;
    let n = wanted.filter(|n| *n > 0 && *n < groups.len())?;
    let (a, kind) = plain_aggregator(q, &first.dimension)?;
    let descending = first.direction == SortDirection::Descending;
    let cut: Vec<(i64, f64)> = groups
        .iter()
        .map(|&g| {
            let v = state_number(kind, &set.state(g, a))??;
            Some((set.bucket(g), if descending { -v } else { v }))
        })
        .collect::<Option<_>>()?;
    Some(not_behind(&cut, n).into_iter().map(|i| groups[i]).collect())
}

/// Positions (in order) of the `cut` entries not behind the `n`-th smallest by bucket, then
/// number: the n best and every entry tied with the n-th.
fn not_behind(cut: &[(i64, f64)], n: usize) -> Vec<usize> {
    let by_cut = |i: &usize, j: &usize| {
        let (x, y) = (cut[*i], cut[*j]);
        x.0.cmp(&y.0).then(x.1.total_cmp(&y.1))
    };
    let pivot = first_n(0..cut.len(), n, by_cut)[n - 1];
    (0..cut.len())
        .filter(|i| by_cut(i, &pivot) != Ordering::Greater)
        .collect()
}

/// The number a numeric aggregator's state orders by, as its result column would give it:
/// `Some(None)` for a null (or a double JSON cannot hold), `None` when the state is not a plain
/// long or double (sketches, first/last, text, floats rounded for output).
fn state_number(kind: AggKind, v: &AggValue) -> Option<Option<f64>> {
    match (kind, v) {
        (_, AggValue::Long(x)) => Some(x.map(|x| x as f64)),
        (AggKind::FloatSum | AggKind::FloatMin | AggKind::FloatMax, _) => None,
        (_, AggValue::Double(x)) => Some(x.filter(|x| x.is_finite())),
        _ => None,
    }
}

/// The index and kind of the aggregator whose result is the output column `name`, unless a
/// post-aggregator or dimension of that name replaces it.
fn plain_aggregator(q: &GroupByQuery, name: &str) -> Option<(usize, AggKind)> {
    let shadowed = q.post_aggregations.iter().any(|p| p.name() == name)
        || q.dimensions.iter().any(|d| d.output_name == name);
    let a = q.aggregations.iter().position(|a| a.name() == name)?;
    (!shadowed).then(|| (a, AggKind::of(&q.aggregations[a])))
}

/// Groups per piece of an ordering split over the query threads.
const ORDER_PIECE: usize = 1 << 16;

/// The groups in `limitSpec` order, only the first `offset + limit` when there is a limit.
/// Many groups with a small limit are ordered in pieces in parallel first: each piece keeps
/// its own first `offset + limit`, which hold every group the whole order could return, and
/// the kept groups of all pieces are then ordered together.
fn order_groups(q: &GroupByQuery, set: &GroupSet, groups: Vec<usize>) -> Vec<usize> {
    let threads = rayon::current_num_threads();
    match wanted(q) {
        Some(n) if threads > 1 && n < ORDER_PIECE / 4 && groups.len() >= 2 * ORDER_PIECE => {
            let piece = groups.len().div_ceil(threads * 4).max(ORDER_PIECE);
            let kept: Vec<usize> = groups
                .par_chunks(piece)
                .flat_map_iter(|part| order_all(q, set, part.to_vec()))
                .collect();
            order_all(q, set, kept)
        }
        _ => order_all(q, set, groups),
    }
}

/// How many groups the ordering must give: `offset + limit`, if there is a limit.
fn wanted(q: &GroupByQuery) -> Option<usize> {
    let spec = q.limit_spec.as_ref()?;
    let offset = spec.offset.unwrap_or(0);
    spec.limit.map(|limit| limit.saturating_add(offset))
}

/// The groups in answer order: by bucket, the `limitSpec` columns, then every dimension (a
/// total order: no two groups share a bucket and key). With a limit only the first
/// `offset + limit` are returned: they are selected first, then ordered.
fn order_all(q: &GroupByQuery, set: &GroupSet, groups: Vec<usize>) -> Vec<usize> {
    let spec = q.limit_spec.as_ref();
    let columns = spec.map(|l| l.columns.as_slice()).unwrap_or(&[]);
    let wanted = wanted(q);
    let (groups, cut) = match cut_by_aggregate(q, set, &groups, wanted) {
        Some(kept) => (kept, true),
        None => (groups, false),
    };
    let dim_orderings: Vec<Option<StringComparator>> = q
        .dimensions
        .iter()
        .map(|d| dim_ordering(d.output_type))
        .collect();
    let plan: Vec<Column> = columns
        .iter()
        .map(|c| {
            match q
                .dimensions
                .iter()
                .position(|d| d.output_name == c.dimension)
            {
                Some(d) => Column::Dim(d, c.dimension_order.or(dim_orderings[d])),
                None => Column::Value(c.dimension_order),
            }
        })
        .collect();
    let width = plan.len();
    // Value columns read straight from an aggregator's state where that gives the column's number.
    let direct: Vec<Option<(usize, AggKind)>> = plan
        .iter()
        .zip(columns)
        .map(|(p, c)| match p {
            Column::Value(_) => plain_aggregator(q, &c.dimension),
            Column::Dim(..) => None,
        })
        .collect();
    let mut states: Vec<AggValue> = Vec::new();
    let mut cells_of = |g: usize, out: &mut Vec<Cell>| {
        let start = out.len();
        out.extend(plan.iter().map(|c| {
            match c {
                Column::Dim(d, ordering) => Cell::Dim(match (ordering, set.key(g)[*d]) {
                    (Some(StringComparator::Numeric) | None, Key::Long(v)) => Some(v as f64),
                    (Some(StringComparator::Numeric) | None, k) => set
                        .key_value(k)
                        .to_text()
                        .and_then(|t| NumLit::parse(&t))
                        .map(|n| n.as_f64()),
                    _ => None,
                }),
                Column::Value(_) => Cell::Num(None),
            }
        }));
        let mut rest = false;
        for (slot, (c, d)) in out[start..].iter_mut().zip(plan.iter().zip(&direct)) {
            if let Column::Value(_) = c {
                match d.and_then(|(a, kind)| state_number(kind, &set.state(g, a))) {
                    Some(v) => *slot = Cell::Num(v),
                    None => rest = true,
                }
            }
        }
        if rest {
            set.states_into(g, &mut states);
            let wanted = |name: &str| columns.iter().any(|c| c.dimension == name);
            for_each_result(
                &q.aggregations,
                &q.post_aggregations,
                &states,
                wanted,
                |name, v| {
                    for (c, slot) in columns.iter().zip(&mut out[start..]) {
                        if c.dimension == name {
                            *slot = match &v {
                                Value::String(s) => Cell::Text(s.clone()),
                                v => Cell::Num(v.as_f64()),
                            };
                        }
                    }
                },
            );
        }
    };
    let mut cells: Vec<Cell> = Vec::with_capacity(groups.len() * width);
    for &g in &groups {
        cells_of(g, &mut cells);
    }
    // Positions into `groups` (and rows of `cells`).
    let mut order: Vec<usize> = (0..groups.len()).collect();
    if let Some(n) = wanted
        && n > 0
        && n < order.len()
        && width > 0
        && !cut
    {
        // A cheap first cut on the bucket and the first column's number (when every group has
        // one): the n-th best by that number is found over a compact array, and only groups
        // not behind it stay. Numbers convert monotonically, so every group the exact order
        // could return stays (ties included), and the full order decides among them.
        let descending = columns[0].direction == SortDirection::Descending;
        let cut: Option<Vec<(i64, f64)>> = groups
            .iter()
            .zip(cells.chunks(width))
            .map(|(&g, c)| {
                let v = c[0].number()?;
                Some((set.bucket(g), if descending { -v } else { v }))
            })
            .collect();
        if let Some(cut) = cut {
            order = not_behind(&cut, n);
        }
    }
    let cmp = |&i: &usize, &j: &usize| -> Ordering {
        let (ga, gb) = (groups[i], groups[j]);
        let mut ord = set.bucket(ga).cmp(&set.bucket(gb));
        let (ci, cj) = (&cells[i * width..][..width], &cells[j * width..][..width]);
        for ((c, column), (x, y)) in columns.iter().zip(&plan).zip(ci.iter().zip(cj)) {
            if ord != Ordering::Equal {
                break;
            }
            let o = compare_cells(set, column, (ga, x), (gb, y));
            ord = if c.direction == SortDirection::Descending {
                o.reverse()
            } else {
                o
            };
        }
        if ord != Ordering::Equal {
            return ord;
        }
        let (ka, kb) = (set.key(ga), set.key(gb));
        for (d, ordering) in dim_orderings.iter().enumerate() {
            let o = compare_parts(set, ka[d], kb[d], *ordering);
            if o != Ordering::Equal {
                return o;
            }
        }
        Ordering::Equal
    };
    match wanted {
        Some(n) if n < order.len() => order = first_n(order, n, cmp),
        _ => order.sort_unstable_by(cmp),
    }
    order.into_iter().map(|i| groups[i]).collect()
}

/// The first `n` of `items` by `cmp`, in order (of items that tie, any may be kept). Items
/// are read front to back against the n-th best kept so far, so most cost one comparison; a
/// selection over all of them would compare each several times, in an order that misses the
/// caches.
fn first_n<T: Copy>(
    items: impl IntoIterator<Item = T>,
    n: usize,
    cmp: impl Fn(&T, &T) -> Ordering,
) -> Vec<T> {
    if n == 0 {
        return Vec::new();
    }
    let mut kept: Vec<T> = Vec::with_capacity(2 * n);
    let mut bound: Option<T> = None;
    for item in items {
        if let Some(b) = &bound
            && cmp(&item, b) != Ordering::Less
        {
            continue;
        }
        kept.push(item);
        if kept.len() == 2 * n {
            kept.select_nth_unstable_by(n - 1, &cmp);
            kept.truncate(n);
            bound = Some(kept[n - 1]);
        }
    }
    kept.sort_unstable_by(&cmp);
    kept.truncate(n);
    kept
}

#[cfg(test)]
mod tests;
