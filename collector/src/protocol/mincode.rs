//! Divolte's "mincode": the compact, URL-friendly encoding of an event's custom parameters
//! (the `u` query parameter). A value is a record: a type character and a payload.
//!
//! | record | value |
//! | --- | --- |
//! | `s` text `!` | string (`~` escapes the next character, so `~!` is `!` and `~~` is `~`) |
//! | `t`, `f`, `n` | true, false, null |
//! | `d` digits `!` | an integer in base 36 |
//! | `j` number `!` | a number in JSON syntax |
//! | `a` records `.` | an array |
//! | `(` fields `)` | an object; each field is a record whose type character is followed by the field name and `!` |
//! | `o` | an empty object |

use serde_json::{Map, Number, Value};

use super::query::parse_base36;

/// Nesting deeper than this is refused (it would only come from a hostile request).
const MAX_DEPTH: usize = 64;

/// Why a mincode string could not be read, with the byte offset.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid mincode at offset {offset}: {reason}")]
pub struct MincodeError {
    pub offset: usize,
    pub reason: &'static str,
}

struct Reader<'a> {
    input: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn fail<T>(&self, reason: &'static str) -> Result<T, MincodeError> {
        Err(MincodeError {
            offset: self.pos,
            reason,
        })
    }

    fn next(&mut self) -> Option<u8> {
        let b = self.input.get(self.pos).copied();
        if b.is_some() {
            self.pos += 1;
        }
        b
    }

    /// Text up to the terminating `!`, unescaping `~`.
    fn text(&mut self) -> Result<String, MincodeError> {
        let mut out = Vec::new();
        loop {
            match self.next() {
                None => return self.fail("a string has no terminating '!'"),
                Some(b'!') => break,
                Some(b'~') => match self.next() {
                    Some(c) => out.push(c),
                    None => return self.fail("an escape '~' ends the input"),
                },
                Some(c) => out.push(c),
            }
        }
        String::from_utf8(out).or_else(|_| self.fail("a string is not UTF-8"))
    }

    fn value(&mut self, kind: u8, depth: usize) -> Result<Value, MincodeError> {
        if depth > MAX_DEPTH {
            return self.fail("values are nested too deeply");
        }
        Ok(match kind {
            b's' => Value::String(self.text()?),
            b't' => Value::Bool(true),
            b'f' => Value::Bool(false),
            b'n' => Value::Null,
            b'd' => {
                let digits = self.text()?;
                match parse_base36(&digits) {
                    Some(v) => Value::Number(v.into()),
                    None => return self.fail("a 'd' record is not a base-36 integer"),
                }
            }
            b'j' => {
                let text = self.text()?;
                match serde_json::from_str::<Number>(&text) {
                    Ok(n) => Value::Number(n),
                    Err(_) => return self.fail("a 'j' record is not a JSON number"),
                }
            }
            b'a' => {
                let mut items = Vec::new();
                loop {
                    match self.next() {
                        None => return self.fail("an array has no terminating '.'"),
                        Some(b'.') => break,
                        Some(k) => items.push(self.value(k, depth + 1)?),
                    }
                }
                Value::Array(items)
            }
            b'(' => {
                let mut fields = Map::new();
                loop {
                    match self.next() {
                        None => return self.fail("an object has no terminating ')'"),
                        Some(b')') => break,
                        Some(k) => {
                            let name = self.text()?;
                            let v = self.value(k, depth + 1)?;
                            fields.insert(name, v);
                        }
                    }
                }
                Value::Object(fields)
            }
            b'o' => Value::Object(Map::new()),
            _ => {
                self.pos -= 1;
                return self.fail("unknown record type");
            }
        })
    }
}

/// Decodes one mincode value; trailing characters are an error.
pub fn decode(input: &str) -> Result<Value, MincodeError> {
    let mut r = Reader {
        input: input.as_bytes(),
        pos: 0,
    };
    let Some(kind) = r.next() else {
        return r.fail("the input is empty");
    };
    let value = r.value(kind, 0)?;
    if r.pos != r.input.len() {
        return r.fail("characters follow the value");
    }
    Ok(value)
}

/// Encodes a JSON value as the tracker does (integers as base 36 when that is no longer than
/// the decimal form).
pub fn encode(value: &Value) -> String {
    let mut out = String::new();
    encode_into(value, None, &mut out);
    out
}

fn escape(s: &str, out: &mut String) {
    for c in s.chars() {
        if c == '!' || c == '~' {
            out.push('~');
        }
        out.push(c);
    }
    out.push('!');
}

fn encode_into(value: &Value, name: Option<&str>, out: &mut String) {
    let head = |kind: char, out: &mut String| {
        out.push(kind);
        if let Some(n) = name {
            escape(n, out);
        }
    };
    match value {
        Value::Null => head('n', out),
        Value::Bool(b) => head(if *b { 't' } else { 'f' }, out),
        Value::String(s) => {
            head('s', out);
            escape(s, out);
        }
        Value::Number(n) => match n.as_i64() {
            Some(i) if super::query::to_base36(i).len() <= n.to_string().len() => {
                head('d', out);
                out.push_str(&super::query::to_base36(i));
                out.push('!');
            }
            _ => {
                head('j', out);
                out.push_str(&n.to_string());
                out.push('!');
            }
        },
        Value::Array(items) => {
            head('a', out);
            for v in items {
                encode_into(v, None, out);
            }
            out.push('.');
        }
        Value::Object(fields) => {
            head('(', out);
            for (k, v) in fields {
                encode_into(v, Some(k), out);
            }
            out.push(')');
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;

    #[test]
    fn decodes_every_record_type() {
        assert_eq!(decode("shello!").unwrap(), json!("hello"));
        assert_eq!(decode("sa~!b~~c!").unwrap(), json!("a!b~c"));
        assert_eq!(decode("t").unwrap(), json!(true));
        assert_eq!(decode("n").unwrap(), json!(null));
        assert_eq!(decode("dzz!").unwrap(), json!(1295));
        assert_eq!(decode("d-a!").unwrap(), json!(-10));
        assert_eq!(decode("j1.5e3!").unwrap(), json!(1500.0));
        assert_eq!(decode("o").unwrap(), json!({}));
        assert_eq!(
            decode("(sbutton!signup!dcount!3!aa!(tok!)n.)").unwrap(),
            json!({"button": "signup", "count": 3, "a": [{"ok": true}, null]})
        );
    }

    #[test]
    fn errors_say_where() {
        let e = decode("(sname!value").unwrap_err();
        assert_eq!(e.reason, "a string has no terminating '!'");
        let e = decode("q").unwrap_err();
        assert_eq!((e.offset, e.reason), (0, "unknown record type"));
        assert_eq!(
            decode("tt").unwrap_err().reason,
            "characters follow the value"
        );
        assert_eq!(decode("").unwrap_err().reason, "the input is empty");
        assert_eq!(
            decode("dxyz.!").unwrap_err().reason,
            "a 'd' record is not a base-36 integer"
        );
        let deep = "a".repeat(200) + &".".repeat(200);
        assert_eq!(
            decode(&deep).unwrap_err().reason,
            "values are nested too deeply"
        );
    }

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|i| json!(i)),
            // Eighths print and parse back exactly.
            (-8_000_000i64..8_000_000).prop_map(|i| json!(i as f64 / 8.0 + 0.125)),
            "[a-z!~ é]{0,8}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 32, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
                prop::collection::btree_map("[a-z!~]{0,5}", inner, 0..5)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn round_trips(v in json_value()) {
            prop_assert_eq!(decode(&encode(&v)).unwrap(), v);
        }
    }
}
