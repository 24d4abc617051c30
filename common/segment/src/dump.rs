//! Reads every row of a segment as JSON values, column by column. Slow and simple: for tests,
//! debugging and small exports, never for queries.

use serde_json::{Map, Value, json};

use crate::BLOCK_ROWS;
use crate::error::Result;
use crate::reader::{ColumnRef, SegmentReader};

/// One JSON object per row: `__time` as epoch millis, strings as strings (multi-value as
/// arrays), numbers as numbers, sketches as their estimates, nulls as null.
pub fn rows(segment: &dyn SegmentReader) -> Result<Vec<Map<String, Value>>> {
    let n = segment.num_rows();
    let mut out: Vec<Map<String, Value>> = (0..n).map(|_| Map::new()).collect();
    let mut longs = vec![0i64; BLOCK_ROWS];
    let mut doubles = vec![0f64; BLOCK_ROWS];
    for b in 0..n.div_ceil(BLOCK_ROWS) {
        segment.time().read_i64(b, &mut longs)?;
        for (i, row) in out[b * BLOCK_ROWS..(b * BLOCK_ROWS + BLOCK_ROWS).min(n)]
            .iter_mut()
            .enumerate()
        {
            row.insert(eddy_types::TIME_COLUMN.into(), json!(longs[i]));
        }
    }
    for col in &segment.schema().columns {
        let Some(column) = segment.column(&col.name) else {
            continue;
        };
        for b in 0..n.div_ceil(BLOCK_ROWS) {
            let start = b * BLOCK_ROWS;
            let end = (start + BLOCK_ROWS).min(n);
            match column {
                ColumnRef::String(s) => {
                    let mut offsets = Vec::new();
                    let mut ids = Vec::new();
                    s.read_multi_ids(b, &mut offsets, &mut ids)?;
                    for (i, row) in (start..end).enumerate() {
                        let row_ids = &ids[offsets[i] as usize..offsets[i + 1] as usize];
                        let mut values = Vec::with_capacity(row_ids.len());
                        for id in row_ids {
                            values.push(
                                s.value(*id)?
                                    .map_or(Value::Null, |v| Value::String(v.into_owned())),
                            );
                        }
                        let v = if s.is_multi_value() && values.len() != 1 {
                            Value::Array(values)
                        } else {
                            values.into_iter().next().unwrap_or(Value::Null)
                        };
                        out[row].insert(col.name.clone(), v);
                    }
                }
                ColumnRef::Numeric(c) => {
                    let is_long = c.kind() == crate::codec::numeric::NumKind::Long;
                    if is_long {
                        c.read_i64(b, &mut longs)?;
                    } else {
                        c.read_f64(b, &mut doubles)?;
                    }
                    for (i, row) in (start..end).enumerate() {
                        let null = c.nulls().is_some_and(|nb| nb.contains(row as u32));
                        let v = if null {
                            Value::Null
                        } else if is_long {
                            json!(longs[i])
                        } else {
                            json!(doubles[i])
                        };
                        out[row].insert(col.name.clone(), v);
                    }
                }
                ColumnRef::Sketch(c) => {
                    let mut sketches = Vec::new();
                    c.read(b, &mut sketches)?;
                    for (i, row) in (start..end).enumerate() {
                        out[row].insert(col.name.clone(), json!(sketches[i].estimate()));
                    }
                }
            }
        }
    }
    Ok(out)
}
