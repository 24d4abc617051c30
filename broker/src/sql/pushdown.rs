//! The pushdown step: after DataFusion has optimized a plan (filters and projections pushed into
//! table scans), the parts native queries can express are replaced by `DruidQuery` nodes that
//! run next to the data:
//! - an aggregate over one datasource (GROUP BY columns and at most one time bucketing, COUNT,
//!   SUM, MIN, MAX, AVG, COUNT(DISTINCT)/APPROX_COUNT_DISTINCT, FILTER clauses) becomes a
//!   groupBy or timeseries query;
//! - ORDER BY ... LIMIT over such an aggregate becomes its `limitSpec`, so only the top rows
//!   leave the data nodes;
//! - any other scan of a datasource becomes a native scan with the filters and columns it needs.
//!
//! DataFusion runs only what is left above these nodes.

use std::sync::Arc;

use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{Column, Result};
use datafusion::datasource::source_as_provider;
use datafusion::logical_expr::{Aggregate, Expr, LogicalPlan, Projection, SortExpr, TableScan};
use serde_json::{Value, json};

use eddy_types::time::TimeZone;

use super::filter::{self, Native, column_of, literal};
use super::native::{NativeNode, Shape, Source};
use super::table::{Columns, DruidTable, intervals_json, scan_node};

/// Settings that change how SQL maps to native queries.
#[derive(Debug, Clone)]
pub struct Options {
    /// `sqlTimeZone`: the zone of TIME_FLOOR without an explicit one.
    pub tz: TimeZone,
    /// `useApproximateCountDistinct` (default true): COUNT(DISTINCT) runs as a sketch.
    pub approx_count_distinct: bool,
    /// `eddyPreAggregate` (default true): aggregates over expressions group natively on the
    /// columns they read first (see `preaggregate`); false reads those columns with scans.
    pub pre_aggregate: bool,
}

/// Replaces what native queries can run with `DruidQuery` nodes.
pub fn rewrite(plan: LogicalPlan, opts: &Options) -> Result<LogicalPlan> {
    let plan = plan
        .transform_down(|p| match &p {
            LogicalPlan::Aggregate(agg) => match aggregate(agg, opts) {
                Some(node) => Ok(Transformed::yes(node.into_plan())),
                None if !opts.pre_aggregate => Ok(Transformed::no(p)),
                None => match preaggregate(agg)? {
                    Some(plan) => Ok(Transformed::yes(plan)),
                    None => Ok(Transformed::no(p)),
                },
            },
            _ => Ok(Transformed::no(p)),
        })?
        .data;
    let plan = plan
        .transform_up(|p| match &p {
            LogicalPlan::TableScan(scan) => match druid_table(scan) {
                Some(table) => {
                    let node = scan_node(
                        &table.columns,
                        scan.projected_schema.clone(),
                        &scan.filters,
                        scan.fetch,
                    );
                    Ok(Transformed::yes(node.into_plan()))
                }
                None => Ok(Transformed::no(p)),
            },
            LogicalPlan::Sort(sort) => match sort.fetch {
                Some(fetch) => Ok(push_limit(&sort.input, &sort.expr, fetch).map_or(
                    Transformed::no(p.clone()),
                    |input| {
                        let mut s = sort.clone();
                        s.input = Arc::new(input);
                        Transformed::yes(LogicalPlan::Sort(s))
                    },
                )),
                None => Ok(Transformed::no(p)),
            },
            _ => Ok(Transformed::no(p)),
        })?
        .data;
    Ok(plan)
}

fn druid_table(scan: &TableScan) -> Option<Arc<DruidTable>> {
    let provider = source_as_provider(&scan.source).ok()?;
    let any: Arc<dyn std::any::Any + Send + Sync> = provider;
    any.downcast::<DruidTable>().ok()
}

/// Follows projections down to a datasource scan, inlining projected expressions.
fn scan_below(
    plan: &LogicalPlan,
    mut exprs: Vec<Expr>,
) -> Option<(Arc<DruidTable>, &TableScan, Vec<Expr>)> {
    match plan {
        LogicalPlan::TableScan(scan) => Some((druid_table(scan)?, scan, exprs)),
        LogicalPlan::Projection(p) => {
            exprs = exprs
                .into_iter()
                .map(|e| inline(e, p))
                .collect::<Option<_>>()?;
            scan_below(&p.input, exprs)
        }
        LogicalPlan::SubqueryAlias(a) => {
            // Column references are qualified by the alias; the scan's columns have the same names.
            let exprs = exprs
                .into_iter()
                .map(|e| {
                    e.transform(|x| match x {
                        Expr::Column(c) => Ok(Transformed::yes(Expr::Column(
                            Column::new_unqualified(c.name),
                        ))),
                        other => Ok(Transformed::no(other)),
                    })
                    .map(|t| t.data)
                    .ok()
                })
                .collect::<Option<_>>()?;
            scan_below(&a.input, exprs)
        }
        _ => None,
    }
}

/// `e` with references to a projection's outputs replaced by what they compute.
fn inline(e: Expr, p: &Projection) -> Option<Expr> {
    e.transform(|x| match x {
        Expr::Column(c) => {
            let idx = p.schema.index_of_column(&c).ok();
            match idx.and_then(|i| p.expr.get(i)) {
                Some(inner) => Ok(Transformed::yes(inner.clone().unalias_nested().data)),
                None => Ok(Transformed::no(Expr::Column(c))),
            }
        }
        other => Ok(Transformed::no(other)),
    })
    .map(|t| t.data)
    .ok()
}

/// A time bucketing of `__time` as a native granularity.
fn time_granularity(e: &Expr, opts: &Options) -> Option<Value> {
    if column_of(e) == Some(eddy_types::TIME_COLUMN) {
        return Some(json!("none"));
    }
    let Expr::ScalarFunction(f) = e else {
        return None;
    };
    let arg = |i: usize| f.args.get(i);
    match f.name() {
        "time_floor" => {
            if column_of(arg(0)?) != Some(eddy_types::TIME_COLUMN) {
                return None;
            }
            let Value::String(period) = literal(arg(1)?)? else {
                return None;
            };
            let mut g = json!({"type": "period", "period": period, "timeZone": opts.tz.name()});
            if let Some(o) = arg(2) {
                match literal(o)? {
                    Value::Null => {}
                    Value::Number(n) => {
                        g["origin"] = json!(eddy_types::time::format_iso(n.as_i64()?))
                    }
                    Value::String(s) => g["origin"] = json!(s),
                    _ => return None,
                }
            }
            if let Some(tz) = arg(3) {
                match literal(tz)? {
                    Value::Null => {}
                    Value::String(s) => g["timeZone"] = json!(s),
                    _ => return None,
                }
            }
            Some(g)
        }
        "date_trunc" => {
            if column_of(arg(1)?) != Some(eddy_types::TIME_COLUMN) {
                return None;
            }
            let Value::String(unit) = literal(arg(0)?)? else {
                return None;
            };
            let period = match unit.to_lowercase().as_str() {
                "second" => "PT1S",
                "minute" => "PT1M",
                "hour" => "PT1H",
                "day" => "P1D",
                "week" => "P1W",
                "month" => "P1M",
                "quarter" => "P3M",
                "year" => "P1Y",
                _ => return None,
            };
            Some(json!({"type": "period", "period": period, "timeZone": opts.tz.name()}))
        }
        _ => None,
    }
}

fn output_type(kind: &str) -> &'static str {
    match kind {
        "LONG" => "LONG",
        "FLOAT" => "FLOAT",
        "DOUBLE" => "DOUBLE",
        _ => "STRING",
    }
}

/// Native aggregators (and a post-aggregator, for AVG) computing one SQL aggregate as `name`.
fn aggregator(
    e: &Expr,
    name: &str,
    cols: &Columns,
    opts: &Options,
) -> Option<(Vec<Value>, Option<Value>)> {
    let Expr::AggregateFunction(f) = e.clone().unalias() else {
        return None;
    };
    let p = &f.params;
    let func = f.func.name().to_lowercase();
    if !p.order_by.is_empty() {
        return first_last(&func, p, name, cols);
    }
    let arg_col = || -> Option<(&str, &str)> {
        let c = column_of(p.args.first()?)?;
        Some((c, cols.kind(c)?))
    };
    let numeric = |kind: &str| matches!(kind, "LONG" | "FLOAT" | "DOUBLE");
    let typed = |kind: &str, long: &str, double: &str| -> String {
        if kind == "LONG" {
            long.into()
        } else {
            double.into()
        }
    };
    let (mut aggs, post): (Vec<Value>, Option<Value>) = match (func.as_str(), p.distinct) {
        ("count", false) => match p.args.first() {
            None => (vec![json!({"type": "count", "name": name})], None),
            Some(a) if literal(a).is_some_and(|v| !v.is_null()) => {
                (vec![json!({"type": "count", "name": name})], None)
            }
            Some(_) => {
                let (c, _) = arg_col()?;
                (
                    vec![json!({
                        "type": "filtered",
                        "name": name,
                        "filter": {"type": "not", "field": {"type": "null", "column": c}},
                        "aggregator": {"type": "count", "name": name},
                    })],
                    None,
                )
            }
        },
        ("count", true) | ("approx_distinct", false) => {
            if func == "count" && !opts.approx_count_distinct {
                return None;
            }
            let (c, kind) = arg_col()?;
            if c == eddy_types::TIME_COLUMN {
                return None;
            }
            if kind.starts_with("COMPLEX<hyperUnique") {
                (
                    vec![
                        json!({"type": "hyperUnique", "name": name, "fieldName": c, "round": true}),
                    ],
                    None,
                )
            } else if kind.starts_with("COMPLEX") {
                return None;
            } else {
                (
                    vec![
                        json!({"type": "cardinality", "name": name, "fields": [c], "byRow": false, "round": true}),
                    ],
                    None,
                )
            }
        }
        ("sum", false) => {
            let (c, kind) = arg_col()?;
            if !numeric(kind) || c == eddy_types::TIME_COLUMN {
                return None;
            }
            (
                vec![
                    json!({"type": typed(kind, "longSum", "doubleSum"), "name": name, "fieldName": c}),
                ],
                None,
            )
        }
        ("min" | "max", false) => {
            let (c, kind) = arg_col()?;
            if !numeric(kind) {
                return None;
            }
            let t = if func == "min" {
                typed(kind, "longMin", "doubleMin")
            } else {
                typed(kind, "longMax", "doubleMax")
            };
            (vec![json!({"type": t, "name": name, "fieldName": c})], None)
        }
        ("avg", false) => {
            let (c, kind) = arg_col()?;
            if !numeric(kind) || c == eddy_types::TIME_COLUMN {
                return None;
            }
            let sum = format!("{name}:sum");
            let count = format!("{name}:count");
            (
                // A double sum: a long sum of large values (ids) would overflow.
                vec![
                    json!({"type": "doubleSum", "name": sum, "fieldName": c}),
                    json!({"type": "count", "name": count}),
                ],
                Some(json!({
                    "type": "arithmetic",
                    "name": name,
                    "fn": "quotient",
                    "fields": [
                        {"type": "fieldAccess", "fieldName": sum},
                        {"type": "fieldAccess", "fieldName": count},
                    ],
                })),
            )
        }
        _ => return None,
    };
    if let Some(w) = &p.filter {
        let f = filter::translate(w, cols)?.into_filter();
        aggs = aggs
            .into_iter()
            .map(|a| {
                let n = a["name"].clone();
                json!({"type": "filtered", "name": n, "filter": f, "aggregator": a})
            })
            .collect();
    }
    Some((aggs, post))
}

/// LATEST/EARLIEST (`last_value`/`first_value` ordered by `__time`) as Druid's typed
/// Last/First aggregators.
fn first_last(
    func: &str,
    p: &datafusion::logical_expr::expr::AggregateFunctionParams,
    name: &str,
    cols: &Columns,
) -> Option<(Vec<Value>, Option<Value>)> {
    let last = match func {
        "last_value" => true,
        "first_value" => false,
        _ => return None,
    };
    let [order] = p.order_by.as_slice() else {
        return None;
    };
    if column_of(&order.expr) != Some(eddy_types::TIME_COLUMN) || p.args.len() != 1 {
        return None;
    }
    // ORDER BY __time DESC flips which end is wanted.
    let last = last == order.asc;
    let c = column_of(&p.args[0])?;
    let kind = cols.kind(c)?;
    let prefix = match kind {
        "STRING" => "string",
        "LONG" => "long",
        "FLOAT" => "float",
        "DOUBLE" => "double",
        _ => return None,
    };
    let t = format!("{prefix}{}", if last { "Last" } else { "First" });
    let mut agg = json!({"type": t, "name": name, "fieldName": c});
    if kind == "STRING" {
        agg["maxStringBytes"] = json!(1024);
    }
    if let Some(w) = &p.filter {
        let f = filter::translate(w, cols)?.into_filter();
        agg = json!({"type": "filtered", "name": name, "filter": f, "aggregator": agg});
    }
    Some((vec![agg], None))
}

/// The datasource scan under an aggregate, with its group and aggregate expressions (in that
/// order) rewritten over the table's columns; None when the input is not a plain scan.
fn aggregate_input(agg: &Aggregate) -> Option<(Arc<DruidTable>, &TableScan, Vec<Expr>)> {
    let all: Vec<Expr> = agg
        .group_expr
        .iter()
        .chain(agg.aggr_expr.iter())
        .cloned()
        .collect();
    let (table, scan, exprs) = scan_below(&agg.input, all)?;
    scan.fetch.is_none().then_some((table, scan, exprs))
}

/// An aggregate over one datasource as a groupBy or timeseries query.
fn aggregate(agg: &Aggregate, opts: &Options) -> Option<NativeNode> {
    let n_group = agg.group_expr.len();
    let (table, scan, exprs) = aggregate_input(agg)?;
    let cols = &table.columns;
    // GROUPING SETS / ROLLUP / CUBE have no single native form here.
    if exprs[..n_group]
        .iter()
        .any(|e| matches!(e, Expr::GroupingSet(_)))
    {
        return None;
    }
    let mut granularity: Option<Value> = None;
    let mut dimensions = Vec::new();
    let mut sources = Vec::new();
    for (i, e) in exprs[..n_group].iter().enumerate() {
        if let Some(g) = time_granularity(e, opts) {
            if granularity.is_some() {
                return None;
            }
            granularity = Some(g);
            sources.push(Source::Timestamp);
            continue;
        }
        let c = column_of(e)?;
        if !matches!(e, Expr::Column(_)) {
            return None;
        }
        let kind = cols.kind(c)?;
        if kind.starts_with("COMPLEX") {
            return None;
        }
        let name = format!("d{i}");
        dimensions.push(json!({
            "type": "default",
            "dimension": c,
            "outputName": name,
            "outputType": output_type(kind),
        }));
        sources.push(Source::Field(name));
    }
    let mut aggregations = Vec::new();
    let mut post = Vec::new();
    for (i, e) in exprs[n_group..].iter().enumerate() {
        let name = format!("a{i}");
        let (a, p) = aggregator(e, &name, cols, opts)?;
        aggregations.extend(a);
        post.extend(p);
        sources.push(Source::Field(name));
    }
    let parts: Vec<Native> = scan
        .filters
        .iter()
        .map(|f| filter::translate(f, cols))
        .collect::<Option<_>>()?;
    let (intervals, filter) = filter::split(parts);
    let (intervals, filter) = intervals_json(&intervals, filter);
    let time_bucketed = granularity.is_some();
    let gran = granularity.unwrap_or_else(|| json!("all"));
    let (mut query, shape) = if dimensions.is_empty() {
        (
            json!({
                "queryType": "timeseries",
                "dataSource": cols.ds,
                "intervals": intervals,
                "granularity": gran,
                "aggregations": aggregations,
                "postAggregations": post,
                "context": {"skipEmptyBuckets": true},
            }),
            Shape::Timeseries,
        )
    } else {
        (
            json!({
                "queryType": "groupBy",
                "dataSource": cols.ds,
                "intervals": intervals,
                "granularity": gran,
                "dimensions": dimensions,
                "aggregations": aggregations,
                "postAggregations": post,
            }),
            Shape::GroupBy,
        )
    };
    if let Some(f) = filter {
        query["filter"] = f;
    }
    Some(NativeNode {
        query,
        shape,
        sources,
        schema: agg.schema.clone(),
        one_row: n_group == 0 && !time_bucketed,
    })
}

/// An aggregate native queries cannot run whole (its keys or arguments are expressions, or it
/// takes MIN/MAX of strings) is split: a native groupBy on every column the aggregate reads,
/// with a row count, runs next to the data; DataFusion evaluates the expressions on those
/// (far fewer) rows and finishes the aggregate, weighting by the count. COUNT(x) becomes
/// SUM(count) over rows where x is not null, SUM(e) becomes SUM(e * count), AVG(e) their
/// quotient; MIN, MAX and COUNT(DISTINCT) are unchanged by duplicates.
fn preaggregate(agg: &Aggregate) -> Result<Option<LogicalPlan>> {
    let n_group = agg.group_expr.len();
    let Some((table, scan, exprs)) = aggregate_input(agg) else {
        return Ok(None);
    };
    if exprs.iter().any(|e| matches!(e, Expr::GroupingSet(_))) {
        return Ok(None);
    }
    let cols = &table.columns;
    let parts: Option<Vec<Native>> = scan
        .filters
        .iter()
        .map(|f| filter::translate(f, cols))
        .collect();
    let Some(parts) = parts else {
        return Ok(None);
    };
    // The columns read, in table order; complex columns cannot be grouped on.
    let mut read: Vec<String> = Vec::new();
    for e in &exprs {
        for c in e.column_refs() {
            if !read.contains(&c.name) {
                read.push(c.name.clone());
            }
        }
    }
    if read
        .iter()
        .any(|c| cols.kind(c).is_none_or(|k| k.starts_with("COMPLEX")))
    {
        return Ok(None);
    }
    read.sort_by_key(|c| cols.list.iter().position(|(n, _)| n == c));
    let cnt_name = "__rows";
    let cnt = Expr::Column(Column::new(Some(scan.table_name.clone()), cnt_name));
    // Decompose each aggregate; None when one has no weighted form.
    let mut outer_aggs: Vec<Expr> = Vec::new();
    let mut finals: Vec<Expr> = Vec::new();
    for (i, e) in exprs[n_group..].iter().enumerate() {
        let Expr::AggregateFunction(f) = e.clone().unalias() else {
            return Ok(None);
        };
        let p = &f.params;
        if !p.order_by.is_empty() {
            return Ok(None);
        }
        let name = f.func.name().to_lowercase();
        let arg = p.args.first().cloned();
        let make = |func: Arc<datafusion::logical_expr::AggregateUDF>,
                    args: Vec<Expr>,
                    distinct: bool,
                    filter: Option<Box<Expr>>| {
            Expr::AggregateFunction(datafusion::logical_expr::expr::AggregateFunction::new_udf(
                func,
                args,
                distinct,
                filter,
                vec![],
                None,
            ))
        };
        let sum = datafusion::functions_aggregate::sum::sum_udaf();
        let not_null = |e: &Expr| -> Option<Box<Expr>> {
            let nn = e.clone().is_not_null();
            Some(Box::new(match &p.filter {
                Some(f) => f.as_ref().clone().and(nn),
                None => nn,
            }))
        };
        let a = format!("__a{i}");
        let b = format!("__b{i}");
        let col = |n: &str| Expr::Column(Column::new_unqualified(n));
        let fin = match (name.as_str(), p.distinct) {
            ("count", false) => {
                let counted = match &arg {
                    None => p.filter.clone(),
                    Some(x) if literal(x).is_some_and(|v| !v.is_null()) => p.filter.clone(),
                    Some(x) => not_null(x),
                };
                outer_aggs.push(make(sum.clone(), vec![cnt.clone()], false, counted).alias(&a));
                // COUNT over no rows is 0, not NULL (a CASE: the plan is already simplified).
                datafusion::logical_expr::when(
                    col(&a).is_null(),
                    datafusion::logical_expr::lit(0i64),
                )
                .otherwise(col(&a))?
            }
            ("sum", false) => {
                let Some(x) = arg else { return Ok(None) };
                outer_aggs.push(
                    make(sum.clone(), vec![x * cnt.clone()], false, p.filter.clone()).alias(&a),
                );
                col(&a)
            }
            ("avg", false) => {
                let Some(x) = arg else { return Ok(None) };
                let as_f64 = |e: Expr| {
                    datafusion::logical_expr::cast(e, arrow::datatypes::DataType::Float64)
                };
                outer_aggs.push(
                    make(
                        sum.clone(),
                        vec![as_f64(x.clone()) * as_f64(cnt.clone())],
                        false,
                        p.filter.clone(),
                    )
                    .alias(&a),
                );
                outer_aggs
                    .push(make(sum.clone(), vec![cnt.clone()], false, not_null(&x)).alias(&b));
                col(&a) / as_f64(col(&b))
            }
            ("min" | "max", false)
            | ("count" | "approx_distinct", true)
            | ("approx_distinct", false) => {
                outer_aggs.push(
                    make(f.func.clone(), p.args.clone(), p.distinct, p.filter.clone()).alias(&a),
                );
                col(&a)
            }
            _ => return Ok(None),
        };
        finals.push(fin);
    }
    // The native groupBy: one dimension per column read (`__time` as granularity none).
    let mut dimensions = Vec::new();
    let mut sources = Vec::new();
    let mut fields = Vec::new();
    let mut granularity = json!("all");
    for c in &read {
        let kind = cols.kind(c).unwrap_or("STRING");
        fields.push(arrow::datatypes::Field::new(
            c,
            super::table::arrow_type(c, kind),
            c != eddy_types::TIME_COLUMN,
        ));
        if c == eddy_types::TIME_COLUMN {
            granularity = json!("none");
            sources.push(Source::Timestamp);
        } else {
            dimensions.push(json!({"type": "default", "dimension": c, "outputName": c, "outputType": output_type(kind)}));
            sources.push(Source::Field(c.clone()));
        }
    }
    fields.push(arrow::datatypes::Field::new(
        cnt_name,
        arrow::datatypes::DataType::Int64,
        false,
    ));
    sources.push(Source::Field(cnt_name.to_string()));
    let (intervals, filter) = filter::split(parts);
    let (intervals, filter) = intervals_json(&intervals, filter);
    let shape = if dimensions.is_empty() {
        Shape::Timeseries
    } else {
        Shape::GroupBy
    };
    let mut query = json!({
        "queryType": if shape == Shape::GroupBy { "groupBy" } else { "timeseries" },
        "dataSource": cols.ds,
        "intervals": intervals,
        "granularity": granularity,
        "aggregations": [{"type": "count", "name": cnt_name}],
    });
    if shape == Shape::GroupBy {
        query["dimensions"] = json!(dimensions);
    } else {
        query["context"] = json!({"skipEmptyBuckets": true});
    }
    if let Some(f) = filter {
        query["filter"] = f;
    }
    let schema = datafusion::common::DFSchema::try_from_qualified_schema(
        scan.table_name.clone(),
        &arrow::datatypes::Schema::new(fields),
    )?;
    let node = NativeNode {
        query,
        shape,
        sources,
        schema: Arc::new(schema),
        one_row: false,
    };
    let groups: Vec<Expr> = exprs[..n_group].to_vec();
    let built = datafusion::logical_expr::LogicalPlanBuilder::from(node.clone().into_plan())
        .aggregate(groups.clone(), outer_aggs)?
        .build()?;
    // Restore the original output names and types, so the plan above is unchanged.
    let inner_schema = built.schema().clone();
    let mut projection = Vec::new();
    for (i, (qualifier, field)) in agg.schema.iter().enumerate() {
        let value = if i < n_group {
            let (q, f) = inner_schema.qualified_field(i);
            Expr::Column(Column::new(q.cloned(), f.name()))
        } else {
            finals[i - n_group].clone()
        };
        let value = datafusion::logical_expr::cast(value, field.data_type().clone());
        projection.push(value.alias_qualified(qualifier.cloned(), field.name()));
    }
    let plan = datafusion::logical_expr::LogicalPlanBuilder::from(built)
        .project(projection)?
        .build()?;
    Ok(Some(plan))
}

/// Largest LIMIT answered by a topN query (Druid's default maxTopNLimit is 100000; beyond a
/// few thousand rows a groupBy is as cheap).
const MAX_TOPN: usize = 1000;

/// One dimension over all time, ordered by one column, with a small LIMIT: a topN query, as
/// Druid plans it (`useApproximateTopN`): each segment keeps its best
/// max(1000, threshold) values, so ranks past that can be approximate on skewed data.
fn as_topn(groupby: &Value, columns: &[Value], fetch: usize) -> Option<Value> {
    let dims = groupby.get("dimensions")?.as_array()?;
    if dims.len() != 1 || groupby.get("granularity")? != "all" || fetch > MAX_TOPN {
        return None;
    }
    let [order] = columns else {
        return None;
    };
    let key = order.get("dimension")?.as_str()?;
    let descending = order.get("direction")? == "descending";
    // Per-segment pruning ranks by partial values; a distinct-count sketch's partials do not
    // add up, so ranking by one would drop groups that win overall. Those stay groupBys.
    let sketch = groupby["aggregations"].as_array()?.iter().any(|a| {
        a["name"] == key && matches!(a["type"].as_str(), Some("cardinality" | "hyperUnique"))
    });
    if sketch {
        return None;
    }
    let dim = &dims[0];
    let metric = if dim.get("outputName")?.as_str()? == key {
        let ordering = if order.get("dimensionOrder")? == "numeric" {
            "numeric"
        } else {
            "lexicographic"
        };
        let m = json!({"type": "dimension", "ordering": ordering});
        if descending {
            json!({"type": "inverted", "metric": m})
        } else {
            m
        }
    } else if descending {
        json!(key)
    } else {
        json!({"type": "inverted", "metric": key})
    };
    let mut q = json!({
        "queryType": "topN",
        "dataSource": groupby["dataSource"],
        "intervals": groupby["intervals"],
        "granularity": "all",
        "dimension": dim,
        "metric": metric,
        "threshold": fetch,
        "aggregations": groupby["aggregations"],
        "postAggregations": groupby["postAggregations"],
    });
    if let Some(f) = groupby.get("filter") {
        q["filter"] = f.clone();
    }
    Some(q)
}

/// ORDER BY ... LIMIT (or LIMIT alone) over a groupBy node, as the node's `limitSpec` (or a
/// topN query). The
/// SQL sort stays above it (it re-sorts only the limited rows).
fn push_limit(input: &LogicalPlan, order: &[SortExpr], fetch: usize) -> Option<LogicalPlan> {
    match input {
        LogicalPlan::Projection(p) => {
            // Map sort keys through the projection when they are plain renames.
            let mapped: Vec<SortExpr> = order
                .iter()
                .map(|s| {
                    let e = inline(s.expr.clone(), p)?;
                    matches!(e, Expr::Column(_)).then(|| SortExpr {
                        expr: e,
                        asc: s.asc,
                        nulls_first: s.nulls_first,
                    })
                })
                .collect::<Option<_>>()?;
            let inner = push_limit(&p.input, &mapped, fetch)?;
            let mut p2 = p.clone();
            p2.input = Arc::new(inner);
            Some(LogicalPlan::Projection(p2))
        }
        LogicalPlan::Extension(ext) => {
            let node = ext.node.as_any().downcast_ref::<NativeNode>()?;
            if node.shape != Shape::GroupBy {
                return None;
            }
            let mut columns = Vec::new();
            for s in order {
                let Expr::Column(c) = &s.expr else {
                    return None;
                };
                let idx = node.schema.index_of_column(c).ok()?;
                let Source::Field(name) = &node.sources[idx] else {
                    return None;
                };
                // Druid orders nulls lowest: ascending puts them first, descending last. A
                // grouping key sorted the other way (SQL's default) is left to DataFusion.
                let is_dimension = node.query["dimensions"]
                    .as_array()
                    .is_some_and(|d| d.iter().any(|d| d["outputName"] == name.as_str()));
                if is_dimension && s.nulls_first != s.asc {
                    return None;
                }
                let numeric = node.schema.field(idx).data_type().is_numeric();
                columns.push(json!({
                    "dimension": name,
                    "direction": if s.asc { "ascending" } else { "descending" },
                    "dimensionOrder": if numeric { "numeric" } else { "lexicographic" },
                }));
            }
            let mut node = node.clone();
            if let Some(topn) = as_topn(&node.query, &columns, fetch) {
                node.query = topn;
                node.shape = Shape::TopN;
            } else {
                node.query["limitSpec"] =
                    json!({"type": "default", "limit": fetch, "columns": columns});
            }
            Some(node.into_plan())
        }
        _ => None,
    }
}
