//! Folding one input value into the index: interning string values (multi-value handling
//! included), and applying a metric's aggregator to its column.

use super::{MemNumeric, MemStringDim, MetricOp};
use crate::codec::numeric::NumKind;
use crate::hll::{Hll, hash_str};
use crate::input::InputValue;

/// Interns a string dimension's value(s) into ids (null → [0]), applying multi-value handling.
pub(super) fn intern_values(
    dim: &mut MemStringDim,
    value: &InputValue<'_>,
    out: &mut Vec<u32>,
    scratch: &mut Vec<String>,
) {
    use eddy_types::spec::ingest::MultiValueHandling as H;
    match value {
        InputValue::List(items) => {
            scratch.clear();
            for item in items {
                if let Some(t) = item.as_text() {
                    scratch.push(t.into_owned());
                } else if let InputValue::List(_) = item {
                    scratch.push(list_text(item));
                }
            }
            match dim.handling {
                H::SortedArray => scratch.sort(),
                H::SortedSet => {
                    scratch.sort();
                    scratch.dedup();
                }
                H::Array => {}
            }
            if scratch.is_empty() {
                out.push(0);
            }
            for s in scratch.iter() {
                out.push(dim.intern(s));
            }
        }
        other => match other.as_text() {
            Some(t) => out.push(dim.intern(&t)),
            None => out.push(0),
        },
    }
}

fn list_text(v: &InputValue<'_>) -> String {
    match v {
        InputValue::List(items) => {
            let parts: Vec<String> = items.iter().map(list_text).collect();
            format!("[{}]", parts.join(","))
        }
        other => other
            .as_text()
            .map(|t| t.into_owned())
            .unwrap_or_else(|| "null".into()),
    }
}

pub(super) fn apply_metric(
    op: MetricOp,
    col: &mut MemNumeric,
    row: usize,
    value: &InputValue<'_>,
) -> Result<(), String> {
    let was_null = col.is_null(row);
    match col.kind {
        NumKind::Long => {
            let Some(v) = value.as_long()? else {
                return Ok(());
            };
            let slot = &mut col.longs[row];
            *slot = if was_null {
                v
            } else {
                match op {
                    MetricOp::Count | MetricOp::Sum => slot.wrapping_add(v),
                    MetricOp::Min => (*slot).min(v),
                    MetricOp::Max => (*slot).max(v),
                }
            };
        }
        _ => {
            let Some(v) = value.as_double()? else {
                return Ok(());
            };
            let slot = &mut col.doubles[row];
            *slot = if was_null {
                v
            } else {
                match op {
                    MetricOp::Count | MetricOp::Sum => *slot + v,
                    MetricOp::Min => slot.min(v),
                    MetricOp::Max => slot.max(v),
                }
            };
        }
    }
    if was_null {
        col.nulls.remove(row as u32);
    }
    Ok(())
}

/// Starts a new row's metric with its first value (null when there is none or it does not
/// read; the error is returned after the null is in place).
pub(super) fn first_value(col: &mut MemNumeric, value: &InputValue<'_>) -> Result<(), String> {
    match col.kind {
        NumKind::Long => match value.as_long() {
            Ok(v) => col.push_long(v),
            Err(e) => {
                col.push_long(None);
                return Err(e);
            }
        },
        _ => match value.as_double() {
            Ok(v) => col.push_double(v),
            Err(e) => {
                col.push_double(None);
                return Err(e);
            }
        },
    }
    Ok(())
}

pub(super) fn add_to_sketch(sketch: &mut Hll, value: &InputValue<'_>) {
    match value {
        InputValue::Null => {}
        InputValue::List(items) => items.iter().for_each(|i| add_to_sketch(sketch, i)),
        other => {
            if let Some(t) = other.as_text() {
                sketch.add_hash(hash_str(&t));
            }
        }
    }
}
