//! The pushdown step: after DataFusion has optimized a plan (filters and projections pushed into
//! table scans), the parts native queries can express are replaced by `DruidQuery` nodes that
//! run next to the data:
//! - an aggregate over one datasource (GROUP BY columns, expressions the native expression
//!   language computes the same way (virtual columns), at most one time bucketing, COUNT,
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
use datafusion::logical_expr::{Aggregate, Expr, LogicalPlan, Projection, TableScan};
use serde_json::{Value, json};

use eddy_types::time::TimeZone;

use super::aggregators::aggregator;
use super::expression;
use super::filter::{self, Native, column_of, literal};
use super::limit::push_limit;
use super::native::{NativeNode, Shape, Source};
use super::preaggregate::preaggregate;
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
            // LIMIT without ORDER BY: the native query returns its first rows (a groupBy the
            // first groups by key, which each segment can find alone).
            LogicalPlan::Limit(limit) => {
                use datafusion::logical_expr::{FetchType, SkipType};
                let (Ok(FetchType::Literal(Some(fetch))), Ok(SkipType::Literal(skip))) =
                    (limit.get_fetch_type(), limit.get_skip_type())
                else {
                    return Ok(Transformed::no(p));
                };
                Ok(
                    push_limit(&limit.input, &[], skip.saturating_add(fetch)).map_or(
                        Transformed::no(p.clone()),
                        |input| {
                            let mut l = limit.clone();
                            l.input = Arc::new(input);
                            Transformed::yes(LogicalPlan::Limit(l))
                        },
                    ),
                )
            }
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
pub(super) fn scan_below(
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
pub(super) fn inline(e: Expr, p: &Projection) -> Option<Expr> {
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
            let period = super::functions::unit_period_text(&unit).filter(|p| *p != "PT0.001S")?;
            Some(json!({"type": "period", "period": period, "timeZone": opts.tz.name()}))
        }
        _ => None,
    }
}

pub(super) fn output_type(kind: &str) -> &'static str {
    match kind {
        "LONG" => "LONG",
        "FLOAT" => "FLOAT",
        "DOUBLE" => "DOUBLE",
        _ => "STRING",
    }
}

/// The datasource scan under an aggregate, with its group and aggregate expressions (in that
/// order) rewritten over the table's columns; None when the input is not a plain scan.
pub(super) fn aggregate_input(agg: &Aggregate) -> Option<(Arc<DruidTable>, &TableScan, Vec<Expr>)> {
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
    let mut virtuals = Vec::new();
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
        let computed = virtual_key(e, cols, opts).map(|x| (x, "LONG")).or_else(|| {
            if matches!(e, Expr::Column(_)) {
                return None;
            }
            let (text, kind) = expression::translate(e, cols)?;
            Some((text, kind.output_type()?))
        });
        if let Some((expression, out)) = computed {
            let (v, name) = (format!("v{i}"), format!("d{i}"));
            virtuals.push(json!({"type": "expression", "name": v, "expression": expression, "outputType": out}));
            dimensions.push(
                json!({"type": "default", "dimension": v, "outputName": name, "outputType": out}),
            );
            sources.push(Source::Field(name));
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
        let (a, p) = aggregator(e, &name, cols, opts, &mut virtuals)?;
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
    if !virtuals.is_empty() {
        query["virtualColumns"] = Value::Array(virtuals);
    }
    Some(NativeNode {
        query,
        shape,
        sources,
        schema: agg.schema.clone(),
        one_row: n_group == 0 && !time_bucketed,
    })
}

/// A group key native queries compute in a virtual column, as a native expression: TIME_EXTRACT
/// (EXTRACT) of `__time` or a long column holding milliseconds, and DATE_TRUNC of such a long
/// column.
fn virtual_key(e: &Expr, cols: &Columns, opts: &Options) -> Option<String> {
    let Expr::ScalarFunction(f) = e else {
        return None;
    };
    if f.name() == "date_trunc" {
        // DATE_TRUNC of a long column of milliseconds (on `__time` it is the granularity):
        // the native floor to the same period in the session's zone.
        let [unit, column] = f.args.as_slice() else {
            return None;
        };
        let c = column_of(column)?;
        let period = super::functions::unit_period_text(literal(unit)?.as_str()?)
            .filter(|p| *p != "PT0.001S")?;
        let tz = opts.tz.name();
        if c == eddy_types::TIME_COLUMN
            || cols.kind(c)? != "LONG"
            || c.contains(['"', '\\'])
            || tz.contains(['\'', '\\'])
        {
            return None;
        }
        return Some(format!(
            "timestamp_floor(\"{c}\", '{period}', null, '{tz}')"
        ));
    }
    if f.name() != "time_extract" {
        return None;
    }
    let (column, unit, tz) = match f.args.as_slice() {
        [c, u] => (c, u, opts.tz.name()),
        [c, u, z] => (c, u, literal(z)?.as_str()?.to_string()),
        _ => return None,
    };
    let Expr::Column(c) = column else {
        return None;
    };
    if cols.kind(&c.name)? != "LONG" || c.name.contains(['"', '\\']) {
        return None;
    }
    let unit = literal(unit)?.as_str()?.to_ascii_uppercase();
    // TIME_EXTRACT's units mean what the native `timestamp_extract`'s of the same names do.
    if eddy_expr::TimeUnit::parse(&unit).is_err() || tz.contains(['\'', '\\']) {
        return None;
    }
    Some(format!(
        "timestamp_extract(\"{}\", '{unit}', '{tz}')",
        c.name
    ))
}
