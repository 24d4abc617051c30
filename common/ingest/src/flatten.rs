//! `flattenSpec` for JSON-shaped input: root fields (discovered or named) and JSON path fields
//! (`$.a.b`, `$.a[0]`, `$['a b']`).

use serde_json::{Map, Value};

use eddy_types::spec::ingest::FlattenSpec;

use crate::error::IngestError;

#[derive(Debug, Clone, PartialEq)]
enum Step {
    Key(String),
    Index(usize),
}

#[derive(Debug, Clone)]
pub struct Flattener {
    discovery: bool,
    fields: Vec<(String, Vec<Step>)>,
}

fn parse_path(expr: &str) -> Result<Vec<Step>, String> {
    let rest = expr
        .strip_prefix('$')
        .ok_or_else(|| format!("path {expr:?} must start with $"))?;
    let b = rest.as_bytes();
    let mut i = 0;
    let mut steps = Vec::new();
    while i < b.len() {
        match b[i] {
            b'.' => {
                let start = i + 1;
                i = start;
                while i < b.len() && b[i] != b'.' && b[i] != b'[' {
                    i += 1;
                }
                if start == i {
                    return Err(format!("path {expr:?} has an empty field name"));
                }
                steps.push(Step::Key(rest[start..i].to_string()));
            }
            b'[' => {
                let end = rest[i..]
                    .find(']')
                    .map(|p| p + i)
                    .ok_or_else(|| format!("path {expr:?} has an unclosed '['"))?;
                let inner = rest[i + 1..end].trim();
                if let Some(q) = inner.strip_prefix('\'').and_then(|s| s.strip_suffix('\'')) {
                    steps.push(Step::Key(q.to_string()));
                } else if let Some(q) = inner.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
                    steps.push(Step::Key(q.to_string()));
                } else {
                    let n: usize = inner.parse().map_err(|_| {
                        format!("path {expr:?}: [{inner}] is not an index or a quoted name")
                    })?;
                    steps.push(Step::Index(n));
                }
                i = end + 1;
            }
            _ => {
                return Err(format!(
                    "path {expr:?}: unexpected {:?}",
                    rest[i..].chars().next().unwrap_or(' ')
                ));
            }
        }
    }
    Ok(steps)
}

impl Flattener {
    /// None when the spec changes nothing (no fields; discovery on).
    pub fn new(spec: Option<&FlattenSpec>, path_prefix: &str) -> Result<Option<Self>, IngestError> {
        let Some(spec) = spec else { return Ok(None) };
        if spec.fields.is_empty() && spec.use_field_discovery {
            return Ok(None);
        }
        let mut fields = Vec::new();
        for (i, f) in spec.fields.iter().enumerate() {
            let at = format!("{path_prefix}.flattenSpec.fields[{i}]");
            let steps = match f.kind.as_str() {
                "root" => vec![Step::Key(f.expr.clone().unwrap_or_else(|| f.name.clone()))],
                "path" => parse_path(f.expr.as_deref().ok_or_else(|| {
                    IngestError::Spec(format!("{at}.expr: a path field needs expr"))
                })?)
                .map_err(|e| IngestError::Spec(format!("{at}.expr: {e}")))?,
                "tree" => f
                    .nodes
                    .clone()
                    .ok_or_else(|| {
                        IngestError::Spec(format!("{at}.nodes: a tree field needs nodes"))
                    })?
                    .into_iter()
                    .map(Step::Key)
                    .collect(),
                "jq" => {
                    return Err(IngestError::Spec(format!(
                        "{at}.type: jq fields are not supported; use path"
                    )));
                }
                other => {
                    return Err(IngestError::Spec(format!(
                        "{at}.type: unknown field type {other:?}"
                    )));
                }
            };
            fields.push((f.name.clone(), steps));
        }
        Ok(Some(Flattener {
            discovery: spec.use_field_discovery,
            fields,
        }))
    }

    pub fn apply(&self, root: &Map<String, Value>) -> Map<String, Value> {
        let mut out = Map::new();
        if self.discovery {
            for (k, v) in root {
                let primitive = match v {
                    Value::Object(_) => false,
                    Value::Array(items) => items.iter().all(|i| !i.is_object() && !i.is_array()),
                    _ => true,
                };
                if primitive {
                    out.insert(k.clone(), v.clone());
                }
            }
        }
        for (name, steps) in &self.fields {
            let mut cur: Option<&Value> = None;
            for (i, s) in steps.iter().enumerate() {
                cur = match (i, s, cur) {
                    (0, Step::Key(k), _) => root.get(k),
                    (0, Step::Index(_), _) => None,
                    (_, Step::Key(k), Some(Value::Object(o))) => o.get(k),
                    (_, Step::Index(n), Some(Value::Array(a))) => a.get(*n),
                    _ => None,
                };
            }
            out.insert(name.clone(), cur.cloned().unwrap_or(Value::Null));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn paths() {
        let spec: FlattenSpec = serde_json::from_value(json!({"fields": [
            {"type": "path", "name": "city", "expr": "$.geo.city"},
            {"type": "path", "name": "first", "expr": "$.tags[0]"},
            {"type": "path", "name": "odd", "expr": "$['a b']"},
            {"type": "root", "name": "top"}
        ]}))
        .unwrap();
        let f = Flattener::new(Some(&spec), "x").unwrap().unwrap();
        let row =
            json!({"geo": {"city": "Oslo"}, "tags": ["t1", "t2"], "a b": 3, "top": "yes", "n": 1});
        let out = f.apply(row.as_object().unwrap());
        assert_eq!(out["city"], json!("Oslo"));
        assert_eq!(out["first"], json!("t1"));
        assert_eq!(out["odd"], json!(3));
        assert_eq!(out["n"], json!(1));
        assert!(!out.contains_key("geo"));
        let bad: FlattenSpec = serde_json::from_value(
            json!({"fields": [{"type": "path", "name": "x", "expr": "geo.city"}]}),
        )
        .unwrap();
        let e = Flattener::new(Some(&bad), "spec.ioConfig.inputFormat")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("spec.ioConfig.inputFormat.flattenSpec.fields[0].expr"),
            "{e}"
        );
    }
}
