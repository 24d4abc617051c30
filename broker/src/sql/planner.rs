//! Plans and runs one SQL statement: a DataFusion session per statement over the `druid`
//! catalog, Druid's dialect rewrites, DataFusion's optimizer, the pushdown step, and execution
//! with native queries at the leaves. `EXPLAIN PLAN FOR` answers with the native queries.

use std::sync::Arc;
use std::sync::atomic::AtomicUsize;

use arrow::array::{RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use async_trait::async_trait;
use datafusion::catalog::Session;
use datafusion::common::tree_node::TreeNode;
use datafusion::common::{DataFusionError, Result};
use datafusion::config::Dialect;
use datafusion::execution::SessionStateBuilder;
use datafusion::execution::context::{QueryPlanner, SessionConfig, SessionContext};
use datafusion::logical_expr::LogicalPlan;
use datafusion::optimizer::Optimizer;
use datafusion::physical_plan::{ExecutionPlan, collect};
use datafusion::physical_planner::{DefaultPhysicalPlanner, PhysicalPlanner};
use datafusion::sql::parser::Statement as DfStatement;
use serde_json::{Value, json};

use eddy_types::time::TimeZone;

use super::native::{NativeExec, NativeNode};
use super::pushdown::{self, Options};
use super::rewrite::{self, Parameter};
use super::{catalog, functions};
use crate::Broker;

/// What every native query of one statement shares.
#[derive(Debug)]
pub struct Statement {
    pub broker: Arc<Broker>,
    /// The SQL query id; native queries get `<id>#<n>`.
    pub query_id: String,
    /// Native context keys passed on (timeout, priority, ...).
    pub context: serde_json::Map<String, Value>,
    counter: AtomicUsize,
}

impl Statement {
    /// The physical operator running `node`'s native query.
    pub fn exec(&self, node: &NativeNode) -> Result<Arc<dyn ExecutionPlan>> {
        let n = self
            .counter
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut query = node.query.clone();
        let mut context = self.context.clone();
        if let Some(Value::Object(own)) = query.get("context") {
            for (k, v) in own {
                context.insert(k.clone(), v.clone());
            }
        }
        context.insert(
            "queryId".to_string(),
            Value::String(format!("{}#{n}", self.query_id)),
        );
        query["context"] = Value::Object(context);
        Ok(Arc::new(NativeExec::new(self.broker.clone(), query, node)))
    }
}

/// A SQL request's settings (from the request's `context` and `parameters`).
#[derive(Debug, Clone, Default)]
pub struct SqlOptions {
    pub query_id: String,
    pub time_zone: Option<String>,
    pub approx_count_distinct: Option<bool>,
    pub pre_aggregate: Option<bool>,
    /// Native context keys passed to every native query.
    pub native_context: serde_json::Map<String, Value>,
    pub parameters: Vec<Parameter>,
}

/// A statement's result.
pub struct SqlOutput {
    pub schema: SchemaRef,
    pub batches: Vec<RecordBatch>,
}

struct Planner {
    stmt: Arc<Statement>,
}

impl std::fmt::Debug for Planner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Planner")
    }
}

#[async_trait]
impl QueryPlanner for Planner {
    async fn create_physical_plan(
        &self,
        logical_plan: &LogicalPlan,
        session_state: &dyn Session,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let planner = DefaultPhysicalPlanner::with_extension_planners(vec![Arc::new(
            super::native::NativePlanner {
                stmt: self.stmt.clone(),
            },
        )]);
        planner
            .create_physical_plan(logical_plan, session_state)
            .await
    }
}

/// Optimizer rules minus the one that turns COUNT(DISTINCT x) into a nested GROUP BY: Druid
/// answers COUNT(DISTINCT) with a sketch next to the data.
fn optimizer_rules() -> Vec<Arc<dyn datafusion::optimizer::OptimizerRule + Send + Sync>> {
    Optimizer::new()
        .rules
        .into_iter()
        .filter(|r| r.name() != "single_distinct_aggregation_to_group_by")
        .collect()
}

/// Parse errors at the end of the text ("found: EOF") carry no position; add the end's, so
/// every parse error says where it is, as Druid's do.
fn with_end_position(e: DataFusionError, sql: &str) -> DataFusionError {
    use datafusion::sql::sqlparser::parser::ParserError;
    match e {
        DataFusionError::SQL(p, bt) => {
            let msg = p.to_string();
            if msg.contains("Line:") {
                return DataFusionError::SQL(p, bt);
            }
            let line = sql.lines().count().max(1);
            let column = sql.lines().last().map_or(0, |l| l.chars().count()) + 1;
            let msg = msg.trim_start_matches("sql parser error: ").to_string();
            DataFusionError::SQL(
                Box::new(ParserError::ParserError(format!(
                    "{msg} at Line: {line}, Column: {column}"
                ))),
                bt,
            )
        }
        other => other,
    }
}

/// A planned statement, ready to run or explain.
pub struct Planned {
    pub ctx: SessionContext,
    pub plan: LogicalPlan,
}

pub struct SqlEngine {
    broker: Arc<Broker>,
}

static EXPLAIN: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
    regex::Regex::new(r"(?is)^\s*EXPLAIN\s+PLAN\s+(?:WITH\s+\w+\s+)?FOR\s+(.*)$")
        .unwrap_or_else(|e| unreachable!("static regex: {e}"))
});

impl SqlEngine {
    pub fn new(broker: Arc<Broker>) -> Self {
        SqlEngine { broker }
    }

    fn options(opts: &SqlOptions) -> Result<Options> {
        let tz = match &opts.time_zone {
            Some(name) => name
                .parse::<TimeZone>()
                .map_err(|e| DataFusionError::Plan(format!("context.sqlTimeZone: {e}")))?,
            None => TimeZone::Utc,
        };
        Ok(Options {
            tz,
            approx_count_distinct: opts.approx_count_distinct.unwrap_or(true),
            pre_aggregate: opts.pre_aggregate.unwrap_or(true),
        })
    }

    /// Parses, rewrites, optimizes and pushes down one statement.
    pub async fn plan(&self, sql: &str, opts: &SqlOptions) -> Result<Planned> {
        let options = Self::options(opts)?;
        let stmt = Arc::new(Statement {
            broker: self.broker.clone(),
            query_id: opts.query_id.clone(),
            context: opts.native_context.clone(),
            counter: AtomicUsize::new(0),
        });
        let mut config = SessionConfig::new()
            .with_default_catalog_and_schema(catalog::CATALOG, catalog::DRUID)
            .with_information_schema(false)
            .with_target_partitions(2);
        config.options_mut().sql_parser.enable_ident_normalization = false;
        config.options_mut().execution.time_zone = Some(options.tz.name());
        let state = SessionStateBuilder::new()
            .with_config(config)
            .with_default_features()
            .with_optimizer_rules(optimizer_rules())
            .with_query_planner(Arc::new(Planner { stmt: stmt.clone() }))
            .build();
        let ctx = SessionContext::new_with_state(state);
        for f in functions::druid_functions(options.tz) {
            ctx.register_udf(f);
        }
        let cat = catalog::build(&self.broker, &stmt, &ctx.state())?;
        ctx.register_catalog(catalog::CATALOG, cat);

        let state = ctx.state();
        let mut parsed = state
            .sql_to_statement(sql, &Dialect::Generic)
            .map_err(|e| with_end_position(e, sql))?;
        match &mut parsed {
            DfStatement::Statement(s) => rewrite::rewrite(s, &opts.parameters)?,
            _ => {
                return Err(DataFusionError::Plan(
                    "only SELECT statements (and EXPLAIN PLAN FOR) are supported".into(),
                ));
            }
        }
        let plan = state.statement_to_plan(parsed).await?;
        if !matches!(
            plan,
            LogicalPlan::Projection(_)
                | LogicalPlan::Sort(_)
                | LogicalPlan::Limit(_)
                | LogicalPlan::Aggregate(_)
                | LogicalPlan::Filter(_)
                | LogicalPlan::Union(_)
                | LogicalPlan::Distinct(_)
                | LogicalPlan::SubqueryAlias(_)
                | LogicalPlan::Window(_)
                | LogicalPlan::Join(_)
                | LogicalPlan::Values(_)
                | LogicalPlan::EmptyRelation(_)
                | LogicalPlan::TableScan(_)
        ) {
            return Err(DataFusionError::Plan(
                "only SELECT statements (and EXPLAIN PLAN FOR) are supported".into(),
            ));
        }
        let optimized = state.optimize(&plan)?;
        let plan = pushdown::rewrite(optimized, &options)?;
        Ok(Planned { ctx, plan })
    }

    /// Runs a statement (or explains it when it starts with `EXPLAIN PLAN FOR`).
    pub async fn execute(&self, sql: &str, opts: &SqlOptions) -> Result<SqlOutput> {
        if let Some(c) = EXPLAIN.captures(sql) {
            let inner = c.get(1).map_or("", |m| m.as_str());
            return self.explain(inner, opts).await;
        }
        let planned = self.plan(sql, opts).await?;
        let state = planned.ctx.state();
        let physical = state
            .query_planner()
            .create_physical_plan(&planned.plan, &state)
            .await?;
        let schema = physical.schema();
        let batches = collect(physical, planned.ctx.task_ctx()).await?;
        Ok(SqlOutput { schema, batches })
    }

    /// Druid's EXPLAIN PLAN FOR answer: one row with PLAN (the native queries and their
    /// output signatures, as JSON), RESOURCES and ATTRIBUTES.
    async fn explain(&self, sql: &str, opts: &SqlOptions) -> Result<SqlOutput> {
        let planned = self.plan(sql, opts).await?;
        let mut queries = Vec::new();
        let mut resources = std::collections::BTreeSet::new();
        planned.plan.apply(|p| {
            if let LogicalPlan::Extension(ext) = p
                && let Some(node) = ext.node.as_any().downcast_ref::<NativeNode>()
            {
                if let Some(ds) = node.query.get("dataSource").and_then(Value::as_str) {
                    resources.insert(ds.to_string());
                }
                let signature: Vec<Value> = node
                    .schema
                    .fields()
                    .iter()
                    .map(|f| {
                        json!({"name": f.name(), "type": super::table::type_names(f.data_type()).0})
                    })
                    .collect();
                queries.push(json!({"query": node.query, "signature": signature}));
            }
            Ok(datafusion::common::tree_node::TreeNodeRecursion::Continue)
        })?;
        let residual = format!("{}", planned.plan.display_indent());
        let plan = json!(queries);
        let resources: Vec<Value> = resources
            .into_iter()
            .map(|d| json!({"name": d, "type": "DATASOURCE"}))
            .collect();
        let attributes = json!({"statementType": "SELECT", "plan": residual});
        let schema = Arc::new(Schema::new(vec![
            Field::new("PLAN", DataType::Utf8, false),
            Field::new("RESOURCES", DataType::Utf8, false),
            Field::new("ATTRIBUTES", DataType::Utf8, false),
        ]));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(StringArray::from(vec![plan.to_string()])),
                Arc::new(StringArray::from(vec![Value::from(resources).to_string()])),
                Arc::new(StringArray::from(vec![attributes.to_string()])),
            ],
        )?;
        Ok(SqlOutput {
            schema,
            batches: vec![batch],
        })
    }
}
