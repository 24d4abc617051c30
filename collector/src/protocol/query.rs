//! Query strings as Divolte reads them: a multimap of decoded names and values, base-36
//! numbers, `t`/`f` booleans, and the `x` checksum over a canonical rendering of the rest.

use std::borrow::Cow;

use super::murmur3::murmur3_32;

/// The name of the checksum parameter.
pub const CHECKSUM: &str = "x";

/// Decoded parameters in the order they were sent (a name may repeat). Names and values that
/// need no decoding borrow from the query string.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params<'a> {
    pairs: Vec<(Cow<'a, str>, Cow<'a, str>)>,
}

impl<'a> Params<'a> {
    /// Parses `a=1&b=x%20y`: `+` is a space, `%XX` a byte (invalid escapes stay as written),
    /// bytes that are not UTF-8 become U+FFFD.
    pub fn parse(query: &'a str) -> Params<'a> {
        let pairs = query
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| match p.split_once('=') {
                Some((k, v)) => (decode(k), decode(v)),
                None => (decode(p), Cow::Borrowed("")),
            })
            .collect();
        Params { pairs }
    }

    /// A copy that borrows nothing.
    pub fn into_owned(self) -> Params<'static> {
        Params {
            pairs: self
                .pairs
                .into_iter()
                .map(|(k, v)| (Cow::Owned(k.into_owned()), Cow::Owned(v.into_owned())))
                .collect(),
        }
    }

    /// The first value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_ref())
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.pairs.iter().map(|(k, v)| (k.as_ref(), v.as_ref()))
    }

    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    /// Divolte's canonical string: names sorted, each as `name=` then every value followed by
    /// `,`, then `;`; the checksum parameter left out.
    pub fn canonical(&self) -> String {
        let mut order: Vec<usize> = (0..self.pairs.len()).collect();
        // A stable sort keeps the values of one name in the order they were sent.
        order.sort_by(|a, b| self.pairs[*a].0.cmp(&self.pairs[*b].0));
        let mut out = String::new();
        let mut current: Option<&str> = None;
        for i in order {
            let (k, v) = &self.pairs[i];
            if k == CHECKSUM {
                continue;
            }
            if current != Some(k.as_ref()) {
                if current.is_some() {
                    out.push(';');
                }
                out.push_str(k);
                out.push('=');
                current = Some(k.as_ref());
            }
            out.push_str(v);
            out.push(',');
        }
        if current.is_some() {
            out.push(';');
        }
        out
    }

    /// Whether the `x` parameter is present and equals the Murmur3-32 of the canonical string.
    pub fn checksum_ok(&self) -> bool {
        let Some(expected) = self.get(CHECKSUM).and_then(parse_base36) else {
            return false;
        };
        expected == i64::from(murmur3_32(self.canonical().as_bytes()))
    }
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Form-decodes one name or value.
pub fn decode(s: &str) -> Cow<'_, str> {
    if !s.bytes().any(|b| b == b'%' || b == b'+') {
        return Cow::Borrowed(s);
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    Cow::Owned(String::from_utf8_lossy(&out).into_owned())
}

/// Parses a base-36 integer as Java's `Long.parseLong(s, 36)` does: an optional sign, then
/// digits and letters in either case; `None` when empty, malformed or out of range.
pub fn parse_base36(s: &str) -> Option<i64> {
    let (negative, digits) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    if digits.is_empty() {
        return None;
    }
    let mut value: i64 = 0;
    for b in digits.bytes() {
        let d = match b {
            b'0'..=b'9' => b - b'0',
            b'a'..=b'z' => b - b'a' + 10,
            b'A'..=b'Z' => b - b'A' + 10,
            _ => return None,
        };
        // Accumulate negatively so that i64::MIN parses.
        value = value.checked_mul(36)?.checked_sub(i64::from(d))?;
    }
    if negative {
        Some(value)
    } else {
        value.checked_neg()
    }
}

/// Renders `v` in base 36 with lowercase letters (JavaScript's `toString(36)`).
pub fn to_base36(v: i64) -> String {
    const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    if v == 0 {
        return "0".into();
    }
    let mut n = v.unsigned_abs();
    let mut buf = Vec::with_capacity(14);
    while n > 0 {
        buf.push(DIGITS[(n % 36) as usize]);
        n /= 36;
    }
    if v < 0 {
        buf.push(b'-');
    }
    buf.reverse();
    String::from_utf8(buf).unwrap_or_default()
}

/// A device pixel ratio. The tracker sends `devicePixelRatio.toString(36)`, so 1.5 arrives as
/// `1.i` and 1.25 as `1.9`; other clients send decimals (`1.5`). A fraction with letters is
/// base 36. A fraction of digits only is base 36 when JavaScript could have printed it, that is
/// when its value is a binary fraction (the digits, read as a base-36 number, divisible by 9 per
/// digit: `1.9`); otherwise it is a decimal (`1.5`, `2.25`).
pub fn parse_ratio(s: &str) -> Option<f64> {
    if let Some(v) = parse_base36(s) {
        return Some(v as f64);
    }
    let (int, frac) = s.split_once('.')?;
    let negative = int.starts_with('-');
    let whole = match int {
        "" | "-" | "+" => 0,
        _ => parse_base36(int)?,
    };
    let digits: Option<Vec<u8>> = frac
        .bytes()
        .map(|b| match b {
            b'0'..=b'9' => Some(b - b'0'),
            b'a'..=b'z' => Some(b - b'a' + 10),
            b'A'..=b'Z' => Some(b - b'A' + 10),
            _ => None,
        })
        .collect();
    let digits = digits.filter(|d| !d.is_empty())?;
    let decimal_digits = frac.bytes().all(|b| b.is_ascii_digit());
    if decimal_digits && !is_binary_fraction(&digits) {
        return s.parse().ok().filter(|v: &f64| v.is_finite());
    }
    let mut scale = 1.0 / 36.0;
    let mut fraction = 0.0;
    for d in digits {
        fraction += f64::from(d) * scale;
        scale /= 36.0;
    }
    let magnitude = whole.unsigned_abs() as f64 + fraction;
    Some(if negative || whole < 0 {
        -magnitude
    } else {
        magnitude
    })
}

/// Whether base-36 fraction digits d1 d2 ... dn denote m / 2^k: their value N / 36^n reduces to
/// a power-of-two denominator exactly when 9^n divides N.
fn is_binary_fraction(digits: &[u8]) -> bool {
    if digits.len() > 12 {
        return false;
    }
    let n = digits
        .iter()
        .fold(0u128, |acc, d| acc * 36 + u128::from(*d));
    n % 9u128.pow(digits.len() as u32) == 0
}

/// Percent-encodes like JavaScript's `encodeURIComponent`.
pub fn encode_component(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z'
            | b'a'..=b'z'
            | b'0'..=b'9'
            | b'-'
            | b'_'
            | b'.'
            | b'!'
            | b'~'
            | b'*'
            | b'\''
            | b'('
            | b')' => out.push(b as char),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// A query string of `pairs` with its checksum appended, as the tracker builds it (for
/// servers that send events on a browser's behalf, and for tests).
pub fn sign(pairs: &[(&str, &str)]) -> String {
    let mut query: Vec<String> = pairs
        .iter()
        .map(|(k, v)| format!("{k}={}", encode_component(v)))
        .collect();
    let sum = murmur3_32(Params::parse(&query.join("&")).canonical().as_bytes());
    query.push(format!("{CHECKSUM}={}", to_base36(i64::from(sum))));
    query.join("&")
}

/// Divolte's booleans: `t` is true, anything else false; `None` when absent.
pub fn parse_flag(s: &str) -> bool {
    s == "t"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base36_round_trips_and_matches_java() {
        for v in [
            0i64,
            1,
            35,
            36,
            -1,
            -36,
            1_700_000_000_000,
            i64::MAX,
            i64::MIN,
        ] {
            assert_eq!(parse_base36(&to_base36(v)), Some(v), "{v}");
        }
        assert_eq!(parse_base36("ZZ"), Some(35 * 36 + 35));
        assert_eq!(parse_base36("-a"), Some(-10));
        assert_eq!(parse_base36("+a"), Some(10));
        assert_eq!(parse_base36(""), None);
        assert_eq!(parse_base36("-"), None);
        assert_eq!(parse_base36("1.5"), None);
        // One past i64::MAX.
        assert_eq!(parse_base36("1y2p0ij32e8e8"), None);
    }

    #[test]
    fn ratios_accept_base36_fractions_and_decimals() {
        assert_eq!(parse_ratio("2"), Some(2.0));
        // What the tracker sends for 1.5, 1.25, 1.75, 2.625.
        assert_eq!(parse_ratio("1.i"), Some(1.5));
        assert_eq!(parse_ratio("1.9"), Some(1.25));
        assert_eq!(parse_ratio("1.r"), Some(1.75));
        assert_eq!(parse_ratio("2.mi"), Some(2.625));
        // Decimals from other clients.
        assert_eq!(parse_ratio("1.5"), Some(1.5));
        assert_eq!(parse_ratio("2.25"), Some(2.25));
        assert_eq!(parse_ratio("0.75"), Some(0.75));
        let third = parse_ratio("0.c").unwrap();
        assert!((third - 1.0 / 3.0).abs() < 1e-12, "{third}");
        assert_eq!(parse_ratio("x.y!"), None);
        assert_eq!(parse_ratio("1."), None);
        assert_eq!(parse_ratio("abc"), Some(13368.0));
    }

    #[test]
    fn decoding_handles_plus_escapes_and_bad_escapes() {
        assert_eq!(decode("a+b"), "a b");
        assert_eq!(decode("%E2%82%AC%20x"), "€ x");
        assert_eq!(decode("100%"), "100%");
        assert_eq!(decode("%zz"), "%zz");
        assert_eq!(decode("%4"), "%4");
        assert_eq!(decode("plain"), "plain");
    }

    #[test]
    fn canonical_string_sorts_names_and_keeps_value_order() {
        let p = Params::parse("s=2&p=1&x=zz&t=a&t=b&e=");
        assert_eq!(p.canonical(), "e=,;p=1,;s=2,;t=a,b,;");
        assert_eq!(p.get("t"), Some("a"));
        assert_eq!(Params::parse("").canonical(), "");
    }

    #[test]
    fn signed_queries_check_and_decode_back() {
        let q = sign(&[
            ("p", "0:a:b"),
            ("l", "https://x.example/?a=1&b=é"),
            ("u", "(sk!v~!!)"),
        ]);
        let p = Params::parse(&q);
        assert!(p.checksum_ok());
        assert_eq!(p.get("l"), Some("https://x.example/?a=1&b=é"));
        assert_eq!(p.get("u"), Some("(sk!v~!!)"));
        assert_eq!(encode_component("a b/c"), "a%20b%2Fc");
    }

    #[test]
    fn checksum_is_the_murmur3_of_the_canonical_string() {
        let body = "p=0%3Aabc%3Adef&e=1&t=pageView&l=https%3A%2F%2Fexample.com%2F%3Fq%3D%E2%82%AC";
        let p = Params::parse(body);
        let sum = murmur3_32(p.canonical().as_bytes());
        let signed_text = format!("{body}&x={}", to_base36(i64::from(sum)));
        let signed = Params::parse(&signed_text);
        assert!(signed.checksum_ok());
        let tampered_text = format!(
            "{}&x={}",
            body.replace("pageView", "pageview"),
            to_base36(i64::from(sum))
        );
        let tampered = Params::parse(&tampered_text);
        assert!(!tampered.checksum_ok());
        assert!(!p.checksum_ok(), "a missing checksum is not correct");
    }
}
