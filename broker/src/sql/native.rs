//! A native Druid query inside a DataFusion plan: the logical node the pushdown step puts where
//! it took over part of a plan, the physical operator that runs it through the broker's
//! scatter-gather, and the conversion of its JSON result into Arrow columns.

use std::cmp::Ordering;
use std::fmt;
use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanArray, Float64Array, Int64Array, RecordBatch, RecordBatchOptions, StringArray,
    TimestampMillisecondArray, new_null_array,
};
use arrow::compute::cast;
use arrow::datatypes::{DataType, SchemaRef};
use async_trait::async_trait;
use datafusion::catalog::Session;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{DFSchemaRef, DataFusionError, Result};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::physical_planning_context::PhysicalPlanningContext;
use datafusion::logical_expr::{
    Expr, LogicalPlan, UserDefinedLogicalNode, UserDefinedLogicalNodeCore,
};
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning, PlanProperties,
};
use datafusion::physical_planner::{ExtensionPlanner, PhysicalPlanner};
use serde_json::Value;

use eddy_query::Query;
use eddy_types::time::parse_iso;

use super::planner::Statement;
use crate::Broker;

/// Where one output column of a native query is read from.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd)]
pub enum Source {
    /// The row's bucket timestamp (groupBy and timeseries).
    Timestamp,
    /// A named field: a dimension or aggregator output, or a scanned column.
    Field(String),
}

/// The result shape of the native query, which decides how rows are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd)]
pub enum Shape {
    GroupBy,
    Timeseries,
    TopN,
    Scan,
}

/// A native query with the DataFusion schema of its output.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct NativeNode {
    /// The native query as JSON (without context, which is added at run time).
    pub query: Value,
    pub shape: Shape,
    pub sources: Vec<Source>,
    pub schema: DFSchemaRef,
    /// An aggregate without GROUP BY: exactly one row, even over no data.
    pub one_row: bool,
}

impl PartialOrd for NativeNode {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        self.query.to_string().partial_cmp(&other.query.to_string())
    }
}

impl UserDefinedLogicalNodeCore for NativeNode {
    fn name(&self) -> &str {
        "DruidQuery"
    }

    fn inputs(&self) -> Vec<&LogicalPlan> {
        vec![]
    }

    fn schema(&self) -> &DFSchemaRef {
        &self.schema
    }

    fn expressions(&self) -> Vec<Expr> {
        vec![]
    }

    fn fmt_for_explain(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DruidQuery: {}", self.query)
    }

    fn with_exprs_and_inputs(&self, _exprs: Vec<Expr>, _inputs: Vec<LogicalPlan>) -> Result<Self> {
        Ok(self.clone())
    }
}

impl NativeNode {
    pub fn into_plan(self) -> LogicalPlan {
        LogicalPlan::Extension(datafusion::logical_expr::Extension {
            node: Arc::new(self),
        })
    }
}

/// Plans `DruidQuery` nodes as `NativeExec` operators.
pub struct NativePlanner {
    pub stmt: Arc<Statement>,
}

#[async_trait]
impl ExtensionPlanner for NativePlanner {
    async fn plan_extension(
        &self,
        _planner: &dyn PhysicalPlanner,
        node: &dyn UserDefinedLogicalNode,
        _logical_inputs: &[&LogicalPlan],
        _physical_inputs: &[Arc<dyn ExecutionPlan>],
        _session_state: &dyn Session,
        _planning_ctx: &PhysicalPlanningContext,
    ) -> Result<Option<Arc<dyn ExecutionPlan>>> {
        match node.as_any().downcast_ref::<NativeNode>() {
            Some(node) => self.stmt.exec(node).map(Some),
            None => Ok(None),
        }
    }
}

/// Runs one native query when polled and yields its result as one batch.
pub struct NativeExec {
    broker: Arc<Broker>,
    query: Value,
    shape: Shape,
    sources: Vec<Source>,
    one_row: bool,
    schema: SchemaRef,
    props: Arc<PlanProperties>,
}

impl NativeExec {
    /// `query` is the node's query with its run-time context filled in.
    pub fn new(broker: Arc<Broker>, query: Value, node: &NativeNode) -> Self {
        let schema: SchemaRef = Arc::new(node.schema.as_arrow().clone());
        let props = Arc::new(PlanProperties::new(
            EquivalenceProperties::new(schema.clone()),
            Partitioning::UnknownPartitioning(1),
            EmissionType::Final,
            Boundedness::Bounded,
        ));
        NativeExec {
            broker,
            query,
            shape: node.shape,
            sources: node.sources.clone(),
            one_row: node.one_row,
            schema,
            props,
        }
    }
}

impl fmt::Debug for NativeExec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NativeExec({})", self.query)
    }
}

impl DisplayAs for NativeExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DruidQueryExec: {}", self.query)
    }
}

impl ExecutionPlan for NativeExec {
    fn name(&self) -> &str {
        "DruidQueryExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.props
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    #[allow(deprecated)]
    fn with_new_children(
        self: Arc<Self>,
        _children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        Ok(self)
    }

    fn execute(
        &self,
        _partition: usize,
        _context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let broker = self.broker.clone();
        let query = self.query.clone();
        let shape = self.shape;
        let sources = self.sources.clone();
        let one_row = self.one_row;
        let schema = self.schema.clone();
        let out_schema = schema.clone();
        let fut = async move {
            let query_id = query
                .pointer("/context/queryId")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            let parsed = Query::from_json(query).map_err(external)?;
            let result = broker.run(parsed, &query_id).await.map_err(external)?;
            to_batch(&schema, shape, &sources, one_row, &result)
        };
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            out_schema,
            futures::stream::once(fut),
        )))
    }
}

fn external<E: std::error::Error + Send + Sync + 'static>(e: E) -> DataFusionError {
    DataFusionError::External(Box::new(e))
}

/// The rows of a native result, each as (timestamp, fields) accessors.
fn rows<'a>(shape: Shape, result: &'a Value) -> Vec<Row<'a>> {
    let Some(items) = result.as_array() else {
        return vec![];
    };
    match shape {
        Shape::GroupBy => items
            .iter()
            .map(|r| Row::Object {
                ts: r.get("timestamp"),
                fields: r.get("event"),
            })
            .collect(),
        Shape::Timeseries => items
            .iter()
            .map(|r| Row::Object {
                ts: r.get("timestamp"),
                fields: r.get("result"),
            })
            .collect(),
        Shape::TopN => items
            .iter()
            .flat_map(|bucket| {
                let ts = bucket.get("timestamp");
                bucket
                    .get("result")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .map(move |r| Row::Object {
                        ts,
                        fields: Some(r),
                    })
            })
            .collect(),
        Shape::Scan => {
            let mut out = Vec::new();
            for chunk in items {
                let columns: Vec<&str> = chunk
                    .get("columns")
                    .and_then(Value::as_array)
                    .map(|c| c.iter().filter_map(Value::as_str).collect())
                    .unwrap_or_default();
                let columns = Arc::new(columns);
                if let Some(events) = chunk.get("events").and_then(Value::as_array) {
                    for e in events {
                        out.push(Row::List {
                            columns: columns.clone(),
                            values: e,
                        });
                    }
                }
            }
            out
        }
    }
}

enum Row<'a> {
    Object {
        ts: Option<&'a Value>,
        fields: Option<&'a Value>,
    },
    List {
        columns: Arc<Vec<&'a str>>,
        values: &'a Value,
    },
}

impl Row<'_> {
    fn get(&self, source: &Source) -> Option<&Value> {
        match (self, source) {
            (Row::Object { ts, .. }, Source::Timestamp) => *ts,
            (Row::Object { fields, .. }, Source::Field(name)) => fields.and_then(|f| f.get(name)),
            (Row::List { columns, values }, Source::Field(name)) => columns
                .iter()
                .position(|c| c == name)
                .and_then(|i| values.get(i)),
            (Row::List { .. }, Source::Timestamp) => None,
        }
    }
}

/// Converts a native JSON result into one batch of `schema`.
pub fn to_batch(
    schema: &SchemaRef,
    shape: Shape,
    sources: &[Source],
    one_row: bool,
    result: &Value,
) -> Result<RecordBatch> {
    let rows = rows(shape, result);
    let empty = Value::Null;
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(sources.len());
    for (field, source) in schema.fields().iter().zip(sources) {
        let values: Vec<&Value> = rows
            .iter()
            .map(|r| r.get(source).unwrap_or(&empty))
            .collect();
        columns.push(json_column(&values, field.data_type())?);
    }
    let options = RecordBatchOptions::new().with_row_count(Some(rows.len()));
    let batch = RecordBatch::try_new_with_options(schema.clone(), columns, &options)?;
    if one_row && batch.num_rows() == 0 {
        return empty_aggregate_row(schema);
    }
    Ok(batch)
}

/// The single row of an aggregate over no rows: counts (and distinct counts) are 0, everything
/// else null.
fn empty_aggregate_row(schema: &SchemaRef) -> Result<RecordBatch> {
    let columns: Vec<ArrayRef> = schema
        .fields()
        .iter()
        .map(|f| {
            let counts = f.name().starts_with("count(") || f.name().starts_with("approx_distinct(");
            if counts && f.data_type().is_integer() {
                cast(
                    &(Arc::new(Int64Array::from(vec![0])) as ArrayRef),
                    f.data_type(),
                )
                .map_err(DataFusionError::from)
            } else {
                Ok(new_null_array(f.data_type(), 1))
            }
        })
        .collect::<Result<_>>()?;
    Ok(RecordBatch::try_new(schema.clone(), columns)?)
}

/// One Arrow column of type `target` from JSON values.
fn json_column(values: &[&Value], target: &DataType) -> Result<ArrayRef> {
    let natural: ArrayRef = match target {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => Arc::new(
            values
                .iter()
                .map(|v| match v {
                    Value::Null => None,
                    Value::String(s) => Some(s.clone()),
                    other => Some(other.to_string()),
                })
                .collect::<StringArray>(),
        ),
        DataType::Timestamp(_, _) | DataType::Date32 | DataType::Date64 => Arc::new(
            values
                .iter()
                .map(|v| match v {
                    Value::Number(n) => n.as_i64(),
                    Value::String(s) => parse_iso(s).ok(),
                    _ => None,
                })
                .collect::<TimestampMillisecondArray>(),
        ),
        DataType::Boolean => Arc::new(
            values
                .iter()
                .map(|v| match v {
                    Value::Bool(b) => Some(*b),
                    Value::Number(n) => n.as_f64().map(|f| f != 0.0),
                    _ => None,
                })
                .collect::<BooleanArray>(),
        ),
        t if t.is_integer() => Arc::new(
            values
                .iter()
                .map(|v| match v {
                    Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
                    Value::String(s) => s.parse().ok(),
                    _ => None,
                })
                .collect::<Int64Array>(),
        ),
        t if t.is_floating() || t.is_numeric() => Arc::new(
            values
                .iter()
                .map(|v| match v {
                    Value::Number(n) => n.as_f64(),
                    Value::String(s) => s.parse().ok(),
                    _ => None,
                })
                .collect::<Float64Array>(),
        ),
        other => return Ok(new_null_array(other, values.len())),
    };
    if natural.data_type() == target {
        Ok(natural)
    } else {
        Ok(cast(&natural, target)?)
    }
}
