//! The SQL catalog `druid`: schema `druid` holds the datasources, `INFORMATION_SCHEMA` and `sys`
//! hold Druid's system tables with Druid's column names and types, built from metadata when a
//! statement is planned.

use std::collections::BTreeSet;
use std::sync::Arc;

use arrow::array::{ArrayRef, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::{
    CatalogProvider, MemoryCatalogProvider, MemorySchemaProvider, SchemaProvider,
};
use datafusion::common::Result;
use datafusion::datasource::{MemTable, TableProvider};
use datafusion::execution::SessionState;

use super::planner::Statement;
use super::system::{segment_rows, server_rows, server_segment_rows, supervisor_rows, task_rows};
use super::table::{Columns, DruidTable, type_names};
use crate::Broker;

pub const CATALOG: &str = "druid";
pub const DRUID: &str = "druid";
pub const INFORMATION_SCHEMA: &str = "INFORMATION_SCHEMA";
pub const SYS: &str = "sys";
pub const LOOKUP: &str = "lookup";

/// One value of a system table.
pub(super) enum Cell {
    S(Option<String>),
    I(Option<i64>),
}

pub(super) fn s(v: impl Into<String>) -> Cell {
    Cell::S(Some(v.into()))
}

pub(super) fn i(v: i64) -> Cell {
    Cell::I(Some(v))
}

pub(super) const NULL_S: Cell = Cell::S(None);
pub(super) const NULL_I: Cell = Cell::I(None);

/// A system table's columns: VARCHAR unless marked BIGINT.
fn table_schema(cols: &[(&str, bool)]) -> SchemaRef {
    Arc::new(Schema::new(
        cols.iter()
            .map(|(name, long)| {
                Field::new(
                    *name,
                    if *long {
                        DataType::Int64
                    } else {
                        DataType::Utf8
                    },
                    true,
                )
            })
            .collect::<Vec<_>>(),
    ))
}

fn mem_table(schema: SchemaRef, rows: Vec<Vec<Cell>>) -> Result<Arc<dyn TableProvider>> {
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(schema.fields().len());
    for (c, f) in schema.fields().iter().enumerate() {
        let col: ArrayRef = if f.data_type() == &DataType::Int64 {
            Arc::new(
                rows.iter()
                    .map(|r| match &r[c] {
                        Cell::I(v) => *v,
                        Cell::S(v) => v.as_ref().and_then(|s| s.parse().ok()),
                    })
                    .collect::<Int64Array>(),
            )
        } else {
            Arc::new(
                rows.iter()
                    .map(|r| match &r[c] {
                        Cell::S(v) => v.clone(),
                        Cell::I(v) => v.map(|x| x.to_string()),
                    })
                    .collect::<StringArray>(),
            )
        };
        columns.push(col);
    }
    let batch = RecordBatch::try_new(schema.clone(), columns)?;
    Ok(Arc::new(MemTable::try_new(schema, vec![vec![batch]])?))
}

const SCHEMATA: &[(&str, bool)] = &[
    ("CATALOG_NAME", false),
    ("SCHEMA_NAME", false),
    ("SCHEMA_OWNER", false),
    ("DEFAULT_CHARACTER_SET_CATALOG", false),
    ("DEFAULT_CHARACTER_SET_SCHEMA", false),
    ("DEFAULT_CHARACTER_SET_NAME", false),
    ("SQL_PATH", false),
];
const TABLES: &[(&str, bool)] = &[
    ("TABLE_CATALOG", false),
    ("TABLE_SCHEMA", false),
    ("TABLE_NAME", false),
    ("TABLE_TYPE", false),
    ("IS_JOINABLE", false),
    ("IS_BROADCAST", false),
];
const COLUMNS: &[(&str, bool)] = &[
    ("TABLE_CATALOG", false),
    ("TABLE_SCHEMA", false),
    ("TABLE_NAME", false),
    ("COLUMN_NAME", false),
    ("ORDINAL_POSITION", true),
    ("COLUMN_DEFAULT", false),
    ("IS_NULLABLE", false),
    ("DATA_TYPE", false),
    ("CHARACTER_MAXIMUM_LENGTH", true),
    ("CHARACTER_OCTET_LENGTH", true),
    ("NUMERIC_PRECISION", true),
    ("NUMERIC_PRECISION_RADIX", true),
    ("NUMERIC_SCALE", true),
    ("DATETIME_PRECISION", true),
    ("CHARACTER_SET_NAME", false),
    ("COLLATION_NAME", false),
    ("JDBC_TYPE", true),
];
const ROUTINES: &[(&str, bool)] = &[
    ("ROUTINE_CATALOG", false),
    ("ROUTINE_SCHEMA", false),
    ("ROUTINE_NAME", false),
    ("ROUTINE_TYPE", false),
    ("IS_AGGREGATOR", false),
    ("SIGNATURES", false),
];
const SEGMENTS: &[(&str, bool)] = &[
    ("segment_id", false),
    ("datasource", false),
    ("start", false),
    ("end", false),
    ("size", true),
    ("version", false),
    ("partition_num", true),
    ("num_replicas", true),
    ("num_rows", true),
    ("is_active", true),
    ("is_published", true),
    ("is_available", true),
    ("is_realtime", true),
    ("is_overshadowed", true),
    ("shard_spec", false),
    ("dimensions", false),
    ("metrics", false),
    ("last_compaction_state", false),
    ("replication_factor", true),
];
const SERVERS: &[(&str, bool)] = &[
    ("server", false),
    ("host", false),
    ("plaintext_port", true),
    ("tls_port", true),
    ("server_type", false),
    ("tier", false),
    ("curr_size", true),
    ("max_size", true),
    ("is_leader", true),
    ("start_time", false),
];
const SERVER_SEGMENTS: &[(&str, bool)] = &[("server", false), ("segment_id", false)];
const TASKS: &[(&str, bool)] = &[
    ("task_id", false),
    ("group_id", false),
    ("type", false),
    ("datasource", false),
    ("created_time", false),
    ("queue_insertion_time", false),
    ("status", false),
    ("runner_status", false),
    ("duration", true),
    ("location", false),
    ("host", false),
    ("plaintext_port", true),
    ("tls_port", true),
    ("error_msg", false),
];
const SUPERVISORS: &[(&str, bool)] = &[
    ("supervisor_id", false),
    ("state", false),
    ("detailed_state", false),
    ("healthy", true),
    ("type", false),
    ("source", false),
    ("suspended", true),
    ("spec", false),
];

const INFO_TABLES: [(&str, &[(&str, bool)]); 4] = [
    ("SCHEMATA", SCHEMATA),
    ("TABLES", TABLES),
    ("COLUMNS", COLUMNS),
    ("ROUTINES", ROUTINES),
];
const SYS_TABLES: [(&str, &[(&str, bool)]); 5] = [
    ("segments", SEGMENTS),
    ("servers", SERVERS),
    ("server_segments", SERVER_SEGMENTS),
    ("tasks", TASKS),
    ("supervisors", SUPERVISORS),
];

/// The schemas of the catalog, in Druid's order.
pub const SCHEMAS: [&str; 4] = [DRUID, INFORMATION_SCHEMA, LOOKUP, SYS];

/// Every table as (schema, name, TABLE or SYSTEM_TABLE, Arrow schema).
pub fn table_list(broker: &Broker) -> Vec<(String, String, String, SchemaRef)> {
    let mut all: Vec<(String, String, String, SchemaRef)> = broker
        .datasources()
        .into_iter()
        .map(|ds| {
            let columns = Columns {
                ds: ds.to_string(),
                list: broker.column_types(&ds),
            };
            (
                DRUID.to_string(),
                ds.to_string(),
                "TABLE".to_string(),
                columns.schema(),
            )
        })
        .collect();
    for (name, cols) in INFO_TABLES {
        all.push((
            INFORMATION_SCHEMA.into(),
            name.into(),
            "SYSTEM_TABLE".into(),
            table_schema(cols),
        ));
    }
    for (name, cols) in SYS_TABLES {
        all.push((
            SYS.into(),
            name.into(),
            "SYSTEM_TABLE".into(),
            table_schema(cols),
        ));
    }
    all
}

fn yes_no(b: bool) -> Cell {
    s(if b { "YES" } else { "NO" })
}

/// Builds the catalog for one statement.
pub fn build(
    broker: &Arc<Broker>,
    stmt: &Arc<Statement>,
    state: &SessionState,
) -> Result<Arc<dyn CatalogProvider>> {
    let catalog = MemoryCatalogProvider::new();
    let druid = MemorySchemaProvider::new();
    for ds in broker.datasources() {
        let columns = Columns {
            ds: ds.to_string(),
            list: broker.column_types(&ds),
        };
        druid.register_table(
            ds.to_string(),
            Arc::new(DruidTable::new(columns, stmt.clone())),
        )?;
    }
    let all = table_list(broker);
    catalog.register_schema(DRUID, Arc::new(druid))?;
    catalog.register_schema(LOOKUP, Arc::new(MemorySchemaProvider::new()))?;

    let sys = MemorySchemaProvider::new();
    sys.register_table(
        "segments".into(),
        mem_table(table_schema(SEGMENTS), segment_rows(broker))?,
    )?;
    sys.register_table(
        "servers".into(),
        mem_table(table_schema(SERVERS), server_rows(broker))?,
    )?;
    sys.register_table(
        "server_segments".into(),
        mem_table(table_schema(SERVER_SEGMENTS), server_segment_rows(broker))?,
    )?;
    sys.register_table(
        "tasks".into(),
        mem_table(table_schema(TASKS), task_rows(broker))?,
    )?;
    sys.register_table(
        "supervisors".into(),
        mem_table(table_schema(SUPERVISORS), supervisor_rows(broker))?,
    )?;
    catalog.register_schema(SYS, Arc::new(sys))?;

    let info = MemorySchemaProvider::new();
    let schemata = SCHEMAS
        .iter()
        .map(|name| vec![s(CATALOG), s(*name), NULL_S, NULL_S, NULL_S, NULL_S, NULL_S])
        .collect();
    info.register_table(
        "SCHEMATA".into(),
        mem_table(table_schema(SCHEMATA), schemata)?,
    )?;

    let table_rows = all
        .iter()
        .map(|(schema, name, kind, _)| {
            vec![
                s(CATALOG),
                s(schema.clone()),
                s(name.clone()),
                s(kind.clone()),
                yes_no(false),
                yes_no(false),
            ]
        })
        .collect();
    info.register_table(
        "TABLES".into(),
        mem_table(table_schema(TABLES), table_rows)?,
    )?;

    let mut column_rows = Vec::new();
    for (schema, table, _, columns) in &all {
        for (pos, f) in columns.fields().iter().enumerate() {
            let (_, sql_type, jdbc) = type_names(f.data_type());
            let numeric = matches!(sql_type, "BIGINT" | "FLOAT" | "DOUBLE");
            column_rows.push(vec![
                s(CATALOG),
                s(schema.clone()),
                s(table.clone()),
                s(f.name().clone()),
                i(pos as i64 + 1),
                s(""),
                yes_no(f.is_nullable()),
                s(sql_type),
                NULL_I,
                NULL_I,
                if numeric {
                    i(if sql_type == "BIGINT" { 19 } else { 15 })
                } else {
                    NULL_I
                },
                if numeric { i(10) } else { NULL_I },
                if numeric { i(0) } else { NULL_I },
                if sql_type == "TIMESTAMP" {
                    i(3)
                } else {
                    NULL_I
                },
                if sql_type == "VARCHAR" {
                    s("UTF-16LE")
                } else {
                    NULL_S
                },
                if sql_type == "VARCHAR" {
                    s("UTF-16LE$en_US$primary")
                } else {
                    NULL_S
                },
                i(jdbc),
            ]);
        }
    }
    info.register_table(
        "COLUMNS".into(),
        mem_table(table_schema(COLUMNS), column_rows)?,
    )?;

    let mut routines: BTreeSet<(String, bool)> = BTreeSet::new();
    for name in state.scalar_functions().keys() {
        routines.insert((name.to_uppercase(), false));
    }
    for name in state.aggregate_functions().keys() {
        routines.insert((name.to_uppercase(), true));
    }
    let routine_rows = routines
        .into_iter()
        .map(|(name, agg)| {
            vec![
                s(CATALOG),
                s(INFORMATION_SCHEMA),
                s(name),
                s("FUNCTION"),
                yes_no(agg),
                NULL_S,
            ]
        })
        .collect();
    info.register_table(
        "ROUTINES".into(),
        mem_table(table_schema(ROUTINES), routine_rows)?,
    )?;
    catalog.register_schema(INFORMATION_SCHEMA, Arc::new(info))?;
    Ok(Arc::new(catalog))
}
