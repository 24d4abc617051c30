//! The incremental index read as a segment: the same [`SegmentReader`] the query engine uses
//! for files. A reader borrows the index, so rows cannot change under a running query.

use eddy_types::SegmentId;

use crate::reader::{ColumnRef, NumericColumn, SegmentReader};
use crate::schema::{ColumnStats, SegmentSchema};

use super::{IncrementalIndex, MemDim, MemMetric};

impl SegmentReader for IncrementalIndex {
    fn segment_id(&self) -> &SegmentId {
        &self.id
    }

    fn num_rows(&self) -> usize {
        self.time.len()
    }

    fn schema(&self) -> &SegmentSchema {
        &self.schema
    }

    fn time_sorted(&self) -> bool {
        self.time_sorted
    }

    fn time(&self) -> &dyn NumericColumn {
        &self.time
    }

    fn column(&self, name: &str) -> Option<ColumnRef<'_>> {
        let i = self.schema.columns.iter().position(|c| c.name == name)?;
        if i < self.dims.len() {
            return Some(match &self.dims[i] {
                MemDim::String(d) => ColumnRef::String(d),
                MemDim::Numeric(n) => ColumnRef::Numeric(n),
            });
        }
        Some(match &self.metrics[i - self.dims.len()] {
            MemMetric::Numeric { col, .. } => ColumnRef::Numeric(col),
            MemMetric::Sketch { col, .. } => ColumnRef::Sketch(col),
        })
    }

    fn column_stats(&self, name: &str) -> Option<ColumnStats> {
        let i = self.schema.columns.iter().position(|c| c.name == name)?;
        let rows = self.time.len();
        if i < self.dims.len() {
            return Some(match &self.dims[i] {
                MemDim::String(d) => {
                    let mut values: Vec<&str> = (1..d.num_ids() as u32)
                        .filter_map(|id| d.value_of(id))
                        .collect();
                    values.sort_unstable();
                    let has_nulls = d.has_nulls();
                    ColumnStats {
                        cardinality: Some(values.len() as u64),
                        min_value: values.first().map(|s| s.to_string()),
                        max_value: values.last().map(|s| s.to_string()),
                        has_nulls,
                        size: (d.dict_bytes + rows * 4) as u64,
                    }
                }
                MemDim::Numeric(n) => ColumnStats {
                    has_nulls: !n.nulls.is_empty(),
                    size: rows as u64 * 8,
                    ..Default::default()
                },
            });
        }
        Some(match &self.metrics[i - self.dims.len()] {
            MemMetric::Numeric { col, .. } => ColumnStats {
                has_nulls: !col.nulls.is_empty(),
                size: rows as u64 * 8,
                ..Default::default()
            },
            MemMetric::Sketch { col, .. } => ColumnStats {
                size: col.sketches.iter().map(|s| s.heap_bytes() as u64).sum(),
                ..Default::default()
            },
        })
    }

    fn time_range(&self) -> Option<(i64, i64)> {
        let lo = self.time.longs.iter().copied().min()?;
        let hi = self.time.longs.iter().copied().max()?;
        Some((lo, hi))
    }

    fn size_bytes(&self) -> u64 {
        self.bytes as u64
    }
}
