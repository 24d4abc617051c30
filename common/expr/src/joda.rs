//! Joda-Time patterns (`yyyy-MM-dd HH:mm:ss`, as Druid's timestampSpec, TIME_PARSE and
//! TIME_FORMAT take them) translated to chrono formats.

use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeZone as _};

use eddy_types::time::TimeZone;

/// Translates a Joda pattern to a chrono format string.
pub fn to_chrono(pattern: &str) -> String {
    let chars: Vec<char> = pattern.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\'' {
            i += 1;
            while i < chars.len() && chars[i] != '\'' {
                if chars[i] == '%' {
                    out.push('%');
                }
                out.push(chars[i]);
                i += 1;
            }
            i += 1;
            continue;
        }
        let mut n = 1;
        while i + n < chars.len() && chars[i + n] == c {
            n += 1;
        }
        let piece = match (c, n) {
            ('y', 2) => "%y",
            ('y', _) | ('Y', _) | ('u', _) => "%Y",
            ('M', 1) => "%-m",
            ('M', 2) => "%m",
            ('M', 3) => "%b",
            ('M', _) => "%B",
            ('d', 1) => "%-d",
            ('d', _) => "%d",
            ('D', _) => "%j",
            ('H', 1) => "%-H",
            ('H', _) => "%H",
            ('h', _) => "%I",
            ('m', 1) => "%-M",
            ('m', _) => "%M",
            ('s', 1) => "%-S",
            ('s', _) => "%S",
            ('S', _) => "%3f",
            ('a', _) => "%p",
            ('E', 1..=3) => "%a",
            ('E', _) => "%A",
            ('Z', 1) => "%z",
            ('Z', _) => "%:z",
            ('z', _) => "%Z",
            ('%', _) => "%%",
            (other, count) => {
                for _ in 0..count {
                    out.push(other);
                }
                i += n;
                continue;
            }
        };
        out.push_str(piece);
        i += n;
    }
    out
}

/// Parses `s` with a Joda pattern; times without a zone are read in `tz`.
pub fn parse(s: &str, pattern: &str, tz: &TimeZone) -> Option<i64> {
    let fmt = to_chrono(pattern);
    if let Ok(dt) = DateTime::parse_from_str(s, &fmt) {
        return Some(dt.timestamp_millis());
    }
    let local = NaiveDateTime::parse_from_str(s, &fmt).ok().or_else(|| {
        NaiveDate::parse_from_str(s, &fmt)
            .ok()
            .and_then(|d| d.and_hms_opt(0, 0, 0))
    })?;
    let ms = local.and_utc().timestamp_millis();
    Some(tz.to_utc(ms))
}

/// Formats the UTC instant `t` in `tz` with a Joda pattern.
pub fn format(t: i64, pattern: &str, tz: &TimeZone) -> String {
    let fmt = to_chrono(pattern);
    let offset_secs = (tz.offset_millis_at(t) / 1000) as i32;
    let offset = chrono::FixedOffset::east_opt(offset_secs).unwrap_or_else(|| {
        chrono::FixedOffset::east_opt(0).unwrap_or_else(|| unreachable!("0 is a valid offset"))
    });
    match offset.timestamp_millis_opt(t).single() {
        Some(dt) => dt.format(&fmt).to_string(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns() {
        assert_eq!(to_chrono("yyyy-MM-dd HH:mm:ss"), "%Y-%m-%d %H:%M:%S");
        assert_eq!(to_chrono("dd/MMM/yyyy:HH:mm:ss Z"), "%d/%b/%Y:%H:%M:%S %z");
        let t = parse("2013-08-31 01:02:03", "yyyy-MM-dd HH:mm:ss", &TimeZone::Utc).unwrap();
        assert_eq!(eddy_types::time::format_iso(t), "2013-08-31T01:02:03.000Z");
        assert_eq!(
            format(t, "yyyy/MM/dd'T'HH", &TimeZone::Utc),
            "2013/08/31T01"
        );
        let t2 = parse(
            "31/Aug/2013:01:02:03 -0700",
            "dd/MMM/yyyy:HH:mm:ss Z",
            &TimeZone::Utc,
        )
        .unwrap();
        assert_eq!(eddy_types::time::format_iso(t2), "2013-08-31T08:02:03.000Z");
        assert_eq!(
            parse("2013-08-31", "yyyy-MM-dd", &TimeZone::Utc),
            Some(1_377_907_200_000)
        );
    }
}
