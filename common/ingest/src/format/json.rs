//! Newline-delimited JSON objects.

use std::io::{BufRead, BufReader, Read};

use serde_json::{Map, Value};

use eddy_types::spec::ingest::FlattenSpec;

use super::{Record, Sink};
use crate::error::IngestError;
use crate::flatten::Flattener;
use crate::source::Entity;

pub fn read(
    entity: &Entity,
    input: impl Read,
    flatten: Option<&FlattenSpec>,
    sink: &mut Sink<'_>,
) -> Result<(), IngestError> {
    let flattener = Flattener::new(flatten, "spec.ioConfig.inputFormat")?;
    let mut reader = BufReader::with_capacity(1 << 20, input);
    let mut line = String::new();
    loop {
        line.clear();
        let n = reader
            .read_line(&mut line)
            .map_err(|e| IngestError::Io(format!("reading {}: {e}", entity.name())))?;
        if n == 0 {
            return Ok(());
        }
        let text = line.trim();
        if text.is_empty() {
            continue;
        }
        match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(map)) => match &flattener {
                Some(f) => {
                    let flat: Map<String, Value> = f.apply(&map);
                    sink(Record::Row(&flat))?;
                }
                None => sink(Record::Row(&map))?,
            },
            Ok(other) => sink(Record::Bad {
                raw: text.to_string(),
                reason: format!("expected a JSON object, got {}", kind(&other)),
            })?,
            Err(e) => sink(Record::Bad {
                raw: text.to_string(),
                reason: format!("invalid JSON: {e}"),
            })?,
        }
    }
}

pub(crate) fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
