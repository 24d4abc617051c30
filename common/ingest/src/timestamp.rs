//! `timestampSpec`: which field holds the event time and how to read it.

use eddy_segment::input::{InputRow, InputValue};
use eddy_types::spec::ingest::TimestampSpec;
use eddy_types::time::{TimeZone, parse_iso};

#[derive(Debug, Clone)]
enum Format {
    Auto,
    Iso,
    Posix,
    Millis,
    Micro,
    Nano,
    Ruby,
    Joda(String),
}

#[derive(Debug, Clone)]
pub struct TimestampParser {
    column: String,
    format: Format,
    missing: Option<i64>,
}

impl TimestampParser {
    pub fn new(spec: &TimestampSpec) -> Result<Self, String> {
        let format = match spec.format.as_str() {
            "auto" | "AUTO" => Format::Auto,
            "iso" | "ISO" => Format::Iso,
            "posix" | "POSIX" => Format::Posix,
            "millis" | "MILLIS" => Format::Millis,
            "micro" | "MICRO" => Format::Micro,
            "nano" | "NANO" => Format::Nano,
            "ruby" | "RUBY" => Format::Ruby,
            pattern => Format::Joda(pattern.to_string()),
        };
        let missing = match &spec.missing_value {
            None => None,
            Some(v) => Some(parse_iso(v).map_err(|e| format!("timestampSpec.missingValue: {e}"))?),
        };
        Ok(TimestampParser {
            column: spec.column.clone(),
            format,
            missing,
        })
    }

    pub fn column(&self) -> &str {
        &self.column
    }

    /// The row's event time in ms, or why it has none.
    pub fn parse(&self, row: &dyn InputRow) -> Result<i64, String> {
        let value = row.get(&self.column);
        let from_number = |v: f64| -> i64 {
            match self.format {
                Format::Posix | Format::Ruby => (v * 1000.0) as i64,
                Format::Micro => (v / 1000.0) as i64,
                Format::Nano => (v / 1_000_000.0) as i64,
                _ => v as i64,
            }
        };
        let parsed = match &value {
            InputValue::Null => None,
            InputValue::Long(v) => Some(match self.format {
                Format::Posix => v.saturating_mul(1000),
                Format::Micro => v / 1000,
                Format::Nano => v / 1_000_000,
                _ => *v,
            }),
            InputValue::Double(v) => Some(from_number(*v)),
            InputValue::Str(s) => {
                let s = s.trim();
                let numeric = || s.parse::<f64>().ok().map(from_number);
                let t = match &self.format {
                    Format::Auto => {
                        if !s.is_empty()
                            && s.bytes().all(|b| b.is_ascii_digit() || b == b'-')
                            && s.len() > 4
                        {
                            s.parse::<i64>().ok()
                        } else {
                            parse_iso(s).ok()
                        }
                    }
                    Format::Iso => parse_iso(s).ok(),
                    Format::Posix
                    | Format::Millis
                    | Format::Micro
                    | Format::Nano
                    | Format::Ruby => numeric(),
                    Format::Joda(p) => eddy_expr::joda::parse(s, p, &TimeZone::Utc),
                };
                match t {
                    Some(t) => Some(t),
                    None => {
                        return Err(format!(
                            "timestamp {:?} in {:?} is unparseable as {}",
                            s,
                            self.column,
                            self.format_name()
                        ));
                    }
                }
            }
            InputValue::Bool(_) | InputValue::List(_) => {
                return Err(format!(
                    "timestamp field {:?} holds {:?}, not a time",
                    self.column, value
                ));
            }
        };
        match parsed.or(self.missing) {
            Some(t) => Ok(t),
            None => Err(format!(
                "timestamp field {:?} is missing or null",
                self.column
            )),
        }
    }

    fn format_name(&self) -> &str {
        match &self.format {
            Format::Auto => "auto",
            Format::Iso => "iso",
            Format::Posix => "posix",
            Format::Millis => "millis",
            Format::Micro => "micro",
            Format::Nano => "nano",
            Format::Ruby => "ruby",
            Format::Joda(p) => p,
        }
    }
}
