//! Datasources as SQL tables: Druid's column typing in Arrow terms, and the table provider whose
//! scans are native scan queries (used only for what the pushdown step could not aggregate
//! next to the data).

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use async_trait::async_trait;
use datafusion::catalog::Session;
use datafusion::common::{DFSchema, Result};
use datafusion::datasource::{TableProvider, TableType};
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::physical_plan::ExecutionPlan;
use serde_json::{Value, json};

use super::filter::{self, Native};
use super::functions::TIMESTAMP;
use super::native::{NativeNode, Shape, Source};
use super::planner::Statement;

/// A datasource's columns with their Druid types.
#[derive(Debug, Clone)]
pub struct Columns {
    pub ds: String,
    pub list: Vec<(String, String)>,
}

impl Columns {
    pub fn kind(&self, col: &str) -> Option<&str> {
        self.list
            .iter()
            .find(|(n, _)| n == col)
            .map(|(_, k)| k.as_str())
    }

    pub fn schema(&self) -> SchemaRef {
        Arc::new(Schema::new(
            self.list
                .iter()
                .map(|(name, kind)| {
                    let time = name == eddy_types::TIME_COLUMN;
                    Field::new(name, arrow_type(name, kind), !time)
                })
                .collect::<Vec<_>>(),
        ))
    }
}

/// Arrow type of a Druid column.
pub fn arrow_type(name: &str, kind: &str) -> DataType {
    if name == eddy_types::TIME_COLUMN {
        return TIMESTAMP;
    }
    match kind {
        "LONG" => DataType::Int64,
        "FLOAT" => DataType::Float32,
        "DOUBLE" => DataType::Float64,
        "STRING" => DataType::Utf8,
        _ => DataType::Binary,
    }
}

/// (Druid runtime type, SQL type, JDBC type code) of an Arrow type.
pub fn type_names(t: &DataType) -> (&'static str, &'static str, i64) {
    match t {
        DataType::Timestamp(_, _) => ("LONG", "TIMESTAMP", 93),
        DataType::Date32 | DataType::Date64 => ("LONG", "DATE", 91),
        DataType::Boolean => ("LONG", "BOOLEAN", 16),
        DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::Int64 => {
            ("LONG", "BIGINT", -5)
        }
        DataType::UInt8 | DataType::UInt16 | DataType::UInt32 | DataType::UInt64 => {
            ("LONG", "BIGINT", -5)
        }
        DataType::Float16 | DataType::Float32 => ("FLOAT", "FLOAT", 6),
        DataType::Float64 | DataType::Decimal128(_, _) | DataType::Decimal256(_, _) => {
            ("DOUBLE", "DOUBLE", 8)
        }
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => ("STRING", "VARCHAR", 12),
        DataType::List(_) | DataType::LargeList(_) => ("ARRAY", "ARRAY", 2003),
        DataType::Null => ("STRING", "VARCHAR", 12),
        _ => ("COMPLEX", "OTHER", 1111),
    }
}

/// A datasource as a table of schema `druid`.
#[derive(Debug)]
pub struct DruidTable {
    pub columns: Columns,
    pub schema: SchemaRef,
    pub stmt: Arc<Statement>,
}

impl DruidTable {
    pub fn new(columns: Columns, stmt: Arc<Statement>) -> Self {
        let schema = columns.schema();
        DruidTable {
            columns,
            schema,
            stmt,
        }
    }
}

#[async_trait]
impl TableProvider for DruidTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> Result<Vec<TableProviderFilterPushDown>> {
        Ok(filters
            .iter()
            .map(|f| match filter::translate(f, &self.columns) {
                Some(_) => TableProviderFilterPushDown::Exact,
                None => TableProviderFilterPushDown::Unsupported,
            })
            .collect())
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let schema = match projection {
            Some(p) => Arc::new(self.schema.project(p)?),
            None => self.schema.clone(),
        };
        let df_schema = Arc::new(DFSchema::try_from(schema.as_ref().clone())?);
        let node = scan_node(&self.columns, df_schema, filters, limit);
        self.stmt.exec(&node)
    }
}

/// Query intervals as JSON; an empty set (contradictory time conditions) becomes a filter
/// that matches nothing over an empty interval.
pub fn intervals_json(
    intervals: &[eddy_types::Interval],
    filter: Option<Value>,
) -> (Value, Option<Value>) {
    if intervals.is_empty() {
        return (
            json!(["2000-01-01T00:00:00.000Z/2000-01-01T00:00:00.000Z"]),
            Some(json!({"type": "false"})),
        );
    }
    (
        json!(intervals.iter().map(|i| i.to_string()).collect::<Vec<_>>()),
        filter,
    )
}

/// A native scan returning the columns of `schema` for rows passing `filters`.
pub fn scan_node(
    columns: &Columns,
    schema: datafusion::common::DFSchemaRef,
    filters: &[Expr],
    limit: Option<usize>,
) -> NativeNode {
    let parts: Vec<Native> = filters
        .iter()
        .filter_map(|f| filter::translate(f, columns))
        .collect();
    let (intervals, filter) = filter::split(parts);
    let (intervals, filter) = intervals_json(&intervals, filter);
    let names: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
    // A scan for a row count only still names one column (none would mean all of them).
    let requested = if names.is_empty() {
        vec![eddy_types::TIME_COLUMN.to_string()]
    } else {
        names.clone()
    };
    let mut query = json!({
        "queryType": "scan",
        "dataSource": columns.ds,
        "intervals": intervals,
        "columns": requested,
        "resultFormat": "compactedList",
    });
    if let Some(f) = filter {
        query["filter"] = f;
    }
    if let Some(l) = limit {
        query["limit"] = json!(l);
    }
    NativeNode {
        query,
        shape: Shape::Scan,
        sources: names.into_iter().map(Source::Field).collect(),
        schema,
        one_row: false,
    }
}
