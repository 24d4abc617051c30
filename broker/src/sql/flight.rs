//! Arrow Flight SQL on the broker: SQL info, statement execution, prepared statements with
//! bound parameters, catalogs, schemas, tables (with their Arrow schemas) and table types.
//! Statements run through the same planner as `/druid/v2/sql`; results are computed when the
//! client asks for the FlightInfo and streamed as Arrow batches by DoGet. Errors are gRPC
//! statuses whose message is Druid's error message.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{DataType, Float64Type, Int64Type, Schema, SchemaRef};
use arrow::ipc::writer::IpcWriteOptions;
use arrow_flight::decode::FlightRecordBatchStream;
use arrow_flight::encode::FlightDataEncoderBuilder;
use arrow_flight::flight_service_server::{FlightService, FlightServiceServer};
use arrow_flight::sql::metadata::{SqlInfoData, SqlInfoDataBuilder};
use arrow_flight::sql::server::{FlightSqlService, PeekableFlightDataStream};
use arrow_flight::sql::{
    ActionClosePreparedStatementRequest, ActionCreatePreparedStatementRequest,
    ActionCreatePreparedStatementResult, Any, CommandGetCatalogs, CommandGetDbSchemas,
    CommandGetSqlInfo, CommandGetTableTypes, CommandGetTables, CommandPreparedStatementQuery,
    CommandStatementQuery, DoPutPreparedStatementResult, ProstMessageExt, SqlInfo,
    TicketStatementQuery,
};
use arrow_flight::{
    Action, FlightDescriptor, FlightEndpoint, FlightInfo, HandshakeRequest, HandshakeResponse,
    IpcMessage, SchemaAsIpc, Ticket,
};
use futures::{Stream, TryStreamExt};
use prost::Message;
use serde_json::Value;
use tonic::{Request, Response, Status, Streaming};

use eddy_types::ErrorCode;

use super::catalog;
use super::planner::{SqlEngine, SqlOptions};
use super::rewrite::Parameter;
use crate::Broker;

/// Results and prepared statements not fetched or closed within this time are dropped.
const RETENTION: Duration = Duration::from_secs(600);

/// A computed result waiting for DoGet: schema, batches, when it was made.
type Stored = (SchemaRef, Vec<RecordBatch>, Instant);

struct Prepared {
    sql: String,
    parameters: Vec<Parameter>,
    touched: Instant,
}

pub struct FlightSql {
    engine: SqlEngine,
    broker: Arc<Broker>,
    results: Mutex<HashMap<String, Stored>>,
    prepared: Mutex<HashMap<String, Prepared>>,
    info: SqlInfoData,
}

/// The Flight service to add to a tonic server.
pub fn service(broker: Arc<Broker>) -> FlightServiceServer<FlightSql> {
    FlightServiceServer::new(FlightSql::new(broker))
}

fn sql_info() -> SqlInfoData {
    let mut b = SqlInfoDataBuilder::new();
    b.append(SqlInfo::FlightSqlServerName, "Eddy");
    b.append(SqlInfo::FlightSqlServerVersion, env!("CARGO_PKG_VERSION"));
    b.append(SqlInfo::FlightSqlServerArrowVersion, "1.3");
    b.append(SqlInfo::FlightSqlServerReadOnly, true);
    b.append(SqlInfo::FlightSqlServerSql, true);
    b.append(SqlInfo::FlightSqlServerSubstrait, false);
    b.append(SqlInfo::FlightSqlServerTransaction, 0i32);
    b.append(SqlInfo::FlightSqlServerCancel, false);
    b.append(SqlInfo::SqlIdentifierQuoteChar, "\"");
    b.build()
        .unwrap_or_else(|e| unreachable!("static SQL info is valid: {e}"))
}

impl FlightSql {
    pub fn new(broker: Arc<Broker>) -> Self {
        FlightSql {
            engine: SqlEngine::new(broker.clone()),
            broker,
            results: Mutex::new(HashMap::new()),
            prepared: Mutex::new(HashMap::new()),
            info: sql_info(),
        }
    }

    fn options(parameters: Vec<Parameter>) -> SqlOptions {
        SqlOptions {
            query_id: uuid::Uuid::new_v4().to_string(),
            parameters,
            ..SqlOptions::default()
        }
    }

    /// Runs a statement and keeps its result for DoGet under a new handle.
    async fn run(
        &self,
        sql: &str,
        parameters: Vec<Parameter>,
        descriptor: FlightDescriptor,
    ) -> Result<FlightInfo, Status> {
        let opts = Self::options(parameters);
        let out = self
            .engine
            .execute(sql, &opts)
            .await
            .map_err(|e| status(&super::http::sql_error(&e)))?;
        let rows: usize = out.batches.iter().map(RecordBatch::num_rows).sum();
        let handle = opts.query_id.clone();
        let ticket = TicketStatementQuery {
            statement_handle: handle.clone().into(),
        };
        let info = FlightInfo::new()
            .try_with_schema(&out.schema)
            .map_err(|e| Status::internal(format!("cannot encode the result schema: {e}")))?
            .with_descriptor(descriptor)
            .with_endpoint(
                FlightEndpoint::new().with_ticket(Ticket::new(ticket.as_any().encode_to_vec())),
            )
            .with_total_records(rows as i64)
            .with_ordered(true);
        let mut results = self.results.lock().unwrap_or_else(|p| p.into_inner());
        results.retain(|_, (_, _, t)| t.elapsed() < RETENTION);
        results.insert(handle, (out.schema, out.batches, Instant::now()));
        Ok(info)
    }
}

fn status(e: &eddy_runtime::http::ApiError) -> Status {
    let msg = e.message.clone();
    match e.code {
        ErrorCode::InvalidInput
        | ErrorCode::JsonParse
        | ErrorCode::SqlParse
        | ErrorCode::PlanValidation => Status::invalid_argument(msg),
        ErrorCode::NotFound => Status::not_found(msg),
        ErrorCode::Conflict => Status::aborted(msg),
        ErrorCode::Timeout => Status::deadline_exceeded(msg),
        ErrorCode::Cancelled => Status::cancelled(msg),
        ErrorCode::CapacityExceeded | ErrorCode::ResourceLimitExceeded => {
            Status::resource_exhausted(msg)
        }
        ErrorCode::Unsupported => Status::unimplemented(msg),
        ErrorCode::Unavailable => Status::unavailable(msg),
        ErrorCode::Internal => Status::internal(msg),
    }
}

fn stream_batches(
    schema: SchemaRef,
    batches: Vec<RecordBatch>,
) -> Response<<FlightSql as FlightService>::DoGetStream> {
    let stream = FlightDataEncoderBuilder::new()
        .with_schema(schema)
        .build(futures::stream::iter(batches.into_iter().map(Ok)))
        .map_err(Status::from);
    Response::new(Box::pin(stream))
}

fn flight_info_for<T: ProstMessageExt>(
    cmd: &T,
    schema: &Schema,
    descriptor: FlightDescriptor,
) -> Result<Response<FlightInfo>, Status> {
    let info = FlightInfo::new()
        .try_with_schema(schema)
        .map_err(|e| Status::internal(format!("cannot encode the schema: {e}")))?
        .with_endpoint(FlightEndpoint::new().with_ticket(Ticket::new(cmd.as_any().encode_to_vec())))
        .with_descriptor(descriptor);
    Ok(Response::new(info))
}

/// The first row of a parameter batch as Druid SQL parameters.
fn parameters_of(batch: &RecordBatch) -> Result<Vec<Parameter>, Status> {
    if batch.num_rows() == 0 {
        return Ok(vec![]);
    }
    batch
        .columns()
        .iter()
        .map(|col| {
            let (kind, value) = if col.is_null(0) {
                ("VARCHAR", Value::Null)
            } else {
                match col.data_type() {
                    DataType::Utf8 => ("VARCHAR", Value::from(col.as_string::<i32>().value(0))),
                    DataType::LargeUtf8 => {
                        ("VARCHAR", Value::from(col.as_string::<i64>().value(0)))
                    }
                    DataType::Utf8View => ("VARCHAR", Value::from(col.as_string_view().value(0))),
                    DataType::Boolean => ("BOOLEAN", Value::from(col.as_boolean().value(0))),
                    t if t.is_integer() => {
                        let v = arrow::compute::cast(&col.slice(0, 1), &DataType::Int64)
                            .map_err(|e| Status::invalid_argument(e.to_string()))?;
                        (
                            "BIGINT",
                            Value::from(v.as_primitive::<Int64Type>().value(0)),
                        )
                    }
                    t if t.is_floating() => {
                        let v = arrow::compute::cast(&col.slice(0, 1), &DataType::Float64)
                            .map_err(|e| Status::invalid_argument(e.to_string()))?;
                        (
                            "DOUBLE",
                            Value::from(v.as_primitive::<Float64Type>().value(0)),
                        )
                    }
                    DataType::Timestamp(_, _) | DataType::Date32 | DataType::Date64 => {
                        let ts = arrow::compute::cast(
                            &col.slice(0, 1),
                            &DataType::Timestamp(arrow::datatypes::TimeUnit::Millisecond, None),
                        )
                        .and_then(|t| arrow::compute::cast(&t, &DataType::Int64))
                        .map_err(|e| Status::invalid_argument(e.to_string()))?;
                        (
                            "TIMESTAMP",
                            Value::from(ts.as_primitive::<Int64Type>().value(0)),
                        )
                    }
                    other => {
                        return Err(Status::invalid_argument(format!(
                            "parameters of Arrow type {other} are not supported"
                        )));
                    }
                }
            };
            Ok(Parameter {
                kind: kind.to_string(),
                value,
            })
        })
        .collect()
}

fn handle_str(bytes: &[u8]) -> Result<String, Status> {
    String::from_utf8(bytes.to_vec())
        .map_err(|_| Status::invalid_argument("the statement handle is not one Eddy issued"))
}

#[tonic::async_trait]
impl FlightSqlService for FlightSql {
    type FlightService = FlightSql;

    async fn do_handshake(
        &self,
        _request: Request<Streaming<HandshakeRequest>>,
    ) -> Result<
        Response<Pin<Box<dyn Stream<Item = Result<HandshakeResponse, Status>> + Send>>>,
        Status,
    > {
        // No authentication: every client is accepted.
        let out = futures::stream::once(async {
            Ok(HandshakeResponse {
                protocol_version: 0,
                payload: Default::default(),
            })
        });
        Ok(Response::new(Box::pin(out)))
    }

    async fn get_flight_info_statement(
        &self,
        query: CommandStatementQuery,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let info = self.run(&query.query, vec![], request.into_inner()).await?;
        Ok(Response::new(info))
    }

    async fn do_get_statement(
        &self,
        ticket: TicketStatementQuery,
        _request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        let handle = handle_str(&ticket.statement_handle)?;
        let taken = self
            .results
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&handle);
        match taken {
            Some((schema, batches, _)) => Ok(stream_batches(schema, batches)),
            None => Err(Status::not_found(format!(
                "no result for statement handle {handle:?}: results are served once and kept for {} s",
                RETENTION.as_secs()
            ))),
        }
    }

    async fn do_action_create_prepared_statement(
        &self,
        query: ActionCreatePreparedStatementRequest,
        _request: Request<Action>,
    ) -> Result<ActionCreatePreparedStatementResult, Status> {
        let handle = uuid::Uuid::new_v4().to_string();
        let mut prepared = self.prepared.lock().unwrap_or_else(|p| p.into_inner());
        prepared.retain(|_, p| p.touched.elapsed() < RETENTION);
        prepared.insert(
            handle.clone(),
            Prepared {
                sql: query.query,
                parameters: vec![],
                touched: Instant::now(),
            },
        );
        // The result schema is known once parameters are bound and the statement runs.
        let empty = Schema::empty();
        let opts = IpcWriteOptions::default();
        let IpcMessage(schema_bytes) = SchemaAsIpc::new(&empty, &opts)
            .try_into()
            .map_err(|e: arrow::error::ArrowError| Status::internal(e.to_string()))?;
        Ok(ActionCreatePreparedStatementResult {
            prepared_statement_handle: handle.into(),
            dataset_schema: schema_bytes.clone(),
            parameter_schema: Default::default(),
        })
    }

    async fn do_action_close_prepared_statement(
        &self,
        query: ActionClosePreparedStatementRequest,
        _request: Request<Action>,
    ) -> Result<(), Status> {
        let handle = handle_str(&query.prepared_statement_handle)?;
        self.prepared
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&handle);
        Ok(())
    }

    async fn do_put_prepared_statement_query(
        &self,
        query: CommandPreparedStatementQuery,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<DoPutPreparedStatementResult, Status> {
        let handle = handle_str(&query.prepared_statement_handle)?;
        let stream = FlightRecordBatchStream::new_from_flight_data(
            request
                .into_inner()
                .map_err(arrow_flight::error::FlightError::from),
        );
        let batches: Vec<RecordBatch> = stream
            .try_collect()
            .await
            .map_err(|e| Status::invalid_argument(format!("cannot read the parameters: {e}")))?;
        let params = match batches.iter().find(|b| b.num_rows() > 0) {
            Some(b) => parameters_of(b)?,
            None => vec![],
        };
        let mut prepared = self.prepared.lock().unwrap_or_else(|p| p.into_inner());
        let Some(p) = prepared.get_mut(&handle) else {
            return Err(Status::not_found(format!(
                "no prepared statement {handle:?}"
            )));
        };
        p.parameters = params;
        p.touched = Instant::now();
        Ok(DoPutPreparedStatementResult {
            prepared_statement_handle: Some(handle.into()),
        })
    }

    async fn get_flight_info_prepared_statement(
        &self,
        cmd: CommandPreparedStatementQuery,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let handle = handle_str(&cmd.prepared_statement_handle)?;
        let (sql, params) = {
            let prepared = self.prepared.lock().unwrap_or_else(|p| p.into_inner());
            match prepared.get(&handle) {
                Some(p) => (p.sql.clone(), p.parameters.clone()),
                None => {
                    return Err(Status::not_found(format!(
                        "no prepared statement {handle:?}"
                    )));
                }
            }
        };
        let info = self.run(&sql, params, request.into_inner()).await?;
        Ok(Response::new(info))
    }

    async fn get_flight_info_sql_info(
        &self,
        query: CommandGetSqlInfo,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.clone().into_builder(&self.info).schema();
        flight_info_for(&query, &schema, request.into_inner())
    }

    async fn do_get_sql_info(
        &self,
        query: CommandGetSqlInfo,
        _request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        let builder = query.into_builder(&self.info);
        let schema = builder.schema();
        let batch = builder
            .build()
            .map_err(|e| Status::internal(e.to_string()))?;
        Ok(stream_batches(schema, vec![batch]))
    }

    async fn get_flight_info_catalogs(
        &self,
        query: CommandGetCatalogs,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.into_builder().schema();
        flight_info_for(&query, &schema, request.into_inner())
    }

    async fn do_get_catalogs(
        &self,
        query: CommandGetCatalogs,
        _request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        let mut builder = query.into_builder();
        builder.append(catalog::CATALOG);
        let schema = builder.schema();
        let batch = builder
            .build()
            .map_err(|e| Status::internal(e.to_string()))?;
        Ok(stream_batches(schema, vec![batch]))
    }

    async fn get_flight_info_schemas(
        &self,
        query: CommandGetDbSchemas,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.clone().into_builder().schema();
        flight_info_for(&query, &schema, request.into_inner())
    }

    async fn do_get_schemas(
        &self,
        query: CommandGetDbSchemas,
        _request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        let mut builder = query.into_builder();
        for s in catalog::SCHEMAS {
            builder.append(catalog::CATALOG, s);
        }
        let schema = builder.schema();
        let batch = builder
            .build()
            .map_err(|e| Status::internal(e.to_string()))?;
        Ok(stream_batches(schema, vec![batch]))
    }

    async fn get_flight_info_tables(
        &self,
        query: CommandGetTables,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.clone().into_builder().schema();
        flight_info_for(&query, &schema, request.into_inner())
    }

    async fn do_get_tables(
        &self,
        query: CommandGetTables,
        _request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        let tables = catalog::table_list(&self.broker);
        let mut builder = query.into_builder();
        for (schema_name, table, kind, schema) in &tables {
            builder
                .append(catalog::CATALOG, schema_name, table, kind, schema)
                .map_err(|e| Status::internal(e.to_string()))?;
        }
        let schema = builder.schema();
        let batch = builder
            .build()
            .map_err(|e| Status::internal(e.to_string()))?;
        Ok(stream_batches(schema, vec![batch]))
    }

    async fn get_flight_info_table_types(
        &self,
        query: CommandGetTableTypes,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        flight_info_for(&query, &table_types_schema(), request.into_inner())
    }

    async fn do_get_table_types(
        &self,
        _query: CommandGetTableTypes,
        _request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        let schema = Arc::new(table_types_schema());
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![Arc::new(arrow::array::StringArray::from(vec![
                "SYSTEM_TABLE",
                "TABLE",
            ]))],
        )
        .map_err(|e| Status::internal(e.to_string()))?;
        Ok(stream_batches(schema, vec![batch]))
    }

    async fn do_get_fallback(
        &self,
        _request: Request<Ticket>,
        message: Any,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        Err(Status::unimplemented(format!(
            "Eddy's Flight SQL service does not serve {}",
            message.type_url
        )))
    }

    async fn register_sql_info(&self, _id: i32, _result: &SqlInfo) {}
}

fn table_types_schema() -> Schema {
    Schema::new(vec![arrow::datatypes::Field::new(
        "table_type",
        DataType::Utf8,
        false,
    )])
}
