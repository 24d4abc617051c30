//! long/double/float/string First and Last: per group, the value at the earliest (first) or
//! latest (last) time; nulls are skipped.

use eddy_segment::{BLOCK_ROWS, ColumnRef, NumericColumn, SegmentReader, StringColumn};
use eddy_types::TIME_COLUMN;
use eddy_types::spec::AggregatorSpec;

use super::{Agg, Block, Groups, Rows, mark_nulls, read_string_ids};
use crate::compare::NumLit;
use crate::error::QueryError;
use crate::partial::{AggKind, AggValue, Scalar, ValueKind};

/// first/last: the value at the smallest (first) or largest (last) time; nulls are skipped.
pub(super) struct FirstLast<'a> {
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

impl<'a> FirstLast<'a> {
    pub(super) fn open(
        spec: &AggregatorSpec,
        a: &eddy_types::spec::aggregator::FirstLastAggregator,
        segment: &'a dyn SegmentReader,
    ) -> Result<Self, QueryError> {
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
        Ok(FirstLast {
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
}
