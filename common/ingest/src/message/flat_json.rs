//! JSON messages read without building a map: the top-level object becomes a list of fields
//! whose names and string values borrow the message where they have no escapes; nested arrays
//! and objects are kept as JSON values. A message this cannot read the same way a JSON map
//! would (not an object, a repeated field name) is left to the map path.

use std::borrow::Cow;
use std::cell::Cell;
use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use eddy_segment::input::{InputRow, InputValue, json_input};

/// A field value.
enum Val<'a> {
    Null,
    Bool(bool),
    Long(i64),
    Double(f64),
    Str(Cow<'a, str>),
    Nested(Value),
}

/// A field name, borrowed when it has no escapes.
struct Name<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Name<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Name<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a field name")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Name<'de>, E> {
                Ok(Name(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Name<'de>, E> {
                Ok(Name(Cow::Owned(v.to_string())))
            }
            fn visit_string<E>(self, v: String) -> Result<Name<'de>, E> {
                Ok(Name(Cow::Owned(v)))
            }
        }
        d.deserialize_str(V)
    }
}

impl<'de> Deserialize<'de> for Val<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Val<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_unit<E>(self) -> Result<Val<'de>, E> {
                Ok(Val::Null)
            }
            fn visit_bool<E>(self, v: bool) -> Result<Val<'de>, E> {
                Ok(Val::Bool(v))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Val<'de>, E> {
                Ok(Val::Long(v))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Val<'de>, E> {
                Ok(i64::try_from(v).map_or(Val::Double(v as f64), Val::Long))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Val<'de>, E> {
                Ok(Val::Double(v))
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Val<'de>, E> {
                Ok(Val::Str(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Val<'de>, E> {
                Ok(Val::Str(Cow::Owned(v.to_string())))
            }
            fn visit_string<E>(self, v: String) -> Result<Val<'de>, E> {
                Ok(Val::Str(Cow::Owned(v)))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Val<'de>, A::Error> {
                let mut items = Vec::new();
                while let Some(v) = seq.next_element::<Value>()? {
                    items.push(v);
                }
                Ok(Val::Nested(Value::Array(items)))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Val<'de>, A::Error> {
                let mut out = serde_json::Map::new();
                while let Some((k, v)) = map.next_entry::<String, Value>()? {
                    out.insert(k, v);
                }
                Ok(Val::Nested(Value::Object(out)))
            }
        }
        d.deserialize_any(V)
    }
}

/// The fields of a top-level JSON object, in order.
pub(crate) struct FlatJson<'a> {
    fields: Vec<(Cow<'a, str>, Val<'a>)>,
    /// Where the next lookup starts: fields are mostly asked for in the order they come.
    next: Cell<usize>,
}

/// Parses a top-level object; `None` when the map path must read it (not an object, invalid
/// JSON, or a repeated field name, where the last value wins).
pub(crate) fn parse(bytes: &[u8]) -> Option<FlatJson<'_>> {
    struct Fields;
    impl<'de> Visitor<'de> for Fields {
        type Value = Vec<(Cow<'de, str>, Val<'de>)>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a JSON object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut fields = Vec::with_capacity(map.size_hint().unwrap_or(16));
            while let Some((Name(k), v)) = map.next_entry::<Name<'de>, Val<'de>>()? {
                fields.push((k, v));
            }
            Ok(fields)
        }
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let fields = de.deserialize_map(Fields).ok()?;
    de.end().ok()?;
    if has_repeated_name(&fields) {
        return None;
    }
    Some(FlatJson {
        fields,
        next: Cell::new(0),
    })
}

/// Whether two fields share a name: a cheap signature per name, compared in full only when
/// two signatures collide.
fn has_repeated_name(fields: &[(Cow<'_, str>, Val<'_>)]) -> bool {
    let mut seen = 0u64;
    let mut collided = false;
    for (name, _) in fields {
        let b = name.as_bytes();
        let sig = (b.len() as u64)
            .wrapping_mul(31)
            .wrapping_add(u64::from(b.first().copied().unwrap_or(0)))
            .wrapping_mul(31)
            .wrapping_add(u64::from(b.last().copied().unwrap_or(0)));
        let bit = 1u64 << (sig % 64);
        collided |= seen & bit != 0;
        seen |= bit;
    }
    collided
        && fields
            .iter()
            .enumerate()
            .any(|(i, (a, _))| fields[..i].iter().any(|(b, _)| a == b))
}

impl InputRow for FlatJson<'_> {
    fn get(&self, field: &str) -> InputValue<'_> {
        let n = self.fields.len();
        let start = self.next.get().min(n);
        let Some(i) = (start..n)
            .chain(0..start)
            .find(|&i| self.fields[i].0 == field)
        else {
            return InputValue::Null;
        };
        self.next.set(i + 1);
        match &self.fields[i].1 {
            Val::Null => InputValue::Null,
            Val::Bool(b) => InputValue::Bool(*b),
            Val::Long(v) => InputValue::Long(*v),
            Val::Double(v) => InputValue::Double(*v),
            Val::Str(s) => InputValue::Str(Cow::Borrowed(s)),
            Val::Nested(v) => json_input(v),
        }
    }

    fn field_names(&self, out: &mut Vec<String>) {
        out.extend(self.fields.iter().map(|(k, _)| k.to_string()));
    }
}
