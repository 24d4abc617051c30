//! Evaluation of parsed expressions against a row, with Druid's typing: long arithmetic stays
//! long, any double makes it double, `+` joins strings, comparisons yield 1 or 0, and null
//! propagates through operators.

use std::cmp::Ordering;

use eddy_types::time::{TimeZone, format_iso_in, parse_iso_in};
use eddy_types::{Granularity, Period};

use crate::ExprError;
use crate::parse::{BinOp, Expr, UnaryOp};

#[derive(Debug, Clone, PartialEq)]
pub enum ExprValue {
    Null,
    Long(i64),
    Double(f64),
    Str(String),
    Array(Vec<ExprValue>),
}

impl ExprValue {
    pub fn is_null(&self) -> bool {
        matches!(self, ExprValue::Null)
    }

    pub fn truthy(&self) -> bool {
        match self {
            ExprValue::Null => false,
            ExprValue::Long(v) => *v != 0,
            ExprValue::Double(v) => *v != 0.0,
            ExprValue::Str(s) => s.eq_ignore_ascii_case("true"),
            ExprValue::Array(a) => !a.is_empty(),
        }
    }

    pub fn as_f64(&self) -> Option<f64> {
        match self {
            ExprValue::Long(v) => Some(*v as f64),
            ExprValue::Double(v) => Some(*v),
            ExprValue::Str(s) => s.trim().parse().ok(),
            _ => None,
        }
    }

    pub fn as_i64(&self) -> Option<i64> {
        match self {
            ExprValue::Long(v) => Some(*v),
            ExprValue::Double(v) => Some(*v as i64),
            ExprValue::Str(s) => s
                .trim()
                .parse::<i64>()
                .ok()
                .or_else(|| s.trim().parse::<f64>().ok().map(|f| f as i64)),
            _ => None,
        }
    }

    pub fn as_text(&self) -> Option<String> {
        match self {
            ExprValue::Null => None,
            ExprValue::Long(v) => Some(v.to_string()),
            ExprValue::Double(v) => Some(if v.fract() == 0.0 && v.abs() < 1e16 {
                format!("{v:.1}")
            } else {
                v.to_string()
            }),
            ExprValue::Str(s) => Some(s.clone()),
            ExprValue::Array(a) => Some(format!(
                "[{}]",
                a.iter()
                    .map(|v| v.as_text().unwrap_or_else(|| "null".into()))
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        }
    }

    fn bool(b: bool) -> ExprValue {
        ExprValue::Long(i64::from(b))
    }
}

/// Where identifiers get their values.
pub trait Bindings {
    fn get(&self, name: &str) -> ExprValue;
}

impl<F: Fn(&str) -> ExprValue> Bindings for F {
    fn get(&self, name: &str) -> ExprValue {
        self(name)
    }
}

fn arith(op: BinOp, a: ExprValue, b: ExprValue) -> ExprValue {
    use ExprValue::*;
    if a.is_null() || b.is_null() {
        return Null;
    }
    if op == BinOp::Add
        && let (Str(x), y) | (y, Str(x)) = (&a, &b)
    {
        let (l, r) = if matches!(a, Str(_)) {
            (x.clone(), y.as_text().unwrap_or_default())
        } else {
            (y.as_text().unwrap_or_default(), x.clone())
        };
        return Str(l + &r);
    }
    match (a.clone(), b.clone()) {
        (Long(x), Long(y)) => match op {
            BinOp::Add => Long(x.wrapping_add(y)),
            BinOp::Sub => Long(x.wrapping_sub(y)),
            BinOp::Mul => Long(x.wrapping_mul(y)),
            BinOp::Div => {
                if y == 0 {
                    Null
                } else {
                    Long(x.wrapping_div(y))
                }
            }
            BinOp::Mod => {
                if y == 0 {
                    Null
                } else {
                    Long(x.wrapping_rem(y))
                }
            }
            BinOp::Pow => Long((x as f64).powf(y as f64) as i64),
            _ => Null,
        },
        _ => {
            let (Some(x), Some(y)) = (a.as_f64(), b.as_f64()) else {
                return Null;
            };
            Double(match op {
                BinOp::Add => x + y,
                BinOp::Sub => x - y,
                BinOp::Mul => x * y,
                BinOp::Div => x / y,
                BinOp::Mod => x % y,
                BinOp::Pow => x.powf(y),
                _ => return Null,
            })
        }
    }
}

fn compare(a: &ExprValue, b: &ExprValue) -> Option<Ordering> {
    use ExprValue::*;
    match (a, b) {
        (Null, _) | (_, Null) => None,
        (Str(x), Str(y)) => Some(x.cmp(y)),
        (Long(x), Long(y)) => Some(x.cmp(y)),
        _ => a.as_f64()?.partial_cmp(&b.as_f64()?),
    }
}

pub fn eval(e: &Expr, row: &dyn Bindings) -> Result<ExprValue, ExprError> {
    Ok(match e {
        Expr::Null => ExprValue::Null,
        Expr::Long(v) => ExprValue::Long(*v),
        Expr::Double(v) => ExprValue::Double(*v),
        Expr::Str(s) => ExprValue::Str(s.clone()),
        Expr::Ident(name) => row.get(name),
        Expr::Array(items) => ExprValue::Array(
            items
                .iter()
                .map(|i| eval(i, row))
                .collect::<Result<_, _>>()?,
        ),
        Expr::Unary(UnaryOp::Neg, x) => match eval(x, row)? {
            ExprValue::Long(v) => ExprValue::Long(v.wrapping_neg()),
            ExprValue::Null => ExprValue::Null,
            other => other
                .as_f64()
                .map_or(ExprValue::Null, |f| ExprValue::Double(-f)),
        },
        Expr::Unary(UnaryOp::Not, x) => {
            let v = eval(x, row)?;
            if v.is_null() {
                ExprValue::Null
            } else {
                ExprValue::bool(!v.truthy())
            }
        }
        Expr::Binary(BinOp::And, a, b) => {
            let x = eval(a, row)?;
            if !x.is_null() && !x.truthy() {
                return Ok(ExprValue::bool(false));
            }
            let y = eval(b, row)?;
            match (x.is_null(), y.is_null()) {
                (_, false) if !y.truthy() => ExprValue::bool(false),
                (false, false) => ExprValue::bool(true),
                _ => ExprValue::Null,
            }
        }
        Expr::Binary(BinOp::Or, a, b) => {
            let x = eval(a, row)?;
            if x.truthy() {
                return Ok(ExprValue::bool(true));
            }
            let y = eval(b, row)?;
            if y.truthy() {
                ExprValue::bool(true)
            } else if x.is_null() || y.is_null() {
                ExprValue::Null
            } else {
                ExprValue::bool(false)
            }
        }
        Expr::Binary(
            op @ (BinOp::Eq | BinOp::Ne | BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge),
            a,
            b,
        ) => {
            let (x, y) = (eval(a, row)?, eval(b, row)?);
            match compare(&x, &y) {
                None => ExprValue::Null,
                Some(o) => ExprValue::bool(match op {
                    BinOp::Eq => o == Ordering::Equal,
                    BinOp::Ne => o != Ordering::Equal,
                    BinOp::Lt => o == Ordering::Less,
                    BinOp::Le => o != Ordering::Greater,
                    BinOp::Gt => o == Ordering::Greater,
                    _ => o != Ordering::Less,
                }),
            }
        }
        Expr::Binary(op, a, b) => arith(*op, eval(a, row)?, eval(b, row)?),
        Expr::Call(name, args) => crate::functions::call(name, args, row)?,
    })
}

/// Granularity for `timestamp_floor` and friends: a period, optional origin and zone.
pub(crate) fn period_granularity(
    period: &str,
    origin: Option<i64>,
    tz: Option<&str>,
) -> Result<Granularity, String> {
    let period: Period = period
        .parse()
        .map_err(|e: eddy_types::period::PeriodParseError| e.to_string())?;
    let tz = match tz {
        Some(z) => z.parse::<TimeZone>()?,
        None => TimeZone::Utc,
    };
    Ok(Granularity::Period { period, tz, origin })
}

pub(crate) fn parse_time(s: &str, tz: &TimeZone) -> Option<i64> {
    parse_iso_in(s, tz).ok()
}

pub(crate) fn format_time(t: i64, tz: &TimeZone) -> String {
    format_iso_in(t, tz)
}
