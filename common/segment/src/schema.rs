//! What a segment holds: its columns with types and roles, the aggregators that built its
//! metrics, its rollup and query granularity, and its row order.

use serde::{Deserialize, Serialize};

use eddy_types::Granularity;
use eddy_types::spec::AggregatorSpec;

use crate::codec::numeric::NumKind;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ColumnType {
    String,
    Long,
    Float,
    Double,
    HyperUnique,
}

impl ColumnType {
    /// Druid's `type` in segmentMetadata.
    pub fn druid_type(self) -> &'static str {
        match self {
            ColumnType::String => "STRING",
            ColumnType::Long => "LONG",
            ColumnType::Float => "FLOAT",
            ColumnType::Double => "DOUBLE",
            ColumnType::HyperUnique => "hyperUnique",
        }
    }

    /// Druid's `typeSignature`.
    pub fn type_signature(self) -> &'static str {
        match self {
            ColumnType::HyperUnique => "COMPLEX<hyperUnique>",
            other => other.druid_type(),
        }
    }

    pub fn num_kind(self) -> Option<NumKind> {
        match self {
            ColumnType::Long => Some(NumKind::Long),
            ColumnType::Float => Some(NumKind::Float),
            ColumnType::Double => Some(NumKind::Double),
            _ => None,
        }
    }

    pub fn is_numeric(self) -> bool {
        self.num_kind().is_some()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ColumnRole {
    Dimension,
    Metric,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ColumnSchema {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: ColumnType,
    pub role: ColumnRole,
    #[serde(default)]
    pub multi_value: bool,
    #[serde(default)]
    pub has_bitmap: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SegmentSchema {
    pub columns: Vec<ColumnSchema>,
    #[serde(default)]
    pub aggregators: Vec<AggregatorSpec>,
    pub query_granularity: Granularity,
    pub rollup: bool,
    /// Row order: column names, `__time` included where it sorts.
    pub sort_order: Vec<String>,
}

impl SegmentSchema {
    pub fn column(&self, name: &str) -> Option<&ColumnSchema> {
        self.columns.iter().find(|c| c.name == name)
    }

    pub fn dimensions(&self) -> impl Iterator<Item = &ColumnSchema> {
        self.columns
            .iter()
            .filter(|c| c.role == ColumnRole::Dimension)
    }

    pub fn metrics(&self) -> impl Iterator<Item = &ColumnSchema> {
        self.columns.iter().filter(|c| c.role == ColumnRole::Metric)
    }
}

/// Per-column facts for segmentMetadata and planning.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ColumnStats {
    /// Distinct non-null values (strings and indexed longs).
    pub cardinality: Option<u64>,
    pub min_value: Option<String>,
    pub max_value: Option<String>,
    pub has_nulls: bool,
    /// Bytes the column takes on disk (or in memory for the incremental index).
    pub size: u64,
}
