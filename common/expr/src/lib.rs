//! Druid's native expression language (used by `transformSpec` expression transforms): parse
//! once, evaluate per row against any `Bindings`.

mod eval;
mod functions;
pub mod joda;
mod parse;
mod time_part;

pub use eval::{Bindings, ExprValue};
pub use parse::Expr;
pub use time_part::{TimePart, TimeUnit};

/// A number of one string value that [`Compiled::string_number`] recognises.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StringNumber {
    /// `strlen(x)`: its length in characters (null for a null).
    Length,
    /// `notnull(x)` or `notnull(strlen(x))`: 1, or 0 for a null.
    NotNull,
}

impl StringNumber {
    /// The number for `value` (`None` is a null string); `None` when the number is null.
    pub fn of(self, value: Option<&str>) -> Option<i64> {
        match self {
            StringNumber::Length => value.map(|t| t.chars().count() as i64),
            StringNumber::NotNull => Some(i64::from(value.is_some())),
        }
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ExprError {
    #[error("cannot parse expression {expr:?} at character {pos}: {reason}")]
    Parse {
        expr: String,
        pos: usize,
        reason: String,
    },
    #[error("{0}")]
    Eval(String),
}

/// A parsed expression.
#[derive(Debug, Clone)]
pub struct Compiled {
    source: String,
    expr: Expr,
}

impl Compiled {
    pub fn parse(source: &str) -> Result<Self, ExprError> {
        Ok(Compiled {
            source: source.to_string(),
            expr: parse::parse(source)?,
        })
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    pub fn eval(&self, row: &dyn Bindings) -> Result<ExprValue, ExprError> {
        eval::eval(&self.expr, row)
    }

    /// The expression as a [`StringNumber`] of one identifier, when it is one: a caller may
    /// compute it from the identifier's text without the interpreter.
    pub fn string_number(&self) -> Option<(&str, StringNumber)> {
        fn length(e: &Expr) -> Option<&str> {
            match e {
                Expr::Call(name, args) if name == "strlen" || name == "length" => match &args[..] {
                    [Expr::Ident(input)] => Some(input),
                    _ => None,
                },
                _ => None,
            }
        }
        if let Some(input) = length(&self.expr) {
            return Some((input, StringNumber::Length));
        }
        match &self.expr {
            // A string's length is null exactly when the string is.
            Expr::Call(name, args) if name == "notnull" => match &args[..] {
                [Expr::Ident(input)] => Some((input, StringNumber::NotNull)),
                [inner] => length(inner).map(|input| (input, StringNumber::NotNull)),
                _ => None,
            },
            _ => None,
        }
    }

    /// Identifiers the expression reads.
    pub fn identifiers(&self) -> Vec<String> {
        fn walk(e: &Expr, out: &mut Vec<String>) {
            match e {
                Expr::Ident(n) => out.push(n.clone()),
                Expr::Unary(_, x) => walk(x, out),
                Expr::Binary(_, a, b) => {
                    walk(a, out);
                    walk(b, out);
                }
                Expr::Call(_, args) | Expr::Array(args) => args.iter().for_each(|a| walk(a, out)),
                _ => {}
            }
        }
        let mut out = Vec::new();
        walk(&self.expr, &mut out);
        out.sort();
        out.dedup();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(src: &str) -> ExprValue {
        let row = |name: &str| match name {
            "country" => ExprValue::Str("us".into()),
            "added" => ExprValue::Long(10),
            "ratio" => ExprValue::Double(0.5),
            "__time" => ExprValue::Long(1_377_907_200_000),
            _ => ExprValue::Null,
        };
        Compiled::parse(src).unwrap().eval(&row).unwrap()
    }

    #[test]
    fn string_numbers_are_recognised_only_alone() {
        let of = |src: &str| {
            let c = Compiled::parse(src).unwrap();
            c.string_number().map(|(input, n)| (input.to_string(), n))
        };
        let named = |input: &str, n| Some((input.to_string(), n));
        assert_eq!(of("strlen(\"URL\")"), named("URL", StringNumber::Length));
        assert_eq!(
            of("LENGTH(Referer)"),
            named("Referer", StringNumber::Length)
        );
        assert_eq!(
            of("notnull(strlen(URL))"),
            named("URL", StringNumber::NotNull)
        );
        assert_eq!(of("notnull(URL)"), named("URL", StringNumber::NotNull));
        assert_eq!(of("strlen(URL) + 1"), None);
        assert_eq!(of("strlen('x')"), None);
        assert_eq!(of("notnull(upper(URL))"), None);
        assert_eq!(of("upper(URL)"), None);
        // What the interpreter gives, which `StringNumber::of` must match.
        for (src, text) in [
            ("strlen(s)", Some("né")),
            ("strlen(s)", None),
            ("notnull(strlen(s))", Some("")),
            ("notnull(strlen(s))", None),
        ] {
            let row = |name: &str| match (name, text) {
                ("s", Some(t)) => ExprValue::Str(t.to_string()),
                _ => ExprValue::Null,
            };
            let c = Compiled::parse(src).unwrap();
            let expected = match c.eval(&row).unwrap() {
                ExprValue::Long(n) => Some(n),
                _ => None,
            };
            assert_eq!(
                c.string_number().unwrap().1.of(text),
                expected,
                "{src} of {text:?}"
            );
        }
    }

    #[test]
    fn arithmetic_and_strings() {
        assert_eq!(run("added * 2 + 1"), ExprValue::Long(21));
        assert_eq!(run("added / 4"), ExprValue::Long(2));
        assert_eq!(run("added * ratio"), ExprValue::Double(5.0));
        assert_eq!(run("upper(country)"), ExprValue::Str("US".into()));
        assert_eq!(
            run("concat(country, '-', added)"),
            ExprValue::Str("us-10".into())
        );
        assert_eq!(run("\"country\" + 'x'"), ExprValue::Str("usx".into()));
        assert_eq!(run("missing + 1"), ExprValue::Null);
        assert_eq!(run("nvl(missing, 'dflt')"), ExprValue::Str("dflt".into()));
        assert_eq!(
            run("if(added > 5, 'big', 'small')"),
            ExprValue::Str("big".into())
        );
        assert_eq!(
            run("case_searched(added == 1, 'one', added == 10, 'ten', 'other')"),
            ExprValue::Str("ten".into())
        );
        assert_eq!(run("-added ^ 2"), ExprValue::Long(-100));
        assert_eq!(
            run("substring('hello', 1, 3)"),
            ExprValue::Str("ell".into())
        );
        assert_eq!(
            run("regexp_extract('a1b22', '[0-9]+', 0)"),
            ExprValue::Str("1".into())
        );
        assert_eq!(run("added > 5 && country == 'us'"), ExprValue::Long(1));
    }

    #[test]
    fn time_functions() {
        assert_eq!(
            run("timestamp_extract(__time, 'YEAR')"),
            ExprValue::Long(2013)
        );
        assert_eq!(
            run("timestamp_floor(__time + 3600001, 'PT1H')"),
            ExprValue::Long(1_377_907_200_000 + 3_600_000)
        );
        assert_eq!(
            run("timestamp_format(__time, 'yyyy-MM-dd')"),
            ExprValue::Str("2013-08-31".into())
        );
        assert_eq!(
            run("timestamp_parse('2013-08-31T00:00:00Z')"),
            ExprValue::Long(1_377_907_200_000)
        );
        assert_eq!(
            run("timestamp_shift(__time, 'P1D', -1)"),
            ExprValue::Long(1_377_907_200_000 - 86_400_000)
        );
    }

    #[test]
    fn errors_are_located() {
        let e = Compiled::parse("upper(country").unwrap_err().to_string();
        assert!(e.contains("upper(country") && e.contains("')'"), "{e}");
        assert!(Compiled::parse("1 +").is_err());
        let e = Compiled::parse("nosuch(1)")
            .unwrap()
            .eval(&|_: &str| ExprValue::Null)
            .unwrap_err();
        assert!(e.to_string().contains("nosuch"));
    }
}
