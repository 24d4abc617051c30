//! SQL aggregates as native aggregators: COUNT, SUM, MIN, MAX, AVG (a post-aggregator
//! dividing a sum by a count of non-null values), COUNT(DISTINCT)/APPROX_COUNT_DISTINCT as
//! sketches, LATEST/EARLIEST, FILTER clauses, MIN/MAX of a string column as Eddy's
//! stringMin/stringMax; SUM/MIN/MAX/AVG of an expression over one string column read a
//! virtual column.

use arrow::datatypes::DataType;
use datafusion::logical_expr::Expr;
use serde_json::{Value, json};

use super::expression::{self, Kind};
use super::filter::{self, column_of, literal};
use super::pushdown::Options;
use super::table::Columns;

/// Native aggregators (and a post-aggregator, for AVG) computing one SQL aggregate as `name`.
pub(super) fn aggregator(
    e: &Expr,
    name: &str,
    cols: &Columns,
    opts: &Options,
    virtuals: &mut Vec<Value>,
) -> Option<(Vec<Value>, Option<Value>)> {
    let Expr::AggregateFunction(f) = e.clone().unalias() else {
        return None;
    };
    let p = &f.params;
    let func = f.func.name().to_lowercase();
    if !p.order_by.is_empty() {
        return first_last(&func, p, name, cols);
    }
    let arg_col = || -> Option<(&str, &str)> {
        let c = column_of(p.args.first()?)?;
        Some((c, cols.kind(c)?))
    };
    let (mut aggs, post): (Vec<Value>, Option<Value>) = match (func.as_str(), p.distinct) {
        ("count", false) => match p.args.first() {
            None => (vec![json!({"type": "count", "name": name})], None),
            Some(a) if literal(a).is_some_and(|v| !v.is_null()) => {
                (vec![json!({"type": "count", "name": name})], None)
            }
            Some(_) => {
                let (c, _) = arg_col()?;
                (
                    vec![json!({
                        "type": "filtered",
                        "name": name,
                        "filter": {"type": "not", "field": {"type": "null", "column": c}},
                        "aggregator": {"type": "count", "name": name},
                    })],
                    None,
                )
            }
        },
        ("count", true) | ("approx_distinct", false) => {
            if func == "count" && !opts.approx_count_distinct {
                return None;
            }
            let (c, kind) = arg_col()?;
            if c == eddy_types::TIME_COLUMN {
                return None;
            }
            if kind.starts_with("COMPLEX<hyperUnique") {
                (
                    vec![
                        json!({"type": "hyperUnique", "name": name, "fieldName": c, "round": true}),
                    ],
                    None,
                )
            } else if kind.starts_with("COMPLEX") {
                return None;
            } else {
                (
                    vec![
                        json!({"type": "cardinality", "name": name, "fields": [c], "byRow": false, "round": true}),
                    ],
                    None,
                )
            }
        }
        ("sum" | "avg", false) => {
            let input = numeric_input(p.args.first()?, name, cols, virtuals, false)?;
            if func == "sum" {
                let t = if input.long { "longSum" } else { "doubleSum" };
                (
                    vec![json!({"type": t, "name": name, "fieldName": input.field})],
                    None,
                )
            } else {
                let sum = format!("{name}:sum");
                let count = format!("{name}:count");
                let count_agg = input.count(&count);
                (
                    // A double sum: a long sum of large values (ids) would overflow.
                    vec![
                        json!({"type": "doubleSum", "name": sum, "fieldName": input.field}),
                        count_agg,
                    ],
                    Some(json!({
                        "type": "arithmetic",
                        "name": name,
                        "fn": "quotient",
                        "fields": [
                            {"type": "fieldAccess", "fieldName": sum},
                            {"type": "fieldAccess", "fieldName": count},
                        ],
                    })),
                )
            }
        }
        ("min" | "max", false) => {
            let arg = p.args.first()?;
            // Strings: Eddy's stringMin/stringMax, over dictionary ids.
            if let Some(c) = column_of(arg).filter(|c| cols.kind(c) == Some("STRING")) {
                let t = if func == "min" {
                    "stringMin"
                } else {
                    "stringMax"
                };
                (vec![json!({"type": t, "name": name, "fieldName": c})], None)
            } else {
                let input = numeric_input(arg, name, cols, virtuals, true)?;
                let t = match (func == "min", input.long) {
                    (true, true) => "longMin",
                    (true, false) => "doubleMin",
                    (false, true) => "longMax",
                    (false, false) => "doubleMax",
                };
                (
                    vec![json!({"type": t, "name": name, "fieldName": input.field})],
                    None,
                )
            }
        }
        _ => return None,
    };
    if let Some(w) = &p.filter {
        let f = filter::translate(w, cols)?.into_filter();
        aggs = aggs
            .into_iter()
            .map(|a| {
                let n = a["name"].clone();
                json!({"type": "filtered", "name": n, "filter": f, "aggregator": a})
            })
            .collect();
    }
    Some((aggs, post))
}

/// LATEST/EARLIEST (`last_value`/`first_value` ordered by `__time`) as Druid's typed
/// Last/First aggregators.
fn first_last(
    func: &str,
    p: &datafusion::logical_expr::expr::AggregateFunctionParams,
    name: &str,
    cols: &Columns,
) -> Option<(Vec<Value>, Option<Value>)> {
    let last = match func {
        "last_value" => true,
        "first_value" => false,
        _ => return None,
    };
    let [order] = p.order_by.as_slice() else {
        return None;
    };
    if column_of(&order.expr) != Some(eddy_types::TIME_COLUMN) || p.args.len() != 1 {
        return None;
    }
    // ORDER BY __time DESC flips which end is wanted.
    let last = last == order.asc;
    let c = column_of(&p.args[0])?;
    let kind = cols.kind(c)?;
    let prefix = match kind {
        "STRING" => "string",
        "LONG" => "long",
        "FLOAT" => "float",
        "DOUBLE" => "double",
        _ => return None,
    };
    let t = format!("{prefix}{}", if last { "Last" } else { "First" });
    let mut agg = json!({"type": t, "name": name, "fieldName": c});
    if kind == "STRING" {
        agg["maxStringBytes"] = json!(1024);
    }
    if let Some(w) = &p.filter {
        let f = filter::translate(w, cols)?.into_filter();
        agg = json!({"type": "filtered", "name": name, "filter": f, "aggregator": agg});
    }
    Some((vec![agg], None))
}

/// What SUM, MIN, MAX and AVG read.
struct NumericInput {
    /// The column or virtual column.
    field: String,
    long: bool,
    /// The column whose nulls the input's nulls are, or the virtual column that is 1 where
    /// the input is not null.
    present: Present,
}

enum Present {
    Column(String),
    Virtual(String),
}

impl NumericInput {
    /// An aggregator counting the rows where the input is not null (AVG's divisor).
    fn count(&self, name: &str) -> Value {
        match &self.present {
            Present::Column(c) => json!({"type": "filtered", "name": name,
                "filter": {"type": "not", "field": {"type": "null", "column": c}},
                "aggregator": {"type": "count", "name": name}}),
            Present::Virtual(v) => json!({"type": "longSum", "name": name, "fieldName": v}),
        }
    }
}

/// A numeric column (`__time` only where `time_ok`), or a numeric expression over one string
/// column computed in virtual columns named after the aggregate (the engine evaluates those
/// once per distinct value of the column).
fn numeric_input(
    arg: &Expr,
    name: &str,
    cols: &Columns,
    virtuals: &mut Vec<Value>,
    time_ok: bool,
) -> Option<NumericInput> {
    if let Some(c) = column_of(arg) {
        let kind = cols.kind(c)?;
        if !matches!(kind, "LONG" | "FLOAT" | "DOUBLE") || c == eddy_types::TIME_COLUMN && !time_ok
        {
            return None;
        }
        return Some(NumericInput {
            field: c.to_string(),
            long: kind == "LONG",
            present: Present::Column(c.to_string()),
        });
    }
    // AVG's input arrives cast to DOUBLE: the virtual column's output type does that.
    let (arg, to_double) = match arg {
        Expr::Cast(c) if matches!(c.field.data_type(), DataType::Float64 | DataType::Float32) => {
            (c.expr.as_ref(), true)
        }
        other => (other, false),
    };
    let (text, kind) = expression::translate(arg, cols)?;
    let kind = if to_double && kind == Kind::Long {
        Kind::Double
    } else {
        kind
    };
    let refs = arg.column_refs();
    let [column] = refs.iter().collect::<Vec<_>>()[..] else {
        return None;
    };
    if cols.kind(&column.name)? != "STRING" || !matches!(kind, Kind::Long | Kind::Double) {
        return None;
    }
    let (value, present) = (format!("{name}:v"), format!("{name}:nn"));
    virtuals.push(json!({"type": "expression", "name": value, "expression": text, "outputType": kind.output_type()?}));
    virtuals.push(json!({"type": "expression", "name": present, "expression": format!("notnull({text})"), "outputType": "LONG"}));
    Some(NumericInput {
        field: value,
        long: kind == Kind::Long,
        present: Present::Virtual(present),
    })
}
