//! groupBy `limitSpec`: ordering, limit and offset of the final rows.

use serde::Deserialize;
use serde_json::Value;

use eddy_types::spec::StringComparator;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum SortDirection {
    #[default]
    #[serde(alias = "ASCENDING", alias = "asc")]
    Ascending,
    #[serde(alias = "DESCENDING", alias = "desc")]
    Descending,
}

#[derive(Debug, Clone, PartialEq)]
pub struct OrderByColumn {
    pub dimension: String,
    pub direction: SortDirection,
    /// None: numeric for numbers, lexicographic for strings.
    pub dimension_order: Option<StringComparator>,
}

impl<'de> Deserialize<'de> for OrderByColumn {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Obj {
            dimension: String,
            #[serde(default)]
            direction: SortDirection,
            #[serde(default)]
            dimension_order: Option<StringComparator>,
        }
        match Value::deserialize(d)? {
            Value::String(s) => Ok(OrderByColumn {
                dimension: s,
                direction: SortDirection::Ascending,
                dimension_order: None,
            }),
            v @ Value::Object(_) => {
                let o: Obj = serde_json::from_value(v).map_err(serde::de::Error::custom)?;
                Ok(OrderByColumn {
                    dimension: o.dimension,
                    direction: o.direction,
                    dimension_order: o.dimension_order,
                })
            }
            other => Err(serde::de::Error::custom(format!(
                "an ordering column is a name or an object, got {other}"
            ))),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LimitSpec {
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub limit: Option<usize>,
    #[serde(default)]
    pub offset: Option<usize>,
    #[serde(default)]
    pub columns: Vec<OrderByColumn>,
}
