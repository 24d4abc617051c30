//! ISO-8601 periods (`P1Y2M3W4DT5H6M7.5S`) and calendar arithmetic with them in a time zone.

use std::fmt;
use std::str::FromStr;

use crate::time::{
    CivilTime, MILLIS_PER_DAY, MILLIS_PER_HOUR, MILLIS_PER_MINUTE, MILLIS_PER_SECOND, TimeZone,
    days_in_month,
};

/// A period with Joda's fields. All fields are non-negative except through `negate`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Period {
    pub years: i32,
    pub months: i32,
    pub weeks: i32,
    pub days: i32,
    pub hours: i32,
    pub minutes: i32,
    pub seconds: i32,
    pub millis: i32,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot parse {input:?} as an ISO-8601 period (like P1D or PT1H): {reason}")]
pub struct PeriodParseError {
    pub input: String,
    pub reason: &'static str,
}

impl Period {
    pub const fn millis(ms: i32) -> Self {
        Period {
            years: 0,
            months: 0,
            weeks: 0,
            days: 0,
            hours: 0,
            minutes: 0,
            seconds: 0,
            millis: ms,
        }
    }
    pub const fn seconds(n: i32) -> Self {
        Period {
            seconds: n,
            ..Period::ZERO
        }
    }
    pub const fn minutes(n: i32) -> Self {
        Period {
            minutes: n,
            ..Period::ZERO
        }
    }
    pub const fn hours(n: i32) -> Self {
        Period {
            hours: n,
            ..Period::ZERO
        }
    }
    pub const fn days(n: i32) -> Self {
        Period {
            days: n,
            ..Period::ZERO
        }
    }
    pub const fn weeks(n: i32) -> Self {
        Period {
            weeks: n,
            ..Period::ZERO
        }
    }
    pub const fn months(n: i32) -> Self {
        Period {
            months: n,
            ..Period::ZERO
        }
    }
    pub const fn years(n: i32) -> Self {
        Period {
            years: n,
            ..Period::ZERO
        }
    }

    pub const ZERO: Period = Period::millis(0);

    pub fn is_zero(&self) -> bool {
        *self == Period::ZERO
    }

    fn fields(&self) -> [i32; 8] {
        [
            self.years,
            self.months,
            self.weeks,
            self.days,
            self.hours,
            self.minutes,
            self.seconds,
            self.millis,
        ]
    }

    /// More than one non-zero field ("P1DT12H").
    pub fn is_compound(&self) -> bool {
        self.fields().iter().filter(|v| **v != 0).count() > 1
    }

    /// The fixed length in ms if the period has no years or months (days count as 24 hours,
    /// which holds in UTC and fixed-offset zones).
    pub fn standard_millis(&self) -> Option<i64> {
        if self.years != 0 || self.months != 0 {
            return None;
        }
        Some(
            i64::from(self.weeks) * 7 * MILLIS_PER_DAY
                + i64::from(self.days) * MILLIS_PER_DAY
                + i64::from(self.hours) * MILLIS_PER_HOUR
                + i64::from(self.minutes) * MILLIS_PER_MINUTE
                + i64::from(self.seconds) * MILLIS_PER_SECOND
                + i64::from(self.millis),
        )
    }

    /// Whether adding this period is a fixed number of milliseconds in `tz`.
    pub fn is_fixed_in(&self, tz: &TimeZone) -> bool {
        let has_calendar_days = self.weeks != 0 || self.days != 0;
        self.years == 0
            && self.months == 0
            && (!has_calendar_days || !matches!(tz, TimeZone::Named(_)))
    }

    pub fn scaled(&self, n: i32) -> Period {
        Period {
            years: self.years.saturating_mul(n),
            months: self.months.saturating_mul(n),
            weeks: self.weeks.saturating_mul(n),
            days: self.days.saturating_mul(n),
            hours: self.hours.saturating_mul(n),
            minutes: self.minutes.saturating_mul(n),
            seconds: self.seconds.saturating_mul(n),
            millis: self.millis.saturating_mul(n),
        }
    }

    /// Adds `n` times this period to the UTC instant `t`, with years, months, weeks and days
    /// applied to the local calendar of `tz` and smaller fields as exact durations (Joda's rule).
    pub fn add_to(&self, t: i64, tz: &TimeZone, n: i64) -> i64 {
        let n32 = n.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32;
        let p = self.scaled(n32);
        let mut out = t;
        if p.years != 0 || p.months != 0 || p.weeks != 0 || p.days != 0 {
            let local = tz.to_local(t);
            let mut c = CivilTime::from_millis(local);
            let total_months = c.year * 12
                + i64::from(c.month - 1)
                + i64::from(p.years) * 12
                + i64::from(p.months);
            c.year = total_months.div_euclid(12);
            c.month = (total_months.rem_euclid(12) + 1) as u32;
            c.day = c.day.min(days_in_month(c.year, c.month));
            let shifted =
                c.to_millis() + (i64::from(p.weeks) * 7 + i64::from(p.days)) * MILLIS_PER_DAY;
            out = if tz.is_utc() {
                shifted
            } else {
                tz.to_utc(shifted)
            };
        }
        out.saturating_add(
            i64::from(p.hours) * MILLIS_PER_HOUR
                + i64::from(p.minutes) * MILLIS_PER_MINUTE
                + i64::from(p.seconds) * MILLIS_PER_SECOND
                + i64::from(p.millis),
        )
    }
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_zero() {
            return f.write_str("PT0S");
        }
        f.write_str("P")?;
        for (v, unit) in [
            (self.years, 'Y'),
            (self.months, 'M'),
            (self.weeks, 'W'),
            (self.days, 'D'),
        ] {
            if v != 0 {
                write!(f, "{v}{unit}")?;
            }
        }
        if self.hours != 0 || self.minutes != 0 || self.seconds != 0 || self.millis != 0 {
            f.write_str("T")?;
            for (v, unit) in [(self.hours, 'H'), (self.minutes, 'M')] {
                if v != 0 {
                    write!(f, "{v}{unit}")?;
                }
            }
            if self.seconds != 0 || self.millis != 0 {
                if self.millis == 0 {
                    write!(f, "{}S", self.seconds)?;
                } else {
                    let total = i64::from(self.seconds) * 1000 + i64::from(self.millis);
                    let sign = if total < 0 { "-" } else { "" };
                    let a = total.abs();
                    write!(f, "{sign}{}.{:03}S", a / 1000, a % 1000)?;
                }
            }
        }
        Ok(())
    }
}

impl FromStr for Period {
    type Err = PeriodParseError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let err = |reason| PeriodParseError {
            input: input.to_string(),
            reason,
        };
        let s = input.trim();
        let body = s
            .strip_prefix('P')
            .or_else(|| s.strip_prefix('p'))
            .ok_or_else(|| err("a period starts with P"))?;
        if body.is_empty() {
            return Err(err("no fields after P"));
        }
        let mut p = Period::ZERO;
        let mut in_time = false;
        let mut num = String::new();
        let mut seen_any = false;
        for ch in body.chars() {
            match ch {
                'T' | 't' => {
                    if in_time || !num.is_empty() {
                        return Err(err("misplaced T"));
                    }
                    in_time = true;
                }
                '0'..='9' | '.' | ',' | '-' => num.push(if ch == ',' { '.' } else { ch }),
                _ => {
                    if num.is_empty() {
                        return Err(err("a unit without a number"));
                    }
                    let unit = ch.to_ascii_uppercase();
                    if unit == 'S' && in_time {
                        let v: f64 = num.parse().map_err(|_| err("bad number"))?;
                        let total_ms = (v * 1000.0).round() as i64;
                        p.seconds = i32::try_from(total_ms / 1000).map_err(|_| err("too large"))?;
                        p.millis = (total_ms % 1000) as i32;
                    } else {
                        let v: i32 = num.parse().map_err(|_| err("bad number"))?;
                        match (in_time, unit) {
                            (false, 'Y') => p.years = v,
                            (false, 'M') => p.months = v,
                            (false, 'W') => p.weeks = v,
                            (false, 'D') => p.days = v,
                            (true, 'H') => p.hours = v,
                            (true, 'M') => p.minutes = v,
                            _ => return Err(err("unknown unit")),
                        }
                    }
                    num.clear();
                    seen_any = true;
                }
            }
        }
        if !num.is_empty() {
            return Err(err("a number without a unit"));
        }
        if !seen_any {
            return Err(err("no fields"));
        }
        Ok(p)
    }
}

impl serde::Serialize for Period {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Period {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::{format_iso, parse_iso};

    #[test]
    fn parse_and_print() {
        for s in [
            "P1D",
            "PT1H",
            "P1Y2M3W4DT5H6M7S",
            "PT0.500S",
            "P3M",
            "PT15M",
        ] {
            assert_eq!(s.parse::<Period>().unwrap().to_string(), s);
        }
        assert_eq!(
            "PT3600S".parse::<Period>().unwrap().standard_millis(),
            Some(3_600_000)
        );
        assert!("1D".parse::<Period>().is_err());
        assert!("P1X".parse::<Period>().is_err());
        assert!("P".parse::<Period>().is_err());
        assert!("PT1".parse::<Period>().is_err());
    }

    #[test]
    fn calendar_add_clamps_day_of_month() {
        let jan31 = parse_iso("2013-01-31").unwrap();
        let p = Period::months(1);
        assert_eq!(
            format_iso(p.add_to(jan31, &TimeZone::Utc, 1)),
            "2013-02-28T00:00:00.000Z"
        );
        assert_eq!(
            format_iso(p.add_to(jan31, &TimeZone::Utc, -2)),
            "2012-11-30T00:00:00.000Z"
        );
    }

    #[test]
    fn days_follow_local_calendar_across_dst() {
        let la: TimeZone = "America/Los_Angeles".parse().unwrap();
        let before = parse_iso("2013-03-09T08:00:00Z").unwrap(); // midnight local
        let next = Period::days(1).add_to(before, &la, 1);
        assert_eq!(format_iso(next), "2013-03-10T08:00:00.000Z");
        let after = Period::days(1).add_to(next, &la, 1);
        assert_eq!(format_iso(after), "2013-03-11T07:00:00.000Z");
    }
}
