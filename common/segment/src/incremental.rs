//! The incremental index: rows appended in memory, rolled up at `queryGranularity` with the
//! `metricsSpec` aggregators, with dimensions declared or discovered from the rows. It serves
//! queries through [`SegmentReader`](crate::SegmentReader) while it grows, and `persist` turns
//! it into a sorted, immutable segment.
//!
//! Rollup finds an existing row with the same truncated time and dimension values through a hash
//! table of row numbers; the hash covers only non-null dimensions, so a dimension discovered
//! later (null for older rows) leaves older rows' hashes valid.

mod columns;
mod id_table;
mod merge;
mod persist;
mod prefetch;
mod spec;
mod values;
mod view;

use hashbrown::HashTable;
use xxhash_rust::xxh3::Xxh3Default;

use eddy_types::granularity::Bucketer;
use eddy_types::spec::AggregatorSpec;
use eddy_types::spec::ingest::{DimensionSchema, DimensionType};
use eddy_types::{SegmentId, TIME_COLUMN};

use crate::codec::numeric::NumKind;
use crate::hll::Hll;
use crate::input::{InputRow, InputValue};
use crate::schema::{ColumnRole, ColumnSchema, ColumnType, SegmentSchema};
use crate::scratch::recycle;

pub(crate) use columns::{MemDim, MemMetric, MetricOp};
use columns::{MemNumeric, MemSketches, MemStringDim};
use merge::Combined;

pub use persist::persist;
pub use spec::IndexSpec;

use values::{add_to_sketch, apply_metric, first_value, intern_values};

/// One dimension value of the row being added.
#[derive(Clone, Copy)]
enum DimKey {
    /// Range in the id scratch buffer.
    Ids(usize, usize),
    Long(Option<i64>),
    Double(Option<f64>),
}

/// What adding a row did.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct AddOutcome {
    /// The row was folded into an existing one.
    pub rolled_up: bool,
    /// Values that could not be read (the row is kept, with nulls in their place).
    pub errors: Vec<String>,
}

pub struct IncrementalIndex {
    id: SegmentId,
    spec: IndexSpec,
    schema: SegmentSchema,
    bucketer: Bucketer,
    time: MemNumeric,
    dims: Vec<MemDim>,
    metrics: Vec<MemMetric>,
    table: HashTable<u32>,
    row_hashes: Vec<u64>,
    time_sorted: bool,
    bytes: usize,
    id_scratch: Vec<u32>,
    key_scratch: Vec<DimKey>,
    names_scratch: Vec<String>,
    str_scratch: Vec<String>,
    /// Per dimension, the hash of the row's value where its lookup is prefetched.
    hash_scratch: Vec<Option<u64>>,
    /// The row's dimension values while it is added (empty between rows, kept for its buffer).
    value_scratch: Vec<InputValue<'static>>,
}

impl IncrementalIndex {
    pub fn new(id: SegmentId, spec: IndexSpec) -> Self {
        let mut index = IncrementalIndex {
            id,
            bucketer: spec.query_granularity.bucketer(),
            schema: SegmentSchema {
                columns: Vec::new(),
                aggregators: spec.metrics.clone(),
                query_granularity: spec.query_granularity,
                rollup: spec.rollup,
                sort_order: Vec::new(),
            },
            spec,
            time: MemNumeric::new(NumKind::Long),
            dims: Vec::new(),
            metrics: Vec::new(),
            table: HashTable::new(),
            row_hashes: Vec::new(),
            time_sorted: true,
            bytes: 0,
            id_scratch: Vec::new(),
            key_scratch: Vec::new(),
            names_scratch: Vec::new(),
            str_scratch: Vec::new(),
            hash_scratch: Vec::new(),
            value_scratch: Vec::new(),
        };
        // Columns reserve room for the expected rows; the rollup table does not: when rows
        // roll up well, a table sized for every input row would spread a few entries over a
        // large area and miss the cache on every probe.
        index.time.reserve(index.spec.row_capacity);
        for d in index.spec.dimensions.clone() {
            index.add_dimension(&d);
        }
        for m in index.spec.metrics.clone() {
            index.add_metric(&m);
        }
        index.refresh_sort_order();
        index
    }

    pub fn num_rows(&self) -> usize {
        self.time.len()
    }

    pub fn is_empty(&self) -> bool {
        self.num_rows() == 0
    }

    /// Estimated heap bytes held (for `maxBytesInMemory`).
    pub fn bytes_in_memory(&self) -> usize {
        self.bytes
    }

    pub fn spec(&self) -> &IndexSpec {
        &self.spec
    }

    fn add_dimension(&mut self, d: &DimensionSchema) {
        let (dim, kind) = match d.kind {
            DimensionType::Long => (
                MemDim::Numeric(MemNumeric::new(NumKind::Long)),
                ColumnType::Long,
            ),
            DimensionType::Float => (
                MemDim::Numeric(MemNumeric::new(NumKind::Float)),
                ColumnType::Float,
            ),
            DimensionType::Double => (
                MemDim::Numeric(MemNumeric::new(NumKind::Double)),
                ColumnType::Double,
            ),
            _ => (
                MemDim::String(MemStringDim::new(d.multi_value_handling)),
                ColumnType::String,
            ),
        };
        let rows = self.num_rows();
        let room = self.spec.row_capacity.max(rows);
        let mut dim = dim;
        match &mut dim {
            MemDim::String(s) => {
                s.reserve(room);
                s.backfill_nulls(rows)
            }
            MemDim::Numeric(n) => {
                n.reserve(room);
                n.backfill_nulls(rows)
            }
        }
        let position = self.dims.len();
        self.dims.push(dim);
        self.schema.columns.insert(
            position,
            ColumnSchema {
                name: d.name.clone(),
                kind,
                role: ColumnRole::Dimension,
                multi_value: false,
                has_bitmap: d.has_bitmap_index(),
            },
        );
        self.refresh_sort_order();
    }

    fn add_metric(&mut self, m: &AggregatorSpec) {
        let rows = self.spec.row_capacity;
        let numeric = |op, field: &Option<String>, kind| MemMetric::Numeric {
            op,
            field: field.clone(),
            col: {
                let mut col = MemNumeric::new(kind);
                col.reserve(rows);
                col
            },
        };
        let (metric, kind) = match m {
            AggregatorSpec::Count { .. } => (
                numeric(MetricOp::Count, &None, NumKind::Long),
                ColumnType::Long,
            ),
            AggregatorSpec::LongSum(a) => (
                numeric(MetricOp::Sum, &a.field_name, NumKind::Long),
                ColumnType::Long,
            ),
            AggregatorSpec::LongMin(a) => (
                numeric(MetricOp::Min, &a.field_name, NumKind::Long),
                ColumnType::Long,
            ),
            AggregatorSpec::LongMax(a) => (
                numeric(MetricOp::Max, &a.field_name, NumKind::Long),
                ColumnType::Long,
            ),
            AggregatorSpec::DoubleSum(a) => (
                numeric(MetricOp::Sum, &a.field_name, NumKind::Double),
                ColumnType::Double,
            ),
            AggregatorSpec::DoubleMin(a) => (
                numeric(MetricOp::Min, &a.field_name, NumKind::Double),
                ColumnType::Double,
            ),
            AggregatorSpec::DoubleMax(a) => (
                numeric(MetricOp::Max, &a.field_name, NumKind::Double),
                ColumnType::Double,
            ),
            AggregatorSpec::FloatSum(a) => (
                numeric(MetricOp::Sum, &a.field_name, NumKind::Float),
                ColumnType::Float,
            ),
            AggregatorSpec::FloatMin(a) => (
                numeric(MetricOp::Min, &a.field_name, NumKind::Float),
                ColumnType::Float,
            ),
            AggregatorSpec::FloatMax(a) => (
                numeric(MetricOp::Max, &a.field_name, NumKind::Float),
                ColumnType::Float,
            ),
            AggregatorSpec::HyperUnique(a) => (
                MemMetric::Sketch {
                    field: a.field_name.clone(),
                    col: MemSketches {
                        sketches: Vec::new(),
                    },
                },
                ColumnType::HyperUnique,
            ),
            // DataSchema::validate refuses the rest at ingestion.
            other => {
                tracing::warn!(
                    aggregator = other.type_name(),
                    "aggregator not supported at ingestion; counting rows instead"
                );
                (
                    numeric(MetricOp::Count, &None, NumKind::Long),
                    ColumnType::Long,
                )
            }
        };
        self.metrics.push(metric);
        self.schema.columns.push(ColumnSchema {
            name: m.name().to_string(),
            kind,
            role: ColumnRole::Metric,
            multi_value: false,
            has_bitmap: false,
        });
    }

    fn refresh_sort_order(&mut self) {
        let mut order: Vec<String> = self.schema.dimensions().map(|c| c.name.clone()).collect();
        let pos = self
            .spec
            .time_position
            .unwrap_or(order.len())
            .min(order.len());
        order.insert(pos, TIME_COLUMN.to_string());
        self.schema.sort_order = order;
    }

    fn discover(&mut self, row: &dyn InputRow) {
        self.names_scratch.clear();
        row.field_names(&mut self.names_scratch);
        let names = std::mem::take(&mut self.names_scratch);
        for name in &names {
            if self.spec.exclusions.contains(name) || self.schema.column(name).is_some() {
                continue;
            }
            self.add_dimension(&DimensionSchema::string(name));
        }
        self.names_scratch = names;
    }

    /// Adds a row with event time `timestamp` (ms); the index truncates it to the query
    /// granularity.
    pub fn add(&mut self, timestamp: i64, row: &dyn InputRow) -> AddOutcome {
        self.add_row(timestamp, row, None)
    }

    /// Adds rows of one batch (each with its event time in ms), as [`IncrementalIndex::add`]
    /// would one by one, but reads all their values first and starts all their dictionary
    /// probes, so that the cache misses of one row's high-cardinality values are waited for
    /// while the rows before it are added instead of each in turn. Batches of about 16 rows
    /// leave time enough for the probes to arrive without evicting each other.
    pub fn add_batch(&mut self, rows: &[(i64, &dyn InputRow)]) -> Vec<AddOutcome> {
        if self.spec.discover || rows.len() < 2 {
            // A discovered dimension changes the columns read from the rows after it.
            return rows.iter().map(|(t, row)| self.add(*t, *row)).collect();
        }
        let num_dims = self.dims.len();
        let mut values = recycle(std::mem::take(&mut self.value_scratch));
        for (_, row) in rows {
            values.extend(
                self.schema.columns[..num_dims]
                    .iter()
                    .map(|c| row.get(&c.name)),
            );
        }
        self.prefetch_lookups(&values);
        (0..num_dims).for_each(|d| self.prefetch_value_at(d));
        let outcomes: Vec<AddOutcome> = rows
            .iter()
            .zip(
                values
                    .chunks(num_dims.max(1))
                    .chain(std::iter::repeat(&[][..])),
            )
            .enumerate()
            .map(|(r, ((time, row), row_values))| {
                self.add_values(*time, *row, row_values, r * num_dims, true, None)
            })
            .collect();
        self.value_scratch = recycle(values);
        outcomes
    }

    /// Adds a row; `combined` holds already aggregated metric values (one per metric, from
    /// an earlier persist of this spec) to fold in instead of aggregating `row`'s fields.
    fn add_row(
        &mut self,
        timestamp: i64,
        row: &dyn InputRow,
        combined: Option<&[Combined<'_>]>,
    ) -> AddOutcome {
        if self.spec.discover {
            self.discover(row);
        }
        let num_dims = self.dims.len();
        // Each dimension's value is read from the row once (field lookups by name are not free).
        let mut values = recycle(std::mem::take(&mut self.value_scratch));
        values.extend(
            self.schema.columns[..num_dims]
                .iter()
                .map(|c| row.get(&c.name)),
        );
        self.prefetch_lookups(&values);
        let outcome = self.add_values(timestamp, row, &values, 0, false, combined);
        self.value_scratch = recycle(values);
        outcome
    }

    /// Adds a row whose dimension values (in dimension order) are `values`, their prefetch
    /// hashes at `first_hash` in the hash scratch. In a batch the next row's stored values are
    /// fetched while this one is added; alone, the next dimension's.
    fn add_values(
        &mut self,
        timestamp: i64,
        row: &dyn InputRow,
        values: &[InputValue<'_>],
        first_hash: usize,
        in_batch: bool,
        combined: Option<&[Combined<'_>]>,
    ) -> AddOutcome {
        let mut outcome = AddOutcome::default();
        let time = self.bucketer.bucket_start(timestamp);
        let num_dims = self.dims.len();
        self.id_scratch.clear();
        self.key_scratch.clear();
        for (d, value) in values.iter().enumerate() {
            if in_batch {
                self.prefetch_value_at(first_hash + num_dims + d);
            } else {
                self.prefetch_next_value(d);
            }
            let name = &self.schema.columns[d].name;
            let key = match &mut self.dims[d] {
                MemDim::String(dim) => {
                    let start = self.id_scratch.len();
                    match (value, self.hash_scratch[first_hash + d]) {
                        // Hashed already when its lookup was prefetched.
                        (InputValue::Str(s), Some(hash)) => {
                            self.id_scratch.push(dim.intern_hashed(s, hash));
                        }
                        _ => intern_values(dim, value, &mut self.id_scratch, &mut self.str_scratch),
                    }
                    DimKey::Ids(start, self.id_scratch.len())
                }
                MemDim::Numeric(n) if n.kind == NumKind::Long => match value.as_long() {
                    Ok(v) => DimKey::Long(v),
                    Err(e) => {
                        outcome.errors.push(format!("dimension {name:?}: {e}"));
                        DimKey::Long(None)
                    }
                },
                MemDim::Numeric(_) => match value.as_double() {
                    Ok(v) => DimKey::Double(v),
                    Err(e) => {
                        outcome.errors.push(format!("dimension {name:?}: {e}"));
                        DimKey::Double(None)
                    }
                },
            };
            self.key_scratch.push(key);
        }
        let existing = if self.spec.rollup {
            self.find_row(time)
        } else {
            None
        };
        let (row_index, hash) = match existing {
            Some(r) => {
                outcome.rolled_up = true;
                (r as usize, 0)
            }
            None => (
                self.num_rows(),
                if self.spec.rollup {
                    self.key_hash(time)
                } else {
                    0
                },
            ),
        };
        if existing.is_none() {
            self.append_row(time);
        }
        match combined {
            None => self.update_metrics(row_index, row, existing.is_none(), &mut outcome),
            Some(values) => self.combine_metrics(row_index, values, existing.is_none()),
        }
        if existing.is_none() && self.spec.rollup {
            self.row_hashes.push(hash);
            let hashes = &self.row_hashes;
            self.table
                .insert_unique(hash, row_index as u32, |r| hashes[*r as usize]);
        }
        outcome
    }

    fn key_hash(&self, time: i64) -> u64 {
        let mut h = Xxh3Default::new();
        h.update(&time.to_le_bytes());
        for (d, key) in self.key_scratch.iter().enumerate() {
            match *key {
                DimKey::Ids(s, e) => {
                    let ids = &self.id_scratch[s..e];
                    if ids != [0] {
                        h.update(&(d as u32).to_le_bytes());
                        ids.iter().for_each(|id| h.update(&id.to_le_bytes()));
                    }
                }
                DimKey::Long(Some(v)) => {
                    h.update(&(d as u32).to_le_bytes());
                    h.update(&v.to_le_bytes());
                }
                DimKey::Double(Some(v)) => {
                    h.update(&(d as u32).to_le_bytes());
                    h.update(&v.to_bits().to_le_bytes());
                }
                DimKey::Long(None) | DimKey::Double(None) => {}
            }
        }
        h.digest()
    }

    fn find_row(&self, time: i64) -> Option<u32> {
        let hash = self.key_hash(time);
        self.table
            .find(hash, |&r| self.row_equals(r as usize, time))
            .copied()
    }

    fn row_equals(&self, row: usize, time: i64) -> bool {
        if self.time.longs[row] != time {
            return false;
        }
        self.key_scratch
            .iter()
            .zip(&self.dims)
            .all(|(key, dim)| match (*key, dim) {
                (DimKey::Ids(s, e), MemDim::String(d)) => d.row_ids(row) == &self.id_scratch[s..e],
                (DimKey::Long(v), MemDim::Numeric(n)) => {
                    if n.is_null(row) {
                        v.is_none()
                    } else {
                        v == Some(n.longs[row])
                    }
                }
                (DimKey::Double(v), MemDim::Numeric(n)) => {
                    if n.is_null(row) {
                        v.is_none()
                    } else {
                        v.map(f64::to_bits) == Some(n.doubles[row].to_bits())
                    }
                }
                _ => false,
            })
    }

    fn append_row(&mut self, time: i64) {
        if let Some(last) = self.time.longs.last()
            && *last > time
        {
            self.time_sorted = false;
        }
        self.time.push_long(Some(time));
        self.bytes += 8;
        for (key, dim) in self.key_scratch.iter().zip(self.dims.iter_mut()) {
            match (*key, dim) {
                (DimKey::Ids(s, e), MemDim::String(d)) => {
                    let before = d.dict_bytes;
                    d.push_row(&self.id_scratch[s..e]);
                    self.bytes += 4 * (e - s) + 2 + (d.dict_bytes - before);
                }
                (DimKey::Long(v), MemDim::Numeric(n)) => {
                    n.push_long(v);
                    self.bytes += 8;
                }
                (DimKey::Double(v), MemDim::Numeric(n)) => {
                    n.push_double(v);
                    self.bytes += 8;
                }
                _ => {}
            }
        }
        if self.spec.rollup {
            self.bytes += 16;
        }
    }

    fn update_metrics(
        &mut self,
        row: usize,
        input: &dyn InputRow,
        new_row: bool,
        outcome: &mut AddOutcome,
    ) {
        let first_metric_column = self.dims.len();
        for (m, metric) in self.metrics.iter_mut().enumerate() {
            let name = &self.schema.columns[first_metric_column + m].name;
            match metric {
                MemMetric::Numeric { op, field, col } => {
                    let op = *op;
                    let value = match (op, field.as_deref()) {
                        (MetricOp::Count, _) => InputValue::Long(1),
                        (_, Some(f)) => input.get(f),
                        (_, None) => InputValue::Null,
                    };
                    let applied = if new_row {
                        self.bytes += 8;
                        first_value(col, &value)
                    } else {
                        apply_metric(op, col, row, &value)
                    };
                    if let Err(e) = applied {
                        outcome.errors.push(format!("metric {name:?}: {e}"));
                    }
                }
                MemMetric::Sketch { field, col } => {
                    if new_row {
                        col.sketches.push(Hll::new());
                    }
                    let before = col.sketches[row].heap_bytes();
                    add_to_sketch(&mut col.sketches[row], &input.get(field));
                    self.bytes += col.sketches[row].heap_bytes().saturating_sub(before)
                        + if new_row { 32 } else { 0 };
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
