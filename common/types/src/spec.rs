//! Druid JSON specs shared by queries and ingestion: filters, aggregators, dimension specs, and
//! the ingestion (`dataSchema`, `ioConfig`, `tuningConfig`) specs.

pub mod aggregator;
pub mod dimension;
pub mod filter;
pub mod ingest;
pub mod input;
pub mod supervisor;

pub use aggregator::AggregatorSpec;
pub use dimension::DimensionSpec;
pub use filter::{FilterSpec, SearchQuerySpec, StringComparator};
