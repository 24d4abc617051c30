//! Druid's Kafka supervisor spec (`POST /druid/indexer/v1/supervisor`): parsing with errors that
//! name the field path, validation, and the normalized form Druid echoes on GET.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::period::Period;
use crate::serde_util::bool_lenient;
use crate::spec::ingest::{DataSchema, DimensionType, InputFormat};

/// `consumerProperties["bootstrap.servers"]` value that selects the embedded stream.
pub const EMBEDDED_SERVERS: &str = "embedded";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StreamIoConfig {
    #[serde(default)]
    pub topic: Option<String>,
    #[serde(default)]
    pub topic_pattern: Option<String>,
    pub input_format: InputFormat,
    #[serde(default)]
    pub consumer_properties: BTreeMap<String, Value>,
    #[serde(default)]
    pub poll_timeout: Option<u64>,
    #[serde(default, deserialize_with = "bool_lenient")]
    pub use_earliest_offset: bool,
    #[serde(default)]
    pub task_count: Option<u32>,
    #[serde(default)]
    pub replicas: Option<u32>,
    #[serde(default)]
    pub task_duration: Option<String>,
    #[serde(default)]
    pub start_delay: Option<String>,
    #[serde(default)]
    pub period: Option<String>,
    #[serde(default)]
    pub completion_timeout: Option<String>,
    #[serde(default)]
    pub late_message_rejection_period: Option<String>,
    #[serde(default)]
    pub late_message_rejection_start_date_time: Option<String>,
    #[serde(default)]
    pub early_message_rejection_period: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StreamTuningConfig {
    #[serde(default)]
    pub max_rows_in_memory: Option<u64>,
    #[serde(default)]
    pub max_bytes_in_memory: Option<i64>,
    #[serde(default)]
    pub max_rows_per_segment: Option<u64>,
    #[serde(default)]
    pub max_total_rows: Option<u64>,
    #[serde(default)]
    pub intermediate_persist_period: Option<String>,
    #[serde(default)]
    pub intermediate_handoff_period: Option<String>,
    #[serde(default)]
    pub handoff_condition_timeout: Option<u64>,
    #[serde(default, deserialize_with = "bool_lenient")]
    pub reset_offset_automatically: bool,
    #[serde(default)]
    pub max_parse_exceptions: Option<u64>,
    #[serde(default)]
    pub max_saved_parse_exceptions: Option<usize>,
}

/// A validated supervisor spec with its settings resolved to numbers.
#[derive(Debug, Clone, PartialEq)]
pub struct SupervisorSpec {
    pub data_schema: DataSchema,
    pub io_config: StreamIoConfig,
    pub tuning_config: StreamTuningConfig,
    pub suspended: bool,
    pub context: Option<Value>,
    /// The body as submitted (envelope unwrapped to the nested form).
    pub raw: Value,
    pub settings: StreamSettings,
}

/// The numbers a realtime task runs with (Druid's defaults where the spec is silent).
#[derive(Debug, Clone, PartialEq)]
pub struct StreamSettings {
    pub topic: String,
    /// `None` reads the embedded stream.
    pub bootstrap_servers: Option<String>,
    pub poll_timeout_ms: u64,
    pub task_count: u32,
    pub replicas: u32,
    pub task_duration_ms: i64,
    pub start_delay_ms: i64,
    pub period_ms: i64,
    pub completion_timeout_ms: i64,
    pub late_rejection_ms: Option<i64>,
    pub late_rejection_start: Option<i64>,
    pub early_rejection_ms: Option<i64>,
    pub max_rows_in_memory: u64,
    /// 0: a sixth of the memory limit the node chooses.
    pub max_bytes_in_memory: i64,
    pub max_rows_per_segment: u64,
    pub max_total_rows: u64,
    pub intermediate_persist_ms: i64,
    pub intermediate_handoff_ms: i64,
    pub handoff_condition_timeout_ms: u64,
    pub max_parse_exceptions: u64,
    pub max_saved_parse_exceptions: usize,
}

/// Druid's streaming tuning defaults.
pub const DEFAULT_MAX_ROWS_IN_MEMORY: u64 = 150_000;
pub const DEFAULT_MAX_ROWS_PER_SEGMENT: u64 = 5_000_000;
pub const DEFAULT_MAX_TOTAL_ROWS: u64 = 20_000_000;
const NEVER: &str = "P2147483647D";

fn parse_json<T: for<'de> Deserialize<'de>>(v: &Value, prefix: &str) -> Result<T, String> {
    serde_path_to_error::deserialize(v).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.inner().to_string();
        if path == "." {
            format!("{prefix}: {inner}")
        } else {
            format!("{prefix}.{path}: {inner}")
        }
    })
}

/// Milliseconds of an ISO period field; `None` when absent.
fn period_ms(v: &Option<String>, path: &str) -> Result<Option<i64>, String> {
    let Some(text) = v else { return Ok(None) };
    let p: Period = text.parse().map_err(|e| format!("{path}: {e}"))?;
    p.standard_millis()
        .map(Some)
        .ok_or_else(|| format!("{path}: {text:?} has months or years; use days or smaller units"))
}

fn type_of(v: &Value) -> Option<&str> {
    v.get("type").and_then(Value::as_str)
}

impl SupervisorSpec {
    /// Parses a POSTed body in the nested (`{"type","spec":{..}}`) or flat layout.
    pub fn from_json_bytes(body: &[u8]) -> Result<SupervisorSpec, String> {
        let root: Value =
            serde_json::from_slice(body).map_err(|e| format!("the body is not valid JSON: {e}"))?;
        let Value::Object(obj) = &root else {
            return Err("the body must be a JSON object".into());
        };
        match obj.get("type").and_then(Value::as_str) {
            Some("kafka") => {}
            Some(other) => {
                return Err(format!(
                    "type: supervisor type {other:?} is not supported; use \"kafka\""
                ));
            }
            None => return Err("type: missing; a supervisor spec needs \"type\": \"kafka\"".into()),
        }
        let (inner, prefix) = match obj.get("spec") {
            Some(Value::Object(s)) => (s.clone(), "spec"),
            Some(_) => return Err("spec: expected an object".into()),
            None => {
                let mut m = Map::new();
                for k in ["dataSchema", "ioConfig", "tuningConfig"] {
                    if let Some(v) = obj.get(k) {
                        m.insert(k.into(), v.clone());
                    }
                }
                (m, "")
            }
        };
        let path = |field: &str| {
            if prefix.is_empty() {
                field.to_string()
            } else {
                format!("{prefix}.{field}")
            }
        };
        let data_schema_v = inner
            .get("dataSchema")
            .ok_or_else(|| format!("{}: missing", path("dataSchema")))?;
        let io_v = inner
            .get("ioConfig")
            .ok_or_else(|| format!("{}: missing", path("ioConfig")))?;
        let tuning_v = inner.get("tuningConfig").cloned().unwrap_or(json!({}));
        for (v, field) in [(io_v, "ioConfig"), (&tuning_v, "tuningConfig")] {
            if let Some(t) = type_of(v)
                && t != "kafka"
            {
                return Err(format!(
                    "{}.type: expected \"kafka\", got {t:?}",
                    path(field)
                ));
            }
        }
        let format_path = path("ioConfig.inputFormat");
        const FORMATS: &str = "\"json\", \"avro_stream\", \"kafka\", \"csv\" or \"tsv\"";
        match io_v.get("inputFormat").and_then(type_of) {
            Some("json" | "csv" | "tsv" | "avro_stream" | "kafka") => {}
            Some(t @ "protobuf") => {
                return Err(format!(
                    "{format_path}.type: {t:?} is not supported yet; use {FORMATS}"
                ));
            }
            Some(t) => {
                return Err(format!(
                    "{format_path}.type: {t:?} is not a stream input format; use {FORMATS}"
                ));
            }
            None => {
                return Err(format!(
                    "{format_path}: missing; give {{\"type\": \"json\"}}"
                ));
            }
        }
        let data_schema: DataSchema = parse_json(data_schema_v, &path("dataSchema"))?;
        data_schema.validate(&path("dataSchema"))?;
        let io_config: StreamIoConfig = parse_json(io_v, &path("ioConfig"))?;
        let tuning_config: StreamTuningConfig = parse_json(&tuning_v, &path("tuningConfig"))?;
        let suspended = match obj.get("suspended") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(other) => return Err(format!("suspended: expected true or false, got {other}")),
        };
        let settings = Self::resolve(&io_config, &tuning_config, &path)?;
        let mut raw = Map::new();
        raw.insert("type".into(), json!("kafka"));
        raw.insert("spec".into(), Value::Object(inner));
        raw.insert("suspended".into(), json!(suspended));
        raw.insert(
            "context".into(),
            obj.get("context").cloned().unwrap_or(Value::Null),
        );
        Ok(SupervisorSpec {
            data_schema,
            io_config,
            tuning_config,
            suspended,
            context: obj.get("context").cloned().filter(|c| !c.is_null()),
            raw: Value::Object(raw),
            settings,
        })
    }

    fn resolve(
        io: &StreamIoConfig,
        tuning: &StreamTuningConfig,
        path: &dyn Fn(&str) -> String,
    ) -> Result<StreamSettings, String> {
        let topic = match (&io.topic, &io.topic_pattern) {
            (Some(t), None) => t.clone(),
            (None, Some(_)) => {
                return Err(format!(
                    "{}: topic patterns are not supported yet; name one \"topic\"",
                    path("ioConfig.topicPattern")
                ));
            }
            (Some(_), Some(_)) => {
                return Err(format!(
                    "{}: give either \"topic\" or \"topicPattern\", not both",
                    path("ioConfig")
                ));
            }
            (None, None) => return Err(format!("{}: missing", path("ioConfig.topic"))),
        };
        let servers_path = path("ioConfig.consumerProperties.bootstrap.servers");
        let bootstrap_servers = match io.consumer_properties.get("bootstrap.servers") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if s.trim() == EMBEDDED_SERVERS || s.trim().is_empty() => None,
            Some(Value::String(s)) => Some(s.trim().to_string()),
            Some(other) => return Err(format!("{servers_path}: expected a string, got {other}")),
        };
        let positive = |v: Option<u32>, field: &str| -> Result<u32, String> {
            match v {
                None => Ok(1),
                Some(0) => Err(format!("{}: must be at least 1", path(field))),
                Some(n) => Ok(n),
            }
        };
        let ms = |v: &Option<String>, field: &str, default: &str| -> Result<i64, String> {
            let p = path(field);
            let given = period_ms(v, &p)?;
            let value = match given {
                Some(x) => x,
                None => period_ms(&Some(default.to_string()), &p)?.unwrap_or(0),
            };
            if value <= 0 {
                return Err(format!("{p}: must be a positive period"));
            }
            Ok(value)
        };
        let late_start = match &io.late_message_rejection_start_date_time {
            None => None,
            Some(t) => Some(crate::time::parse_iso(t).map_err(|_| {
                format!(
                    "{}: cannot parse {t:?} as an ISO time",
                    path("ioConfig.lateMessageRejectionStartDateTime")
                )
            })?),
        };
        let max_rows_per_segment = tuning
            .max_rows_per_segment
            .unwrap_or(DEFAULT_MAX_ROWS_PER_SEGMENT);
        if max_rows_per_segment == 0 {
            return Err(format!(
                "{}: must be at least 1",
                path("tuningConfig.maxRowsPerSegment")
            ));
        }
        Ok(StreamSettings {
            topic,
            bootstrap_servers,
            poll_timeout_ms: io.poll_timeout.unwrap_or(100).max(1),
            task_count: positive(io.task_count, "ioConfig.taskCount")?,
            replicas: positive(io.replicas, "ioConfig.replicas")?,
            task_duration_ms: ms(&io.task_duration, "ioConfig.taskDuration", "PT1H")?,
            start_delay_ms: period_ms(&io.start_delay, &path("ioConfig.startDelay"))?
                .unwrap_or(5000),
            period_ms: ms(&io.period, "ioConfig.period", "PT30S")?,
            completion_timeout_ms: ms(
                &io.completion_timeout,
                "ioConfig.completionTimeout",
                "PT30M",
            )?,
            late_rejection_ms: period_ms(
                &io.late_message_rejection_period,
                &path("ioConfig.lateMessageRejectionPeriod"),
            )?,
            late_rejection_start: late_start,
            early_rejection_ms: period_ms(
                &io.early_message_rejection_period,
                &path("ioConfig.earlyMessageRejectionPeriod"),
            )?,
            max_rows_in_memory: tuning
                .max_rows_in_memory
                .unwrap_or(DEFAULT_MAX_ROWS_IN_MEMORY)
                .max(1),
            max_bytes_in_memory: tuning.max_bytes_in_memory.unwrap_or(0),
            max_rows_per_segment,
            max_total_rows: tuning
                .max_total_rows
                .unwrap_or(DEFAULT_MAX_TOTAL_ROWS)
                .max(1),
            intermediate_persist_ms: ms(
                &tuning.intermediate_persist_period,
                "tuningConfig.intermediatePersistPeriod",
                "PT10M",
            )?,
            intermediate_handoff_ms: ms(
                &tuning.intermediate_handoff_period,
                "tuningConfig.intermediateHandoffPeriod",
                NEVER,
            )?,
            handoff_condition_timeout_ms: tuning.handoff_condition_timeout.unwrap_or(900_000),
            max_parse_exceptions: tuning.max_parse_exceptions.unwrap_or(2_147_483_647),
            max_saved_parse_exceptions: tuning.max_saved_parse_exceptions.unwrap_or(0),
        })
    }

    pub fn datasource(&self) -> &crate::DataSourceName {
        &self.data_schema.data_source
    }

    /// The spec as Druid echoes it on GET (druid-api.md §1.6): defaults written out, string
    /// dimensions expanded, granularities normalized, periods in seconds, and both the nested
    /// `spec` and top-level copies of its three parts.
    pub fn normalized(&self) -> Value {
        let s = &self.settings;
        let inner = &self.raw["spec"];
        let mut schema = inner["dataSchema"].clone();
        let dims: Vec<Value> = self
            .data_schema
            .dimensions_spec
            .dimensions
            .iter()
            .map(|d| {
                let kind = match d.kind {
                    DimensionType::String => "string",
                    DimensionType::Long => "long",
                    DimensionType::Float => "float",
                    DimensionType::Double => "double",
                    DimensionType::Json => "json",
                    DimensionType::Auto => "auto",
                };
                json!({
                    "type": kind,
                    "name": d.name,
                    "multiValueHandling": "SORTED_ARRAY",
                    "createBitmapIndex": d.has_bitmap_index(),
                })
            })
            .collect();
        let mut exclusions = self
            .data_schema
            .dimensions_spec
            .dimension_exclusions
            .clone();
        if !exclusions.iter().any(|e| e == crate::TIME_COLUMN) {
            exclusions.push(crate::TIME_COLUMN.into());
        }
        let mut dims_spec = schema
            .get("dimensionsSpec")
            .cloned()
            .unwrap_or_else(|| json!({}));
        dims_spec["dimensions"] = Value::Array(dims);
        dims_spec["dimensionExclusions"] = json!(exclusions);
        if dims_spec.get("spatialDimensions").is_none() {
            dims_spec["spatialDimensions"] = json!([]);
        }
        schema["dimensionsSpec"] = dims_spec;
        let gran = &self.data_schema.granularity_spec;
        schema["granularitySpec"] = json!({
            "type": "uniform",
            "segmentGranularity": gran.segment_granularity.to_json(),
            "queryGranularity": match gran.query_granularity.to_json() {
                Value::String(name) => json!({"type": name.to_ascii_lowercase()}),
                other => other,
            },
            "rollup": gran.rollup,
            "intervals": [],
        });
        if schema.get("metricsSpec").is_none() {
            schema["metricsSpec"] = json!([]);
        }
        let ts = schema
            .get("timestampSpec")
            .cloned()
            .unwrap_or_else(|| json!({}));
        schema["timestampSpec"] = json!({
            "column": ts.get("column").cloned().unwrap_or(json!("timestamp")),
            "format": ts.get("format").cloned().unwrap_or(json!("auto")),
            "missingValue": ts.get("missingValue").cloned().unwrap_or(Value::Null),
        });
        let mut transform = schema
            .get("transformSpec")
            .cloned()
            .unwrap_or_else(|| json!({}));
        if transform.get("filter").is_none() {
            transform["filter"] = Value::Null;
        }
        if transform.get("transforms").is_none() {
            transform["transforms"] = json!([]);
        }
        schema["transformSpec"] = transform;

        let secs = |ms: i64| format!("PT{}S", ms / 1000);
        let mut io = inner["ioConfig"].clone();
        io["type"] = json!("kafka");
        io["topic"] = json!(s.topic);
        io["stream"] = json!(s.topic);
        io["useEarliestOffset"] = json!(self.io_config.use_earliest_offset);
        io["useEarliestSequenceNumber"] = json!(self.io_config.use_earliest_offset);
        io["pollTimeout"] = json!(s.poll_timeout_ms);
        io["taskCount"] = json!(s.task_count);
        io["replicas"] = json!(s.replicas);
        io["taskDuration"] = json!(secs(s.task_duration_ms));
        io["startDelay"] = json!(secs(s.start_delay_ms));
        io["period"] = json!(secs(s.period_ms));
        io["completionTimeout"] = json!(secs(s.completion_timeout_ms));
        for (key, v) in [
            ("lateMessageRejectionPeriod", s.late_rejection_ms),
            ("earlyMessageRejectionPeriod", s.early_rejection_ms),
        ] {
            io[key] = v.map_or(Value::Null, |ms| json!(secs(ms)));
        }
        if io.get("consumerProperties").is_none() {
            io["consumerProperties"] = json!({});
        }
        for key in [
            "autoScalerConfig",
            "idleConfig",
            "lateMessageRejectionStartDateTime",
        ] {
            if io.get(key).is_none() {
                io[key] = Value::Null;
            }
        }

        let mut tuning = inner
            .get("tuningConfig")
            .cloned()
            .unwrap_or_else(|| json!({}));
        let defaults = json!({
            "type": "kafka",
            "maxRowsInMemory": s.max_rows_in_memory,
            "maxBytesInMemory": s.max_bytes_in_memory,
            "maxRowsPerSegment": s.max_rows_per_segment,
            "maxTotalRows": self.tuning_config.max_total_rows,
            "intermediatePersistPeriod": secs(s.intermediate_persist_ms),
            "intermediateHandoffPeriod": NEVER,
            "maxPendingPersists": 0,
            "handoffConditionTimeout": s.handoff_condition_timeout_ms,
            "resetOffsetAutomatically": self.tuning_config.reset_offset_automatically,
            "reportParseExceptions": false,
            "logParseExceptions": false,
            "maxParseExceptions": s.max_parse_exceptions,
            "maxSavedParseExceptions": s.max_saved_parse_exceptions,
            "skipSequenceNumberAvailabilityCheck": false,
            "chatRetries": 8,
            "httpTimeout": "PT10S",
            "shutdownTimeout": "PT80S",
            "offsetFetchPeriod": "PT30S",
            "numPersistThreads": 1,
        });
        if let (Value::Object(t), Value::Object(d)) = (&mut tuning, defaults) {
            for (k, v) in d {
                t.entry(k).or_insert(v);
            }
        }
        if self.tuning_config.intermediate_handoff_period.is_some() {
            tuning["intermediateHandoffPeriod"] = json!(secs(s.intermediate_handoff_ms));
        }
        json!({
            "type": "kafka",
            "spec": {"dataSchema": schema, "ioConfig": io, "tuningConfig": tuning},
            "dataSchema": schema,
            "ioConfig": io,
            "tuningConfig": tuning,
            "context": self.raw.get("context").cloned().unwrap_or(Value::Null),
            "suspended": self.suspended,
        })
    }

    /// The same spec with `suspended` set.
    pub fn with_suspended(&self, suspended: bool) -> SupervisorSpec {
        let mut out = self.clone();
        out.suspended = suspended;
        out.raw["suspended"] = json!(suspended);
        out
    }
}

#[cfg(test)]
mod tests;
