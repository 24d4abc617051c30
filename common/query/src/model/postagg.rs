//! Post-aggregators: arithmetic over finalized aggregates, evaluated per result row.

use serde::Deserialize;
use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(
    tag = "type",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum PostAggregator {
    Arithmetic {
        name: String,
        #[serde(rename = "fn")]
        func: String,
        fields: Vec<PostAggregator>,
        #[serde(default)]
        ordering: Option<String>,
    },
    FieldAccess {
        #[serde(default)]
        name: Option<String>,
        field_name: String,
    },
    FinalizingFieldAccess {
        #[serde(default)]
        name: Option<String>,
        field_name: String,
    },
    Constant {
        name: String,
        value: Value,
    },
    HyperUniqueCardinality {
        name: String,
        field_name: String,
    },
    DoubleGreatest {
        name: String,
        fields: Vec<PostAggregator>,
    },
    DoubleLeast {
        name: String,
        fields: Vec<PostAggregator>,
    },
    LongGreatest {
        name: String,
        fields: Vec<PostAggregator>,
    },
    LongLeast {
        name: String,
        fields: Vec<PostAggregator>,
    },
}

/// A finalized value a post-aggregator reads or yields.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Num {
    Long(i64),
    Double(f64),
}

impl Num {
    pub fn as_f64(self) -> f64 {
        match self {
            Num::Long(v) => v as f64,
            Num::Double(v) => v,
        }
    }
}

impl PostAggregator {
    pub fn name(&self) -> &str {
        match self {
            PostAggregator::Arithmetic { name, .. }
            | PostAggregator::Constant { name, .. }
            | PostAggregator::HyperUniqueCardinality { name, .. }
            | PostAggregator::DoubleGreatest { name, .. }
            | PostAggregator::DoubleLeast { name, .. }
            | PostAggregator::LongGreatest { name, .. }
            | PostAggregator::LongLeast { name, .. } => name,
            PostAggregator::FieldAccess { name, field_name }
            | PostAggregator::FinalizingFieldAccess { name, field_name } => {
                name.as_deref().unwrap_or(field_name)
            }
        }
    }

    /// Checks functions and that every field it reads is an earlier output.
    pub fn validate(&self, known: &[&str]) -> Result<(), String> {
        match self {
            PostAggregator::Arithmetic {
                func, fields, name, ..
            } => {
                if !matches!(func.as_str(), "+" | "-" | "*" | "/" | "quotient" | "pow") {
                    return Err(format!(
                        "{name:?}: unknown arithmetic fn {func:?}: expected +, -, *, /, quotient or pow"
                    ));
                }
                if fields.is_empty() {
                    return Err(format!("{name:?}: arithmetic needs at least one field"));
                }
                fields.iter().try_for_each(|f| f.validate(known))
            }
            PostAggregator::FieldAccess { field_name, .. }
            | PostAggregator::FinalizingFieldAccess { field_name, .. }
            | PostAggregator::HyperUniqueCardinality { field_name, .. } => {
                if known.contains(&field_name.as_str()) {
                    Ok(())
                } else {
                    Err(format!(
                        "fieldName {field_name:?} is not an aggregator or earlier post-aggregator"
                    ))
                }
            }
            PostAggregator::Constant { value, name } => {
                if value.is_number() || value.as_str().is_some_and(|s| s.parse::<f64>().is_ok()) {
                    Ok(())
                } else {
                    Err(format!("{name:?}: constant value must be a number"))
                }
            }
            PostAggregator::DoubleGreatest { fields, .. }
            | PostAggregator::DoubleLeast { fields, .. }
            | PostAggregator::LongGreatest { fields, .. }
            | PostAggregator::LongLeast { fields, .. } => {
                fields.iter().try_for_each(|f| f.validate(known))
            }
        }
    }

    /// Evaluates with `lookup(name)` giving finalized values (None = null).
    pub fn compute(&self, lookup: &dyn Fn(&str) -> Option<Num>) -> Option<Num> {
        match self {
            PostAggregator::FieldAccess { field_name, .. }
            | PostAggregator::FinalizingFieldAccess { field_name, .. }
            | PostAggregator::HyperUniqueCardinality { field_name, .. } => lookup(field_name),
            PostAggregator::Constant { value, .. } => match value {
                Value::Number(n) => n
                    .as_i64()
                    .map(Num::Long)
                    .or_else(|| n.as_f64().map(Num::Double)),
                Value::String(s) => s.parse::<f64>().ok().map(Num::Double),
                _ => None,
            },
            PostAggregator::Arithmetic { func, fields, .. } => {
                let mut values = Vec::with_capacity(fields.len());
                for f in fields {
                    values.push(f.compute(lookup)?.as_f64());
                }
                let mut acc = values[0];
                for v in &values[1..] {
                    acc = match func.as_str() {
                        "+" => acc + v,
                        "-" => acc - v,
                        "*" => acc * v,
                        "/" => {
                            if *v == 0.0 {
                                0.0
                            } else {
                                acc / v
                            }
                        }
                        "quotient" => acc / v,
                        "pow" => acc.powf(*v),
                        _ => return None,
                    };
                }
                Some(Num::Double(acc))
            }
            PostAggregator::DoubleGreatest { fields, .. }
            | PostAggregator::DoubleLeast { fields, .. } => {
                let greatest = matches!(self, PostAggregator::DoubleGreatest { .. });
                let vals = fields
                    .iter()
                    .filter_map(|f| f.compute(lookup))
                    .map(Num::as_f64);
                let r = if greatest {
                    vals.fold(None, |a: Option<f64>, v| Some(a.map_or(v, |a| a.max(v))))
                } else {
                    vals.fold(None, |a: Option<f64>, v| Some(a.map_or(v, |a| a.min(v))))
                };
                r.map(Num::Double)
            }
            PostAggregator::LongGreatest { fields, .. }
            | PostAggregator::LongLeast { fields, .. } => {
                let greatest = matches!(self, PostAggregator::LongGreatest { .. });
                let vals = fields
                    .iter()
                    .filter_map(|f| f.compute(lookup))
                    .map(|n| n.as_f64() as i64);
                let r = if greatest { vals.max() } else { vals.min() };
                r.map(Num::Long)
            }
        }
    }
}
