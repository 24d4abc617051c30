//! Virtual columns: Druid's `expression` virtual columns, computed per row from the columns
//! they name. Eddy groups on them (as groupBy and topN dimensions); filters and aggregators
//! cannot read them yet.

use serde_json::Value;

use eddy_expr::{Bindings, Compiled, ExprValue};

use crate::error::QueryError;

/// The type a virtual column's values take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VirtualType {
    Long,
    Double,
    String,
}

#[derive(Debug, Clone)]
pub struct VirtualColumn {
    pub name: String,
    pub expr: Compiled,
    pub output: VirtualType,
}

impl VirtualColumn {
    /// The column's value on a row, as its output type (Null when it converts to none).
    pub fn value(&self, row: &dyn Bindings) -> Result<ExprValue, QueryError> {
        let v = self
            .expr
            .eval(row)
            .map_err(|e| QueryError::Invalid(format!("virtual column {:?}: {e}", self.name)))?;
        Ok(match (self.output, v) {
            (_, ExprValue::Null) => ExprValue::Null,
            (VirtualType::Long, x) => x.as_i64().map_or(ExprValue::Null, ExprValue::Long),
            (VirtualType::Double, x) => x.as_f64().map_or(ExprValue::Null, ExprValue::Double),
            (VirtualType::String, x) => x.as_text().map_or(ExprValue::Null, ExprValue::Str),
        })
    }
}

/// Reads `virtualColumns`; every error names the entry and field.
pub fn parse_virtuals(values: &[Value]) -> Result<Vec<VirtualColumn>, QueryError> {
    values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let at = |field: &str, what: String| {
                QueryError::Invalid(format!("virtualColumns[{i}].{field}: {what}"))
            };
            let text = |field: &str| -> Result<&str, QueryError> {
                v.get(field)
                    .and_then(Value::as_str)
                    .ok_or_else(|| at(field, "must be a string".into()))
            };
            match text("type")? {
                "expression" => {}
                other => {
                    return Err(QueryError::Unsupported(format!(
                        "virtualColumns[{i}].type: {other:?} is not supported; Eddy runs expression virtual columns"
                    )));
                }
            }
            let name = text("name")?.to_string();
            if name == eddy_types::TIME_COLUMN {
                return Err(at("name", "cannot be __time".into()));
            }
            let expr = Compiled::parse(text("expression")?)
                .map_err(|e| at("expression", e.to_string()))?;
            // Druid's default output type is FLOAT.
            let output = match v.get("outputType").and_then(Value::as_str) {
                None => VirtualType::Double,
                Some(t) => match t.to_ascii_uppercase().as_str() {
                    "LONG" => VirtualType::Long,
                    "FLOAT" | "DOUBLE" => VirtualType::Double,
                    "STRING" => VirtualType::String,
                    other => {
                        return Err(at(
                            "outputType",
                            format!("{other:?} is not one of LONG, FLOAT, DOUBLE, STRING"),
                        ));
                    }
                },
            };
            Ok(VirtualColumn { name, expr, output })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use serde_json::json;

    use crate::Query;

    fn group_by(virtuals: serde_json::Value, filter: Option<serde_json::Value>) -> String {
        let mut q = json!({"queryType": "groupBy", "dataSource": "t", "intervals": ["2020/2021"],
            "granularity": "all", "dimensions": ["v"], "aggregations": [{"type": "count", "name": "n"}],
            "virtualColumns": virtuals});
        if let Some(f) = filter {
            q["filter"] = f;
        }
        match Query::from_json(q) {
            Ok(_) => "ok".into(),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn errors_name_the_entry_and_field() {
        let ok = json!([{"type": "expression", "name": "v", "expression": "l + 1", "outputType": "LONG"}]);
        assert_eq!(group_by(ok.clone(), None), "ok");
        let e = group_by(json!([{"type": "mapLookup", "name": "v"}]), None);
        assert!(
            e.contains("virtualColumns[0].type") && e.contains("mapLookup"),
            "{e}"
        );
        let e = group_by(
            json!([{"type": "expression", "name": "v", "expression": "l +"}]),
            None,
        );
        assert!(e.contains("virtualColumns[0].expression"), "{e}");
        let e = group_by(
            json!([{"type": "expression", "name": "v", "expression": "l", "outputType": "ARRAY"}]),
            None,
        );
        assert!(e.contains("virtualColumns[0].outputType"), "{e}");
        let e = group_by(json!([{"type": "expression", "expression": "l"}]), None);
        assert!(e.contains("virtualColumns[0].name"), "{e}");
        // Filters cannot read virtual columns yet.
        let e = group_by(
            ok,
            Some(json!({"type": "selector", "dimension": "v", "value": "1"})),
        );
        assert!(e.contains("virtual column \"v\""), "{e}");
        // Sum, min and max aggregators read those over one column; nothing else does.
        let with_agg = |expression: &str, agg: serde_json::Value| {
            Query::from_json(json!({"queryType": "groupBy", "dataSource": "t",
                "intervals": ["2020/2021"], "granularity": "all", "dimensions": ["s"],
                "aggregations": [agg],
                "virtualColumns": [{"type": "expression", "name": "v", "expression": expression, "outputType": "LONG"}]}))
            .map_or_else(|e| e.to_string(), |_| "ok".into())
        };
        let sum = json!({"type": "longSum", "name": "n", "fieldName": "v"});
        assert_eq!(with_agg("strlen(s)", sum.clone()), "ok");
        let e = with_agg("l + m", sum.clone());
        assert!(
            e.contains("virtual column \"v\"") && e.contains("one column"),
            "{e}"
        );
        let e = with_agg(
            "strlen(s)",
            json!({"type": "stringFirst", "name": "n", "fieldName": "v"}),
        );
        assert!(e.contains("aggregator \"n\""), "{e}");
        let e = with_agg(
            "strlen(s)",
            json!({"type": "filtered", "name": "n", "aggregator": sum,
            "filter": {"type": "selector", "dimension": "v", "value": "1"}}),
        );
        assert!(e.contains("read by a filter"), "{e}");
        // Only groupBy and topN take them.
        let e = Query::from_json(json!({"queryType": "timeseries", "dataSource": "t",
            "intervals": ["2020/2021"], "granularity": "all", "aggregations": [],
            "virtualColumns": [{"type": "expression", "name": "v", "expression": "1"}]}))
        .unwrap_err()
        .to_string();
        assert!(e.contains("groupBy and topN"), "{e}");
    }
}
