//! Filters evaluated on one row at a time (groupBy `having` filters, ingestion `transformSpec`
//! filters), with the same leaf semantics as the bitmap engine and SQL three-valued logic.

use eddy_types::spec::FilterSpec;

use crate::error::QueryError;
use crate::filter::Leaf;

pub use eddy_segment::input::InputValue as RowValue;

pub enum RowFilter {
    And(Vec<RowFilter>),
    Or(Vec<RowFilter>),
    Not(Box<RowFilter>),
    True,
    False,
    Leaf(Leaf),
}

impl RowFilter {
    pub fn compile(spec: &FilterSpec) -> Result<Self, QueryError> {
        Ok(match spec {
            FilterSpec::And { fields } => RowFilter::And(
                fields
                    .iter()
                    .map(RowFilter::compile)
                    .collect::<Result<_, _>>()?,
            ),
            FilterSpec::Or { fields } => RowFilter::Or(
                fields
                    .iter()
                    .map(RowFilter::compile)
                    .collect::<Result<_, _>>()?,
            ),
            FilterSpec::Not { field } => RowFilter::Not(Box::new(RowFilter::compile(field)?)),
            FilterSpec::True => RowFilter::True,
            FilterSpec::False => RowFilter::False,
            FilterSpec::Expression { .. } => {
                return Err(QueryError::Unsupported(
                    "expression filters are not supported here yet".into(),
                ));
            }
            leaf => RowFilter::Leaf(Leaf::compile(leaf)?),
        })
    }

    /// Some(true) / Some(false), or None when unknown (a null made it undecidable).
    pub fn eval<'v>(&self, get: &dyn Fn(&str) -> RowValue<'v>) -> Option<bool> {
        match self {
            RowFilter::True => Some(true),
            RowFilter::False => Some(false),
            RowFilter::Not(f) => f.eval(get).map(|b| !b),
            RowFilter::And(fs) => {
                let mut unknown = false;
                for f in fs {
                    match f.eval(get) {
                        Some(false) => return Some(false),
                        None => unknown = true,
                        Some(true) => {}
                    }
                }
                if unknown { None } else { Some(true) }
            }
            RowFilter::Or(fs) => {
                let mut unknown = false;
                for f in fs {
                    match f.eval(get) {
                        Some(true) => return Some(true),
                        None => unknown = true,
                        Some(false) => {}
                    }
                }
                if unknown { None } else { Some(false) }
            }
            RowFilter::Leaf(leaf) => leaf_eval(leaf, &get(&leaf.column)),
        }
    }

    pub fn matches<'v>(&self, get: &dyn Fn(&str) -> RowValue<'v>) -> bool {
        self.eval(get) == Some(true)
    }
}

fn leaf_eval(leaf: &Leaf, value: &RowValue<'_>) -> Option<bool> {
    let null = || if leaf.match_null { Some(true) } else { None };
    match value {
        RowValue::Null => null(),
        RowValue::Str(s) => Some(leaf.str_pred.test(s)),
        RowValue::Long(v) => Some(leaf.num_pred.test_long(*v)),
        RowValue::Double(v) => Some(leaf.num_pred.test_double(*v)),
        RowValue::Bool(b) => Some(leaf.num_pred.test_long(i64::from(*b))),
        RowValue::List(items) => {
            if items.is_empty() {
                return null();
            }
            let mut unknown = false;
            for item in items {
                match leaf_eval(leaf, item) {
                    Some(true) => return Some(true),
                    None => unknown = true,
                    Some(false) => {}
                }
            }
            if unknown { None } else { Some(false) }
        }
    }
}
