//! groupBy `having` specs, compiled once and tested against each output row.

use std::cmp::Ordering;

use serde_json::{Map, Value};

use crate::error::QueryError;
use crate::model::HavingSpec;
use crate::row_filter::{RowFilter, RowValue};

fn json_row_value(v: &Value) -> RowValue<'_> {
    eddy_segment::input::json_input(v)
}

pub(super) enum CompiledHaving {
    Compare {
        name: String,
        op: Ordering,
        value: f64,
    },
    And(Vec<CompiledHaving>),
    Or(Vec<CompiledHaving>),
    Not(Box<CompiledHaving>),
    DimSelector {
        dimension: String,
        value: Option<String>,
    },
    Filter(RowFilter),
    Always,
    Never,
}

pub(super) fn compile_having(h: &HavingSpec) -> Result<CompiledHaving, QueryError> {
    let num = |name: &str, v: &Value| -> Result<f64, QueryError> {
        v.as_f64()
            .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
            .ok_or_else(|| {
                QueryError::Invalid(format!("having on {name:?}: value {v} is not a number"))
            })
    };
    Ok(match h {
        HavingSpec::GreaterThan { aggregation, value } => CompiledHaving::Compare {
            name: aggregation.clone(),
            op: Ordering::Greater,
            value: num(aggregation, value)?,
        },
        HavingSpec::LessThan { aggregation, value } => CompiledHaving::Compare {
            name: aggregation.clone(),
            op: Ordering::Less,
            value: num(aggregation, value)?,
        },
        HavingSpec::EqualTo { aggregation, value } => CompiledHaving::Compare {
            name: aggregation.clone(),
            op: Ordering::Equal,
            value: num(aggregation, value)?,
        },
        HavingSpec::And { having_specs } => CompiledHaving::And(
            having_specs
                .iter()
                .map(compile_having)
                .collect::<Result<_, _>>()?,
        ),
        HavingSpec::Or { having_specs } => CompiledHaving::Or(
            having_specs
                .iter()
                .map(compile_having)
                .collect::<Result<_, _>>()?,
        ),
        HavingSpec::Not { having_spec } => {
            CompiledHaving::Not(Box::new(compile_having(having_spec)?))
        }
        HavingSpec::DimSelector { dimension, value } => CompiledHaving::DimSelector {
            dimension: dimension.clone(),
            value: value.as_ref().and_then(|v| {
                eddy_types::serde_util::value_to_opt_string(v)
                    .ok()
                    .flatten()
            }),
        },
        HavingSpec::Filter { filter } => CompiledHaving::Filter(RowFilter::compile(filter)?),
        HavingSpec::Always => CompiledHaving::Always,
        HavingSpec::Never => CompiledHaving::Never,
    })
}

pub(super) fn having_matches(h: &CompiledHaving, event: &Map<String, Value>) -> bool {
    match h {
        CompiledHaving::Compare { name, op, value } => event
            .get(name)
            .and_then(Value::as_f64)
            .is_some_and(|v| v.partial_cmp(value) == Some(*op)),
        CompiledHaving::And(hs) => hs.iter().all(|h| having_matches(h, event)),
        CompiledHaving::Or(hs) => hs.iter().any(|h| having_matches(h, event)),
        CompiledHaving::Not(h) => !having_matches(h, event),
        CompiledHaving::DimSelector { dimension, value } => {
            let actual = event.get(dimension).and_then(|v| match v {
                Value::Null => None,
                Value::String(s) => Some(s.clone()),
                other => Some(other.to_string()),
            });
            actual == *value
        }
        CompiledHaving::Filter(f) => {
            f.matches(&|name| event.get(name).map_or(RowValue::Null, json_row_value))
        }
        CompiledHaving::Always => true,
        CompiledHaving::Never => false,
    }
}
