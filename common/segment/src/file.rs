//! An immutable segment file, memory-mapped, serving [`SegmentReader`]. Opening checks the
//! whole file (layout, version, every CRC) and fails with the segment and part named.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use roaring::RoaringBitmap;

use eddy_types::SegmentId;

use crate::BLOCK_ROWS;
use crate::codec::numeric::NumericBlocks;
use crate::codec::sketches::SketchBlocks;
use crate::error::{Result, SegmentError};
use crate::format::{
    FORMAT_VERSION, Footer, HEADER_LEN, MAGIC, TAIL_MAGIC, TRAILER_LEN, describe_part, part_name,
};
use crate::reader::{ColumnRef, NumericColumn, SegmentReader};
use crate::schema::{ColumnStats, ColumnType, SegmentSchema};

mod numeric;
mod string;

use numeric::{FileLongIndex, FileNumeric, FileSketch, open_indexed_long};
use string::{FileString, open_string};

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

fn block_bounds(block: usize, rows: usize) -> (usize, usize) {
    let start = block * BLOCK_ROWS;
    (start, (start + BLOCK_ROWS).min(rows))
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
