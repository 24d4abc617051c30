//! Avro datums read straight from the message bytes. A record schema whose fields are all
//! primitive, enum, fixed or a union of those (the usual shape of click events) is compiled
//! once into a plan; a datum then becomes a row of values that borrow the message (strings are
//! checked as UTF-8, not copied) and no value tree is built. Other schemas go through
//! apache-avro's generic reader, which gives the same values.

use std::borrow::Cow;
use std::cell::Cell;

use apache_avro::Schema;

use eddy_segment::input::{InputRow, InputValue};

/// How one value is laid out in the datum and what it becomes.
#[derive(Clone, Copy)]
enum Prim {
    Null,
    Bool,
    Int,
    Long,
    /// A long counting microseconds (read as milliseconds).
    Micros,
    /// A long counting nanoseconds (read as milliseconds).
    Nanos,
    Float,
    Double,
    Str,
    Bytes,
    Fixed(usize),
    /// Index into the plan's symbol tables.
    Enum(usize),
}

enum Shape {
    One(Prim),
    Union(Box<[Prim]>),
}

/// A writer schema compiled for direct decoding.
pub(crate) struct DatumPlan {
    names: Box<[Box<str>]>,
    shapes: Box<[Shape]>,
    symbols: Vec<Box<[Box<str>]>>,
}

/// One decoded value, borrowing the message (or the plan, for enum symbols).
#[derive(Clone, Copy)]
pub(crate) enum Slot<'a> {
    Null,
    Bool(bool),
    Long(i64),
    Double(f64),
    Str(&'a str),
    Bin(&'a [u8]),
}

fn prim(schema: &Schema, symbols: &mut Vec<Box<[Box<str>]>>) -> Option<Prim> {
    Some(match schema {
        Schema::Null => Prim::Null,
        Schema::Boolean => Prim::Bool,
        Schema::Int | Schema::Date | Schema::TimeMillis => Prim::Int,
        Schema::Long
        | Schema::TimestampMillis
        | Schema::LocalTimestampMillis
        | Schema::TimeMicros => Prim::Long,
        Schema::TimestampMicros | Schema::LocalTimestampMicros => Prim::Micros,
        Schema::TimestampNanos | Schema::LocalTimestampNanos => Prim::Nanos,
        Schema::Float => Prim::Float,
        Schema::Double => Prim::Double,
        Schema::String => Prim::Str,
        Schema::Bytes => Prim::Bytes,
        Schema::Fixed(f) => Prim::Fixed(f.size),
        Schema::Enum(e) => {
            symbols.push(e.symbols.iter().map(|s| s.as_str().into()).collect());
            Prim::Enum(symbols.len() - 1)
        }
        // uuid (printed in its canonical form), decimals, durations, arrays, maps, records and
        // named references keep the generic reader.
        _ => return None,
    })
}

impl DatumPlan {
    /// The plan for `schema`, when every field has a shape it handles.
    pub(crate) fn compile(schema: &Schema) -> Option<DatumPlan> {
        let Schema::Record(record) = schema else {
            return None;
        };
        let mut symbols = Vec::new();
        let mut names = Vec::with_capacity(record.fields.len());
        let mut shapes = Vec::with_capacity(record.fields.len());
        for field in &record.fields {
            let shape = match &field.schema {
                Schema::Union(u) => Shape::Union(
                    u.variants()
                        .iter()
                        .map(|v| prim(v, &mut symbols))
                        .collect::<Option<_>>()?,
                ),
                other => Shape::One(prim(other, &mut symbols)?),
            };
            names.push(field.name.as_str().into());
            shapes.push(shape);
        }
        Some(DatumPlan {
            names: names.into(),
            shapes: shapes.into(),
            symbols,
        })
    }

    /// Decodes one datum into `out` (cleared first); the error says which field failed.
    pub(crate) fn decode<'a>(
        &'a self,
        datum: &'a [u8],
        out: &mut Vec<Slot<'a>>,
    ) -> Result<(), String> {
        out.clear();
        let mut cursor = Bytes { rest: datum };
        for (name, shape) in self.names.iter().zip(self.shapes.iter()) {
            let p = match shape {
                Shape::One(p) => *p,
                Shape::Union(variants) => {
                    let branch = cursor.long().map_err(|e| format!("field {name:?}: {e}"))?;
                    *usize::try_from(branch)
                        .ok()
                        .and_then(|b| variants.get(b))
                        .ok_or_else(|| {
                            format!(
                                "field {name:?}: union branch {branch} is not one of its {} types",
                                variants.len()
                            )
                        })?
                }
            };
            let slot = self
                .value(p, &mut cursor)
                .map_err(|e| format!("field {name:?}: {e}"))?;
            out.push(slot);
        }
        Ok(())
    }

    fn value<'a>(&'a self, p: Prim, c: &mut Bytes<'a>) -> Result<Slot<'a>, String> {
        Ok(match p {
            Prim::Null => Slot::Null,
            Prim::Bool => match c.take(1)?[0] {
                0 => Slot::Bool(false),
                1 => Slot::Bool(true),
                b => return Err(format!("{b} is not a boolean (0 or 1)")),
            },
            Prim::Int => {
                let v = c.long()?;
                i32::try_from(v).map_err(|_| format!("{v} does not fit an int"))?;
                Slot::Long(v)
            }
            Prim::Long => Slot::Long(c.long()?),
            Prim::Micros => Slot::Long(c.long()? / 1000),
            Prim::Nanos => Slot::Long(c.long()? / 1_000_000),
            Prim::Float => {
                let b = c.take(4)?;
                Slot::Double(f64::from(f32::from_le_bytes([b[0], b[1], b[2], b[3]])))
            }
            Prim::Double => {
                let mut b = [0u8; 8];
                b.copy_from_slice(c.take(8)?);
                Slot::Double(f64::from_le_bytes(b))
            }
            Prim::Str => {
                let len = c.len()?;
                let bytes = c.take(len)?;
                Slot::Str(std::str::from_utf8(bytes).map_err(|e| format!("not UTF-8: {e}"))?)
            }
            Prim::Bytes => {
                let len = c.len()?;
                Slot::Bin(c.take(len)?)
            }
            Prim::Fixed(size) => Slot::Bin(c.take(size)?),
            Prim::Enum(table) => {
                let symbols = &self.symbols[table];
                let i = c.long()?;
                let symbol = usize::try_from(i)
                    .ok()
                    .and_then(|i| symbols.get(i))
                    .ok_or_else(|| {
                        format!("enum index {i} is not one of its {} symbols", symbols.len())
                    })?;
                Slot::Str(symbol)
            }
        })
    }

    /// A row over slots this plan decoded.
    pub(crate) fn row<'r>(&'r self, slots: &'r [Slot<'r>], binary_as_string: bool) -> DatumRow<'r> {
        DatumRow {
            plan: self,
            slots,
            binary_as_string,
            next: Cell::new(0),
        }
    }
}

struct Bytes<'a> {
    rest: &'a [u8],
}

impl<'a> Bytes<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if n > self.rest.len() {
            return Err(format!(
                "the datum ends early ({} bytes left, {n} needed)",
                self.rest.len()
            ));
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    /// A zig-zag varint.
    fn long(&mut self) -> Result<i64, String> {
        let mut z = 0u64;
        for (i, b) in self.rest.iter().take(10).enumerate() {
            z |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                self.rest = &self.rest[i + 1..];
                return Ok((z >> 1) as i64 ^ -((z & 1) as i64));
            }
        }
        Err(if self.rest.len() < 10 {
            "the datum ends inside a number".into()
        } else {
            "a number is longer than 64 bits".into()
        })
    }

    fn len(&mut self) -> Result<usize, String> {
        let n = self.long()?;
        usize::try_from(n).map_err(|_| format!("negative length {n}"))
    }
}

/// A decoded datum read as an input row.
pub(crate) struct DatumRow<'r> {
    plan: &'r DatumPlan,
    slots: &'r [Slot<'r>],
    binary_as_string: bool,
    /// Where the next lookup starts: fields are mostly asked for in schema order.
    next: Cell<usize>,
}

impl DatumRow<'_> {
    fn position(&self, field: &str) -> Option<usize> {
        let names = &self.plan.names;
        let start = self.next.get();
        let found = (start..names.len())
            .chain(0..start.min(names.len()))
            .find(|&i| &*names[i] == field)?;
        self.next.set(found + 1);
        Some(found)
    }
}

impl InputRow for DatumRow<'_> {
    fn get(&self, field: &str) -> InputValue<'_> {
        let Some(slot) = self.position(field).and_then(|i| self.slots.get(i)) else {
            return InputValue::Null;
        };
        match *slot {
            Slot::Null => InputValue::Null,
            Slot::Bool(b) => InputValue::Bool(b),
            Slot::Long(v) => InputValue::Long(v),
            Slot::Double(v) => InputValue::Double(v),
            Slot::Str(s) => InputValue::Str(Cow::Borrowed(s)),
            Slot::Bin(b) if self.binary_as_string => InputValue::Str(String::from_utf8_lossy(b)),
            Slot::Bin(b) => {
                InputValue::Str(Cow::Owned(b.iter().map(|x| format!("{x:02x}")).collect()))
            }
        }
    }

    fn field_names(&self, out: &mut Vec<String>) {
        out.extend(self.plan.names.iter().map(|n| n.to_string()));
    }
}
