//! search: dimension values that match a search spec, with the number of selected rows holding
//! each, per time bucket.

use roaring::RoaringBitmap;

use eddy_segment::codec::numeric::NumKind;
use eddy_segment::{BLOCK_ROWS, ColumnRef, SegmentReader};
use eddy_types::TIME_COLUMN;

use super::select::{ExecContext, Selection};
use crate::error::QueryError;
use crate::filter::{all_rows, leaf::search_predicate};
use crate::model::SearchQuery;
use crate::partial::SearchPartial;

pub fn search_segment(
    q: &SearchQuery,
    segment: &dyn SegmentReader,
    selection: &Selection,
    ctx: &ExecContext<'_>,
) -> Result<SearchPartial, QueryError> {
    let matches = search_predicate(&q.query)?;
    let dims: Vec<String> = match &q.search_dimensions {
        Some(d) if !d.is_empty() => d.iter().map(|d| d.dimension.clone()).collect(),
        _ => segment
            .schema()
            .dimensions()
            .map(|c| c.name.clone())
            .collect(),
    };
    let rows = selection
        .rows
        .clone()
        .unwrap_or_else(|| all_rows(segment.num_rows()));
    let mut out = SearchPartial::default();
    let bucketed = !q.granularity.is_all();
    let mut times = vec![0i64; BLOCK_ROWS];
    let mut bucketer = q.granularity.bucketer();
    let bucket_rows = |rows: &RoaringBitmap,
                       times: &mut Vec<i64>,
                       bucketer: &mut eddy_types::granularity::Bucketer|
     -> Result<Vec<(i64, u64)>, QueryError> {
        if !bucketed {
            return Ok(vec![(eddy_types::time::MIN_INSTANT, rows.len())]);
        }
        let mut counts: std::collections::BTreeMap<i64, u64> = Default::default();
        let mut current = usize::MAX;
        for r in rows.iter() {
            let b = r as usize / BLOCK_ROWS;
            if b != current {
                segment.time().read_i64(b, times)?;
                current = b;
            }
            *counts
                .entry(bucketer.bucket_start(times[r as usize % BLOCK_ROWS]))
                .or_default() += 1;
        }
        Ok(counts.into_iter().collect())
    };
    for dim in dims {
        ctx.check()?;
        if dim == TIME_COLUMN {
            continue;
        }
        match segment.column(&dim) {
            Some(ColumnRef::String(col)) => {
                let mut ids = Vec::new();
                col.for_each_value(&mut |id, v| {
                    if matches(v) {
                        ids.push((id, v.to_string()));
                    }
                })?;
                if !col.has_bitmaps() {
                    // No index: one pass over the selected rows' ids.
                    let mut slot = vec![usize::MAX; col.cardinality() as usize];
                    for (i, (id, _)) in ids.iter().enumerate() {
                        slot[*id as usize] = i;
                    }
                    let (mut offsets, mut block_ids) = (Vec::new(), Vec::new());
                    let mut current = usize::MAX;
                    for r in rows.iter() {
                        let b = r as usize / BLOCK_ROWS;
                        if b != current {
                            col.read_multi_ids(b, &mut offsets, &mut block_ids)?;
                            if bucketed {
                                segment.time().read_i64(b, &mut times)?;
                            }
                            current = b;
                        }
                        let off = r as usize % BLOCK_ROWS;
                        let row = &block_ids[offsets[off] as usize..offsets[off + 1] as usize];
                        for (j, id) in row.iter().enumerate() {
                            // A value repeated within a row counts the row once.
                            if row[..j].contains(id) {
                                continue;
                            }
                            if let Some((_, value)) = ids.get(slot[*id as usize]) {
                                let bucket = if bucketed {
                                    bucketer.bucket_start(times[off])
                                } else {
                                    eddy_types::time::MIN_INSTANT
                                };
                                *out.counts
                                    .entry((bucket, dim.clone(), value.clone()))
                                    .or_default() += 1;
                            }
                        }
                    }
                    continue;
                }
                for (id, value) in ids {
                    let hits = col.bitmap(id)?.into_owned() & &rows;
                    if hits.is_empty() {
                        continue;
                    }
                    for (bucket, count) in bucket_rows(&hits, &mut times, &mut bucketer)? {
                        *out.counts
                            .entry((bucket, dim.clone(), value.clone()))
                            .or_default() += count;
                    }
                }
            }
            Some(ColumnRef::Numeric(col)) => {
                let mut longs = vec![0i64; BLOCK_ROWS];
                let mut doubles = vec![0f64; BLOCK_ROWS];
                let mut current = usize::MAX;
                for r in rows.iter() {
                    if col.nulls().is_some_and(|n| n.contains(r)) {
                        continue;
                    }
                    let b = r as usize / BLOCK_ROWS;
                    if b != current {
                        col.read_i64(b, &mut longs)?;
                        col.read_f64(b, &mut doubles)?;
                        if bucketed {
                            segment.time().read_i64(b, &mut times)?;
                        }
                        current = b;
                    }
                    let off = r as usize % BLOCK_ROWS;
                    let text = if col.kind() == NumKind::Long {
                        longs[off].to_string()
                    } else {
                        eddy_segment::hll::format_double(doubles[off])
                    };
                    if matches(&text) {
                        let bucket = if bucketed {
                            bucketer.bucket_start(times[off])
                        } else {
                            eddy_types::time::MIN_INSTANT
                        };
                        *out.counts.entry((bucket, dim.clone(), text)).or_default() += 1;
                    }
                }
            }
            _ => {}
        }
    }
    Ok(out)
}
