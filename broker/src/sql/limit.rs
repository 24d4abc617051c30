//! ORDER BY ... LIMIT over a native groupBy (its `limitSpec`, or a topN query) or over a native
//! scan (its `orderBy` and `limit`: each segment returns only its first rows).

use std::sync::Arc;

use datafusion::logical_expr::{Expr, LogicalPlan, SortExpr};
use serde_json::{Value, json};

use super::native::{NativeNode, Shape, Source};
use super::pushdown::inline;

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
pub(super) fn push_limit(
    input: &LogicalPlan,
    order: &[SortExpr],
    fetch: usize,
) -> Option<LogicalPlan> {
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
            if node.shape == Shape::Scan {
                return scan_limit(node, order, fetch);
            }
            if node.shape != Shape::GroupBy || node.query.get("limitSpec").is_some() {
                return None;
            }
            let mut columns = Vec::new();
            for s in order {
                let (idx, name) = sorted_field(node, s)?;
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

/// The output position and native field of a sort key that is a plain column of `node`.
fn sorted_field<'a>(node: &'a NativeNode, s: &SortExpr) -> Option<(usize, &'a String)> {
    let Expr::Column(c) = &s.expr else {
        return None;
    };
    let idx = node.schema.index_of_column(c).ok()?;
    match &node.sources[idx] {
        Source::Field(name) => Some((idx, name)),
        Source::Timestamp => None,
    }
}

/// ORDER BY plain columns ... LIMIT over a scan: the scan's `orderBy` (nulls placed as SQL asks)
/// and `limit`.
fn scan_limit(node: &NativeNode, order: &[SortExpr], fetch: usize) -> Option<LogicalPlan> {
    if node.query.get("limit").is_some() || node.query.get("orderBy").is_some() {
        return None;
    }
    let mut order_by = Vec::new();
    for s in order {
        let (_, name) = sorted_field(node, s)?;
        order_by.push(json!({
            "columnName": name,
            "order": if s.asc { "ascending" } else { "descending" },
            "nullsFirst": s.nulls_first,
        }));
    }
    let mut node = node.clone();
    if !order_by.is_empty() {
        node.query["orderBy"] = Value::Array(order_by);
    }
    node.query["limit"] = json!(fetch);
    Some(node.into_plan())
}
