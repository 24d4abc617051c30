//! Eddy's shared vocabulary: ids, instants and intervals, periods and granularities, the Druid
//! JSON specs that queries and ingestion share, and the error codes every role maps to HTTP.
//!
//! Everything here is pure and synchronous; no I/O.

pub mod error;
pub mod granularity;
pub mod ids;
pub mod interval;
pub mod period;
pub mod serde_util;
pub mod spec;
pub mod time;

pub use error::{ErrorCode, HasErrorCode};
pub use granularity::Granularity;
pub use ids::{DataSourceName, NodeId, SegmentId, TaskId};
pub use interval::Interval;
pub use period::Period;
pub use time::TimeZone;

/// The name of the time column in every datasource.
pub const TIME_COLUMN: &str = "__time";
