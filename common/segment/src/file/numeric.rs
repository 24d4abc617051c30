//! Numeric and sketch columns of a segment file: compressed blocks, and indexed longs with their
//! sorted values, ids, bitmaps, block ranges and optional row-order values.

use std::borrow::Cow;
use std::ops::{Bound, Range};
use std::sync::OnceLock;

use bytes::Bytes;
use roaring::RoaringBitmap;

use super::{Origin, block_bounds};
use crate::BLOCK_ROWS;
use crate::codec::bitmaps::BitmapIndex;
use crate::codec::ids::PackedIds;
use crate::codec::numeric::{NumKind, NumericBlocks};
use crate::codec::sketches::SketchBlocks;
use crate::error::{Result, SegmentError};
use crate::hll::Hll;
use crate::reader::{LongIndex, NumericColumn, SketchColumn};

pub(super) struct FileNumeric {
    pub(super) origin: Origin,
    pub(super) blocks: NumericBlocks,
    pub(super) nulls: Option<RoaringBitmap>,
}

/// An indexed long column: sorted values, ids, bitmaps and per-block ranges.
pub(super) struct FileLongIndex {
    origin: Origin,
    values: Vec<i64>,
    ids: PackedIds,
    bitmaps: BitmapIndex,
    ranges: Vec<Option<(i64, i64)>>,
    sketch: Hll,
    nulls: Option<RoaringBitmap>,
    hashes: OnceLock<Vec<u64>>,
    /// Values in row order, kept for mostly-distinct columns.
    row_values: Option<NumericBlocks>,
}

pub(super) fn open_indexed_long(
    origin: &Origin,
    rows: usize,
    need: &dyn Fn(&str) -> Result<Bytes>,
    row_values: Option<Bytes>,
) -> Result<FileLongIndex> {
    let row_values = row_values
        .map(|b| NumericBlocks::open(b, rows).map_err(|e| origin.err("rowvalues", e)))
        .transpose()?;
    let raw = need("values")?;
    if raw.len() % 8 != 0 {
        return Err(origin.err("values", "length is not a multiple of 8"));
    }
    let values: Vec<i64> = raw
        .chunks_exact(8)
        .map(|c| i64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
        .collect();
    if values.windows(2).any(|w| w[0] >= w[1]) {
        return Err(origin.err("values", "index values are not sorted"));
    }
    let card = values.len() as u32 + 1;
    let ids = PackedIds::open(need("ids")?, rows, card - 1).map_err(|e| origin.err("ids", e))?;
    let bitmaps =
        BitmapIndex::open(need("bitmaps")?, card as usize).map_err(|e| origin.err("bitmaps", e))?;
    let ranges_raw = need("ranges")?;
    if ranges_raw.len() != rows.div_ceil(BLOCK_ROWS) * 17 {
        return Err(origin.err("ranges", "length does not match the block count"));
    }
    let le = |b: &[u8]| i64::from_le_bytes(b.try_into().unwrap_or([0; 8]));
    let ranges = ranges_raw
        .chunks_exact(17)
        .map(|c| (c[0] == 1).then(|| (le(&c[1..9]), le(&c[9..17]))))
        .collect();
    let sketch = Hll::from_bytes(&need("hll")?).map_err(|e| origin.err("hll", e))?;
    let null_rows = bitmaps
        .get(0)
        .map_err(|e| origin.err("bitmaps", e))?
        .into_owned();
    let nulls = (!null_rows.is_empty()).then_some(null_rows);
    Ok(FileLongIndex {
        origin: origin.clone(),
        values,
        ids,
        bitmaps,
        ranges,
        sketch,
        nulls,
        hashes: OnceLock::new(),
        row_values,
    })
}

impl NumericColumn for FileNumeric {
    fn kind(&self) -> NumKind {
        self.blocks.kind()
    }

    fn read_i64(&self, block: usize, out: &mut [i64]) -> Result<()> {
        self.blocks
            .read_i64(block, out)
            .map_err(|e| self.origin.err("values", e))
    }

    fn read_f64(&self, block: usize, out: &mut [f64]) -> Result<()> {
        self.blocks
            .read_f64(block, out)
            .map_err(|e| self.origin.err("values", e))
    }

    fn block_range_i64(&self, block: usize) -> Option<(i64, i64)> {
        self.blocks.range_i64(block)
    }

    fn block_range_f64(&self, block: usize) -> Option<(f64, f64)> {
        self.blocks.range_f64(block)
    }

    fn nulls(&self) -> Option<&RoaringBitmap> {
        self.nulls.as_ref()
    }

    fn index(&self) -> Option<&dyn LongIndex> {
        None
    }
}

impl FileLongIndex {
    fn read_block_ids(&self, block: usize, out: &mut [u32]) -> Result<usize> {
        let (start, end) = block_bounds(block, self.ids.len());
        self.ids
            .read(start, &mut out[..end - start])
            .map_err(|e| self.origin.err("ids", e))?;
        Ok(end - start)
    }
}

impl NumericColumn for FileLongIndex {
    fn kind(&self) -> NumKind {
        NumKind::Long
    }

    fn read_i64(&self, block: usize, out: &mut [i64]) -> Result<()> {
        if let Some(blocks) = &self.row_values {
            return blocks
                .read_i64(block, out)
                .map_err(|e| self.origin.err("rowvalues", e));
        }
        crate::scratch::with_ids(|ids| {
            let n = self.read_block_ids(block, ids)?;
            for (o, id) in out[..n].iter_mut().zip(&ids[..n]) {
                *o = if *id == 0 {
                    0
                } else {
                    self.values[*id as usize - 1]
                };
            }
            Ok(())
        })
    }

    fn read_f64(&self, block: usize, out: &mut [f64]) -> Result<()> {
        if let Some(blocks) = &self.row_values {
            return blocks
                .read_f64(block, out)
                .map_err(|e| self.origin.err("rowvalues", e));
        }
        crate::scratch::with_ids(|ids| {
            let n = self.read_block_ids(block, ids)?;
            for (o, id) in out[..n].iter_mut().zip(&ids[..n]) {
                *o = if *id == 0 {
                    0.0
                } else {
                    self.values[*id as usize - 1] as f64
                };
            }
            Ok::<(), SegmentError>(())
        })?;
        Ok(())
    }

    fn block_range_i64(&self, block: usize) -> Option<(i64, i64)> {
        self.ranges.get(block).copied().flatten()
    }

    fn block_range_f64(&self, block: usize) -> Option<(f64, f64)> {
        self.block_range_i64(block)
            .map(|(a, b)| (a as f64, b as f64))
    }

    fn nulls(&self) -> Option<&RoaringBitmap> {
        self.nulls.as_ref()
    }

    fn index(&self) -> Option<&dyn LongIndex> {
        Some(self)
    }
}

impl LongIndex for FileLongIndex {
    fn cardinality(&self) -> u32 {
        self.values.len() as u32 + 1
    }

    fn value(&self, id: u32) -> Option<i64> {
        id.checked_sub(1)
            .and_then(|i| self.values.get(i as usize).copied())
    }

    fn lookup(&self, value: i64) -> Option<u32> {
        self.values.binary_search(&value).ok().map(|i| i as u32 + 1)
    }

    fn id_range(&self, lower: Bound<i64>, upper: Bound<i64>) -> Range<u32> {
        let start = match lower {
            Bound::Unbounded => 0,
            Bound::Included(v) => self.values.partition_point(|x| *x < v),
            Bound::Excluded(v) => self.values.partition_point(|x| *x <= v),
        };
        let end = match upper {
            Bound::Unbounded => self.values.len(),
            Bound::Included(v) => self.values.partition_point(|x| *x <= v),
            Bound::Excluded(v) => self.values.partition_point(|x| *x < v),
        };
        (start as u32 + 1)..(end.max(start) as u32 + 1)
    }

    fn bitmap(&self, id: u32) -> Result<Cow<'_, RoaringBitmap>> {
        self.bitmaps
            .get(id as usize)
            .map_err(|e| self.origin.err("bitmaps", e))
    }

    fn count(&self, id: u32) -> Result<u64> {
        self.bitmaps
            .cardinality(id as usize)
            .map_err(|e| self.origin.err("bitmaps", e))
    }

    fn read_ids(&self, block: usize, out: &mut [u32]) -> Result<()> {
        self.read_block_ids(block, out).map(|_| ())
    }

    fn row_id(&self, row: u32) -> Result<u32> {
        let mut id = [0u32];
        self.ids
            .read(row as usize, &mut id)
            .map_err(|e| self.origin.err("ids", e))?;
        Ok(id[0])
    }

    fn values_sketch(&self) -> Option<Cow<'_, Hll>> {
        Some(Cow::Borrowed(&self.sketch))
    }

    fn value_hashes(&self) -> Cow<'_, [u64]> {
        Cow::Borrowed(self.hashes.get_or_init(|| {
            std::iter::once(0)
                .chain(self.values.iter().map(|v| crate::hll::hash_i64(*v)))
                .collect()
        }))
    }
}

pub(super) struct FileSketch {
    pub(super) origin: Origin,
    pub(super) blocks: SketchBlocks,
}

impl SketchColumn for FileSketch {
    fn read(&self, block: usize, out: &mut Vec<Hll>) -> Result<()> {
        self.blocks
            .read(block, out)
            .map_err(|e| self.origin.err("sketches", e))
    }
}
