//! Partial results: what one segment (or one data node) returns for a query, before the broker
//! merges them and finalizes. Merging is associative and commutative, so partials can combine in
//! any order and at any level (segment, node, broker).

use std::collections::HashMap;

use serde_json::Value;

use eddy_segment::hll::Hll;
use eddy_types::Interval;
use eddy_types::spec::AggregatorSpec;

mod groups;
mod radix;

use groups::GroupIndex;
pub use groups::{GroupSet, Key, Strings};
pub use radix::{PARTITION_MIN_GROUPS, Partitioned};

/// A group-key value. Doubles are kept as bits so keys hash and compare exactly.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum KeyValue {
    Null,
    Long(i64),
    Double(u64),
    Str(String),
}

impl KeyValue {
    pub fn double(v: f64) -> Self {
        KeyValue::Double(v.to_bits())
    }

    pub fn to_json(&self) -> Value {
        match self {
            KeyValue::Null => Value::Null,
            KeyValue::Long(v) => Value::from(*v),
            KeyValue::Double(b) => crate::finalize::json_f64(f64::from_bits(*b)),
            KeyValue::Str(s) => Value::String(s.clone()),
        }
    }

    /// The value as Druid's default STRING output type shows it.
    pub fn to_text(&self) -> Option<String> {
        match self {
            KeyValue::Null => None,
            KeyValue::Long(v) => Some(v.to_string()),
            KeyValue::Double(b) => Some(eddy_segment::hll::format_double(f64::from_bits(*b))),
            KeyValue::Str(s) => Some(s.clone()),
        }
    }
}

/// A scalar carried by first/last aggregators.
#[derive(Debug, Clone, PartialEq)]
pub enum Scalar {
    Null,
    Long(i64),
    Double(f64),
    Str(String),
}

/// One aggregator's partial state.
#[derive(Debug, Clone, PartialEq)]
pub enum AggValue {
    Long(Option<i64>),
    Double(Option<f64>),
    Sketch(Hll),
    /// Earliest (first) or latest (last) value with its time.
    Timed {
        time: i64,
        value: Scalar,
    },
    /// First/last before any row was seen.
    NoValue,
    /// The smallest or largest string so far (stringMin/stringMax); None before any.
    Text(Option<String>),
}

/// What an aggregator computes, with filtered aggregators unwrapped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AggKind {
    Count,
    LongSum,
    LongMin,
    LongMax,
    DoubleSum,
    DoubleMin,
    DoubleMax,
    FloatSum,
    FloatMin,
    FloatMax,
    StringMin,
    StringMax,
    Sketch { round: bool },
    First(ValueKind),
    Last(ValueKind),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueKind {
    Long,
    Double,
    Float,
    String,
}

impl AggKind {
    pub fn of(spec: &AggregatorSpec) -> AggKind {
        match spec {
            AggregatorSpec::Count { .. } => AggKind::Count,
            AggregatorSpec::LongSum(_) => AggKind::LongSum,
            AggregatorSpec::LongMin(_) => AggKind::LongMin,
            AggregatorSpec::LongMax(_) => AggKind::LongMax,
            AggregatorSpec::DoubleSum(_) => AggKind::DoubleSum,
            AggregatorSpec::DoubleMin(_) => AggKind::DoubleMin,
            AggregatorSpec::DoubleMax(_) => AggKind::DoubleMax,
            AggregatorSpec::FloatSum(_) => AggKind::FloatSum,
            AggregatorSpec::FloatMin(_) => AggKind::FloatMin,
            AggregatorSpec::FloatMax(_) => AggKind::FloatMax,
            AggregatorSpec::StringMin(_) => AggKind::StringMin,
            AggregatorSpec::StringMax(_) => AggKind::StringMax,
            AggregatorSpec::HyperUnique(h) => AggKind::Sketch { round: h.round },
            AggregatorSpec::Cardinality(c) => AggKind::Sketch { round: c.round },
            AggregatorSpec::LongFirst(_) => AggKind::First(ValueKind::Long),
            AggregatorSpec::LongLast(_) => AggKind::Last(ValueKind::Long),
            AggregatorSpec::DoubleFirst(_) => AggKind::First(ValueKind::Double),
            AggregatorSpec::DoubleLast(_) => AggKind::Last(ValueKind::Double),
            AggregatorSpec::FloatFirst(_) => AggKind::First(ValueKind::Float),
            AggregatorSpec::FloatLast(_) => AggKind::Last(ValueKind::Float),
            AggregatorSpec::StringFirst(_) => AggKind::First(ValueKind::String),
            AggregatorSpec::StringLast(_) => AggKind::Last(ValueKind::String),
            AggregatorSpec::Filtered(f) => AggKind::of(&f.aggregator),
        }
    }

    /// The state of an aggregator that saw no rows.
    pub fn empty(self) -> AggValue {
        match self {
            AggKind::Count => AggValue::Long(Some(0)),
            AggKind::LongSum | AggKind::LongMin | AggKind::LongMax => AggValue::Long(None),
            AggKind::DoubleSum
            | AggKind::DoubleMin
            | AggKind::DoubleMax
            | AggKind::FloatSum
            | AggKind::FloatMin
            | AggKind::FloatMax => AggValue::Double(None),
            AggKind::StringMin | AggKind::StringMax => AggValue::Text(None),
            AggKind::Sketch { .. } => AggValue::Sketch(Hll::new()),
            AggKind::First(_) | AggKind::Last(_) => AggValue::NoValue,
        }
    }

    /// Folds `other` into `into`.
    pub fn combine(self, into: &mut AggValue, other: AggValue) {
        use AggValue as V;
        match (self, &mut *into, other) {
            (AggKind::Count | AggKind::LongSum, V::Long(a), V::Long(b)) => {
                *a = opt(*a, b, i64::wrapping_add)
            }
            (AggKind::LongMin, V::Long(a), V::Long(b)) => *a = opt(*a, b, i64::min),
            (AggKind::LongMax, V::Long(a), V::Long(b)) => *a = opt(*a, b, i64::max),
            (AggKind::DoubleSum | AggKind::FloatSum, V::Double(a), V::Double(b)) => {
                *a = opt(*a, b, |x, y| x + y)
            }
            (AggKind::DoubleMin | AggKind::FloatMin, V::Double(a), V::Double(b)) => {
                *a = opt(*a, b, f64::min)
            }
            (AggKind::DoubleMax | AggKind::FloatMax, V::Double(a), V::Double(b)) => {
                *a = opt(*a, b, f64::max)
            }
            (AggKind::Sketch { .. }, V::Sketch(a), V::Sketch(b)) => a.merge(&b),
            (AggKind::StringMin, V::Text(a), V::Text(Some(b))) => {
                if a.as_ref().is_none_or(|x| b < *x) {
                    *a = Some(b);
                }
            }
            (AggKind::StringMax, V::Text(a), V::Text(Some(b))) => {
                if a.as_ref().is_none_or(|x| b > *x) {
                    *a = Some(b);
                }
            }
            (AggKind::StringMin | AggKind::StringMax, V::Text(_), V::Text(None)) => {}
            (AggKind::First(_) | AggKind::Last(_), _, V::NoValue) => {}
            (AggKind::First(_) | AggKind::Last(_), V::NoValue, b) => *into = b,
            (AggKind::First(_), V::Timed { time: ta, .. }, b @ V::Timed { .. }) => {
                if let V::Timed { time: tb, .. } = &b
                    && *tb < *ta
                {
                    *into = b;
                }
            }
            (AggKind::Last(_), V::Timed { time: ta, .. }, b @ V::Timed { .. }) => {
                if let V::Timed { time: tb, .. } = &b
                    && *tb >= *ta
                {
                    *into = b;
                }
            }
            (kind, a, b) => {
                tracing::error!(
                    ?kind,
                    ?a,
                    ?b,
                    "mismatched partial aggregate states; keeping the first"
                );
            }
        }
    }
}

fn opt<T: Copy>(a: Option<T>, b: Option<T>, f: impl Fn(T, T) -> T) -> Option<T> {
    match (a, b) {
        (Some(x), Some(y)) => Some(f(x, y)),
        (x, None) => x,
        (None, y) => y,
    }
}

/// One group: time bucket, key, and aggregator states (aligned with the query's aggregations).
#[derive(Debug, Clone, PartialEq)]
pub struct GroupRow {
    pub bucket: i64,
    pub key: Vec<KeyValue>,
    pub aggs: Vec<AggValue>,
}

/// Partial result of timeseries, topN and groupBy. No two groups share a (bucket, key).
#[derive(Debug, Clone, Default)]
pub struct GroupedPartial {
    pub groups: GroupSet,
    /// Query intervals clipped to the time chunks of the segments read: where empty timeseries
    /// buckets are filled.
    pub covered: Vec<Interval>,
}

impl GroupedPartial {
    pub fn merge(kinds: &[AggKind], parts: Vec<GroupedPartial>) -> GroupedPartial {
        let mut merger = GroupMerger::new(kinds.to_vec());
        for part in parts {
            merger.absorb(part);
        }
        merger.finish()
    }
}

/// Folds grouped partials together one at a time. Groups keep the order in which their keys
/// were first seen; each incoming key is hashed once.
pub struct GroupMerger {
    kinds: Vec<AggKind>,
    index: GroupIndex,
    set: GroupSet,
    covered: Vec<Interval>,
}

impl GroupMerger {
    pub fn new(kinds: Vec<AggKind>) -> Self {
        GroupMerger {
            kinds,
            index: GroupIndex::new(),
            set: GroupSet::default(),
            covered: Vec::new(),
        }
    }

    /// The kinds of the aggregators whose states it merges.
    pub fn kinds(&self) -> &[AggKind] {
        &self.kinds
    }

    pub fn absorb(&mut self, part: GroupedPartial) {
        self.covered.extend(part.covered);
        if self.set.is_empty() {
            // Keys within one partial are distinct: take the groups as they are (indexed only
            // when a second partial comes).
            self.set = part.groups;
            self.index.indexed = 0;
            return;
        }
        self.fold(part.groups);
    }

    /// Folds groups in whose keys may repeat.
    fn fold(&mut self, groups: GroupSet) {
        self.index.fold(&self.kinds, &mut self.set, groups);
    }

    pub fn finish(self) -> GroupedPartial {
        GroupedPartial {
            groups: self.set,
            covered: eddy_types::interval::condense(self.covered),
        }
    }
}

/// A batch of scanned rows from one segment.
#[derive(Debug, Clone)]
pub struct ScanBatch {
    pub segment_id: String,
    pub columns: Vec<String>,
    /// Values aligned with `columns`.
    pub rows: Vec<Vec<Value>>,
    /// `__time` of each row, for time-ordered merges.
    pub times: Vec<i64>,
    /// Each row's `orderBy` values, for merges ordered by columns (empty otherwise).
    pub keys: Vec<Vec<Value>>,
}

/// (bucket, dimension, value) → count.
#[derive(Debug, Clone, Default)]
pub struct SearchPartial {
    pub counts: HashMap<(i64, String, String), u64>,
}

/// One segment's analysis for segmentMetadata.
#[derive(Debug, Clone)]
pub struct SegmentAnalysis {
    pub id: String,
    pub intervals: Vec<Interval>,
    /// Column name → analysis JSON (Druid's shape).
    pub columns: serde_json::Map<String, Value>,
    pub size: u64,
    pub num_rows: u64,
    pub aggregators: Vec<AggregatorSpec>,
    pub query_granularity: Value,
    pub rollup: Option<bool>,
}

#[derive(Debug, Clone)]
pub enum Partial {
    Grouped(GroupedPartial),
    Scan(Vec<ScanBatch>),
    Search(SearchPartial),
    TimeBoundary { min: Option<i64>, max: Option<i64> },
    SegmentMetadata(Vec<SegmentAnalysis>),
    DataSourceMetadata { max_time: Option<i64> },
}
