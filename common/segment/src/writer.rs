//! Writes a segment file from columns whose rows are already in their final order and whose
//! string dictionaries are already sorted (see `incremental::persist`, which prepares both).

use std::io::Write;
use std::path::Path;

use roaring::RoaringBitmap;

use eddy_types::SegmentId;

use crate::BLOCK_ROWS;
use crate::codec::numeric::{self, NumValues};
use crate::codec::{bitmaps, dictionary, ids, sketches};
use crate::error::{Result, SegmentError};
use crate::format::{FORMAT_VERSION, Footer, HEADER_LEN, MAGIC, PartRef, TAIL_MAGIC, part_name};
use crate::hll::{Hll, hash_i64, hash_str};
use crate::schema::{ColumnStats, SegmentSchema};

/// A column ready to write. String dictionaries hold the sorted distinct non-null values; id
/// `i + 1` stands for `dict[i]` and id 0 for null.
#[derive(Debug, Clone)]
pub enum ColumnData {
    String {
        dict: Vec<String>,
        ids: Vec<u32>,
    },
    MultiString {
        dict: Vec<String>,
        offsets: Vec<u32>,
        ids: Vec<u32>,
    },
    Long {
        values: Vec<i64>,
        nulls: RoaringBitmap,
    },
    Float {
        values: Vec<f32>,
        nulls: RoaringBitmap,
    },
    Double {
        values: Vec<f64>,
        nulls: RoaringBitmap,
    },
    Sketch {
        sketches: Vec<Hll>,
    },
}

#[derive(Debug, Clone)]
pub struct SegmentData {
    pub id: SegmentId,
    pub schema: SegmentSchema,
    pub time_sorted: bool,
    pub time: Vec<i64>,
    /// Aligned with `schema.columns`.
    pub columns: Vec<ColumnData>,
}

impl SegmentData {
    pub fn num_rows(&self) -> usize {
        self.time.len()
    }
}

struct PartSink<W: Write> {
    out: W,
    offset: u64,
    parts: Vec<PartRef>,
}

impl<W: Write> PartSink<W> {
    fn put(&mut self, name: String, bytes: &[u8]) -> std::io::Result<u64> {
        self.out.write_all(bytes)?;
        self.parts.push(PartRef {
            name,
            offset: self.offset,
            len: bytes.len() as u64,
            crc32: crc32fast::hash(bytes),
        });
        self.offset += bytes.len() as u64;
        Ok(bytes.len() as u64)
    }
}

/// Writes the segment to `path` (created or truncated) and fsyncs it. Returns its size.
pub fn write_file(path: &Path, data: &SegmentData) -> Result<u64> {
    let io = |e| SegmentError::Io {
        segment: data.id.to_string(),
        source: e,
    };
    let file = std::fs::File::create(path).map_err(io)?;
    let mut buffered = std::io::BufWriter::with_capacity(1 << 20, file);
    let size = write_to(&mut buffered, data).map_err(io)?;
    let file = buffered.into_inner().map_err(|e| io(e.into_error()))?;
    file.sync_all().map_err(io)?;
    Ok(size)
}

/// Serializes the segment into memory.
pub fn write_vec(data: &SegmentData) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    write_to(&mut out, data).map_err(|e| SegmentError::Io {
        segment: data.id.to_string(),
        source: e,
    })?;
    Ok(out)
}

fn write_to<W: Write>(out: W, data: &SegmentData) -> std::io::Result<u64> {
    check_shape(data).map_err(std::io::Error::other)?;
    let mut sink = PartSink {
        out,
        offset: 0,
        parts: Vec::new(),
    };
    let mut header = Vec::with_capacity(HEADER_LEN);
    header.extend_from_slice(MAGIC);
    header.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    header.extend_from_slice(&0u32.to_le_bytes());
    sink.out.write_all(&header)?;
    sink.offset = HEADER_LEN as u64;

    sink.put(
        "__time".into(),
        &numeric::encode(NumValues::Long(&data.time), &|_| false),
    )?;
    let mut stats = Vec::with_capacity(data.columns.len());
    for (i, (col, schema)) in data.columns.iter().zip(&data.schema.columns).enumerate() {
        stats.push(write_column(&mut sink, i, col, schema.has_bitmap)?);
    }
    let footer = Footer {
        format_version: FORMAT_VERSION,
        segment_id: data.id.clone(),
        num_rows: data.num_rows() as u64,
        block_rows: BLOCK_ROWS as u32,
        time_sorted: data.time_sorted,
        min_time: data.time.iter().copied().min(),
        max_time: data.time.iter().copied().max(),
        schema: data.schema.clone(),
        stats,
        parts: sink.parts.clone(),
    };
    let footer_bytes = serde_json::to_vec(&footer).map_err(std::io::Error::other)?;
    let footer_offset = sink.offset;
    sink.out.write_all(&footer_bytes)?;
    let mut trailer = Vec::with_capacity(24);
    trailer.extend_from_slice(&footer_offset.to_le_bytes());
    trailer.extend_from_slice(&(footer_bytes.len() as u32).to_le_bytes());
    trailer.extend_from_slice(&crc32fast::hash(&footer_bytes).to_le_bytes());
    trailer.extend_from_slice(TAIL_MAGIC);
    sink.out.write_all(&trailer)?;
    sink.out.flush()?;
    Ok(footer_offset + footer_bytes.len() as u64 + trailer.len() as u64)
}

fn check_shape(data: &SegmentData) -> std::result::Result<(), String> {
    let n = data.num_rows();
    if data.columns.len() != data.schema.columns.len() {
        return Err(format!(
            "{} columns for {} in the schema",
            data.columns.len(),
            data.schema.columns.len()
        ));
    }
    for (col, schema) in data.columns.iter().zip(&data.schema.columns) {
        let rows = match col {
            ColumnData::String { ids, .. } => ids.len(),
            ColumnData::MultiString { offsets, .. } => offsets.len().saturating_sub(1),
            ColumnData::Long { values, .. } => values.len(),
            ColumnData::Float { values, .. } => values.len(),
            ColumnData::Double { values, .. } => values.len(),
            ColumnData::Sketch { sketches } => sketches.len(),
        };
        if rows != n {
            return Err(format!(
                "column {:?} has {rows} rows, the segment has {n}",
                schema.name
            ));
        }
    }
    Ok(())
}

/// One bitmap per id. Rows arrive in ascending order, so each bitmap is built by appending.
fn bitmaps_for(
    cardinality: usize,
    rows_ids: impl Iterator<Item = (u32, u32)>,
) -> Vec<RoaringBitmap> {
    let mut bms = vec![RoaringBitmap::new(); cardinality];
    for (row, id) in rows_ids {
        // A row repeating a value (multi-value arrays keep duplicates) is already there.
        let _ = bms[id as usize].try_push(row);
    }
    bms
}

fn encode_bitmaps(bms: &[RoaringBitmap]) -> std::io::Result<Vec<u8>> {
    bitmaps::encode(bms).map_err(std::io::Error::other)
}

fn write_column<W: Write>(
    sink: &mut PartSink<W>,
    i: usize,
    col: &ColumnData,
    with_bitmaps: bool,
) -> std::io::Result<ColumnStats> {
    let mut stats = ColumnStats::default();
    let mut size = 0;
    match col {
        ColumnData::String { dict, ids: row_ids } => {
            size += write_dictionary(sink, i, dict, &mut stats)?;
            size += sink.put(part_name(i, "ids"), &ids::encode(row_ids))?;
            stats.has_nulls = row_ids.contains(&0);
            if with_bitmaps {
                let bms = bitmaps_for(
                    dict.len() + 1,
                    row_ids.iter().enumerate().map(|(r, id)| (r as u32, *id)),
                );
                size += sink.put(part_name(i, "bitmaps"), &encode_bitmaps(&bms)?)?;
            }
        }
        ColumnData::MultiString {
            dict,
            offsets,
            ids: values,
        } => {
            size += write_dictionary(sink, i, dict, &mut stats)?;
            size += sink.put(part_name(i, "offsets"), &ids::encode(offsets))?;
            size += sink.put(part_name(i, "ids"), &ids::encode(values))?;
            let rows = offsets.windows(2).enumerate().flat_map(|(r, w)| {
                values[w[0] as usize..w[1] as usize]
                    .iter()
                    .map(move |id| (r as u32, *id))
            });
            // An empty row holds the null id.
            stats.has_nulls = values.contains(&0) || offsets.windows(2).any(|w| w[0] == w[1]);
            if with_bitmaps {
                let bms = bitmaps_for(dict.len() + 1, rows);
                size += sink.put(part_name(i, "bitmaps"), &encode_bitmaps(&bms)?)?;
            }
        }
        ColumnData::Long { values, nulls } if with_bitmaps => {
            let mut distinct: Vec<i64> = values
                .iter()
                .enumerate()
                .filter(|(r, _)| !nulls.contains(*r as u32))
                .map(|(_, v)| *v)
                .collect();
            distinct.sort_unstable();
            distinct.dedup();
            let row_ids: Vec<u32> = values
                .iter()
                .enumerate()
                .map(|(r, v)| {
                    if nulls.contains(r as u32) {
                        0
                    } else {
                        distinct.binary_search(v).map_or(0, |p| p as u32 + 1)
                    }
                })
                .collect();
            let mut dict_bytes = Vec::with_capacity(distinct.len() * 8);
            distinct
                .iter()
                .for_each(|v| dict_bytes.extend_from_slice(&v.to_le_bytes()));
            size += sink.put(part_name(i, "values"), &dict_bytes)?;
            size += sink.put(part_name(i, "ids"), &ids::encode(&row_ids))?;
            let bms = bitmaps_for(
                distinct.len() + 1,
                row_ids.iter().enumerate().map(|(r, id)| (r as u32, *id)),
            );
            size += sink.put(part_name(i, "bitmaps"), &encode_bitmaps(&bms)?)?;
            let mut ranges = Vec::new();
            for chunk in values.chunks(BLOCK_ROWS).zip(row_ids.chunks(BLOCK_ROWS)) {
                let present: Vec<i64> = chunk
                    .0
                    .iter()
                    .zip(chunk.1)
                    .filter(|(_, id)| **id != 0)
                    .map(|(v, _)| *v)
                    .collect();
                let (flag, lo, hi) = match (present.iter().min(), present.iter().max()) {
                    (Some(lo), Some(hi)) => (1u8, *lo, *hi),
                    _ => (0u8, 0, 0),
                };
                ranges.push(flag);
                ranges.extend_from_slice(&lo.to_le_bytes());
                ranges.extend_from_slice(&hi.to_le_bytes());
            }
            size += sink.put(part_name(i, "ranges"), &ranges)?;
            // Mostly-distinct values: reading a value per row through the ids is a random
            // gather, so the values are kept in row order too.
            if distinct.len() * ROW_ORDER_VALUES_IDS_PER_ROW > values.len() {
                size += sink.put(
                    part_name(i, "rowvalues"),
                    &numeric::encode(NumValues::Long(values), &|r| nulls.contains(r as u32)),
                )?;
            }
            let mut sketch = Hll::new();
            distinct.iter().for_each(|v| sketch.add_hash(hash_i64(*v)));
            sketch.normalize();
            let mut sketch_bytes = Vec::new();
            sketch.to_bytes(&mut sketch_bytes);
            size += sink.put(part_name(i, "hll"), &sketch_bytes)?;
            stats.cardinality = Some(distinct.len() as u64);
            stats.has_nulls = !nulls.is_empty();
        }
        ColumnData::Long { values, nulls } => {
            size += write_numeric(sink, i, NumValues::Long(values), nulls, &mut stats)?;
        }
        ColumnData::Float { values, nulls } => {
            size += write_numeric(sink, i, NumValues::Float(values), nulls, &mut stats)?;
        }
        ColumnData::Double { values, nulls } => {
            size += write_numeric(sink, i, NumValues::Double(values), nulls, &mut stats)?;
        }
        ColumnData::Sketch { sketches: s } => {
            size += sink.put(part_name(i, "sketches"), &sketches::encode(s))?;
        }
    }
    stats.size = size;
    Ok(stats)
}

fn write_dictionary<W: Write>(
    sink: &mut PartSink<W>,
    i: usize,
    dict: &[String],
    stats: &mut ColumnStats,
) -> std::io::Result<u64> {
    if dict.windows(2).any(|w| w[0] >= w[1]) {
        return Err(std::io::Error::other(format!(
            "column {i}: dictionary is not sorted and distinct"
        )));
    }
    let mut size = sink.put(
        part_name(i, "dict"),
        &dictionary::encode(dict.iter().map(String::as_str)),
    )?;
    let mut sketch = Hll::new();
    dict.iter().for_each(|v| sketch.add_hash(hash_str(v)));
    sketch.normalize();
    let mut sketch_bytes = Vec::new();
    sketch.to_bytes(&mut sketch_bytes);
    size += sink.put(part_name(i, "hll"), &sketch_bytes)?;
    stats.cardinality = Some(dict.len() as u64);
    stats.min_value = dict.first().cloned();
    stats.max_value = dict.last().cloned();
    Ok(size)
}

/// Indexed longs with more than one distinct value per this many rows also store their values in
/// row order (sums over such a column ran 2.6x slower through the ids).
const ROW_ORDER_VALUES_IDS_PER_ROW: usize = 4;

fn write_numeric<W: Write>(
    sink: &mut PartSink<W>,
    i: usize,
    values: NumValues<'_>,
    nulls: &RoaringBitmap,
    stats: &mut ColumnStats,
) -> std::io::Result<u64> {
    let mut size = sink.put(
        part_name(i, "values"),
        &numeric::encode(values, &|r| nulls.contains(r as u32)),
    )?;
    if !nulls.is_empty() {
        let mut bytes = Vec::new();
        nulls.serialize_into(&mut bytes)?;
        size += sink.put(part_name(i, "nulls"), &bytes)?;
        stats.has_nulls = true;
    }
    Ok(size)
}
