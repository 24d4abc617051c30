//! timeBoundary, segmentMetadata and dataSourceMetadata on one segment.

use serde_json::{Map, Value, json};

use eddy_segment::{BLOCK_ROWS, SegmentReader};
use eddy_types::TIME_COLUMN;

use super::select::{ExecContext, Selection};
use crate::error::QueryError;
use crate::model::{SegmentMetadataQuery, ToInclude};
use crate::partial::SegmentAnalysis;

/// Smallest and largest `__time` among the selected rows.
pub fn time_boundary(
    segment: &dyn SegmentReader,
    selection: &Selection,
    ctx: &ExecContext<'_>,
) -> Result<(Option<i64>, Option<i64>), QueryError> {
    if selection.rows.is_none() {
        return Ok(segment
            .time_range()
            .map_or((None, None), |(lo, hi)| (Some(lo), Some(hi))));
    }
    let mut lo: Option<i64> = None;
    let mut hi: Option<i64> = None;
    let mut times = vec![0i64; BLOCK_ROWS];
    selection.for_each_block(ctx, &mut |b, len, rows| {
        segment.time().read_i64(b, &mut times)?;
        let mut visit = |t: i64| {
            lo = Some(lo.map_or(t, |x| x.min(t)));
            hi = Some(hi.map_or(t, |x| x.max(t)));
        };
        match rows {
            None => times[..len].iter().for_each(|t| visit(*t)),
            Some(r) => r.iter().for_each(|i| visit(times[*i as usize])),
        }
        Ok(())
    })?;
    Ok((lo, hi))
}

fn wants(q: &SegmentMetadataQuery, analysis: &str) -> bool {
    match &q.analysis_types {
        None => matches!(analysis, "cardinality" | "interval" | "minmax"),
        Some(list) => list.iter().any(|a| a.eq_ignore_ascii_case(analysis)),
    }
}

pub fn segment_metadata(q: &SegmentMetadataQuery, segment: &dyn SegmentReader) -> SegmentAnalysis {
    let include = |name: &str| match &q.to_include {
        None | Some(ToInclude::All) => true,
        Some(ToInclude::None) => false,
        Some(ToInclude::List { columns }) => columns.iter().any(|c| c == name),
    };
    let (size, cardinality, minmax) = (
        wants(q, "size"),
        wants(q, "cardinality"),
        wants(q, "minmax"),
    );
    let mut columns = Map::new();
    if include(TIME_COLUMN) {
        columns.insert(
            TIME_COLUMN.into(),
            json!({"typeSignature": "LONG", "type": "LONG", "hasMultipleValues": false, "hasNulls": false,
                   "size": if size { segment.num_rows() as u64 * 8 } else { 0 },
                   "cardinality": null, "minValue": null, "maxValue": null, "errorMessage": null}),
        );
    }
    for c in &segment.schema().columns {
        if !include(&c.name) {
            continue;
        }
        let stats = segment.column_stats(&c.name).unwrap_or_default();
        let is_string = c.kind == eddy_segment::ColumnType::String;
        columns.insert(
            c.name.clone(),
            json!({
                "typeSignature": c.kind.type_signature(),
                "type": c.kind.druid_type(),
                "hasMultipleValues": c.multi_value,
                "hasNulls": stats.has_nulls,
                "size": if size { stats.size } else { 0 },
                "cardinality": if cardinality && is_string { stats.cardinality.map(Value::from).unwrap_or(Value::Null) } else { Value::Null },
                "minValue": if minmax && is_string { stats.min_value.map(Value::String).unwrap_or(Value::Null) } else { Value::Null },
                "maxValue": if minmax && is_string { stats.max_value.map(Value::String).unwrap_or(Value::Null) } else { Value::Null },
                "errorMessage": null,
            }),
        );
    }
    let schema = segment.schema();
    SegmentAnalysis {
        id: segment.segment_id().to_string(),
        intervals: if wants(q, "interval") {
            vec![segment.segment_id().interval]
        } else {
            Vec::new()
        },
        columns,
        size: if size { segment.size_bytes() } else { 0 },
        num_rows: segment.num_rows() as u64,
        aggregators: if wants(q, "aggregators") {
            schema.aggregators.clone()
        } else {
            Vec::new()
        },
        query_granularity: if wants(q, "queryGranularity") {
            schema.query_granularity.to_json()
        } else {
            Value::Null
        },
        rollup: wants(q, "rollup").then_some(schema.rollup),
    }
}
