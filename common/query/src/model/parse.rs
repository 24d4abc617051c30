//! Reading a query body: dispatch on `queryType` (with a clear error for unknown types), JSON
//! paths in every error, and what all query types share (datasource, intervals, context).

use serde_json::Value;

use eddy_types::spec::{AggregatorSpec, FilterSpec};
use eddy_types::{DataSourceName, Interval};

use super::virtuals::parse_virtuals;
use super::{PostAggregator, Query, QueryContext, ScanOrder, ScanQuery, ToInclude, TopNMetric};
use crate::error::QueryError;

impl Query {
    /// Parses a query body; errors name the JSON path of the bad field.
    pub fn from_json_bytes(body: &[u8]) -> Result<Query, QueryError> {
        let value: Value = serde_json::from_slice(body)
            .map_err(|e| QueryError::Json(format!("malformed JSON: {e}")))?;
        Query::from_json(value)
    }

    pub fn from_json(value: Value) -> Result<Query, QueryError> {
        match value.get("queryType") {
            None => return Err(QueryError::Json("missing \"queryType\"".into())),
            Some(Value::String(t)) if !KNOWN_TYPES.contains(&t.as_str()) => {
                return Err(QueryError::Json(format!(
                    "unknown queryType {t:?}: expected one of {}",
                    KNOWN_TYPES.join(", ")
                )));
            }
            _ => {}
        }
        fn typed<T: serde::de::DeserializeOwned>(value: Value) -> Result<T, QueryError> {
            serde_path_to_error::deserialize(value).map_err(|e| {
                let path = e.path().to_string();
                QueryError::Json(if path == "." {
                    e.inner().to_string()
                } else {
                    format!("{path}: {}", e.inner())
                })
            })
        }
        /// `orderBy` on `__time` alone is the time order.
        fn time_order(mut q: ScanQuery) -> ScanQuery {
            if let [o] = q.order_by.as_slice()
                && o.column_name == eddy_types::TIME_COLUMN
            {
                q.order = if o.descending() {
                    ScanOrder::Descending
                } else {
                    ScanOrder::Ascending
                };
                q.order_by.clear();
            }
            q
        }
        // Dispatch by hand: serde loses field paths inside internally tagged enums.
        let query = match value.get("queryType").and_then(Value::as_str) {
            Some("timeseries") => Query::Timeseries(typed(value)?),
            Some("topN") => Query::TopN(typed(value)?),
            Some("groupBy") => Query::GroupBy(typed(value)?),
            Some("scan") => Query::Scan(time_order(typed(value)?)),
            Some("search") => Query::Search(typed(value)?),
            Some("timeBoundary") => Query::TimeBoundary(typed(value)?),
            Some("segmentMetadata") => Query::SegmentMetadata(typed(value)?),
            Some("dataSourceMetadata") => Query::DataSourceMetadata(typed(value)?),
            _ => return Err(QueryError::Json("queryType must be a string".into())),
        };
        query.validate()?;
        Ok(query)
    }

    pub fn type_name(&self) -> &'static str {
        match self {
            Query::Timeseries(_) => "timeseries",
            Query::TopN(_) => "topN",
            Query::GroupBy(_) => "groupBy",
            Query::Scan(_) => "scan",
            Query::Search(_) => "search",
            Query::TimeBoundary(_) => "timeBoundary",
            Query::SegmentMetadata(_) => "segmentMetadata",
            Query::DataSourceMetadata(_) => "dataSourceMetadata",
        }
    }

    pub fn data_source(&self) -> &DataSourceName {
        match self {
            Query::Timeseries(q) => &q.data_source.0,
            Query::TopN(q) => &q.data_source.0,
            Query::GroupBy(q) => &q.data_source.0,
            Query::Scan(q) => &q.data_source.0,
            Query::Search(q) => &q.data_source.0,
            Query::TimeBoundary(q) => &q.data_source.0,
            Query::SegmentMetadata(q) => &q.data_source.0,
            Query::DataSourceMetadata(q) => &q.data_source.0,
        }
    }

    /// The intervals to read; queries that may omit them read all time.
    pub fn intervals(&self) -> Vec<Interval> {
        let all = || vec![Interval::ETERNITY];
        let list = match self {
            Query::Timeseries(q) => q.intervals.clone(),
            Query::TopN(q) => q.intervals.clone(),
            Query::GroupBy(q) => q.intervals.clone(),
            Query::Scan(q) => q.intervals.clone(),
            Query::Search(q) => q.intervals.clone(),
            Query::TimeBoundary(q) => q.intervals.clone().unwrap_or_else(all),
            Query::SegmentMetadata(q) => q.intervals.clone().unwrap_or_else(all),
            Query::DataSourceMetadata(q) => q.intervals.clone().unwrap_or_else(all),
        };
        eddy_types::interval::condense(list)
    }

    pub fn context(&self) -> &QueryContext {
        match self {
            Query::Timeseries(q) => &q.context,
            Query::TopN(q) => &q.context,
            Query::GroupBy(q) => &q.context,
            Query::Scan(q) => &q.context,
            Query::Search(q) => &q.context,
            Query::TimeBoundary(q) => &q.context,
            Query::SegmentMetadata(q) => &q.context,
            Query::DataSourceMetadata(q) => &q.context,
        }
    }

    pub fn context_mut(&mut self) -> &mut QueryContext {
        match self {
            Query::Timeseries(q) => &mut q.context,
            Query::TopN(q) => &mut q.context,
            Query::GroupBy(q) => &mut q.context,
            Query::Scan(q) => &mut q.context,
            Query::Search(q) => &mut q.context,
            Query::TimeBoundary(q) => &mut q.context,
            Query::SegmentMetadata(q) => &mut q.context,
            Query::DataSourceMetadata(q) => &mut q.context,
        }
    }

    pub fn filter(&self) -> Option<&FilterSpec> {
        match self {
            Query::Timeseries(q) => q.filter.as_ref(),
            Query::TopN(q) => q.filter.as_ref(),
            Query::GroupBy(q) => q.filter.as_ref(),
            Query::Scan(q) => q.filter.as_ref(),
            Query::Search(q) => q.filter.as_ref(),
            Query::TimeBoundary(q) => q.filter.as_ref(),
            Query::SegmentMetadata(_) | Query::DataSourceMetadata(_) => None,
        }
    }

    /// Columns the query reads, for the unknown-column check (`__time` excluded).
    pub fn referenced_columns(&self) -> Vec<String> {
        let mut cols = Vec::new();
        if let Some(f) = self.filter() {
            f.columns(&mut cols);
        }
        let aggs = |aggs: &[AggregatorSpec], virtuals: &[Value], cols: &mut Vec<String>| {
            let virtuals = parse_virtuals(virtuals).unwrap_or_default();
            for a in aggs {
                for c in a.input_fields() {
                    match virtuals.iter().find(|v| v.name == c) {
                        Some(v) => cols.extend(v.expr.identifiers()),
                        None => cols.push(c),
                    }
                }
                if let AggregatorSpec::Filtered(f) = a {
                    f.filter.columns(cols);
                }
            }
        };
        // A dimension naming a virtual column reads the columns of its expression.
        let dims = |dims: &[&str], virtuals: &[Value], cols: &mut Vec<String>| {
            let virtuals = parse_virtuals(virtuals).unwrap_or_default();
            for d in dims {
                match virtuals.iter().find(|v| v.name == *d) {
                    Some(v) => cols.extend(v.expr.identifiers()),
                    None => cols.push((*d).to_string()),
                }
            }
        };
        match self {
            Query::Timeseries(q) => aggs(&q.aggregations, &[], &mut cols),
            Query::TopN(q) => {
                aggs(&q.aggregations, &q.virtual_columns, &mut cols);
                dims(
                    &[q.dimension.dimension.as_str()],
                    &q.virtual_columns,
                    &mut cols,
                );
            }
            Query::GroupBy(q) => {
                aggs(&q.aggregations, &q.virtual_columns, &mut cols);
                let names: Vec<&str> = q.dimensions.iter().map(|d| d.dimension.as_str()).collect();
                dims(&names, &q.virtual_columns, &mut cols);
            }
            Query::Scan(q) => cols.extend(q.columns.iter().cloned()),
            Query::Search(q) => cols.extend(
                q.search_dimensions
                    .iter()
                    .flatten()
                    .map(|d| d.dimension.clone()),
            ),
            Query::SegmentMetadata(q) => {
                if let Some(ToInclude::List { columns }) = &q.to_include {
                    cols.extend(columns.iter().cloned());
                }
            }
            Query::TimeBoundary(_) | Query::DataSourceMetadata(_) => {}
        }
        cols.retain(|c| c != eddy_types::TIME_COLUMN);
        cols.sort();
        cols.dedup();
        cols
    }

    fn validate(&self) -> Result<(), QueryError> {
        let invalid = |m: String| Err(QueryError::Invalid(m));
        let unsupported = |m: String| Err(QueryError::Unsupported(m));
        if let Some(f) = self.filter() {
            f.validate()
                .map_err(|e| QueryError::Unsupported(format!("filter: {e}")))?;
        }
        let check_aggs =
            |aggs: &[AggregatorSpec], posts: &[PostAggregator]| -> Result<(), QueryError> {
                let mut names: Vec<&str> = Vec::new();
                for (i, a) in aggs.iter().enumerate() {
                    a.validate()
                        .map_err(|e| QueryError::Invalid(format!("aggregations[{i}]: {e}")))?;
                    if names.contains(&a.name()) {
                        return Err(QueryError::Invalid(format!(
                            "aggregations[{i}]: duplicate output name {:?}",
                            a.name()
                        )));
                    }
                    names.push(a.name());
                }
                for (i, p) in posts.iter().enumerate() {
                    p.validate(&names)
                        .map_err(|e| QueryError::Invalid(format!("postAggregations[{i}]: {e}")))?;
                    names.push(p.name());
                }
                Ok(())
            };
        let no_virtual = |v: &[Value]| -> Result<(), QueryError> {
            if v.is_empty() {
                Ok(())
            } else {
                unsupported("virtualColumns are supported in groupBy and topN queries only".into())
            }
        };
        // Virtual columns can be grouped on, and summed, minimized or maximized when their
        // expression reads one column; filters and other aggregators cannot read them yet.
        let grouped_virtuals = |v: &[Value],
                                filter: Option<&FilterSpec>,
                                aggs: &[AggregatorSpec]|
         -> Result<(), QueryError> {
            let virtuals = parse_virtuals(v)?;
            let is_virtual = |c: &String| virtuals.iter().any(|v| &v.name == c);
            let mut read = Vec::new();
            if let Some(f) = filter {
                f.columns(&mut read);
            }
            for a in aggs {
                let mut a = a;
                while let AggregatorSpec::Filtered(f) = a {
                    f.filter.columns(&mut read);
                    a = &f.aggregator;
                }
            }
            if let Some(c) = read.iter().find(|c| is_virtual(c)) {
                return unsupported(format!(
                    "virtual column {c:?} is read by a filter; Eddy groups and aggregates on virtual columns only"
                ));
            }
            for a in aggs {
                let numeric = numeric_input(a);
                for c in a.input_fields() {
                    let Some(v) = virtuals.iter().find(|v| v.name == c) else {
                        continue;
                    };
                    if numeric != Some(c.as_str()) || v.expr.identifiers().len() != 1 {
                        return unsupported(format!(
                            "virtual column {c:?} is read by aggregator {:?}; only sum, min and max aggregators read virtual columns, of expressions over one column",
                            a.name()
                        ));
                    }
                }
            }
            Ok(())
        };
        match self {
            Query::Timeseries(q) => {
                no_virtual(&q.virtual_columns)?;
                check_aggs(&q.aggregations, &q.post_aggregations)?;
            }
            Query::TopN(q) => {
                grouped_virtuals(&q.virtual_columns, q.filter.as_ref(), &q.aggregations)?;
                q.dimension.validate().map_err(QueryError::Unsupported)?;
                check_aggs(&q.aggregations, &q.post_aggregations)?;
                let mut metric = &q.metric;
                while let TopNMetric::Inverted(inner) = metric {
                    metric = inner;
                }
                if let TopNMetric::Numeric(m) = metric
                    && !q.aggregations.iter().any(|a| a.name() == m)
                    && !q.post_aggregations.iter().any(|p| p.name() == m)
                {
                    return invalid(format!(
                        "metric: {m:?} is not an aggregation or post-aggregation of this query"
                    ));
                }
            }
            Query::GroupBy(q) => {
                grouped_virtuals(&q.virtual_columns, q.filter.as_ref(), &q.aggregations)?;
                for d in &q.dimensions {
                    d.validate().map_err(QueryError::Unsupported)?;
                }
                check_aggs(&q.aggregations, &q.post_aggregations)?;
                if let Some(subtotals) = &q.subtotals_spec {
                    for s in subtotals.iter().flatten() {
                        if !q.dimensions.iter().any(|d| &d.output_name == s) {
                            return invalid(format!(
                                "subtotalsSpec: {s:?} is not a dimension output name"
                            ));
                        }
                    }
                }
            }
            Query::Scan(q) => {
                no_virtual(&q.virtual_columns)?;
                if !q.order_by.is_empty() && q.order != ScanOrder::None {
                    return invalid("give either order or orderBy, not both".into());
                }
            }
            Query::Search(q) => {
                no_virtual(&q.virtual_columns)?;
                for d in q.search_dimensions.iter().flatten() {
                    d.validate().map_err(QueryError::Unsupported)?;
                }
            }
            _ => {}
        }
        Ok(())
    }
}

const KNOWN_TYPES: [&str; 8] = [
    "timeseries",
    "topN",
    "groupBy",
    "scan",
    "search",
    "timeBoundary",
    "segmentMetadata",
    "dataSourceMetadata",
];

/// The field a sum, min or max aggregator reads (inside a filtered one too).
fn numeric_input(a: &AggregatorSpec) -> Option<&str> {
    match a {
        AggregatorSpec::LongSum(f)
        | AggregatorSpec::LongMin(f)
        | AggregatorSpec::LongMax(f)
        | AggregatorSpec::DoubleSum(f)
        | AggregatorSpec::DoubleMin(f)
        | AggregatorSpec::DoubleMax(f)
        | AggregatorSpec::FloatSum(f)
        | AggregatorSpec::FloatMin(f)
        | AggregatorSpec::FloatMax(f) => f.field_name.as_deref(),
        AggregatorSpec::Filtered(f) => numeric_input(&f.aggregator),
        _ => None,
    }
}
