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
/// Blocks are skipped or taken whole by their min/max; the others set one bit per row in a
/// word array that becomes the bitmap at the end (no per-row insertion).
pub fn scan_numeric(
    col: &dyn NumericColumn,
    pred: &NumPred,
    n: usize,
) -> Result<RoaringBitmap, QueryError> {
    if matches!(pred, NumPred::Never) {
        return Ok(RoaringBitmap::new());
    }
    let is_long = col.kind() == eddy_segment::codec::numeric::NumKind::Long;
    let mut longs = vec![0i64; BLOCK_ROWS];
    let mut doubles = vec![0f64; BLOCK_ROWS];
    let long_test = LongTest::new(pred);
    let mut words = vec![0u64; n.div_ceil(64)];
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
        // BLOCK_ROWS is a multiple of 64, so a block starts on a word.
        let block_words = &mut words[start / 64..end.div_ceil(64)];
        match decision {
            None | Some(Some(false)) => {}
            Some(Some(true)) => {
                block_words.fill(!0);
                if !end.is_multiple_of(64) {
                    *block_words.last_mut().expect("block has rows") = (1u64 << (end % 64)) - 1;
                }
            }
            Some(None) => {
                if is_long {
                    col.read_i64(b, &mut longs)?;
                    long_test.set_bits(&longs[..end - start], block_words);
                } else {
                    col.read_f64(b, &mut doubles)?;
                    set_bits(&doubles[..end - start], block_words, |v| {
                        pred.test_double(v)
                    });
                }
            }
        }
    }
    let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
    Ok(RoaringBitmap::from_lsb0_bytes(0, &bytes))
}

/// A predicate on longs in the shape of its tight loop: equality and one range of long literals
/// (what SQL filters on long columns mostly are) test without branches; the rest goes through
/// [`NumPred::test_long`].
enum LongTest<'a> {
    /// Inclusive bounds, `lo <= hi`.
    Between(i64, i64),
    OneOf(Vec<i64>),
    Other(&'a NumPred),
}

impl<'a> LongTest<'a> {
    fn new(pred: &'a NumPred) -> Self {
        match pred {
            NumPred::Ranges(rs) if rs.len() == 1 => {
                let (lo, hi) = (rs[0].lo, rs[0].hi);
                let lo = match lo {
                    None => Some(i64::MIN),
                    Some((NumLit::Long(v), false)) => Some(v),
                    Some((NumLit::Long(v), true)) => v.checked_add(1),
                    Some((NumLit::Double(_), _)) => return LongTest::Other(pred),
                };
                let hi = match hi {
                    None => Some(i64::MAX),
                    Some((NumLit::Long(v), false)) => Some(v),
                    Some((NumLit::Long(v), true)) => v.checked_sub(1),
                    Some((NumLit::Double(_), _)) => return LongTest::Other(pred),
                };
                match (lo, hi) {
                    (Some(lo), Some(hi)) if lo <= hi => LongTest::Between(lo, hi),
                    _ => LongTest::OneOf(Vec::new()),
                }
            }
            NumPred::Set(set) if set.len() <= 16 => {
                let mut longs = Vec::with_capacity(set.len());
                for x in set {
                    match x {
                        NumLit::Long(v) => longs.push(*v),
                        NumLit::Double(_) => return LongTest::Other(pred),
                    }
                }
                match longs[..] {
                    [v] => LongTest::Between(v, v),
                    _ => LongTest::OneOf(longs),
                }
            }
            _ => LongTest::Other(pred),
        }
    }

    /// Sets bit `i` of `words` for every `values[i]` that passes.
    fn set_bits(&self, values: &[i64], words: &mut [u64]) {
        match self {
            LongTest::Between(lo, hi) => {
                let (lo, width) = (*lo, hi.wrapping_sub(*lo) as u64);
                set_bits(values, words, |v| v.wrapping_sub(lo) as u64 <= width);
            }
            LongTest::OneOf(set) => set_bits(values, words, |v| set.contains(&v)),
            LongTest::Other(pred) => set_bits(values, words, |v| pred.test_long(v)),
        }
    }
}

/// One bit per value, 64 values per word, without branches.
#[inline(always)]
fn set_bits<T: Copy>(values: &[T], words: &mut [u64], pass: impl Fn(T) -> bool) {
    for (chunk, word) in values.chunks(64).zip(words.iter_mut()) {
        let mut w = 0u64;
        for (j, v) in chunk.iter().enumerate() {
            w |= u64::from(pass(*v)) << j;
        }
        *word = w;
    }
}

#[cfg(test)]
mod tests {
    use super::{LongTest, NumPred};
    use crate::compare::NumLit;
    use crate::filter::leaf::predicate::NumRange;

    /// The tight loops agree with the general test, bounds at the ends of i64 included.
    #[test]
    fn long_tests_agree_with_the_predicate() {
        let edges = [
            i64::MIN,
            i64::MIN + 1,
            -3,
            -1,
            0,
            1,
            2,
            7,
            i64::MAX - 1,
            i64::MAX,
        ];
        let values: Vec<i64> = (0..150)
            .map(|i| edges[i % edges.len()].wrapping_add((i / edges.len()) as i64 % 3 - 1))
            .collect();
        let mut preds = vec![
            NumPred::Set(vec![NumLit::Long(0)]),
            NumPred::Set(vec![
                NumLit::Long(-1),
                NumLit::Long(7),
                NumLit::Long(i64::MAX),
            ]),
            NumPred::Set(vec![NumLit::Long(1), NumLit::Double(2.0)]),
            NumPred::Set(Vec::new()),
        ];
        for lo in [None, Some(-1), Some(0), Some(i64::MIN), Some(i64::MAX)] {
            for hi in [None, Some(-1), Some(2), Some(i64::MIN), Some(i64::MAX)] {
                for (lo_strict, hi_strict) in
                    [(false, false), (true, false), (false, true), (true, true)]
                {
                    preds.push(NumPred::Ranges(vec![NumRange {
                        lo: lo.map(|v| (NumLit::Long(v), lo_strict)),
                        hi: hi.map(|v| (NumLit::Long(v), hi_strict)),
                    }]));
                }
            }
        }
        preds.push(NumPred::Ranges(vec![NumRange {
            lo: Some((NumLit::Double(-0.5), false)),
            hi: None,
        }]));
        for pred in &preds {
            let mut words = vec![0u64; values.len().div_ceil(64)];
            LongTest::new(pred).set_bits(&values, &mut words);
            for (i, v) in values.iter().enumerate() {
                let bit = words[i / 64] >> (i % 64) & 1 == 1;
                assert_eq!(bit, pred.test_long(*v), "value {v}");
            }
        }
    }
}
