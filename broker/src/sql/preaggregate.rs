//! Pre-aggregation for aggregates over expressions: a native groupBy on the columns read, with a
//! row count, finished in DataFusion (see `preaggregate`).

use std::sync::Arc;

use datafusion::common::{Column, Result};
use datafusion::logical_expr::{Aggregate, Expr, LogicalPlan};
use serde_json::json;

use super::filter::{self, Native, literal};
use super::native::{NativeNode, Shape, Source};
use super::pushdown::{aggregate_input, output_type};
use super::table::intervals_json;

/// An aggregate native queries cannot run whole (its keys or arguments are expressions, or it
/// takes MIN/MAX of strings) is split: a native groupBy on every column the aggregate reads,
/// with a row count, runs next to the data; DataFusion evaluates the expressions on those
/// (far fewer) rows and finishes the aggregate, weighting by the count. COUNT(x) becomes
/// SUM(count) over rows where x is not null, SUM(e) becomes SUM(e * count), AVG(e) their
/// quotient; MIN, MAX and COUNT(DISTINCT) are unchanged by duplicates.
pub(super) fn preaggregate(agg: &Aggregate) -> Result<Option<LogicalPlan>> {
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
