//! Druid's SQL result formats: object, array, objectLines, arrayLines and csv, with the optional
//! header rows, rendered from Arrow batches.

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use arrow::compute::cast;
use arrow::datatypes::{
    DataType, Float32Type, Float64Type, Int64Type, SchemaRef, TimeUnit, UInt64Type,
};
use datafusion::common::DataFusionError;
use serde_json::Value;

use eddy_runtime::http::ApiError;
use eddy_types::time::format_iso;

use super::http::SqlRequest;
use super::planner::SqlOutput;
use super::table::type_names;

#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Format {
    Object,
    Array,
    ObjectLines,
    ArrayLines,
    Csv,
}

impl Format {
    pub(super) fn parse(s: Option<&str>) -> Result<Format, ApiError> {
        Ok(match s.unwrap_or("object") {
            "object" | "OBJECT" => Format::Object,
            "array" | "ARRAY" => Format::Array,
            "objectLines" | "objectlines" | "OBJECTLINES" => Format::ObjectLines,
            "arrayLines" | "arraylines" | "ARRAYLINES" => Format::ArrayLines,
            "csv" | "CSV" => Format::Csv,
            other => {
                return Err(ApiError::invalid(format!(
                    "resultFormat: unknown format {other:?}; use object, array, objectLines, arrayLines or csv"
                )));
            }
        })
    }

    pub(super) fn content_type(self) -> &'static str {
        match self {
            Format::Object | Format::Array => "application/json",
            Format::ObjectLines | Format::ArrayLines => "text/plain",
            Format::Csv => "text/csv",
        }
    }
}

/// One cell as JSON text appended to `out`.
fn json_cell(out: &mut String, col: &ArrayRef, row: usize) {
    use std::fmt::Write;
    if col.is_null(row) {
        out.push_str("null");
        return;
    }
    match col.data_type() {
        DataType::Utf8 => push_json_str(out, col.as_string::<i32>().value(row)),
        DataType::LargeUtf8 => push_json_str(out, col.as_string::<i64>().value(row)),
        DataType::Utf8View => push_json_str(out, col.as_string_view().value(row)),
        DataType::Int64 => {
            let _ = write!(out, "{}", col.as_primitive::<Int64Type>().value(row));
        }
        DataType::UInt64 => {
            let _ = write!(out, "{}", col.as_primitive::<UInt64Type>().value(row));
        }
        DataType::Float64 => push_float(out, col.as_primitive::<Float64Type>().value(row)),
        DataType::Float32 => {
            push_float(out, f64::from(col.as_primitive::<Float32Type>().value(row)))
        }
        DataType::Boolean => out.push_str(if col.as_boolean().value(row) {
            "true"
        } else {
            "false"
        }),
        DataType::Timestamp(_, _) | DataType::Date32 | DataType::Date64 => {
            match millis_at(col, row) {
                Some(ms) => push_json_str(out, &format_iso(ms)),
                None => out.push_str("null"),
            }
        }
        t if t.is_integer() || t.is_floating() || matches!(t, DataType::Decimal128(_, _)) => {
            match cast(&col.slice(row, 1), &DataType::Float64) {
                Ok(f) if t.is_floating() || matches!(t, DataType::Decimal128(_, _)) => {
                    push_float(out, f.as_primitive::<Float64Type>().value(0))
                }
                _ => match cast(&col.slice(row, 1), &DataType::Int64) {
                    Ok(i) => {
                        let _ = write!(out, "{}", i.as_primitive::<Int64Type>().value(0));
                    }
                    Err(_) => out.push_str("null"),
                },
            }
        }
        DataType::List(_) | DataType::LargeList(_) => {
            let text = list_json(col, row);
            push_json_str(out, &text);
        }
        _ => match cast(&col.slice(row, 1), &DataType::Utf8) {
            Ok(s) => push_json_str(out, s.as_string::<i32>().value(0)),
            Err(_) => out.push_str("null"),
        },
    }
}

fn list_json(col: &ArrayRef, row: usize) -> String {
    let values = match col.data_type() {
        DataType::List(_) => col.as_list::<i32>().value(row),
        _ => col.as_list::<i64>().value(row),
    };
    let mut out = String::from("[");
    for i in 0..values.len() {
        if i > 0 {
            out.push(',');
        }
        json_cell(&mut out, &values, i);
    }
    out.push(']');
    out
}

fn millis_at(col: &ArrayRef, row: usize) -> Option<i64> {
    let t = cast(
        &col.slice(row, 1),
        &DataType::Timestamp(TimeUnit::Millisecond, None),
    )
    .ok()?;
    let i = cast(&t, &DataType::Int64).ok()?;
    let p = i.as_primitive::<Int64Type>();
    (!p.is_null(0)).then(|| p.value(0))
}

fn push_float(out: &mut String, f: f64) {
    use std::fmt::Write;
    if !f.is_finite() {
        out.push_str("null");
    } else if f == f.trunc() && f.abs() < 1e15 {
        let _ = write!(out, "{f:.1}");
    } else {
        let _ = write!(out, "{f}");
    }
}

fn push_json_str(out: &mut String, s: &str) {
    match serde_json::to_string(s) {
        Ok(q) => out.push_str(&q),
        Err(_) => out.push_str("null"),
    }
}

/// One cell as CSV text.
fn csv_cell(out: &mut String, col: &ArrayRef, row: usize) {
    if col.is_null(row) {
        return;
    }
    let mut text = String::new();
    json_cell(&mut text, col, row);
    let plain = match serde_json::from_str::<Value>(&text) {
        Ok(Value::String(s)) => s,
        _ => text,
    };
    push_csv(out, &plain);
}

fn push_csv(out: &mut String, s: &str) {
    if s.contains([',', '"', '\n', '\r']) {
        out.push('"');
        out.push_str(&s.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(s);
    }
}

/// Renders a result in `format`, with the header rows the request asks for.
pub(super) fn render(
    out: &SqlOutput,
    format: Format,
    req: &SqlRequest,
) -> Result<String, DataFusionError> {
    let schema: &SchemaRef = &out.schema;
    let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    let types: Vec<(&str, &str)> = schema
        .fields()
        .iter()
        .map(|f| {
            let (druid, sql, _) = type_names(f.data_type());
            (druid, sql)
        })
        .collect();
    let mut s = String::new();
    let mut first = true;
    let open = |s: &mut String, first: &mut bool| match format {
        Format::Object | Format::Array => {
            s.push(if *first { '[' } else { ',' });
            *first = false;
        }
        _ => {}
    };
    let close_row = |s: &mut String| {
        if matches!(
            format,
            Format::ObjectLines | Format::ArrayLines | Format::Csv
        ) {
            s.push('\n');
        }
    };
    if req.header {
        match format {
            Format::Object | Format::ObjectLines => {
                open(&mut s, &mut first);
                s.push('{');
                for (i, name) in names.iter().enumerate() {
                    if i > 0 {
                        s.push(',');
                    }
                    push_json_str(&mut s, name);
                    s.push(':');
                    if req.types_header || req.sql_types_header {
                        s.push('{');
                        let mut parts = Vec::new();
                        if req.types_header {
                            parts.push(format!("\"type\":\"{}\"", types[i].0));
                        }
                        if req.sql_types_header {
                            parts.push(format!("\"sqlType\":\"{}\"", types[i].1));
                        }
                        s.push_str(&parts.join(","));
                        s.push('}');
                    } else {
                        s.push_str("null");
                    }
                }
                s.push('}');
                close_row(&mut s);
            }
            Format::Array | Format::ArrayLines | Format::Csv => {
                let mut lines: Vec<Vec<&str>> = vec![names.clone()];
                if req.types_header {
                    lines.push(types.iter().map(|t| t.0).collect());
                }
                if req.sql_types_header {
                    lines.push(types.iter().map(|t| t.1).collect());
                }
                for line in lines {
                    open(&mut s, &mut first);
                    if format == Format::Csv {
                        for (i, v) in line.iter().enumerate() {
                            if i > 0 {
                                s.push(',');
                            }
                            push_csv(&mut s, v);
                        }
                    } else {
                        s.push('[');
                        for (i, v) in line.iter().enumerate() {
                            if i > 0 {
                                s.push(',');
                            }
                            push_json_str(&mut s, v);
                        }
                        s.push(']');
                    }
                    close_row(&mut s);
                }
            }
        }
    }
    for batch in &out.batches {
        render_batch(&mut s, batch, format, &names, &mut first);
    }
    match format {
        Format::Object | Format::Array => {
            if first {
                s.push('[');
            }
            s.push_str("]\n");
        }
        Format::ObjectLines | Format::ArrayLines => s.push('\n'),
        Format::Csv => s.push('\n'),
    }
    Ok(s)
}

fn render_batch(
    s: &mut String,
    batch: &RecordBatch,
    format: Format,
    names: &[&str],
    first: &mut bool,
) {
    let cols = batch.columns();
    for row in 0..batch.num_rows() {
        if matches!(format, Format::Object | Format::Array) {
            s.push(if *first { '[' } else { ',' });
            *first = false;
        }
        match format {
            Format::Object | Format::ObjectLines => {
                s.push('{');
                for (i, col) in cols.iter().enumerate() {
                    if i > 0 {
                        s.push(',');
                    }
                    push_json_str(s, names[i]);
                    s.push(':');
                    json_cell(s, col, row);
                }
                s.push('}');
            }
            Format::Array | Format::ArrayLines => {
                s.push('[');
                for (i, col) in cols.iter().enumerate() {
                    if i > 0 {
                        s.push(',');
                    }
                    json_cell(s, col, row);
                }
                s.push(']');
            }
            Format::Csv => {
                for (i, col) in cols.iter().enumerate() {
                    if i > 0 {
                        s.push(',');
                    }
                    csv_cell(s, col, row);
                }
            }
        }
        if matches!(
            format,
            Format::ObjectLines | Format::ArrayLines | Format::Csv
        ) {
            s.push('\n');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quotes_when_needed() {
        let mut s = String::new();
        push_csv(&mut s, "A,B \"x\"");
        assert_eq!(s, "\"A,B \"\"x\"\"\"");
    }
}
