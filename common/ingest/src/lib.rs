//! Ingestion shared by batch tasks and stream consumers: input sources, input formats, event
//! time, flattening, transforms and filters, and row statistics. Output goes to an
//! `IncrementalIndex` (see `eddy-segment`).

pub mod error;
pub mod flatten;
pub mod format;
pub mod message;
pub mod pipeline;
pub mod source;
pub mod stats;
pub mod timestamp;

pub use error::IngestError;
pub use pipeline::{Processed, RowPipeline};
pub use stats::{ParseErrors, RowStats};
