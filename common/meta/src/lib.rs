//! Metadata: the state machine of segments and tasks (`MetaState::apply`), the versioned
//! timeline, the `MetadataStore` interface, and its embedded, durable implementation.

pub mod conformance;
pub mod error;
pub mod local;
pub mod state;
pub mod store;
pub mod timeline;

pub use error::MetaError;
pub use local::LocalMetadataStore;
pub use state::{ColumnInfo, Command, MetaState, Outcome, SegmentRecord, TaskRecord, TaskState};
pub use store::MetadataStore;
pub use timeline::{Visible, overshadowed, visible};
