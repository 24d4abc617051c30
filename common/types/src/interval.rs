//! Half-open time intervals `[start, end)` in epoch milliseconds, with Druid's ISO text forms
//! (`start/end`, `start/period`, `period/end`) and the `_`-separated form used in URLs.

use std::fmt;

use serde_json::Value;

use crate::period::Period;
use crate::time::{MAX_INSTANT, MIN_INSTANT, TimeZone, format_iso, parse_iso};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Interval {
    pub start: i64,
    pub end: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad interval {input:?}: {reason}")]
pub struct IntervalParseError {
    pub input: String,
    pub reason: String,
}

impl Interval {
    /// All time, as Druid prints it.
    pub const ETERNITY: Interval = Interval {
        start: MIN_INSTANT,
        end: MAX_INSTANT,
    };

    pub fn new(start: i64, end: i64) -> Result<Self, IntervalParseError> {
        if end < start {
            return Err(IntervalParseError {
                input: format!("{}/{}", format_iso(start), format_iso(end)),
                reason: "the end is before the start".into(),
            });
        }
        Ok(Interval { start, end })
    }

    pub fn parse(input: &str) -> Result<Self, IntervalParseError> {
        let err = |reason: String| IntervalParseError {
            input: input.to_string(),
            reason,
        };
        let (a, b) = input
            .trim()
            .split_once('/')
            .ok_or_else(|| err("expected start/end, like 2013-01-01/2013-01-02".into()))?;
        let is_period = |s: &str| s.starts_with('P') || s.starts_with('p');
        let parse_t = |s: &str| parse_iso(s).map_err(|e| err(e.to_string()));
        let parse_p = |s: &str| s.parse::<Period>().map_err(|e| err(e.to_string()));
        let (start, end) = match (is_period(a), is_period(b)) {
            (false, false) => (parse_t(a)?, parse_t(b)?),
            (false, true) => {
                let start = parse_t(a)?;
                (start, parse_p(b)?.add_to(start, &TimeZone::Utc, 1))
            }
            (true, false) => {
                let end = parse_t(b)?;
                (parse_p(a)?.add_to(end, &TimeZone::Utc, -1), end)
            }
            (true, true) => return Err(err("both sides are periods".into())),
        };
        if end < start {
            return Err(err("the end is before the start".into()));
        }
        Ok(Interval { start, end })
    }

    /// Druid's URL form replaces `/` with `_` (`2013-01-01_2013-01-02`).
    pub fn parse_url_form(input: &str) -> Result<Self, IntervalParseError> {
        Interval::parse(&input.replacen('_', "/", 1))
    }

    pub fn is_empty(&self) -> bool {
        self.end <= self.start
    }

    pub fn contains(&self, t: i64) -> bool {
        t >= self.start && t < self.end
    }

    pub fn overlaps(&self, other: &Interval) -> bool {
        self.start < other.end && other.start < self.end
    }

    pub fn encloses(&self, other: &Interval) -> bool {
        self.start <= other.start && other.end <= self.end
    }

    pub fn intersect(&self, other: &Interval) -> Option<Interval> {
        let start = self.start.max(other.start);
        let end = self.end.min(other.end);
        (start < end).then_some(Interval { start, end })
    }

    /// `2013-01-01T00:00:00.000Z_2013-01-02T00:00:00.000Z`, safe in paths and URLs.
    pub fn to_path_form(&self) -> String {
        format!("{}_{}", format_iso(self.start), format_iso(self.end)).replace(':', "-")
    }
}

impl fmt::Display for Interval {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", format_iso(self.start), format_iso(self.end))
    }
}

impl serde::Serialize for Interval {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Interval {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Interval::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// Reads a query's `intervals`: a string, an array of strings, or
/// `{"type":"intervals","intervals":[..]}` (also `{"type":"segments",...}` is refused clearly).
pub fn parse_query_intervals(v: &Value) -> Result<Vec<Interval>, String> {
    match v {
        Value::String(s) => Ok(vec![Interval::parse(s).map_err(|e| e.to_string())?]),
        Value::Array(items) => items
            .iter()
            .map(|i| match i {
                Value::String(s) => Interval::parse(s).map_err(|e| e.to_string()),
                other => Err(format!(
                    "an interval is an ISO string like \"2013-01-01/2013-01-02\", got {other}"
                )),
            })
            .collect(),
        Value::Object(o) => match o.get("type").and_then(Value::as_str) {
            Some("intervals") | Some("LegacySegmentSpec") | None => parse_query_intervals(
                o.get("intervals")
                    .ok_or("expected \"intervals\" inside the interval spec")?,
            ),
            Some(other) => Err(format!(
                "unsupported interval spec type {other:?}; use a list of ISO intervals"
            )),
        },
        _ => {
            Err("intervals must be a list of ISO intervals like [\"2013-01-01/2013-01-02\"]".into())
        }
    }
}

/// Sorts intervals and merges overlapping or touching ones.
pub fn condense(mut intervals: Vec<Interval>) -> Vec<Interval> {
    intervals.retain(|i| !i.is_empty());
    intervals.sort();
    let mut out: Vec<Interval> = Vec::with_capacity(intervals.len());
    for iv in intervals {
        match out.last_mut() {
            Some(last) if iv.start <= last.end => last.end = last.end.max(iv.end),
            _ => out.push(iv),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parse_forms() {
        let a = Interval::parse("2013-01-01/2013-01-02").unwrap();
        assert_eq!(
            a.to_string(),
            "2013-01-01T00:00:00.000Z/2013-01-02T00:00:00.000Z"
        );
        assert_eq!(Interval::parse("2013-01-01/P1D").unwrap(), a);
        assert_eq!(Interval::parse("P1D/2013-01-02").unwrap(), a);
        assert_eq!(
            Interval::parse_url_form("2013-01-01_2013-01-02").unwrap(),
            a
        );
        assert!(Interval::parse("2013-01-02/2013-01-01").is_err());
        assert!(Interval::parse("yesterday").is_err());
        let eternity = "-146136543-09-08T08:23:32.096Z/146140482-04-24T15:36:27.903Z";
        assert_eq!(Interval::parse(eternity).unwrap(), Interval::ETERNITY);
        assert_eq!(Interval::ETERNITY.to_string(), eternity);
    }

    #[test]
    fn query_interval_forms() {
        let one = parse_query_intervals(&json!("2013-01-01/2013-01-02")).unwrap();
        let list = parse_query_intervals(&json!(["2013-01-01/2013-01-02"])).unwrap();
        let obj = parse_query_intervals(
            &json!({"type":"intervals","intervals":["2013-01-01/2013-01-02"]}),
        )
        .unwrap();
        assert_eq!(one, list);
        assert_eq!(list, obj);
        assert!(parse_query_intervals(&json!(5)).is_err());
    }

    #[test]
    fn condense_merges() {
        let i = |a, b| Interval { start: a, end: b };
        assert_eq!(
            condense(vec![i(5, 7), i(0, 2), i(2, 3), i(6, 9)]),
            vec![i(0, 3), i(5, 9)]
        );
    }
}
