//! The query `context`: a free map, with typed accessors for the keys Eddy acts on. Values may
//! be strings ("true", "1000") as in Druid's docs.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use eddy_types::serde_util::{value_as_bool, value_as_i64};

#[derive(Debug, Clone, PartialEq, Default, Serialize)]
#[serde(transparent)]
pub struct QueryContext(pub Map<String, Value>);

impl<'de> Deserialize<'de> for QueryContext {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Value::deserialize(d)? {
            Value::Null => Ok(QueryContext::default()),
            Value::Object(m) => Ok(QueryContext(m)),
            other => Err(serde::de::Error::custom(format!(
                "context must be an object, got {other}"
            ))),
        }
    }
}

impl QueryContext {
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.0.get(key).filter(|v| !v.is_null())
    }

    pub fn bool(&self, key: &str) -> Option<bool> {
        self.get(key).and_then(value_as_bool)
    }

    pub fn i64(&self, key: &str) -> Option<i64> {
        self.get(key).and_then(value_as_i64)
    }

    pub fn string(&self, key: &str) -> Option<String> {
        self.get(key).and_then(|v| match v {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        })
    }

    /// `timeout` in ms; 0 or absent means none (the server's maximum still applies).
    pub fn timeout_ms(&self) -> Option<u64> {
        self.i64("timeout").filter(|t| *t > 0).map(|t| t as u64)
    }

    pub fn query_id(&self) -> Option<String> {
        self.string("queryId")
    }

    pub fn skip_empty_buckets(&self) -> bool {
        self.bool("skipEmptyBuckets").unwrap_or(false)
    }

    pub fn grand_total(&self) -> bool {
        self.bool("grandTotal").unwrap_or(false)
    }

    pub fn min_top_n_threshold(&self) -> usize {
        self.i64("minTopNThreshold")
            .filter(|v| *v > 0)
            .map_or(1000, |v| v as usize)
    }

    /// `finalize: false` returns raw sketches instead of estimates.
    pub fn finalize(&self) -> bool {
        self.bool("finalize").unwrap_or(true)
    }

    pub fn set(&mut self, key: &str, value: Value) {
        self.0.insert(key.to_string(), value);
    }
}
