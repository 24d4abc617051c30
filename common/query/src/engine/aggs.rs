//! Aggregators over one segment, updated a block at a time with per-group state arrays.
//!
//! `update` receives the selected rows of a block (block-relative offsets, or the whole block)
//! and each row's group (or one group for all). Inputs are decoded once per block into scratch
//! buffers; the inner loops are plain slice loops the compiler can vectorize.

use roaring::RoaringBitmap;

use eddy_segment::hll::{Hll, hash_f64, hash_i64};
use eddy_segment::{
    BLOCK_ROWS, ColumnRef, NumericColumn, SegmentReader, SketchColumn, StringColumn,
};
use eddy_types::TIME_COLUMN;
use eddy_types::spec::AggregatorSpec;

use crate::compare::NumLit;
use crate::error::QueryError;
use crate::filter;
use crate::partial::{AggKind, AggValue, Scalar, ValueKind};

/// Selected rows of a block.
#[derive(Clone, Copy)]
pub enum Rows<'a> {
    All(usize),
    Some(&'a [u32]),
}

impl Rows<'_> {
    pub fn len(&self) -> usize {
        match self {
            Rows::All(n) => *n,
            Rows::Some(r) => r.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    #[inline]
    pub fn get(&self, i: usize) -> usize {
        match self {
            Rows::All(_) => i,
            Rows::Some(r) => r[i] as usize,
        }
    }
}

/// The group of each selected row.
#[derive(Clone, Copy)]
pub enum Groups<'a> {
    One(u32),
    Each(&'a [u32]),
}

pub struct Block {
    pub index: usize,
    pub start: usize,
    pub len: usize,
}

pub trait Agg {
    /// Makes room for `groups` groups.
    fn grow(&mut self, groups: usize);
    fn update(
        &mut self,
        block: &Block,
        rows: Rows<'_>,
        groups: Groups<'_>,
    ) -> Result<(), QueryError>;
    /// Answers for the whole segment in one group without reading rows, if it can.
    fn whole_segment(&mut self, _group: usize, _num_rows: usize) -> bool {
        false
    }
    /// Called once after the last update, before values are read.
    fn seal(&mut self) {}
    fn value(&self, group: usize) -> AggValue;
}

/// A numeric input: a column, `__time`, a string column read as numbers, or a missing column.
enum NumInput<'a> {
    Missing,
    Column(&'a dyn NumericColumn),
    Strings {
        col: &'a dyn StringColumn,
        parsed: Vec<Option<NumLit>>,
    },
}

impl<'a> NumInput<'a> {
    fn open(segment: &'a dyn SegmentReader, field: Option<&str>) -> Result<Self, QueryError> {
        let Some(field) = field else {
            return Ok(NumInput::Missing);
        };
        if field == TIME_COLUMN {
            return Ok(NumInput::Column(segment.time()));
        }
        Ok(match segment.column(field) {
            None => NumInput::Missing,
            Some(ColumnRef::Numeric(c)) => NumInput::Column(c),
            Some(ColumnRef::String(col)) => {
                let mut parsed = vec![None; col.cardinality() as usize];
                col.for_each_value(&mut |id, v| parsed[id as usize] = NumLit::parse(v))?;
                NumInput::Strings { col, parsed }
            }
            Some(ColumnRef::Sketch(_)) => {
                return Err(QueryError::Invalid(format!(
                    "{field:?} is a hyperUnique sketch; use a hyperUnique aggregator on it"
                )));
            }
        })
    }

    /// Decodes block values as longs into `vals`, marking nulls in `nulls`; returns whether any
    /// row is null.
    fn read_long(
        &self,
        b: &Block,
        vals: &mut [i64],
        nulls: &mut [bool],
        ids: &mut [u32],
    ) -> Result<bool, QueryError> {
        match self {
            NumInput::Missing => {
                nulls[..b.len].fill(true);
                Ok(true)
            }
            NumInput::Column(c) => {
                c.read_i64(b.index, vals)?;
                Ok(mark_nulls(c.nulls(), b, nulls))
            }
            NumInput::Strings { col, parsed } => {
                read_string_ids(*col, b, ids)?;
                let mut any = false;
                for i in 0..b.len {
                    match parsed[ids[i] as usize] {
                        Some(n) => {
                            vals[i] = match n {
                                NumLit::Long(v) => v,
                                NumLit::Double(d) => d as i64,
                            };
                            nulls[i] = false;
                        }
                        None => {
                            nulls[i] = true;
                            any = true;
                        }
                    }
                }
                Ok(any)
            }
        }
    }

    fn read_double(
        &self,
        b: &Block,
        vals: &mut [f64],
        nulls: &mut [bool],
        ids: &mut [u32],
    ) -> Result<bool, QueryError> {
        match self {
            NumInput::Missing => {
                nulls[..b.len].fill(true);
                Ok(true)
            }
            NumInput::Column(c) => {
                c.read_f64(b.index, vals)?;
                Ok(mark_nulls(c.nulls(), b, nulls))
            }
            NumInput::Strings { col, parsed } => {
                read_string_ids(*col, b, ids)?;
                let mut any = false;
                for i in 0..b.len {
                    match parsed[ids[i] as usize] {
                        Some(n) => {
                            vals[i] = n.as_f64();
                            nulls[i] = false;
                        }
                        None => {
                            nulls[i] = true;
                            any = true;
                        }
                    }
                }
                Ok(any)
            }
        }
    }
}

/// First id of each row (multi-value rows use their first value, as Druid does for numbers).
fn read_string_ids(col: &dyn StringColumn, b: &Block, ids: &mut [u32]) -> Result<(), QueryError> {
    if col.is_multi_value() {
        let mut offsets = Vec::new();
        let mut values = Vec::new();
        col.read_multi_ids(b.index, &mut offsets, &mut values)?;
        for i in 0..b.len {
            ids[i] = if offsets[i + 1] > offsets[i] {
                values[offsets[i] as usize]
            } else {
                0
            };
        }
        Ok(())
    } else {
        col.read_ids(b.index, ids).map_err(QueryError::from)
    }
}

fn mark_nulls(nulls: Option<&RoaringBitmap>, b: &Block, out: &mut [bool]) -> bool {
    out[..b.len].fill(false);
    let Some(nb) = nulls else { return false };
    let mut any = false;
    for r in nb.range(b.start as u32..(b.start + b.len) as u32) {
        out[r as usize - b.start] = true;
        any = true;
    }
    any
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Op {
    Sum,
    Min,
    Max,
}

struct Count {
    counts: Vec<i64>,
}

impl Agg for Count {
    fn grow(&mut self, groups: usize) {
        self.counts.resize(groups, 0);
    }

    fn update(&mut self, _b: &Block, rows: Rows<'_>, groups: Groups<'_>) -> Result<(), QueryError> {
        match groups {
            Groups::One(g) => self.counts[g as usize] += rows.len() as i64,
            Groups::Each(gs) => gs.iter().for_each(|g| self.counts[*g as usize] += 1),
        }
        Ok(())
    }

    fn whole_segment(&mut self, group: usize, num_rows: usize) -> bool {
        self.counts[group] += num_rows as i64;
        true
    }

    fn value(&self, group: usize) -> AggValue {
        AggValue::Long(Some(self.counts[group]))
    }
}

/// Arithmetic for aggregator accumulators: longs wrap like Java's, doubles add.
trait Accum: Copy {
    fn add(self, other: Self) -> Self;
    /// A block's non-null min and max, when exact for this accumulator type.
    fn block_range(col: &dyn NumericColumn, block: usize) -> Option<Option<(Self, Self)>>;
    /// `value * count`, for sums from per-value row counts.
    fn times(value: i64, count: u64) -> Self;
    /// Sum of a slice.
    fn sum(values: &[Self]) -> Self;
}

impl Accum for i64 {
    #[inline]
    fn add(self, other: Self) -> Self {
        self.wrapping_add(other)
    }

    fn block_range(col: &dyn NumericColumn, block: usize) -> Option<Option<(Self, Self)>> {
        // Truncating floats to longs does not keep min and max exact.
        (col.kind() == eddy_segment::codec::numeric::NumKind::Long)
            .then(|| col.block_range_i64(block))
    }

    fn times(value: i64, count: u64) -> Self {
        value.wrapping_mul(count as i64)
    }

    fn sum(values: &[Self]) -> Self {
        values.iter().fold(0i64, |a, v| a.wrapping_add(*v))
    }
}

impl Accum for f64 {
    #[inline]
    fn add(self, other: Self) -> Self {
        self + other
    }

    fn block_range(col: &dyn NumericColumn, block: usize) -> Option<Option<(Self, Self)>> {
        Some(col.block_range_f64(block))
    }

    fn times(value: i64, count: u64) -> Self {
        value as f64 * count as f64
    }

    /// Eight running sums, so additions do not wait on each other (the order of a double sum
    /// across rows is unspecified in Druid too).
    fn sum(values: &[Self]) -> Self {
        let mut lanes = [0.0f64; 8];
        let chunks = values.chunks_exact(8);
        let tail: f64 = chunks.remainder().iter().sum();
        for c in chunks {
            for (l, v) in lanes.iter_mut().zip(c) {
                *l += v;
            }
        }
        lanes.iter().sum::<f64>() + tail
    }
}

/// Indexed columns up to this many values are summed from per-value counts (at 0.6 values
/// per row, counts were 1.4x slower than reading the rows).
const SUM_BY_COUNTS_MAX_CARDINALITY: u32 = 4096;

macro_rules! numeric_agg {
    ($name:ident, $t:ty, $read:ident, $variant:ident) => {
        struct $name<'a> {
            op: Op,
            input: NumInput<'a>,
            acc: Vec<$t>,
            has: Vec<bool>,
            vals: Vec<$t>,
            nulls: Vec<bool>,
            ids: Vec<u32>,
        }

        impl<'a> $name<'a> {
            fn new(op: Op, input: NumInput<'a>) -> Self {
                $name {
                    op,
                    input,
                    acc: Vec::new(),
                    has: Vec::new(),
                    vals: vec![<$t>::default(); BLOCK_ROWS],
                    nulls: vec![false; BLOCK_ROWS],
                    ids: vec![0; BLOCK_ROWS],
                }
            }

            #[inline]
            fn fold(op: Op, acc: &mut $t, has: &mut bool, v: $t) {
                if !*has {
                    *acc = v;
                    *has = true;
                    return;
                }
                match op {
                    Op::Sum => *acc = Accum::add(*acc, v),
                    Op::Min => {
                        if v < *acc {
                            *acc = v
                        }
                    }
                    Op::Max => {
                        if v > *acc {
                            *acc = v
                        }
                    }
                }
            }
        }

        impl Agg for $name<'_> {
            fn grow(&mut self, groups: usize) {
                self.acc.resize(groups, <$t>::default());
                self.has.resize(groups, false);
            }

            /// Min and max come from block statistics; sums over small indexed columns from
            /// per-value row counts. Neither reads a row.
            fn whole_segment(&mut self, g: usize, num_rows: usize) -> bool {
                let NumInput::Column(col) = &self.input else {
                    return matches!(self.input, NumInput::Missing);
                };
                let col = *col;
                match self.op {
                    Op::Min | Op::Max => {
                        let mut folded: Vec<$t> = Vec::new();
                        for b in 0..num_rows.div_ceil(BLOCK_ROWS) {
                            match <$t as Accum>::block_range(col, b) {
                                None => return false,
                                Some(None) => {}
                                Some(Some((lo, hi))) => {
                                    folded.push(if self.op == Op::Min { lo } else { hi })
                                }
                            }
                        }
                        for v in folded {
                            Self::fold(self.op, &mut self.acc[g], &mut self.has[g], v);
                        }
                        true
                    }
                    Op::Sum => {
                        let Some(index) = col
                            .index()
                            .filter(|i| i.cardinality() <= SUM_BY_COUNTS_MAX_CARDINALITY)
                        else {
                            return false;
                        };
                        let mut sum: Option<$t> = None;
                        for id in 1..index.cardinality() {
                            let (Some(v), Ok(n)) = (index.value(id), index.count(id)) else {
                                return false;
                            };
                            if n > 0 {
                                let part = <$t as Accum>::times(v, n);
                                sum = Some(sum.map_or(part, |s| Accum::add(s, part)));
                            }
                        }
                        if let Some(total) = sum {
                            Self::fold(Op::Sum, &mut self.acc[g], &mut self.has[g], total);
                        }
                        true
                    }
                }
            }

            fn update(
                &mut self,
                b: &Block,
                rows: Rows<'_>,
                groups: Groups<'_>,
            ) -> Result<(), QueryError> {
                if matches!(self.input, NumInput::Missing) {
                    return Ok(());
                }
                let any_null =
                    self.input
                        .$read(b, &mut self.vals, &mut self.nulls, &mut self.ids)?;
                let vals = &self.vals[..b.len];
                match (groups, rows, any_null, self.op) {
                    // Whole block into one group, no nulls: a straight reduction.
                    (Groups::One(g), Rows::All(n), false, Op::Sum) => {
                        let s: $t = Accum::sum(&vals[..n]);
                        let g = g as usize;
                        Self::fold(Op::Sum, &mut self.acc[g], &mut self.has[g], s);
                    }
                    (Groups::One(g), rows, _, op) => {
                        let g = g as usize;
                        for i in 0..rows.len() {
                            let r = rows.get(i);
                            if !any_null || !self.nulls[r] {
                                Self::fold(op, &mut self.acc[g], &mut self.has[g], vals[r]);
                            }
                        }
                    }
                    (Groups::Each(gs), rows, _, op) => {
                        for (i, g) in gs.iter().enumerate() {
                            let r = rows.get(i);
                            if !any_null || !self.nulls[r] {
                                let g = *g as usize;
                                Self::fold(op, &mut self.acc[g], &mut self.has[g], vals[r]);
                            }
                        }
                    }
                }
                Ok(())
            }

            fn value(&self, group: usize) -> AggValue {
                AggValue::$variant(self.has[group].then(|| self.acc[group] as _))
            }
        }
    };
}

numeric_agg!(LongAgg, i64, read_long, Long);
numeric_agg!(DoubleAgg, f64, read_double, Double);

/// Where a sketch aggregator gets its hashes.
enum SketchInput<'a> {
    Missing,
    Sketches(&'a dyn SketchColumn),
    Strings {
        col: &'a dyn StringColumn,
        /// Per-id hashes, fetched on first use.
        hashes: Option<std::borrow::Cow<'a, [u64]>>,
    },
    Indexed {
        index: &'a dyn eddy_segment::LongIndex,
        hashes: Option<std::borrow::Cow<'a, [u64]>>,
    },
    Numbers {
        col: &'a dyn NumericColumn,
        is_long: bool,
    },
}

impl<'a> SketchInput<'a> {
    fn open(segment: &'a dyn SegmentReader, field: &str) -> Result<Self, QueryError> {
        if field == TIME_COLUMN {
            return Ok(SketchInput::Numbers {
                col: segment.time(),
                is_long: true,
            });
        }
        Ok(match segment.column(field) {
            None => SketchInput::Missing,
            Some(ColumnRef::Sketch(s)) => SketchInput::Sketches(s),
            Some(ColumnRef::String(col)) => SketchInput::Strings { col, hashes: None },
            Some(ColumnRef::Numeric(col)) => match col.index() {
                Some(index) => SketchInput::Indexed {
                    index,
                    hashes: None,
                },
                None => SketchInput::Numbers {
                    col,
                    is_long: col.kind() == eddy_segment::codec::numeric::NumKind::Long,
                },
            },
        })
    }
}

struct SketchAgg<'a> {
    inputs: Vec<SketchInput<'a>>,
    by_row: bool,
    sketches: Vec<Hll>,
    /// Dictionary ids seen per group and not yet in its sketch (one dictionary-coded input):
    /// sorted and deduplicated in batches, so each distinct value is hashed into the sketch
    /// once per batch and the hash table is read in id order.
    pending: Vec<Vec<u32>>,
    scratch_sketches: Vec<Hll>,
    offsets: Vec<u32>,
    ids: Vec<u32>,
    longs: Vec<i64>,
    doubles: Vec<f64>,
    nulls: Vec<bool>,
}

/// Pending ids per group before a batch is folded into the sketch.
const PENDING_IDS: usize = 1 << 15;

impl<'a> SketchAgg<'a> {
    /// Folds a group's pending ids into its sketch.
    fn flush(&mut self, g: usize) {
        let hashes = match self.inputs.first() {
            Some(SketchInput::Strings { hashes, .. } | SketchInput::Indexed { hashes, .. }) => {
                hashes.as_deref().unwrap_or_default()
            }
            _ => &[],
        };
        let ids = &mut self.pending[g];
        ids.sort_unstable();
        ids.dedup();
        for id in ids.iter() {
            if let Some(h) = hashes.get(*id as usize) {
                self.sketches[g].add_hash(*h);
            }
        }
        ids.clear();
    }

    fn new(inputs: Vec<SketchInput<'a>>, by_row: bool) -> Self {
        SketchAgg {
            inputs,
            by_row,
            sketches: Vec::new(),
            pending: Vec::new(),
            scratch_sketches: Vec::new(),
            offsets: Vec::new(),
            ids: Vec::new(),
            longs: vec![0; BLOCK_ROWS],
            doubles: vec![0.0; BLOCK_ROWS],
            nulls: vec![false; BLOCK_ROWS],
        }
    }

    /// Text of every input's value(s) for the rows of a block, for `byRow` hashing.
    fn row_texts(&mut self, b: &Block) -> Result<Vec<Vec<String>>, QueryError> {
        let mut out: Vec<Vec<String>> = vec![vec![String::new()]; b.len];
        for input in &self.inputs {
            let mut values: Vec<Vec<String>> = vec![Vec::new(); b.len];
            match input {
                SketchInput::Missing | SketchInput::Sketches(_) => {}
                SketchInput::Indexed { index, .. } => {
                    let mut ids = vec![0u32; BLOCK_ROWS];
                    index.read_ids(b.index, &mut ids)?;
                    for (i, v) in values.iter_mut().enumerate() {
                        v.push(index.value(ids[i]).map_or(String::new(), |x| x.to_string()));
                    }
                }
                SketchInput::Strings { col, .. } => {
                    col.read_multi_ids(b.index, &mut self.offsets, &mut self.ids)?;
                    for (i, v) in values.iter_mut().enumerate() {
                        for id in &self.ids[self.offsets[i] as usize..self.offsets[i + 1] as usize]
                        {
                            v.push(col.value(*id)?.map(|s| s.into_owned()).unwrap_or_default());
                        }
                    }
                }
                SketchInput::Numbers { col, is_long } => {
                    if *is_long {
                        col.read_i64(b.index, &mut self.longs)?;
                    } else {
                        col.read_f64(b.index, &mut self.doubles)?;
                    }
                    mark_nulls(col.nulls(), b, &mut self.nulls);
                    for (i, v) in values.iter_mut().enumerate() {
                        v.push(if self.nulls[i] {
                            String::new()
                        } else if *is_long {
                            self.longs[i].to_string()
                        } else {
                            eddy_segment::hll::format_double(self.doubles[i])
                        });
                    }
                }
            }
            for (acc, vals) in out.iter_mut().zip(values) {
                if vals.is_empty() {
                    acc.iter_mut().for_each(|a| a.push('\u{1}'));
                    continue;
                }
                *acc = acc
                    .iter()
                    .flat_map(|a| vals.iter().map(move |v| format!("{a}\u{1}{v}")))
                    .collect();
            }
        }
        Ok(out)
    }
}

impl Agg for SketchAgg<'_> {
    fn grow(&mut self, groups: usize) {
        self.sketches.resize_with(groups, Hll::new);
        self.pending.resize_with(groups, Vec::new);
    }

    /// Folds pending ids and sorts each sparse sketch once, so reading a value is a copy.
    fn seal(&mut self) {
        for g in 0..self.pending.len() {
            if !self.pending[g].is_empty() {
                self.flush(g);
            }
        }
        self.sketches.iter_mut().for_each(Hll::normalize);
    }

    fn whole_segment(&mut self, group: usize, _num_rows: usize) -> bool {
        if self.by_row || self.inputs.len() != 1 {
            return false;
        }
        let sketch = match &self.inputs[0] {
            SketchInput::Strings { col, .. } => col.values_sketch(),
            SketchInput::Indexed { index, .. } => index.values_sketch(),
            _ => None,
        };
        match sketch {
            Some(s) => {
                self.sketches[group].merge(&s);
                true
            }
            None => false,
        }
    }

    fn update(&mut self, b: &Block, rows: Rows<'_>, groups: Groups<'_>) -> Result<(), QueryError> {
        let group_of = |i: usize| match groups {
            Groups::One(g) => g as usize,
            Groups::Each(gs) => gs[i] as usize,
        };
        if self.by_row && self.inputs.len() > 1 {
            let texts = self.row_texts(b)?;
            for i in 0..rows.len() {
                let g = group_of(i);
                for t in &texts[rows.get(i)] {
                    self.sketches[g].add_str(t);
                }
            }
            return Ok(());
        }
        // One dictionary-coded input: ids are buffered per group (see `pending`).
        let buffered = self.inputs.len() == 1;
        let mut full: Vec<usize> = Vec::new();
        for input in self.inputs.iter_mut() {
            match input {
                SketchInput::Missing => {}
                SketchInput::Sketches(col) => {
                    col.read(b.index, &mut self.scratch_sketches)?;
                    for i in 0..rows.len() {
                        self.sketches[group_of(i)].merge(&self.scratch_sketches[rows.get(i)]);
                    }
                }
                SketchInput::Strings { col, hashes } => {
                    if hashes.is_none() {
                        *hashes = Some(col.value_hashes()?);
                    }
                    let hashes = hashes.as_deref().unwrap_or_default();
                    col.read_multi_ids(b.index, &mut self.offsets, &mut self.ids)?;
                    for i in 0..rows.len() {
                        let r = rows.get(i);
                        let g = group_of(i);
                        let (s, e) = (self.offsets[r] as usize, self.offsets[r + 1] as usize);
                        for id in self.ids[s..e].iter().filter(|id| **id != 0) {
                            if buffered {
                                self.pending[g].push(*id);
                                if self.pending[g].len() == PENDING_IDS {
                                    full.push(g);
                                }
                            } else {
                                self.sketches[g].add_hash(hashes[*id as usize]);
                            }
                        }
                    }
                }
                SketchInput::Indexed { index, hashes } => {
                    let hashes = hashes.get_or_insert_with(|| index.value_hashes());
                    self.ids.resize(BLOCK_ROWS, 0);
                    index.read_ids(b.index, &mut self.ids)?;
                    for i in 0..rows.len() {
                        let id = self.ids[rows.get(i)];
                        if id == 0 {
                            continue;
                        }
                        let g = group_of(i);
                        if buffered {
                            self.pending[g].push(id);
                            if self.pending[g].len() == PENDING_IDS {
                                full.push(g);
                            }
                        } else {
                            self.sketches[g].add_hash(hashes[id as usize]);
                        }
                    }
                }
                SketchInput::Numbers { col, is_long } => {
                    if *is_long {
                        col.read_i64(b.index, &mut self.longs)?;
                    } else {
                        col.read_f64(b.index, &mut self.doubles)?;
                    }
                    let any_null = mark_nulls(col.nulls(), b, &mut self.nulls);
                    for i in 0..rows.len() {
                        let r = rows.get(i);
                        if any_null && self.nulls[r] {
                            continue;
                        }
                        let h = if *is_long {
                            hash_i64(self.longs[r])
                        } else {
                            hash_f64(self.doubles[r])
                        };
                        self.sketches[group_of(i)].add_hash(h);
                    }
                }
            }
        }
        for g in full {
            self.flush(g);
        }
        Ok(())
    }

    fn value(&self, group: usize) -> AggValue {
        let mut s = self.sketches[group].clone();
        s.normalize();
        AggValue::Sketch(s)
    }
}

/// first/last: the value at the smallest (first) or largest (last) time; nulls are skipped.
struct FirstLast<'a> {
    first: bool,
    kind: ValueKind,
    time: &'a dyn NumericColumn,
    input: FirstLastInput<'a>,
    times: Vec<i64>,
    has: Vec<bool>,
    longs: Vec<i64>,
    doubles: Vec<f64>,
    /// Dictionary ids for string columns (resolved in `value`).
    ids: Vec<u32>,
    texts: Vec<Option<String>>,
    time_buf: Vec<i64>,
    long_buf: Vec<i64>,
    double_buf: Vec<f64>,
    null_buf: Vec<bool>,
    id_buf: Vec<u32>,
}

enum FirstLastInput<'a> {
    Missing,
    Numeric(&'a dyn NumericColumn),
    Strings(&'a dyn StringColumn),
}

impl Agg for FirstLast<'_> {
    fn grow(&mut self, groups: usize) {
        self.times.resize(groups, 0);
        self.has.resize(groups, false);
        self.longs.resize(groups, 0);
        self.doubles.resize(groups, 0.0);
        self.ids.resize(groups, 0);
        self.texts.resize(groups, None);
    }

    fn update(&mut self, b: &Block, rows: Rows<'_>, groups: Groups<'_>) -> Result<(), QueryError> {
        if matches!(self.input, FirstLastInput::Missing) {
            return Ok(());
        }
        self.time.read_i64(b.index, &mut self.time_buf)?;
        match &self.input {
            FirstLastInput::Numeric(c) => {
                if self.kind == ValueKind::Long {
                    c.read_i64(b.index, &mut self.long_buf)?;
                } else {
                    c.read_f64(b.index, &mut self.double_buf)?;
                }
                mark_nulls(c.nulls(), b, &mut self.null_buf);
            }
            FirstLastInput::Strings(c) => {
                read_string_ids(*c, b, &mut self.id_buf)?;
                for i in 0..b.len {
                    self.null_buf[i] = self.id_buf[i] == 0;
                }
            }
            FirstLastInput::Missing => {}
        }
        for i in 0..rows.len() {
            let r = rows.get(i);
            if self.null_buf[r] {
                continue;
            }
            let g = match groups {
                Groups::One(g) => g as usize,
                Groups::Each(gs) => gs[i] as usize,
            };
            let t = self.time_buf[r];
            let better = !self.has[g]
                || if self.first {
                    t < self.times[g]
                } else {
                    t >= self.times[g]
                };
            if !better {
                continue;
            }
            self.has[g] = true;
            self.times[g] = t;
            match &self.input {
                FirstLastInput::Numeric(_) if self.kind == ValueKind::Long => {
                    self.longs[g] = self.long_buf[r]
                }
                FirstLastInput::Numeric(_) if self.kind == ValueKind::String => {
                    self.texts[g] = Some(eddy_segment::hll::format_double(self.double_buf[r]))
                }
                FirstLastInput::Numeric(_) => self.doubles[g] = self.double_buf[r],
                FirstLastInput::Strings(_) => self.ids[g] = self.id_buf[r],
                FirstLastInput::Missing => {}
            }
        }
        Ok(())
    }

    fn value(&self, g: usize) -> AggValue {
        if !self.has[g] {
            return AggValue::NoValue;
        }
        let value = match (&self.input, self.kind) {
            (FirstLastInput::Strings(c), ValueKind::String) => c
                .value(self.ids[g])
                .ok()
                .flatten()
                .map_or(Scalar::Null, |s| Scalar::Str(s.into_owned())),
            (FirstLastInput::Strings(c), kind) => {
                let text = c.value(self.ids[g]).ok().flatten().map(|s| s.into_owned());
                match (text.as_deref().and_then(NumLit::parse), kind) {
                    (Some(n), ValueKind::Long) => Scalar::Long(match n {
                        NumLit::Long(v) => v,
                        NumLit::Double(d) => d as i64,
                    }),
                    (Some(n), _) => Scalar::Double(n.as_f64()),
                    (None, _) => Scalar::Null,
                }
            }
            (FirstLastInput::Numeric(_), ValueKind::Long) => Scalar::Long(self.longs[g]),
            (FirstLastInput::Numeric(_), ValueKind::String) => {
                self.texts[g].clone().map_or(Scalar::Null, Scalar::Str)
            }
            (FirstLastInput::Numeric(_), _) => Scalar::Double(self.doubles[g]),
            (FirstLastInput::Missing, _) => Scalar::Null,
        };
        AggValue::Timed {
            time: self.times[g],
            value,
        }
    }
}

/// Applies an inner aggregator only to rows that pass its own filter.
struct Filtered<'a> {
    matches: RoaringBitmap,
    inner: Box<dyn Agg + 'a>,
    rows: Vec<u32>,
    groups: Vec<u32>,
    mask: Vec<bool>,
}

impl Agg for Filtered<'_> {
    fn grow(&mut self, groups: usize) {
        self.inner.grow(groups);
    }

    fn update(&mut self, b: &Block, rows: Rows<'_>, groups: Groups<'_>) -> Result<(), QueryError> {
        self.mask[..b.len].fill(false);
        let mut any = false;
        for r in self.matches.range(b.start as u32..(b.start + b.len) as u32) {
            self.mask[r as usize - b.start] = true;
            any = true;
        }
        if !any {
            return Ok(());
        }
        self.rows.clear();
        self.groups.clear();
        for i in 0..rows.len() {
            let r = rows.get(i);
            if self.mask[r] {
                self.rows.push(r as u32);
                if let Groups::Each(gs) = groups {
                    self.groups.push(gs[i]);
                }
            }
        }
        let inner_groups = match groups {
            Groups::One(g) => Groups::One(g),
            Groups::Each(_) => Groups::Each(&self.groups),
        };
        self.inner.update(b, Rows::Some(&self.rows), inner_groups)
    }

    fn seal(&mut self) {
        self.inner.seal();
    }

    fn value(&self, group: usize) -> AggValue {
        self.inner.value(group)
    }
}

/// Builds the aggregator for `spec` over `segment`.
pub fn build<'a>(
    spec: &AggregatorSpec,
    segment: &'a dyn SegmentReader,
) -> Result<Box<dyn Agg + 'a>, QueryError> {
    let numeric = |a: &eddy_types::spec::aggregator::FieldAggregator| {
        NumInput::open(segment, a.field_name.as_deref())
    };
    Ok(match spec {
        AggregatorSpec::Count { .. } => Box::new(Count { counts: Vec::new() }),
        AggregatorSpec::LongSum(a) => Box::new(LongAgg::new(Op::Sum, numeric(a)?)),
        AggregatorSpec::LongMin(a) => Box::new(LongAgg::new(Op::Min, numeric(a)?)),
        AggregatorSpec::LongMax(a) => Box::new(LongAgg::new(Op::Max, numeric(a)?)),
        AggregatorSpec::DoubleSum(a) | AggregatorSpec::FloatSum(a) => {
            Box::new(DoubleAgg::new(Op::Sum, numeric(a)?))
        }
        AggregatorSpec::DoubleMin(a) | AggregatorSpec::FloatMin(a) => {
            Box::new(DoubleAgg::new(Op::Min, numeric(a)?))
        }
        AggregatorSpec::DoubleMax(a) | AggregatorSpec::FloatMax(a) => {
            Box::new(DoubleAgg::new(Op::Max, numeric(a)?))
        }
        AggregatorSpec::HyperUnique(h) => Box::new(SketchAgg::new(
            vec![SketchInput::open(segment, &h.field_name)?],
            false,
        )),
        AggregatorSpec::Cardinality(c) => {
            let inputs = c
                .fields
                .iter()
                .map(|f| SketchInput::open(segment, &f.dimension))
                .collect::<Result<Vec<_>, _>>()?;
            Box::new(SketchAgg::new(inputs, c.by_row))
        }
        AggregatorSpec::LongFirst(a)
        | AggregatorSpec::LongLast(a)
        | AggregatorSpec::DoubleFirst(a)
        | AggregatorSpec::DoubleLast(a)
        | AggregatorSpec::FloatFirst(a)
        | AggregatorSpec::FloatLast(a)
        | AggregatorSpec::StringFirst(a)
        | AggregatorSpec::StringLast(a) => {
            let (first, kind) = match AggKind::of(spec) {
                AggKind::First(k) => (true, k),
                AggKind::Last(k) => (false, k),
                _ => unreachable!("first/last aggregator kinds are First or Last"),
            };
            let time = match a.time_column.as_deref() {
                None | Some(TIME_COLUMN) => segment.time(),
                Some(other) => match segment.column(other) {
                    Some(ColumnRef::Numeric(c)) => c,
                    _ => {
                        return Err(QueryError::Invalid(format!(
                            "timeColumn {other:?} of {:?} is not a numeric column",
                            a.name
                        )));
                    }
                },
            };
            let input = match segment.column(&a.field_name) {
                _ if a.field_name == TIME_COLUMN => FirstLastInput::Numeric(segment.time()),
                None => FirstLastInput::Missing,
                Some(ColumnRef::Numeric(c)) => FirstLastInput::Numeric(c),
                Some(ColumnRef::String(c)) => FirstLastInput::Strings(c),
                Some(ColumnRef::Sketch(_)) => {
                    return Err(QueryError::Invalid(format!(
                        "{:?} cannot read the sketch column {:?}",
                        a.name, a.field_name
                    )));
                }
            };
            Box::new(FirstLast {
                first,
                kind,
                time,
                input,
                times: Vec::new(),
                has: Vec::new(),
                longs: Vec::new(),
                doubles: Vec::new(),
                ids: Vec::new(),
                texts: Vec::new(),
                time_buf: vec![0; BLOCK_ROWS],
                long_buf: vec![0; BLOCK_ROWS],
                double_buf: vec![0.0; BLOCK_ROWS],
                null_buf: vec![false; BLOCK_ROWS],
                id_buf: vec![0; BLOCK_ROWS],
            })
        }
        AggregatorSpec::Filtered(f) => Box::new(Filtered {
            matches: filter::evaluate(&f.filter, segment)?,
            inner: build(&f.aggregator, segment)?,
            rows: Vec::with_capacity(BLOCK_ROWS),
            groups: Vec::with_capacity(BLOCK_ROWS),
            mask: vec![false; BLOCK_ROWS],
        }),
    })
}
