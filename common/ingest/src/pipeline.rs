//! From a parsed input row to an indexable row: event time (timestampSpec), computed fields
//! (transformSpec transforms, which shadow input fields of the same name; a transform named
//! `__time` replaces the event time), the transformSpec filter, and the ingestion intervals.

use std::borrow::Cow;

use eddy_expr::{Compiled, ExprValue};
use eddy_query::row_filter::RowFilter;
use eddy_segment::input::{InputRow, InputValue};
use eddy_types::spec::ingest::DataSchema;
use eddy_types::{Interval, TIME_COLUMN};

use crate::error::IngestError;
use crate::timestamp::TimestampParser;

pub struct RowPipeline {
    timestamp: TimestampParser,
    transforms: Vec<(String, Compiled)>,
    filter: Option<RowFilter>,
    intervals: Option<Vec<Interval>>,
}

/// What became of a row.
pub enum Processed<'a> {
    Keep {
        time: i64,
        row: TransformedRow<'a>,
    },
    /// Filtered out, or outside the ingestion intervals.
    ThrownAway,
    Unparseable(String),
}

/// An input row with transform results laid over it.
pub struct TransformedRow<'a> {
    base: &'a dyn InputRow,
    computed: Vec<(String, InputValue<'static>)>,
}

impl InputRow for TransformedRow<'_> {
    fn get(&self, field: &str) -> InputValue<'_> {
        match self.computed.iter().find(|(n, _)| n == field) {
            Some((_, v)) => v.clone(),
            None => self.base.get(field),
        }
    }

    fn field_names(&self, out: &mut Vec<String>) {
        // Fields made by transforms are not discovered as dimensions (Druid's rule).
        self.base.field_names(out);
    }
}

fn to_expr(v: InputValue<'_>) -> ExprValue {
    match v {
        InputValue::Null => ExprValue::Null,
        InputValue::Str(s) => ExprValue::Str(s.into_owned()),
        InputValue::Long(i) => ExprValue::Long(i),
        InputValue::Double(f) => ExprValue::Double(f),
        InputValue::Bool(b) => ExprValue::Long(i64::from(b)),
        InputValue::List(items) => ExprValue::Array(items.into_iter().map(to_expr).collect()),
    }
}

fn from_expr(v: ExprValue) -> InputValue<'static> {
    match v {
        ExprValue::Null => InputValue::Null,
        ExprValue::Long(i) => InputValue::Long(i),
        ExprValue::Double(f) => InputValue::Double(f),
        ExprValue::Str(s) => InputValue::Str(Cow::Owned(s)),
        ExprValue::Array(items) => InputValue::List(items.into_iter().map(from_expr).collect()),
    }
}

impl RowPipeline {
    pub fn new(schema: &DataSchema, intervals: Option<Vec<Interval>>) -> Result<Self, IngestError> {
        let timestamp = TimestampParser::new(&schema.timestamp_spec).map_err(IngestError::Spec)?;
        let mut transforms = Vec::new();
        for (i, t) in schema.transform_spec.transforms.iter().enumerate() {
            let compiled = Compiled::parse(&t.expression).map_err(|e| {
                IngestError::Spec(format!(
                    "spec.dataSchema.transformSpec.transforms[{i}].expression: {e}"
                ))
            })?;
            transforms.push((t.name.clone(), compiled));
        }
        let filter = match &schema.transform_spec.filter {
            None => None,
            Some(f) => Some(RowFilter::compile(f).map_err(|e| {
                IngestError::Spec(format!("spec.dataSchema.transformSpec.filter: {e}"))
            })?),
        };
        Ok(RowPipeline {
            timestamp,
            transforms,
            filter,
            intervals,
        })
    }

    pub fn process<'a>(&self, row: &'a dyn InputRow) -> Processed<'a> {
        let mut time = match self.timestamp.parse(row) {
            Ok(t) => Some(t),
            Err(e) => {
                // A transform may still compute the time.
                if !self.transforms.iter().any(|(n, _)| n == TIME_COLUMN) {
                    return Processed::Unparseable(e);
                }
                None
            }
        };
        let mut computed: Vec<(String, InputValue<'static>)> =
            Vec::with_capacity(self.transforms.len());
        for (name, expr) in &self.transforms {
            let bindings = |field: &str| {
                if field == TIME_COLUMN {
                    return time.map_or(ExprValue::Null, ExprValue::Long);
                }
                to_expr(row.get(field))
            };
            match expr.eval(&bindings) {
                Ok(v) => {
                    if name == TIME_COLUMN {
                        match v.as_i64() {
                            Some(t) => time = Some(t),
                            None => {
                                return Processed::Unparseable(format!(
                                    "transform __time = {} gave no time",
                                    expr.source()
                                ));
                            }
                        }
                    } else {
                        computed.push((name.clone(), from_expr(v)));
                    }
                }
                Err(e) => return Processed::Unparseable(format!("transform {name:?}: {e}")),
            }
        }
        let Some(time) = time else {
            return Processed::Unparseable("no timestamp".into());
        };
        let out = TransformedRow {
            base: row,
            computed,
        };
        if let Some(f) = &self.filter
            && !f.matches(&|field: &str| {
                if field == TIME_COLUMN {
                    InputValue::Long(time)
                } else {
                    out.get(field).into_owned()
                }
            })
        {
            return Processed::ThrownAway;
        }
        if let Some(ivs) = &self.intervals
            && !ivs.iter().any(|i| i.contains(time))
        {
            return Processed::ThrownAway;
        }
        Processed::Keep { time, row: out }
    }
}
