//! Which rows of a segment a query reads: its intervals (by the time column, block-pruned) and
//! its filter (by bitmaps), and iteration over them block by block.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use roaring::RoaringBitmap;

use eddy_segment::{BLOCK_ROWS, SegmentReader};
use eddy_types::Interval;
use eddy_types::spec::FilterSpec;

use crate::compare::NumLit;
use crate::error::QueryError;
use crate::filter::{self, NumPred, leaf::NumRange};

/// Cancellation and deadline, checked between blocks.
pub struct ExecContext<'a> {
    pub query_id: &'a str,
    pub cancelled: &'a AtomicBool,
    pub deadline: Option<Instant>,
    pub timeout_ms: u64,
}

impl ExecContext<'_> {
    pub fn check(&self) -> Result<(), QueryError> {
        if self.cancelled.load(Ordering::Relaxed) {
            return Err(QueryError::Cancelled(self.query_id.to_string()));
        }
        if let Some(d) = self.deadline
            && Instant::now() >= d
        {
            return Err(QueryError::Timeout {
                query_id: self.query_id.to_string(),
                timeout_ms: self.timeout_ms,
            });
        }
        Ok(())
    }
}

/// Selected rows: all of them, or a bitmap.
/// What [`Selection::for_each_block`] calls: block index, rows in the block, selected offsets.
pub type BlockVisitor<'f> = dyn FnMut(usize, usize, Option<&[u32]>) -> Result<(), QueryError> + 'f;

pub struct Selection {
    pub num_rows: usize,
    pub rows: Option<RoaringBitmap>,
}

impl Selection {
    pub fn count(&self) -> u64 {
        self.rows
            .as_ref()
            .map_or(self.num_rows as u64, RoaringBitmap::len)
    }

    pub fn is_empty(&self) -> bool {
        self.count() == 0
    }

    pub fn contains(&self, row: u32) -> bool {
        self.rows.as_ref().is_none_or(|r| r.contains(row))
    }

    /// How many rows of block `b` are selected.
    pub fn count_in_block(&self, b: usize) -> usize {
        let start = b * BLOCK_ROWS;
        let end = (start + BLOCK_ROWS).min(self.num_rows);
        match &self.rows {
            None => end.saturating_sub(start),
            Some(rows) => rows.range_cardinality(start as u32..end as u32) as usize,
        }
    }

    /// Appends the selected rows of block `b` (segment row numbers, ascending) to `out`.
    pub fn rows_in_block(&self, b: usize, out: &mut Vec<u32>) {
        let start = (b * BLOCK_ROWS) as u32;
        let end = ((b + 1) * BLOCK_ROWS).min(self.num_rows) as u32;
        match &self.rows {
            None => out.extend(start..end.max(start)),
            Some(rows) => out.extend(rows.range(start..end)),
        }
    }

    /// Calls `f(block, len, rows)` for every block with selected rows. `rows` holds
    /// block-relative offsets, or is None when the whole block is selected.
    pub fn for_each_block(
        &self,
        ctx: &ExecContext<'_>,
        f: &mut BlockVisitor<'_>,
    ) -> Result<(), QueryError> {
        let n = self.num_rows;
        let mut offsets: Vec<u32> = Vec::with_capacity(BLOCK_ROWS);
        for b in 0..n.div_ceil(BLOCK_ROWS) {
            ctx.check()?;
            let start = b * BLOCK_ROWS;
            let end = (start + BLOCK_ROWS).min(n);
            match &self.rows {
                None => f(b, end - start, None)?,
                Some(rows) => {
                    let count = rows.range_cardinality(start as u32..end as u32) as usize;
                    if count == 0 {
                        continue;
                    }
                    if count == end - start {
                        f(b, end - start, None)?;
                        continue;
                    }
                    offsets.clear();
                    offsets.extend(
                        rows.range(start as u32..end as u32)
                            .map(|r| r - start as u32),
                    );
                    f(b, end - start, Some(&offsets))?;
                }
            }
        }
        Ok(())
    }
}

/// Rows inside `intervals` (None = every row).
pub fn interval_rows(
    segment: &dyn SegmentReader,
    intervals: &[Interval],
) -> Result<Option<RoaringBitmap>, QueryError> {
    let Some((lo, hi)) = segment.time_range() else {
        return Ok(Some(RoaringBitmap::new()));
    };
    if intervals.iter().any(|i| i.start <= lo && hi < i.end) {
        return Ok(None);
    }
    let ranges = intervals
        .iter()
        .filter(|i| i.start <= hi && lo < i.end)
        .map(|i| NumRange {
            lo: Some((NumLit::Long(i.start), false)),
            hi: Some((NumLit::Long(i.end), true)),
        })
        .collect::<Vec<_>>();
    if ranges.is_empty() {
        return Ok(Some(RoaringBitmap::new()));
    }
    filter::leaf::scan_numeric(segment.time(), &NumPred::Ranges(ranges), segment.num_rows())
        .map(Some)
}

/// Rows inside the intervals that pass the filter.
pub fn select(
    segment: &dyn SegmentReader,
    intervals: &[Interval],
    filter: Option<&FilterSpec>,
) -> Result<Selection, QueryError> {
    let by_time = interval_rows(segment, intervals)?;
    let rows = match (by_time, filter) {
        (t, None) => t,
        (None, Some(f)) => Some(filter::evaluate(f, segment)?),
        (Some(t), Some(f)) => {
            if t.is_empty() {
                Some(t)
            } else {
                Some(t & filter::evaluate(f, segment)?)
            }
        }
    };
    Ok(Selection {
        num_rows: segment.num_rows(),
        rows,
    })
}
