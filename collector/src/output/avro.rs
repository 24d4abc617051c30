//! Avro binary encoding for the record the mapping fills: the top-level record's fields are
//! primitives, or unions of null and a primitive, written straight into a buffer (no
//! intermediate value tree). Fields of other types are written from their schema default.

use apache_avro::Schema;
use apache_avro::types::Value as AvroValue;

/// A primitive Avro type a mapped field can have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prim {
    Boolean,
    Int,
    Long,
    Float,
    Double,
    String,
    Bytes,
}

impl Prim {
    pub fn name(self) -> &'static str {
        match self {
            Prim::Boolean => "boolean",
            Prim::Int => "int",
            Prim::Long => "long",
            Prim::Float => "float",
            Prim::Double => "double",
            Prim::String => "string",
            Prim::Bytes => "bytes",
        }
    }
}

/// The shape of a field the mapping can write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldType {
    pub prim: Prim,
    /// For `["null", T]` or `[T, "null"]`: the branch indexes of null and of the value.
    pub nullable: Option<(u8, u8)>,
}

fn prim_of(s: &Schema) -> Option<Prim> {
    Some(match s {
        Schema::Boolean => Prim::Boolean,
        Schema::Int | Schema::Date | Schema::TimeMillis => Prim::Int,
        Schema::Long
        | Schema::TimestampMillis
        | Schema::TimestampMicros
        | Schema::TimeMicros
        | Schema::LocalTimestampMillis
        | Schema::LocalTimestampMicros => Prim::Long,
        Schema::Float => Prim::Float,
        Schema::Double => Prim::Double,
        Schema::String => Prim::String,
        Schema::Bytes => Prim::Bytes,
        _ => return None,
    })
}

/// The writable shape of `schema`, or `None` for records, arrays, maps, enums, other unions.
pub fn field_type(schema: &Schema) -> Option<FieldType> {
    if let Some(prim) = prim_of(schema) {
        return Some(FieldType {
            prim,
            nullable: None,
        });
    }
    let Schema::Union(u) = schema else {
        return None;
    };
    let v = u.variants();
    if v.len() != 2 {
        return None;
    }
    let (null, value) = match (&v[0], &v[1]) {
        (Schema::Null, other) => (0u8, (1u8, other)),
        (other, Schema::Null) => (1u8, (0u8, other)),
        _ => return None,
    };
    Some(FieldType {
        prim: prim_of(value.1)?,
        nullable: Some((null, value.0)),
    })
}

/// A human name of a schema, for error messages.
pub fn describe(schema: &Schema) -> String {
    match schema {
        Schema::Union(u) => format!(
            "[{}]",
            u.variants()
                .iter()
                .map(describe)
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Schema::Record(r) => format!("record {}", r.name.fullname(None)),
        Schema::Array(_) => "array".into(),
        Schema::Map(_) => "map".into(),
        Schema::Enum(e) => format!("enum {}", e.name.fullname(None)),
        Schema::Fixed(f) => format!("fixed {}", f.name.fullname(None)),
        Schema::Null => "null".into(),
        other => prim_of(other).map_or_else(|| format!("{other:?}"), |p| p.name().to_string()),
    }
}

pub fn long(out: &mut Vec<u8>, v: i64) {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    while z >= 0x80 {
        out.push((z as u8) | 0x80);
        z >>= 7;
    }
    out.push(z as u8);
}

pub fn bytes(out: &mut Vec<u8>, b: &[u8]) {
    long(out, b.len() as i64);
    out.extend_from_slice(b);
}

/// Encodes a field's schema default (for fields the mapping leaves out, or values it lacks).
pub fn encode_default(schema: &Schema, default: &serde_json::Value) -> Result<Vec<u8>, String> {
    let value = AvroValue::try_from(default.clone())
        .and_then(|v| v.resolve(schema))
        .map_err(|e| format!("the default {default} does not fit the field's type: {e}"))?;
    apache_avro::writer::datum::GenericDatumWriter::builder(schema)
        .build()
        .and_then(|w| w.write_value_to_vec(value))
        .map_err(|e| format!("the default {default} cannot be encoded: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zigzag_varints_match_the_spec() {
        let cases: [(i64, &[u8]); 6] = [
            (0, &[0]),
            (-1, &[1]),
            (1, &[2]),
            (-64, &[0x7f]),
            (64, &[0x80, 0x01]),
            (
                i64::MIN,
                &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01],
            ),
        ];
        for (v, want) in cases {
            let mut out = Vec::new();
            long(&mut out, v);
            assert_eq!(out, want, "{v}");
        }
    }

    #[test]
    fn recognises_nullable_primitives() {
        let s = Schema::parse_str(r#"["null", "string"]"#).unwrap();
        assert_eq!(
            field_type(&s),
            Some(FieldType {
                prim: Prim::String,
                nullable: Some((0, 1))
            })
        );
        let s = Schema::parse_str(r#"["long", "null"]"#).unwrap();
        assert_eq!(field_type(&s).unwrap().nullable, Some((1, 0)));
        let s =
            Schema::parse_str(r#"{"type": "long", "logicalType": "timestamp-millis"}"#).unwrap();
        assert_eq!(field_type(&s).unwrap().prim, Prim::Long);
        let s = Schema::parse_str(r#"["int", "string"]"#).unwrap();
        assert_eq!(field_type(&s), None);
        assert_eq!(describe(&s), "[int, string]");
    }
}
