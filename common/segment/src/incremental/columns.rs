//! In-memory columns of the incremental index and their read views. Dictionaries are in
//! arrival order (not sorted); bitmaps grow as rows arrive, so filters work as on files.

use std::borrow::Cow;
use std::ops::{Bound, Range};

use hashbrown::HashMap;
use roaring::RoaringBitmap;

use eddy_types::spec::ingest::MultiValueHandling;

use crate::BLOCK_ROWS;
use crate::codec::numeric::NumKind;
use crate::error::Result;
use crate::hll::Hll;
use crate::reader::{LongIndex, NumericColumn, SketchColumn, StringColumn};

fn block_bounds(block: usize, rows: usize) -> (usize, usize) {
    let start = (block * BLOCK_ROWS).min(rows);
    (start, (start + BLOCK_ROWS).min(rows))
}

/// A string dimension being built.
pub(crate) struct MemStringDim {
    pub handling: MultiValueHandling,
    values: Vec<Option<Box<str>>>,
    lookup: HashMap<Box<str>, u32>,
    /// One id per row while every row had at most one value.
    ids: Vec<u32>,
    /// Per-row offsets and ids once some row had several values.
    multi: Option<(Vec<u32>, Vec<u32>)>,
    bitmaps: Vec<RoaringBitmap>,
    pub dict_bytes: usize,
}

impl MemStringDim {
    pub fn new(handling: MultiValueHandling) -> Self {
        MemStringDim {
            handling,
            values: vec![None],
            lookup: HashMap::new(),
            ids: Vec::new(),
            multi: None,
            bitmaps: vec![RoaringBitmap::new()],
            dict_bytes: 0,
        }
    }

    pub fn intern(&mut self, v: &str) -> u32 {
        if let Some(id) = self.lookup.get(v) {
            return *id;
        }
        let id = self.values.len() as u32;
        let boxed: Box<str> = v.into();
        self.dict_bytes += v.len() * 2 + 48;
        self.values.push(Some(boxed.clone()));
        self.lookup.insert(boxed, id);
        self.bitmaps.push(RoaringBitmap::new());
        id
    }

    pub fn value_of(&self, id: u32) -> Option<&str> {
        self.values.get(id as usize).and_then(|v| v.as_deref())
    }

    pub fn num_ids(&self) -> usize {
        self.values.len()
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
    pub fn push_row(&mut self, row: u32, ids: &[u32]) {
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
        for id in ids {
            self.bitmaps[*id as usize].insert(row);
        }
    }

    /// Gives `rows` existing rows a null value (for a dimension discovered late).
    pub fn backfill_nulls(&mut self, rows: usize) {
        self.ids.resize(rows, 0);
        if rows > 0 {
            self.bitmaps[0].insert_range(0..rows as u32);
        }
    }

    pub fn sorted_order(&self) -> Vec<u32> {
        let mut order: Vec<u32> = (1..self.values.len() as u32).collect();
        order.sort_unstable_by(|a, b| self.values[*a as usize].cmp(&self.values[*b as usize]));
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
        self.values.len() as u32
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
            Some(v) => self.lookup.get(v).copied(),
        })
    }

    fn for_each_value(&self, f: &mut dyn FnMut(u32, &str)) -> Result<()> {
        for (id, v) in self.values.iter().enumerate().skip(1) {
            if let Some(v) = v {
                f(id as u32, v);
            }
        }
        Ok(())
    }

    fn id_range(&self, _lower: Bound<&str>, _upper: Bound<&str>) -> Result<Option<Range<u32>>> {
        Ok(None)
    }

    fn bitmap(&self, id: u32) -> Result<Cow<'_, RoaringBitmap>> {
        Ok(self
            .bitmaps
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
