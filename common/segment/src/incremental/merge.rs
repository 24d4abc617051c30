//! Merging persisted parts: the rows of a segment written by [`persist`](super::persist) from
//! an index of the same spec are added back into an index, a block at a time, with their
//! metrics combined (counts and sums add, minima and maxima keep, sketches union) rather than
//! aggregated again. Rows of several parts that roll up together become one row.

use roaring::RoaringBitmap;

use crate::BLOCK_ROWS;
use crate::codec::numeric::NumKind;
use crate::error::Result;
use crate::hll::Hll;
use crate::input::{InputRow, InputValue};
use crate::reader::{ColumnRef, NumericColumn, SegmentReader, SketchColumn, StringColumn};
use crate::schema::ColumnRole;

use super::values::{apply_metric, first_value};
use super::{IncrementalIndex, MemMetric, MetricOp};

/// One column's values for the current block.
enum Block<'s> {
    String {
        col: &'s dyn StringColumn,
        offsets: Vec<u32>,
        ids: Vec<u32>,
    },
    Numeric {
        col: &'s dyn NumericColumn,
        longs: Vec<i64>,
        doubles: Vec<f64>,
        nulls: Option<&'s RoaringBitmap>,
    },
    Sketch {
        col: &'s dyn SketchColumn,
        sketches: Vec<Hll>,
    },
    Absent,
}

impl<'s> Block<'s> {
    fn of(column: Option<ColumnRef<'s>>) -> Self {
        match column {
            Some(ColumnRef::String(col)) => Block::String {
                col,
                offsets: Vec::new(),
                ids: Vec::new(),
            },
            Some(ColumnRef::Numeric(col)) => Block::Numeric {
                col,
                longs: vec![0; BLOCK_ROWS],
                doubles: vec![0.0; BLOCK_ROWS],
                nulls: col.nulls(),
            },
            Some(ColumnRef::Sketch(col)) => Block::Sketch {
                col,
                sketches: Vec::new(),
            },
            None => Block::Absent,
        }
    }

    fn load(&mut self, block: usize) -> Result<()> {
        match self {
            Block::String { col, offsets, ids } => col.read_multi_ids(block, offsets, ids),
            Block::Numeric {
                col,
                longs,
                doubles,
                ..
            } => match col.kind() {
                NumKind::Long => col.read_i64(block, longs),
                _ => col.read_f64(block, doubles),
            },
            Block::Sketch { col, sketches } => col.read(block, sketches),
            Block::Absent => Ok(()),
        }
    }

    /// The value of row `i` of the block (row `row` of the segment).
    fn value(&self, i: usize, row: usize) -> Result<InputValue<'_>> {
        Ok(match self {
            Block::String { col, offsets, ids } => {
                let row_ids = &ids[offsets[i] as usize..offsets[i + 1] as usize];
                let text = |id: u32| -> Result<InputValue<'_>> {
                    Ok(match col.value(id)? {
                        Some(v) => InputValue::Str(v),
                        None => InputValue::Null,
                    })
                };
                match row_ids {
                    [id] => text(*id)?,
                    [] => InputValue::Null,
                    many => {
                        InputValue::List(many.iter().map(|id| text(*id)).collect::<Result<_>>()?)
                    }
                }
            }
            Block::Numeric {
                col,
                longs,
                doubles,
                nulls,
            } => {
                if nulls.is_some_and(|n| n.contains(row as u32)) {
                    InputValue::Null
                } else if col.kind() == NumKind::Long {
                    InputValue::Long(longs[i])
                } else {
                    InputValue::Double(doubles[i])
                }
            }
            Block::Sketch { .. } | Block::Absent => InputValue::Null,
        })
    }
}

/// Row `i` of the current block, as the index reads input rows.
struct BlockRow<'b, 's> {
    names: &'b [String],
    values: &'b [InputValue<'s>],
}

impl InputRow for BlockRow<'_, '_> {
    fn get(&self, field: &str) -> InputValue<'_> {
        self.names
            .iter()
            .position(|n| n == field)
            .map_or(InputValue::Null, |i| self.values[i].clone())
    }

    fn field_names(&self, out: &mut Vec<String>) {
        out.extend(self.names.iter().cloned());
    }
}

impl IncrementalIndex {
    /// Adds every row of `segment`, persisted from an index with this spec (the parts of one
    /// time chunk being merged), combining its metrics into the rows they roll up with.
    pub fn add_segment(&mut self, segment: &dyn SegmentReader) -> Result<()> {
        let schema = segment.schema();
        let dim_names: Vec<String> = schema
            .columns
            .iter()
            .filter(|c| c.role == ColumnRole::Dimension)
            .map(|c| c.name.clone())
            .collect();
        let first_metric = self.dims.len();
        let metric_names: Vec<String> = self.schema.columns[first_metric..]
            .iter()
            .map(|c| c.name.clone())
            .collect();
        let mut dims: Vec<Block<'_>> = dim_names
            .iter()
            .map(|n| Block::of(segment.column(n)))
            .collect();
        let mut metrics: Vec<Block<'_>> = metric_names
            .iter()
            .map(|n| Block::of(segment.column(n)))
            .collect();
        let rows = segment.num_rows();
        let mut times = vec![0i64; BLOCK_ROWS];
        for block in 0..rows.div_ceil(BLOCK_ROWS) {
            segment.time().read_i64(block, &mut times)?;
            for b in dims.iter_mut().chain(metrics.iter_mut()) {
                b.load(block)?;
            }
            let start = block * BLOCK_ROWS;
            for (i, row) in (start..(start + BLOCK_ROWS).min(rows)).enumerate() {
                let values: Vec<InputValue<'_>> = dims
                    .iter()
                    .map(|d| d.value(i, row))
                    .collect::<Result<_>>()?;
                let combined: Vec<Combined<'_>> = metrics
                    .iter()
                    .map(|m| match m {
                        Block::Sketch { sketches, .. } => Ok(Combined::Sketch(&sketches[i])),
                        other => other.value(i, row).map(Combined::Value),
                    })
                    .collect::<Result<_>>()?;
                let input = BlockRow {
                    names: &dim_names,
                    values: &values,
                };
                self.add_row(times[i], &input, Some(&combined));
            }
        }
        Ok(())
    }
}

/// An aggregated metric value read back from a persisted index.
pub(crate) enum Combined<'a> {
    Value(InputValue<'a>),
    Sketch(&'a Hll),
}

impl IncrementalIndex {
    /// Folds aggregated values into a row's metrics: counts and sums add, minima and maxima
    /// keep theirs, sketches union.
    pub(super) fn combine_metrics(&mut self, row: usize, values: &[Combined<'_>], new_row: bool) {
        for (metric, value) in self.metrics.iter_mut().zip(values) {
            match (metric, value) {
                (MemMetric::Numeric { op, col, .. }, Combined::Value(v)) => {
                    let op = match op {
                        MetricOp::Count => MetricOp::Sum,
                        other => *other,
                    };
                    // Values read back from a column of the same type always fit.
                    let _ = if new_row {
                        self.bytes += 8;
                        first_value(col, v)
                    } else {
                        apply_metric(op, col, row, v)
                    };
                }
                (MemMetric::Sketch { col, .. }, Combined::Sketch(h)) => {
                    if new_row {
                        col.sketches.push(Hll::new());
                        self.bytes += 32;
                    }
                    let before = col.sketches[row].heap_bytes();
                    col.sketches[row].merge(h);
                    self.bytes += col.sketches[row].heap_bytes().saturating_sub(before);
                }
                (MemMetric::Numeric { col, .. }, Combined::Sketch(_)) if new_row => {
                    col.push_long(None);
                }
                (MemMetric::Sketch { col, .. }, Combined::Value(_)) if new_row => {
                    col.sketches.push(Hll::new());
                }
                _ => {}
            }
        }
    }
}
