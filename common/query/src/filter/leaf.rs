//! Leaf filters compiled into a string predicate (for dictionaries), a numeric predicate (for
//! numeric columns and `__time`) and whether nulls match.

use std::cmp::Ordering;
use std::collections::HashSet;
use std::ops::Bound;

use regex::Regex;
use roaring::{MultiOps, RoaringBitmap};
use serde_json::Value;

use eddy_segment::{BLOCK_ROWS, ColumnRef, LongIndex, NumericColumn, SegmentReader, StringColumn};
use eddy_types::TIME_COLUMN;
use eddy_types::spec::{FilterSpec, SearchQuerySpec, StringComparator};

use super::{Tri, all_rows};
use crate::compare::{NumLit, compare_strings};
use crate::error::QueryError;

type TextFn = Box<dyn Fn(&str) -> bool + Send + Sync>;

pub enum StrPred {
    Never,
    Eq(String),
    In(HashSet<String>),
    /// Lexicographic range (dictionary order), bounds with strictness.
    LexRange {
        lower: Option<(String, bool)>,
        upper: Option<(String, bool)>,
    },
    Fn(TextFn),
}

impl StrPred {
    pub fn test(&self, s: &str) -> bool {
        match self {
            StrPred::Never => false,
            StrPred::Eq(v) => s == v,
            StrPred::In(set) => set.contains(s),
            StrPred::LexRange { lower, upper } => {
                lower.as_ref().is_none_or(|(l, strict)| {
                    if *strict {
                        s > l.as_str()
                    } else {
                        s >= l.as_str()
                    }
                }) && upper.as_ref().is_none_or(|(u, strict)| {
                    if *strict {
                        s < u.as_str()
                    } else {
                        s <= u.as_str()
                    }
                })
            }
            StrPred::Fn(f) => f(s),
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct NumRange {
    pub lo: Option<(NumLit, bool)>,
    pub hi: Option<(NumLit, bool)>,
}

impl NumRange {
    fn test_long(&self, v: i64) -> bool {
        self.lo.is_none_or(|(l, strict)| {
            let o = l.cmp_long(v);
            o == Ordering::Greater || (!strict && o == Ordering::Equal)
        }) && self.hi.is_none_or(|(h, strict)| {
            let o = h.cmp_long(v);
            o == Ordering::Less || (!strict && o == Ordering::Equal)
        })
    }

    fn test_double(&self, v: f64) -> bool {
        self.lo.is_none_or(|(l, strict)| {
            if strict {
                v > l.as_f64()
            } else {
                v >= l.as_f64()
            }
        }) && self.hi.is_none_or(|(h, strict)| {
            if strict {
                v < h.as_f64()
            } else {
                v <= h.as_f64()
            }
        })
    }

    /// Inclusive i64 bounds, for index lookups; None when the range holds no whole number.
    fn long_bounds(&self) -> (Bound<i64>, Bound<i64>) {
        let lo = match self.lo {
            None => Bound::Unbounded,
            Some((NumLit::Long(v), strict)) => {
                if strict {
                    Bound::Excluded(v)
                } else {
                    Bound::Included(v)
                }
            }
            Some((NumLit::Double(d), strict)) => {
                let c = d.ceil();
                if strict && c == d {
                    Bound::Excluded(clamp(c))
                } else {
                    Bound::Included(clamp(c))
                }
            }
        };
        let hi = match self.hi {
            None => Bound::Unbounded,
            Some((NumLit::Long(v), strict)) => {
                if strict {
                    Bound::Excluded(v)
                } else {
                    Bound::Included(v)
                }
            }
            Some((NumLit::Double(d), strict)) => {
                let f = d.floor();
                if strict && f == d {
                    Bound::Excluded(clamp(f))
                } else {
                    Bound::Included(clamp(f))
                }
            }
        };
        (lo, hi)
    }
}

fn clamp(d: f64) -> i64 {
    if d >= i64::MAX as f64 {
        i64::MAX
    } else if d <= i64::MIN as f64 {
        i64::MIN
    } else {
        d as i64
    }
}

pub enum NumPred {
    Never,
    /// Matches if any range matches.
    Ranges(Vec<NumRange>),
    Set(Vec<NumLit>),
    /// Tests the number's text form.
    Text(StrPred),
}

impl NumPred {
    pub fn test_long(&self, v: i64) -> bool {
        match self {
            NumPred::Never => false,
            NumPred::Ranges(rs) => rs.iter().any(|r| r.test_long(v)),
            NumPred::Set(set) => set.iter().any(|x| x.cmp_long(v) == Ordering::Equal),
            NumPred::Text(p) => p.test(itoa::Buffer::new().format(v)),
        }
    }

    pub fn test_double(&self, v: f64) -> bool {
        match self {
            NumPred::Never => false,
            NumPred::Ranges(rs) => rs.iter().any(|r| r.test_double(v)),
            NumPred::Set(set) => set.iter().any(|x| x.as_f64() == v),
            NumPred::Text(p) => p.test(&eddy_segment::hll::format_double(v)),
        }
    }

    /// Whether the predicate can hold anywhere in [lo, hi]: Some(true) = for every value,
    /// Some(false) = for none, None = must test values.
    fn on_range(&self, lo: f64, hi: f64, lo_l: i64, hi_l: i64, is_long: bool) -> Option<bool> {
        match self {
            NumPred::Never => Some(false),
            NumPred::Ranges(rs) => {
                let all = rs.iter().any(|r| {
                    if is_long {
                        r.test_long(lo_l) && r.test_long(hi_l)
                    } else {
                        r.test_double(lo) && r.test_double(hi)
                    }
                });
                if all {
                    return Some(true);
                }
                let none = rs.iter().all(|r| {
                    let below = r.hi.is_some_and(|(h, strict)| {
                        let o = if is_long {
                            h.cmp_long(lo_l)
                        } else {
                            h.cmp_double(lo)
                        };
                        o == Ordering::Greater || (strict && o == Ordering::Equal)
                    });
                    let above = r.lo.is_some_and(|(l, strict)| {
                        let o = if is_long {
                            l.cmp_long(hi_l)
                        } else {
                            l.cmp_double(hi)
                        };
                        o == Ordering::Less || (strict && o == Ordering::Equal)
                    });
                    below || above
                });
                if none { Some(false) } else { None }
            }
            NumPred::Set(set) => {
                let any_inside = set.iter().any(|x| x.as_f64() >= lo && x.as_f64() <= hi);
                if !any_inside { Some(false) } else { None }
            }
            NumPred::Text(_) => None,
        }
    }
}

pub struct Leaf {
    pub column: String,
    pub str_pred: StrPred,
    pub num_pred: NumPred,
    /// Null rows match (IS NULL, `in` with null, `bound` without lower bound).
    pub match_null: bool,
}

fn value_text(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        other => Some(other.to_string()),
    }
}

fn like_regex(pattern: &str, escape: Option<char>) -> Result<Regex, QueryError> {
    let mut re = String::from("(?s)^");
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        if Some(c) == escape {
            if let Some(next) = chars.next() {
                re.push_str(&regex::escape(&next.to_string()));
            }
            continue;
        }
        match c {
            '%' => re.push_str(".*"),
            '_' => re.push('.'),
            other => re.push_str(&regex::escape(&other.to_string())),
        }
    }
    re.push('$');
    Regex::new(&re).map_err(|e| QueryError::Invalid(format!("like pattern {pattern:?}: {e}")))
}

/// A LIKE matcher: patterns made only of literals and `%` match by prefix, suffix and ordered
/// substrings (no regex); others compile to a regex.
pub fn like_matcher(pattern: &str, escape: Option<char>) -> Result<TextFn, QueryError> {
    if escape.is_some() || pattern.contains('_') {
        let re = like_regex(pattern, escape)?;
        return Ok(Box::new(move |s: &str| re.is_match(s)));
    }
    let parts: Vec<String> = pattern.split('%').map(str::to_string).collect();
    if parts.len() == 1 {
        let exact = parts[0].clone();
        return Ok(Box::new(move |s: &str| s == exact));
    }
    let (prefix, suffix) = (parts[0].clone(), parts[parts.len() - 1].clone());
    // SIMD substring finders, built once per filter.
    let middle: Vec<memchr::memmem::Finder<'static>> = parts[1..parts.len() - 1]
        .iter()
        .filter(|p| !p.is_empty())
        .map(|p| memchr::memmem::Finder::new(p.as_bytes()).into_owned())
        .collect();
    Ok(Box::new(move |s: &str| {
        // Empty affixes skip the comparison: memcmp on an empty String's dangling pointer
        // takes a slow microcode assist on AVX-512 machines (measured: 20x slower filters).
        if s.len() < prefix.len() + suffix.len()
            || (!prefix.is_empty() && !s.starts_with(prefix.as_str()))
            || (!suffix.is_empty() && !s.ends_with(suffix.as_str()))
        {
            return false;
        }
        let mut rest = &s.as_bytes()[prefix.len()..s.len() - suffix.len()];
        for m in &middle {
            match m.find(rest) {
                Some(i) => rest = &rest[i + m.needle().len()..],
                None => return false,
            }
        }
        true
    }))
}

fn regex_of(pattern: &str) -> Result<Regex, QueryError> {
    Regex::new(pattern).map_err(|e| QueryError::Invalid(format!("regex {pattern:?}: {e}")))
}

pub fn search_predicate(q: &SearchQuerySpec) -> Result<TextFn, QueryError> {
    Ok(match q.clone() {
        SearchQuerySpec::InsensitiveContains { value } => {
            let needle = value.to_lowercase();
            Box::new(move |s: &str| s.to_lowercase().contains(&needle))
        }
        SearchQuerySpec::Contains {
            value,
            case_sensitive,
        } => {
            if case_sensitive {
                Box::new(move |s: &str| s.contains(&value))
            } else {
                let needle = value.to_lowercase();
                Box::new(move |s: &str| s.to_lowercase().contains(&needle))
            }
        }
        SearchQuerySpec::Fragment {
            values,
            case_sensitive,
        } => {
            let values: Vec<String> = if case_sensitive {
                values
            } else {
                values.iter().map(|v| v.to_lowercase()).collect()
            };
            Box::new(move |s: &str| {
                let hay = if case_sensitive {
                    s.to_string()
                } else {
                    s.to_lowercase()
                };
                values.iter().all(|v| hay.contains(v.as_str()))
            })
        }
        SearchQuerySpec::Regex { pattern } => {
            let re = regex_of(&pattern)?;
            Box::new(move |s: &str| re.is_match(s))
        }
    })
}

fn numeric_type(t: Option<&str>, v: &Value) -> bool {
    match t.map(str::to_ascii_uppercase).as_deref() {
        Some("LONG") | Some("DOUBLE") | Some("FLOAT") => true,
        Some(_) => false,
        None => v.is_number(),
    }
}

impl Leaf {
    pub fn compile(spec: &FilterSpec) -> Result<Leaf, QueryError> {
        let leaf = |column: &str, str_pred, num_pred, match_null| Leaf {
            column: column.to_string(),
            str_pred,
            num_pred,
            match_null,
        };
        Ok(match spec {
            FilterSpec::Selector {
                dimension,
                value: Some(v),
                ..
            } => leaf(
                dimension,
                StrPred::Eq(v.clone()),
                NumLit::parse(v).map_or(NumPred::Never, |n| NumPred::Set(vec![n])),
                false,
            ),
            FilterSpec::Selector {
                dimension,
                value: None,
                ..
            }
            | FilterSpec::Null { column: dimension } => {
                leaf(dimension, StrPred::Never, NumPred::Never, true)
            }
            FilterSpec::Equals {
                column,
                match_value_type,
                match_value,
            } => {
                let text = value_text(match_value).unwrap_or_default();
                let num = match match_value {
                    Value::Number(n) => n
                        .as_i64()
                        .map(NumLit::Long)
                        .or(n.as_f64().map(NumLit::Double)),
                    _ => NumLit::parse(&text),
                };
                let numeric = numeric_type(match_value_type.as_deref(), match_value);
                let str_pred = match (numeric, num) {
                    (true, Some(n)) => StrPred::Fn(Box::new(move |s| {
                        NumLit::parse(s).is_some_and(|x| x.as_f64() == n.as_f64())
                    })),
                    _ => StrPred::Eq(text),
                };
                leaf(
                    column,
                    str_pred,
                    num.map_or(NumPred::Never, |n| NumPred::Set(vec![n])),
                    false,
                )
            }
            FilterSpec::In {
                dimension, values, ..
            } => {
                let set: HashSet<String> = values.iter().flatten().cloned().collect();
                let nums = values
                    .iter()
                    .flatten()
                    .filter_map(|v| NumLit::parse(v))
                    .collect();
                leaf(
                    dimension,
                    StrPred::In(set),
                    NumPred::Set(nums),
                    values.iter().any(Option::is_none),
                )
            }
            FilterSpec::Bound {
                dimension,
                lower,
                upper,
                lower_strict,
                upper_strict,
                ordering,
                alpha_numeric,
                ..
            } => {
                let ordering = if *alpha_numeric {
                    StringComparator::Alphanumeric
                } else {
                    ordering.unwrap_or_default()
                };
                let lo = lower.clone().map(|l| (l, *lower_strict));
                let hi = upper.clone().map(|u| (u, *upper_strict));
                let str_pred = match ordering {
                    StringComparator::Lexicographic => StrPred::LexRange {
                        lower: lo.clone(),
                        upper: hi.clone(),
                    },
                    other => {
                        let (lo, hi) = (lo.clone(), hi.clone());
                        StrPred::Fn(Box::new(move |s: &str| {
                            if other == StringComparator::Numeric && NumLit::parse(s).is_none() {
                                return false;
                            }
                            lo.as_ref().is_none_or(|(l, strict)| {
                                let o = compare_strings(other, s, l);
                                o == Ordering::Greater || (!strict && o == Ordering::Equal)
                            }) && hi.as_ref().is_none_or(|(h, strict)| {
                                let o = compare_strings(other, s, h);
                                o == Ordering::Less || (!strict && o == Ordering::Equal)
                            })
                        }))
                    }
                };
                let num_pred = if ordering == StringComparator::Numeric {
                    let parse =
                        |b: &Option<(String, bool)>| -> Result<Option<(NumLit, bool)>, QueryError> {
                            match b {
                                None => Ok(None),
                                Some((s, strict)) => {
                                    NumLit::parse(s).map(|n| Some((n, *strict))).ok_or_else(|| {
                                        QueryError::Invalid(format!(
                                            "bound on {dimension:?}: {s:?} is not a number"
                                        ))
                                    })
                                }
                            }
                        };
                    NumPred::Ranges(vec![NumRange {
                        lo: parse(&lo)?,
                        hi: parse(&hi)?,
                    }])
                } else {
                    NumPred::Text(StrPred::LexRange {
                        lower: lo.clone(),
                        upper: hi.clone(),
                    })
                };
                let num_pred = if ordering == StringComparator::Lexicographic
                    || ordering == StringComparator::Numeric
                {
                    num_pred
                } else {
                    let (lo, hi) = (lo.clone(), hi.clone());
                    NumPred::Text(StrPred::Fn(Box::new(move |s: &str| {
                        lo.as_ref().is_none_or(|(l, strict)| {
                            let o = compare_strings(ordering, s, l);
                            o == Ordering::Greater || (!strict && o == Ordering::Equal)
                        }) && hi.as_ref().is_none_or(|(h, strict)| {
                            let o = compare_strings(ordering, s, h);
                            o == Ordering::Less || (!strict && o == Ordering::Equal)
                        })
                    })))
                };
                leaf(dimension, str_pred, num_pred, lower.is_none())
            }
            FilterSpec::Range {
                column,
                match_value_type,
                lower,
                upper,
                lower_open,
                upper_open,
            } => {
                let lower = lower.as_ref().filter(|v| !v.is_null());
                let upper = upper.as_ref().filter(|v| !v.is_null());
                let sample = lower.or(upper).cloned().unwrap_or(Value::Null);
                if numeric_type(match_value_type.as_deref(), &sample) {
                    let parse = |v: Option<&Value>,
                                 open: bool|
                     -> Result<Option<(NumLit, bool)>, QueryError> {
                        match v {
                            None => Ok(None),
                            Some(v) => {
                                let text = value_text(v).unwrap_or_default();
                                NumLit::parse(&text)
                                    .map(|n| Some((n, open)))
                                    .ok_or_else(|| {
                                        QueryError::Invalid(format!(
                                            "range on {column:?}: {text:?} is not a number"
                                        ))
                                    })
                            }
                        }
                    };
                    let range = NumRange {
                        lo: parse(lower, *lower_open)?,
                        hi: parse(upper, *upper_open)?,
                    };
                    let str_pred = StrPred::Fn(Box::new(move |s: &str| {
                        NumLit::parse(s).is_some_and(|n| match n {
                            NumLit::Long(v) => range.test_long(v),
                            NumLit::Double(v) => range.test_double(v),
                        })
                    }));
                    leaf(column, str_pred, NumPred::Ranges(vec![range]), false)
                } else {
                    let lo = lower.and_then(value_text).map(|l| (l, *lower_open));
                    let hi = upper.and_then(value_text).map(|u| (u, *upper_open));
                    leaf(
                        column,
                        StrPred::LexRange {
                            lower: lo.clone(),
                            upper: hi.clone(),
                        },
                        NumPred::Text(StrPred::LexRange {
                            lower: lo,
                            upper: hi,
                        }),
                        false,
                    )
                }
            }
            FilterSpec::Like {
                dimension,
                pattern,
                escape,
                ..
            } => {
                let esc = escape.as_deref().and_then(|e| e.chars().next());
                leaf(
                    dimension,
                    StrPred::Fn(like_matcher(pattern, esc)?),
                    NumPred::Text(StrPred::Fn(like_matcher(pattern, esc)?)),
                    false,
                )
            }
            FilterSpec::Regex {
                dimension, pattern, ..
            } => {
                let re = regex_of(pattern)?;
                let re2 = re.clone();
                leaf(
                    dimension,
                    StrPred::Fn(Box::new(move |s| re.is_match(s))),
                    NumPred::Text(StrPred::Fn(Box::new(move |s| re2.is_match(s)))),
                    false,
                )
            }
            FilterSpec::Search {
                dimension, query, ..
            } => leaf(
                dimension,
                StrPred::Fn(search_predicate(query)?),
                NumPred::Text(StrPred::Fn(search_predicate(query)?)),
                false,
            ),
            FilterSpec::Interval {
                dimension,
                intervals,
                ..
            } => {
                let ranges: Vec<NumRange> = intervals
                    .iter()
                    .map(|i| NumRange {
                        lo: Some((NumLit::Long(i.start), false)),
                        hi: Some((NumLit::Long(i.end), true)),
                    })
                    .collect();
                let rs = ranges.clone();
                let str_pred = StrPred::Fn(Box::new(move |s: &str| {
                    s.trim()
                        .parse::<i64>()
                        .is_ok_and(|v| rs.iter().any(|r| r.test_long(v)))
                }));
                leaf(dimension, str_pred, NumPred::Ranges(ranges), false)
            }
            other => {
                return Err(QueryError::Internal(format!(
                    "not a leaf filter: {other:?}"
                )));
            }
        })
    }

    pub fn evaluate(&self, segment: &dyn SegmentReader) -> Result<Tri, QueryError> {
        let n = segment.num_rows();
        if self.column == TIME_COLUMN {
            let yes = scan_numeric(segment.time(), &self.num_pred, n)?;
            return Ok(Tri {
                yes,
                unknown: RoaringBitmap::new(),
            });
        }
        let (mut yes, nulls) = match segment.column(&self.column) {
            None => (RoaringBitmap::new(), all_rows(n)),
            Some(ColumnRef::String(col)) => {
                (self.string_rows(col, n)?, col.bitmap(0)?.into_owned())
            }
            Some(ColumnRef::Numeric(col)) => {
                let yes = match col.index() {
                    Some(index) => indexed_rows(index, &self.num_pred)?,
                    None => scan_numeric(col, &self.num_pred, n)?,
                };
                let nulls = col.nulls().cloned().unwrap_or_default();
                (yes - &nulls, nulls)
            }
            Some(ColumnRef::Sketch(_)) => {
                return Err(QueryError::Invalid(format!(
                    "cannot filter on {:?}: it is a hyperUnique sketch column",
                    self.column
                )));
            }
        };
        if self.match_null {
            yes |= nulls;
            Ok(Tri {
                yes,
                unknown: RoaringBitmap::new(),
            })
        } else {
            let unknown = nulls - &yes;
            Ok(Tri { yes, unknown })
        }
    }

    fn string_rows(&self, col: &dyn StringColumn, n: usize) -> Result<RoaringBitmap, QueryError> {
        let ids: Vec<u32> = match &self.str_pred {
            StrPred::Never => Vec::new(),
            StrPred::Eq(v) => col
                .lookup(Some(v))?
                .into_iter()
                .filter(|id| *id != 0)
                .collect(),
            StrPred::In(set) if set.len() < 64 || !col.is_sorted() => {
                let mut ids = Vec::new();
                for v in set {
                    ids.extend(col.lookup(Some(v))?.filter(|id| *id != 0));
                }
                ids
            }
            StrPred::LexRange { lower, upper } if col.is_sorted() => {
                fn bound(b: &Option<(String, bool)>) -> Bound<&str> {
                    match b {
                        None => Bound::Unbounded,
                        Some((v, true)) => Bound::Excluded(v.as_str()),
                        Some((v, false)) => Bound::Included(v.as_str()),
                    }
                }
                match col.id_range(bound(lower), bound(upper))? {
                    Some(r) => r.collect(),
                    None => matching_ids(col, &self.str_pred)?,
                }
            }
            pred => matching_ids(col, pred)?,
        };
        if !col.has_bitmaps() {
            return Ok(col.rows_with_ids(&ids)?);
        }
        union_ids(ids, col.cardinality(), col.is_multi_value(), n, &|id| {
            col.bitmap(id).map_err(QueryError::from)
        })
    }
}

fn matching_ids(col: &dyn StringColumn, pred: &StrPred) -> Result<Vec<u32>, QueryError> {
    let mut ids = Vec::new();
    col.for_each_value(&mut |id, v| {
        if pred.test(v) {
            ids.push(id);
        }
    })?;
    Ok(ids)
}

/// Rows holding any of `ids`; for single-value columns with most ids matching, the complement
/// is cheaper to build.
fn union_ids<'c>(
    ids: Vec<u32>,
    cardinality: u32,
    multi: bool,
    n: usize,
    bitmap: &dyn Fn(u32) -> Result<std::borrow::Cow<'c, RoaringBitmap>, QueryError>,
) -> Result<RoaringBitmap, QueryError> {
    if !multi && ids.len() as u32 > cardinality / 2 + 1 && cardinality > 64 {
        let matching: HashSet<u32> = ids.iter().copied().collect();
        let mut others = Vec::new();
        for id in 0..cardinality {
            if !matching.contains(&id) {
                others.push(bitmap(id)?);
            }
        }
        let excluded = others.iter().map(|b| b.as_ref()).union();
        return Ok(all_rows(n) - excluded);
    }
    let mut maps = Vec::with_capacity(ids.len());
    for id in ids {
        maps.push(bitmap(id)?);
    }
    Ok(maps.iter().map(|b| b.as_ref()).union())
}

fn indexed_rows(index: &dyn LongIndex, pred: &NumPred) -> Result<RoaringBitmap, QueryError> {
    let card = index.cardinality();
    let ids: Vec<u32> = match pred {
        NumPred::Never => Vec::new(),
        NumPred::Ranges(rs) => {
            let mut ids = Vec::new();
            for r in rs {
                let (lo, hi) = r.long_bounds();
                ids.extend(index.id_range(lo, hi));
            }
            ids.sort_unstable();
            ids.dedup();
            ids
        }
        NumPred::Set(set) => set
            .iter()
            .filter_map(|x| match x {
                NumLit::Long(v) => index.lookup(*v),
                NumLit::Double(d) if d.fract() == 0.0 => index.lookup(*d as i64),
                NumLit::Double(_) => None,
            })
            .collect(),
        NumPred::Text(p) => (1..card)
            .filter(|id| {
                index
                    .value(*id)
                    .is_some_and(|v| p.test(itoa::Buffer::new().format(v)))
            })
            .collect(),
    };
    let mut maps = Vec::with_capacity(ids.len());
    for id in ids {
        maps.push(index.bitmap(id)?);
    }
    Ok(maps.iter().map(|b| b.as_ref()).union())
}

/// Rows whose value satisfies `pred`, block by block, nulls not excluded (caller removes them).
pub fn scan_numeric(
    col: &dyn NumericColumn,
    pred: &NumPred,
    n: usize,
) -> Result<RoaringBitmap, QueryError> {
    let mut out = RoaringBitmap::new();
    if matches!(pred, NumPred::Never) {
        return Ok(out);
    }
    let is_long = col.kind() == eddy_segment::codec::numeric::NumKind::Long;
    let mut longs = vec![0i64; BLOCK_ROWS];
    let mut doubles = vec![0f64; BLOCK_ROWS];
    let mut hits: Vec<u32> = Vec::with_capacity(BLOCK_ROWS);
    for b in 0..n.div_ceil(BLOCK_ROWS) {
        let start = b * BLOCK_ROWS;
        let end = (start + BLOCK_ROWS).min(n);
        let decision = if is_long {
            col.block_range_i64(b)
                .map(|(lo, hi)| pred.on_range(lo as f64, hi as f64, lo, hi, true))
        } else {
            col.block_range_f64(b)
                .map(|(lo, hi)| pred.on_range(lo, hi, lo as i64, hi as i64, false))
        };
        match decision {
            None | Some(Some(false)) => continue,
            Some(Some(true)) => {
                out.insert_range(start as u32..end as u32);
            }
            Some(None) => {
                hits.clear();
                if is_long {
                    col.read_i64(b, &mut longs)?;
                    for (i, v) in longs[..end - start].iter().enumerate() {
                        if pred.test_long(*v) {
                            hits.push((start + i) as u32);
                        }
                    }
                } else {
                    col.read_f64(b, &mut doubles)?;
                    for (i, v) in doubles[..end - start].iter().enumerate() {
                        if pred.test_double(*v) {
                            hits.push((start + i) as u32);
                        }
                    }
                }
                out.append(hits.iter().copied())
                    .map_err(|e| QueryError::Internal(e.to_string()))?;
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::like_matcher;

    #[test]
    fn like_without_regex() {
        let cases = [
            ("%google%", "http://www.google.com/x", true),
            ("%google%", "http://yandex.ru", false),
            ("http%", "http://a", true),
            ("%.html", "a/b.html", true),
            ("a%b%c", "aXbYc", true),
            ("a%b%c", "aXcYb", false),
            ("ab%ba", "aba", false),
            ("exact", "exact", true),
            ("a_c", "abc", true),
            ("%", "", true),
        ];
        for (pattern, text, want) in cases {
            assert_eq!(
                like_matcher(pattern, None).unwrap()(text),
                want,
                "{pattern} ~ {text}"
            );
        }
    }
}
