//! Rows matching a compiled predicate in one column: through dictionary ids and bitmaps, a
//! long index, or a block-by-block scan of decoded values.

use std::collections::HashSet;

use roaring::{MultiOps, RoaringBitmap};

use eddy_segment::{BLOCK_ROWS, LongIndex, NumericColumn, StringColumn};

use super::{NumPred, StrPred};
use crate::compare::NumLit;
use crate::error::QueryError;
use crate::filter::all_rows;

pub(super) fn matching_ids(col: &dyn StringColumn, pred: &StrPred) -> Result<Vec<u32>, QueryError> {
    let mut ids = Vec::new();
    col.for_each_value(&mut |id, v| {
        if pred.test(v) {
            ids.push(id);
        }
    })?;
    Ok(ids)
}

/// Rows holding any of `ids`; for single-value columns with most ids matching, the complement
/// is cheaper to build.
pub(super) fn union_ids<'c>(
    ids: Vec<u32>,
    cardinality: u32,
    multi: bool,
    n: usize,
    bitmap: &dyn Fn(u32) -> Result<std::borrow::Cow<'c, RoaringBitmap>, QueryError>,
) -> Result<RoaringBitmap, QueryError> {
    if !multi && ids.len() as u32 > cardinality / 2 + 1 && cardinality > 64 {
        let matching: HashSet<u32> = ids.iter().copied().collect();
        let mut others = Vec::new();
        for id in 0..cardinality {
            if !matching.contains(&id) {
                others.push(bitmap(id)?);
            }
        }
        let excluded = others.iter().map(|b| b.as_ref()).union();
        return Ok(all_rows(n) - excluded);
    }
    let mut maps = Vec::with_capacity(ids.len());
    for id in ids {
        maps.push(bitmap(id)?);
    }
    Ok(maps.iter().map(|b| b.as_ref()).union())
}

pub(super) fn indexed_rows(
    index: &dyn LongIndex,
    pred: &NumPred,
) -> Result<RoaringBitmap, QueryError> {
    let card = index.cardinality();
    let ids: Vec<u32> = match pred {
        NumPred::Never => Vec::new(),
        NumPred::Ranges(rs) => {
            let mut ids = Vec::new();
            for r in rs {
                let (lo, hi) = r.long_bounds();
                ids.extend(index.id_range(lo, hi));
            }
            ids.sort_unstable();
            ids.dedup();
            ids
        }
        NumPred::Set(set) => set
            .iter()
            .filter_map(|x| match x {
                NumLit::Long(v) => index.lookup(*v),
                NumLit::Double(d) if d.fract() == 0.0 => index.lookup(*d as i64),
                NumLit::Double(_) => None,
            })
            .collect(),
        NumPred::Text(p) => (1..card)
            .filter(|id| {
                index
                    .value(*id)
                    .is_some_and(|v| p.test(itoa::Buffer::new().format(v)))
            })
            .collect(),
    };
    let mut maps = Vec::with_capacity(ids.len());
    for id in ids {
        maps.push(index.bitmap(id)?);
    }
    Ok(maps.iter().map(|b| b.as_ref()).union())
}

/// Rows whose value satisfies `pred`, block by block, nulls not excluded (caller removes them).
pub fn scan_numeric(
    col: &dyn NumericColumn,
    pred: &NumPred,
    n: usize,
) -> Result<RoaringBitmap, QueryError> {
    let mut out = RoaringBitmap::new();
    if matches!(pred, NumPred::Never) {
        return Ok(out);
    }
    let is_long = col.kind() == eddy_segment::codec::numeric::NumKind::Long;
    let mut longs = vec![0i64; BLOCK_ROWS];
    let mut doubles = vec![0f64; BLOCK_ROWS];
    let mut hits: Vec<u32> = Vec::with_capacity(BLOCK_ROWS);
    for b in 0..n.div_ceil(BLOCK_ROWS) {
        let start = b * BLOCK_ROWS;
        let end = (start + BLOCK_ROWS).min(n);
        let decision = if is_long {
            col.block_range_i64(b)
                .map(|(lo, hi)| pred.on_range(lo as f64, hi as f64, lo, hi, true))
        } else {
            col.block_range_f64(b)
                .map(|(lo, hi)| pred.on_range(lo, hi, lo as i64, hi as i64, false))
        };
        match decision {
            None | Some(Some(false)) => continue,
            Some(Some(true)) => {
                out.insert_range(start as u32..end as u32);
            }
            Some(None) => {
                hits.clear();
                if is_long {
                    col.read_i64(b, &mut longs)?;
                    for (i, v) in longs[..end - start].iter().enumerate() {
                        if pred.test_long(*v) {
                            hits.push((start + i) as u32);
                        }
                    }
                } else {
                    col.read_f64(b, &mut doubles)?;
                    for (i, v) in doubles[..end - start].iter().enumerate() {
                        if pred.test_double(*v) {
                            hits.push((start + i) as u32);
                        }
                    }
                }
                out.append(hits.iter().copied())
                    .map_err(|e| QueryError::Internal(e.to_string()))?;
            }
        }
    }
    Ok(out)
}
