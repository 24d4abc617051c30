//! `inputFormat`: turns an entity's bytes into rows. Rows are views over the parser's own
//! buffers where the format allows (CSV records, Arrow batches, Avro records), so reading does
//! not allocate per field.

pub(crate) mod avro;
mod delimited;
pub(crate) mod json;
mod parquet;

use std::io::Read;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use eddy_segment::input::InputRow;
use eddy_types::spec::ingest::InputFormat;

use crate::error::IngestError;
use crate::source::{self, Entity};

/// One record from the input: a row, or bytes that did not parse.
pub enum Record<'a> {
    Row(&'a dyn InputRow),
    Bad { raw: String, reason: String },
}

pub type Sink<'s> = dyn FnMut(Record<'_>) -> Result<(), IngestError> + 's;

/// Counts bytes as they are read, for progress.
pub struct Counting<R> {
    inner: R,
    bytes: Arc<AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.bytes.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// Checks format options that can be checked before reading.
pub fn validate(format: &InputFormat) -> Result<(), IngestError> {
    match format {
        InputFormat::Json { flatten_spec, .. } => {
            crate::flatten::Flattener::new(flatten_spec.as_ref(), "spec.ioConfig.inputFormat")?;
        }
        InputFormat::AvroOcf { flatten_spec, .. } => {
            crate::flatten::Flattener::new(flatten_spec.as_ref(), "spec.ioConfig.inputFormat")?;
        }
        InputFormat::Parquet { flatten_spec, .. } => {
            if flatten_spec
                .as_ref()
                .is_some_and(|f| f.fields.iter().any(|x| x.kind != "root"))
            {
                return Err(IngestError::Spec(
                    "spec.ioConfig.inputFormat.flattenSpec: parquet input supports root fields only".into(),
                ));
            }
        }
        InputFormat::Csv {
            columns,
            find_columns_from_header,
            ..
        }
        | InputFormat::Tsv {
            columns,
            find_columns_from_header,
            ..
        } => {
            if columns.is_empty() && find_columns_from_header != &Some(true) {
                return Err(IngestError::Spec(
                    "spec.ioConfig.inputFormat: give \"columns\" or set \"findColumnsFromHeader\": true".into(),
                ));
            }
        }
        InputFormat::AvroStream { .. } | InputFormat::Kafka { .. } => {
            return Err(IngestError::Spec(
                "spec.ioConfig.inputFormat.type: this format reads stream messages; batch ingestion takes json, csv, tsv, parquet or avro_ocf".into(),
            ));
        }
    }
    Ok(())
}

/// Reads every record of `entity` into `sink`; `bytes` grows as input is consumed.
pub fn read(
    entity: &Entity,
    format: &InputFormat,
    bytes: &Arc<AtomicU64>,
    sink: &mut Sink<'_>,
) -> Result<(), IngestError> {
    match format {
        InputFormat::Parquet {
            binary_as_string, ..
        } => parquet::read(entity, *binary_as_string, bytes, sink),
        InputFormat::AvroOcf {
            flatten_spec,
            binary_as_string,
            ..
        } => {
            let counting = Counting {
                inner: source::open(entity)?,
                bytes: bytes.clone(),
            };
            avro::read(
                entity,
                counting,
                flatten_spec.as_ref(),
                *binary_as_string,
                sink,
            )
        }
        InputFormat::Json { flatten_spec, .. } => {
            let counting = Counting {
                inner: source::open(entity)?,
                bytes: bytes.clone(),
            };
            json::read(entity, counting, flatten_spec.as_ref(), sink)
        }
        InputFormat::Csv {
            columns,
            find_columns_from_header,
            skip_header_rows,
            list_delimiter,
        } => {
            let counting = Counting {
                inner: source::open(entity)?,
                bytes: bytes.clone(),
            };
            let opts = delimited::Options {
                delimiter: b',',
                columns: columns.clone(),
                header: find_columns_from_header.unwrap_or(false),
                skip: *skip_header_rows,
                list_delimiter: list_delimiter.clone(),
            };
            delimited::read(entity, counting, &opts, sink)
        }
        InputFormat::Tsv {
            columns,
            find_columns_from_header,
            skip_header_rows,
            list_delimiter,
            delimiter,
        } => {
            let counting = Counting {
                inner: source::open(entity)?,
                bytes: bytes.clone(),
            };
            let delim = delimiter
                .as_deref()
                .and_then(|d| d.bytes().next())
                .unwrap_or(b'\t');
            let opts = delimited::Options {
                delimiter: delim,
                columns: columns.clone(),
                header: find_columns_from_header.unwrap_or(false),
                skip: *skip_header_rows,
                list_delimiter: list_delimiter.clone(),
            };
            delimited::read(entity, counting, &opts, sink)
        }
        InputFormat::AvroStream { .. } | InputFormat::Kafka { .. } => Err(IngestError::Spec(
            "spec.ioConfig.inputFormat.type: this format reads stream messages, not files".into(),
        )),
    }
}
