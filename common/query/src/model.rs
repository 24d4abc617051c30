//! The native query model: Druid's JSON for every query type, parsed leniently (unknown keys
//! ignored, booleans and numbers accepted as strings) with errors that name the JSON path.

pub mod context;
pub mod having;
pub mod limit;
mod parse;
pub mod postagg;
pub mod virtuals;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use eddy_types::interval::parse_query_intervals;
use eddy_types::serde_util::{bool_lenient, opt_i64_lenient};
use eddy_types::spec::{AggregatorSpec, DimensionSpec, FilterSpec, SearchQuerySpec};
use eddy_types::{DataSourceName, Granularity, Interval};

pub use context::QueryContext;
pub use having::HavingSpec;
pub use limit::{LimitSpec, OrderByColumn, SortDirection};
pub use postagg::PostAggregator;

/// A parsed native query.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "queryType")]
pub enum Query {
    #[serde(rename = "timeseries")]
    Timeseries(TimeseriesQuery),
    #[serde(rename = "topN")]
    TopN(TopNQuery),
    #[serde(rename = "groupBy")]
    GroupBy(GroupByQuery),
    #[serde(rename = "scan")]
    Scan(ScanQuery),
    #[serde(rename = "search")]
    Search(SearchQuery),
    #[serde(rename = "timeBoundary")]
    TimeBoundary(TimeBoundaryQuery),
    #[serde(rename = "segmentMetadata")]
    SegmentMetadata(SegmentMetadataQuery),
    #[serde(rename = "dataSourceMetadata")]
    DataSourceMetadata(DataSourceMetadataQuery),
}

/// `dataSource`: a table name, `{"type":"table","name":..}`; other kinds are refused clearly.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(transparent)]
pub struct TableDataSource(pub DataSourceName);

impl<'de> Deserialize<'de> for TableDataSource {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let v = Value::deserialize(d)?;
        let name = match &v {
            Value::String(s) => s.clone(),
            Value::Object(o) => match o.get("type").and_then(Value::as_str) {
                Some("table") | None => o
                    .get("name")
                    .and_then(Value::as_str)
                    .ok_or_else(|| D::Error::custom("a table dataSource needs a \"name\""))?
                    .to_string(),
                Some(other) => {
                    return Err(D::Error::custom(format!(
                        "dataSource type {other:?} is not supported by native queries here; use a table name (SQL supports joins and subqueries)"
                    )));
                }
            },
            other => {
                return Err(D::Error::custom(format!(
                    "dataSource must be a table name, got {other}"
                )));
            }
        };
        DataSourceName::new(name)
            .map(TableDataSource)
            .map_err(D::Error::custom)
    }
}

fn de_intervals<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<Interval>, D::Error> {
    let v = Value::deserialize(d)?;
    parse_query_intervals(&v).map_err(serde::de::Error::custom)
}

fn de_opt_intervals<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<Vec<Interval>>, D::Error> {
    let v = Value::deserialize(d)?;
    if v.is_null() {
        return Ok(None);
    }
    parse_query_intervals(&v)
        .map(Some)
        .map_err(serde::de::Error::custom)
}

fn de_opt_usize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<usize>, D::Error> {
    match opt_i64_lenient(d)? {
        None => Ok(None),
        Some(v) if v >= 0 => Ok(Some(v as usize)),
        Some(v) => Err(serde::de::Error::custom(format!(
            "expected a non-negative number, got {v}"
        ))),
    }
}

fn default_all() -> Granularity {
    Granularity::All
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TimeseriesQuery {
    pub data_source: TableDataSource,
    #[serde(deserialize_with = "de_intervals")]
    pub intervals: Vec<Interval>,
    #[serde(default = "default_all")]
    pub granularity: Granularity,
    #[serde(default)]
    pub filter: Option<FilterSpec>,
    #[serde(default)]
    pub aggregations: Vec<AggregatorSpec>,
    #[serde(default)]
    pub post_aggregations: Vec<PostAggregator>,
    #[serde(default, deserialize_with = "bool_lenient")]
    pub descending: bool,
    #[serde(default, deserialize_with = "de_opt_usize")]
    pub limit: Option<usize>,
    #[serde(default)]
    pub virtual_columns: Vec<Value>,
    #[serde(default)]
    pub context: QueryContext,
}

/// How topN ranks values.
#[derive(Debug, Clone, PartialEq)]
pub enum TopNMetric {
    /// Descending by an aggregator or post-aggregator.
    Numeric(String),
    /// The reverse of another ordering.
    Inverted(Box<TopNMetric>),
    /// By the dimension value itself, ascending, starting after `previous_stop`.
    Dimension {
        ordering: eddy_types::spec::StringComparator,
        previous_stop: Option<String>,
    },
}

impl TopNMetric {
    /// Whether rows rank by a metric's value (possibly inverted) rather than by the dimension.
    pub fn ranks_by_value(&self) -> bool {
        match self {
            TopNMetric::Numeric(_) => true,
            TopNMetric::Inverted(inner) => inner.ranks_by_value(),
            TopNMetric::Dimension { .. } => false,
        }
    }
}

impl<'de> Deserialize<'de> for TopNMetric {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Value::deserialize(d)?;
        TopNMetric::from_json(&v).map_err(serde::de::Error::custom)
    }
}

impl TopNMetric {
    fn from_json(v: &Value) -> Result<Self, String> {
        use eddy_types::spec::StringComparator;
        match v {
            Value::String(s) => Ok(TopNMetric::Numeric(s.clone())),
            Value::Object(o) => {
                let ty = o.get("type").and_then(Value::as_str).unwrap_or("numeric");
                match ty {
                    "numeric" => o
                        .get("metric")
                        .and_then(Value::as_str)
                        .map(|m| TopNMetric::Numeric(m.to_string()))
                        .ok_or_else(|| "a numeric topN metric needs \"metric\"".to_string()),
                    "inverted" => Ok(TopNMetric::Inverted(Box::new(TopNMetric::from_json(
                        o.get("metric")
                            .ok_or("an inverted topN metric needs \"metric\"")?,
                    )?))),
                    "dimension" | "lexicographic" | "alphaNumeric" | "alphanumeric"
                    | "numericDimension" => {
                        let ordering = match ty {
                            "lexicographic" => StringComparator::Lexicographic,
                            "alphaNumeric" | "alphanumeric" => StringComparator::Alphanumeric,
                            "numericDimension" => StringComparator::Numeric,
                            _ => match o.get("ordering") {
                                None | Some(Value::Null) => StringComparator::Lexicographic,
                                Some(ord) => serde_json::from_value(ord.clone())
                                    .map_err(|e| e.to_string())?,
                            },
                        };
                        Ok(TopNMetric::Dimension {
                            ordering,
                            previous_stop: o
                                .get("previousStop")
                                .and_then(Value::as_str)
                                .map(str::to_string),
                        })
                    }
                    other => Err(format!(
                        "unknown topN metric type {other:?}: expected numeric, inverted or dimension"
                    )),
                }
            }
            other => Err(format!("a topN metric is a name or an object, got {other}")),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TopNQuery {
    pub data_source: TableDataSource,
    #[serde(deserialize_with = "de_intervals")]
    pub intervals: Vec<Interval>,
    #[serde(default = "default_all")]
    pub granularity: Granularity,
    pub dimension: DimensionSpec,
    #[serde(deserialize_with = "de_threshold")]
    pub threshold: usize,
    pub metric: TopNMetric,
    #[serde(default)]
    pub filter: Option<FilterSpec>,
    #[serde(default)]
    pub aggregations: Vec<AggregatorSpec>,
    #[serde(default)]
    pub post_aggregations: Vec<PostAggregator>,
    #[serde(default)]
    pub virtual_columns: Vec<Value>,
    #[serde(default)]
    pub context: QueryContext,
}

fn de_threshold<'de, D: serde::Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
    de_opt_usize(d)?.ok_or_else(|| serde::de::Error::custom("threshold is required"))
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupByQuery {
    pub data_source: TableDataSource,
    #[serde(deserialize_with = "de_intervals")]
    pub intervals: Vec<Interval>,
    #[serde(default = "default_all")]
    pub granularity: Granularity,
    #[serde(default)]
    pub dimensions: Vec<DimensionSpec>,
    #[serde(default)]
    pub filter: Option<FilterSpec>,
    #[serde(default)]
    pub aggregations: Vec<AggregatorSpec>,
    #[serde(default)]
    pub post_aggregations: Vec<PostAggregator>,
    #[serde(default)]
    pub having: Option<HavingSpec>,
    #[serde(default)]
    pub limit_spec: Option<LimitSpec>,
    #[serde(default)]
    pub subtotals_spec: Option<Vec<Vec<String>>>,
    #[serde(default)]
    pub virtual_columns: Vec<Value>,
    #[serde(default)]
    pub context: QueryContext,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ScanResultFormat {
    #[default]
    List,
    CompactedList,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ScanOrder {
    #[default]
    None,
    Ascending,
    Descending,
}

/// One column a scan is ordered by.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScanOrderBy {
    pub column_name: String,
    /// `ascending` (the default) or `descending`.
    #[serde(default)]
    pub order: ScanOrder,
    /// Where nulls go (an Eddy addition); by default they sort lowest, as in Druid: first
    /// when ascending, last when descending.
    #[serde(default)]
    pub nulls_first: Option<bool>,
}

impl ScanOrderBy {
    pub fn descending(&self) -> bool {
        self.order == ScanOrder::Descending
    }

    pub fn nulls_first(&self) -> bool {
        self.nulls_first.unwrap_or(!self.descending())
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScanQuery {
    pub data_source: TableDataSource,
    #[serde(deserialize_with = "de_intervals")]
    pub intervals: Vec<Interval>,
    #[serde(default)]
    pub columns: Vec<String>,
    #[serde(default)]
    pub result_format: ScanResultFormat,
    #[serde(default, deserialize_with = "de_opt_usize")]
    pub limit: Option<usize>,
    #[serde(default, deserialize_with = "de_opt_usize")]
    pub offset: Option<usize>,
    #[serde(default, deserialize_with = "de_opt_usize")]
    pub batch_size: Option<usize>,
    #[serde(default)]
    pub order: ScanOrder,
    /// Druid's `orderBy`. On `__time` alone it is `order`; Eddy also orders by other columns
    /// (Druid's native scan does not), keeping each segment's first `offset + limit` rows.
    #[serde(default)]
    pub order_by: Vec<ScanOrderBy>,
    #[serde(default)]
    pub filter: Option<FilterSpec>,
    #[serde(default, deserialize_with = "bool_lenient")]
    pub legacy: bool,
    #[serde(default)]
    pub virtual_columns: Vec<Value>,
    #[serde(default)]
    pub context: QueryContext,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SearchSort {
    #[default]
    Lexicographic,
    Alphanumeric,
    Strlen,
    Numeric,
}

impl<'de> Deserialize<'de> for SearchSort {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Value::deserialize(d)?;
        let name = match &v {
            Value::String(s) => s.clone(),
            Value::Object(o) => o
                .get("type")
                .and_then(Value::as_str)
                .unwrap_or("lexicographic")
                .to_string(),
            _ => String::new(),
        };
        match name.to_ascii_lowercase().as_str() {
            "lexicographic" => Ok(SearchSort::Lexicographic),
            "alphanumeric" => Ok(SearchSort::Alphanumeric),
            "strlen" => Ok(SearchSort::Strlen),
            "numeric" => Ok(SearchSort::Numeric),
            _ => Err(serde::de::Error::custom(format!(
                "unknown search sort {v}: expected lexicographic, alphanumeric, strlen or numeric"
            ))),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SearchQuery {
    pub data_source: TableDataSource,
    #[serde(deserialize_with = "de_intervals")]
    pub intervals: Vec<Interval>,
    #[serde(default = "default_all")]
    pub granularity: Granularity,
    #[serde(default)]
    pub search_dimensions: Option<Vec<DimensionSpec>>,
    pub query: SearchQuerySpec,
    #[serde(default)]
    pub sort: SearchSort,
    #[serde(default, deserialize_with = "de_opt_usize")]
    pub limit: Option<usize>,
    #[serde(default)]
    pub filter: Option<FilterSpec>,
    #[serde(default)]
    pub virtual_columns: Vec<Value>,
    #[serde(default)]
    pub context: QueryContext,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum Bound {
    #[serde(rename = "maxTime")]
    MaxTime,
    #[serde(rename = "minTime")]
    MinTime,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TimeBoundaryQuery {
    pub data_source: TableDataSource,
    #[serde(default, deserialize_with = "de_opt_intervals")]
    pub intervals: Option<Vec<Interval>>,
    #[serde(default)]
    pub bound: Option<Bound>,
    #[serde(default)]
    pub filter: Option<FilterSpec>,
    #[serde(default)]
    pub context: QueryContext,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum ToInclude {
    All,
    None,
    List { columns: Vec<String> },
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SegmentMetadataQuery {
    pub data_source: TableDataSource,
    #[serde(default, deserialize_with = "de_opt_intervals")]
    pub intervals: Option<Vec<Interval>>,
    #[serde(default)]
    pub to_include: Option<ToInclude>,
    #[serde(default, deserialize_with = "bool_lenient")]
    pub merge: bool,
    #[serde(default)]
    pub analysis_types: Option<Vec<String>>,
    #[serde(default, deserialize_with = "bool_lenient")]
    pub lenient_aggregator_merge: bool,
    #[serde(default)]
    pub context: QueryContext,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DataSourceMetadataQuery {
    pub data_source: TableDataSource,
    #[serde(default, deserialize_with = "de_opt_intervals")]
    pub intervals: Option<Vec<Interval>>,
    #[serde(default)]
    pub context: QueryContext,
}
