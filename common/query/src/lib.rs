//! Native queries: the Druid JSON model, per-segment execution, merging of partial results and
//! finalization into Druid's response shapes.
//!
//! `execute(query, segment) -> Partial`, `merge(partials) -> Partial`,
//! `finalize(partial) -> JSON`: pure and CPU-bound; callers choose the thread pool.

pub mod compare;
pub mod engine;
pub mod error;
pub mod filter;
pub mod finalize;
pub mod merge;
pub mod model;
pub mod partial;
pub mod row_filter;

pub use engine::{Context, execute};
pub use error::QueryError;
pub use finalize::finalize;
pub use merge::{Merging, merge, merge_segments};
pub use model::Query;
pub use partial::Partial;
