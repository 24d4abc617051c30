//! Deep storage (object stores holding published segments) and the local segment cache.

pub mod cache;
pub mod deep;
pub mod error;

pub use cache::SegmentCache;
pub use deep::{DeepStorage, Uploaded};
pub use error::StorageError;
