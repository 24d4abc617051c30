//! Query dimension specs: a column name, or `{"type":"default","dimension":..,"outputName":..,
//! "outputType":..}`. Extraction dimension specs parse but are refused by `validate`.

use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DimensionSpec {
    pub dimension: String,
    pub output_name: String,
    /// STRING, LONG, FLOAT or DOUBLE.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output_type: Option<ValueType>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extraction_fn: Option<Value>,
}

/// Druid's scalar column types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum ValueType {
    String,
    Long,
    Float,
    Double,
}

impl ValueType {
    pub fn from_name(s: &str) -> Option<Self> {
        match s.to_ascii_uppercase().as_str() {
            "STRING" | "VARCHAR" => Some(ValueType::String),
            "LONG" | "BIGINT" => Some(ValueType::Long),
            "FLOAT" => Some(ValueType::Float),
            "DOUBLE" => Some(ValueType::Double),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            ValueType::String => "STRING",
            ValueType::Long => "LONG",
            ValueType::Float => "FLOAT",
            ValueType::Double => "DOUBLE",
        }
    }
}

impl<'de> Deserialize<'de> for ValueType {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        ValueType::from_name(&s).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "unknown type {s:?}: expected STRING, LONG, FLOAT or DOUBLE"
            ))
        })
    }
}

impl DimensionSpec {
    pub fn of(column: &str) -> Self {
        DimensionSpec {
            dimension: column.to_string(),
            output_name: column.to_string(),
            output_type: None,
            extraction_fn: None,
        }
    }

    pub fn validate(&self) -> Result<(), String> {
        if self.extraction_fn.as_ref().is_some_and(|v| !v.is_null()) {
            return Err(format!(
                "extraction dimension specs are not supported (dimension {:?}); use a virtual column or SQL",
                self.dimension
            ));
        }
        Ok(())
    }
}

impl<'de> Deserialize<'de> for DimensionSpec {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Obj {
            #[serde(default, rename = "type")]
            kind: Option<String>,
            dimension: String,
            #[serde(default)]
            output_name: Option<String>,
            #[serde(default)]
            output_type: Option<ValueType>,
            #[serde(default)]
            extraction_fn: Option<Value>,
            #[serde(default)]
            dimension_extraction_fn: Option<Value>,
        }
        let v = Value::deserialize(d)?;
        match v {
            Value::String(s) => Ok(DimensionSpec::of(&s)),
            Value::Object(_) => {
                let o: Obj = serde_json::from_value(v).map_err(serde::de::Error::custom)?;
                match o.kind.as_deref() {
                    None | Some("default") | Some("extraction") | Some("listFiltered") => {}
                    Some(other) => {
                        return Err(serde::de::Error::custom(format!(
                            "unknown dimension spec type {other:?}: expected \"default\""
                        )));
                    }
                }
                Ok(DimensionSpec {
                    output_name: o.output_name.unwrap_or_else(|| o.dimension.clone()),
                    dimension: o.dimension,
                    output_type: o.output_type,
                    extraction_fn: o.extraction_fn.or(o.dimension_extraction_fn),
                })
            }
            other => Err(serde::de::Error::custom(format!(
                "a dimension is a column name or {{\"type\":\"default\",\"dimension\":..}}, got {other}"
            ))),
        }
    }
}
