//! Segments: Eddy's immutable, columnar, bitmap-indexed unit of data, and the incremental index
//! that builds them in memory while serving queries.
//!
//! - [`format`], [`writer`], [`file`]: the file layout, writing it, and reading it memory-mapped
//!   with every part checksummed.
//! - [`codec`]: column encodings (numeric blocks, zstd-paged dictionaries, packed ids, roaring
//!   bitmaps, sketches).
//! - [`incremental`]: the appendable in-memory index with rollup, and persisting it.
//! - [`reader`]: the `SegmentReader` interface both implement, so one query engine serves both.
//! - [`hll`]: the HyperLogLog sketch behind unique counts.

pub mod bitpack;
pub mod codec;
pub mod dump;
pub mod error;
pub mod file;
pub mod format;
pub mod hint;
pub mod hll;
pub mod incremental;
pub mod input;
pub mod reader;
pub mod schema;
mod scratch;
pub mod writer;

pub use error::SegmentError;
pub use file::SegmentFile;
pub use incremental::{IncrementalIndex, IndexSpec};
pub use reader::{ColumnRef, LongIndex, NumericColumn, SegmentReader, SketchColumn, StringColumn};
pub use schema::{ColumnRole, ColumnSchema, ColumnStats, ColumnType, SegmentSchema};
pub use scratch::recycle;

/// Rows per block in every column of every segment.
pub const BLOCK_ROWS: usize = 4096;
