//! The record the collector produces: the schema, the mapping that fills it, and the framing
//! of the message (bare Avro, or Confluent's wire format with a schema id).

pub mod avro;
pub mod mapping;
pub mod sources;

use serde::{Deserialize, Serialize};

pub use mapping::Mapping;
pub use sources::Context;

/// The schema and mapping compiled into the binary.
pub const DEFAULT_SCHEMA: &str = include_str!("../schema/clicks.avsc");
pub const DEFAULT_MAPPING: &str = include_str!("../schema/clicks-mapping.toml");

/// How a record is framed in its message.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Framing {
    /// The Avro datum alone; readers must know the writer schema (Druid's `schema_inline`).
    #[default]
    Naked,
    /// A zero byte, the 4-byte big-endian schema id, then the datum (Druid's
    /// `schema_registry` decoder, Confluent's serializers).
    Confluent,
}

/// Encodes events into messages.
pub struct Encoder {
    pub mapping: Mapping,
    framing: Framing,
    schema_id: u32,
}

impl Encoder {
    pub fn new(mapping: Mapping, framing: Framing, schema_id: u32) -> Encoder {
        Encoder {
            mapping,
            framing,
            schema_id,
        }
    }

    /// One message for the event.
    pub fn message(&self, ctx: &Context<'_>) -> Result<Vec<u8>, String> {
        let mut out = Vec::with_capacity(512);
        if self.framing == Framing::Confluent {
            out.push(0);
            out.extend(self.schema_id.to_be_bytes());
        }
        self.mapping.encode(ctx, &mut out)?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests;
