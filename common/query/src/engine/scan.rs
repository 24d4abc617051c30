//! scan: selected rows of one segment as values, in row order, time order or the order of
//! other columns, at most `offset + limit` of them (the merge applies offset and limit across
//! segments).

use std::collections::BinaryHeap;

use serde_json::Value;

use eddy_segment::codec::numeric::NumKind;
use eddy_segment::{BLOCK_ROWS, ColumnRef, NumericColumn, SegmentReader, StringColumn};
use eddy_types::TIME_COLUMN;

use super::select::{ExecContext, Selection};
use crate::compare::compare_scan_keys;
use crate::error::QueryError;
use crate::finalize::{json_f32, json_f64};
use crate::model::{ScanOrder, ScanOrderBy, ScanQuery};
use crate::partial::ScanBatch;

/// Column names a scan returns for this segment.
pub fn scan_columns(q: &ScanQuery, segment: &dyn SegmentReader) -> Vec<String> {
    if !q.columns.is_empty() {
        return q.columns.clone();
    }
    std::iter::once(TIME_COLUMN.to_string())
        .chain(segment.schema().columns.iter().map(|c| c.name.clone()))
        .collect()
}

pub fn scan_segment(
    q: &ScanQuery,
    segment: &dyn SegmentReader,
    selection: &Selection,
    ctx: &ExecContext<'_>,
) -> Result<Vec<ScanBatch>, QueryError> {
    let need = q.limit.map(|l| l.saturating_add(q.offset.unwrap_or(0)));
    let mut rows: Vec<u32> = Vec::new();
    let mut times_all: Vec<i64> = Vec::new();
    let mut keys = Vec::new();
    let ordered = q.order != ScanOrder::None;
    let by_columns = !q.order_by.is_empty();
    let read_all =
        ordered && !segment.time_sorted() || q.order == ScanOrder::Descending || by_columns;
    let best_blocks = match need {
        Some(n) if by_columns && n > 0 => first_blocks(q, segment, selection, n, ctx)?,
        _ => None,
    };
    if let Some(best) = best_blocks {
        rows = best;
    } else {
        selection.for_each_block(ctx, &mut |b, len, offsets| {
            if !read_all && need.is_some_and(|n| rows.len() >= n) {
                return Ok(());
            }
            let start = (b * BLOCK_ROWS) as u32;
            match offsets {
                None => rows.extend(start..start + len as u32),
                Some(o) => rows.extend(o.iter().map(|r| start + r)),
            }
            Ok(())
        })?;
    }
    if ordered {
        let mut times = vec![0i64; BLOCK_ROWS];
        let mut current = usize::MAX;
        times_all.reserve(rows.len());
        for r in &rows {
            let b = *r as usize / BLOCK_ROWS;
            if b != current {
                segment.time().read_i64(b, &mut times)?;
                current = b;
            }
            times_all.push(times[*r as usize % BLOCK_ROWS]);
        }
        let mut order: Vec<usize> = (0..rows.len()).collect();
        order.sort_by_key(|i| times_all[*i]);
        if q.order == ScanOrder::Descending {
            order.reverse();
        }
        if let Some(n) = need {
            order.truncate(n);
        }
        rows = order.iter().map(|i| rows[*i]).collect();
        times_all = order.iter().map(|i| times_all[*i]).collect();
    } else if by_columns {
        (rows, keys) = first_by_columns(q, segment, rows, need, ctx)?;
    } else if let Some(n) = need {
        rows.truncate(n);
    }

    let columns = scan_columns(q, segment);
    let values = fetch(segment, &rows, &columns, ctx)?;
    if !ordered {
        times_all = values.iter().map(|_| 0).collect();
    }
    let batch_size = q.batch_size.unwrap_or(20_480).max(1);
    let mut out = Vec::new();
    let mut values = values.into_iter();
    let mut times = times_all.into_iter();
    let mut keys = keys.into_iter();
    loop {
        let chunk: Vec<Vec<Value>> = values.by_ref().take(batch_size).collect();
        if chunk.is_empty() {
            break;
        }
        let t: Vec<i64> = times.by_ref().take(chunk.len()).collect();
        out.push(ScanBatch {
            segment_id: segment.segment_id().to_string(),
            columns: columns.clone(),
            keys: keys
                .by_ref()
                .take(if by_columns { chunk.len() } else { 0 })
                .collect(),
            rows: chunk,
            times: t,
        });
    }
    Ok(out)
}

/// The first `need` of `rows` (all when unlimited) in `orderBy` order, with their order
/// values.
fn first_by_columns(
    q: &ScanQuery,
    segment: &dyn SegmentReader,
    rows: Vec<u32>,
    need: Option<usize>,
    ctx: &ExecContext<'_>,
) -> Result<(Vec<u32>, Vec<Vec<Value>>), QueryError> {
    let names: Vec<String> = q.order_by.iter().map(|o| o.column_name.clone()).collect();
    let rows = match need {
        Some(n) if n > 0 && n < rows.len() => prune_blocks(q, segment, rows, n)?,
        _ => rows,
    };
    let keys = fetch(segment, &rows, &names, ctx)?;
    let mut order: Vec<usize> = (0..rows.len()).collect();
    let cmp = |a: &usize, b: &usize| compare_scan_keys(&keys[*a], &keys[*b], &q.order_by);
    if let Some(n) = need
        && n < order.len()
    {
        if n == 0 {
            return Ok((Vec::new(), Vec::new()));
        }
        order.select_nth_unstable_by(n - 1, cmp);
        order.truncate(n);
    }
    order.sort_by(cmp);
    let picked = order.iter().map(|i| rows[*i]).collect();
    let mut keys: Vec<Option<Vec<Value>>> = keys.into_iter().map(Some).collect();
    let keys = order.iter().filter_map(|i| keys[*i].take()).collect();
    Ok((picked, keys))
}

/// Drops rows that cannot be among the first `need` when the first `orderBy` column is a sorted
/// string column ([`first_by_ids`]). (When it is a long without nulls, [`first_blocks`] already
/// listed only the blocks that can hold them.)
fn prune_blocks(
    q: &ScanQuery,
    segment: &dyn SegmentReader,
    rows: Vec<u32>,
    need: usize,
) -> Result<Vec<u32>, QueryError> {
    let first = &q.order_by[0];
    if first.column_name != TIME_COLUMN
        && let Some(ColumnRef::String(c)) = segment.column(&first.column_name)
        && c.is_sorted()
        && !c.is_multi_value()
    {
        return first_by_ids(first, c, rows, need);
    }
    Ok(rows)
}

/// The selected rows that can be among the first `need` when the first `orderBy` column is a
/// long without nulls, listed block by block from the selection, skipping the rest: blocks are
/// visited from the one with the best minimum (or maximum, descending), and the visit stops at
/// the first block whose range lies wholly behind the `need`-th best value seen. Ties with that
/// value are kept, so the later columns still decide among them. Rows come back grouped by
/// block; None when the column does not allow this.
fn first_blocks(
    q: &ScanQuery,
    segment: &dyn SegmentReader,
    selection: &Selection,
    need: usize,
    ctx: &ExecContext<'_>,
) -> Result<Option<Vec<u32>>, QueryError> {
    let Some(col) = long_order_column(q, segment) else {
        return Ok(None);
    };
    // Blocks holding selected rows, with the column's range over each.
    let mut blocks: Vec<(usize, i64, i64)> = Vec::new();
    for block in 0..selection.num_rows.div_ceil(BLOCK_ROWS) {
        if selection.count_in_block(block) == 0 {
            continue;
        }
        let Some((lo, hi)) = col.block_range_i64(block) else {
            return Ok(None);
        };
        blocks.push((block, lo, hi));
    }
    let descending = q.order_by[0].order == ScanOrder::Descending;
    if descending {
        blocks.sort_unstable_by_key(|x| std::cmp::Reverse(x.2));
    } else {
        blocks.sort_unstable_by_key(|x| x.1);
    }
    // The `need` best values so far, the worst of them on top (ascending: a max-heap).
    let mut best: BinaryHeap<i128> = BinaryHeap::with_capacity(need + 1);
    let mut kept: Vec<u32> = Vec::new();
    let mut values = vec![0i64; BLOCK_ROWS];
    for (block, lo, hi) in blocks {
        if best.len() == need {
            let worst = best.peek().copied().unwrap_or_default();
            // Keys are negated when descending, so the heap always drops the worst.
            if descending && i128::from(hi) < -worst || !descending && i128::from(lo) > worst {
                break;
            }
        }
        ctx.check()?;
        col.read_i64(block, &mut values)?;
        let from = kept.len();
        selection.rows_in_block(block, &mut kept);
        for r in &kept[from..] {
            let v = i128::from(values[*r as usize % BLOCK_ROWS]);
            best.push(if descending { -v } else { v });
            if best.len() > need {
                best.pop();
            }
        }
    }
    Ok(Some(kept))
}

/// The first `orderBy` column when it is a long (or `__time`) without nulls, whose block
/// ranges bound its values.
fn long_order_column<'s>(
    q: &ScanQuery,
    segment: &'s dyn SegmentReader,
) -> Option<&'s dyn NumericColumn> {
    let name = &q.order_by.first()?.column_name;
    let col: &dyn NumericColumn = if name == TIME_COLUMN {
        segment.time()
    } else {
        match segment.column(name)? {
            ColumnRef::Numeric(c) => c,
            _ => return None,
        }
    };
    (col.kind() == NumKind::Long && col.nulls().is_none_or(|n| n.is_empty())).then_some(col)
}

/// The rows that can be among the first `need` when the first `orderBy` column is a string
/// column whose dictionary ids ascend with the values: its ids order the rows, so the rows
/// whose id ranks behind the `need`-th best are dropped (ties kept) before values are read.
fn first_by_ids(
    first: &ScanOrderBy,
    col: &dyn StringColumn,
    rows: Vec<u32>,
    need: usize,
) -> Result<Vec<u32>, QueryError> {
    let descending = first.order == ScanOrder::Descending;
    let nulls_first = first.nulls_first.unwrap_or(!descending);
    let rank = |id: u32| -> u64 {
        match (id, descending) {
            (0, _) if nulls_first => 0,
            (0, _) => u64::MAX,
            (id, false) => u64::from(id),
            (id, true) => u64::from(u32::MAX - id) + 1,
        }
    };
    let mut ranks: Vec<u64> = Vec::with_capacity(rows.len());
    let mut ids = vec![0u32; BLOCK_ROWS];
    for chunk in rows.chunk_by(|a, b| *a as usize / BLOCK_ROWS == *b as usize / BLOCK_ROWS) {
        col.read_ids(chunk[0] as usize / BLOCK_ROWS, &mut ids)?;
        ranks.extend(chunk.iter().map(|r| rank(ids[*r as usize % BLOCK_ROWS])));
    }
    let mut sorted = ranks.clone();
    let (_, worst, _) = sorted.select_nth_unstable(need - 1);
    let worst = *worst;
    Ok(rows
        .into_iter()
        .zip(ranks)
        .filter(|(_, r)| *r <= worst)
        .map(|(row, _)| row)
        .collect())
}

/// Blocks with fewer selected rows than this read ids row by row where the column allows it.
const SPARSE_BLOCK_ROWS: usize = 64;

/// Values of `rows` (any order) for `columns`, in the order of `rows`.
fn fetch(
    segment: &dyn SegmentReader,
    rows: &[u32],
    columns: &[String],
    ctx: &ExecContext<'_>,
) -> Result<Vec<Vec<Value>>, QueryError> {
    let mut out: Vec<Vec<Value>> = rows
        .iter()
        .map(|_| Vec::with_capacity(columns.len()))
        .collect();
    let mut by_block: Vec<(usize, usize)> = rows
        .iter()
        .enumerate()
        .map(|(i, r)| (*r as usize / BLOCK_ROWS, i))
        .collect();
    by_block.sort_unstable();
    let mut longs = vec![0i64; BLOCK_ROWS];
    let mut doubles = vec![0f64; BLOCK_ROWS];
    let mut offsets = Vec::new();
    let mut ids = Vec::new();
    let mut sketches = Vec::new();
    for name in columns {
        let column = if name == TIME_COLUMN {
            Some(ColumnRef::Numeric(segment.time()))
        } else {
            segment.column(name)
        };
        for block in by_block.chunk_by(|a, b| a.0 == b.0) {
            ctx.check()?;
            let b = block[0].0;
            let sparse = block.len() < SPARSE_BLOCK_ROWS;
            match column {
                None => block.iter().for_each(|(_, i)| out[*i].push(Value::Null)),
                Some(ColumnRef::String(col)) => {
                    let single = if sparse && !col.is_multi_value() {
                        let mut got = Vec::with_capacity(block.len());
                        for (_, i) in block {
                            match col.row_id(rows[*i])? {
                                Some(id) => got.push(id),
                                None => break,
                            }
                        }
                        (got.len() == block.len()).then_some(got)
                    } else {
                        None
                    };
                    if let Some(got) = single {
                        for ((_, i), id) in block.iter().zip(got) {
                            let v = col.value(id)?;
                            out[*i].push(v.map_or(Value::Null, |s| Value::String(s.into_owned())));
                        }
                        continue;
                    }
                    col.read_multi_ids(b, &mut offsets, &mut ids)?;
                    for (_, i) in block {
                        let off = rows[*i] as usize % BLOCK_ROWS;
                        let row_ids = &ids[offsets[off] as usize..offsets[off + 1] as usize];
                        out[*i].push(string_value(col, row_ids)?);
                    }
                }
                Some(ColumnRef::Numeric(col)) => {
                    let nulls = col.nulls();
                    let is_null = |r: u32| nulls.is_some_and(|n| n.contains(r));
                    if let (true, Some(index)) = (sparse, col.index()) {
                        for (_, i) in block {
                            let r = rows[*i];
                            let v = index.value(index.row_id(r)?).filter(|_| !is_null(r));
                            out[*i].push(v.map_or(Value::Null, Value::from));
                        }
                        continue;
                    }
                    if col.kind() == NumKind::Long {
                        col.read_i64(b, &mut longs)?;
                    } else {
                        col.read_f64(b, &mut doubles)?;
                    }
                    for (_, i) in block {
                        let r = rows[*i];
                        let off = r as usize % BLOCK_ROWS;
                        out[*i].push(if is_null(r) {
                            Value::Null
                        } else {
                            match col.kind() {
                                NumKind::Long => Value::from(longs[off]),
                                NumKind::Float => json_f32(doubles[off] as f32),
                                NumKind::Double => json_f64(doubles[off]),
                            }
                        });
                    }
                }
                Some(ColumnRef::Sketch(col)) => {
                    col.read(b, &mut sketches)?;
                    for (_, i) in block {
                        let mut bytes = Vec::new();
                        sketches[rows[*i] as usize % BLOCK_ROWS].to_bytes(&mut bytes);
                        out[*i].push(Value::String(base64_encode(&bytes)));
                    }
                }
            }
        }
    }
    Ok(out)
}

/// A row's value of a string column: null, a string, or an array for multi-value rows.
fn string_value(
    col: &dyn eddy_segment::StringColumn,
    row_ids: &[u32],
) -> Result<Value, QueryError> {
    let mut vals = Vec::with_capacity(row_ids.len());
    for id in row_ids {
        vals.push(
            col.value(*id)?
                .map_or(Value::Null, |s| Value::String(s.into_owned())),
        );
    }
    Ok(if col.is_multi_value() && vals.len() != 1 {
        if vals.is_empty() {
            Value::Null
        } else {
            Value::Array(vals)
        }
    } else {
        vals.pop().unwrap_or(Value::Null)
    })
}

fn base64_encode(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for k in 0..4 {
            if k <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * k)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}
