//! String columns of a segment file: the paged dictionary, bit-packed ids (or offsets and ids
//! for multi-value columns), optional bitmaps and the values sketch.

use std::borrow::Cow;
use std::ops::{Bound, Range};
use std::sync::OnceLock;

use bytes::Bytes;
use roaring::RoaringBitmap;

use super::{Origin, block_bounds};
use crate::BLOCK_ROWS;
use crate::codec::bitmaps::BitmapIndex;
use crate::codec::dictionary::StringDict;
use crate::codec::ids::PackedIds;
use crate::error::Result;
use crate::hll::Hll;
use crate::reader::StringColumn;

pub(super) fn open_string(
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

pub(super) struct FileString {
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
        // Hits are set in a bitset (no branch per row), then turned into a bitmap at once.
        let mut hits = vec![0u8; rows.div_ceil(8)];
        let (mut offsets, mut block_ids) = (Vec::new(), Vec::new());
        for block in 0..rows.div_ceil(BLOCK_ROWS) {
            let base = block * BLOCK_ROWS;
            if self.single.is_some() {
                block_ids.resize(BLOCK_ROWS.min(rows - base), 0);
                self.read_ids(block, &mut block_ids)?;
                for (r, id) in block_ids.iter().enumerate() {
                    let row = base + r;
                    let hit = wanted.get(*id as usize).copied().unwrap_or(false);
                    hits[row >> 3] |= u8::from(hit) << (row & 7);
                }
                continue;
            }
            self.read_multi_ids(block, &mut offsets, &mut block_ids)?;
            for (r, w) in offsets.windows(2).enumerate() {
                let row = &block_ids[w[0] as usize..w[1] as usize];
                // An empty row of a multi-value column holds the null id.
                let hit = if row.is_empty() {
                    wanted[0]
                } else {
                    row.iter().any(|id| wanted[*id as usize])
                };
                let row = base + r;
                hits[row >> 3] |= u8::from(hit) << (row & 7);
            }
        }
        Ok(RoaringBitmap::from_lsb0_bytes(0, &hits))
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
