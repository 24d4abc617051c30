//! In-memory columns of the incremental index and their read views. Dictionaries are in
//! arrival order (not sorted). Bitmap indexes are not kept up to date row by row: the first
//! query that needs one after rows arrived extends every bitmap of that dimension over the new
//! rows in one pass, so adding a row touches no bitmap and filters still work as on files.

use std::borrow::Cow;
use std::hash::BuildHasher;
use std::ops::{Bound, Range};
use std::sync::{Mutex, OnceLock};

use hashbrown::DefaultHashBuilder;
use roaring::RoaringBitmap;

use eddy_types::spec::ingest::MultiValueHandling;

use crate::BLOCK_ROWS;
use crate::codec::numeric::NumKind;
use crate::error::Result;
use crate::hll::Hll;
use crate::reader::{LongIndex, NumericColumn, SketchColumn, StringColumn};

use super::id_table::IdTable;

fn block_bounds(block: usize, rows: usize) -> (usize, usize) {
    let start = (block * BLOCK_ROWS).min(rows);
    (start, (start + BLOCK_ROWS).min(rows))
}

/// A string dimension being built. Dictionary values live end to end in one arena (no
/// allocation per value); the lookup table holds ids, hashed by their value (see
/// [`IdTable`] for why it is not a general hash table).
pub(crate) struct MemStringDim {
    pub handling: MultiValueHandling,
    arena: String,
    /// End of each id's value in the arena (id 0, null, is empty).
    ends: Vec<u32>,
    lookup: IdTable,
    hashes: Vec<u64>,
    hasher: DefaultHashBuilder,
    /// One id per row while every row had at most one value.
    ids: Vec<u32>,
    /// Per-row offsets and ids once some row had several values.
    multi: Option<(Vec<u32>, Vec<u32>)>,
    bitmaps: LazyBitmaps,
    has_nulls: bool,
    /// Rows the index expects (see [`MemStringDim::reserve`]).
    row_capacity: usize,
    pub dict_bytes: usize,
}

/// One bitmap per dictionary id, built when read. `ready` holds them for the current rows;
/// a new row moves them to `built` (with how many rows they cover) for the next read to extend.
#[derive(Default)]
struct LazyBitmaps {
    ready: OnceLock<Vec<RoaringBitmap>>,
    built: Mutex<(Vec<RoaringBitmap>, usize)>,
}

impl MemStringDim {
    pub fn new(handling: MultiValueHandling) -> Self {
        MemStringDim {
            handling,
            arena: String::new(),
            ends: vec![0],
            lookup: IdTable::default(),
            hashes: vec![0],
            hasher: DefaultHashBuilder::default(),
            ids: Vec::new(),
            multi: None,
            bitmaps: LazyBitmaps::default(),
            has_nulls: false,
            row_capacity: 0,
            dict_bytes: 0,
        }
    }

    /// Room for `rows` rows of one value each (and, once the dimension shows itself nearly
    /// unique per row, for as many dictionary values).
    pub fn reserve(&mut self, rows: usize) {
        self.ids.reserve(rows);
        self.row_capacity = rows;
    }

    /// A dimension with about one new value per row (event ids, page view ids) would rehash
    /// its table and regrow its arena many times: when the table is full, after 65,536 rows
    /// of which nine in ten brought a new value, make room for a value per expected row at
    /// once. (Sizing a table for values that never come would spread a small dictionary over
    /// a large one and cost a cache miss per lookup, hence the strict test.)
    /// Returns whether the lookup table was rebuilt.
    fn grow_for_unique_values(&mut self) -> bool {
        let rows = self.num_rows();
        let values = self.ends.len();
        if self.lookup.len() < self.lookup.capacity()
            || rows < 1 << 16
            || values * 10 < rows * 9
            || self.row_capacity <= rows
        {
            return false;
        }
        let more = self.row_capacity - rows;
        let hashes = &self.hashes;
        let rebuilt = self.lookup.reserve(more, |id| hashes[id as usize]);
        self.ends.reserve(more);
        self.hashes.reserve(more);
        // Values tend to grow longer (counters gain digits): leave a quarter more room, so
        // the arena is not copied to a new allocation when nearly full.
        let average = self.arena.len() / values + 1;
        self.arena.reserve(more * (average + average / 4));
        rebuilt
    }

    fn text(&self, id: u32) -> &str {
        let id = id as usize;
        &self.arena[self.ends[id - 1] as usize..self.ends[id] as usize]
    }

    fn find(&self, v: &str, hash: u64) -> Option<u32> {
        self.lookup
            .find(hash, v.as_bytes(), self.arena.as_bytes())
            .ok()
    }

    pub fn hash(&self, v: &str) -> u64 {
        self.hasher.hash_one(v)
    }

    /// Whether a lookup is likely to miss the caches, so worth prefetching.
    pub fn lookups_miss(&self) -> bool {
        self.lookup.is_large()
    }

    /// Starts fetching what interning a value with `hash` will probe first (see
    /// [`IncrementalIndex`](crate::IncrementalIndex)'s row loop).
    pub fn prefetch_slot(&self, hash: u64) {
        self.lookup.prefetch_slot(hash);
    }

    /// Starts fetching the stored value a lookup of `hash` will compare with.
    pub fn prefetch_value(&self, hash: u64) {
        self.lookup.prefetch_value(hash, self.arena.as_bytes());
    }

    pub fn intern(&mut self, v: &str) -> u32 {
        self.intern_hashed(v, self.hash(v))
    }

    /// [`MemStringDim::intern`] for a value whose [`MemStringDim::hash`] is known.
    pub fn intern_hashed(&mut self, v: &str, hash: u64) -> u32 {
        let mut slot = match self.lookup.find(hash, v.as_bytes(), self.arena.as_bytes()) {
            Ok(id) => return id,
            Err(slot) => slot,
        };
        let grown = self.grow_for_unique_values();
        let hashes = &self.hashes;
        if self.lookup.reserve(1, |id| hashes[id as usize]) || grown {
            slot = self
                .lookup
                .find(hash, v.as_bytes(), self.arena.as_bytes())
                .expect_err("a value not in the table before it grew");
        }
        let id = self.ends.len() as u32;
        let start = self.arena.len() as u32;
        self.arena.push_str(v);
        self.ends.push(self.arena.len() as u32);
        self.hashes.push(hash);
        // Value bytes, its end and hash, and a table slot (16 bytes, at most 3/4 full).
        self.dict_bytes += v.len() + 4 + 8 + 21;
        self.lookup.insert_at(slot, hash, id, start, v.len() as u32);
        id
    }

    pub fn value_of(&self, id: u32) -> Option<&str> {
        (id != 0 && (id as usize) < self.ends.len()).then(|| self.text(id))
    }

    pub fn num_ids(&self) -> usize {
        self.ends.len()
    }

    pub fn is_multi(&self) -> bool {
        self.multi.is_some()
    }

    /// Ids of `row` (a single id unless multi-value).
    pub fn row_ids(&self, row: usize) -> &[u32] {
        match &self.multi {
            None => std::slice::from_ref(&self.ids[row]),
            Some((offsets, ids)) => &ids[offsets[row] as usize..offsets[row + 1] as usize],
        }
    }

    /// Appends a row with `ids` (never empty: null rows pass `[0]`).
    pub fn push_row(&mut self, ids: &[u32]) {
        self.bitmaps.stale(self.num_rows());
        if ids.len() > 1 && self.multi.is_none() {
            let offsets: Vec<u32> = (0..=self.ids.len() as u32).collect();
            self.multi = Some((offsets, std::mem::take(&mut self.ids)));
        }
        match &mut self.multi {
            None => self.ids.push(ids[0]),
            Some((offsets, values)) => {
                values.extend_from_slice(ids);
                offsets.push(values.len() as u32);
            }
        }
        self.has_nulls |= ids[0] == 0;
    }

    fn num_rows(&self) -> usize {
        match &self.multi {
            None => self.ids.len(),
            Some((offsets, _)) => offsets.len() - 1,
        }
    }

    /// Whether some row has no value.
    pub fn has_nulls(&self) -> bool {
        self.has_nulls
    }

    /// Gives `rows` existing rows a null value (for a dimension discovered late).
    pub fn backfill_nulls(&mut self, rows: usize) {
        self.bitmaps.stale(self.num_rows());
        self.ids.resize(rows, 0);
        self.has_nulls |= rows > 0;
    }

    /// The bitmaps of every id over every row, extending what an earlier read built.
    fn bitmaps(&self) -> &[RoaringBitmap] {
        self.bitmaps.ready.get_or_init(|| {
            let mut built = self.bitmaps.built.lock().unwrap_or_else(|p| p.into_inner());
            let (mut bitmaps, from) = std::mem::take(&mut *built);
            bitmaps.resize_with(self.num_ids(), RoaringBitmap::new);
            let rows = self.num_rows();
            match &self.multi {
                None => {
                    for (row, id) in self.ids.iter().enumerate().skip(from) {
                        bitmaps[*id as usize].insert(row as u32);
                    }
                }
                Some(_) => {
                    for row in from..rows {
                        for id in self.row_ids(row) {
                            bitmaps[*id as usize].insert(row as u32);
                        }
                    }
                }
            }
            bitmaps
        })
    }

    pub fn sorted_order(&self) -> Vec<u32> {
        let mut order: Vec<u32> = (1..self.ends.len() as u32).collect();
        order.sort_unstable_by(|a, b| self.text(*a).cmp(self.text(*b)));
        order
    }

    pub fn ids_flat(&self) -> (&[u32], Option<&[u32]>) {
        match &self.multi {
            None => (&self.ids, None),
            Some((offsets, ids)) => (ids, Some(offsets)),
        }
    }
}

impl StringColumn for MemStringDim {
    fn cardinality(&self) -> u32 {
        self.ends.len() as u32
    }

    fn is_sorted(&self) -> bool {
        false
    }

    fn is_multi_value(&self) -> bool {
        self.multi.is_some()
    }

    fn value(&self, id: u32) -> Result<Option<Cow<'_, str>>> {
        Ok(self.value_of(id).map(Cow::Borrowed))
    }

    fn lookup(&self, value: Option<&str>) -> Result<Option<u32>> {
        Ok(match value {
            None => Some(0),
            Some(v) => self.find(v, self.hash(v)),
        })
    }

    fn for_each_value(&self, f: &mut dyn FnMut(u32, &str)) -> Result<()> {
        for id in 1..self.ends.len() as u32 {
            f(id, self.text(id));
        }
        Ok(())
    }

    fn id_range(&self, _lower: Bound<&str>, _upper: Bound<&str>) -> Result<Option<Range<u32>>> {
        Ok(None)
    }

    fn bitmap(&self, id: u32) -> Result<Cow<'_, RoaringBitmap>> {
        Ok(self
            .bitmaps()
            .get(id as usize)
            .map_or_else(|| Cow::Owned(RoaringBitmap::new()), Cow::Borrowed))
    }

    fn read_ids(&self, block: usize, out: &mut [u32]) -> Result<()> {
        match &self.multi {
            None => {
                let (s, e) = block_bounds(block, self.ids.len());
                out[..e - s].copy_from_slice(&self.ids[s..e]);
            }
            Some((offsets, ids)) => {
                let (s, e) = block_bounds(block, offsets.len() - 1);
                for (o, row) in out.iter_mut().zip(s..e) {
                    *o = ids[offsets[row] as usize];
                }
            }
        }
        Ok(())
    }

    fn read_multi_ids(
        &self,
        block: usize,
        offsets: &mut Vec<u32>,
        out: &mut Vec<u32>,
    ) -> Result<()> {
        offsets.clear();
        out.clear();
        match &self.multi {
            None => {
                let (s, e) = block_bounds(block, self.ids.len());
                out.extend_from_slice(&self.ids[s..e]);
                offsets.extend(0..=(e - s) as u32);
            }
            Some((row_offsets, ids)) => {
                let (s, e) = block_bounds(block, row_offsets.len() - 1);
                let base = row_offsets[s];
                out.extend_from_slice(&ids[base as usize..row_offsets[e] as usize]);
                offsets.extend(row_offsets[s..=e].iter().map(|o| o - base));
            }
        }
        Ok(())
    }

    fn block_id_range(&self, _block: usize) -> Option<(u32, u32)> {
        None
    }

    fn values_sketch(&self) -> Option<Cow<'_, Hll>> {
        None
    }
}

impl LazyBitmaps {
    /// Rows are about to change: keep what was built (covering `rows` rows) for extending.
    fn stale(&mut self, rows: usize) {
        if let Some(ready) = self.ready.take() {
            *self.built.get_mut().unwrap_or_else(|p| p.into_inner()) = (ready, rows);
        }
    }
}

/// A numeric column being built: a dimension, or a metric updated in place by rollup.
pub(crate) struct MemNumeric {
    pub kind: NumKind,
    pub longs: Vec<i64>,
    pub doubles: Vec<f64>,
    pub nulls: RoaringBitmap,
}

impl MemNumeric {
    pub fn new(kind: NumKind) -> Self {
        MemNumeric {
            kind,
            longs: Vec::new(),
            doubles: Vec::new(),
            nulls: RoaringBitmap::new(),
        }
    }

    /// Room for `rows` rows.
    pub fn reserve(&mut self, rows: usize) {
        match self.kind {
            NumKind::Long => self.longs.reserve(rows),
            _ => self.doubles.reserve(rows),
        }
    }

    pub fn len(&self) -> usize {
        match self.kind {
            NumKind::Long => self.longs.len(),
            _ => self.doubles.len(),
        }
    }

    pub fn push_long(&mut self, v: Option<i64>) {
        let row = self.len() as u32;
        match self.kind {
            NumKind::Long => self.longs.push(v.unwrap_or(0)),
            _ => self.doubles.push(v.map_or(0.0, |x| x as f64)),
        }
        if v.is_none() {
            self.nulls.insert(row);
        }
    }

    pub fn push_double(&mut self, v: Option<f64>) {
        let row = self.len() as u32;
        match self.kind {
            NumKind::Long => self.longs.push(v.map_or(0, |x| x as i64)),
            _ => self.doubles.push(v.unwrap_or(0.0)),
        }
        if v.is_none() {
            self.nulls.insert(row);
        }
    }

    pub fn backfill_nulls(&mut self, rows: usize) {
        while self.len() < rows {
            self.push_long(None);
        }
    }

    pub fn is_null(&self, row: usize) -> bool {
        !self.nulls.is_empty() && self.nulls.contains(row as u32)
    }
}

impl NumericColumn for MemNumeric {
    fn kind(&self) -> NumKind {
        self.kind
    }

    fn read_i64(&self, block: usize, out: &mut [i64]) -> Result<()> {
        let (s, e) = block_bounds(block, self.len());
        match self.kind {
            NumKind::Long => out[..e - s].copy_from_slice(&self.longs[s..e]),
            _ => out
                .iter_mut()
                .zip(&self.doubles[s..e])
                .for_each(|(o, v)| *o = *v as i64),
        }
        Ok(())
    }

    fn read_f64(&self, block: usize, out: &mut [f64]) -> Result<()> {
        let (s, e) = block_bounds(block, self.len());
        match self.kind {
            NumKind::Long => out
                .iter_mut()
                .zip(&self.longs[s..e])
                .for_each(|(o, v)| *o = *v as f64),
            _ => out[..e - s].copy_from_slice(&self.doubles[s..e]),
        }
        Ok(())
    }

    fn block_range_i64(&self, block: usize) -> Option<(i64, i64)> {
        if self.kind != NumKind::Long {
            return self
                .block_range_f64(block)
                .map(|(a, b)| (a.floor() as i64, b.ceil() as i64));
        }
        let (s, e) = block_bounds(block, self.len());
        (s..e)
            .filter(|r| !self.is_null(*r))
            .map(|r| self.longs[r])
            .fold(None, |acc, v| match acc {
                None => Some((v, v)),
                Some((lo, hi)) => Some((lo.min(v), hi.max(v))),
            })
    }

    fn block_range_f64(&self, block: usize) -> Option<(f64, f64)> {
        let (s, e) = block_bounds(block, self.len());
        let value = |r: usize| match self.kind {
            NumKind::Long => self.longs[r] as f64,
            _ => self.doubles[r],
        };
        (s..e)
            .filter(|r| !self.is_null(*r))
            .map(value)
            .fold(None, |acc, v| match acc {
                None => Some((v, v)),
                Some((lo, hi)) => Some((f64::min(lo, v), f64::max(hi, v))),
            })
    }

    fn nulls(&self) -> Option<&RoaringBitmap> {
        (!self.nulls.is_empty()).then_some(&self.nulls)
    }

    fn index(&self) -> Option<&dyn LongIndex> {
        None
    }
}

/// A hyperUnique metric being built.
pub(crate) struct MemSketches {
    pub sketches: Vec<Hll>,
}

impl SketchColumn for MemSketches {
    fn read(&self, block: usize, out: &mut Vec<Hll>) -> Result<()> {
        let (s, e) = block_bounds(block, self.sketches.len());
        out.clear();
        out.extend_from_slice(&self.sketches[s..e]);
        Ok(())
    }
}

pub(crate) enum MemDim {
    String(MemStringDim),
    Numeric(MemNumeric),
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum MetricOp {
    Count,
    Sum,
    Min,
    Max,
}

pub(crate) enum MemMetric {
    Numeric {
        op: MetricOp,
        field: Option<String>,
        col: MemNumeric,
    },
    Sketch {
        field: String,
        col: MemSketches,
    },
}
