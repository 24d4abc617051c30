//! hyperUnique and cardinality: one HyperLogLog sketch per group, fed from sketch columns,
//! per-id hashes of dictionary-coded columns (buffered and deduplicated per group), or hashed
//! numbers.

use eddy_segment::hll::{Hll, hash_f64, hash_i64};
use eddy_segment::{
    BLOCK_ROWS, ColumnRef, NumericColumn, SegmentReader, SketchColumn, StringColumn,
};
use eddy_types::TIME_COLUMN;

use super::{Agg, Block, Groups, Rows, mark_nulls};
use crate::error::QueryError;
use crate::partial::AggValue;

/// Where a sketch aggregator gets its hashes.
pub(super) enum SketchInput<'a> {
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
    pub(super) fn open(segment: &'a dyn SegmentReader, field: &str) -> Result<Self, QueryError> {
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

pub(super) struct SketchAgg<'a> {
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

    pub(super) fn new(inputs: Vec<SketchInput<'a>>, by_row: bool) -> Self {
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
