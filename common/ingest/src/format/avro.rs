//! Avro object container files (`avro_ocf`): the writer schema comes from the file.

use std::borrow::Cow;
use std::io::Read;

use apache_avro::types::Value as Avro;
use serde_json::{Map, Value};

use eddy_segment::input::{InputRow, InputValue};
use eddy_types::spec::ingest::FlattenSpec;

use super::{Record, Sink};
use crate::error::IngestError;
use crate::flatten::Flattener;
use crate::source::Entity;

pub(crate) struct AvroRow<'a> {
    pub(crate) fields: &'a [(String, Avro)],
    pub(crate) binary_as_string: bool,
}

fn convert(v: &Avro, binary_as_string: bool) -> InputValue<'_> {
    match v {
        Avro::Null => InputValue::Null,
        Avro::Boolean(b) => InputValue::Bool(*b),
        Avro::Int(i) | Avro::Date(i) | Avro::TimeMillis(i) => InputValue::Long(i64::from(*i)),
        Avro::Long(i)
        | Avro::TimestampMillis(i)
        | Avro::LocalTimestampMillis(i)
        | Avro::TimeMicros(i) => InputValue::Long(*i),
        Avro::TimestampMicros(i) | Avro::LocalTimestampMicros(i) => InputValue::Long(i / 1000),
        Avro::TimestampNanos(i) | Avro::LocalTimestampNanos(i) => InputValue::Long(i / 1_000_000),
        Avro::Float(f) => InputValue::Double(f64::from(*f)),
        Avro::Double(f) => InputValue::Double(*f),
        Avro::String(s) | Avro::Enum(_, s) => InputValue::Str(Cow::Borrowed(s)),
        Avro::Uuid(u) => InputValue::Str(Cow::Owned(u.to_string())),
        Avro::Bytes(b) | Avro::Fixed(_, b) => {
            if binary_as_string {
                InputValue::Str(String::from_utf8_lossy(b))
            } else {
                InputValue::Str(Cow::Owned(b.iter().map(|x| format!("{x:02x}")).collect()))
            }
        }
        Avro::Union(_, inner) => convert(inner, binary_as_string),
        Avro::Array(items) => {
            InputValue::List(items.iter().map(|i| convert(i, binary_as_string)).collect())
        }
        other => InputValue::Str(Cow::Owned(to_json(other, binary_as_string).to_string())),
    }
}

pub(crate) fn to_json(v: &Avro, binary_as_string: bool) -> Value {
    match v {
        Avro::Record(fields) => Value::Object(
            fields
                .iter()
                .map(|(k, v)| (k.clone(), to_json(v, binary_as_string)))
                .collect(),
        ),
        Avro::Map(m) => Value::Object(
            m.iter()
                .map(|(k, v)| (k.clone(), to_json(v, binary_as_string)))
                .collect(),
        ),
        Avro::Array(items) => {
            Value::Array(items.iter().map(|i| to_json(i, binary_as_string)).collect())
        }
        Avro::Union(_, inner) => to_json(inner, binary_as_string),
        other => match convert(other, binary_as_string) {
            InputValue::Null => Value::Null,
            InputValue::Bool(b) => Value::Bool(b),
            InputValue::Long(i) => Value::from(i),
            InputValue::Double(f) => {
                serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)
            }
            InputValue::Str(s) => Value::String(s.into_owned()),
            InputValue::List(_) => Value::Null,
        },
    }
}

impl InputRow for AvroRow<'_> {
    fn get(&self, field: &str) -> InputValue<'_> {
        self.fields
            .iter()
            .find(|(k, _)| k == field)
            .map_or(InputValue::Null, |(_, v)| convert(v, self.binary_as_string))
    }

    fn field_names(&self, out: &mut Vec<String>) {
        out.extend(self.fields.iter().map(|(k, _)| k.clone()));
    }
}

pub fn read(
    entity: &Entity,
    input: impl Read,
    flatten: Option<&FlattenSpec>,
    binary_as_string: bool,
    sink: &mut Sink<'_>,
) -> Result<(), IngestError> {
    let flattener = Flattener::new(flatten, "spec.ioConfig.inputFormat")?;
    let reader = apache_avro::Reader::new(input).map_err(|e| {
        IngestError::Io(format!(
            "{} is not an Avro container file: {e}",
            entity.name()
        ))
    })?;
    for (i, value) in reader.enumerate() {
        let value = match value {
            Ok(v) => v,
            Err(e) => {
                sink(Record::Bad {
                    raw: format!("record {i}"),
                    reason: format!("Avro record does not decode: {e}"),
                })?;
                continue;
            }
        };
        let Avro::Record(fields) = &value else {
            sink(Record::Bad {
                raw: format!("record {i}"),
                reason: "Avro value is not a record".into(),
            })?;
            continue;
        };
        match &flattener {
            Some(f) => {
                let Value::Object(root) = to_json(&value, binary_as_string) else {
                    continue;
                };
                let flat: Map<String, Value> = f.apply(&root);
                sink(Record::Row(&flat))?;
            }
            None => sink(Record::Row(&AvroRow {
                fields,
                binary_as_string,
            }))?,
        }
    }
    Ok(())
}
