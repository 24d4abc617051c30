//! Built-in functions of the expression language (string, math, conditional and time ones).

use std::borrow::Cow;

use regex::Regex;
use smallvec::SmallVec;

use eddy_types::time::TimeZone;

use crate::ExprError;
use crate::eval::{Bindings, ExprValue, eval, format_time, parse_time, period_granularity};
use crate::parse::Expr;
use crate::time_part::TimeUnit;

fn arity(name: &str, args: &[Expr], min: usize, max: usize) -> Result<(), ExprError> {
    if args.len() < min || args.len() > max {
        let want = if min == max {
            format!("{min}")
        } else {
            format!("{min} to {max}")
        };
        return Err(ExprError::Eval(format!(
            "{name}() takes {want} arguments, got {}",
            args.len()
        )));
    }
    Ok(())
}

/// A value as text, borrowed when it is a string already.
fn text(v: &ExprValue) -> Option<Cow<'_, str>> {
    match v {
        ExprValue::Str(s) => Some(Cow::Borrowed(s)),
        other => other.as_text().map(Cow::Owned),
    }
}

fn tz_arg(args: &[ExprValue], i: usize) -> Result<TimeZone, ExprError> {
    match args.get(i).and_then(|v| v.as_text()) {
        None => Ok(TimeZone::Utc),
        Some(z) => z.parse::<TimeZone>().map_err(ExprError::Eval),
    }
}

/// Runs `f` with the compiled `pattern`. Patterns are nearly always literals of the
/// expression, so each thread keeps the ones it compiled (a few dozen at most; the cache is
/// cleared when it grows past that). The regex is lent, not cloned: a clone would start with an
/// empty search cache and rebuild its automaton on every row.
fn with_regex<T>(pattern: &str, f: impl FnOnce(&Regex) -> T) -> Result<T, ExprError> {
    use std::cell::RefCell;
    // Looked up once per row: hashbrown's hasher, not SipHash.
    use hashbrown::HashMap;
    const KEEP: usize = 64;
    thread_local! {
        static COMPILED: RefCell<HashMap<String, Regex>> = RefCell::new(HashMap::new());
    }
    COMPILED.with(|cell| {
        let mut compiled = cell.borrow_mut();
        if let Some(re) = compiled.get(pattern) {
            return Ok(f(re));
        }
        let re = Regex::new(pattern)
            .map_err(|e| ExprError::Eval(format!("bad regex {pattern:?}: {e}")))?;
        if compiled.len() >= KEEP {
            compiled.clear();
        }
        let out = f(&re);
        compiled.insert(pattern.to_string(), re);
        Ok(out)
    })
}

pub fn call(name: &str, args: &[Expr], row: &dyn Bindings) -> Result<ExprValue, ExprError> {
    use ExprValue as V;
    // Lazily evaluated forms first.
    match name {
        "if" => {
            arity(name, args, 3, 3)?;
            return if eval(&args[0], row)?.truthy() {
                eval(&args[1], row)
            } else {
                eval(&args[2], row)
            };
        }
        "nvl" | "coalesce" => {
            for a in args {
                let v = eval(a, row)?;
                if !v.is_null() {
                    return Ok(v);
                }
            }
            return Ok(V::Null);
        }
        "case_searched" => {
            let mut i = 0;
            while i + 1 < args.len() {
                if eval(&args[i], row)?.truthy() {
                    return eval(&args[i + 1], row);
                }
                i += 2;
            }
            return if args.len() % 2 == 1 {
                eval(&args[args.len() - 1], row)
            } else {
                Ok(V::Null)
            };
        }
        "case_simple" => {
            arity(name, args, 3, usize::MAX)?;
            let subject = eval(&args[0], row)?;
            let mut i = 1;
            while i + 1 < args.len() {
                let candidate = eval(&args[i], row)?;
                if !subject.is_null() && subject.as_text() == candidate.as_text() {
                    return eval(&args[i + 1], row);
                }
                i += 2;
            }
            return if args.len().is_multiple_of(2) {
                eval(&args[args.len() - 1], row)
            } else {
                Ok(V::Null)
            };
        }
        _ => {}
    }
    // Arguments on the stack: this runs once per row or dictionary id.
    let vals: SmallVec<[ExprValue; 3]> = args
        .iter()
        .map(|a| eval(a, row))
        .collect::<Result<_, _>>()?;
    let num = |i: usize| vals.get(i).and_then(ExprValue::as_f64);
    let long = |i: usize| vals.get(i).and_then(ExprValue::as_i64);
    let s = |i: usize| vals.get(i).and_then(text);
    Ok(match name {
        "concat" => {
            let mut out = String::new();
            for v in &vals {
                match v.as_text() {
                    Some(t) => out.push_str(&t),
                    None => return Ok(V::Null),
                }
            }
            V::Str(out)
        }
        "upper" => s(0).map_or(V::Null, |x| V::Str(x.to_uppercase())),
        "lower" => s(0).map_or(V::Null, |x| V::Str(x.to_lowercase())),
        "strlen" | "length" => s(0).map_or(V::Null, |x| V::Long(x.chars().count() as i64)),
        "trim" => s(0).map_or(V::Null, |x| V::Str(x.trim().to_string())),
        "ltrim" => s(0).map_or(V::Null, |x| V::Str(x.trim_start().to_string())),
        "rtrim" => s(0).map_or(V::Null, |x| V::Str(x.trim_end().to_string())),
        "reverse" => s(0).map_or(V::Null, |x| V::Str(x.chars().rev().collect())),
        "substring" => {
            arity(name, args, 2, 3)?;
            let Some(x) = s(0) else { return Ok(V::Null) };
            let start = long(1).unwrap_or(0).max(0) as usize;
            let chars: Vec<char> = x.chars().collect();
            if start >= chars.len() {
                return Ok(V::Null);
            }
            let len = long(2).map_or(chars.len() - start, |l| {
                (l.max(0) as usize).min(chars.len() - start)
            });
            V::Str(chars[start..start + len].iter().collect())
        }
        "left" => s(0).map_or(V::Null, |x| {
            V::Str(
                x.chars()
                    .take(long(1).unwrap_or(0).max(0) as usize)
                    .collect(),
            )
        }),
        "right" => s(0).map_or(V::Null, |x| {
            let n = long(1).unwrap_or(0).max(0) as usize;
            let chars: Vec<char> = x.chars().collect();
            V::Str(chars[chars.len().saturating_sub(n)..].iter().collect())
        }),
        "replace" => match (s(0), s(1), s(2)) {
            (Some(x), Some(from), Some(to)) => V::Str(x.replace(&*from, &to)),
            _ => V::Null,
        },
        "strpos" => match (s(0), s(1)) {
            (Some(x), Some(needle)) => V::Long(
                x.find(&*needle)
                    .map_or(-1, |p| x[..p].chars().count() as i64),
            ),
            _ => V::Null,
        },
        "contains_string" => match (s(0), s(1)) {
            (Some(x), Some(n)) => V::Long(i64::from(x.contains(&*n))),
            _ => V::Null,
        },
        "icontains_string" => match (s(0), s(1)) {
            (Some(x), Some(n)) => V::Long(i64::from(x.to_lowercase().contains(&n.to_lowercase()))),
            _ => V::Null,
        },
        "regexp_extract" => match (s(0), s(1)) {
            (Some(x), Some(p)) => {
                let group = long(2).unwrap_or(0).max(0) as usize;
                with_regex(&p, |re| {
                    re.captures(&x)
                        .and_then(|c| c.get(group))
                        .map_or(V::Null, |m| V::Str(m.as_str().to_string()))
                })?
            }
            _ => V::Null,
        },
        "regexp_like" => match (s(0), s(1)) {
            (Some(x), Some(p)) => V::Long(i64::from(with_regex(&p, |re| re.is_match(&x))?)),
            _ => V::Null,
        },
        "regexp_replace" => match (s(0), s(1), s(2)) {
            (Some(x), Some(p), Some(r)) => {
                V::Str(with_regex(&p, |re| re.replace_all(&x, &*r).into_owned())?)
            }
            _ => V::Null,
        },
        "like" => match (s(0), s(1)) {
            (Some(x), Some(p)) => {
                let mut re = String::from("(?s)^");
                for c in p.chars() {
                    match c {
                        '%' => re.push_str(".*"),
                        '_' => re.push('.'),
                        c => re.push_str(&regex::escape(&c.to_string())),
                    }
                }
                re.push('$');
                V::Long(i64::from(with_regex(&re, |m| m.is_match(&x))?))
            }
            _ => V::Null,
        },
        "isnull" => V::Long(i64::from(vals.first().is_none_or(ExprValue::is_null))),
        "notnull" => V::Long(i64::from(vals.first().is_some_and(|v| !v.is_null()))),
        "cast" => {
            arity(name, args, 2, 2)?;
            let to = s(1).unwrap_or_default().to_ascii_uppercase();
            match (to.as_str(), &vals[0]) {
                (_, V::Null) => V::Null,
                ("LONG" | "BIGINT", v) => v.as_i64().map_or(V::Null, V::Long),
                ("DOUBLE" | "FLOAT", v) => v.as_f64().map_or(V::Null, V::Double),
                ("STRING" | "VARCHAR", v) => v.as_text().map_or(V::Null, V::Str),
                (other, _) => {
                    return Err(ExprError::Eval(format!(
                        "cast to {other:?} is not supported"
                    )));
                }
            }
        }
        "parse_long" => match s(0) {
            Some(x) => {
                i64::from_str_radix(x.trim(), long(1).unwrap_or(10) as u32).map_or(V::Null, V::Long)
            }
            None => V::Null,
        },
        "abs" => match vals.first() {
            Some(V::Long(v)) => V::Long(v.wrapping_abs()),
            _ => num(0).map_or(V::Null, |x| V::Double(x.abs())),
        },
        "floor" => num(0).map_or(V::Null, |x| V::Double(x.floor())),
        "ceil" => num(0).map_or(V::Null, |x| V::Double(x.ceil())),
        "round" => {
            let digits = long(1).unwrap_or(0) as i32;
            match vals.first() {
                Some(V::Long(v)) if digits >= 0 => V::Long(*v),
                _ => num(0).map_or(V::Null, |x| {
                    let f = 10f64.powi(digits);
                    V::Double((x * f).round() / f)
                }),
            }
        }
        "sqrt" => num(0).map_or(V::Null, |x| V::Double(x.sqrt())),
        "exp" => num(0).map_or(V::Null, |x| V::Double(x.exp())),
        "log" => num(0).map_or(V::Null, |x| V::Double(x.ln())),
        "log10" => num(0).map_or(V::Null, |x| V::Double(x.log10())),
        "pow" => match (num(0), num(1)) {
            (Some(a), Some(b)) => V::Double(a.powf(b)),
            _ => V::Null,
        },
        "div" => match (long(0), long(1)) {
            (Some(_), Some(0)) | (None, _) | (_, None) => V::Null,
            (Some(a), Some(b)) => V::Long(a.wrapping_div(b)),
        },
        "greatest" | "least" => {
            let present: Vec<&ExprValue> = vals.iter().filter(|v| !v.is_null()).collect();
            if present.is_empty() {
                return Ok(V::Null);
            }
            let all_long = present.iter().all(|v| matches!(v, V::Long(_)));
            let greatest = name == "greatest";
            if all_long {
                let it = present.iter().filter_map(|v| v.as_i64());
                V::Long(if greatest { it.max() } else { it.min() }.unwrap_or(0))
            } else {
                let it = present.iter().filter_map(|v| v.as_f64());
                V::Double(if greatest {
                    it.fold(f64::MIN, f64::max)
                } else {
                    it.fold(f64::MAX, f64::min)
                })
            }
        }
        "timestamp" | "timestamp_parse" => {
            arity(name, args, 1, 3)?;
            let Some(x) = s(0) else { return Ok(V::Null) };
            let tz = tz_arg(&vals, 2)?;
            let parsed = match s(1) {
                Some(p) => crate::joda::parse(&x, &p, &tz),
                None => parse_time(&x, &tz),
            };
            parsed.map_or(V::Null, V::Long)
        }
        "timestamp_format" => {
            arity(name, args, 1, 3)?;
            let Some(t) = long(0) else { return Ok(V::Null) };
            let tz = tz_arg(&vals, 2)?;
            V::Str(match s(1) {
                Some(p) => crate::joda::format(t, &p, &tz),
                None => format_time(t, &tz),
            })
        }
        "timestamp_floor" | "timestamp_ceil" => {
            arity(name, args, 2, 4)?;
            let (Some(t), Some(p)) = (long(0), s(1)) else {
                return Ok(V::Null);
            };
            let origin = long(2);
            let tz = s(3);
            let g = period_granularity(&p, origin, tz.as_deref()).map_err(ExprError::Eval)?;
            let floor = g.bucket_start(t);
            V::Long(if name == "timestamp_ceil" && floor != t {
                g.next_bucket(floor)
            } else {
                floor
            })
        }
        "timestamp_shift" => {
            arity(name, args, 3, 4)?;
            let (Some(t), Some(p), Some(step)) = (long(0), s(1), long(2)) else {
                return Ok(V::Null);
            };
            let period: eddy_types::Period =
                p.parse()
                    .map_err(|e: eddy_types::period::PeriodParseError| {
                        ExprError::Eval(e.to_string())
                    })?;
            V::Long(period.add_to(t, &tz_arg(&vals, 3)?, step))
        }
        "timestamp_extract" => {
            arity(name, args, 2, 3)?;
            let (Some(t), Some(unit)) = (long(0), s(1)) else {
                return Ok(V::Null);
            };
            let tz = tz_arg(&vals, 2)?;
            V::Long(TimeUnit::parse(&unit)?.of(t, &tz))
        }
        other => return Err(ExprError::Eval(format!("unknown function {other}()"))),
    })
}
