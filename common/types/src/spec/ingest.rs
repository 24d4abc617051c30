//! Ingestion specs as Druid writes them: the `dataSchema` shared by batch and streaming, and the
//! batch task (`index_parallel`) `ioConfig` and `tuningConfig`. Unknown keys are ignored like
//! Druid does; `validate` checks what the types cannot and names the field path.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::granularity::Granularity;
use crate::ids::DataSourceName;
use crate::interval::Interval;
use crate::serde_util::{bool_lenient, opt_bool_lenient};
use crate::spec::aggregator::AggregatorSpec;
use crate::spec::filter::FilterSpec;

pub use super::input::{AvroBytesDecoder, FlattenField, FlattenSpec, InputFormat, InputSource};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DataSchema {
    pub data_source: DataSourceName,
    #[serde(default)]
    pub timestamp_spec: TimestampSpec,
    #[serde(default)]
    pub dimensions_spec: DimensionsSpec,
    #[serde(default)]
    pub metrics_spec: Vec<AggregatorSpec>,
    #[serde(default)]
    pub granularity_spec: GranularitySpec,
    #[serde(default)]
    pub transform_spec: TransformSpec,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TimestampSpec {
    #[serde(default = "default_timestamp_column")]
    pub column: String,
    #[serde(default = "default_timestamp_format")]
    pub format: String,
    #[serde(default)]
    pub missing_value: Option<String>,
}

fn default_timestamp_column() -> String {
    "timestamp".to_string()
}

fn default_timestamp_format() -> String {
    "auto".to_string()
}

impl Default for TimestampSpec {
    fn default() -> Self {
        TimestampSpec {
            column: default_timestamp_column(),
            format: default_timestamp_format(),
            missing_value: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DimensionsSpec {
    #[serde(default)]
    pub dimensions: Vec<DimensionSchema>,
    #[serde(default)]
    pub dimension_exclusions: Vec<String>,
    #[serde(default)]
    pub spatial_dimensions: Vec<Value>,
    #[serde(default, deserialize_with = "bool_lenient")]
    pub include_all_dimensions: bool,
    #[serde(default, deserialize_with = "bool_lenient")]
    pub use_schema_discovery: bool,
    /// Druid's `forceSegmentSortByTime`: when false, rows sort by `dimensions` in order, and a
    /// `__time` entry among them places time in that order.
    #[serde(default = "default_true", deserialize_with = "bool_lenient")]
    pub force_segment_sort_by_time: bool,
}

pub(super) fn default_true() -> bool {
    true
}

impl Default for DimensionsSpec {
    fn default() -> Self {
        DimensionsSpec {
            dimensions: Vec::new(),
            dimension_exclusions: Vec::new(),
            spatial_dimensions: Vec::new(),
            include_all_dimensions: false,
            use_schema_discovery: false,
            force_segment_sort_by_time: true,
        }
    }
}

impl DimensionsSpec {
    /// Schemaless mode: no explicit dimensions, so fields are discovered from the rows.
    pub fn is_schemaless(&self) -> bool {
        self.explicit_dimensions().next().is_none()
            || self.include_all_dimensions
            || self.use_schema_discovery
    }

    /// Declared dimensions without a `__time` placeholder.
    pub fn explicit_dimensions(&self) -> impl Iterator<Item = &DimensionSchema> {
        self.dimensions
            .iter()
            .filter(|d| d.name != crate::TIME_COLUMN)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DimensionType {
    String,
    Long,
    Float,
    Double,
    Json,
    Auto,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum MultiValueHandling {
    #[default]
    #[serde(alias = "sorted_array")]
    SortedArray,
    #[serde(alias = "sorted_set")]
    SortedSet,
    #[serde(alias = "array")]
    Array,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DimensionSchema {
    #[serde(rename = "type")]
    pub kind: DimensionType,
    pub name: String,
    pub create_bitmap_index: Option<bool>,
    pub multi_value_handling: MultiValueHandling,
}

impl DimensionSchema {
    pub fn string(name: &str) -> Self {
        DimensionSchema {
            kind: DimensionType::String,
            name: name.to_string(),
            create_bitmap_index: None,
            multi_value_handling: MultiValueHandling::SortedArray,
        }
    }

    /// Strings always carry bitmaps; numbers only when asked (Druid's defaults).
    pub fn has_bitmap_index(&self) -> bool {
        match self.kind {
            DimensionType::String => self.create_bitmap_index.unwrap_or(true),
            _ => self.create_bitmap_index.unwrap_or(false),
        }
    }
}

impl<'de> Deserialize<'de> for DimensionSchema {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Obj {
            #[serde(rename = "type", default)]
            kind: Option<DimensionType>,
            name: String,
            #[serde(default, deserialize_with = "opt_bool_lenient")]
            create_bitmap_index: Option<bool>,
            #[serde(default)]
            multi_value_handling: Option<MultiValueHandling>,
        }
        let v = Value::deserialize(d)?;
        match v {
            Value::String(s) => Ok(DimensionSchema::string(&s)),
            Value::Object(_) => {
                let o: Obj = serde_json::from_value(v).map_err(serde::de::Error::custom)?;
                Ok(DimensionSchema {
                    kind: o.kind.unwrap_or(DimensionType::String),
                    name: o.name,
                    create_bitmap_index: o.create_bitmap_index,
                    multi_value_handling: o.multi_value_handling.unwrap_or_default(),
                })
            }
            other => Err(serde::de::Error::custom(format!(
                "a dimension is a name or {{\"type\":\"long\",\"name\":..}}, got {other}"
            ))),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GranularitySpec {
    #[serde(default = "default_segment_granularity")]
    pub segment_granularity: Granularity,
    #[serde(default = "default_query_granularity")]
    pub query_granularity: Granularity,
    #[serde(default = "default_true", deserialize_with = "bool_lenient")]
    pub rollup: bool,
    #[serde(default)]
    pub intervals: Option<Vec<Interval>>,
}

fn default_segment_granularity() -> Granularity {
    Granularity::from_name("day").unwrap_or(Granularity::All)
}

fn default_query_granularity() -> Granularity {
    Granularity::None
}

impl Default for GranularitySpec {
    fn default() -> Self {
        GranularitySpec {
            segment_granularity: default_segment_granularity(),
            query_granularity: default_query_granularity(),
            rollup: true,
            intervals: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TransformSpec {
    #[serde(default)]
    pub transforms: Vec<Transform>,
    #[serde(default)]
    pub filter: Option<FilterSpec>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Transform {
    #[serde(rename = "type", default = "default_expression_type")]
    pub kind: String,
    pub name: String,
    pub expression: String,
}

fn default_expression_type() -> String {
    "expression".to_string()
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchIoConfig {
    pub input_source: InputSource,
    pub input_format: InputFormat,
    #[serde(default, deserialize_with = "bool_lenient")]
    pub append_to_existing: bool,
    #[serde(default, deserialize_with = "bool_lenient")]
    pub drop_existing: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchTuningConfig {
    #[serde(default)]
    pub max_rows_per_segment: Option<usize>,
    #[serde(default)]
    pub max_rows_in_memory: Option<usize>,
    #[serde(default)]
    pub partitions_spec: Option<Value>,
    #[serde(default)]
    pub max_parse_exceptions: Option<u64>,
    #[serde(default)]
    pub max_saved_parse_exceptions: Option<usize>,
    /// How long the task waits for its segments to be served before reporting success.
    #[serde(default)]
    pub await_segment_availability_timeout_millis: Option<i64>,
}

impl BatchTuningConfig {
    pub const DEFAULT_MAX_ROWS_PER_SEGMENT: usize = 5_000_000;
    pub const DEFAULT_SAVED_PARSE_EXCEPTIONS: usize = 10;

    /// `partitionsSpec.maxRowsPerSegment` wins over the top-level key, as in Druid.
    pub fn max_rows_per_segment(&self) -> usize {
        self.partitions_spec
            .as_ref()
            .and_then(|p| p.get("maxRowsPerSegment"))
            .and_then(crate::serde_util::value_as_i64)
            .map(|v| v.max(1) as usize)
            .or(self.max_rows_per_segment)
            .unwrap_or(Self::DEFAULT_MAX_ROWS_PER_SEGMENT)
    }

    pub fn max_parse_exceptions(&self) -> u64 {
        self.max_parse_exceptions.unwrap_or(u64::MAX)
    }

    pub fn max_saved_parse_exceptions(&self) -> usize {
        self.max_saved_parse_exceptions
            .unwrap_or(Self::DEFAULT_SAVED_PARSE_EXCEPTIONS)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchIngestionSpec {
    pub data_schema: DataSchema,
    pub io_config: BatchIoConfig,
    #[serde(default)]
    pub tuning_config: BatchTuningConfig,
}

/// The body of `POST /druid/indexer/v1/task` for batch ingestion.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IndexTaskSpec {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub id: Option<String>,
    #[serde(alias = "ingestionSpec")]
    pub spec: BatchIngestionSpec,
    #[serde(default)]
    pub context: Option<Value>,
}

impl IndexTaskSpec {
    /// Parses a task body; errors name the JSON path of the bad field.
    pub fn from_json_bytes(body: &[u8]) -> Result<Self, String> {
        let de = &mut serde_json::Deserializer::from_slice(body);
        let spec: IndexTaskSpec = serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            if path == "." {
                e.inner().to_string()
            } else {
                format!("{path}: {}", e.inner())
            }
        })?;
        spec.validate()?;
        Ok(spec)
    }

    pub fn validate(&self) -> Result<(), String> {
        match self.kind.as_str() {
            "index_parallel" | "index" => {}
            other => {
                return Err(format!(
                    "type: task type {other:?} is not supported; use \"index_parallel\" (batch) or a supervisor for Kafka"
                ));
            }
        }
        self.spec.data_schema.validate("spec.dataSchema")
    }
}

impl DataSchema {
    /// Checks the schema and names the path of the first problem (`prefix` is the schema's path).
    pub fn validate(&self, prefix: &str) -> Result<(), String> {
        let dims = &self.dimensions_spec;
        for (i, d) in dims.dimensions.iter().enumerate() {
            let path = format!("{prefix}.dimensionsSpec.dimensions[{i}]");
            if d.name.is_empty() {
                return Err(format!("{path}.name: a dimension needs a name"));
            }
            match d.kind {
                DimensionType::Json | DimensionType::Auto => {
                    return Err(format!(
                        "{path}.type: dimension type {:?} is not supported yet; use string, long, float or double",
                        d.kind
                    ));
                }
                _ => {}
            }
            if d.name == crate::TIME_COLUMN && dims.force_segment_sort_by_time {
                return Err(format!(
                    "{path}: __time may be listed among dimensions only with forceSegmentSortByTime: false"
                ));
            }
            if dims.dimensions[..i].iter().any(|o| o.name == d.name) {
                return Err(format!(
                    "{path}.name: dimension {:?} is listed twice",
                    d.name
                ));
            }
        }
        if !dims.spatial_dimensions.is_empty() {
            return Err(format!(
                "{prefix}.dimensionsSpec.spatialDimensions: spatial dimensions are not supported"
            ));
        }
        let mut metric_names: Vec<&str> = Vec::new();
        for (i, m) in self.metrics_spec.iter().enumerate() {
            let path = format!("{prefix}.metricsSpec[{i}]");
            m.validate().map_err(|e| format!("{path}: {e}"))?;
            match m {
                AggregatorSpec::Count { .. }
                | AggregatorSpec::LongSum(_)
                | AggregatorSpec::DoubleSum(_)
                | AggregatorSpec::FloatSum(_)
                | AggregatorSpec::LongMin(_)
                | AggregatorSpec::LongMax(_)
                | AggregatorSpec::DoubleMin(_)
                | AggregatorSpec::DoubleMax(_)
                | AggregatorSpec::FloatMin(_)
                | AggregatorSpec::FloatMax(_)
                | AggregatorSpec::HyperUnique(_) => {}
                other => {
                    return Err(format!(
                        "{path}.type: {:?} is not supported at ingestion; use count, *Sum, *Min, *Max or hyperUnique",
                        other.type_name()
                    ));
                }
            }
            if m.name() == crate::TIME_COLUMN
                || dims.explicit_dimensions().any(|d| d.name == m.name())
            {
                return Err(format!(
                    "{path}.name: {:?} is already a dimension or __time",
                    m.name()
                ));
            }
            if metric_names.contains(&m.name()) {
                return Err(format!(
                    "{path}.name: metric {:?} is defined twice",
                    m.name()
                ));
            }
            metric_names.push(m.name());
        }
        for (i, t) in self.transform_spec.transforms.iter().enumerate() {
            if t.kind != "expression" {
                return Err(format!(
                    "{prefix}.transformSpec.transforms[{i}].type: only \"expression\" transforms exist, got {:?}",
                    t.kind
                ));
            }
        }
        if let Some(f) = &self.transform_spec.filter {
            f.validate()
                .map_err(|e| format!("{prefix}.transformSpec.filter: {e}"))?;
        }
        if self.granularity_spec.segment_granularity == Granularity::None {
            return Err(format!(
                "{prefix}.granularitySpec.segmentGranularity: \"none\" would make a segment per millisecond"
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn task(body: Value) -> Result<IndexTaskSpec, String> {
        IndexTaskSpec::from_json_bytes(body.to_string().as_bytes())
    }

    fn base() -> Value {
        json!({
          "type": "index_parallel",
          "spec": {
            "dataSchema": {
              "dataSource": "wikipedia",
              "timestampSpec": {"column": "time", "format": "iso"},
              "dimensionsSpec": {"dimensions": ["channel", {"type": "long", "name": "added"}]},
              "metricsSpec": [{"type": "count", "name": "count"}],
              "granularitySpec": {"segmentGranularity": "day", "queryGranularity": "none", "rollup": false}
            },
            "ioConfig": {
              "type": "index_parallel",
              "inputSource": {"type": "local", "baseDir": "/tmp", "filter": "*.json"},
              "inputFormat": {"type": "json"},
              "appendToExisting": false
            },
            "tuningConfig": {"type": "index_parallel", "partitionsSpec": {"type": "dynamic", "maxRowsPerSegment": 100}}
          }
        })
    }

    #[test]
    fn parses_druid_tutorial_shape() {
        let t = task(base()).unwrap();
        assert_eq!(t.spec.data_schema.data_source.as_str(), "wikipedia");
        assert_eq!(t.spec.tuning_config.max_rows_per_segment(), 100);
        assert_eq!(
            t.spec.data_schema.dimensions_spec.dimensions[1].kind,
            DimensionType::Long
        );
        assert!(!t.spec.data_schema.granularity_spec.rollup);
    }

    #[test]
    fn errors_name_the_field() {
        let mut b = base();
        b["spec"]["dataSchema"]["granularitySpec"]["segmentGranularity"] = json!("fortnight");
        let e = task(b).unwrap_err();
        assert!(
            e.contains("spec.dataSchema.granularitySpec.segmentGranularity"),
            "{e}"
        );
        let mut b = base();
        b["spec"]["ioConfig"]["inputFormat"] = json!({"type": "xml"});
        let e = task(b).unwrap_err();
        assert!(
            e.contains("spec.ioConfig.inputFormat") && e.contains("xml"),
            "{e}"
        );
        let mut b = base();
        b["spec"]["dataSchema"]["metricsSpec"] = json!([{"type": "longSum", "name": "x"}]);
        let e = task(b).unwrap_err();
        assert!(
            e.contains("spec.dataSchema.metricsSpec[0]") && e.contains("fieldName"),
            "{e}"
        );
        let mut b = base();
        b["spec"]["dataSchema"]["dataSource"] = json!("a/b");
        let e = task(b).unwrap_err();
        assert!(e.contains("spec.dataSchema.dataSource"), "{e}");
    }
}
