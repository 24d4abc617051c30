//! Granularities in Druid's JSON forms and as text: parsing with errors that name the problem,
//! printing, serde.

use std::fmt;

use serde::de::Error as _;
use serde_json::{Value, json};

use super::*;

impl fmt::Display for Granularity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.simple_name() {
            Some(n) => f.write_str(n),
            None => f.write_str(&self.to_json().to_string()),
        }
    }
}

impl Granularity {
    /// Druid's JSON form: simple names as upper-case strings, `all`/`none` and custom ones as
    /// objects (`{"type":"none"}`, `{"type":"period",...}`).
    pub fn to_json(&self) -> Value {
        match self {
            Granularity::All => json!({"type": "all"}),
            Granularity::None => json!({"type": "none"}),
            Granularity::Duration { millis, origin } => {
                json!({"type": "duration", "duration": millis, "origin": format_iso(*origin)})
            }
            Granularity::Period { period, tz, origin } => match self.simple_name() {
                Some(name) => Value::String(name.to_ascii_uppercase()),
                None => json!({
                    "type": "period",
                    "period": period.to_string(),
                    "timeZone": tz.name(),
                    "origin": origin.map(format_iso),
                }),
            },
        }
    }

    pub fn from_json(v: &Value) -> Result<Self, String> {
        match v {
            Value::String(s) => Granularity::from_name(s)
                .or_else(|| s.parse::<Period>().ok().filter(|p| !p.is_zero()).map(Granularity::period))
                .ok_or_else(|| unknown_name(s)),
            Value::Object(o) => {
                let ty = o.get("type").and_then(Value::as_str).ok_or("a granularity object needs a \"type\"")?;
                match ty.to_ascii_lowercase().as_str() {
                    "period" => {
                        let period: Period = o
                            .get("period")
                            .and_then(Value::as_str)
                            .ok_or("a period granularity needs \"period\" (like \"P1D\")")?
                            .parse()
                            .map_err(|e: crate::period::PeriodParseError| e.to_string())?;
                        if period.is_zero() {
                            return Err("a period granularity cannot have a zero period".into());
                        }
                        let tz = match o.get("timeZone") {
                            None | Some(Value::Null) => TimeZone::Utc,
                            Some(Value::String(s)) => s.parse::<TimeZone>().map_err(|e| format!("timeZone: {e}"))?,
                            Some(_) => return Err("timeZone must be a string".into()),
                        };
                        let origin = parse_origin(o.get("origin"))?;
                        Ok(Granularity::Period { period, tz, origin })
                    }
                    "duration" => {
                        let millis = match o.get("duration") {
                            Some(Value::Number(n)) => n.as_i64().ok_or("duration must be whole milliseconds")?,
                            Some(Value::String(s)) => s.parse::<i64>().map_err(|_| "duration must be a number of milliseconds")?,
                            _ => return Err("a duration granularity needs \"duration\" in milliseconds".into()),
                        };
                        if millis <= 0 {
                            return Err("duration must be positive".into());
                        }
                        Ok(Granularity::Duration { millis, origin: parse_origin(o.get("origin"))?.unwrap_or(0) })
                    }
                    other => Granularity::from_name(other).ok_or_else(|| unknown_name(other)),
                }
            }
            _ => Err("a granularity is a string like \"day\" or an object like {\"type\":\"period\",\"period\":\"P1D\"}".into()),
        }
    }
}

fn parse_origin(v: Option<&Value>) -> Result<Option<i64>, String> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => parse_iso(s).map(Some).map_err(|e| format!("origin: {e}")),
        Some(Value::Number(n)) => n
            .as_i64()
            .map(Some)
            .ok_or_else(|| "origin must be an ISO time".into()),
        Some(_) => Err("origin must be an ISO time".into()),
    }
}

fn unknown_name(s: &str) -> String {
    let names: Vec<&str> = ["all", "none"]
        .into_iter()
        .chain(SIMPLE.iter().map(|(n, _)| *n))
        .collect();
    format!(
        "unknown granularity {s:?}: expected one of {} or an object like {{\"type\":\"period\",\"period\":\"P1D\"}}",
        names.join(", ")
    )
}

impl serde::Serialize for Granularity {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(s)
    }
}

impl<'de> serde::Deserialize<'de> for Granularity {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Value::deserialize(d)?;
        Granularity::from_json(&v).map_err(D::Error::custom)
    }
}
