//! Parquet files, read as Arrow record batches. Columns are normalized once per batch (integers
//! to Int64, floats to Float64, times to epoch millis, dictionaries and views to Utf8) and rows
//! are views into the batch.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Float64Array, Int64Array, RecordBatch, StringArray,
};
use arrow::datatypes::{DataType, Int64Type, TimeUnit};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use eddy_segment::input::{InputRow, InputValue};

use super::{Record, Sink};
use crate::error::IngestError;
use crate::source::Entity;

enum Col {
    Str(StringArray),
    Long(Int64Array),
    Double(Float64Array),
    Bool(BooleanArray),
    Binary(ArrayRef),
    List(ArrayRef),
    Null,
}

fn normalize(array: &ArrayRef) -> Result<Col, arrow::error::ArrowError> {
    use arrow::compute::cast;
    Ok(match array.data_type() {
        DataType::Utf8 => Col::Str(array.as_string::<i32>().clone()),
        DataType::LargeUtf8 | DataType::Utf8View | DataType::Dictionary(_, _) => {
            Col::Str(cast(array, &DataType::Utf8)?.as_string::<i32>().clone())
        }
        DataType::Int8
        | DataType::Int16
        | DataType::Int32
        | DataType::Int64
        | DataType::UInt8
        | DataType::UInt16
        | DataType::UInt32
        | DataType::UInt64 => Col::Long(
            cast(array, &DataType::Int64)?
                .as_primitive::<Int64Type>()
                .clone(),
        ),
        DataType::Float16
        | DataType::Float32
        | DataType::Float64
        | DataType::Decimal128(_, _)
        | DataType::Decimal256(_, _) => Col::Double(
            cast(array, &DataType::Float64)?
                .as_primitive::<arrow::datatypes::Float64Type>()
                .clone(),
        ),
        DataType::Timestamp(_, _) | DataType::Date32 | DataType::Date64 => {
            let ms = cast(array, &DataType::Timestamp(TimeUnit::Millisecond, None))?;
            Col::Long(
                cast(&ms, &DataType::Int64)?
                    .as_primitive::<Int64Type>()
                    .clone(),
            )
        }
        DataType::Boolean => Col::Bool(array.as_boolean().clone()),
        DataType::Binary
        | DataType::LargeBinary
        | DataType::BinaryView
        | DataType::FixedSizeBinary(_) => Col::Binary(array.clone()),
        DataType::List(_) | DataType::LargeList(_) => Col::List(array.clone()),
        DataType::Null => Col::Null,
        _ => Col::Str(cast(array, &DataType::Utf8)?.as_string::<i32>().clone()),
    })
}

struct ParquetRow<'a> {
    names: &'a [String],
    index: &'a HashMap<String, usize>,
    cols: &'a [Col],
    row: usize,
    binary_as_string: bool,
}

fn value_of<'a>(col: &'a Col, row: usize, binary_as_string: bool) -> InputValue<'a> {
    match col {
        Col::Null => InputValue::Null,
        Col::Str(a) if a.is_null(row) => InputValue::Null,
        Col::Str(a) => InputValue::Str(Cow::Borrowed(a.value(row))),
        Col::Long(a) if a.is_null(row) => InputValue::Null,
        Col::Long(a) => InputValue::Long(a.value(row)),
        Col::Double(a) if a.is_null(row) => InputValue::Null,
        Col::Double(a) => InputValue::Double(a.value(row)),
        Col::Bool(a) if a.is_null(row) => InputValue::Null,
        Col::Bool(a) => InputValue::Bool(a.value(row)),
        Col::Binary(a) if a.is_null(row) => InputValue::Null,
        Col::Binary(a) => {
            let bytes: Vec<u8> = match a.data_type() {
                DataType::Binary => a.as_binary::<i32>().value(row).to_vec(),
                DataType::LargeBinary => a.as_binary::<i64>().value(row).to_vec(),
                DataType::BinaryView => a.as_binary_view().value(row).to_vec(),
                _ => a.as_fixed_size_binary().value(row).to_vec(),
            };
            if binary_as_string {
                InputValue::Str(Cow::Owned(String::from_utf8_lossy(&bytes).into_owned()))
            } else {
                InputValue::Str(Cow::Owned(
                    bytes.iter().map(|b| format!("{b:02x}")).collect(),
                ))
            }
        }
        Col::List(a) if a.is_null(row) => InputValue::Null,
        Col::List(a) => {
            let items: ArrayRef = match a.data_type() {
                DataType::List(_) => a.as_list::<i32>().value(row),
                _ => a.as_list::<i64>().value(row),
            };
            match normalize(&items) {
                Ok(inner) => InputValue::List(
                    (0..items.len())
                        .map(|i| value_of(&inner, i, binary_as_string).into_owned())
                        .collect(),
                ),
                Err(_) => InputValue::Null,
            }
        }
    }
}

impl InputRow for ParquetRow<'_> {
    fn get(&self, field: &str) -> InputValue<'_> {
        match self.index.get(field) {
            Some(i) => value_of(&self.cols[*i], self.row, self.binary_as_string),
            None => InputValue::Null,
        }
    }

    fn field_names(&self, out: &mut Vec<String>) {
        out.extend(self.names.iter().cloned());
    }
}

pub fn read(
    entity: &Entity,
    binary_as_string: bool,
    bytes: &Arc<AtomicU64>,
    sink: &mut Sink<'_>,
) -> Result<(), IngestError> {
    let Entity::File(path) = entity else {
        return Err(IngestError::Spec(
            "parquet input needs files (a local or http input source)".into(),
        ));
    };
    let io = |e: &dyn std::fmt::Display| {
        IngestError::Io(format!(
            "{} is not a readable Parquet file: {e}",
            path.display()
        ))
    };
    let file = std::fs::File::open(path).map_err(|e| io(&e))?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| io(&e))?;
    let group_sizes: Vec<u64> = builder
        .metadata()
        .row_groups()
        .iter()
        .map(|g| g.compressed_size().max(0) as u64)
        .collect();
    let group_rows: Vec<u64> = builder
        .metadata()
        .row_groups()
        .iter()
        .map(|g| g.num_rows().max(0) as u64)
        .collect();
    let names: Vec<String> = builder
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    let index: HashMap<String, usize> = names
        .iter()
        .enumerate()
        .map(|(i, n)| (n.clone(), i))
        .collect();
    let reader = builder.with_batch_size(8192).build().map_err(|e| io(&e))?;
    let (mut group, mut rows_in_group) = (0usize, 0u64);
    for batch in reader {
        let batch: RecordBatch = batch.map_err(|e| io(&e))?;
        let cols: Vec<Col> = batch
            .columns()
            .iter()
            .map(normalize)
            .collect::<Result<_, _>>()
            .map_err(|e| io(&e))?;
        for row in 0..batch.num_rows() {
            sink(Record::Row(&ParquetRow {
                names: &names,
                index: &index,
                cols: &cols,
                row,
                binary_as_string,
            }))?;
        }
        rows_in_group += batch.num_rows() as u64;
        while group < group_rows.len() && rows_in_group >= group_rows[group] {
            bytes.fetch_add(group_sizes[group], Ordering::Relaxed);
            rows_in_group -= group_rows[group];
            group += 1;
        }
    }
    Ok(())
}
