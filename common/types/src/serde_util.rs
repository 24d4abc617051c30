//! Lenient deserializers for Druid JSON, where booleans and numbers sometimes arrive as strings
//! (`"descending": "true"`, `"skipEmptyBuckets": "true"`).

use serde::Deserialize;
use serde::de::{self, Deserializer};
use serde_json::Value;

/// `true`, `false`, `"true"`, `"false"` (any case), 1/0.
pub fn bool_lenient<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    let v = Value::deserialize(d)?;
    value_as_bool(&v).ok_or_else(|| de::Error::custom(format!("expected true or false, got {v}")))
}

pub fn opt_bool_lenient<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    let v = Value::deserialize(d)?;
    if v.is_null() {
        return Ok(None);
    }
    value_as_bool(&v)
        .map(Some)
        .ok_or_else(|| de::Error::custom(format!("expected true or false, got {v}")))
}

pub fn value_as_bool(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::String(s) if s.eq_ignore_ascii_case("true") => Some(true),
        Value::String(s) if s.eq_ignore_ascii_case("false") => Some(false),
        Value::Number(n) => n.as_i64().map(|i| i != 0),
        _ => None,
    }
}

pub fn value_as_i64(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n
            .as_i64()
            .or_else(|| n.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64)),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// Numbers given as numbers or numeric strings.
pub fn opt_i64_lenient<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    let v = Value::deserialize(d)?;
    if v.is_null() {
        return Ok(None);
    }
    value_as_i64(&v)
        .map(Some)
        .ok_or_else(|| de::Error::custom(format!("expected a whole number, got {v}")))
}

/// A scalar given as string, number or boolean, kept as its string form; null stays None.
pub fn opt_stringish<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let v = Value::deserialize(d)?;
    value_to_opt_string(&v).map_err(de::Error::custom)
}

pub fn value_to_opt_string(v: &Value) -> Result<Option<String>, String> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s.clone())),
        Value::Number(n) => Ok(Some(n.to_string())),
        Value::Bool(b) => Ok(Some(b.to_string())),
        other => Err(format!("expected a string or number, got {other}")),
    }
}

/// A list of scalars as strings (nulls kept as None).
pub fn vec_stringish<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Option<String>>, D::Error> {
    let v = Value::deserialize(d)?;
    match v {
        Value::Array(items) => items
            .iter()
            .map(|i| value_to_opt_string(i).map_err(de::Error::custom))
            .collect(),
        Value::Null => Ok(Vec::new()),
        other => Err(de::Error::custom(format!(
            "expected a list of values, got {other}"
        ))),
    }
}
