//! Stream messages to rows: one message is one record (`json`, `avro_stream`), or is wrapped by
//! Kafka's `kafka` format, which adds the message's key, timestamp, topic and headers as
//! columns. Delimited formats (`csv`, `tsv`) go through [`crate::format`] a batch at a time.
//!
//! `avro_stream` with `schema_registry` reads Confluent's framing (magic byte 0, a 4-byte
//! big-endian schema id, then the datum). Schemas are fetched by the caller (it is async I/O)
//! for the ids [`MessageDecoder::missing_schemas`] names, and handed over with
//! [`MessageDecoder::add_schema`].

mod datum;
mod flat_json;

use std::collections::HashMap;

use apache_avro::Schema;
use apache_avro::reader::datum::GenericDatumReader;
use apache_avro::types::Value as Avro;
use serde_json::{Map, Value};

use eddy_segment::recycle;
use eddy_types::spec::ingest::{AvroBytesDecoder, InputFormat};

use crate::error::IngestError;
use crate::flatten::Flattener;
use crate::format::Record;
use crate::format::avro::{AvroRow, to_json};
use crate::format::json::kind;
use datum::{DatumPlan, Slot};

/// A message as the decoder sees it.
pub struct Message<'a> {
    pub value: &'a [u8],
    pub key: Option<&'a [u8]>,
    pub timestamp: i64,
    pub topic: &'a str,
    pub headers: &'a [(String, Option<Vec<u8>>)],
}

enum AvroSource {
    Inline(Box<Schema>),
    Registry {
        url: String,
        schemas: HashMap<u32, Schema>,
    },
}

enum Body {
    Json,
    Avro {
        source: AvroSource,
        /// Compiled plans by schema id ([`INLINE`] for the inline schema).
        plans: HashMap<u32, DatumPlan>,
        binary_as_string: bool,
    },
}

/// Column names of the `kafka` wrapper.
struct Wrapper {
    key: String,
    timestamp: String,
    topic: String,
    header_prefix: String,
}

pub struct MessageDecoder {
    body: Body,
    flattener: Option<Flattener>,
    wrapper: Option<Wrapper>,
}

const PATH: &str = "spec.ioConfig.inputFormat";

fn body_of(format: &InputFormat, path: &str) -> Result<(Body, Option<Flattener>), IngestError> {
    match format {
        InputFormat::Json { flatten_spec, .. } => {
            Ok((Body::Json, Flattener::new(flatten_spec.as_ref(), path)?))
        }
        InputFormat::AvroStream {
            flatten_spec,
            binary_as_string,
            avro_bytes_decoder,
        } => {
            let source = match avro_bytes_decoder {
                AvroBytesDecoder::SchemaInline { schema } => {
                    let parsed = Schema::parse(schema).map_err(|e| {
                        IngestError::Spec(format!(
                            "{path}.avroBytesDecoder.schema: not a valid Avro schema: {e}"
                        ))
                    })?;
                    AvroSource::Inline(Box::new(parsed))
                }
                AvroBytesDecoder::SchemaRegistry { url, urls } => {
                    let url = url
                        .clone()
                        .or_else(|| urls.as_ref().and_then(|u| u.first().cloned()))
                        .ok_or_else(|| {
                            IngestError::Spec(format!(
                                "{path}.avroBytesDecoder.url: the schema registry's URL is required"
                            ))
                        })?;
                    AvroSource::Registry {
                        url: url.trim_end_matches('/').to_string(),
                        schemas: HashMap::new(),
                    }
                }
            };
            let mut plans = HashMap::new();
            if let AvroSource::Inline(schema) = &source
                && let Some(plan) = DatumPlan::compile(schema)
            {
                plans.insert(INLINE, plan);
            }
            Ok((
                Body::Avro {
                    source,
                    plans,
                    binary_as_string: *binary_as_string,
                },
                Flattener::new(flatten_spec.as_ref(), path)?,
            ))
        }
        InputFormat::Kafka { .. } => Err(IngestError::Spec(format!(
            "{path}: a kafka format cannot wrap another kafka format"
        ))),
        _ => Err(IngestError::Spec(format!(
            "{path}.type: messages are read as json or avro_stream here (csv and tsv are read a batch at a time)"
        ))),
    }
}

impl MessageDecoder {
    /// A decoder for `format`; `None` for the delimited formats, which are read per batch.
    pub fn new(format: &InputFormat) -> Result<Option<MessageDecoder>, IngestError> {
        match format {
            InputFormat::Csv { .. } | InputFormat::Tsv { .. } => Ok(None),
            InputFormat::Kafka {
                value_format,
                key_column_name,
                timestamp_column_name,
                topic_column_name,
                header_column_prefix,
                ..
            } => {
                let (body, flattener) = body_of(value_format, &format!("{PATH}.valueFormat"))?;
                Ok(Some(MessageDecoder {
                    body,
                    flattener,
                    wrapper: Some(Wrapper {
                        key: key_column_name
                            .clone()
                            .unwrap_or_else(|| "kafka.key".into()),
                        timestamp: timestamp_column_name
                            .clone()
                            .unwrap_or_else(|| "kafka.timestamp".into()),
                        topic: topic_column_name
                            .clone()
                            .unwrap_or_else(|| "kafka.topic".into()),
                        header_prefix: header_column_prefix
                            .clone()
                            .unwrap_or_else(|| "kafka.header.".into()),
                    }),
                }))
            }
            other => {
                let (body, flattener) = body_of(other, PATH)?;
                Ok(Some(MessageDecoder {
                    body,
                    flattener,
                    wrapper: None,
                }))
            }
        }
    }

    /// The schema registry to fetch from, when schemas come from one.
    pub fn registry_url(&self) -> Option<&str> {
        match &self.body {
            Body::Avro {
                source: AvroSource::Registry { url, .. },
                ..
            } => Some(url),
            _ => None,
        }
    }

    /// Schema ids these messages name that are not known yet.
    pub fn missing_schemas<'a>(&self, values: impl Iterator<Item = &'a [u8]>) -> Vec<u32> {
        let Body::Avro {
            source: AvroSource::Registry { schemas, .. },
            ..
        } = &self.body
        else {
            return Vec::new();
        };
        let mut out: Vec<u32> = values
            .filter_map(confluent_id)
            .filter(|id| !schemas.contains_key(id))
            .collect();
        out.sort_unstable();
        out.dedup();
        out
    }

    /// Adds a schema fetched from the registry (its JSON text).
    pub fn add_schema(&mut self, id: u32, text: &str) -> Result<(), String> {
        if let Body::Avro {
            source: AvroSource::Registry { schemas, .. },
            plans,
            ..
        } = &mut self.body
        {
            let schema = Schema::parse_str(text)
                .map_err(|e| format!("schema {id} from the registry is not valid Avro: {e}"))?;
            if let Some(plan) = DatumPlan::compile(&schema) {
                plans.insert(id, plan);
            }
            schemas.insert(id, schema);
        }
        Ok(())
    }

    /// A decoder for one batch of messages (it keeps the Avro readers it builds).
    pub fn batch(&self) -> BatchDecoder<'_> {
        BatchDecoder {
            decoder: self,
            readers: HashMap::new(),
            slots: Vec::new(),
            group_slots: Vec::new(),
        }
    }

    fn emit_map(
        &self,
        map: Map<String, Value>,
        msg: &Message<'_>,
        sink: &mut dyn FnMut(Record<'_>) -> Result<(), IngestError>,
    ) -> Result<(), IngestError> {
        let mut map = match &self.flattener {
            Some(f) => f.apply(&map),
            None => map,
        };
        if let Some(w) = &self.wrapper {
            map.insert(w.timestamp.clone(), Value::from(msg.timestamp));
            map.insert(w.topic.clone(), Value::String(msg.topic.to_string()));
            if let Some(k) = msg.key {
                map.insert(
                    w.key.clone(),
                    Value::String(String::from_utf8_lossy(k).into_owned()),
                );
            }
            for (name, value) in msg.headers {
                let v = value.as_ref().map_or(Value::Null, |b| {
                    Value::String(String::from_utf8_lossy(b).into_owned())
                });
                map.insert(format!("{}{name}", w.header_prefix), v);
            }
        }
        sink(Record::Row(&map))
    }
}

/// Decodes the messages of one batch; Avro readers (schema resolution) are built once per
/// schema per batch.
pub struct BatchDecoder<'d> {
    decoder: &'d MessageDecoder,
    readers: HashMap<u32, GenericDatumReader<'d>>,
    /// Decoded values of the current datum (kept empty between messages, for its buffer).
    slots: Vec<Slot<'static>>,
    /// The same for each datum of a group ([`BatchDecoder::decode_group`]).
    group_slots: Vec<Vec<Slot<'static>>>,
}

/// How many messages [`BatchDecoder::decode_group`] takes at most (enough rows for the index to
/// overlap their dictionaries' cache misses, few enough that their values stay in the cache).
pub const GROUP: usize = 16;

/// Reader key of the inline schema.
const INLINE: u32 = u32::MAX;

impl BatchDecoder<'_> {
    /// Decodes up to [`GROUP`] messages and hands their records, in order, to `sink` at once
    /// when all of them are Avro datums with a compiled plan and no flattening or wrapping (so
    /// the index can work on several rows side by side); otherwise one record at a time.
    pub fn decode_group(
        &mut self,
        msgs: &[Message<'_>],
        sink: &mut dyn FnMut(&[Record<'_>]) -> Result<(), IngestError>,
    ) -> Result<(), IngestError> {
        let d = self.decoder;
        let planned = match &d.body {
            Body::Avro {
                source,
                plans,
                binary_as_string,
            } if d.flattener.is_none() && d.wrapper.is_none() => {
                // None when a schema has no plan: the general reader then takes the
                // messages one by one.
                let located: Option<Vec<_>> = msgs
                    .iter()
                    .map(|m| match locate(source, m.value) {
                        Ok((key, _, datum)) => plans.get(&key).map(|plan| Ok((plan, datum))),
                        Err(reason) => Some(Err(reason)),
                    })
                    .collect();
                located.map(|located| (located, *binary_as_string))
            }
            _ => None,
        };
        let Some((located, binary_as_string)) = planned else {
            for msg in msgs {
                self.decode(msg, &mut |record| sink(std::slice::from_ref(&record)))?;
            }
            return Ok(());
        };
        let mut slots: Vec<Vec<Slot<'_>>> = std::mem::take(&mut self.group_slots)
            .into_iter()
            .map(recycle)
            .collect();
        slots.resize_with(slots.len().max(msgs.len()), Vec::new);
        let decoded: Vec<Result<&DatumPlan, String>> = located
            .into_iter()
            .zip(slots.iter_mut())
            .map(|(located, out)| {
                let (plan, datum) = located?;
                plan.decode(datum, out)
                    .map(|()| plan)
                    .map_err(|e| format!("Avro datum does not decode with the schema: {e}"))
            })
            .collect();
        let rows: Vec<Result<_, &String>> = decoded
            .iter()
            .zip(&slots)
            .map(|(plan, out)| plan.as_ref().map(|p| p.row(out, binary_as_string)))
            .collect();
        let records: Vec<Record<'_>> = rows
            .iter()
            .zip(msgs)
            .map(|(row, msg)| match row {
                Ok(row) => Record::Row(row),
                Err(reason) => Record::Bad {
                    raw: raw_text(msg.value),
                    reason: (*reason).clone(),
                },
            })
            .collect();
        let result = sink(&records);
        drop(records);
        drop(rows);
        self.group_slots = slots.into_iter().map(recycle).collect();
        result
    }

    /// Decodes one message into `sink` (a row, or the reason it is unparseable).
    pub fn decode(
        &mut self,
        msg: &Message<'_>,
        sink: &mut dyn FnMut(Record<'_>) -> Result<(), IngestError>,
    ) -> Result<(), IngestError> {
        let d = self.decoder;
        let bad = |reason: String| Record::Bad {
            raw: raw_text(msg.value),
            reason,
        };
        match &d.body {
            Body::Json => {
                // Flat reading when nothing needs the object as a map.
                if d.flattener.is_none()
                    && d.wrapper.is_none()
                    && let Some(row) = flat_json::parse(msg.value)
                {
                    return sink(Record::Row(&row));
                }
                match serde_json::from_slice::<Value>(msg.value) {
                    Ok(Value::Object(map)) => d.emit_map(map, msg, sink),
                    Ok(other) => sink(bad(format!("expected a JSON object, got {}", kind(&other)))),
                    Err(e) => sink(bad(format!("invalid JSON: {e}"))),
                }
            }
            Body::Avro {
                source,
                plans,
                binary_as_string,
            } => {
                let (key, schema, mut datum) = match locate(source, msg.value) {
                    Ok(found) => found,
                    Err(reason) => return sink(bad(reason)),
                };
                if d.flattener.is_none()
                    && d.wrapper.is_none()
                    && let Some(plan) = plans.get(&key)
                {
                    let mut slots = recycle(std::mem::take(&mut self.slots));
                    let result = match plan.decode(datum, &mut slots) {
                        Ok(()) => sink(Record::Row(&plan.row(&slots, *binary_as_string))),
                        Err(e) => sink(bad(format!(
                            "Avro datum does not decode with the schema: {e}"
                        ))),
                    };
                    self.slots = recycle(slots);
                    return result;
                }
                let reader = match self.readers.entry(key) {
                    std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                    std::collections::hash_map::Entry::Vacant(e) => {
                        match GenericDatumReader::builder(schema).build() {
                            Ok(r) => e.insert(r),
                            Err(err) => {
                                return sink(bad(format!(
                                    "the Avro schema does not resolve: {err}"
                                )));
                            }
                        }
                    }
                };
                let value = match reader.read_value(&mut datum) {
                    Ok(v) => v,
                    Err(e) => {
                        return sink(bad(format!(
                            "Avro datum does not decode with the schema: {e}"
                        )));
                    }
                };
                let Avro::Record(fields) = &value else {
                    return sink(bad("the Avro datum is not a record".into()));
                };
                if d.flattener.is_none() && d.wrapper.is_none() {
                    return sink(Record::Row(&AvroRow {
                        fields,
                        binary_as_string: *binary_as_string,
                    }));
                }
                match to_json(&value, *binary_as_string) {
                    Value::Object(map) => d.emit_map(map, msg, sink),
                    _ => sink(bad("the Avro datum is not a record".into())),
                }
            }
        }
    }
}

/// The reader key, schema and datum bytes of an Avro message, or why it has none.
fn locate<'s, 'm>(
    source: &'s AvroSource,
    value: &'m [u8],
) -> Result<(u32, &'s Schema, &'m [u8]), String> {
    match source {
        AvroSource::Inline(s) => Ok((INLINE, s, value)),
        AvroSource::Registry { schemas, .. } => {
            let id = confluent_id(value).ok_or_else(|| {
                "not in Confluent's framing (magic byte 0 and a 4-byte schema id)".to_string()
            })?;
            match schemas.get(&id) {
                Some(s) => Ok((id, s, &value[5..])),
                None => Err(format!("schema {id} is not in the schema registry")),
            }
        }
    }
}

/// The schema id of a message in Confluent's framing.
fn confluent_id(value: &[u8]) -> Option<u32> {
    (value.len() >= 5 && value[0] == 0)
        .then(|| u32::from_be_bytes([value[1], value[2], value[3], value[4]]))
}

/// A message as text for parse-error reports (binary bytes escaped).
fn raw_text(value: &[u8]) -> String {
    let cut = &value[..value.len().min(1024)];
    match std::str::from_utf8(cut) {
        Ok(s) => s.to_string(),
        Err(_) => cut.iter().map(|b| format!("\\x{b:02x}")).collect(),
    }
}

#[cfg(test)]
mod tests;
