//! CSV and TSV: columns named in the spec or taken from a header line; empty fields are null;
//! fields holding the list delimiter are multi-valued.

use std::borrow::Cow;
use std::collections::HashMap;
use std::io::Read;

use eddy_segment::input::{InputRow, InputValue};

use super::{Record, Sink};
use crate::error::IngestError;
use crate::source::Entity;

pub struct Options {
    pub delimiter: u8,
    pub columns: Vec<String>,
    pub header: bool,
    pub skip: usize,
    pub list_delimiter: Option<String>,
}

struct DelimitedRow<'a> {
    names: &'a [String],
    positions: &'a HashMap<String, usize>,
    record: &'a csv::StringRecord,
    list_delimiter: &'a str,
}

impl InputRow for DelimitedRow<'_> {
    fn get(&self, field: &str) -> InputValue<'_> {
        let Some(i) = self.positions.get(field) else {
            return InputValue::Null;
        };
        match self.record.get(*i) {
            None | Some("") => InputValue::Null,
            Some(v) if !self.list_delimiter.is_empty() && v.contains(self.list_delimiter) => {
                InputValue::List(
                    v.split(self.list_delimiter)
                        .map(|p| InputValue::Str(Cow::Borrowed(p)))
                        .collect(),
                )
            }
            Some(v) => InputValue::Str(Cow::Borrowed(v)),
        }
    }

    fn field_names(&self, out: &mut Vec<String>) {
        out.extend(self.names.iter().cloned());
    }
}

pub fn read(
    entity: &Entity,
    input: impl Read,
    opts: &Options,
    sink: &mut Sink<'_>,
) -> Result<(), IngestError> {
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(opts.delimiter)
        .has_headers(false)
        .flexible(true)
        .quoting(opts.delimiter == b',')
        .from_reader(input);
    let mut names = opts.columns.clone();
    let list_delimiter = opts
        .list_delimiter
        .clone()
        .unwrap_or_else(|| "\u{1}".to_string());
    let mut record = csv::StringRecord::new();
    let mut positions: HashMap<String, usize> = names
        .iter()
        .enumerate()
        .map(|(i, n)| (n.clone(), i))
        .collect();
    let mut line = 0usize;
    let mut header_pending = opts.header;
    loop {
        match reader.read_record(&mut record) {
            Ok(false) => return Ok(()),
            Ok(true) => {}
            Err(e) => {
                sink(Record::Bad {
                    raw: format!("line {}", line + 1),
                    reason: format!("malformed record in {}: {e}", entity.name()),
                })?;
                line += 1;
                continue;
            }
        }
        line += 1;
        if line <= opts.skip {
            continue;
        }
        if header_pending {
            header_pending = false;
            if names.is_empty() {
                names = record.iter().map(str::to_string).collect();
                positions = names
                    .iter()
                    .enumerate()
                    .map(|(i, n)| (n.clone(), i))
                    .collect();
            }
            continue;
        }
        if record.len() != names.len() {
            let raw = record.iter().collect::<Vec<_>>().join(",");
            sink(Record::Bad {
                raw,
                reason: format!(
                    "line {line} has {} fields, expected {}",
                    record.len(),
                    names.len()
                ),
            })?;
            continue;
        }
        let row = DelimitedRow {
            names: &names,
            positions: &positions,
            record: &record,
            list_delimiter: &list_delimiter,
        };
        sink(Record::Row(&row))?;
    }
}
