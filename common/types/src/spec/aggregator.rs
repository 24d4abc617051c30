//! Druid aggregator specs, used both as query aggregations and as ingestion `metricsSpec`.
//! Unknown keys (pydruid's `fieldName` on count) are ignored.

use serde::{Deserialize, Serialize};

use crate::serde_util::bool_lenient;
use crate::spec::dimension::DimensionSpec;
use crate::spec::filter::FilterSpec;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum AggregatorSpec {
    #[serde(rename = "count")]
    Count { name: String },
    #[serde(rename = "longSum")]
    LongSum(FieldAggregator),
    #[serde(rename = "doubleSum")]
    DoubleSum(FieldAggregator),
    #[serde(rename = "floatSum")]
    FloatSum(FieldAggregator),
    #[serde(rename = "longMin")]
    LongMin(FieldAggregator),
    #[serde(rename = "longMax")]
    LongMax(FieldAggregator),
    #[serde(rename = "doubleMin", alias = "min")]
    DoubleMin(FieldAggregator),
    #[serde(rename = "doubleMax", alias = "max")]
    DoubleMax(FieldAggregator),
    #[serde(rename = "floatMin")]
    FloatMin(FieldAggregator),
    #[serde(rename = "floatMax")]
    FloatMax(FieldAggregator),
    /// The smallest string (byte order), nulls ignored: an Eddy addition for SQL's MIN of a
    /// string column; queries only.
    #[serde(rename = "stringMin")]
    StringMin(FieldAggregator),
    /// The largest string, as [`AggregatorSpec::StringMin`].
    #[serde(rename = "stringMax")]
    StringMax(FieldAggregator),
    #[serde(rename = "longFirst")]
    LongFirst(FirstLastAggregator),
    #[serde(rename = "longLast")]
    LongLast(FirstLastAggregator),
    #[serde(rename = "doubleFirst")]
    DoubleFirst(FirstLastAggregator),
    #[serde(rename = "doubleLast")]
    DoubleLast(FirstLastAggregator),
    #[serde(rename = "floatFirst")]
    FloatFirst(FirstLastAggregator),
    #[serde(rename = "floatLast")]
    FloatLast(FirstLastAggregator),
    #[serde(rename = "stringFirst")]
    StringFirst(FirstLastAggregator),
    #[serde(rename = "stringLast")]
    StringLast(FirstLastAggregator),
    #[serde(rename = "hyperUnique")]
    HyperUnique(HyperUniqueAggregator),
    #[serde(rename = "cardinality")]
    Cardinality(CardinalityAggregator),
    #[serde(rename = "filtered")]
    Filtered(FilteredAggregator),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FieldAggregator {
    pub name: String,
    #[serde(default)]
    pub field_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expression: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FirstLastAggregator {
    pub name: String,
    pub field_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_column: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_string_bytes: Option<usize>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HyperUniqueAggregator {
    pub name: String,
    pub field_name: String,
    #[serde(default, deserialize_with = "bool_lenient")]
    pub is_input_hyper_unique: bool,
    #[serde(default, deserialize_with = "bool_lenient")]
    pub round: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CardinalityAggregator {
    pub name: String,
    /// Druid's `fields`; the deprecated `fieldNames` (what pydruid sends) is accepted too.
    #[serde(alias = "fieldNames")]
    pub fields: Vec<DimensionSpec>,
    #[serde(default, deserialize_with = "bool_lenient")]
    pub by_row: bool,
    #[serde(default, deserialize_with = "bool_lenient")]
    pub round: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FilteredAggregator {
    pub filter: FilterSpec,
    pub aggregator: Box<AggregatorSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

impl AggregatorSpec {
    pub fn name(&self) -> &str {
        match self {
            AggregatorSpec::Count { name } => name,
            AggregatorSpec::LongSum(a)
            | AggregatorSpec::DoubleSum(a)
            | AggregatorSpec::FloatSum(a)
            | AggregatorSpec::LongMin(a)
            | AggregatorSpec::LongMax(a)
            | AggregatorSpec::DoubleMin(a)
            | AggregatorSpec::DoubleMax(a)
            | AggregatorSpec::FloatMin(a)
            | AggregatorSpec::FloatMax(a)
            | AggregatorSpec::StringMin(a)
            | AggregatorSpec::StringMax(a) => &a.name,
            AggregatorSpec::LongFirst(a)
            | AggregatorSpec::LongLast(a)
            | AggregatorSpec::DoubleFirst(a)
            | AggregatorSpec::DoubleLast(a)
            | AggregatorSpec::FloatFirst(a)
            | AggregatorSpec::FloatLast(a)
            | AggregatorSpec::StringFirst(a)
            | AggregatorSpec::StringLast(a) => &a.name,
            AggregatorSpec::HyperUnique(a) => &a.name,
            AggregatorSpec::Cardinality(a) => &a.name,
            AggregatorSpec::Filtered(f) => f.name.as_deref().unwrap_or_else(|| f.aggregator.name()),
        }
    }

    /// The JSON `type` name.
    pub fn type_name(&self) -> &'static str {
        match self {
            AggregatorSpec::Count { .. } => "count",
            AggregatorSpec::LongSum(_) => "longSum",
            AggregatorSpec::DoubleSum(_) => "doubleSum",
            AggregatorSpec::FloatSum(_) => "floatSum",
            AggregatorSpec::LongMin(_) => "longMin",
            AggregatorSpec::LongMax(_) => "longMax",
            AggregatorSpec::DoubleMin(_) => "doubleMin",
            AggregatorSpec::DoubleMax(_) => "doubleMax",
            AggregatorSpec::FloatMin(_) => "floatMin",
            AggregatorSpec::FloatMax(_) => "floatMax",
            AggregatorSpec::StringMin(_) => "stringMin",
            AggregatorSpec::StringMax(_) => "stringMax",
            AggregatorSpec::LongFirst(_) => "longFirst",
            AggregatorSpec::LongLast(_) => "longLast",
            AggregatorSpec::DoubleFirst(_) => "doubleFirst",
            AggregatorSpec::DoubleLast(_) => "doubleLast",
            AggregatorSpec::FloatFirst(_) => "floatFirst",
            AggregatorSpec::FloatLast(_) => "floatLast",
            AggregatorSpec::StringFirst(_) => "stringFirst",
            AggregatorSpec::StringLast(_) => "stringLast",
            AggregatorSpec::HyperUnique(_) => "hyperUnique",
            AggregatorSpec::Cardinality(_) => "cardinality",
            AggregatorSpec::Filtered(_) => "filtered",
        }
    }

    /// Input columns this aggregator reads (not counting a filtered aggregator's filter).
    pub fn input_fields(&self) -> Vec<String> {
        match self {
            AggregatorSpec::Count { .. } => vec![],
            AggregatorSpec::LongSum(a)
            | AggregatorSpec::DoubleSum(a)
            | AggregatorSpec::FloatSum(a)
            | AggregatorSpec::LongMin(a)
            | AggregatorSpec::LongMax(a)
            | AggregatorSpec::DoubleMin(a)
            | AggregatorSpec::DoubleMax(a)
            | AggregatorSpec::FloatMin(a)
            | AggregatorSpec::FloatMax(a)
            | AggregatorSpec::StringMin(a)
            | AggregatorSpec::StringMax(a) => a.field_name.iter().cloned().collect(),
            AggregatorSpec::LongFirst(a)
            | AggregatorSpec::LongLast(a)
            | AggregatorSpec::DoubleFirst(a)
            | AggregatorSpec::DoubleLast(a)
            | AggregatorSpec::FloatFirst(a)
            | AggregatorSpec::FloatLast(a)
            | AggregatorSpec::StringFirst(a)
            | AggregatorSpec::StringLast(a) => vec![a.field_name.clone()],
            AggregatorSpec::HyperUnique(a) => vec![a.field_name.clone()],
            AggregatorSpec::Cardinality(a) => {
                a.fields.iter().map(|d| d.dimension.clone()).collect()
            }
            AggregatorSpec::Filtered(f) => f.aggregator.input_fields(),
        }
    }

    /// Checks what serde cannot: a field to read, no extraction functions, no expressions.
    pub fn validate(&self) -> Result<(), String> {
        let name = self.name();
        if name.is_empty() {
            return Err(format!(
                "{} aggregator needs a non-empty \"name\"",
                self.type_name()
            ));
        }
        match self {
            AggregatorSpec::LongSum(a)
            | AggregatorSpec::DoubleSum(a)
            | AggregatorSpec::FloatSum(a)
            | AggregatorSpec::LongMin(a)
            | AggregatorSpec::LongMax(a)
            | AggregatorSpec::DoubleMin(a)
            | AggregatorSpec::DoubleMax(a)
            | AggregatorSpec::FloatMin(a)
            | AggregatorSpec::FloatMax(a)
            | AggregatorSpec::StringMin(a)
            | AggregatorSpec::StringMax(a) => match (&a.field_name, &a.expression) {
                (Some(_), None) => Ok(()),
                (None, Some(_)) | (Some(_), Some(_)) => Err(format!(
                    "aggregator {name:?}: \"expression\" is not supported here; use \"fieldName\" with a virtual column"
                )),
                (None, None) => Err(format!(
                    "aggregator {name:?} ({}) needs \"fieldName\"",
                    self.type_name()
                )),
            },
            AggregatorSpec::Cardinality(c) => {
                if c.fields.is_empty() {
                    return Err(format!(
                        "cardinality aggregator {name:?} needs at least one field"
                    ));
                }
                c.fields.iter().try_for_each(DimensionSpec::validate)
            }
            AggregatorSpec::Filtered(f) => {
                f.filter.validate()?;
                if matches!(*f.aggregator, AggregatorSpec::Filtered(_)) {
                    // Nesting works in Druid, and here too; nothing to refuse.
                }
                f.aggregator.validate()
            }
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_pydruid_shapes() {
        let a: AggregatorSpec =
            serde_json::from_value(json!({"type":"count","name":"rows","fieldName":"x"})).unwrap();
        assert_eq!(a.name(), "rows");
        let a: AggregatorSpec = serde_json::from_value(
            json!({"type":"cardinality","name":"u","fieldNames":["user"],"byRow":false}),
        )
        .unwrap();
        assert_eq!(a.input_fields(), vec!["user".to_string()]);
        let a: AggregatorSpec =
            serde_json::from_value(json!({"type":"min","name":"m","fieldName":"x"})).unwrap();
        assert!(matches!(a, AggregatorSpec::DoubleMin(_)));
        let a: AggregatorSpec = serde_json::from_value(
            json!({"type":"filtered","filter":{"type":"selector","dimension":"a","value":"b"},"aggregator":{"type":"count","name":"c"}}),
        )
        .unwrap();
        assert_eq!(a.name(), "c");
        let a: AggregatorSpec =
            serde_json::from_value(json!({"type":"longSum","name":"s"})).unwrap();
        assert!(a.validate().unwrap_err().contains("fieldName"));
    }
}
