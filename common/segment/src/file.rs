//! An immutable segment file, memory-mapped, serving [`SegmentReader`]. Opening checks the
//! whole file (layout, version, every CRC) and fails with the segment and part named.

use std::borrow::Cow;
use std::collections::HashMap;
use std::ops::{Bound, Range};
use std::path::Path;
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use roaring::RoaringBitmap;

use eddy_types::SegmentId;

use crate::BLOCK_ROWS;
use crate::codec::bitmaps::BitmapIndex;
use crate::codec::dictionary::StringDict;
use crate::codec::ids::PackedIds;
use crate::codec::numeric::{NumKind, NumericBlocks};
use crate::codec::sketches::SketchBlocks;
use crate::error::{Result, SegmentError};
use crate::format::{
    FORMAT_VERSION, Footer, HEADER_LEN, MAGIC, TAIL_MAGIC, TRAILER_LEN, describe_part, part_name,
};
use crate::hll::Hll;
use crate::reader::{
    ColumnRef, LongIndex, NumericColumn, SegmentReader, SketchColumn, StringColumn,
};
use crate::schema::{ColumnStats, ColumnType, SegmentSchema};

pub struct SegmentFile {
    footer: Footer,
    time: FileNumeric,
    columns: Vec<FileColumn>,
    by_name: HashMap<String, usize>,
    size: u64,
}

enum FileColumn {
    String(FileString),
    Numeric(FileNumeric),
    IndexedLong(FileLongIndex),
    Sketch(FileSketch),
}

/// Names a column in errors: the segment and the column.
#[derive(Clone)]
struct Origin {
    segment: Arc<str>,
    column: Arc<str>,
}

impl Origin {
    fn err(&self, what: &str, reason: impl Into<String>) -> SegmentError {
        SegmentError::corrupt(
            &*self.segment,
            format!("column {:?} ({what})", &*self.column),
            reason,
        )
    }
}

fn u32_at(d: &[u8], pos: usize) -> u32 {
    u32::from_le_bytes([d[pos], d[pos + 1], d[pos + 2], d[pos + 3]])
}

impl SegmentFile {
    /// Maps and verifies the file at `path`.
    pub fn open(path: &Path) -> Result<Self> {
        let label = path.display().to_string();
        let file = std::fs::File::open(path).map_err(|e| SegmentError::Io {
            segment: label.clone(),
            source: e,
        })?;
        // SAFETY: segment files are immutable once written; the cache never rewrites a file in
        // place (it writes a temporary file and renames it).
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| SegmentError::Io {
            segment: label.clone(),
            source: e,
        })?;
        Self::from_bytes(Bytes::from_owner(map), &label)
    }

    /// Verifies and opens a segment held in memory. `label` names it in errors until its footer
    /// (which holds its id) has been read.
    pub fn from_bytes(bytes: Bytes, label: &str) -> Result<Self> {
        let corrupt = |part: &str, reason: String| SegmentError::corrupt(label, part, reason);
        if bytes.len() < HEADER_LEN + TRAILER_LEN {
            return Err(corrupt(
                "header",
                format!("file is {} bytes, too short to be a segment", bytes.len()),
            ));
        }
        if &bytes[..8] != MAGIC {
            return Err(corrupt(
                "header",
                "not an Eddy segment (bad magic number)".into(),
            ));
        }
        if u32_at(&bytes, 12) != 0 {
            return Err(corrupt(
                "header",
                "reserved header bytes are not zero".into(),
            ));
        }
        let version = u32_at(&bytes, 8);
        if version > FORMAT_VERSION {
            return Err(SegmentError::UnsupportedVersion {
                segment: label.to_string(),
                found: version,
                supported: FORMAT_VERSION,
            });
        }
        let t = bytes.len() - TRAILER_LEN;
        if &bytes[t + 16..] != TAIL_MAGIC {
            return Err(corrupt(
                "trailer",
                "missing end marker: the file is truncated".into(),
            ));
        }
        let mut off = [0u8; 8];
        off.copy_from_slice(&bytes[t..t + 8]);
        let footer_offset = u64::from_le_bytes(off) as usize;
        let footer_len = u32_at(&bytes, t + 8) as usize;
        let footer_crc = u32_at(&bytes, t + 12);
        if footer_offset < HEADER_LEN || footer_offset.checked_add(footer_len) != Some(t) {
            return Err(corrupt(
                "footer",
                "footer position does not match the file length".into(),
            ));
        }
        let footer_bytes = &bytes[footer_offset..t];
        if crc32fast::hash(footer_bytes) != footer_crc {
            return Err(corrupt("footer", "checksum mismatch".into()));
        }
        let footer: Footer = serde_json::from_slice(footer_bytes)
            .map_err(|e| corrupt("footer", format!("does not parse: {e}")))?;
        let name: Arc<str> = footer.segment_id.to_string().into();
        for p in &footer.parts {
            let end = p.offset.checked_add(p.len);
            if p.offset < HEADER_LEN as u64 || end.is_none_or(|e| e > footer_offset as u64) {
                return Err(SegmentError::corrupt(
                    &*name,
                    describe_part(&footer.schema, &p.name),
                    "lies outside the file",
                ));
            }
            let slice = &bytes[p.offset as usize..(p.offset + p.len) as usize];
            if crc32fast::hash(slice) != p.crc32 {
                return Err(SegmentError::corrupt(
                    &*name,
                    describe_part(&footer.schema, &p.name),
                    "checksum mismatch",
                ));
            }
        }
        if footer.stats.len() != footer.schema.columns.len()
            || footer.block_rows as usize != BLOCK_ROWS
        {
            return Err(SegmentError::corrupt(
                &*name,
                "footer",
                "column statistics or block size do not match the schema",
            ));
        }
        let rows = footer.num_rows as usize;
        let part = |pname: &str| -> Option<Bytes> {
            footer
                .part(pname)
                .map(|p| bytes.slice(p.offset as usize..(p.offset + p.len) as usize))
        };
        let time_origin = Origin {
            segment: name.clone(),
            column: "__time".into(),
        };
        let time_bytes = part("__time").ok_or_else(|| time_origin.err("values", "missing"))?;
        let time = FileNumeric {
            origin: time_origin.clone(),
            blocks: NumericBlocks::open(time_bytes, rows)
                .map_err(|e| time_origin.err("values", e))?,
            nulls: None,
        };
        let mut columns = Vec::with_capacity(footer.schema.columns.len());
        let mut by_name = HashMap::new();
        for (i, c) in footer.schema.columns.iter().enumerate() {
            let origin = Origin {
                segment: name.clone(),
                column: c.name.as_str().into(),
            };
            let need =
                |kind: &str| part(&part_name(i, kind)).ok_or_else(|| origin.err(kind, "missing"));
            let col = match c.kind {
                ColumnType::String => FileColumn::String(open_string(&origin, rows, c, &need)?),
                ColumnType::Long if c.has_bitmap => {
                    let row_values = part(&part_name(i, "rowvalues"));
                    FileColumn::IndexedLong(open_indexed_long(&origin, rows, &need, row_values)?)
                }
                ColumnType::Long | ColumnType::Float | ColumnType::Double => {
                    let blocks = NumericBlocks::open(need("values")?, rows)
                        .map_err(|e| origin.err("values", e))?;
                    let nulls = match part(&part_name(i, "nulls")) {
                        Some(b) => Some(
                            RoaringBitmap::deserialize_from(&b[..])
                                .map_err(|e| origin.err("nulls", e.to_string()))?,
                        ),
                        None => None,
                    };
                    FileColumn::Numeric(FileNumeric {
                        origin: origin.clone(),
                        blocks,
                        nulls,
                    })
                }
                ColumnType::HyperUnique => FileColumn::Sketch(FileSketch {
                    origin: origin.clone(),
                    blocks: SketchBlocks::open(need("sketches")?, rows)
                        .map_err(|e| origin.err("sketches", e))?,
                }),
            };
            by_name.insert(c.name.clone(), i);
            columns.push(col);
        }
        let size = bytes.len() as u64;
        Ok(SegmentFile {
            footer,
            time,
            columns,
            by_name,
            size,
        })
    }

    pub fn footer(&self) -> &Footer {
        &self.footer
    }
}

fn open_string(
    origin: &Origin,
    rows: usize,
    schema: &crate::schema::ColumnSchema,
    need: &dyn Fn(&str) -> Result<Bytes>,
) -> Result<FileString> {
    let multi = schema.multi_value;
    let dict = StringDict::open(need("dict")?).map_err(|e| origin.err("dict", e))?;
    let cardinality = dict.len() as u32 + 1;
    let (single, multi_parts) = if multi {
        let offsets = PackedIds::open(need("offsets")?, rows + 1, u32::MAX)
            .map_err(|e| origin.err("offsets", e))?;
        let mut last = [0u32];
        offsets
            .read(rows, &mut last)
            .map_err(|e| origin.err("offsets", e))?;
        let values = PackedIds::open(need("ids")?, last[0] as usize, cardinality - 1)
            .map_err(|e| origin.err("ids", e))?;
        (None, Some((offsets, values)))
    } else {
        (
            Some(
                PackedIds::open(need("ids")?, rows, cardinality - 1)
                    .map_err(|e| origin.err("ids", e))?,
            ),
            None,
        )
    };
    let bitmaps = if schema.has_bitmap {
        Some(
            BitmapIndex::open(need("bitmaps")?, cardinality as usize)
                .map_err(|e| origin.err("bitmaps", e))?,
        )
    } else {
        None
    };
    let sketch_bytes = need("hll")?;
    Ok(FileString {
        origin: origin.clone(),
        dict,
        single,
        multi: multi_parts,
        bitmaps,
        sketch_bytes,
        sketch: OnceLock::new(),
        hashes: OnceLock::new(),
    })
}

struct FileString {
    origin: Origin,
    dict: StringDict,
    single: Option<PackedIds>,
    multi: Option<(PackedIds, PackedIds)>,
    /// None for `createBitmapIndex: false`: rows are found by scanning ids.
    bitmaps: Option<BitmapIndex>,
    sketch_bytes: Bytes,
    sketch: OnceLock<Option<Hll>>,
    hashes: OnceLock<Vec<u64>>,
}

fn block_bounds(block: usize, rows: usize) -> (usize, usize) {
    let start = block * BLOCK_ROWS;
    (start, (start + BLOCK_ROWS).min(rows))
}

impl StringColumn for FileString {
    fn cardinality(&self) -> u32 {
        self.dict.len() as u32 + 1
    }

    fn is_sorted(&self) -> bool {
        true
    }

    fn is_multi_value(&self) -> bool {
        self.multi.is_some()
    }

    fn value(&self, id: u32) -> Result<Option<Cow<'_, str>>> {
        if id == 0 {
            return Ok(None);
        }
        self.dict
            .get(id as usize - 1)
            .map(|s| Some(Cow::Borrowed(s)))
            .map_err(|e| self.origin.err("dict", e))
    }

    fn values(&self, ids: &[u32]) -> Result<Vec<Option<String>>> {
        ids.iter()
            .map(|id| self.value(*id).map(|v| v.map(Cow::into_owned)))
            .collect()
    }

    fn lookup(&self, value: Option<&str>) -> Result<Option<u32>> {
        let Some(v) = value else { return Ok(Some(0)) };
        let found = self
            .dict
            .search(v)
            .map_err(|e| self.origin.err("dict", e))?;
        Ok(found.ok().map(|i| i as u32 + 1))
    }

    fn for_each_value(&self, f: &mut dyn FnMut(u32, &str)) -> Result<()> {
        self.dict
            .for_each(&mut |i, s| f(i as u32 + 1, s))
            .map_err(|e| self.origin.err("dict", e))
    }

    fn id_range(&self, lower: Bound<&str>, upper: Bound<&str>) -> Result<Option<Range<u32>>> {
        let pos = |v: &str| self.dict.search(v).map_err(|e| self.origin.err("dict", e));
        let start = match lower {
            Bound::Unbounded => 0,
            Bound::Included(v) => match pos(v)? {
                Ok(i) | Err(i) => i,
            },
            Bound::Excluded(v) => match pos(v)? {
                Ok(i) => i + 1,
                Err(i) => i,
            },
        };
        let end = match upper {
            Bound::Unbounded => self.dict.len(),
            Bound::Included(v) => match pos(v)? {
                Ok(i) => i + 1,
                Err(i) => i,
            },
            Bound::Excluded(v) => match pos(v)? {
                Ok(i) | Err(i) => i,
            },
        };
        Ok(Some((start as u32 + 1)..(end.max(start) as u32 + 1)))
    }

    fn bitmap(&self, id: u32) -> Result<Cow<'_, RoaringBitmap>> {
        match &self.bitmaps {
            Some(b) => b
                .get(id as usize)
                .map_err(|e| self.origin.err("bitmaps", e)),
            None => self.rows_with_ids(&[id]).map(Cow::Owned),
        }
    }

    fn has_bitmaps(&self) -> bool {
        self.bitmaps.is_some()
    }

    fn row_id(&self, row: u32) -> Result<Option<u32>> {
        let Some(ids) = &self.single else {
            return Ok(None);
        };
        let mut id = [0u32];
        ids.read(row as usize, &mut id)
            .map_err(|e| self.origin.err("ids", e))?;
        Ok(Some(id[0]))
    }

    fn rows_with_ids(&self, ids: &[u32]) -> Result<RoaringBitmap> {
        if let Some(b) = &self.bitmaps {
            let mut maps = Vec::with_capacity(ids.len());
            for id in ids {
                maps.push(
                    b.get(*id as usize)
                        .map_err(|e| self.origin.err("bitmaps", e))?,
                );
            }
            return Ok(roaring::MultiOps::union(maps.iter().map(|m| m.as_ref())));
        }
        // No index: one pass over the ids with a membership table.
        let mut wanted = vec![false; self.cardinality() as usize];
        for id in ids {
            if let Some(w) = wanted.get_mut(*id as usize) {
                *w = true;
            }
        }
        let rows = match (&self.single, &self.multi) {
            (Some(ids), _) => ids.len(),
            (None, Some((offs, _))) => offs.len() - 1,
            (None, None) => return Err(self.origin.err("ids", "missing")),
        };
        let mut out = RoaringBitmap::new();
        let (mut offsets, mut block_ids) = (Vec::new(), Vec::new());
        for block in 0..rows.div_ceil(BLOCK_ROWS) {
            self.read_multi_ids(block, &mut offsets, &mut block_ids)?;
            let base = (block * BLOCK_ROWS) as u32;
            for (r, w) in offsets.windows(2).enumerate() {
                let row = &block_ids[w[0] as usize..w[1] as usize];
                // An empty row of a multi-value column holds the null id.
                let hit = if row.is_empty() {
                    wanted[0]
                } else {
                    row.iter().any(|id| wanted[*id as usize])
                };
                if hit {
                    let _ = out.try_push(base + r as u32);
                }
            }
        }
        Ok(out)
    }

    fn read_ids(&self, block: usize, out: &mut [u32]) -> Result<()> {
        let ids = self.single.as_ref().ok_or_else(|| {
            self.origin
                .err("ids", "read as single-value but it is multi-value")
        })?;
        let (start, end) = block_bounds(block, ids.len());
        ids.read(start, &mut out[..end - start])
            .map_err(|e| self.origin.err("ids", e))
    }

    fn read_multi_ids(
        &self,
        block: usize,
        offsets: &mut Vec<u32>,
        out: &mut Vec<u32>,
    ) -> Result<()> {
        offsets.clear();
        out.clear();
        match (&self.single, &self.multi) {
            (Some(ids), _) => {
                let (start, end) = block_bounds(block, ids.len());
                out.resize(end - start, 0);
                ids.read(start, out)
                    .map_err(|e| self.origin.err("ids", e))?;
                offsets.extend(0..=(end - start) as u32);
                Ok(())
            }
            (None, Some((offs, values))) => {
                let rows = offs.len() - 1;
                let (start, end) = block_bounds(block, rows);
                let mut row_offsets = vec![0u32; end - start + 1];
                offs.read(start, &mut row_offsets)
                    .map_err(|e| self.origin.err("offsets", e))?;
                let (first, last) = (row_offsets[0], row_offsets[end - start]);
                if last < first || last as usize > values.len() {
                    return Err(self.origin.err("offsets", "offsets are not ascending"));
                }
                out.resize((last - first) as usize, 0);
                values
                    .read(first as usize, out)
                    .map_err(|e| self.origin.err("ids", e))?;
                offsets.extend(row_offsets.iter().map(|o| o - first));
                if offsets.windows(2).any(|w| w[1] < w[0]) {
                    return Err(self.origin.err("offsets", "offsets are not ascending"));
                }
                Ok(())
            }
            (None, None) => Err(self.origin.err("ids", "missing")),
        }
    }

    fn block_id_range(&self, block: usize) -> Option<(u32, u32)> {
        self.single.as_ref().and_then(|ids| ids.block_range(block))
    }

    fn values_sketch(&self) -> Option<Cow<'_, Hll>> {
        self.sketch
            .get_or_init(|| Hll::from_bytes(&self.sketch_bytes).ok())
            .as_ref()
            .map(Cow::Borrowed)
    }

    fn value_hashes(&self) -> Result<Cow<'_, [u64]>> {
        if let Some(h) = self.hashes.get() {
            return Ok(Cow::Borrowed(h));
        }
        let mut hashes = vec![0u64; self.cardinality() as usize];
        self.for_each_value(&mut |id, v| hashes[id as usize] = crate::hll::hash_str(v))?;
        Ok(Cow::Borrowed(self.hashes.get_or_init(|| hashes)))
    }
}

struct FileNumeric {
    origin: Origin,
    blocks: NumericBlocks,
    nulls: Option<RoaringBitmap>,
}

/// An indexed long column: sorted values, ids, bitmaps and per-block ranges.
struct FileLongIndex {
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

fn open_indexed_long(
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

struct FileSketch {
    origin: Origin,
    blocks: SketchBlocks,
}

impl SketchColumn for FileSketch {
    fn read(&self, block: usize, out: &mut Vec<Hll>) -> Result<()> {
        self.blocks
            .read(block, out)
            .map_err(|e| self.origin.err("sketches", e))
    }
}

impl SegmentReader for SegmentFile {
    fn segment_id(&self) -> &SegmentId {
        &self.footer.segment_id
    }

    fn num_rows(&self) -> usize {
        self.footer.num_rows as usize
    }

    fn schema(&self) -> &SegmentSchema {
        &self.footer.schema
    }

    fn time_sorted(&self) -> bool {
        self.footer.time_sorted
    }

    fn time(&self) -> &dyn NumericColumn {
        &self.time
    }

    fn column(&self, name: &str) -> Option<ColumnRef<'_>> {
        let i = *self.by_name.get(name)?;
        Some(match &self.columns[i] {
            FileColumn::String(c) => ColumnRef::String(c),
            FileColumn::Numeric(c) => ColumnRef::Numeric(c),
            FileColumn::IndexedLong(c) => ColumnRef::Numeric(c),
            FileColumn::Sketch(c) => ColumnRef::Sketch(c),
        })
    }

    fn column_stats(&self, name: &str) -> Option<ColumnStats> {
        self.by_name
            .get(name)
            .map(|i| self.footer.stats[*i].clone())
    }

    fn time_range(&self) -> Option<(i64, i64)> {
        Some((self.footer.min_time?, self.footer.max_time?))
    }

    fn size_bytes(&self) -> u64 {
        self.size
    }
}
