//! The read interface every segment offers, whether an immutable file or a snapshot of the
//! incremental index: one query engine serves both.
//!
//! Rows are read in blocks of [`BLOCK_ROWS`](crate::BLOCK_ROWS); every column of a segment uses
//! the same blocking, so row `r` is at offset `r % BLOCK_ROWS` of block `r / BLOCK_ROWS`.
//! Dictionary-encoded columns reserve id 0 for null.

use std::borrow::Cow;
use std::ops::{Bound, Range};

use roaring::RoaringBitmap;

use eddy_types::SegmentId;

use crate::codec::numeric::NumKind;
use crate::error::Result;
use crate::hll::Hll;
use crate::schema::{ColumnStats, SegmentSchema};

pub trait SegmentReader: Send + Sync {
    fn segment_id(&self) -> &SegmentId;
    fn num_rows(&self) -> usize;
    fn schema(&self) -> &SegmentSchema;
    /// Rows ascend by `__time`.
    fn time_sorted(&self) -> bool;
    fn time(&self) -> &dyn NumericColumn;
    fn column(&self, name: &str) -> Option<ColumnRef<'_>>;
    fn column_stats(&self, name: &str) -> Option<ColumnStats>;
    /// Smallest and largest `__time`, None when empty.
    fn time_range(&self) -> Option<(i64, i64)>;
    fn size_bytes(&self) -> u64;
}

#[derive(Clone, Copy)]
pub enum ColumnRef<'a> {
    String(&'a dyn StringColumn),
    Numeric(&'a dyn NumericColumn),
    Sketch(&'a dyn SketchColumn),
}

/// A dictionary-encoded string dimension.
pub trait StringColumn: Send + Sync {
    /// Number of ids, including the null id 0.
    fn cardinality(&self) -> u32;
    /// Ids ascend with their values (false for the incremental index).
    fn is_sorted(&self) -> bool;
    fn is_multi_value(&self) -> bool;
    /// The value of a non-null id (None for id 0).
    fn value(&self, id: u32) -> Result<Option<Cow<'_, str>>>;
    /// Values of many ids at once; `ids` ascending gives the best speed.
    fn values(&self, ids: &[u32]) -> Result<Vec<Option<String>>> {
        ids.iter()
            .map(|id| self.value(*id).map(|v| v.map(Cow::into_owned)))
            .collect()
    }
    /// The id of a value (None value = the null id, which always exists).
    fn lookup(&self, value: Option<&str>) -> Result<Option<u32>>;
    /// Calls `f(id, value)` for every non-null id.
    fn for_each_value(&self, f: &mut dyn FnMut(u32, &str)) -> Result<()>;
    /// Ids whose values fall within the bounds; only for sorted columns.
    fn id_range(&self, lower: Bound<&str>, upper: Bound<&str>) -> Result<Option<Range<u32>>>;
    /// Rows holding `id` (computed by a scan when the column has no bitmap index).
    fn bitmap(&self, id: u32) -> Result<Cow<'_, RoaringBitmap>>;
    /// Whether `bitmap` reads a stored index (false for `createBitmapIndex: false`).
    fn has_bitmaps(&self) -> bool {
        true
    }
    /// Rows holding any of `ids`.
    fn rows_with_ids(&self, ids: &[u32]) -> Result<RoaringBitmap> {
        let mut out = RoaringBitmap::new();
        for id in ids {
            out |= self.bitmap(*id)?.as_ref();
        }
        Ok(out)
    }
    /// Ids of block `block` (single-value columns).
    fn read_ids(&self, block: usize, out: &mut [u32]) -> Result<()>;
    /// The id of one row without decoding its block, where the layout allows it (single-value
    /// segment files); None otherwise.
    fn row_id(&self, _row: u32) -> Result<Option<u32>> {
        Ok(None)
    }
    /// Ids of block `block` as per-row offsets into `ids` (`offsets.len() == rows + 1`).
    fn read_multi_ids(
        &self,
        block: usize,
        offsets: &mut Vec<u32>,
        ids: &mut Vec<u32>,
    ) -> Result<()>;
    /// Smallest and largest id in the block, when known.
    fn block_id_range(&self, block: usize) -> Option<(u32, u32)>;
    /// A sketch of all non-null values, for unfiltered distinct counts.
    fn values_sketch(&self) -> Option<Cow<'_, Hll>>;
    /// The sketch hash of every id's value (0 for the null id), for distinct counts by group.
    /// Segment files compute it once and keep it.
    fn value_hashes(&self) -> Result<Cow<'_, [u64]>> {
        let mut hashes = vec![0u64; self.cardinality() as usize];
        self.for_each_value(&mut |id, v| hashes[id as usize] = crate::hll::hash_str(v))?;
        Ok(Cow::Owned(hashes))
    }
}

/// A long, float or double column (dimension or metric), optionally bitmap-indexed.
pub trait NumericColumn: Send + Sync {
    fn kind(&self) -> NumKind;
    fn read_i64(&self, block: usize, out: &mut [i64]) -> Result<()>;
    fn read_f64(&self, block: usize, out: &mut [f64]) -> Result<()>;
    /// Min and max of the block's non-null values; None when all are null.
    fn block_range_i64(&self, block: usize) -> Option<(i64, i64)>;
    fn block_range_f64(&self, block: usize) -> Option<(f64, f64)>;
    /// Rows that are null; None when there are none.
    fn nulls(&self) -> Option<&RoaringBitmap>;
    /// Dictionary, ids and bitmaps of an indexed long dimension.
    fn index(&self) -> Option<&dyn LongIndex>;
}

/// Sorted distinct values of a long dimension with one bitmap per value; id 0 is null.
pub trait LongIndex: Send + Sync {
    fn cardinality(&self) -> u32;
    fn value(&self, id: u32) -> Option<i64>;
    fn lookup(&self, value: i64) -> Option<u32>;
    /// Non-null ids whose values fall within the bounds.
    fn id_range(&self, lower: Bound<i64>, upper: Bound<i64>) -> Range<u32>;
    fn bitmap(&self, id: u32) -> Result<Cow<'_, RoaringBitmap>>;
    /// Rows holding `id` (cheaper than `bitmap(id).len()` where the format allows).
    fn count(&self, id: u32) -> Result<u64> {
        Ok(self.bitmap(id)?.len())
    }
    fn read_ids(&self, block: usize, out: &mut [u32]) -> Result<()>;
    /// The id of one row without decoding its block.
    fn row_id(&self, row: u32) -> Result<u32>;
    fn values_sketch(&self) -> Option<Cow<'_, Hll>>;
    /// The sketch hash of every id's value (0 for the null id).
    fn value_hashes(&self) -> Cow<'_, [u64]> {
        Cow::Owned(
            (0..self.cardinality())
                .map(|id| self.value(id).map_or(0, crate::hll::hash_i64))
                .collect(),
        )
    }
}

/// A HyperLogLog metric column.
pub trait SketchColumn: Send + Sync {
    fn read(&self, block: usize, out: &mut Vec<Hll>) -> Result<()>;
}
