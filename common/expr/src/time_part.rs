//! `timestamp_extract`: one field of a timestamp's civil time in a zone. The interpreter and
//! the grouping engine share it; the engine recognises `timestamp_extract(column, 'UNIT')`
//! with a literal unit and zone ([`Compiled::time_part`]) and computes it per row without the
//! interpreter, and its small value range lets the key pack into few bits.

use eddy_types::time::{CivilTime, TimeZone};

use crate::parse::Expr;
use crate::{Compiled, ExprError};

/// A field `timestamp_extract` can read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeUnit {
    Epoch,
    Millisecond,
    Second,
    Minute,
    Hour,
    Day,
    Dow,
    Doy,
    Month,
    Quarter,
    Year,
}

impl TimeUnit {
    /// The unit of its Druid name, in any case.
    pub fn parse(unit: &str) -> Result<Self, ExprError> {
        Ok(match unit.to_ascii_uppercase().as_str() {
            "EPOCH" => TimeUnit::Epoch,
            "MILLISECOND" => TimeUnit::Millisecond,
            "SECOND" => TimeUnit::Second,
            "MINUTE" => TimeUnit::Minute,
            "HOUR" => TimeUnit::Hour,
            "DAY" => TimeUnit::Day,
            "DOW" => TimeUnit::Dow,
            "DOY" => TimeUnit::Doy,
            "MONTH" => TimeUnit::Month,
            "QUARTER" => TimeUnit::Quarter,
            "YEAR" => TimeUnit::Year,
            other => {
                return Err(ExprError::Eval(format!(
                    "timestamp_extract: unknown unit {other:?}"
                )));
            }
        })
    }

    /// The field of instant `t` (ms) in zone `tz`.
    pub fn of(self, t: i64, tz: &TimeZone) -> i64 {
        let local = tz.to_local(t);
        // Fields within a day need no calendar.
        let in_day = local.rem_euclid(86_400_000);
        let civil = || CivilTime::from_millis(local);
        match self {
            TimeUnit::Epoch => t.div_euclid(1000),
            TimeUnit::Millisecond => in_day % 1000,
            TimeUnit::Second => in_day / 1000 % 60,
            TimeUnit::Minute => in_day / 60_000 % 60,
            TimeUnit::Hour => in_day / 3_600_000,
            TimeUnit::Day => i64::from(civil().day),
            TimeUnit::Dow => i64::from(civil().day_of_week()),
            TimeUnit::Doy => i64::from(civil().day_of_year()),
            TimeUnit::Month => i64::from(civil().month),
            TimeUnit::Quarter => i64::from((civil().month - 1) / 3 + 1),
            TimeUnit::Year => civil().year,
        }
    }

    /// One more than the largest value, for fields whose values are small non-negative
    /// numbers (every field but the epoch and the year).
    pub fn limit(self) -> Option<u32> {
        match self {
            TimeUnit::Epoch | TimeUnit::Year => None,
            TimeUnit::Millisecond => Some(1000),
            TimeUnit::Second | TimeUnit::Minute => Some(60),
            TimeUnit::Hour => Some(24),
            TimeUnit::Day => Some(32),
            TimeUnit::Dow => Some(8),
            TimeUnit::Doy => Some(367),
            TimeUnit::Month => Some(13),
            TimeUnit::Quarter => Some(5),
        }
    }
}

/// `timestamp_extract(input, 'UNIT'[, 'ZONE'])` with literal unit and zone.
#[derive(Debug, Clone)]
pub struct TimePart {
    /// The identifier read.
    pub input: String,
    pub unit: TimeUnit,
    pub tz: TimeZone,
}

impl Compiled {
    /// The expression as a [`TimePart`], when it is one.
    pub fn time_part(&self) -> Option<TimePart> {
        let Expr::Call(name, args) = &self.expr else {
            return None;
        };
        if name != "timestamp_extract" {
            return None;
        }
        match &args[..] {
            [Expr::Ident(input), Expr::Str(unit), zone @ ..] => {
                let tz = match zone {
                    [] => TimeZone::Utc,
                    [Expr::Str(z)] => z.parse().ok()?,
                    _ => return None,
                };
                Some(TimePart {
                    input: input.clone(),
                    unit: TimeUnit::parse(unit).ok()?,
                    tz,
                })
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ExprValue;

    /// The field read from the civil time, as the day's fields are not.
    fn by_calendar(unit: TimeUnit, t: i64, tz: &TimeZone) -> i64 {
        let c = CivilTime::from_millis(tz.to_local(t));
        match unit {
            TimeUnit::Millisecond => i64::from(c.millis),
            TimeUnit::Second => i64::from(c.second),
            TimeUnit::Minute => i64::from(c.minute),
            TimeUnit::Hour => i64::from(c.hour),
            other => other.of(t, tz),
        }
    }

    #[test]
    fn time_parts_compute_what_the_interpreter_does() {
        let instants = [
            0i64,
            1_377_907_200_000,
            1_372_636_799_999,
            -1,
            951_782_400_000,
            1_704_067_199_123,
        ];
        for unit in [
            "epoch",
            "MILLISECOND",
            "SECOND",
            "minute",
            "HOUR",
            "DAY",
            "DOW",
            "DOY",
            "MONTH",
            "QUARTER",
            "YEAR",
        ] {
            for zone in ["", ", 'Asia/Kathmandu'", ", 'America/New_York'"] {
                let src = format!("timestamp_extract(__time, '{unit}'{zone})");
                let c = Compiled::parse(&src).unwrap();
                let part = c.time_part().unwrap_or_else(|| panic!("{src}"));
                assert_eq!(part.input, "__time");
                for t in instants {
                    let row = |_: &str| ExprValue::Long(t);
                    let want = c.eval(&row).unwrap();
                    let got = part.unit.of(t, &part.tz);
                    assert_eq!(want, ExprValue::Long(got), "{src} at {t}");
                    assert_eq!(got, by_calendar(part.unit, t, &part.tz), "{src} at {t}");
                    if let Some(limit) = part.unit.limit() {
                        assert!((0..i64::from(limit)).contains(&got), "{src} at {t}");
                    }
                }
            }
        }
        for other in [
            "timestamp_extract(__time, unit)",
            "timestamp_extract(__time + 1, 'HOUR')",
            "timestamp_extract(__time, 'FORTNIGHT')",
            "timestamp_floor(__time, 'PT1H')",
        ] {
            assert!(
                Compiled::parse(other).unwrap().time_part().is_none(),
                "{other}"
            );
        }
    }
}
