//! A deliberately naive evaluator of native queries over plain rows: no indexes, no blocks, no
//! dictionaries, calendar math from chrono. It defines what the engine must answer.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, Datelike, TimeZone, Timelike, Utc};
use regex::Regex;
use serde_json::{Map, Value, json};

/// A cell of a reference row.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Null,
    Str(String),
    Multi(Vec<String>),
    Long(i64),
    Double(f64),
}

#[derive(Debug, Clone)]
pub struct Row {
    pub time: i64,
    pub cells: BTreeMap<String, Cell>,
}

impl Row {
    pub fn get(&self, col: &str) -> Cell {
        if col == "__time" {
            return Cell::Long(self.time);
        }
        self.cells.get(col).cloned().unwrap_or(Cell::Null)
    }

    /// Every value of a column as text (multi-values expand; null is None).
    pub fn texts(&self, col: &str) -> Vec<Option<String>> {
        match self.get(col) {
            Cell::Null => vec![None],
            Cell::Str(s) => vec![Some(s)],
            Cell::Multi(v) if v.is_empty() => vec![None],
            Cell::Multi(v) => v.into_iter().map(Some).collect(),
            Cell::Long(v) => vec![Some(v.to_string())],
            Cell::Double(v) => vec![Some(fmt_double(v))],
        }
    }
}

pub fn fmt_double(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e16 {
        format!("{v:.1}")
    } else {
        format!("{v}")
    }
}

fn iso(t: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(t)
        .unwrap()
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}

fn iso_tz(t: i64, tz: &str) -> String {
    if tz == "UTC" {
        return iso(t);
    }
    let zone: chrono_tz::Tz = tz.parse().unwrap();
    zone.timestamp_millis_opt(t)
        .unwrap()
        .format("%Y-%m-%dT%H:%M:%S%.3f%:z")
        .to_string()
}

fn parse_num(s: &str) -> Option<f64> {
    s.trim().parse::<f64>().ok()
}

/// Three-valued filter result.
fn eval_filter(f: &Value, row: &Row) -> Option<bool> {
    let ty = f["type"].as_str().unwrap();
    let col = f
        .get("dimension")
        .or(f.get("column"))
        .and_then(Value::as_str)
        .unwrap_or("");
    let texts = || row.texts(col);
    // A value predicate over every value of the row; nulls make it unknown.
    let any = |pred: &dyn Fn(&str) -> bool| -> Option<bool> {
        let vals = texts();
        if vals.iter().any(|v| v.as_deref().is_some_and(pred)) {
            return Some(true);
        }
        if vals.iter().any(Option::is_none) {
            None
        } else {
            Some(false)
        }
    };
    let numeric_col = matches!(row.get(col), Cell::Long(_) | Cell::Double(_)) || col == "__time";
    match ty {
        "true" => Some(true),
        "false" => Some(false),
        "not" => eval_filter(&f["field"], row).map(|b| !b),
        "and" => {
            let r: Vec<Option<bool>> = f["fields"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| eval_filter(x, row))
                .collect();
            if r.contains(&Some(false)) {
                Some(false)
            } else if r.contains(&None) {
                None
            } else {
                Some(true)
            }
        }
        "or" => {
            let r: Vec<Option<bool>> = f["fields"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| eval_filter(x, row))
                .collect();
            if r.contains(&Some(true)) {
                Some(true)
            } else if r.contains(&None) {
                None
            } else {
                Some(false)
            }
        }
        "null" => Some(texts().iter().any(Option::is_none)),
        "selector" => match f.get("value").filter(|v| !v.is_null()) {
            None => Some(texts().iter().any(Option::is_none)),
            Some(v) => {
                let want = v
                    .as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| v.to_string());
                if numeric_col {
                    let w = parse_num(&want);
                    any(&|s| w.is_some() && parse_num(s) == w)
                } else {
                    any(&|s| s == want)
                }
            }
        },
        "in" => {
            let values: Vec<Option<String>> = f["values"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().map(str::to_string))
                .collect();
            let has_null = values.contains(&None);
            let vals = texts();
            let hit = vals.iter().any(|v| match v {
                None => has_null,
                Some(s) => values.iter().flatten().any(|w| {
                    if numeric_col {
                        parse_num(w).is_some() && parse_num(w) == parse_num(s)
                    } else {
                        w == s
                    }
                }),
            });
            if hit {
                Some(true)
            } else if vals.iter().any(Option::is_none) && !has_null {
                None
            } else {
                Some(false)
            }
        }
        "bound" => {
            let numeric = f.get("ordering").and_then(Value::as_str) == Some("numeric");
            let lower = f.get("lower").and_then(Value::as_str);
            let upper = f.get("upper").and_then(Value::as_str);
            let ls = f
                .get("lowerStrict")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            let us = f
                .get("upperStrict")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            let test = |s: &str| -> bool {
                let cmp = |a: &str, b: &str| -> Option<Ordering> {
                    if numeric {
                        parse_num(a)?.partial_cmp(&parse_num(b)?)
                    } else {
                        Some(a.cmp(b))
                    }
                };
                let lo_ok = lower.is_none_or(|l| {
                    matches!(cmp(s, l), Some(Ordering::Greater))
                        || (!ls && cmp(s, l) == Some(Ordering::Equal))
                });
                let hi_ok = upper.is_none_or(|u| {
                    matches!(cmp(s, u), Some(Ordering::Less))
                        || (!us && cmp(s, u) == Some(Ordering::Equal))
                });
                lo_ok && hi_ok && (!numeric || parse_num(s).is_some())
            };
            let vals = texts();
            if vals.iter().any(|v| v.as_deref().is_some_and(test)) {
                Some(true)
            } else if vals.iter().any(Option::is_none) {
                // Druid's bound matches null when it has no lower bound.
                if lower.is_none() { Some(true) } else { None }
            } else {
                Some(false)
            }
        }
        "range" => {
            let numeric = matches!(
                f.get("matchValueType").and_then(Value::as_str),
                Some("LONG" | "DOUBLE")
            );
            let lower = f.get("lower").filter(|v| !v.is_null());
            let upper = f.get("upper").filter(|v| !v.is_null());
            let lo_open = f.get("lowerOpen").and_then(Value::as_bool).unwrap_or(false);
            let hi_open = f.get("upperOpen").and_then(Value::as_bool).unwrap_or(false);
            any(&|s: &str| {
                let cmp = |b: &Value| -> Option<Ordering> {
                    if numeric {
                        parse_num(s)?.partial_cmp(&b.as_f64()?)
                    } else {
                        Some(s.cmp(b.as_str()?))
                    }
                };
                lower.is_none_or(|l| {
                    matches!(cmp(l), Some(Ordering::Greater))
                        || (!lo_open && cmp(l) == Some(Ordering::Equal))
                }) && upper.is_none_or(|u| {
                    matches!(cmp(u), Some(Ordering::Less))
                        || (!hi_open && cmp(u) == Some(Ordering::Equal))
                })
            })
        }
        "equals" => {
            let v = &f["matchValue"];
            if let Some(n) = v.as_f64().filter(|_| v.is_number()) {
                any(&|s| parse_num(s) == Some(n))
            } else {
                let want = v.as_str().unwrap().to_string();
                any(&|s| s == want)
            }
        }
        "like" => {
            let pattern = f["pattern"].as_str().unwrap();
            let mut re = String::from("(?s)^");
            for c in pattern.chars() {
                match c {
                    '%' => re.push_str(".*"),
                    '_' => re.push('.'),
                    c => re.push_str(&regex::escape(&c.to_string())),
                }
            }
            re.push('$');
            let re = Regex::new(&re).unwrap();
            any(&|s| re.is_match(s))
        }
        "regex" => {
            let re = Regex::new(f["pattern"].as_str().unwrap()).unwrap();
            any(&|s| re.is_match(s))
        }
        "search" => {
            let needle = f["query"]["value"].as_str().unwrap().to_lowercase();
            any(&|s| s.to_lowercase().contains(&needle))
        }
        "interval" => {
            let ivs: Vec<(i64, i64)> = f["intervals"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| parse_interval(i.as_str().unwrap()))
                .collect();
            any(&|s| {
                s.parse::<i64>()
                    .is_ok_and(|t| ivs.iter().any(|(a, b)| t >= *a && t < *b))
            })
        }
        other => panic!("reference has no filter {other}"),
    }
}

pub fn parse_interval(s: &str) -> (i64, i64) {
    let (a, b) = s.split_once('/').unwrap();
    let p = |x: &str| DateTime::parse_from_rfc3339(x).unwrap().timestamp_millis();
    (p(a), p(b))
}

/// Bucket start of `t` for the granularity JSON, computed with chrono.
pub fn bucket(g: &Value, t: i64) -> i64 {
    let utc = DateTime::<Utc>::from_timestamp_millis(t).unwrap();
    let name = match g {
        Value::String(s) => s.clone(),
        Value::Object(o) => o["type"].as_str().unwrap().to_string(),
        _ => unreachable!(),
    };
    let floor = |step: i64| t.div_euclid(step) * step;
    match name.as_str() {
        "all" => i64::MIN,
        "none" => t,
        "minute" => floor(60_000),
        "fifteen_minute" => floor(900_000),
        "hour" => floor(3_600_000),
        "six_hour" => floor(21_600_000),
        "day" => floor(86_400_000),
        "week" => {
            let day = utc.date_naive();
            let monday =
                day - chrono::Duration::days(i64::from(day.weekday().num_days_from_monday()));
            monday
                .and_hms_opt(0, 0, 0)
                .unwrap()
                .and_utc()
                .timestamp_millis()
        }
        "month" => Utc
            .with_ymd_and_hms(utc.year(), utc.month(), 1, 0, 0, 0)
            .unwrap()
            .timestamp_millis(),
        "quarter" => {
            let m = (utc.month() - 1) / 3 * 3 + 1;
            Utc.with_ymd_and_hms(utc.year(), m, 1, 0, 0, 0)
                .unwrap()
                .timestamp_millis()
        }
        "year" => Utc
            .with_ymd_and_hms(utc.year(), 1, 1, 0, 0, 0)
            .unwrap()
            .timestamp_millis(),
        "period" => {
            // Only P1D and PT1H in a named zone are generated.
            let tz: chrono_tz::Tz = g["timeZone"].as_str().unwrap().parse().unwrap();
            let local = tz.timestamp_millis_opt(t).unwrap();
            let truncated = if g["period"] == "P1D" {
                local.date_naive().and_hms_opt(0, 0, 0).unwrap()
            } else {
                local.date_naive().and_hms_opt(local.hour(), 0, 0).unwrap()
            };
            tz.from_local_datetime(&truncated)
                .earliest()
                .unwrap()
                .timestamp_millis()
        }
        "duration" => {
            let d = g["duration"].as_i64().unwrap();
            let origin = DateTime::parse_from_rfc3339(g["origin"].as_str().unwrap())
                .unwrap()
                .timestamp_millis();
            origin + (t - origin).div_euclid(d) * d
        }
        other => panic!("reference has no granularity {other}"),
    }
}

fn next_bucket(g: &Value, start: i64) -> i64 {
    // Smallest t > start whose bucket differs: step forward in minutes (enough for generated granularities).
    let b = bucket(g, start);
    let mut t = start + 60_000;
    while bucket(g, t) == b {
        t += 60_000;
    }
    bucket(g, t)
}

fn tz_of(g: &Value) -> String {
    g.get("timeZone")
        .and_then(Value::as_str)
        .unwrap_or("UTC")
        .to_string()
}

/// An aggregation's accumulated state.
#[derive(Debug, Clone)]
enum Acc {
    Count(i64),
    Long(Option<i64>),
    Double(Option<f64>),
    Distinct(BTreeSet<String>),
    Timed(Option<(i64, Value)>),
    Text(Option<String>),
}

fn new_acc(a: &Value) -> Acc {
    match a["type"].as_str().unwrap() {
        "count" => Acc::Count(0),
        "longSum" | "longMin" | "longMax" => Acc::Long(None),
        "doubleSum" | "doubleMin" | "doubleMax" => Acc::Double(None),
        "cardinality" | "hyperUnique" => Acc::Distinct(BTreeSet::new()),
        "longFirst" | "longLast" | "stringFirst" | "stringLast" => Acc::Timed(None),
        "stringMin" | "stringMax" => Acc::Text(None),
        "filtered" => new_acc(&a["aggregator"]),
        other => panic!("reference has no aggregator {other}"),
    }
}

fn num_of(row: &Row, col: &str) -> Option<f64> {
    if col == "vs" {
        // The virtual column strlen(s1).
        return match row.get("s1") {
            Cell::Str(s) => Some(s.chars().count() as f64),
            _ => None,
        };
    }
    if col == "vn" {
        // The virtual column notnull(strlen(s1)).
        return Some(if matches!(row.get("s1"), Cell::Str(_)) {
            1.0
        } else {
            0.0
        });
    }
    match row.get(col) {
        Cell::Long(v) => Some(v as f64),
        Cell::Double(v) => Some(v),
        Cell::Str(s) => parse_num(&s),
        Cell::Multi(v) => v.first().and_then(|s| parse_num(s)),
        Cell::Null => None,
    }
}

fn update(a: &Value, acc: &mut Acc, row: &Row) {
    let ty = a["type"].as_str().unwrap();
    let field = a.get("fieldName").and_then(Value::as_str).unwrap_or("");
    match (ty, acc) {
        ("filtered", acc) => {
            if eval_filter(&a["filter"], row) == Some(true) {
                update(&a["aggregator"], acc, row);
            }
        }
        ("count", Acc::Count(c)) => *c += 1,
        (t, Acc::Long(v)) => {
            if let Some(x) = num_of(row, field).map(|f| f as i64) {
                *v = Some(match (*v, t) {
                    (None, _) => x,
                    (Some(p), "longSum") => p + x,
                    (Some(p), "longMin") => p.min(x),
                    (Some(p), _) => p.max(x),
                });
            }
        }
        (t, Acc::Double(v)) => {
            if let Some(x) = num_of(row, field) {
                *v = Some(match (*v, t) {
                    (None, _) => x,
                    (Some(p), "doubleSum") => p + x,
                    (Some(p), "doubleMin") => p.min(x),
                    (Some(p), _) => p.max(x),
                });
            }
        }
        ("cardinality", Acc::Distinct(set)) => {
            for f in a
                .get("fields")
                .or(a.get("fieldNames"))
                .and_then(Value::as_array)
                .unwrap()
            {
                for v in row.texts(f.as_str().unwrap()).into_iter().flatten() {
                    set.insert(v);
                }
            }
        }
        ("hyperUnique", Acc::Distinct(set)) => {
            if let Cell::Multi(v) = row.get(field) {
                set.extend(v);
            }
        }
        (t @ ("stringMin" | "stringMax"), Acc::Text(best)) => {
            // Every value of the row (multi-value rows too), nulls ignored.
            for v in row.texts(field).into_iter().flatten() {
                let better = best
                    .as_ref()
                    .is_none_or(|b| if t == "stringMin" { v < *b } else { v > *b });
                if better {
                    *best = Some(v);
                }
            }
        }
        (t, Acc::Timed(state)) => {
            let value = match (t, row.get(field)) {
                (_, Cell::Null) => return,
                ("stringFirst" | "stringLast", _) => {
                    match row.texts(field).into_iter().next().flatten() {
                        Some(s) => json!(s),
                        None => return,
                    }
                }
                (_, c) => match num_of(
                    &Row {
                        time: row.time,
                        cells: [("x".to_string(), c)].into(),
                    },
                    "x",
                ) {
                    Some(x) => json!(x as i64),
                    None => return,
                },
            };
            let first = t.ends_with("First");
            let better = match state {
                None => true,
                Some((pt, _)) => {
                    if first {
                        row.time < *pt
                    } else {
                        row.time >= *pt
                    }
                }
            };
            if better {
                *state = Some((row.time, value));
            }
        }
        (t, acc) => panic!("reference state mismatch {t} {acc:?}"),
    }
}

fn acc_json(acc: &Acc) -> Value {
    match acc {
        Acc::Count(c) => json!(c),
        Acc::Long(v) => json!(v),
        Acc::Double(v) => json!(v),
        Acc::Distinct(s) => json!(s.len() as f64),
        Acc::Timed(v) => v.as_ref().map_or(Value::Null, |(_, x)| x.clone()),
        Acc::Text(v) => json!(v),
    }
}

fn results(q: &Value, accs: &[Acc]) -> Map<String, Value> {
    let mut m = Map::new();
    let aggs = q["aggregations"].as_array().cloned().unwrap_or_default();
    for (a, acc) in aggs.iter().zip(accs) {
        let name = a
            .get("name")
            .and_then(Value::as_str)
            .or(a["aggregator"]["name"].as_str())
            .unwrap();
        m.insert(name.to_string(), acc_json(acc));
    }
    for p in q["postAggregations"]
        .as_array()
        .cloned()
        .unwrap_or_default()
    {
        let v = post(&p, &m);
        m.insert(
            p["name"].as_str().unwrap().to_string(),
            v.map_or(Value::Null, |x| json!(x)),
        );
    }
    m
}

fn post(p: &Value, m: &Map<String, Value>) -> Option<f64> {
    match p["type"].as_str().unwrap() {
        "fieldAccess" => m
            .get(p["fieldName"].as_str().unwrap())
            .and_then(Value::as_f64),
        "constant" => p["value"].as_f64(),
        "arithmetic" => {
            let vals: Vec<f64> = p["fields"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| post(f, m))
                .collect::<Option<_>>()?;
            let f = p["fn"].as_str().unwrap();
            Some(vals[1..].iter().fold(vals[0], |a, b| match f {
                "+" => a + b,
                "-" => a - b,
                "*" => a * b,
                _ => {
                    if *b == 0.0 {
                        0.0
                    } else {
                        a / b
                    }
                }
            }))
        }
        other => panic!("reference has no post-aggregator {other}"),
    }
}

/// Query intervals clipped to the chunks of the segments that exist.
fn covered(q: &Value, chunks: &[(i64, i64)]) -> Vec<(i64, i64)> {
    let mut out = Vec::new();
    for i in q["intervals"].as_array().unwrap() {
        let (a, b) = parse_interval(i.as_str().unwrap());
        for (c, d) in chunks {
            let (s, e) = (a.max(*c), b.min(*d));
            if s < e {
                out.push((s, e));
            }
        }
    }
    out.sort();
    let mut merged: Vec<(i64, i64)> = Vec::new();
    for (s, e) in out {
        match merged.last_mut() {
            Some(last) if s <= last.1 => last.1 = last.1.max(e),
            _ => merged.push((s, e)),
        }
    }
    merged
}

fn selected<'a>(q: &Value, rows: &'a [Row]) -> Vec<&'a Row> {
    let ivs: Vec<(i64, i64)> = q["intervals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| parse_interval(i.as_str().unwrap()))
        .collect();
    rows.iter()
        .filter(|r| ivs.iter().any(|(a, b)| r.time >= *a && r.time < *b))
        .filter(|r| {
            q.get("filter")
                .is_none_or(|f| f.is_null() || eval_filter(f, r) == Some(true))
        })
        .collect()
}

/// The virtual columns the generated queries define (`VIRTUALS` in main.rs), computed here
/// with chrono rather than the expression language.
fn virtual_texts(row: &Row, name: &str) -> Option<Vec<Option<String>>> {
    match name {
        "vh" => {
            let tz: chrono_tz::Tz = "America/New_York".parse().unwrap();
            let hour = Utc
                .timestamp_millis_opt(row.time)
                .unwrap()
                .with_timezone(&tz)
                .hour();
            Some(vec![Some(hour.to_string())])
        }
        "vl" => Some(vec![match row.get("l") {
            Cell::Long(v) => Some((v + 1).to_string()),
            _ => None,
        }]),
        "vu" => Some(vec![match row.get("s1") {
            Cell::Str(s) => Some(s.to_uppercase()),
            _ => None,
        }]),
        _ => None,
    }
}

fn group_values(row: &Row, dims: &[Value]) -> Vec<Vec<Option<String>>> {
    // Cartesian product of every dimension's values (multi-values explode).
    let mut out: Vec<Vec<Option<String>>> = vec![vec![]];
    for d in dims {
        let name = d
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| d["dimension"].as_str().unwrap().to_string());
        let vals = virtual_texts(row, &name).unwrap_or_else(|| row.texts(&name));
        out = out
            .into_iter()
            .flat_map(|prefix| {
                vals.iter().map(move |v| {
                    let mut p = prefix.clone();
                    p.push(v.clone());
                    p
                })
            })
            .collect();
    }
    out
}

fn dim_out(d: &Value) -> (String, bool) {
    match d {
        Value::String(s) => (s.clone(), false),
        o => (
            o["outputName"]
                .as_str()
                .or(o["dimension"].as_str())
                .unwrap()
                .to_string(),
            o.get("outputType").and_then(Value::as_str) == Some("LONG"),
        ),
    }
}

fn dim_value(v: &Option<String>, long: bool) -> Value {
    match (v, long) {
        (None, _) => Value::Null,
        (Some(s), true) => json!(parse_num(s).unwrap() as i64),
        (Some(s), false) => json!(s),
    }
}

fn cmp_opt(a: &Option<String>, b: &Option<String>, numeric: bool) -> Ordering {
    match (a, b) {
        (None, None) => Ordering::Equal,
        (None, _) => Ordering::Less,
        (_, None) => Ordering::Greater,
        (Some(x), Some(y)) => {
            if numeric {
                parse_num(x)
                    .partial_cmp(&parse_num(y))
                    .unwrap_or(Ordering::Equal)
            } else {
                x.cmp(y)
            }
        }
    }
}

pub fn run(q: &Value, rows: &[Row], chunks: &[(i64, i64)]) -> Value {
    let sel = selected(q, rows);
    let g = q.get("granularity").cloned().unwrap_or(json!("all"));
    let is_all = g == json!("all");
    let cov = covered(q, chunks);
    let all_ts = cov
        .first()
        .map(|c| c.0)
        .unwrap_or_else(|| parse_interval(q["intervals"][0].as_str().unwrap()).0);
    let aggs = q["aggregations"].as_array().cloned().unwrap_or_default();
    let fresh = || aggs.iter().map(new_acc).collect::<Vec<_>>();
    let tz = tz_of(&g);
    match q["queryType"].as_str().unwrap() {
        "timeseries" => {
            let mut buckets: BTreeMap<i64, Vec<Acc>> = BTreeMap::new();
            for r in &sel {
                let accs = buckets
                    .entry(if is_all { i64::MIN } else { bucket(&g, r.time) })
                    .or_insert_with(fresh);
                aggs.iter()
                    .zip(accs.iter_mut())
                    .for_each(|(a, acc)| update(a, acc, r));
            }
            let skip = q["context"]["skipEmptyBuckets"] == json!(true);
            let mut keys: Vec<i64> = buckets.keys().copied().collect();
            if is_all {
                keys = if cov.is_empty() && buckets.is_empty() {
                    vec![]
                } else {
                    vec![i64::MIN]
                };
            } else if !skip {
                for (a, b) in &cov {
                    let mut s = bucket(&g, *a);
                    while s < *b {
                        keys.push(s);
                        s = next_bucket(&g, s);
                    }
                }
                keys.sort();
                keys.dedup();
            }
            if q["descending"] == json!(true) {
                keys.reverse();
            }
            if let Some(l) = q.get("limit").and_then(Value::as_u64) {
                keys.truncate(l as usize);
            }
            let mut out: Vec<Value> = Vec::new();
            let mut total = fresh();
            for k in &keys {
                let accs = buckets.get(k).cloned().unwrap_or_else(fresh);
                let ts = if is_all { iso(all_ts) } else { iso_tz(*k, &tz) };
                out.push(json!({"timestamp": ts, "result": results(q, &accs)}));
                for r in &sel {
                    let b = if is_all { i64::MIN } else { bucket(&g, r.time) };
                    if b == *k {
                        aggs.iter()
                            .zip(total.iter_mut())
                            .for_each(|(a, acc)| update(a, acc, r));
                    }
                }
            }
            if q["context"]["grandTotal"] == json!(true) {
                out.push(json!({"timestamp": null, "result": results(q, &total)}));
            }
            Value::Array(out)
        }
        "topN" => {
            let dim = &q["dimension"];
            let (out_name, long) = dim_out(dim);
            let mut buckets: BTreeMap<i64, BTreeMap<Vec<Option<String>>, Vec<Acc>>> =
                BTreeMap::new();
            for r in &sel {
                for key in group_values(r, std::slice::from_ref(dim)) {
                    let accs = buckets
                        .entry(if is_all { i64::MIN } else { bucket(&g, r.time) })
                        .or_default()
                        .entry(key)
                        .or_insert_with(fresh);
                    aggs.iter()
                        .zip(accs.iter_mut())
                        .for_each(|(a, acc)| update(a, acc, r));
                }
            }
            let threshold = q["threshold"].as_u64().unwrap() as usize;
            let mut out = Vec::new();
            for (b, groups) in buckets {
                let mut rows: Vec<(Option<String>, Map<String, Value>)> = groups
                    .into_iter()
                    .map(|(k, accs)| (k[0].clone(), results(q, &accs)))
                    .collect();
                let metric = &q["metric"];
                let by_dim =
                    |a: &(Option<String>, Map<String, Value>),
                     b: &(Option<String>, Map<String, Value>)| {
                        cmp_opt(&a.0, &b.0, long)
                    };
                match metric {
                    Value::String(m) => rows.sort_by(|a, b| {
                        let (x, y) = (a.1[m].as_f64(), b.1[m].as_f64());
                        let o = match (x, y) {
                            (Some(x), Some(y)) => y.partial_cmp(&x).unwrap(),
                            (Some(_), None) => Ordering::Less,
                            (None, Some(_)) => Ordering::Greater,
                            _ => Ordering::Equal,
                        };
                        o.then_with(|| by_dim(a, b))
                    }),
                    m if m["type"] == "inverted" => {
                        let name = m["metric"].as_str().unwrap();
                        rows.sort_by(|a, b| {
                            let (x, y) = (a.1[name].as_f64(), b.1[name].as_f64());
                            let o = match (x, y) {
                                (Some(x), Some(y)) => x.partial_cmp(&y).unwrap(),
                                (Some(_), None) => Ordering::Greater,
                                (None, Some(_)) => Ordering::Less,
                                _ => Ordering::Equal,
                            };
                            o.then_with(|| by_dim(a, b))
                        })
                    }
                    _ => rows.sort_by(|a, b| cmp_opt(&a.0, &b.0, false)),
                }
                rows.truncate(threshold);
                let result: Vec<Value> = rows
                    .into_iter()
                    .map(|(k, mut m)| {
                        m.insert(out_name.clone(), dim_value(&k, long));
                        Value::Object(m)
                    })
                    .collect();
                let ts = if is_all { iso(all_ts) } else { iso_tz(b, &tz) };
                out.push(json!({"timestamp": ts, "result": result}));
            }
            Value::Array(out)
        }
        "groupBy" => {
            let dims = q["dimensions"].as_array().cloned().unwrap_or_default();
            let mut groups: BTreeMap<(i64, Vec<Option<String>>), Vec<Acc>> = BTreeMap::new();
            for r in &sel {
                for key in group_values(r, &dims) {
                    let accs = groups
                        .entry((if is_all { i64::MIN } else { bucket(&g, r.time) }, key))
                        .or_insert_with(fresh);
                    aggs.iter()
                        .zip(accs.iter_mut())
                        .for_each(|(a, acc)| update(a, acc, r));
                }
            }
            let outs: Vec<(String, bool)> = dims.iter().map(dim_out).collect();
            // (bucket, key, event)
            type Event = (i64, Vec<Option<String>>, Map<String, Value>);
            let mut events: Vec<Event> = groups
                .into_iter()
                .map(|((b, key), accs)| {
                    let mut m = results(q, &accs);
                    for ((name, long), v) in outs.iter().zip(&key) {
                        m.insert(name.clone(), dim_value(v, *long));
                    }
                    (b, key, m)
                })
                .collect();
            if let Some(h) = q.get("having") {
                let name = h["aggregation"].as_str().unwrap();
                let v = h["value"].as_f64().unwrap();
                events.retain(|e| e.2[name].as_f64().is_some_and(|x| x > v));
            }
            let order = q["limitSpec"]["columns"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            events.sort_by(|a, b| {
                let mut o = a.0.cmp(&b.0);
                for c in &order {
                    if o != Ordering::Equal {
                        break;
                    }
                    let name = c["dimension"].as_str().unwrap();
                    let base = match (&a.2[name], &b.2[name]) {
                        (Value::String(x), Value::String(y)) => x.cmp(y),
                        (Value::Null, Value::Null) => Ordering::Equal,
                        (Value::Null, _) => Ordering::Less,
                        (_, Value::Null) => Ordering::Greater,
                        (x, y) => match (x.as_f64(), y.as_f64()) {
                            (Some(x), Some(y)) => x.partial_cmp(&y).unwrap(),
                            (None, Some(_)) => Ordering::Less,
                            (Some(_), None) => Ordering::Greater,
                            _ => Ordering::Equal,
                        },
                    };
                    o = if c["direction"] == "descending" {
                        base.reverse()
                    } else {
                        base
                    };
                }
                if o != Ordering::Equal {
                    return o;
                }
                for (i, (_, long)) in outs.iter().enumerate() {
                    let c = cmp_opt(&a.1[i], &b.1[i], *long);
                    if c != Ordering::Equal {
                        return c;
                    }
                }
                Ordering::Equal
            });
            let limit = q["limitSpec"]["limit"]
                .as_u64()
                .map_or(usize::MAX, |l| l as usize);
            let offset = q["limitSpec"]["offset"].as_u64().unwrap_or(0) as usize;
            Value::Array(
                events
                    .into_iter()
                    .skip(offset)
                    .take(limit)
                    .map(|(b, _, m)| json!({"version": "v1", "timestamp": if is_all { iso(all_ts) } else { iso_tz(b, &tz) }, "event": m}))
                    .collect(),
            )
        }
        "timeBoundary" => {
            let times: Vec<i64> = sel.iter().map(|r| r.time).collect();
            match (times.iter().min(), times.iter().max()) {
                (Some(lo), Some(hi)) => {
                    json!([{"timestamp": iso(*lo), "result": {"minTime": iso(*lo), "maxTime": iso(*hi)}}])
                }
                _ => json!([]),
            }
        }
        "scan" => {
            // Time-ordered scans only (row order inside segments is the engine's business).
            let cols: Vec<String> = q["columns"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c.as_str().unwrap().to_string())
                .collect();
            let mut rows: Vec<&Row> = sel;
            rows.sort_by_key(|r| r.time);
            if q["order"] == "descending" {
                rows.reverse();
            }
            let offset = q.get("offset").and_then(Value::as_u64).unwrap_or(0) as usize;
            let limit = q
                .get("limit")
                .and_then(Value::as_u64)
                .map_or(usize::MAX, |l| l as usize);
            let events: Vec<Value> = rows
                .into_iter()
                .skip(offset)
                .take(limit)
                .map(|r| {
                    let mut m = Map::new();
                    for c in &cols {
                        let v = match r.get(c) {
                            Cell::Null => Value::Null,
                            Cell::Str(s) => json!(s),
                            Cell::Multi(v) if v.is_empty() => Value::Null,
                            Cell::Multi(v) if v.len() == 1 => json!(v[0]),
                            Cell::Multi(v) => json!(v),
                            Cell::Long(x) => json!(x),
                            Cell::Double(x) => json!(x),
                        };
                        m.insert(c.clone(), v);
                    }
                    Value::Object(m)
                })
                .collect();
            if events.is_empty() {
                json!([])
            } else {
                json!([{"segmentId": null, "columns": cols, "events": events}])
            }
        }
        "search" => {
            let needle = q["query"]["value"].as_str().unwrap().to_lowercase();
            let dims: Vec<String> = q["searchDimensions"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d.as_str().unwrap().to_string())
                .collect();
            let mut counts: HashMap<(String, String), u64> = HashMap::new();
            for r in &sel {
                for d in &dims {
                    for v in r.texts(d).into_iter().flatten() {
                        if v.to_lowercase().contains(&needle) {
                            *counts.entry((d.clone(), v)).or_default() += 1;
                        }
                    }
                }
            }
            let mut hits: Vec<((String, String), u64)> = counts.into_iter().collect();
            hits.sort_by(|a, b| a.0.1.cmp(&b.0.1).then_with(|| a.0.0.cmp(&b.0.0)));
            if hits.is_empty() {
                return json!([]);
            }
            let start = parse_interval(q["intervals"][0].as_str().unwrap()).0;
            json!([{"timestamp": iso(start), "result": hits.into_iter().map(|((d, v), c)| json!({"dimension": d, "value": v, "count": c})).collect::<Vec<_>>()}])
        }
        other => panic!("reference has no query type {other}"),
    }
}
