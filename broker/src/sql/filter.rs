//! SQL predicates as Druid native filters. A predicate translates when every part of it is a
//! comparison of a table column with literals (or a LIKE, IN, IS NULL, BETWEEN,
//! TIME_IN_INTERVAL) joined by AND, OR and NOT; conditions on `__time` alone become query
//! intervals, so segments outside them are never touched.

use datafusion::common::ScalarValue;
use datafusion::logical_expr::{BinaryExpr, Expr, Operator};
use serde_json::{Value, json};

use eddy_types::Interval;
use eddy_types::time::{TimeZone, parse_iso_in};

use super::table::Columns;

/// A translated predicate.
#[derive(Debug, Clone)]
pub enum Native {
    /// Rows whose `__time` falls in one of these intervals.
    Time(Vec<Interval>),
    /// A native filter.
    Filter(Value),
}

impl Native {
    /// As a native filter (time ranges as an `interval` filter on `__time`).
    pub fn into_filter(self) -> Value {
        match self {
            Native::Filter(f) => f,
            Native::Time(ivs) => json!({
                "type": "interval",
                "dimension": eddy_types::TIME_COLUMN,
                "intervals": ivs.iter().map(|i| i.to_string()).collect::<Vec<_>>(),
            }),
        }
    }
}

/// The column a (possibly cast) expression reads, when it is just a column.
pub fn column_of(e: &Expr) -> Option<&str> {
    match e {
        Expr::Column(c) => Some(c.name.as_str()),
        Expr::Cast(c) => column_of(&c.expr),
        Expr::TryCast(c) => column_of(&c.expr),
        Expr::Alias(a) => column_of(&a.expr),
        _ => None,
    }
}

/// A literal's value as JSON, with timestamps as epoch milliseconds.
pub fn literal(e: &Expr) -> Option<Value> {
    let v = match e {
        Expr::Literal(v, _) => v,
        Expr::Cast(c) => return literal_cast(&c.expr, c.field.data_type()),
        Expr::TryCast(c) => return literal_cast(&c.expr, c.field.data_type()),
        Expr::Alias(a) => return literal(&a.expr),
        _ => return None,
    };
    scalar_json(v)
}

fn literal_cast(e: &Expr, to: &arrow::datatypes::DataType) -> Option<Value> {
    let v = literal(e)?;
    match (to, &v) {
        (arrow::datatypes::DataType::Timestamp(_, _), Value::String(s)) => {
            parse_iso_in(s, &TimeZone::Utc).ok().map(Value::from)
        }
        _ => Some(v),
    }
}

pub fn scalar_json(v: &ScalarValue) -> Option<Value> {
    use ScalarValue as S;
    Some(match v {
        S::Null => Value::Null,
        S::Boolean(Some(b)) => Value::Bool(*b),
        S::Utf8(Some(s)) | S::LargeUtf8(Some(s)) | S::Utf8View(Some(s)) => Value::String(s.clone()),
        S::Int8(Some(x)) => (*x).into(),
        S::Int16(Some(x)) => (*x).into(),
        S::Int32(Some(x)) => (*x).into(),
        S::Int64(Some(x)) => (*x).into(),
        S::UInt8(Some(x)) => (*x).into(),
        S::UInt16(Some(x)) => (*x).into(),
        S::UInt32(Some(x)) => (*x).into(),
        S::UInt64(Some(x)) => (*x).into(),
        S::Float32(Some(x)) => f64::from(*x).into(),
        S::Float64(Some(x)) => (*x).into(),
        S::TimestampSecond(Some(x), _) => (x * 1000).into(),
        S::TimestampMillisecond(Some(x), _) => (*x).into(),
        S::TimestampMicrosecond(Some(x), _) => x.div_euclid(1000).into(),
        S::TimestampNanosecond(Some(x), _) => x.div_euclid(1_000_000).into(),
        S::Date32(Some(d)) => (i64::from(*d) * 86_400_000).into(),
        S::Date64(Some(d)) => (*d).into(),
        _ => return None,
    })
}

/// Milliseconds of a literal compared with `__time` (timestamps, numbers, ISO or SQL strings).
fn time_literal(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => parse_iso_in(s.trim(), &TimeZone::Utc).ok(),
        _ => None,
    }
}

fn value_type(v: &Value) -> &'static str {
    match v {
        Value::Number(n) if n.is_i64() || n.is_u64() => "LONG",
        Value::Number(_) => "DOUBLE",
        _ => "STRING",
    }
}

/// The value to compare a column of `kind` with: strings for string columns, numbers for
/// numeric ones (numeric strings are parsed, as SQL would coerce them).
fn typed_value(kind: &str, v: &Value) -> Option<Value> {
    match (kind, v) {
        ("STRING", Value::String(_)) => Some(v.clone()),
        ("STRING", Value::Number(n)) => Some(Value::String(n.to_string())),
        (_, Value::Number(_)) => Some(v.clone()),
        (_, Value::String(s)) => s
            .parse::<i64>()
            .map(Value::from)
            .ok()
            .or_else(|| s.parse::<f64>().ok().map(Value::from)),
        _ => None,
    }
}

fn not(f: Value) -> Value {
    json!({"type": "not", "field": f})
}

fn not_null(col: &str) -> Value {
    not(json!({"type": "null", "column": col}))
}

/// SQL's `NOT p` never matches rows where the column is null; neither does this.
fn negate_non_null(col: &str, f: Value) -> Value {
    json!({"type": "and", "fields": [not_null(col), not(f)]})
}

fn equals(col: &str, kind: &str, v: &Value) -> Option<Value> {
    let v = typed_value(kind, v)?;
    Some(json!({
        "type": "equals",
        "column": col,
        "matchValueType": value_type(&v),
        "matchValue": v,
    }))
}

fn range(
    col: &str,
    kind: &str,
    lower: Option<(&Value, bool)>,
    upper: Option<(&Value, bool)>,
) -> Option<Value> {
    let mut f = serde_json::Map::new();
    f.insert("type".into(), "range".into());
    f.insert("column".into(), col.into());
    let mut ty = "LONG";
    if let Some((v, open)) = lower {
        let v = typed_value(kind, v)?;
        ty = value_type(&v);
        f.insert("lower".into(), v);
        f.insert("lowerOpen".into(), open.into());
    }
    if let Some((v, open)) = upper {
        let v = typed_value(kind, v)?;
        if ty != "DOUBLE" {
            ty = value_type(&v);
        }
        f.insert("upper".into(), v);
        f.insert("upperOpen".into(), open.into());
    }
    f.insert("matchValueType".into(), ty.into());
    Some(Value::Object(f))
}

/// Half-open interval of `__time` values for `__time <op> t`.
fn time_range(op: Operator, t: i64) -> Option<Interval> {
    let (lo, hi) = (Interval::ETERNITY.start, Interval::ETERNITY.end);
    let (s, e) = match op {
        Operator::Eq => (t, t.saturating_add(1)),
        Operator::Gt => (t.saturating_add(1), hi),
        Operator::GtEq => (t, hi),
        Operator::Lt => (lo, t),
        Operator::LtEq => (lo, t.saturating_add(1)),
        _ => return None,
    };
    Some(Interval {
        start: s,
        end: e.max(s),
    })
}

fn flip(op: Operator) -> Operator {
    match op {
        Operator::Gt => Operator::Lt,
        Operator::GtEq => Operator::LtEq,
        Operator::Lt => Operator::Gt,
        Operator::LtEq => Operator::GtEq,
        other => other,
    }
}

fn intersect(a: &[Interval], b: &[Interval]) -> Vec<Interval> {
    let mut out = Vec::new();
    for x in a {
        for y in b {
            if let Some(i) = x.intersect(y) {
                out.push(i);
            }
        }
    }
    eddy_types::interval::condense(out)
}

/// Translates a predicate, or None when some part of it has no native form.
pub fn translate(e: &Expr, cols: &Columns) -> Option<Native> {
    match e {
        Expr::BinaryExpr(BinaryExpr { left, op, right }) => match op {
            Operator::And | Operator::Or => {
                let l = translate(left, cols)?;
                let r = translate(right, cols)?;
                Some(combine(*op == Operator::And, l, r))
            }
            Operator::Eq
            | Operator::NotEq
            | Operator::Lt
            | Operator::LtEq
            | Operator::Gt
            | Operator::GtEq => {
                if let (Some(c), Some(v)) = (column_of(left), literal(right)) {
                    compare(c, *op, &v, cols)
                } else if let (Some(v), Some(c)) = (literal(left), column_of(right)) {
                    compare(c, flip(*op), &v, cols)
                } else {
                    None
                }
            }
            _ => None,
        },
        Expr::Not(inner) => {
            let t = translate(inner, cols)?;
            match t {
                Native::Time(ivs) => Some(Native::Filter(not(Native::Time(ivs).into_filter()))),
                Native::Filter(f) => Some(Native::Filter(not(f))),
            }
        }
        Expr::IsNull(inner) => {
            let c = column_of(inner)?;
            cols.kind(c)?;
            Some(Native::Filter(json!({"type": "null", "column": c})))
        }
        Expr::IsNotNull(inner) => {
            let c = column_of(inner)?;
            cols.kind(c)?;
            Some(Native::Filter(not_null(c)))
        }
        Expr::InList(list) => {
            let c = column_of(&list.expr)?;
            let kind = cols.kind(c)?;
            if c == eddy_types::TIME_COLUMN {
                return None;
            }
            let values: Vec<Value> = list.list.iter().map(literal).collect::<Option<_>>()?;
            let f = if kind == "STRING" {
                let vals: Vec<Value> = values
                    .iter()
                    .map(|v| typed_value(kind, v))
                    .collect::<Option<_>>()?;
                json!({"type": "in", "dimension": c, "values": vals})
            } else {
                let fields: Vec<Value> = values
                    .iter()
                    .map(|v| equals(c, kind, v))
                    .collect::<Option<_>>()?;
                json!({"type": "or", "fields": fields})
            };
            Some(Native::Filter(if list.negated {
                negate_non_null(c, f)
            } else {
                f
            }))
        }
        Expr::Like(like) => {
            if like.case_insensitive {
                return None;
            }
            let c = column_of(&like.expr)?;
            if cols.kind(c)? != "STRING" {
                return None;
            }
            let Value::String(pattern) = literal(&like.pattern)? else {
                return None;
            };
            let mut f = json!({"type": "like", "dimension": c, "pattern": pattern});
            if let Some(esc) = like.escape_char {
                f["escape"] = Value::String(esc.to_string());
            }
            Some(Native::Filter(if like.negated {
                negate_non_null(c, f)
            } else {
                f
            }))
        }
        Expr::Between(b) => {
            let c = column_of(&b.expr)?;
            let lo = literal(&b.low)?;
            let hi = literal(&b.high)?;
            let both = combine(
                true,
                compare(c, Operator::GtEq, &lo, cols)?,
                compare(c, Operator::LtEq, &hi, cols)?,
            );
            if b.negated {
                Some(Native::Filter(not(both.into_filter())))
            } else {
                Some(both)
            }
        }
        Expr::ScalarFunction(f) if f.name() == "time_in_interval" => {
            let c = column_of(f.args.first()?)?;
            if c != eddy_types::TIME_COLUMN {
                return None;
            }
            let Value::String(text) = literal(f.args.get(1)?)? else {
                return None;
            };
            Some(Native::Time(vec![Interval::parse(&text).ok()?]))
        }
        Expr::Literal(ScalarValue::Boolean(Some(b)), _) => Some(Native::Filter(json!({
            "type": if *b { "true" } else { "false" }
        }))),
        Expr::Alias(a) => translate(&a.expr, cols),
        _ => None,
    }
}

fn combine(and: bool, l: Native, r: Native) -> Native {
    match (and, l, r) {
        (true, Native::Time(a), Native::Time(b)) => Native::Time(intersect(&a, &b)),
        (false, Native::Time(mut a), Native::Time(b)) => {
            a.extend(b);
            Native::Time(eddy_types::interval::condense(a))
        }
        (and, l, r) => Native::Filter(json!({
            "type": if and { "and" } else { "or" },
            "fields": [l.into_filter(), r.into_filter()],
        })),
    }
}

fn compare(col: &str, op: Operator, v: &Value, cols: &Columns) -> Option<Native> {
    let kind = cols.kind(col)?;
    if col == eddy_types::TIME_COLUMN {
        let t = time_literal(v)?;
        if op == Operator::NotEq {
            return Some(Native::Filter(not(Native::Time(vec![time_range(
                Operator::Eq,
                t,
            )?])
            .into_filter())));
        }
        return Some(Native::Time(vec![time_range(op, t)?]));
    }
    if v.is_null() {
        // Comparisons with NULL match nothing.
        return Some(Native::Filter(json!({"type": "false"})));
    }
    let f = match op {
        Operator::Eq => equals(col, kind, v)?,
        Operator::NotEq => negate_non_null(col, equals(col, kind, v)?),
        Operator::Lt => range(col, kind, None, Some((v, true)))?,
        Operator::LtEq => range(col, kind, None, Some((v, false)))?,
        Operator::Gt => range(col, kind, Some((v, true)), None)?,
        Operator::GtEq => range(col, kind, Some((v, false)), None)?,
        _ => return None,
    };
    Some(Native::Filter(f))
}

/// Splits translated conjuncts into query intervals and one native filter.
pub fn split(parts: Vec<Native>) -> (Vec<Interval>, Option<Value>) {
    let mut intervals = vec![Interval::ETERNITY];
    let mut filters = Vec::new();
    for p in parts {
        match p {
            Native::Time(ivs) => intervals = intersect(&intervals, &ivs),
            Native::Filter(f) => filters.push(f),
        }
    }
    let filter = match filters.len() {
        0 => None,
        1 => filters.pop(),
        _ => Some(json!({"type": "and", "fields": filters})),
    };
    (intervals, filter)
}
