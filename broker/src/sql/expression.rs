//! SQL expressions as native expressions (the language of virtual columns), for the forms whose
//! meaning is the same on both sides, nulls included: columns, literals, comparisons, AND, OR,
//! NOT, IS [NOT] NULL, searched CASE, LENGTH, LOWER, UPPER and REGEXP_REPLACE with an anchored
//! pattern. Anything else is left to DataFusion.

use datafusion::logical_expr::{BinaryExpr, Case, Expr, Operator};
use datafusion::scalar::ScalarValue;

use super::filter::literal;
use super::table::Columns;

/// What a translated expression yields.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Kind {
    Long,
    Double,
    Str,
    Bool,
}

impl Kind {
    /// The virtual column `outputType` of a value of this kind (booleans are not group keys).
    pub(super) fn output_type(self) -> Option<&'static str> {
        match self {
            Kind::Long => Some("LONG"),
            Kind::Double => Some("DOUBLE"),
            Kind::Str => Some("STRING"),
            Kind::Bool => None,
        }
    }

    fn numeric(self) -> bool {
        matches!(self, Kind::Long | Kind::Double)
    }
}

/// `e` in the native expression language, with the kind of its values.
pub(super) fn translate(e: &Expr, cols: &Columns) -> Option<(String, Kind)> {
    Some(match e {
        Expr::Alias(a) => return translate(&a.expr, cols),
        Expr::Column(c) => {
            if c.name == eddy_types::TIME_COLUMN || c.name.contains(['"', '\\']) {
                return None;
            }
            let kind = match cols.kind(&c.name)? {
                "STRING" => Kind::Str,
                "LONG" => Kind::Long,
                "DOUBLE" | "FLOAT" => Kind::Double,
                _ => return None,
            };
            (format!("\"{}\"", c.name), kind)
        }
        Expr::Literal(v, _) => scalar(v)?,
        Expr::Cast(c) => {
            // Casts DataFusion adds between types of one kind (Int32 -> Int64, Utf8View -> Utf8).
            let (text, kind) = translate(&c.expr, cols)?;
            (kind == kind_of_type(c.field.data_type())?).then_some((text, kind))?
        }
        Expr::Not(x) => {
            let (text, kind) = translate(x, cols)?;
            (kind == Kind::Bool).then(|| (format!("(!{text})"), Kind::Bool))?
        }
        Expr::IsNull(x) => (format!("isnull({})", translate(x, cols)?.0), Kind::Bool),
        Expr::IsNotNull(x) => (format!("notnull({})", translate(x, cols)?.0), Kind::Bool),
        Expr::BinaryExpr(b) => binary(b, cols)?,
        Expr::Case(c) => case(c, cols)?,
        Expr::ScalarFunction(f) => {
            let args: Vec<(String, Kind)> = f
                .args
                .iter()
                .map(|a| translate(a, cols))
                .collect::<Option<_>>()?;
            let strings = args.iter().all(|(_, k)| *k == Kind::Str);
            match (f.name(), &args[..]) {
                ("character_length" | "char_length" | "length", [(s, Kind::Str)]) => {
                    (format!("strlen({s})"), Kind::Long)
                }
                ("lower" | "upper", [(s, Kind::Str)]) => (format!("{}({s})", f.name()), Kind::Str),
                ("regexp_replace", [(s, _), _, _]) if strings => {
                    let pattern = literal(&f.args[1])?.as_str()?.to_string();
                    let replacement = literal(&f.args[2])?.as_str()?.to_string();
                    // Without the 'g' flag SQL replaces the first match and the native function
                    // every match: the same when the pattern can only match at the start.
                    if !anchored(&pattern) {
                        return None;
                    }
                    let replacement = posix_groups(&replacement)?;
                    (
                        format!(
                            "regexp_replace({s}, {}, {})",
                            quote(&pattern),
                            quote(&replacement)
                        ),
                        Kind::Str,
                    )
                }
                _ => return None,
            }
        }
        _ => return None,
    })
}

fn binary(b: &BinaryExpr, cols: &Columns) -> Option<(String, Kind)> {
    let (l, lk) = translate(&b.left, cols)?;
    let (r, rk) = translate(&b.right, cols)?;
    let op = match b.op {
        Operator::And | Operator::Or => {
            if lk != Kind::Bool || rk != Kind::Bool {
                return None;
            }
            if b.op == Operator::And { "&&" } else { "||" }
        }
        Operator::Eq
        | Operator::NotEq
        | Operator::Lt
        | Operator::LtEq
        | Operator::Gt
        | Operator::GtEq => {
            if !(lk == rk && lk != Kind::Bool || lk.numeric() && rk.numeric()) {
                return None;
            }
            match b.op {
                Operator::Eq => "==",
                Operator::NotEq => "!=",
                Operator::Lt => "<",
                Operator::LtEq => "<=",
                Operator::Gt => ">",
                _ => ">=",
            }
        }
        _ => return None,
    };
    Some((format!("({l} {op} {r})"), Kind::Bool))
}

fn case(c: &Case, cols: &Columns) -> Option<(String, Kind)> {
    // Only the searched form: CASE x WHEN ... compares as SQL does, the native form by text.
    if c.expr.is_some() {
        return None;
    }
    let mut parts = Vec::new();
    let mut kind = None;
    let mut result = |e: &Expr, parts: &mut Vec<String>| -> Option<()> {
        let (text, k) = translate(e, cols)?;
        if k == Kind::Bool || kind.is_some_and(|want| want != k) {
            return None;
        }
        kind = Some(k);
        parts.push(text);
        Some(())
    };
    for (when, then) in &c.when_then_expr {
        let (cond, k) = translate(when, cols)?;
        if k != Kind::Bool {
            return None;
        }
        parts.push(cond);
        result(then, &mut parts)?;
    }
    if let Some(e) = &c.else_expr {
        result(e, &mut parts)?;
    }
    Some((format!("case_searched({})", parts.join(", ")), kind?))
}

fn kind_of_type(t: &arrow::datatypes::DataType) -> Option<Kind> {
    use arrow::datatypes::DataType as T;
    Some(match t {
        T::Int8 | T::Int16 | T::Int32 | T::Int64 => Kind::Long,
        T::Float32 | T::Float64 => Kind::Double,
        T::Utf8 | T::LargeUtf8 | T::Utf8View => Kind::Str,
        T::Boolean => Kind::Bool,
        _ => return None,
    })
}

fn scalar(v: &ScalarValue) -> Option<(String, Kind)> {
    Some(match v {
        ScalarValue::Utf8(Some(s))
        | ScalarValue::LargeUtf8(Some(s))
        | ScalarValue::Utf8View(Some(s)) => (quote(s), Kind::Str),
        ScalarValue::Int64(Some(x)) => long(*x)?,
        ScalarValue::Int32(Some(x)) => long(i64::from(*x))?,
        ScalarValue::Int16(Some(x)) => long(i64::from(*x))?,
        ScalarValue::Int8(Some(x)) => long(i64::from(*x))?,
        ScalarValue::Float64(Some(x)) => {
            // Plain decimal notation only (the native parser reads no exponents).
            let text = format!("{x:?}");
            if !x.is_finite() || text.contains(['e', 'E']) {
                return None;
            }
            (
                if *x < 0.0 { format!("({text})") } else { text },
                Kind::Double,
            )
        }
        ScalarValue::Boolean(Some(b)) => (
            (if *b { "(1 == 1)" } else { "(1 == 0)" }).into(),
            Kind::Bool,
        ),
        _ => return None,
    })
}

fn long(x: i64) -> Option<(String, Kind)> {
    // i64::MIN has no positive literal to negate.
    (x != i64::MIN).then(|| {
        (
            if x < 0 {
                format!("({x})")
            } else {
                x.to_string()
            },
            Kind::Long,
        )
    })
}

/// Whether a regular expression can only match at the start of the text: it starts with `^`,
/// has no alternation (`^a|b` matches anywhere) and no flag groups (`(?m)` would let a `^`
/// match after newlines); non-capturing groups `(?:...)` are fine.
fn anchored(pattern: &str) -> bool {
    pattern.starts_with('^')
        && !pattern.contains('|')
        && pattern
            .match_indices("(?")
            .all(|(i, _)| pattern[i + 2..].starts_with(':'))
}

/// A single-quoted native string literal.
fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// SQL's `\1` group references as the native (and regex crate's) `${1}`, as DataFusion rewrites
/// them; None for any other backslash, whose meaning would differ.
fn posix_groups(replacement: &str) -> Option<String> {
    let mut out = String::with_capacity(replacement.len() + 4);
    let mut chars = replacement.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        let mut digits = String::new();
        while let Some(d) = chars.peek().copied().filter(char::is_ascii_digit) {
            digits.push(d);
            chars.next();
        }
        if digits.is_empty() {
            return None;
        }
        out.push_str(&format!("${{{digits}}}"));
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::{anchored, posix_groups, quote};

    #[test]
    fn replacements_and_quotes() {
        assert!(anchored(r"^https?://(?:www\.)?([^/]+)/.*$"));
        assert!(!anchored("a^"));
        assert!(!anchored("^a|b"));
        assert!(!anchored("^a(?m)^b"));
        assert_eq!(posix_groups(r"\1").as_deref(), Some("${1}"));
        assert_eq!(posix_groups(r"x\12y").as_deref(), Some("x${12}y"));
        assert_eq!(posix_groups(r"a\b"), None);
        assert_eq!(quote(r"it's a \ back"), r"'it\'s a \\ back'");
    }
}
