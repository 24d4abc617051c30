//! Metadata: the state machine of segments, tasks, supervisors and stream offsets (`MetaState::apply`), the versioned
//! timeline, the `MetadataStore` interface, and its embedded, durable implementation.

pub mod conformance;
pub mod error;
pub mod local;
pub mod state;
pub mod store;
pub mod supervisor;
pub mod timeline;

pub use error::MetaError;
pub use local::LocalMetadataStore;
pub use state::{ColumnInfo, Command, MetaState, Outcome, SegmentRecord, TaskRecord, TaskState};
pub use store::MetadataStore;
pub use supervisor::{SpecVersion, StreamOffsets, SupervisorRecord, SupervisorState};
pub use timeline::{Visible, overshadowed, visible};
