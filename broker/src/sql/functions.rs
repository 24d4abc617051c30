//! Druid's SQL functions that DataFusion lacks, as DataFusion scalar functions: TIME_FLOOR,
//! TIME_CEIL, TIME_SHIFT, TIME_EXTRACT, TIME_PARSE, TIME_FORMAT, TIME_IN_INTERVAL,
//! MILLIS_TO_TIMESTAMP, TIMESTAMP_TO_MILLIS, TIMESTAMPADD, TIMESTAMPDIFF and DATE_TRUNC (which,
//! as in Druid, also takes epoch milliseconds), and the string functions REGEXP_EXTRACT,
//! CONTAINS_STRING, ICONTAINS_STRING and PARSE_LONG. Timestamps leave these functions as
//! millisecond TIMESTAMPs (Druid's precision); the session's `sqlTimeZone` is the default zone.

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, BooleanArray, Int64Array, StringArray, TimestampMillisecondArray,
};
use arrow::compute::cast;
use arrow::datatypes::{DataType, TimeUnit};
use datafusion::common::{Result, ScalarValue, exec_err, plan_err};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

use eddy_types::Interval;
use eddy_types::granularity::Granularity;
use eddy_types::period::Period;
use eddy_types::time::{CivilTime, TimeZone, format_iso_in, parse_iso_in};

/// Arrow type of every timestamp these functions produce (and of `__time`).
pub const TIMESTAMP: DataType = DataType::Timestamp(TimeUnit::Millisecond, None);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    Floor,
    Ceil,
    Shift,
    Extract,
    Parse,
    Format,
    InInterval,
    MillisToTimestamp,
    TimestampToMillis,
    Add,
    Diff,
    DateTrunc,
    RegexpExtract,
    ContainsString,
    IContainsString,
    ParseLong,
}

const ALL: [(Kind, &str); 16] = [
    (Kind::RegexpExtract, "regexp_extract"),
    (Kind::ContainsString, "contains_string"),
    (Kind::IContainsString, "icontains_string"),
    (Kind::ParseLong, "parse_long"),
    (Kind::DateTrunc, "date_trunc"),
    (Kind::Floor, "time_floor"),
    (Kind::Ceil, "time_ceil"),
    (Kind::Shift, "time_shift"),
    (Kind::Extract, "time_extract"),
    (Kind::Parse, "time_parse"),
    (Kind::Format, "time_format"),
    (Kind::InInterval, "time_in_interval"),
    (Kind::MillisToTimestamp, "millis_to_timestamp"),
    (Kind::TimestampToMillis, "timestamp_to_millis"),
    (Kind::Add, "timestampadd"),
    (Kind::Diff, "timestampdiff"),
];

/// The Druid functions for one session, with `tz` as the default time zone.
pub fn druid_functions(tz: TimeZone) -> Vec<ScalarUDF> {
    ALL.iter()
        .map(|(kind, name)| {
            ScalarUDF::new_from_impl(DruidFn {
                kind: *kind,
                name,
                tz,
                signature: Signature::variadic_any(Volatility::Immutable),
            })
        })
        .collect()
}

#[derive(Debug)]
struct DruidFn {
    kind: Kind,
    name: &'static str,
    tz: TimeZone,
    signature: Signature,
}

impl PartialEq for DruidFn {
    fn eq(&self, other: &Self) -> bool {
        self.kind == other.kind && self.tz == other.tz
    }
}
impl Eq for DruidFn {}
impl std::hash::Hash for DruidFn {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.kind.hash(state);
        self.tz.name().hash(state);
    }
}

/// (minimum, maximum) argument count of each function.
fn arity(kind: Kind) -> (usize, usize) {
    match kind {
        Kind::Floor | Kind::Ceil => (2, 4),
        Kind::Shift => (3, 4),
        Kind::Extract | Kind::Parse | Kind::Format => (1, 3),
        Kind::InInterval => (2, 2),
        Kind::MillisToTimestamp | Kind::TimestampToMillis => (1, 1),
        Kind::Add | Kind::Diff => (3, 3),
        Kind::DateTrunc => (2, 2),
        Kind::RegexpExtract => (2, 3),
        Kind::ContainsString | Kind::IContainsString => (2, 2),
        Kind::ParseLong => (1, 2),
    }
}

impl ScalarUDFImpl for DruidFn {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        let (lo, hi) = arity(self.kind);
        if arg_types.len() < lo || arg_types.len() > hi {
            let name = self.name.to_uppercase();
            return if lo == hi {
                plan_err!("{name} takes {lo} arguments, got {}", arg_types.len())
            } else {
                plan_err!(
                    "{name} takes {lo} to {hi} arguments, got {}",
                    arg_types.len()
                )
            };
        }
        Ok(match self.kind {
            Kind::Extract | Kind::TimestampToMillis | Kind::Diff | Kind::ParseLong => {
                DataType::Int64
            }
            Kind::Format | Kind::RegexpExtract => DataType::Utf8,
            Kind::InInterval | Kind::ContainsString | Kind::IContainsString => DataType::Boolean,
            _ => TIMESTAMP,
        })
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let n = args.number_rows;
        let all_scalar = args
            .args
            .iter()
            .all(|a| matches!(a, ColumnarValue::Scalar(_)));
        let a = &args.args;
        let out: ArrayRef = match self.kind {
            Kind::Floor | Kind::Ceil => {
                let ts = millis(&a[0], n)?;
                let period = period_arg(self.name, a, 1)?;
                let origin = match a.get(2) {
                    Some(v) => optional_millis_scalar(v)?,
                    None => None,
                };
                let tz = tz_arg(self.name, a, 3, self.tz)?;
                let g = Granularity::Period { period, tz, origin };
                let ceil = self.kind == Kind::Ceil;
                let mut b = g.bucketer();
                Arc::new(map_ts(&ts, |t| {
                    let start = b.bucket_start(t);
                    if ceil && start != t {
                        g.next_bucket(start)
                    } else {
                        start
                    }
                }))
            }
            Kind::Shift => {
                let ts = millis(&a[0], n)?;
                let period = period_arg(self.name, a, 1)?;
                let steps = int_array(&a[2], n)?;
                let tz = tz_arg(self.name, a, 3, self.tz)?;
                let out: TimestampMillisecondArray = ts
                    .iter()
                    .zip(steps.iter())
                    .map(|(t, s)| Some(period.add_to(t?, &tz, s?)))
                    .collect();
                Arc::new(out)
            }
            Kind::Extract => {
                let ts = millis(&a[0], n)?;
                let unit = match a.get(1) {
                    Some(v) => string_scalar(self.name, v, "unit")?,
                    None => "MILLISECOND".to_string(),
                };
                let tz = tz_arg(self.name, a, 2, self.tz)?;
                let unit = unit.to_uppercase();
                let out: Int64Array = ts
                    .iter()
                    .map(|t| t.map(|t| extract(&unit, t, &tz)).transpose())
                    .collect::<Result<_>>()?;
                Arc::new(out)
            }
            Kind::Parse => {
                let text = cast(&a[0].to_array(n)?, &DataType::Utf8)?;
                let text = downcast::<StringArray>(&text)?;
                let pattern = optional_arg(a, 1)?;
                let tz = tz_arg(self.name, a, 2, self.tz)?;
                let out: TimestampMillisecondArray = text
                    .iter()
                    .map(|s| s.and_then(|s| parse_time(s, pattern.as_deref(), &tz)))
                    .collect();
                Arc::new(out)
            }
            Kind::Format => {
                let ts = millis(&a[0], n)?;
                let pattern = optional_arg(a, 1)?;
                let tz = tz_arg(self.name, a, 2, self.tz)?;
                let out: StringArray = ts
                    .iter()
                    .map(|t| t.map(|t| format_time(t, pattern.as_deref(), &tz)))
                    .collect();
                Arc::new(out)
            }
            Kind::InInterval => {
                let ts = millis(&a[0], n)?;
                let text = string_scalar(self.name, &a[1], "interval")?;
                let iv = Interval::parse(&text).or_else(|e| {
                    exec_err!("TIME_IN_INTERVAL: {text:?} is not an ISO interval: {e}")
                })?;
                let out: BooleanArray = ts.iter().map(|t| t.map(|t| iv.contains(t))).collect();
                Arc::new(out)
            }
            Kind::MillisToTimestamp => {
                let v = int_array(&a[0], n)?;
                Arc::new(v.reinterpret_cast::<arrow::datatypes::TimestampMillisecondType>())
            }
            Kind::TimestampToMillis => Arc::new(millis(&a[0], n)?),
            Kind::Add => {
                let unit = string_scalar(self.name, &a[0], "unit")?;
                let period = unit_period(self.name, &unit)?;
                let steps = int_array(&a[1], n)?;
                let ts = millis(&a[2], n)?;
                let tz = self.tz;
                let out: TimestampMillisecondArray = ts
                    .iter()
                    .zip(steps.iter())
                    .map(|(t, s)| Some(period.add_to(t?, &tz, s?)))
                    .collect();
                Arc::new(out)
            }
            Kind::DateTrunc => {
                let unit = string_scalar(self.name, &a[0], "unit")?;
                let period = unit_period(self.name, &unit)?;
                let ts = millis(&a[1], n)?;
                let g = Granularity::Period {
                    period,
                    tz: self.tz,
                    origin: None,
                };
                let mut b = g.bucketer();
                Arc::new(map_ts(&ts, |t| b.bucket_start(t)))
            }
            Kind::RegexpExtract => {
                let text = strings(&a[0], n)?;
                let pattern = string_scalar(self.name, &a[1], "pattern")?;
                let index = match a.get(2) {
                    Some(v) => int_array(v, 1)?.iter().next().flatten().unwrap_or(0),
                    None => 0,
                };
                let re = regex::Regex::new(&pattern).or_else(|e| {
                    exec_err!("REGEXP_EXTRACT: {pattern:?} is not a valid pattern: {e}")
                })?;
                let out: StringArray = text
                    .iter()
                    .map(|t| {
                        let caps = re.captures(t?)?;
                        caps.get(usize::try_from(index).ok()?)
                            .map(|m| m.as_str().to_string())
                    })
                    .collect();
                Arc::new(out)
            }
            Kind::ContainsString | Kind::IContainsString => {
                let text = strings(&a[0], n)?;
                let needle = string_scalar(self.name, &a[1], "search string")?;
                let fold = self.kind == Kind::IContainsString;
                let needle = if fold { needle.to_lowercase() } else { needle };
                let out: BooleanArray = text
                    .iter()
                    .map(|t| {
                        t.map(|t| {
                            if fold {
                                t.to_lowercase().contains(&needle)
                            } else {
                                t.contains(&needle)
                            }
                        })
                    })
                    .collect();
                Arc::new(out)
            }
            Kind::ParseLong => {
                let text = strings(&a[0], n)?;
                let radix = match a.get(1) {
                    Some(v) => int_array(v, 1)?.iter().next().flatten().unwrap_or(10),
                    None => 10,
                };
                let radix = u32::try_from(radix).ok().filter(|r| (2..=36).contains(r));
                let Some(radix) = radix else {
                    return exec_err!("PARSE_LONG: the radix must be between 2 and 36");
                };
                let out: Int64Array = text
                    .iter()
                    .map(|t| i64::from_str_radix(t?.trim(), radix).ok())
                    .collect();
                Arc::new(out)
            }
            Kind::Diff => {
                let unit = string_scalar(self.name, &a[0], "unit")?;
                let period = unit_period(self.name, &unit)?;
                let t1 = millis(&a[1], n)?;
                let t2 = millis(&a[2], n)?;
                let tz = self.tz;
                let out: Int64Array = t1
                    .iter()
                    .zip(t2.iter())
                    .map(|(a, b)| Some(periods_between(&period, a?, b?, &tz)))
                    .collect();
                Arc::new(out)
            }
        };
        if all_scalar {
            Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(&out, 0)?))
        } else {
            Ok(ColumnarValue::Array(out))
        }
    }
}

fn downcast<T: 'static>(a: &ArrayRef) -> Result<&T> {
    match a.as_any().downcast_ref::<T>() {
        Some(v) => Ok(v),
        None => exec_err!("unexpected array type {}", a.data_type()),
    }
}

/// Milliseconds since the epoch of a timestamp, integer or ISO string argument.
fn millis(v: &ColumnarValue, n: usize) -> Result<Int64Array> {
    let arr = v.to_array(n)?;
    let ms = match arr.data_type() {
        DataType::Timestamp(_, _) | DataType::Date32 | DataType::Date64 => {
            let t = cast(&arr, &TIMESTAMP)?;
            cast(&t, &DataType::Int64)?
        }
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => {
            let s = cast(&arr, &DataType::Utf8)?;
            let s = downcast::<StringArray>(&s)?;
            let out: Int64Array = s
                .iter()
                .map(|s| s.and_then(|s| parse_time(s, None, &TimeZone::Utc)))
                .collect();
            Arc::new(out)
        }
        DataType::Null => Arc::new(Int64Array::new_null(n)),
        _ => cast(&arr, &DataType::Int64)?,
    };
    Ok(downcast::<Int64Array>(&ms)?.clone())
}

fn strings(v: &ColumnarValue, n: usize) -> Result<StringArray> {
    let arr = cast(&v.to_array(n)?, &DataType::Utf8)?;
    Ok(downcast::<StringArray>(&arr)?.clone())
}

fn int_array(v: &ColumnarValue, n: usize) -> Result<Int64Array> {
    let arr = cast(&v.to_array(n)?, &DataType::Int64)?;
    Ok(downcast::<Int64Array>(&arr)?.clone())
}

fn map_ts(ts: &Int64Array, mut f: impl FnMut(i64) -> i64) -> TimestampMillisecondArray {
    ts.iter().map(|t| t.map(&mut f)).collect()
}

fn optional_string_scalar(v: &ColumnarValue) -> Result<Option<String>> {
    match v {
        ColumnarValue::Scalar(s) if s.is_null() => Ok(None),
        ColumnarValue::Scalar(
            ScalarValue::Utf8(Some(s))
            | ScalarValue::LargeUtf8(Some(s))
            | ScalarValue::Utf8View(Some(s)),
        ) => Ok(Some(s.clone())),
        other => exec_err!("expected a string literal, got {}", other.data_type()),
    }
}

/// An optional string-literal argument (absent or NULL → None).
fn optional_arg(a: &[ColumnarValue], i: usize) -> Result<Option<String>> {
    match a.get(i) {
        Some(v) => optional_string_scalar(v),
        None => Ok(None),
    }
}

fn string_scalar(func: &str, v: &ColumnarValue, what: &str) -> Result<String> {
    match optional_string_scalar(v) {
        Ok(Some(s)) => Ok(s),
        _ => exec_err!(
            "{}: the {what} must be a string literal",
            func.to_uppercase()
        ),
    }
}

fn optional_millis_scalar(v: &ColumnarValue) -> Result<Option<i64>> {
    match v {
        ColumnarValue::Scalar(s) if s.is_null() => Ok(None),
        ColumnarValue::Scalar(_) => Ok(millis(v, 1)?.iter().next().flatten()),
        ColumnarValue::Array(_) => exec_err!("the origin must be a constant"),
    }
}

fn period_arg(func: &str, a: &[ColumnarValue], i: usize) -> Result<Period> {
    let text = string_scalar(func, &a[i], "period")?;
    text.parse::<Period>()
        .or_else(|e| exec_err!("{}: {e}", func.to_uppercase()))
}

fn tz_arg(func: &str, a: &[ColumnarValue], i: usize, default: TimeZone) -> Result<TimeZone> {
    match a.get(i).map(optional_string_scalar).transpose()?.flatten() {
        None => Ok(default),
        Some(name) => name
            .parse::<TimeZone>()
            .or_else(|e| exec_err!("{}: {e}", func.to_uppercase())),
    }
}

/// A Druid time-unit keyword (TIMESTAMPADD, FLOOR(ts TO unit), ...) as an ISO period.
pub fn unit_period_text(unit: &str) -> Option<&'static str> {
    Some(match unit.to_uppercase().trim_start_matches("SQL_TSI_") {
        "MILLISECOND" => "PT0.001S",
        "SECOND" => "PT1S",
        "MINUTE" => "PT1M",
        "HOUR" => "PT1H",
        "DAY" => "P1D",
        "WEEK" => "P1W",
        "MONTH" => "P1M",
        "QUARTER" => "P3M",
        "YEAR" => "P1Y",
        _ => return None,
    })
}

/// A time unit as a period.
fn unit_period(func: &str, unit: &str) -> Result<Period> {
    let Some(p) = unit_period_text(unit) else {
        return exec_err!(
            "{}: unknown time unit {unit:?}; use one of SECOND, MINUTE, HOUR, DAY, WEEK, MONTH, QUARTER, YEAR",
            func.to_uppercase()
        );
    };
    if p == "PT0.001S" {
        return Ok(Period::millis(1));
    }
    p.parse::<Period>()
        .or_else(|e| exec_err!("{}: {e}", func.to_uppercase()))
}

/// Whole periods from `a` to `b` (negative when `b` is earlier), as Druid's TIMESTAMPDIFF.
fn periods_between(p: &Period, a: i64, b: i64, tz: &TimeZone) -> i64 {
    if let Some(step) = p
        .standard_millis()
        .filter(|_| p.years == 0 && p.months == 0)
    {
        return (b - a) / step.max(1);
    }
    // Calendar periods: estimate, then correct so that a + k*p <= b < a + (k+1)*p.
    let months = i64::from(p.years) * 12 + i64::from(p.months);
    let mut k = (b - a) / (months.max(1) * 30 * 86_400_000);
    let sign = if b >= a { 1 } else { -1 };
    loop {
        let next = p.add_to(a, tz, k + sign);
        if (sign > 0 && next <= b) || (sign < 0 && next >= b) {
            k += sign;
            continue;
        }
        let here = p.add_to(a, tz, k);
        if (sign > 0 && here > b) || (sign < 0 && here < b) {
            k -= sign;
            continue;
        }
        return k;
    }
}

fn extract(unit: &str, t: i64, tz: &TimeZone) -> Result<i64> {
    let local = tz.to_local(t);
    let c = CivilTime::from_millis(local);
    Ok(match unit {
        "EPOCH" => t.div_euclid(1000),
        "MILLISECOND" => local.rem_euclid(1000),
        "SECOND" => i64::from(c.second),
        "MINUTE" => i64::from(c.minute),
        "HOUR" => i64::from(c.hour),
        "DAY" => i64::from(c.day),
        "DOW" | "ISODOW" => i64::from(c.day_of_week()),
        "DOY" => i64::from(c.day_of_year()),
        "WEEK" => iso_week(&c).1,
        "MONTH" => i64::from(c.month),
        "QUARTER" => i64::from((c.month - 1) / 3 + 1),
        "YEAR" => c.year,
        "ISOYEAR" => iso_week(&c).0,
        "DECADE" => c.year.div_euclid(10),
        "CENTURY" => (c.year - 1).div_euclid(100) + 1,
        "MILLENNIUM" => (c.year - 1).div_euclid(1000) + 1,
        other => {
            return exec_err!(
                "TIME_EXTRACT: unknown unit {other:?}; use EPOCH, SECOND, MINUTE, HOUR, DAY, DOW, DOY, WEEK, MONTH, QUARTER or YEAR"
            );
        }
    })
}

/// (ISO week-based year, ISO week number).
fn iso_week(c: &CivilTime) -> (i64, i64) {
    use chrono::Datelike;
    match chrono::NaiveDate::from_ymd_opt(c.year as i32, c.month, c.day) {
        Some(d) => (
            i64::from(d.iso_week().year()),
            i64::from(d.iso_week().week()),
        ),
        None => (c.year, 1),
    }
}

fn parse_time(s: &str, pattern: Option<&str>, tz: &TimeZone) -> Option<i64> {
    match pattern {
        None => parse_iso_in(s.trim(), tz).ok(),
        Some(p) => eddy_expr::joda::parse(s, p, tz),
    }
}

fn format_time(t: i64, pattern: Option<&str>, tz: &TimeZone) -> String {
    match pattern {
        None => format_iso_in(t, tz),
        Some(p) => eddy_expr::joda::format(t, p, tz),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diff_counts_whole_periods() {
        let day = unit_period("t", "DAY").unwrap();
        assert_eq!(
            periods_between(&day, 0, 86_400_000 * 3 - 1, &TimeZone::Utc),
            2
        );
        let month = unit_period("t", "MONTH").unwrap();
        let jan31 = parse_iso_in("2020-01-31", &TimeZone::Utc).unwrap();
        let mar1 = parse_iso_in("2020-03-01", &TimeZone::Utc).unwrap();
        assert_eq!(periods_between(&month, jan31, mar1, &TimeZone::Utc), 1);
        assert_eq!(periods_between(&month, mar1, jan31, &TimeZone::Utc), -1);
    }

    #[test]
    fn extract_units() {
        let t = parse_iso_in("2016-06-27T10:20:30.456Z", &TimeZone::Utc).unwrap();
        assert_eq!(extract("HOUR", t, &TimeZone::Utc).unwrap(), 10);
        assert_eq!(extract("DOW", t, &TimeZone::Utc).unwrap(), 1);
        assert_eq!(extract("QUARTER", t, &TimeZone::Utc).unwrap(), 2);
        assert_eq!(extract("MILLISECOND", t, &TimeZone::Utc).unwrap(), 456);
        assert!(extract("FORTNIGHT", t, &TimeZone::Utc).is_err());
    }
}
