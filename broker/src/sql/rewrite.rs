//! Rewrites of the parsed SQL that give Druid's dialect its meaning in DataFusion: function
//! names are case-insensitive while identifiers stay case-sensitive, Druid's spellings map to
//! DataFusion's functions (APPROX_COUNT_DISTINCT, LATEST, FLOOR(ts TO unit), ...), unit
//! keywords become strings, `?` parameters are bound, and unaliased expressions are named
//! `EXPR$0`, `EXPR$1`, ... as Druid names them.

use std::ops::ControlFlow;

use datafusion::common::{DataFusionError, Result, plan_err};
use datafusion::sql::sqlparser::ast::{
    self, CeilFloorKind, DateTimeField, Expr, FunctionArg, FunctionArgExpr, FunctionArguments,
    Ident, ObjectNamePart, SelectItem, SetExpr, Statement, Value, visit_expressions_mut,
};
use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::parser::Parser;
use serde_json::Value as Json;

/// A `?` parameter as Druid's SQL API sends it: `{"type": "VARCHAR", "value": "x"}`.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct Parameter {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub value: Json,
}

/// Applies every rewrite to a statement.
pub fn rewrite(stmt: &mut Statement, params: &[Parameter]) -> Result<()> {
    bind_parameters(stmt, params)?;
    let mut failure: Option<DataFusionError> = None;
    let _ = visit_expressions_mut(stmt, |e| {
        if let Err(err) = rewrite_expr(e) {
            failure = Some(err);
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
    });
    if let Some(e) = failure {
        return Err(e);
    }
    if let Statement::Query(q) = stmt {
        name_expressions(q);
    }
    Ok(())
}

fn parse_expr(sql: &str) -> Result<Expr> {
    Parser::new(&GenericDialect {})
        .try_with_sql(sql)
        .and_then(|mut p| p.parse_expr())
        .map_err(|e| DataFusionError::Internal(format!("rewriting {sql:?}: {e}")))
}

fn string_lit(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

fn field_name(f: &DateTimeField) -> String {
    match f {
        DateTimeField::Custom(i) => i.value.to_uppercase(),
        DateTimeField::Week(_) => "WEEK".to_string(),
        other => other.to_string().to_uppercase(),
    }
}

fn function_args(f: &ast::Function) -> Vec<&FunctionArg> {
    match &f.args {
        FunctionArguments::List(l) => l.args.iter().collect(),
        _ => vec![],
    }
}

fn arg_expr(a: &FunctionArg) -> Option<&Expr> {
    match a {
        FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => Some(e),
        _ => None,
    }
}

/// Druid function names DataFusion knows under another name.
fn alias(name: &str) -> Option<&'static str> {
    Some(match name {
        "approx_count_distinct"
        | "approx_count_distinct_builtin"
        | "approx_count_distinct_ds_hll"
        | "approx_count_distinct_ds_theta" => "approx_distinct",
        "group_concat" | "listagg" => "string_agg",
        "textcat" => "concat",
        "strlen" => "character_length",
        "nvl" => "coalesce",
        "ceiling" => "ceil",
        _ => return None,
    })
}

fn rewrite_expr(e: &mut Expr) -> Result<()> {
    let replacement = match e {
        Expr::Floor {
            expr,
            field: CeilFloorKind::DateTimeField(f),
        } if *f != DateTimeField::NoDateTime => Some(floor_ceil("time_floor", expr, f)?),
        Expr::Ceil {
            expr,
            field: CeilFloorKind::DateTimeField(f),
        } if *f != DateTimeField::NoDateTime => Some(floor_ceil("time_ceil", expr, f)?),
        Expr::Extract { field, expr, .. } => Some(parse_expr(&format!(
            "time_extract({expr}, {})",
            string_lit(&field_name(field))
        ))?),
        Expr::Function(f) => rewrite_function(f)?,
        _ => None,
    };
    if let Some(r) = replacement {
        *e = r;
    }
    Ok(())
}

fn floor_ceil(func: &str, expr: &Expr, f: &DateTimeField) -> Result<Expr> {
    let unit = field_name(f);
    let Some(period) = super::functions::unit_period_text(&unit) else {
        return plan_err!("{} cannot round a timestamp to {unit}", func.to_uppercase());
    };
    parse_expr(&format!("{func}({expr}, '{period}')"))
}

fn rewrite_function(f: &mut ast::Function) -> Result<Option<Expr>> {
    // Function names are case-insensitive; quoted identifiers elsewhere are not.
    let single = f.name.0.len() == 1;
    for part in &mut f.name.0 {
        if let ObjectNamePart::Identifier(id) = part
            && id.quote_style.is_none()
        {
            id.value = id.value.to_lowercase();
        }
    }
    if !single {
        return Ok(None);
    }
    let name = f.name.to_string();
    if let Some(to) = alias(&name) {
        f.name = ast::ObjectName::from(vec![Ident::new(to)]);
        return Ok(None);
    }
    let args: Vec<String> = function_args(f).iter().map(|a| a.to_string()).collect();
    let filter = f
        .filter
        .as_ref()
        .map(|w| format!(" FILTER (WHERE {w})"))
        .unwrap_or_default();
    match name.as_str() {
        // Unit keywords (TIMESTAMPADD(DAY, 1, ts)) become strings.
        "timestampadd" | "timestampdiff" => {
            let unit: Option<String> =
                function_args(f)
                    .first()
                    .and_then(|a| arg_expr(a))
                    .and_then(|e| match e {
                        Expr::Identifier(id) => Some(id.value.clone()),
                        _ => None,
                    });
            if let Some(unit) = unit {
                let rest = args[1..].join(", ");
                return Ok(Some(parse_expr(&format!(
                    "{name}({}, {rest})",
                    string_lit(&unit)
                ))?));
            }
            Ok(None)
        }
        "mod" if args.len() == 2 => Ok(Some(parse_expr(&format!(
            "(({}) % ({}))",
            args[0], args[1]
        ))?)),
        "latest" | "earliest" | "latest_by" | "earliest_by" => {
            let Some(value) = args.first() else {
                return plan_err!("{} needs an expression", name.to_uppercase());
            };
            let by = if name.ends_with("_by") {
                match args.get(1) {
                    Some(t) => t.clone(),
                    None => return plan_err!("{} needs a time expression", name.to_uppercase()),
                }
            } else {
                "\"__time\"".to_string()
            };
            let func = if name.starts_with("latest") {
                "last_value"
            } else {
                "first_value"
            };
            Ok(Some(parse_expr(&format!(
                "{func}({value} ORDER BY {by}){filter}"
            ))?))
        }
        _ => Ok(None),
    }
}

/// Names unaliased, non-column select items `EXPR$<position>`.
fn name_expressions(q: &mut ast::Query) {
    if let SetExpr::Select(s) = q.body.as_mut() {
        for (i, item) in s.projection.iter_mut().enumerate() {
            if let SelectItem::UnnamedExpr(e) = item
                && !matches!(e, Expr::Identifier(_) | Expr::CompoundIdentifier(_))
            {
                *item = SelectItem::ExprWithAlias {
                    expr: e.clone(),
                    alias: Ident::with_quote('"', format!("EXPR${i}")),
                };
            }
        }
    }
}

/// SQL text of a parameter value.
fn parameter_sql(p: &Parameter) -> Result<String> {
    let kind = p.kind.to_uppercase();
    let v = &p.value;
    if v.is_null() {
        return Ok("NULL".to_string());
    }
    let text = match v {
        Json::String(s) => s.clone(),
        other => other.to_string(),
    };
    Ok(match kind.as_str() {
        "VARCHAR" | "CHAR" | "STRING" => string_lit(&text),
        "BIGINT" | "INTEGER" | "SMALLINT" | "TINYINT" | "LONG" | "DOUBLE" | "FLOAT" | "REAL"
        | "DECIMAL" => {
            if text.parse::<f64>().is_err() {
                return plan_err!("parameter of type {kind} has a non-numeric value {v}");
            }
            text
        }
        "BOOLEAN" => match text.to_lowercase().as_str() {
            "true" | "1" => "TRUE".to_string(),
            "false" | "0" => "FALSE".to_string(),
            _ => return plan_err!("parameter of type BOOLEAN has value {v}"),
        },
        "TIMESTAMP" => match v {
            Json::Number(n) => format!("MILLIS_TO_TIMESTAMP({n})"),
            _ => format!("CAST({} AS TIMESTAMP)", string_lit(&text)),
        },
        "DATE" => format!("CAST({} AS DATE)", string_lit(&text)),
        "ARRAY" => match v {
            Json::Array(items) => {
                let parts: Vec<String> = items
                    .iter()
                    .map(|i| match i {
                        Json::Null => "NULL".to_string(),
                        Json::String(s) => string_lit(s),
                        other => other.to_string(),
                    })
                    .collect();
                format!("make_array({})", parts.join(", "))
            }
            _ => return plan_err!("parameter of type ARRAY needs a JSON array, got {v}"),
        },
        other => return plan_err!("unsupported parameter type {other:?}"),
    })
}

fn bind_parameters(stmt: &mut Statement, params: &[Parameter]) -> Result<()> {
    let mut count = 0usize;
    let mut failure: Option<DataFusionError> = None;
    let _ = visit_expressions_mut(stmt, |e| {
        if let Expr::Value(v) = e
            && matches!(&v.value, Value::Placeholder(p) if p == "?")
        {
            let Some(p) = params.get(count) else {
                count += 1;
                return ControlFlow::Continue(());
            };
            count += 1;
            match parameter_sql(p).and_then(|sql| parse_expr(&sql)) {
                Ok(new) => *e = new,
                Err(err) => {
                    failure = Some(err);
                    return ControlFlow::Break(());
                }
            }
        }
        ControlFlow::Continue(())
    });
    if let Some(e) = failure {
        return Err(e);
    }
    if count != params.len() {
        return plan_err!(
            "the query has {count} parameter placeholder{} (?) but {} parameter{} given",
            if count == 1 { "" } else { "s" },
            params.len(),
            if params.len() == 1 { " was" } else { "s were" }
        );
    }
    Ok(())
}
