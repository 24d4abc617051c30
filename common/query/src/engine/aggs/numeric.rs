//! count and the long/double sum, min and max aggregators: one accumulator per group, folded a
//! block at a time; whole-segment answers from block ranges and per-value counts where exact.

use eddy_segment::{BLOCK_ROWS, NumericColumn};

use super::{Agg, Block, Groups, NumInput, Rows};
use crate::error::QueryError;
use crate::partial::AggValue;

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Op {
    Sum,
    Min,
    Max,
}

pub(super) struct Count {
    counts: Vec<i64>,
}

impl Count {
    pub(super) fn new() -> Self {
        Count { counts: Vec::new() }
    }
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
        pub(super) struct $name<'a> {
            op: Op,
            input: NumInput<'a>,
            acc: Vec<$t>,
            has: Vec<bool>,
            vals: Vec<$t>,
            nulls: Vec<bool>,
            ids: Vec<u32>,
        }

        impl<'a> $name<'a> {
            pub(super) fn new(op: Op, input: NumInput<'a>) -> Self {
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
