//! Druid granularities: `all`, `none`, the simple names (`hour`, `fifteen_minute`, ...), `period`
//! (with `timeZone` and `origin`) and `duration`. Bucketing follows Druid's `PeriodGranularity`:
//! a single unit floors on the local calendar (weeks start on Monday); multiples of a unit align
//! on the origin, which defaults to local midnight of 1970-01-01 in the granularity's zone.

use crate::interval::Interval;
use crate::period::Period;
use crate::time::{CivilTime, MAX_INSTANT, MILLIS_PER_DAY, TimeZone, format_iso, parse_iso};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Granularity {
    /// One bucket for everything.
    All,
    /// No truncation: every millisecond is its own bucket.
    None,
    Period {
        period: Period,
        tz: TimeZone,
        origin: Option<i64>,
    },
    Duration {
        millis: i64,
        origin: i64,
    },
}

const SIMPLE: [(&str, Period); 14] = [
    ("second", Period::seconds(1)),
    ("minute", Period::minutes(1)),
    ("five_minute", Period::minutes(5)),
    ("ten_minute", Period::minutes(10)),
    ("fifteen_minute", Period::minutes(15)),
    ("thirty_minute", Period::minutes(30)),
    ("hour", Period::hours(1)),
    ("six_hour", Period::hours(6)),
    ("eight_hour", Period::hours(8)),
    ("day", Period::days(1)),
    ("week", Period::weeks(1)),
    ("month", Period::months(1)),
    ("quarter", Period::months(3)),
    ("year", Period::years(1)),
];

/// How a granularity maps an instant to its bucket start, precomputed for speed.
#[derive(Debug, Clone, Copy)]
enum Truncator {
    All,
    None,
    /// `origin + floor((t - origin) / step) * step`.
    Fixed {
        step: i64,
        origin: i64,
    },
    Calendar,
}

impl Granularity {
    pub fn period(period: Period) -> Self {
        Granularity::Period {
            period,
            tz: TimeZone::Utc,
            origin: None,
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        let lower = name.trim().to_ascii_lowercase();
        match lower.as_str() {
            "all" => return Some(Granularity::All),
            "none" => return Some(Granularity::None),
            _ => {}
        }
        SIMPLE
            .iter()
            .find(|(n, _)| *n == lower)
            .map(|(_, p)| Granularity::period(*p))
    }

    /// The simple name ("hour", "day", ...) when this is one, in lower case.
    pub fn simple_name(&self) -> Option<&'static str> {
        match self {
            Granularity::All => Some("all"),
            Granularity::None => Some("none"),
            Granularity::Period {
                period,
                tz: TimeZone::Utc,
                origin: None,
            } => SIMPLE.iter().find(|(_, p)| p == period).map(|(n, _)| *n),
            _ => None,
        }
    }

    pub fn is_all(&self) -> bool {
        matches!(self, Granularity::All)
    }

    pub fn time_zone(&self) -> TimeZone {
        match self {
            Granularity::Period { tz, .. } => *tz,
            _ => TimeZone::Utc,
        }
    }

    fn truncator(&self) -> Truncator {
        match *self {
            Granularity::All => Truncator::All,
            Granularity::None => Truncator::None,
            Granularity::Duration { millis, origin } => Truncator::Fixed {
                step: millis.max(1),
                origin,
            },
            Granularity::Period { period, tz, origin } => {
                let fixed_offset = match tz {
                    TimeZone::Utc => Some(0),
                    TimeZone::Fixed(secs) => Some(i64::from(secs) * 1000),
                    TimeZone::Named(_) => None,
                };
                let Some(step) = period.standard_millis().filter(|s| *s > 0) else {
                    return Truncator::Calendar;
                };
                let Some(offset) = fixed_offset else {
                    // In a named zone only sub-day units of a fixed offset grid are safe; keep
                    // the calendar path, which is exact.
                    return Truncator::Calendar;
                };
                let local_epoch = -offset;
                let single = !period.is_compound()
                    && [
                        period.weeks,
                        period.days,
                        period.hours,
                        period.minutes,
                        period.seconds,
                        period.millis,
                    ]
                    .contains(&1);
                let origin = match origin {
                    Some(o) => o,
                    // A single week floors to Monday; 1970-01-05 was a Monday.
                    None if single && period.weeks == 1 => local_epoch + 4 * MILLIS_PER_DAY,
                    None => local_epoch,
                };
                Truncator::Fixed { step, origin }
            }
        }
    }

    /// Start of the bucket holding `t`.
    pub fn bucket_start(&self, t: i64) -> i64 {
        match self.truncator() {
            Truncator::All => crate::time::MIN_INSTANT,
            Truncator::None => t,
            Truncator::Fixed { step, origin } => origin.saturating_add(
                (t.saturating_sub(origin))
                    .div_euclid(step)
                    .saturating_mul(step),
            ),
            Truncator::Calendar => self.calendar_truncate(t),
        }
    }

    /// Start of the bucket after the one starting at `bucket_start`.
    pub fn next_bucket(&self, bucket_start: i64) -> i64 {
        match *self {
            Granularity::All => MAX_INSTANT,
            Granularity::None => bucket_start.saturating_add(1),
            Granularity::Duration { millis, .. } => bucket_start.saturating_add(millis.max(1)),
            Granularity::Period { period, tz, .. } => period.add_to(bucket_start, &tz, 1),
        }
    }

    /// Buckets overlapping `interval`, each as an interval (the first may start before it).
    pub fn buckets(&self, interval: Interval) -> BucketIter {
        let start = if self.is_all() {
            interval.start
        } else {
            self.bucket_start(interval.start)
        };
        BucketIter {
            granularity: *self,
            next: start,
            end: interval.end,
        }
    }

    /// A cheap closure-free bucketer: for repeated calls on mostly sorted times it caches the
    /// last bucket, which makes calendar granularities cost a comparison per row.
    pub fn bucketer(&self) -> Bucketer {
        Bucketer {
            granularity: *self,
            truncator: self.truncator(),
            lo: i64::MAX,
            hi: i64::MIN,
        }
    }

    fn calendar_truncate(&self, t: i64) -> i64 {
        let Granularity::Period { period, tz, origin } = *self else {
            return t;
        };
        let has_origin = origin.is_some();
        let origin = origin.unwrap_or_else(|| tz.to_utc(0));
        if period.is_compound() {
            if let Some(step) = period.standard_millis().filter(|_| period.is_fixed_in(&tz)) {
                return origin + (t - origin).div_euclid(step.max(1)) * step.max(1);
            }
            return compound_truncate(&period, &tz, origin, t);
        }
        let local = CivilTime::from_millis(tz.to_local(t));
        let floor_local = |c: CivilTime| tz.to_utc(c.to_millis());
        if period.years > 0 || period.months > 0 {
            let n_months = i64::from(period.years) * 12 + i64::from(period.months);
            if !has_origin && (n_months == 1 || period.years == 1) {
                let month = if period.years == 1 { 1 } else { local.month };
                return floor_local(CivilTime {
                    month,
                    day: 1,
                    hour: 0,
                    minute: 0,
                    second: 0,
                    millis: 0,
                    ..local
                });
            }
            return align_from_origin(
                &period,
                n_months,
                &tz,
                origin,
                t,
                months_between(&tz, origin, t),
            );
        }
        if period.weeks > 0 || period.days > 0 {
            if !has_origin && (period.days == 1 || period.weeks == 1) {
                let day_start = CivilTime {
                    hour: 0,
                    minute: 0,
                    second: 0,
                    millis: 0,
                    ..local
                };
                if period.weeks == 1 {
                    let back = i64::from(day_start.day_of_week() - 1) * MILLIS_PER_DAY;
                    return tz.to_utc(day_start.to_millis() - back);
                }
                return floor_local(day_start);
            }
            let (unit, per_step) = if period.weeks > 0 {
                (Period::weeks(1), i64::from(period.weeks))
            } else {
                (Period::days(1), i64::from(period.days))
            };
            let days = (tz.to_local(t) - tz.to_local(origin)).div_euclid(MILLIS_PER_DAY);
            let units = if period.weeks > 0 {
                days.div_euclid(7)
            } else {
                days
            };
            return align_from_origin(&unit, per_step, &tz, origin, t, units);
        }
        // Sub-day units: a single unit floors on the local clock; multiples are fixed durations
        // from the origin.
        let step = period.standard_millis().unwrap_or(1).max(1);
        if !has_origin {
            let local_ms = tz.to_local(t);
            let single = [period.hours, period.minutes, period.seconds, period.millis].contains(&1);
            if single {
                return tz.to_utc(local_ms - local_ms.rem_euclid(step));
            }
        }
        origin + (t - origin).div_euclid(step) * step
    }
}

/// Whole months from `origin` to `t` on the local calendar, floored.
fn months_between(tz: &TimeZone, origin: i64, t: i64) -> i64 {
    let lo = CivilTime::from_millis(tz.to_local(origin));
    let lt = CivilTime::from_millis(tz.to_local(t));
    let mut diff = (lt.year * 12 + i64::from(lt.month)) - (lo.year * 12 + i64::from(lo.month));
    let within = |c: &CivilTime| {
        c.to_millis()
            - CivilTime {
                day: 1,
                hour: 0,
                minute: 0,
                second: 0,
                millis: 0,
                ..*c
            }
            .to_millis()
    };
    if within(&lt) < within(&lo) {
        diff -= 1;
    }
    diff
}

/// Floors `units` (whole units of `unit` from origin to t) to a multiple of `n` and returns the
/// instant `origin + k * unit`, stepping back once if calendar clamping overshot `t`.
fn align_from_origin(
    unit_or_period: &Period,
    n: i64,
    tz: &TimeZone,
    origin: i64,
    t: i64,
    units: i64,
) -> i64 {
    let unit = if unit_or_period.years > 0 || unit_or_period.months > 0 {
        Period::months(1)
    } else {
        *unit_or_period
    };
    let k = units.div_euclid(n) * n;
    let mut candidate = unit.add_to(origin, tz, k);
    let mut k2 = k;
    while candidate > t {
        k2 -= n;
        candidate = unit.add_to(origin, tz, k2);
    }
    candidate
}

fn compound_truncate(period: &Period, tz: &TimeZone, origin: i64, t: i64) -> i64 {
    // Jump close with an average period length, then step exactly.
    let approx = (i64::from(period.years) * 365 * MILLIS_PER_DAY
        + i64::from(period.months) * 30 * MILLIS_PER_DAY
        + Period {
            years: 0,
            months: 0,
            ..*period
        }
        .standard_millis()
        .unwrap_or(0))
    .max(1);
    let mut k = (t - origin).div_euclid(approx) - 1;
    let mut current = period.add_to(origin, tz, k);
    while current > t {
        k -= 1;
        current = period.add_to(origin, tz, k);
    }
    loop {
        let next = period.add_to(origin, tz, k + 1);
        if next > t {
            return current;
        }
        k += 1;
        current = next;
    }
}

/// See [`Granularity::bucketer`].
#[derive(Debug, Clone, Copy)]
pub struct Bucketer {
    granularity: Granularity,
    truncator: Truncator,
    lo: i64,
    hi: i64,
}

impl Bucketer {
    #[inline]
    pub fn bucket_start(&mut self, t: i64) -> i64 {
        match self.truncator {
            Truncator::All => crate::time::MIN_INSTANT,
            Truncator::None => t,
            Truncator::Fixed { step, origin } => origin + (t - origin).div_euclid(step) * step,
            Truncator::Calendar => {
                if t >= self.lo && t < self.hi {
                    return self.lo;
                }
                self.lo = self.granularity.bucket_start(t);
                self.hi = self.granularity.next_bucket(self.lo);
                self.lo
            }
        }
    }
}

pub struct BucketIter {
    granularity: Granularity,
    next: i64,
    end: i64,
}

impl Iterator for BucketIter {
    type Item = Interval;

    fn next(&mut self) -> Option<Interval> {
        if self.next >= self.end {
            return None;
        }
        let start = self.next;
        let end = match self.granularity {
            Granularity::All => self.end,
            g => g.next_bucket(start),
        };
        // Guard against a zero-length step (cannot happen for valid granularities).
        self.next = if end <= start { self.end } else { end };
        Some(Interval {
            start,
            end: end.max(start + 1),
        })
    }
}

mod json;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::parse_iso as t;
    use serde_json::json;

    fn iso(ms: i64) -> String {
        format_iso(ms)
    }

    #[test]
    fn simple_names_floor_in_utc() {
        let ts = t("2013-08-31T13:47:12.345Z").unwrap();
        let cases = [
            ("second", "2013-08-31T13:47:12.000Z"),
            ("minute", "2013-08-31T13:47:00.000Z"),
            ("fifteen_minute", "2013-08-31T13:45:00.000Z"),
            ("hour", "2013-08-31T13:00:00.000Z"),
            ("six_hour", "2013-08-31T12:00:00.000Z"),
            ("eight_hour", "2013-08-31T08:00:00.000Z"),
            ("day", "2013-08-31T00:00:00.000Z"),
            ("week", "2013-08-26T00:00:00.000Z"),
            ("month", "2013-08-01T00:00:00.000Z"),
            ("quarter", "2013-07-01T00:00:00.000Z"),
            ("year", "2013-01-01T00:00:00.000Z"),
        ];
        for (name, want) in cases {
            let g = Granularity::from_name(name).unwrap();
            assert_eq!(iso(g.bucket_start(ts)), want, "{name}");
            let mut b = g.bucketer();
            assert_eq!(iso(b.bucket_start(ts)), want, "{name} bucketer");
            assert!(g.next_bucket(g.bucket_start(ts)) > ts, "{name}");
        }
        assert_eq!(Granularity::None.bucket_start(ts), ts);
    }

    #[test]
    fn period_with_zone_and_origin() {
        let g = Granularity::from_json(
            &json!({"type":"period","period":"P1D","timeZone":"America/Los_Angeles"}),
        )
        .unwrap();
        let ts = t("2013-08-31T03:00:00Z").unwrap(); // Aug 30, 20:00 local
        assert_eq!(iso(g.bucket_start(ts)), "2013-08-30T07:00:00.000Z");
        let g = Granularity::from_json(
            &json!({"type":"period","period":"P1M","origin":"2012-02-15T00:00:00Z"}),
        )
        .unwrap();
        assert_eq!(
            iso(g.bucket_start(t("2013-08-10T00:00:00Z").unwrap())),
            "2013-07-15T00:00:00.000Z"
        );
        let g = Granularity::from_json(
            &json!({"type":"period","period":"PT2H","origin":"2012-01-01T00:30:00Z"}),
        )
        .unwrap();
        assert_eq!(
            iso(g.bucket_start(t("2013-08-10T00:10:00Z").unwrap())),
            "2013-08-09T22:30:00.000Z"
        );
        let g = Granularity::from_json(&json!({"type":"period","period":"P3M"})).unwrap();
        assert_eq!(
            iso(g.bucket_start(t("2013-05-10T00:00:00Z").unwrap())),
            "2013-04-01T00:00:00.000Z"
        );
    }

    #[test]
    fn duration_granularity() {
        let g = Granularity::from_json(
            &json!({"type":"duration","duration":3600000,"origin":"2012-01-01T00:30:00Z"}),
        )
        .unwrap();
        assert_eq!(
            iso(g.bucket_start(t("2013-01-01T05:10:00Z").unwrap())),
            "2013-01-01T04:30:00.000Z"
        );
    }

    #[test]
    fn json_forms_and_errors() {
        assert_eq!(
            Granularity::from_json(&json!("HOUR")).unwrap().to_json(),
            json!("HOUR")
        );
        assert_eq!(
            Granularity::from_json(&json!({"type":"none"})).unwrap(),
            Granularity::None
        );
        let e = Granularity::from_json(&json!("fortnight")).unwrap_err();
        assert!(
            e.contains("fortnight") && e.contains("fifteen_minute"),
            "{e}"
        );
        assert!(Granularity::from_json(&json!({"type":"period","period":"P0D"})).is_err());
    }

    #[test]
    fn buckets_cover_interval() {
        let g = Granularity::from_name("day").unwrap();
        let iv = Interval::parse("2013-01-01T12:00:00Z/2013-01-03T00:00:00Z").unwrap();
        let b: Vec<_> = g.buckets(iv).map(|i| i.to_string()).collect();
        assert_eq!(
            b,
            [
                "2013-01-01T00:00:00.000Z/2013-01-02T00:00:00.000Z",
                "2013-01-02T00:00:00.000Z/2013-01-03T00:00:00.000Z"
            ]
        );
    }
}
