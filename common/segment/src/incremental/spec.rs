//! What an incremental index is built from: the dataSchema's dimensions, metrics and
//! granularities, checked once.

use std::collections::HashSet;

use eddy_types::spec::AggregatorSpec;
use eddy_types::spec::ingest::{DataSchema, DimensionSchema};
use eddy_types::{Granularity, TIME_COLUMN};

/// How rows become an index: the dataSchema's dimension, metric and granularity parts.
#[derive(Debug, Clone)]
pub struct IndexSpec {
    pub dimensions: Vec<DimensionSchema>,
    pub discover: bool,
    pub exclusions: HashSet<String>,
    pub metrics: Vec<AggregatorSpec>,
    pub query_granularity: Granularity,
    pub rollup: bool,
    /// Where `__time` sorts among the declared dimensions; `Some(0)` is Druid's default.
    pub time_position: Option<usize>,
    /// Rows the index expects to hold before it is persisted: columns reserve room for them
    /// up front, so growing never copies (untouched room costs address space, not memory).
    pub row_capacity: usize,
}

impl IndexSpec {
    pub fn from_data_schema(ds: &DataSchema) -> Self {
        let dims = &ds.dimensions_spec;
        let mut exclusions: HashSet<String> = dims.dimension_exclusions.iter().cloned().collect();
        exclusions.insert(ds.timestamp_spec.column.clone());
        exclusions.insert(TIME_COLUMN.to_string());
        for m in &ds.metrics_spec {
            exclusions.insert(m.name().to_string());
            exclusions.extend(m.input_fields());
        }
        let time_position = if dims.force_segment_sort_by_time {
            Some(0)
        } else {
            dims.dimensions.iter().position(|d| d.name == TIME_COLUMN)
        };
        IndexSpec {
            dimensions: dims.explicit_dimensions().cloned().collect(),
            discover: dims.is_schemaless(),
            exclusions,
            metrics: ds.metrics_spec.clone(),
            query_granularity: ds.granularity_spec.query_granularity,
            rollup: ds.granularity_spec.rollup,
            time_position,
            row_capacity: 0,
        }
    }

    /// The same spec reserving room for `rows` rows per index (at most [`MAX_ROW_CAPACITY`]).
    pub fn with_row_capacity(mut self, rows: usize) -> Self {
        self.row_capacity = rows.min(MAX_ROW_CAPACITY);
        self
    }
}

/// The most rows an index reserves room for.
pub const MAX_ROW_CAPACITY: usize = 4 << 20;
