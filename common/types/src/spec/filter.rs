//! Druid filters (`"filter": {"type": ...}`), legacy and SQL-compatible forms alike. Legacy
//! filters name their column `dimension`, newer ones `column`; both keys are accepted everywhere.
//! Unknown keys are ignored, as Druid does (pydruid sends extra ones).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::interval::Interval;
use crate::serde_util::{bool_lenient, opt_stringish, vec_stringish};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(
    tag = "type",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum FilterSpec {
    /// `dimension = value`; a null value means IS NULL.
    Selector {
        #[serde(alias = "column")]
        dimension: String,
        #[serde(default, deserialize_with = "opt_stringish")]
        value: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        extraction_fn: Option<Value>,
    },
    /// `column = matchValue` typed by `matchValueType`; never matches null.
    #[serde(alias = "equality")]
    Equals {
        #[serde(alias = "dimension")]
        column: String,
        #[serde(default)]
        match_value_type: Option<String>,
        match_value: Value,
    },
    Null {
        #[serde(alias = "dimension")]
        column: String,
    },
    /// Any of `values`; a null among them matches nulls.
    In {
        #[serde(alias = "column")]
        dimension: String,
        #[serde(deserialize_with = "vec_stringish")]
        values: Vec<Option<String>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        extraction_fn: Option<Value>,
    },
    Bound {
        #[serde(alias = "column")]
        dimension: String,
        #[serde(default, deserialize_with = "opt_stringish")]
        lower: Option<String>,
        #[serde(default, deserialize_with = "opt_stringish")]
        upper: Option<String>,
        #[serde(default, deserialize_with = "bool_lenient")]
        lower_strict: bool,
        #[serde(default, deserialize_with = "bool_lenient")]
        upper_strict: bool,
        #[serde(default)]
        ordering: Option<StringComparator>,
        /// pydruid's legacy flag for alphanumeric ordering.
        #[serde(default, deserialize_with = "bool_lenient")]
        alpha_numeric: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        extraction_fn: Option<Value>,
    },
    /// Typed range; never matches null.
    Range {
        #[serde(alias = "dimension")]
        column: String,
        #[serde(default)]
        match_value_type: Option<String>,
        #[serde(default)]
        lower: Option<Value>,
        #[serde(default)]
        upper: Option<Value>,
        #[serde(default, deserialize_with = "bool_lenient")]
        lower_open: bool,
        #[serde(default, deserialize_with = "bool_lenient")]
        upper_open: bool,
    },
    Like {
        #[serde(alias = "column")]
        dimension: String,
        pattern: String,
        #[serde(default)]
        escape: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        extraction_fn: Option<Value>,
    },
    Regex {
        #[serde(alias = "column")]
        dimension: String,
        pattern: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        extraction_fn: Option<Value>,
    },
    Search {
        #[serde(alias = "column")]
        dimension: String,
        query: SearchQuerySpec,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        extraction_fn: Option<Value>,
    },
    Interval {
        #[serde(alias = "column")]
        dimension: String,
        intervals: Vec<Interval>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        extraction_fn: Option<Value>,
    },
    And {
        fields: Vec<FilterSpec>,
    },
    Or {
        fields: Vec<FilterSpec>,
    },
    Not {
        field: Box<FilterSpec>,
    },
    True,
    False,
    Expression {
        expression: String,
    },
}

/// How a `search` filter or query matches a value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(
    tag = "type",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum SearchQuerySpec {
    #[serde(rename = "insensitive_contains")]
    InsensitiveContains {
        value: String,
    },
    Contains {
        value: String,
        #[serde(default, deserialize_with = "bool_lenient")]
        case_sensitive: bool,
    },
    Fragment {
        values: Vec<String>,
        #[serde(default, deserialize_with = "bool_lenient")]
        case_sensitive: bool,
    },
    Regex {
        pattern: String,
    },
}

/// Orderings for `bound` filters and sorts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum StringComparator {
    #[default]
    Lexicographic,
    Numeric,
    Alphanumeric,
    Strlen,
    Version,
}

impl<'de> Deserialize<'de> for StringComparator {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // Either "numeric" or {"type":"numeric"}.
        let v = Value::deserialize(d)?;
        let name = match &v {
            Value::String(s) => s.clone(),
            Value::Object(o) => o
                .get("type")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            _ => String::new(),
        };
        StringComparator::from_name(&name).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "unknown ordering {v}: expected lexicographic, numeric, alphanumeric, strlen or version"
            ))
        })
    }
}

impl StringComparator {
    pub fn from_name(name: &str) -> Option<Self> {
        match name.to_ascii_lowercase().as_str() {
            "lexicographic" => Some(StringComparator::Lexicographic),
            "numeric" => Some(StringComparator::Numeric),
            "alphanumeric" => Some(StringComparator::Alphanumeric),
            "strlen" => Some(StringComparator::Strlen),
            "version" => Some(StringComparator::Version),
            _ => None,
        }
    }
}

impl FilterSpec {
    /// Rejects what parses but is not supported, naming it. Called once per query.
    pub fn validate(&self) -> Result<(), String> {
        let no_extraction = |ef: &Option<Value>, dim: &str| match ef {
            Some(v) if !v.is_null() => Err(format!(
                "extractionFn on filter of {dim:?} is not supported; use a virtual column or SQL"
            )),
            _ => Ok(()),
        };
        match self {
            FilterSpec::Selector {
                dimension,
                extraction_fn,
                ..
            }
            | FilterSpec::In {
                dimension,
                extraction_fn,
                ..
            }
            | FilterSpec::Bound {
                dimension,
                extraction_fn,
                ..
            }
            | FilterSpec::Like {
                dimension,
                extraction_fn,
                ..
            }
            | FilterSpec::Regex {
                dimension,
                extraction_fn,
                ..
            }
            | FilterSpec::Search {
                dimension,
                extraction_fn,
                ..
            }
            | FilterSpec::Interval {
                dimension,
                extraction_fn,
                ..
            } => no_extraction(extraction_fn, dimension),
            FilterSpec::Range {
                column,
                lower,
                upper,
                ..
            } => {
                if lower.as_ref().is_none_or(Value::is_null)
                    && upper.as_ref().is_none_or(Value::is_null)
                {
                    return Err(format!(
                        "range filter on {column:?} needs a lower or an upper bound"
                    ));
                }
                Ok(())
            }
            FilterSpec::Equals {
                column,
                match_value,
                ..
            } => {
                if match_value.is_null() {
                    return Err(format!(
                        "equals filter on {column:?} needs a non-null matchValue; use a null filter for IS NULL"
                    ));
                }
                Ok(())
            }
            FilterSpec::And { fields } | FilterSpec::Or { fields } => {
                fields.iter().try_for_each(FilterSpec::validate)
            }
            FilterSpec::Not { field } => field.validate(),
            FilterSpec::Null { .. }
            | FilterSpec::True
            | FilterSpec::False
            | FilterSpec::Expression { .. } => Ok(()),
        }
    }

    /// Every column the filter reads.
    pub fn columns(&self, out: &mut Vec<String>) {
        match self {
            FilterSpec::Selector { dimension, .. }
            | FilterSpec::In { dimension, .. }
            | FilterSpec::Bound { dimension, .. }
            | FilterSpec::Like { dimension, .. }
            | FilterSpec::Regex { dimension, .. }
            | FilterSpec::Search { dimension, .. }
            | FilterSpec::Interval { dimension, .. } => out.push(dimension.clone()),
            FilterSpec::Equals { column, .. }
            | FilterSpec::Null { column }
            | FilterSpec::Range { column, .. } => out.push(column.clone()),
            FilterSpec::And { fields } | FilterSpec::Or { fields } => {
                fields.iter().for_each(|f| f.columns(out))
            }
            FilterSpec::Not { field } => field.columns(out),
            FilterSpec::True | FilterSpec::False | FilterSpec::Expression { .. } => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_legacy_and_new_forms() {
        let f: FilterSpec =
            serde_json::from_value(json!({"type":"selector","dimension":"page","value":5}))
                .unwrap();
        assert_eq!(
            f,
            FilterSpec::Selector {
                dimension: "page".into(),
                value: Some("5".into()),
                extraction_fn: None
            }
        );
        let f: FilterSpec =
            serde_json::from_value(json!({"type":"selector","column":"page","value":null}))
                .unwrap();
        assert!(matches!(f, FilterSpec::Selector { value: None, .. }));
        let f: FilterSpec = serde_json::from_value(json!({"type":"bound","dimension":"x","lower":"1","alphaNumeric":false,"lowerStrict":"true","ordering":{"type":"numeric"}})).unwrap();
        assert!(matches!(
            f,
            FilterSpec::Bound {
                lower_strict: true,
                ordering: Some(StringComparator::Numeric),
                ..
            }
        ));
        let f: FilterSpec = serde_json::from_value(
            json!({"type":"not","field":{"type":"in","dimension":"a","values":["x",null,3]}}),
        )
        .unwrap();
        f.validate().unwrap();
        let f: FilterSpec = serde_json::from_value(json!({"type":"equals","column":"user","matchValueType":"STRING","matchValue":"BlueMoon2662"})).unwrap();
        f.validate().unwrap();
        let e = serde_json::from_value::<FilterSpec>(json!({"type":"nope","dimension":"a"}))
            .unwrap_err();
        assert!(e.to_string().contains("nope"), "{e}");
    }

    #[test]
    fn validation_names_problems() {
        let f: FilterSpec = serde_json::from_value(json!({"type":"range","column":"x"})).unwrap();
        assert!(f.validate().unwrap_err().contains("\"x\""));
        let f: FilterSpec = serde_json::from_value(
            json!({"type":"selector","dimension":"d","value":"a","extractionFn":{"type":"lower"}}),
        )
        .unwrap();
        assert!(f.validate().unwrap_err().contains("extractionFn"));
    }
}
