//! A parsed input row as the index sees it: fields by name, with borrowed values where the
//! parser allows, so indexing a row allocates only for new dictionary values.

use std::borrow::Cow;

#[derive(Debug, Clone, PartialEq)]
pub enum InputValue<'a> {
    Null,
    Str(Cow<'a, str>),
    Long(i64),
    Double(f64),
    Bool(bool),
    List(Vec<InputValue<'a>>),
}

impl<'a> InputValue<'a> {
    pub fn is_null(&self) -> bool {
        matches!(self, InputValue::Null)
    }

    /// The value as text (Druid's coercion of scalars to strings); None for null and lists.
    pub fn as_text(&self) -> Option<Cow<'_, str>> {
        match self {
            InputValue::Null | InputValue::List(_) => None,
            InputValue::Str(s) => Some(Cow::Borrowed(s.as_ref())),
            InputValue::Long(v) => Some(Cow::Owned(v.to_string())),
            InputValue::Double(v) => Some(Cow::Owned(crate::hll::format_double(*v))),
            InputValue::Bool(b) => Some(Cow::Borrowed(if *b { "true" } else { "false" })),
        }
    }

    /// The value as a long: numbers truncate, numeric text parses. `Err` for text that is not a
    /// number (the caller reports it), `Ok(None)` for null.
    pub fn as_long(&self) -> Result<Option<i64>, String> {
        match self {
            InputValue::Null => Ok(None),
            InputValue::Long(v) => Ok(Some(*v)),
            InputValue::Double(v) if v.is_finite() => Ok(Some(*v as i64)),
            InputValue::Double(v) => Err(format!("{v} is not a finite number")),
            InputValue::Bool(b) => Ok(Some(i64::from(*b))),
            InputValue::Str(s) => parse_long(s).map(Some),
            InputValue::List(items) => match items.as_slice() {
                [] => Ok(None),
                [one] => one.as_long(),
                _ => Err("a list cannot be a number".into()),
            },
        }
    }

    pub fn as_double(&self) -> Result<Option<f64>, String> {
        match self {
            InputValue::Null => Ok(None),
            InputValue::Long(v) => Ok(Some(*v as f64)),
            InputValue::Double(v) => Ok(Some(*v)),
            InputValue::Bool(b) => Ok(Some(if *b { 1.0 } else { 0.0 })),
            InputValue::Str(s) => {
                let t = s.trim();
                if t.is_empty() {
                    return Ok(None);
                }
                t.parse::<f64>()
                    .map(Some)
                    .map_err(|_| format!("{s:?} is not a number"))
            }
            InputValue::List(items) => match items.as_slice() {
                [] => Ok(None),
                [one] => one.as_double(),
                _ => Err("a list cannot be a number".into()),
            },
        }
    }

    pub fn into_owned(self) -> InputValue<'static> {
        match self {
            InputValue::Null => InputValue::Null,
            InputValue::Str(s) => InputValue::Str(Cow::Owned(s.into_owned())),
            InputValue::Long(v) => InputValue::Long(v),
            InputValue::Double(v) => InputValue::Double(v),
            InputValue::Bool(b) => InputValue::Bool(b),
            InputValue::List(items) => {
                InputValue::List(items.into_iter().map(InputValue::into_owned).collect())
            }
        }
    }
}

fn parse_long(s: &str) -> Result<i64, String> {
    let t = s.trim();
    if t.is_empty() {
        return Err("empty text is not a number".into());
    }
    t.parse::<i64>()
        .or_else(|_| {
            t.parse::<f64>()
                .ok()
                .filter(|f| f.is_finite())
                .map(|f| f as i64)
                .ok_or(())
        })
        .map_err(|_| format!("{s:?} is not a number"))
}

/// A row to index. Implementations: JSON objects, CSV records, Parquet and Avro rows, and the
/// transform layer that overlays computed fields on any of them.
pub trait InputRow {
    fn get(&self, field: &str) -> InputValue<'_>;
    /// Every top-level field name (for schemaless dimension discovery).
    fn field_names(&self, out: &mut Vec<String>);
}

/// Converts a JSON value to an input value (objects become their JSON text, as Druid does for
/// string dimensions).
pub fn json_input(v: &serde_json::Value) -> InputValue<'_> {
    use serde_json::Value;
    match v {
        Value::Null => InputValue::Null,
        Value::Bool(b) => InputValue::Bool(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => InputValue::Long(i),
            None => InputValue::Double(n.as_f64().unwrap_or(f64::NAN)),
        },
        Value::String(s) => InputValue::Str(Cow::Borrowed(s)),
        Value::Array(items) => InputValue::List(items.iter().map(json_input).collect()),
        Value::Object(_) => InputValue::Str(Cow::Owned(v.to_string())),
    }
}

impl InputRow for serde_json::Map<String, serde_json::Value> {
    fn get(&self, field: &str) -> InputValue<'_> {
        self.get(field).map_or(InputValue::Null, json_input)
    }

    fn field_names(&self, out: &mut Vec<String>) {
        out.extend(self.keys().cloned());
    }
}
