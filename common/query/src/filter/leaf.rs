//! Leaf filters compiled into a string predicate (for dictionaries), a numeric predicate (for
//! numeric columns and `__time`) and whether nulls match.

use std::cmp::Ordering;
use std::collections::HashSet;
use std::ops::Bound;

use roaring::RoaringBitmap;
use serde_json::Value;

use eddy_segment::{ColumnRef, SegmentReader, StringColumn};
use eddy_types::TIME_COLUMN;
use eddy_types::spec::{FilterSpec, StringComparator};

mod predicate;
mod rows;

pub use predicate::{NumPred, NumRange, StrPred, TextFn, like_matcher, search_predicate};
pub use rows::scan_numeric;

use predicate::regex_of;
use rows::{indexed_rows, matching_ids, union_ids};

use super::{Tri, all_rows};
use crate::compare::{NumLit, compare_strings};
use crate::error::QueryError;

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
