//! Instants as epoch milliseconds: ISO-8601 parsing and printing, civil calendar arithmetic, and
//! time zones (UTC, fixed offsets, IANA names).
//!
//! Druid's "eternity" bounds (`i64::MIN / 2`, `i64::MAX / 2`) print as years far outside 0..9999;
//! the calendar code here works on any i64 millisecond value without overflow for those bounds.

use std::fmt;
use std::str::FromStr;

use chrono::{Offset, TimeZone as _};

/// Smallest instant Druid uses ("-146136543-09-08T08:23:32.096Z").
pub const MIN_INSTANT: i64 = i64::MIN / 2;
/// Largest instant Druid uses ("146140482-04-24T15:36:27.903Z").
pub const MAX_INSTANT: i64 = i64::MAX / 2;

pub const MILLIS_PER_SECOND: i64 = 1000;
pub const MILLIS_PER_MINUTE: i64 = 60 * MILLIS_PER_SECOND;
pub const MILLIS_PER_HOUR: i64 = 60 * MILLIS_PER_MINUTE;
pub const MILLIS_PER_DAY: i64 = 24 * MILLIS_PER_HOUR;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot parse {input:?} as a timestamp: {reason}")]
pub struct TimeParseError {
    pub input: String,
    pub reason: &'static str,
}

impl TimeParseError {
    fn new(input: &str, reason: &'static str) -> Self {
        Self {
            input: input.to_string(),
            reason,
        }
    }
}

/// Days since 1970-01-01 for a proleptic Gregorian date (H. Hinnant's algorithm).
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// (year, month 1..=12, day 1..=31) for days since 1970-01-01.
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

pub fn is_leap_year(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

pub fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if is_leap_year(year) => 29,
        _ => 28,
    }
}

/// Broken-down wall-clock time (no zone).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CivilTime {
    pub year: i64,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
    pub millis: u32,
}

impl CivilTime {
    pub fn from_millis(ms: i64) -> Self {
        let days = ms.div_euclid(MILLIS_PER_DAY);
        let rem = ms.rem_euclid(MILLIS_PER_DAY);
        let (year, month, day) = civil_from_days(days);
        CivilTime {
            year,
            month,
            day,
            hour: (rem / MILLIS_PER_HOUR) as u32,
            minute: (rem % MILLIS_PER_HOUR / MILLIS_PER_MINUTE) as u32,
            second: (rem % MILLIS_PER_MINUTE / MILLIS_PER_SECOND) as u32,
            millis: (rem % MILLIS_PER_SECOND) as u32,
        }
    }

    pub fn to_millis(&self) -> i64 {
        days_from_civil(self.year, self.month, self.day) * MILLIS_PER_DAY
            + i64::from(self.hour) * MILLIS_PER_HOUR
            + i64::from(self.minute) * MILLIS_PER_MINUTE
            + i64::from(self.second) * MILLIS_PER_SECOND
            + i64::from(self.millis)
    }

    /// ISO day of week: Monday = 1 .. Sunday = 7.
    pub fn day_of_week(&self) -> u32 {
        let days = days_from_civil(self.year, self.month, self.day);
        // 1970-01-01 was a Thursday (4).
        ((days + 3).rem_euclid(7) + 1) as u32
    }

    pub fn day_of_year(&self) -> u32 {
        (days_from_civil(self.year, self.month, self.day) - days_from_civil(self.year, 1, 1) + 1)
            as u32
    }
}

/// A time zone: UTC, a fixed offset, or an IANA zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TimeZone {
    #[default]
    Utc,
    /// Offset east of UTC in seconds.
    Fixed(i32),
    Named(chrono_tz::Tz),
}

impl TimeZone {
    pub fn is_utc(&self) -> bool {
        matches!(self, TimeZone::Utc | TimeZone::Fixed(0))
    }

    /// Offset east of UTC, in milliseconds, at the UTC instant `utc_ms`.
    pub fn offset_millis_at(&self, utc_ms: i64) -> i64 {
        match self {
            TimeZone::Utc => 0,
            TimeZone::Fixed(secs) => i64::from(*secs) * 1000,
            TimeZone::Named(tz) => {
                let secs = utc_ms
                    .div_euclid(1000)
                    .clamp(-8_000_000_000_000, 8_000_000_000_000);
                match chrono::DateTime::from_timestamp(secs, 0) {
                    Some(dt) => {
                        i64::from(
                            tz.offset_from_utc_datetime(&dt.naive_utc())
                                .fix()
                                .local_minus_utc(),
                        ) * 1000
                    }
                    None => 0,
                }
            }
        }
    }

    /// Local wall-clock milliseconds for a UTC instant.
    pub fn to_local(&self, utc_ms: i64) -> i64 {
        utc_ms.saturating_add(self.offset_millis_at(utc_ms))
    }

    /// The UTC instant of a local wall-clock time. In a gap (spring forward) the time is moved
    /// forward by the gap; in an overlap (fall back) the earlier instant is chosen, as Joda does.
    pub fn to_utc(&self, local_ms: i64) -> i64 {
        match self {
            TimeZone::Utc => local_ms,
            TimeZone::Fixed(secs) => local_ms.saturating_sub(i64::from(*secs) * 1000),
            TimeZone::Named(_) => {
                // Try the offsets in effect around the local time; pick the earliest consistent one.
                let guess1 = local_ms - self.offset_millis_at(local_ms);
                let off1 = self.offset_millis_at(guess1);
                let cand1 = local_ms - off1;
                let off_before = self.offset_millis_at(cand1 - 3 * MILLIS_PER_HOUR);
                let cand0 = local_ms - off_before;
                let consistent = |c: i64| self.to_local(c) == local_ms;
                match (consistent(cand0), consistent(cand1)) {
                    (true, true) => cand0.min(cand1),
                    (true, false) => cand0,
                    (false, true) => cand1,
                    // In a gap: use the offset from before the transition, which lands after it.
                    (false, false) => local_ms - off_before,
                }
            }
        }
    }

    pub fn name(&self) -> String {
        match self {
            TimeZone::Utc => "UTC".to_string(),
            TimeZone::Fixed(secs) => format_offset(*secs),
            TimeZone::Named(tz) => tz.name().to_string(),
        }
    }
}

impl fmt::Display for TimeZone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

impl FromStr for TimeZone {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        if t.eq_ignore_ascii_case("utc") || t == "Z" || t.eq_ignore_ascii_case("etc/utc") {
            return Ok(TimeZone::Utc);
        }
        if t.starts_with('+') || t.starts_with('-') {
            return parse_offset(t)
                .map(TimeZone::Fixed)
                .ok_or_else(|| format!("unknown time zone {s:?}: offsets look like +05:30"));
        }
        if let Some(rest) = t.strip_prefix("UTC").or_else(|| t.strip_prefix("GMT"))
            && let Some(secs) = parse_offset(rest)
        {
            return Ok(TimeZone::Fixed(secs));
        }
        t.parse::<chrono_tz::Tz>()
            .map(TimeZone::Named)
            .map_err(|_| format!("unknown time zone {s:?}"))
    }
}

/// "+05:30" / "-0800" / "+05" → seconds east of UTC.
fn parse_offset(s: &str) -> Option<i32> {
    let (sign, rest) = match s.as_bytes().first()? {
        b'+' => (1, &s[1..]),
        b'-' => (-1, &s[1..]),
        _ => return None,
    };
    let digits: String = rest.chars().filter(|c| *c != ':').collect();
    if digits.is_empty() || digits.len() > 4 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (h, m) = match digits.len() {
        1 | 2 => (digits.parse::<i32>().ok()?, 0),
        3 => (
            digits[..1].parse::<i32>().ok()?,
            digits[1..].parse::<i32>().ok()?,
        ),
        _ => (
            digits[..2].parse::<i32>().ok()?,
            digits[2..].parse::<i32>().ok()?,
        ),
    };
    if h > 18 || m > 59 {
        return None;
    }
    Some(sign * (h * 3600 + m * 60))
}

fn format_offset(secs: i32) -> String {
    if secs == 0 {
        return "Z".to_string();
    }
    let sign = if secs < 0 { '-' } else { '+' };
    let a = secs.unsigned_abs();
    format!("{sign}{:02}:{:02}", a / 3600, a % 3600 / 60)
}

fn push_year(out: &mut String, year: i64) {
    use std::fmt::Write;
    if (0..=9999).contains(&year) {
        let _ = write!(out, "{year:04}");
    } else {
        let _ = write!(out, "{year}");
    }
}

/// "2012-01-01T00:00:00.000Z" as Druid prints UTC instants.
pub fn format_iso(ms: i64) -> String {
    format_iso_in(ms, &TimeZone::Utc)
}

/// ISO-8601 with millis and the zone's offset at that instant ("...-07:00", or "Z" for UTC).
pub fn format_iso_in(ms: i64, tz: &TimeZone) -> String {
    use std::fmt::Write;
    let offset = tz.offset_millis_at(ms);
    let c = CivilTime::from_millis(ms.saturating_add(offset));
    let mut out = String::with_capacity(29);
    push_year(&mut out, c.year);
    let _ = write!(
        out,
        "-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}{}",
        c.month,
        c.day,
        c.hour,
        c.minute,
        c.second,
        c.millis,
        format_offset((offset / 1000) as i32)
    );
    out
}

/// "2000-01-02 03:04:05" (SQL's timestamp-to-string form; millis only when non-zero).
pub fn format_sql(ms: i64) -> String {
    use std::fmt::Write;
    let c = CivilTime::from_millis(ms);
    let mut out = String::with_capacity(23);
    push_year(&mut out, c.year);
    let _ = write!(
        out,
        "-{:02}-{:02} {:02}:{:02}:{:02}",
        c.month, c.day, c.hour, c.minute, c.second
    );
    if c.millis != 0 {
        let _ = write!(out, ".{:03}", c.millis);
    }
    out
}

struct Cursor<'a> {
    s: &'a [u8],
    pos: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    fn eat(&mut self, b: u8) -> bool {
        if self.peek() == Some(b) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    /// Reads exactly `n` ASCII digits.
    fn digits(&mut self, n: usize) -> Option<u32> {
        let end = self.pos + n;
        if end > self.s.len() || !self.s[self.pos..end].iter().all(u8::is_ascii_digit) {
            return None;
        }
        let mut v = 0u32;
        for &b in &self.s[self.pos..end] {
            v = v * 10 + u32::from(b - b'0');
        }
        self.pos = end;
        Some(v)
    }

    fn at_end(&self) -> bool {
        self.pos >= self.s.len()
    }
}

/// Parses ISO-8601 instants the way Druid's lenient parser accepts them: `2012`, `2012-01`,
/// `2012-01-01`, `2012-01-01T01`, `...T01:02`, `...T01:02:03`, fractions of any length, a `T` or
/// a space between date and time, and `Z`, `+hh:mm`, `+hhmm` or `+hh` zones (default UTC). Years
/// may carry a sign and more than four digits (Druid's eternity bounds).
pub fn parse_iso(input: &str) -> Result<i64, TimeParseError> {
    parse_iso_in(input, &TimeZone::Utc)
}

/// Like [`parse_iso`], but a timestamp without a zone is read as local time in `default_tz`.
pub fn parse_iso_in(input: &str, default_tz: &TimeZone) -> Result<i64, TimeParseError> {
    let trimmed = input.trim();
    let mut c = Cursor {
        s: trimmed.as_bytes(),
        pos: 0,
    };
    let negative = if c.eat(b'-') {
        true
    } else {
        c.eat(b'+');
        false
    };
    let year_start = c.pos;
    while c.peek().is_some_and(|b| b.is_ascii_digit()) {
        c.pos += 1;
    }
    let year_digits = c.pos - year_start;
    if !(4..=10).contains(&year_digits) {
        return Err(TimeParseError::new(
            input,
            "expected a year of at least four digits",
        ));
    }
    let year_abs: i64 = trimmed[year_start..c.pos]
        .parse()
        .map_err(|_| TimeParseError::new(input, "bad year"))?;
    let year = if negative { -year_abs } else { year_abs };
    let mut civil = CivilTime {
        year,
        month: 1,
        day: 1,
        hour: 0,
        minute: 0,
        second: 0,
        millis: 0,
    };
    let mut sub_millis_fraction = false;
    if c.eat(b'-') {
        civil.month = c
            .digits(2)
            .ok_or_else(|| TimeParseError::new(input, "bad month"))?;
        if c.eat(b'-') {
            civil.day = c
                .digits(2)
                .ok_or_else(|| TimeParseError::new(input, "bad day"))?;
        }
    }
    if !(1..=12).contains(&civil.month) {
        return Err(TimeParseError::new(input, "month out of range"));
    }
    if civil.day < 1 || civil.day > days_in_month(civil.year, civil.month) {
        return Err(TimeParseError::new(input, "day out of range"));
    }
    if c.eat(b'T')
        || (c.peek() == Some(b' ')
            && c.s.get(c.pos + 1).is_some_and(u8::is_ascii_digit)
            && c.eat(b' '))
    {
        civil.hour = c
            .digits(2)
            .ok_or_else(|| TimeParseError::new(input, "bad hour"))?;
        if c.eat(b':') {
            civil.minute = c
                .digits(2)
                .ok_or_else(|| TimeParseError::new(input, "bad minute"))?;
            if c.eat(b':') {
                civil.second = c
                    .digits(2)
                    .ok_or_else(|| TimeParseError::new(input, "bad second"))?;
                if c.eat(b'.') || c.eat(b',') {
                    let start = c.pos;
                    while c.peek().is_some_and(|b| b.is_ascii_digit()) {
                        c.pos += 1;
                    }
                    let frac = &trimmed[start..c.pos];
                    if frac.is_empty() {
                        return Err(TimeParseError::new(input, "empty fraction of a second"));
                    }
                    let mut ms = 0u32;
                    for (i, b) in frac.bytes().take(3).enumerate() {
                        ms += u32::from(b - b'0') * [100, 10, 1][i];
                    }
                    sub_millis_fraction = frac.len() > 3;
                    civil.millis = ms;
                }
            }
        }
        if civil.hour > 24 || civil.minute > 59 || civil.second > 59 {
            return Err(TimeParseError::new(input, "time of day out of range"));
        }
    }
    let _ = sub_millis_fraction; // sub-millisecond digits are truncated, as Joda does
    let local = civil.to_millis();
    if c.at_end() {
        return Ok(default_tz.to_utc(local));
    }
    if c.eat(b'Z') || c.eat(b'z') {
        if !c.at_end() {
            return Err(TimeParseError::new(input, "unexpected text after the zone"));
        }
        return Ok(local);
    }
    let rest = &trimmed[c.pos..];
    let rest = rest.strip_prefix(' ').unwrap_or(rest);
    if let Some(secs) = parse_offset(rest) {
        return Ok(local - i64::from(secs) * 1000);
    }
    if let Ok(tz) = rest.parse::<TimeZone>() {
        return Ok(tz.to_utc(local));
    }
    Err(TimeParseError::new(input, "unexpected text after the time"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eternity_round_trips() {
        assert_eq!(format_iso(MIN_INSTANT), "-146136543-09-08T08:23:32.096Z");
        assert_eq!(format_iso(MAX_INSTANT), "146140482-04-24T15:36:27.903Z");
        assert_eq!(
            parse_iso("-146136543-09-08T08:23:32.096Z").unwrap(),
            MIN_INSTANT
        );
        assert_eq!(
            parse_iso("146140482-04-24T15:36:27.903Z").unwrap(),
            MAX_INSTANT
        );
    }

    #[test]
    fn parses_lenient_forms() {
        let day = 1_325_376_000_000; // 2012-01-01
        assert_eq!(parse_iso("2012-01-01").unwrap(), day);
        assert_eq!(parse_iso("2012").unwrap(), day);
        assert_eq!(parse_iso("2012-01").unwrap(), day);
        assert_eq!(parse_iso("2012-01-01T00:00:00.000Z").unwrap(), day);
        assert_eq!(
            parse_iso("2012-01-01 01:00:00").unwrap(),
            day + MILLIS_PER_HOUR
        );
        assert_eq!(parse_iso("2012-01-01T01").unwrap(), day + MILLIS_PER_HOUR);
        assert_eq!(parse_iso("2012-01-01T00:00:00.123456").unwrap(), day + 123);
        assert_eq!(
            parse_iso("2012-01-01T00:00:00-08:00").unwrap(),
            day + 8 * MILLIS_PER_HOUR
        );
        assert_eq!(
            parse_iso("2012-01-01T00:00:00+0530").unwrap(),
            day - 330 * MILLIS_PER_MINUTE
        );
        assert!(parse_iso("2012-13-01").is_err());
        assert!(parse_iso("2012-02-30").is_err());
        assert!(parse_iso("hello").is_err());
        assert!(parse_iso("2012-01-01T00:00:00junk").is_err());
    }

    #[test]
    fn formats_with_zone_offsets() {
        let la: TimeZone = "America/Los_Angeles".parse().unwrap();
        let t = parse_iso("2013-08-31T07:00:00Z").unwrap();
        assert_eq!(format_iso_in(t, &la), "2013-08-31T00:00:00.000-07:00");
        assert_eq!(format_iso(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(format_sql(1500), "1970-01-01 00:00:01.500");
    }

    #[test]
    fn local_to_utc_in_gaps_and_overlaps() {
        let la: TimeZone = "America/Los_Angeles".parse().unwrap();
        // 2013-11-03 01:30 local happens twice; the earlier (PDT, -07:00) wins.
        let local = parse_iso("2013-11-03T01:30:00Z").unwrap();
        assert_eq!(format_iso(la.to_utc(local)), "2013-11-03T08:30:00.000Z");
        // 2013-03-10 02:30 local does not exist; it moves forward past the gap.
        let gap = parse_iso("2013-03-10T02:30:00Z").unwrap();
        assert_eq!(format_iso(la.to_utc(gap)), "2013-03-10T10:30:00.000Z");
    }

    #[test]
    fn civil_round_trip_over_wide_range() {
        for days in (-1_000_000..1_000_000).step_by(997) {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
        assert_eq!(CivilTime::from_millis(0).day_of_week(), 4);
    }
}
