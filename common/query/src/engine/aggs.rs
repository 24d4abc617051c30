//! Aggregators over one segment, updated a block at a time with per-group state arrays.
//!
//! `update` receives the selected rows of a block (block-relative offsets, or the whole block)
//! and each row's group (or one group for all). Inputs are decoded once per block into scratch
//! buffers; the inner loops are plain slice loops the compiler can vectorize.

use roaring::RoaringBitmap;

use eddy_expr::ExprValue;
use eddy_segment::{BLOCK_ROWS, ColumnRef, NumericColumn, SegmentReader, StringColumn};
use eddy_types::TIME_COLUMN;
use eddy_types::spec::AggregatorSpec;

use crate::compare::NumLit;
use crate::error::QueryError;
use crate::filter;
use crate::model::virtuals::{VirtualColumn, VirtualType};
use crate::partial::AggValue;

mod first_last;
mod numeric;
mod sketch;
mod text;

use first_last::FirstLast;
use numeric::{Count, DoubleAgg, LongAgg, Op};
use sketch::{SketchAgg, SketchInput};
use text::TextExtreme;

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

impl Block {
    /// Block `index` holding `len` rows.
    pub fn new(index: usize, len: usize) -> Self {
        Block {
            index,
            start: index * BLOCK_ROWS,
            len,
        }
    }
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
    fn open(
        segment: &'a dyn SegmentReader,
        field: Option<&str>,
        virtuals: &[VirtualColumn],
    ) -> Result<Self, QueryError> {
        let Some(field) = field else {
            return Ok(NumInput::Missing);
        };
        if let Some(v) = virtuals.iter().find(|v| v.name == field) {
            return Self::open_virtual(segment, v);
        }
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

    /// A virtual column over one string column: its number for every dictionary id, computed
    /// once per segment (so `strlen(URL)` costs one evaluation per distinct URL).
    fn open_virtual(segment: &'a dyn SegmentReader, v: &VirtualColumn) -> Result<Self, QueryError> {
        let names = v.expr.identifiers();
        // A string's length and whether it is null (AVG(LENGTH(x))) are computed without the
        // interpreter.
        let direct = v.expr.string_number().map(|(_, n)| n);
        let eval = |value: Option<&str>| -> Result<Option<NumLit>, QueryError> {
            if let Some(n) = direct {
                return Ok(n.of(value).and_then(|n| match v.output {
                    VirtualType::Long => Some(NumLit::Long(n)),
                    VirtualType::Double => Some(NumLit::Double(n as f64)),
                    // As the interpreter's text of the number reads back.
                    VirtualType::String => NumLit::parse(&n.to_string()),
                }));
            }
            let row = |name: &str| match value {
                Some(text) if name == names[0] => ExprValue::Str(text.to_string()),
                _ => ExprValue::Null,
            };
            Ok(match v.value(&row)? {
                ExprValue::Long(x) => Some(NumLit::Long(x)),
                ExprValue::Double(x) => Some(NumLit::Double(x)),
                ExprValue::Str(x) => NumLit::parse(&x),
                _ => None,
            })
        };
        let column = match &names[..] {
            [one] if one != TIME_COLUMN => segment.column(one),
            _ => return Err(virtual_input_unsupported(&v.name)),
        };
        Ok(match column {
            Some(ColumnRef::String(col)) if !col.is_multi_value() => {
                let mut parsed = vec![eval(None)?; col.cardinality() as usize];
                let mut failed = None;
                col.for_each_value(&mut |id, text| match eval(Some(text)) {
                    Ok(n) => parsed[id as usize] = n,
                    Err(e) => failed = Some(e),
                })?;
                if let Some(e) = failed {
                    return Err(e);
                }
                NumInput::Strings { col, parsed }
            }
            // The column is missing here: the expression of a null, the same on every row.
            None if eval(None)?.is_none() => NumInput::Missing,
            _ => return Err(virtual_input_unsupported(&v.name)),
        })
    }

    /// Decodes block values into `vals` with the column reader `read` (strings convert through
    /// `parse`), marking nulls in `nulls`; returns whether any row is null.
    fn read_with<T: Copy>(
        &self,
        b: &Block,
        vals: &mut [T],
        nulls: &mut [bool],
        ids: &mut [u32],
        read: impl Fn(&dyn NumericColumn, usize, &mut [T]) -> eddy_segment::error::Result<()>,
        parse: impl Fn(NumLit) -> T,
    ) -> Result<bool, QueryError> {
        match self {
            NumInput::Missing => {
                nulls[..b.len].fill(true);
                Ok(true)
            }
            NumInput::Column(c) => {
                read(*c, b.index, vals)?;
                Ok(mark_nulls(c.nulls(), b, nulls))
            }
            NumInput::Strings { col, parsed } => {
                read_string_ids(*col, b, ids)?;
                let mut any = false;
                for i in 0..b.len {
                    match parsed[ids[i] as usize] {
                        Some(n) => {
                            vals[i] = parse(n);
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

    fn read_long(
        &self,
        b: &Block,
        vals: &mut [i64],
        nulls: &mut [bool],
        ids: &mut [u32],
    ) -> Result<bool, QueryError> {
        let parse = |n: NumLit| match n {
            NumLit::Long(v) => v,
            NumLit::Double(d) => d as i64,
        };
        self.read_with(b, vals, nulls, ids, |c, i, out| c.read_i64(i, out), parse)
    }

    fn read_double(
        &self,
        b: &Block,
        vals: &mut [f64],
        nulls: &mut [bool],
        ids: &mut [u32],
    ) -> Result<bool, QueryError> {
        self.read_with(
            b,
            vals,
            nulls,
            ids,
            |c, i, out| c.read_f64(i, out),
            |n| n.as_f64(),
        )
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
        let range = b.start as u32..(b.start + b.len) as u32;
        if self.matches.range_cardinality(range.clone()) == b.len as u64 {
            return self.inner.update(b, rows, groups);
        }
        self.mask[..b.len].fill(false);
        let mut any = false;
        for r in self.matches.range(range) {
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

fn not_a_string(spec: &AggregatorSpec, field: &str) -> QueryError {
    QueryError::Invalid(format!(
        "aggregator {:?} ({}): {field:?} is not a string column; use longMin/doubleMin or \
         longMax/doubleMax for numbers",
        spec.name(),
        spec.type_name()
    ))
}

fn virtual_input_unsupported(name: &str) -> QueryError {
    QueryError::Unsupported(format!(
        "virtual column {name:?}: an aggregator can read a virtual column only when its \
         expression reads one single-valued string column"
    ))
}

/// Builds the aggregator for `spec` over `segment`; numeric aggregators may read `virtuals`.
pub fn build<'a>(
    spec: &AggregatorSpec,
    segment: &'a dyn SegmentReader,
    virtuals: &[VirtualColumn],
) -> Result<Box<dyn Agg + 'a>, QueryError> {
    let numeric = |a: &eddy_types::spec::aggregator::FieldAggregator| {
        NumInput::open(segment, a.field_name.as_deref(), virtuals)
    };
    Ok(match spec {
        AggregatorSpec::Count { .. } => Box::new(Count::new()),
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
        AggregatorSpec::StringMin(a) | AggregatorSpec::StringMax(a) => {
            let max = matches!(spec, AggregatorSpec::StringMax(_));
            let field = a.field_name.as_deref().unwrap_or_default();
            let col = match segment.column(field) {
                _ if field == TIME_COLUMN => return Err(not_a_string(spec, field)),
                None => None,
                Some(ColumnRef::String(c)) => Some(c),
                Some(_) => return Err(not_a_string(spec, field)),
            };
            Box::new(TextExtreme::new(max, col)?)
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
        | AggregatorSpec::StringLast(a) => Box::new(FirstLast::open(spec, a, segment)?),
        AggregatorSpec::Filtered(f) => {
            let matches = filter::evaluate(&f.filter, segment)?;
            let inner = build(&f.aggregator, segment, virtuals)?;
            // A filter every row passes (AVG's not-null count on a column without nulls).
            if matches.len() == segment.num_rows() as u64 {
                return Ok(inner);
            }
            Box::new(Filtered {
                matches,
                inner,
                rows: Vec::with_capacity(BLOCK_ROWS),
                groups: Vec::with_capacity(BLOCK_ROWS),
                mask: vec![false; BLOCK_ROWS],
            })
        }
    })
}
