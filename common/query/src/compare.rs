//! Druid's string orderings (lexicographic, numeric, alphanumeric, strlen, version) and a total
//! order over result values used by sorts.

use std::cmp::Ordering;

use eddy_types::spec::StringComparator;

/// A number parsed from text: whole numbers stay exact.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum NumLit {
    Long(i64),
    Double(f64),
}

impl NumLit {
    pub fn parse(s: &str) -> Option<NumLit> {
        let t = s.trim();
        if let Ok(v) = t.parse::<i64>() {
            return Some(NumLit::Long(v));
        }
        t.parse::<f64>()
            .ok()
            .filter(|f| !f.is_nan())
            .map(NumLit::Double)
    }

    pub fn as_f64(self) -> f64 {
        match self {
            NumLit::Long(v) => v as f64,
            NumLit::Double(v) => v,
        }
    }

    /// Compares a long value with this literal without losing precision.
    pub fn cmp_long(self, v: i64) -> Ordering {
        match self {
            NumLit::Long(x) => v.cmp(&x),
            NumLit::Double(x) => (v as f64).partial_cmp(&x).unwrap_or(Ordering::Less),
        }
    }

    pub fn cmp_double(self, v: f64) -> Ordering {
        v.partial_cmp(&self.as_f64()).unwrap_or(Ordering::Less)
    }
}

pub fn compare_strings(ordering: StringComparator, a: &str, b: &str) -> Ordering {
    match ordering {
        StringComparator::Lexicographic => a.cmp(b),
        StringComparator::Strlen => a.len().cmp(&b.len()).then_with(|| a.cmp(b)),
        StringComparator::Numeric => match (NumLit::parse(a), NumLit::parse(b)) {
            (Some(x), Some(y)) => x
                .as_f64()
                .partial_cmp(&y.as_f64())
                .unwrap_or(Ordering::Equal)
                .then_with(|| {
                    // exact tie-break for large longs
                    match (x, y) {
                        (NumLit::Long(p), NumLit::Long(q)) => p.cmp(&q),
                        _ => Ordering::Equal,
                    }
                }),
            (None, Some(_)) => Ordering::Less,
            (Some(_), None) => Ordering::Greater,
            (None, None) => a.cmp(b),
        },
        StringComparator::Alphanumeric | StringComparator::Version => natural_cmp(a, b),
    }
}

/// Natural order: runs of digits compare as numbers, other text as text.
pub fn natural_cmp(a: &str, b: &str) -> Ordering {
    let (mut x, mut y) = (a.as_bytes(), b.as_bytes());
    loop {
        match (x.first(), y.first()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(p), Some(q)) if p.is_ascii_digit() && q.is_ascii_digit() => {
                let lx = x.iter().take_while(|c| c.is_ascii_digit()).count();
                let ly = y.iter().take_while(|c| c.is_ascii_digit()).count();
                let dx = trim_zeros(&x[..lx]);
                let dy = trim_zeros(&y[..ly]);
                let ord = dx.len().cmp(&dy.len()).then_with(|| dx.cmp(dy));
                if ord != Ordering::Equal {
                    return ord;
                }
                x = &x[lx..];
                y = &y[ly..];
            }
            (Some(p), Some(q)) => {
                if p != q {
                    return p.cmp(q);
                }
                x = &x[1..];
                y = &y[1..];
            }
        }
    }
}

fn trim_zeros(d: &[u8]) -> &[u8] {
    let first = d.iter().position(|c| *c != b'0').unwrap_or(d.len());
    &d[first..]
}

/// Orders scanned rows by their `orderBy` values (one per entry): numbers numerically (whole
/// numbers exactly), anything else by its text's bytes (a string's own, other values' JSON, as
/// SQL reads them into text columns); nulls where each entry puts them.
pub fn compare_scan_keys(
    a: &[serde_json::Value],
    b: &[serde_json::Value],
    order: &[crate::model::ScanOrderBy],
) -> Ordering {
    use serde_json::Value;
    use std::borrow::Cow;
    fn text(v: &Value) -> Cow<'_, str> {
        match v {
            Value::String(s) => Cow::Borrowed(s),
            other => Cow::Owned(other.to_string()),
        }
    }
    for ((x, y), o) in a.iter().zip(b).zip(order) {
        let by_value = match (x, y) {
            (Value::Null, Value::Null) => Ordering::Equal,
            (Value::Null, _) | (_, Value::Null) => {
                let null_first = if x.is_null() {
                    Ordering::Less
                } else {
                    Ordering::Greater
                };
                // Where nulls go does not turn with the direction.
                let c = if o.nulls_first() {
                    null_first
                } else {
                    null_first.reverse()
                };
                if c != Ordering::Equal {
                    return c;
                }
                continue;
            }
            (Value::Number(m), Value::Number(n)) => match (m.as_i64(), n.as_i64()) {
                (Some(m), Some(n)) => m.cmp(&n),
                _ => {
                    let (m, n) = (m.as_f64().unwrap_or(0.0), n.as_f64().unwrap_or(0.0));
                    m.total_cmp(&n)
                }
            },
            (Value::String(m), Value::String(n)) => m.as_bytes().cmp(n.as_bytes()),
            _ => text(x).as_bytes().cmp(text(y).as_bytes()),
        };
        let c = if o.descending() {
            by_value.reverse()
        } else {
            by_value
        };
        if c != Ordering::Equal {
            return c;
        }
    }
    Ordering::Equal
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orderings() {
        assert_eq!(
            compare_strings(StringComparator::Numeric, "10", "9"),
            Ordering::Greater
        );
        assert_eq!(
            compare_strings(StringComparator::Lexicographic, "10", "9"),
            Ordering::Less
        );
        assert_eq!(
            compare_strings(StringComparator::Alphanumeric, "a10", "a9"),
            Ordering::Greater
        );
        assert_eq!(
            compare_strings(StringComparator::Strlen, "bb", "a"),
            Ordering::Greater
        );
        assert_eq!(
            compare_strings(StringComparator::Numeric, "x", "1"),
            Ordering::Less
        );
        assert_eq!(
            NumLit::parse("435090932899640449"),
            Some(NumLit::Long(435090932899640449))
        );
        assert_eq!(
            NumLit::Long(435090932899640449).cmp_long(435090932899640448),
            Ordering::Less
        );
    }
}
