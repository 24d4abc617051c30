//! The declarative mapping from request parts to the fields of an Avro record, in TOML:
//!
//! ```toml
//! [fields]
//! timestamp = "timestamp"                  # a named source
//! country = "geo.countryCode"
//! plan = { param = "plan" }                # a custom event parameter (dots for nesting)
//! consent = { cookie = "consent" }
//! language = { header = "Accept-Language" } # pick = "first" | "last" | "all"
//! page = { url = "location", part = "path" } # scheme, host, path, query, fragment
//! experiment = { url = "location", query = "exp" }
//! build = { query = "bv" }                 # a parameter of the collector request
//! site = { value = "shop" }                # a literal
//! ```
//!
//! [`Mapping::compile`] checks it against the schema at start-up: every mapped field exists
//! and can hold its source's values (an optional source needs a nullable field or a default),
//! and every field the mapping leaves out has a default. Errors name the field.
//! [`Mapping::encode`] then writes one record per event without building a value tree.

use std::collections::BTreeMap;

use apache_avro::Schema;
use serde_json::Value;

use super::avro::{self, FieldType, Prim};
use super::sources::{Builtin, Context, Kind, Pick, Source, UrlOf, UrlPart, Val};
use crate::enrich::Needs;

struct Field {
    name: String,
    source: Option<Source>,
    /// How to write a value (mapped fields only).
    ty: Option<FieldType>,
    /// The schema default, encoded.
    default: Option<Vec<u8>>,
}

/// A mapping compiled against its schema.
pub struct Mapping {
    fields: Vec<Field>,
    needs: Needs,
    schema: Schema,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct MappingFile {
    fields: BTreeMap<String, toml::Value>,
}

fn parse_source(field: &str, v: &toml::Value) -> Result<Source, String> {
    let table = match v {
        toml::Value::String(name) => {
            return Builtin::ALL
                .iter()
                .find(|b| b.name() == name)
                .map(|b| Source::Builtin(*b))
                .ok_or_else(|| {
                    let known: Vec<&str> = Builtin::ALL.iter().map(|b| b.name()).collect();
                    format!(
                        "mapping field {field}: unknown source {name:?} (known sources: {})",
                        known.join(", ")
                    )
                });
        }
        toml::Value::Table(t) => t,
        other => {
            return Err(format!(
                "mapping field {field}: expected a source name or a table with one of param, header, cookie, query, url, value; found {other}"
            ));
        }
    };
    let text = |key: &str| -> Result<Option<String>, String> {
        match table.get(key) {
            None => Ok(None),
            Some(toml::Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(format!(
                "mapping field {field}: {key} must be a string, not {other}"
            )),
        }
    };
    let allowed: &[&str] = if table.contains_key("header") {
        &["header", "pick"]
    } else if table.contains_key("url") {
        &["url", "part", "query"]
    } else {
        &["param", "cookie", "query", "value"]
    };
    if let Some(extra) = table.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(format!(
            "mapping field {field}: unexpected key {extra:?} (expected {})",
            allowed.join(", ")
        ));
    }
    if let Some(name) = text("header")? {
        let pick = match text("pick")?.as_deref() {
            None | Some("first") => Pick::First,
            Some("last") => Pick::Last,
            Some("all") => Pick::All,
            Some(other) => {
                return Err(format!(
                    "mapping field {field}: pick must be first, last or all, not {other:?}"
                ));
            }
        };
        if http::HeaderName::from_bytes(name.as_bytes()).is_err() {
            return Err(format!(
                "mapping field {field}: {name:?} is not a header name"
            ));
        }
        return Ok(Source::Header {
            name: name.to_ascii_lowercase(),
            pick,
        });
    }
    if let Some(url) = text("url")? {
        let of = match url.as_str() {
            "location" => UrlOf::Location,
            "referer" => UrlOf::Referer,
            other => {
                return Err(format!(
                    "mapping field {field}: url must be location or referer, not {other:?}"
                ));
            }
        };
        let part = match (text("part")?.as_deref(), text("query")?) {
            (None, Some(q)) => UrlPart::Param(q),
            (Some("scheme"), None) => UrlPart::Scheme,
            (Some("host"), None) => UrlPart::Host,
            (Some("path"), None) => UrlPart::Path,
            (Some("query"), None) => UrlPart::Query,
            (Some("fragment"), None) => UrlPart::Fragment,
            (None, None) => {
                return Err(format!(
                    "mapping field {field}: a url source needs part or query"
                ));
            }
            (Some(p), None) => {
                return Err(format!(
                    "mapping field {field}: part must be scheme, host, path, query or fragment, not {p:?}"
                ));
            }
            (Some(_), Some(_)) => {
                return Err(format!(
                    "mapping field {field}: give part or query, not both"
                ));
            }
        };
        return Ok(Source::Url { of, part });
    }
    if table.len() != 1 {
        return Err(format!(
            "mapping field {field}: give exactly one of param, cookie, query, value"
        ));
    }
    if let Some(p) = text("param")? {
        if p.is_empty() || p.split('.').any(str::is_empty) {
            return Err(format!(
                "mapping field {field}: param {p:?} must be a name or a dotted path"
            ));
        }
        return Ok(Source::Param(p.split('.').map(str::to_string).collect()));
    }
    if let Some(c) = text("cookie")? {
        return Ok(Source::Cookie(c));
    }
    if let Some(q) = text("query")? {
        return Ok(Source::Query(q));
    }
    let literal = table
        .get("value")
        .cloned()
        .unwrap_or(toml::Value::Boolean(false));
    let json = serde_json::to_value(&literal).map_err(|e| format!("mapping field {field}: {e}"))?;
    Ok(Source::Literal(json))
}

fn compatible(kind: Kind, prim: Prim) -> bool {
    matches!(
        (kind, prim),
        (Kind::Dynamic, _)
            | (Kind::Bool, Prim::Boolean)
            | (
                Kind::Int,
                Prim::Int | Prim::Long | Prim::Float | Prim::Double
            )
            | (Kind::Long, Prim::Long | Prim::Float | Prim::Double)
            | (Kind::Double, Prim::Double | Prim::Float)
            | (Kind::Str, Prim::String | Prim::Bytes)
    )
}

impl Mapping {
    /// Compiles the TOML `mapping` against the record schema `schema_text`. All problems are
    /// reported at once, one per line, each naming its field.
    pub fn compile(schema_text: &str, mapping: &str) -> Result<Mapping, String> {
        let schema = Schema::parse_str(schema_text)
            .map_err(|e| format!("the schema is not valid Avro: {e}"))?;
        let Schema::Record(record) = &schema else {
            return Err("the schema must be a record".into());
        };
        let file: MappingFile =
            toml::from_str(mapping).map_err(|e| format!("the mapping is not valid: {e}"))?;
        let mut errors = Vec::new();
        for name in file.fields.keys() {
            if !record.lookup.contains_key(name) {
                errors.push(format!(
                    "mapping field {name}: the schema has no field {name}"
                ));
            }
        }
        let mut fields = Vec::new();
        let mut needs = Needs::default();
        for f in &record.fields {
            let default = match &f.default {
                None => None,
                Some(d) => match avro::encode_default(&f.schema, d) {
                    Ok(bytes) => Some(bytes),
                    Err(e) => {
                        errors.push(format!("schema field {}: {e}", f.name));
                        None
                    }
                },
            };
            let Some(spec) = file.fields.get(&f.name) else {
                if default.is_none() && f.default.is_none() {
                    errors.push(format!(
                        "schema field {}: not mapped and has no default",
                        f.name
                    ));
                }
                fields.push(Field {
                    name: f.name.clone(),
                    source: None,
                    ty: None,
                    default,
                });
                continue;
            };
            let source = match parse_source(&f.name, spec) {
                Ok(s) => s,
                Err(e) => {
                    errors.push(e);
                    continue;
                }
            };
            let Some(ty) = avro::field_type(&f.schema) else {
                errors.push(format!(
                    "mapping field {}: the schema field has type {}; a mapped field must be boolean, int, long, float, double, string or bytes, or a union of null and one of them",
                    f.name,
                    avro::describe(&f.schema)
                ));
                continue;
            };
            if !compatible(source.kind(), ty.prim) {
                errors.push(format!(
                    "mapping field {}: {} is {}, but the schema field is {}",
                    f.name,
                    source.describe(),
                    source.kind().name(),
                    avro::describe(&f.schema)
                ));
                continue;
            }
            if source.optional() && ty.nullable.is_none() && default.is_none() {
                errors.push(format!(
                    "mapping field {}: {} may be absent, but the schema field is {} without a default; make it [\"null\", \"{}\"] or give it a default",
                    f.name,
                    source.describe(),
                    avro::describe(&f.schema),
                    ty.prim.name()
                ));
                continue;
            }
            if let Source::Literal(v) = &source {
                let mut probe = Vec::new();
                if let Err(e) = write_value(
                    &mut probe,
                    ty.prim,
                    &Val::Json(std::borrow::Cow::Borrowed(v)),
                ) {
                    errors.push(format!("mapping field {}: {e}", f.name));
                    continue;
                }
            }
            source.need(&mut needs);
            fields.push(Field {
                name: f.name.clone(),
                source: Some(source),
                ty: Some(ty),
                default,
            });
        }
        if !errors.is_empty() {
            return Err(errors.join("\n"));
        }
        Ok(Mapping {
            fields,
            needs,
            schema,
        })
    }

    /// The enrichments this mapping reads.
    pub fn needs(&self) -> Needs {
        self.needs
    }

    pub fn schema(&self) -> &Schema {
        &self.schema
    }

    /// Appends the Avro binary of one record to `out`; on error `out` is left as it was.
    pub fn encode(&self, ctx: &Context<'_>, out: &mut Vec<u8>) -> Result<(), String> {
        let start = out.len();
        for f in &self.fields {
            let result = match (&f.source, f.ty) {
                (Some(source), Some(ty)) => write_field(out, f, ty, &source.read(ctx)),
                _ => match &f.default {
                    Some(d) => {
                        out.extend_from_slice(d);
                        Ok(())
                    }
                    None => Err(format!("field {} has no value", f.name)),
                },
            };
            if let Err(e) = result {
                out.truncate(start);
                return Err(e);
            }
        }
        Ok(())
    }
}

fn write_field(out: &mut Vec<u8>, f: &Field, ty: FieldType, v: &Val<'_>) -> Result<(), String> {
    if matches!(v, Val::Null) {
        return match (ty.nullable, &f.default) {
            (Some((null, _)), _) => {
                avro::long(out, i64::from(null));
                Ok(())
            }
            (None, Some(d)) => {
                out.extend_from_slice(d);
                Ok(())
            }
            (None, None) => Err(format!("field {}: no value and no default", f.name)),
        };
    }
    if let Some((_, value)) = ty.nullable {
        avro::long(out, i64::from(value));
    }
    write_value(out, ty.prim, v).map_err(|e| format!("field {}: {e}", f.name))
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Writes `v` as `prim`, converting where the conversion loses nothing.
fn write_value(out: &mut Vec<u8>, prim: Prim, v: &Val<'_>) -> Result<(), String> {
    let cannot = |what: &str| Err(format!("{what} cannot be written as {}", prim.name()));
    match (prim, v) {
        (Prim::Boolean, Val::Bool(b)) => out.push(u8::from(*b)),
        (Prim::Int | Prim::Long, Val::Int(i)) => avro::long(out, i64::from(*i)),
        (Prim::Long, Val::Long(i)) => avro::long(out, *i),
        (Prim::Float, Val::Int(i)) => out.extend((*i as f32).to_le_bytes()),
        (Prim::Float, Val::Long(i)) => out.extend((*i as f32).to_le_bytes()),
        (Prim::Float, Val::Double(d)) => out.extend((*d as f32).to_le_bytes()),
        (Prim::Double, Val::Int(i)) => out.extend(f64::from(*i).to_le_bytes()),
        (Prim::Double, Val::Long(i)) => out.extend((*i as f64).to_le_bytes()),
        (Prim::Double, Val::Double(d)) => out.extend(d.to_le_bytes()),
        (Prim::String | Prim::Bytes, Val::Str(s)) => avro::bytes(out, s.as_bytes()),
        (_, Val::Json(j)) => return write_json(out, prim, j),
        _ => return cannot("the value"),
    }
    Ok(())
}

/// A custom parameter or literal into `prim`: strings and numbers convert both ways when the
/// text is a number; objects and arrays become JSON text in string fields.
fn write_json(out: &mut Vec<u8>, prim: Prim, v: &Value) -> Result<(), String> {
    let fail = || {
        Err(format!(
            "{} ({v}) cannot be written as {}",
            json_kind(v),
            prim.name()
        ))
    };
    match prim {
        Prim::String | Prim::Bytes => match v {
            Value::String(s) => avro::bytes(out, s.as_bytes()),
            other => avro::bytes(out, other.to_string().as_bytes()),
        },
        Prim::Boolean => match v {
            Value::Bool(b) => out.push(u8::from(*b)),
            Value::String(s) if s == "true" || s == "false" => out.push(u8::from(s == "true")),
            _ => return fail(),
        },
        Prim::Int | Prim::Long => {
            let n = match v {
                Value::Number(n) => n.as_i64(),
                Value::String(s) => s.trim().parse::<i64>().ok(),
                _ => None,
            };
            match n {
                Some(n) if prim == Prim::Long || i32::try_from(n).is_ok() => avro::long(out, n),
                _ => return fail(),
            }
        }
        Prim::Float | Prim::Double => {
            let n = match v {
                Value::Number(n) => n.as_f64(),
                Value::String(s) => s.trim().parse::<f64>().ok().filter(|f| f.is_finite()),
                _ => None,
            };
            match (n, prim) {
                (Some(f), Prim::Float) => out.extend((f as f32).to_le_bytes()),
                (Some(f), _) => out.extend(f.to_le_bytes()),
                (None, _) => return fail(),
            }
        }
    }
    Ok(())
}
