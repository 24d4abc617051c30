//! Stream ingestion: Kafka-style supervisors, their realtime task groups, and the node that
//! serves what the tasks are building.

mod allocate;
mod api;
mod appender;
mod fault;
pub mod node;
mod supervisor;
mod task;

use std::path::PathBuf;
use std::sync::Arc;

use eddy_meta::MetadataStore;
use eddy_rpc::Availability;
use eddy_runtime::{SharedClock, Shutdown};
use eddy_storage::DeepStorage;
use eddy_stream::{EmbeddedLog, StreamSource};
use eddy_types::spec::supervisor::SupervisorSpec;

pub use allocate::Allocator;
pub use api::{StreamApi, stream_router, supervisor_router};
pub use node::RealtimeNode;
pub use supervisor::{SupervisorError, Supervisors};

/// What every realtime task of this node shares.
pub struct StreamContext {
    pub meta: Arc<dyn MetadataStore>,
    pub deep: DeepStorage,
    pub availability: Arc<dyn Availability>,
    pub node: Arc<RealtimeNode>,
    pub allocator: Arc<Allocator>,
    pub embedded: EmbeddedLog,
    pub clock: SharedClock,
    /// Where tasks persist their parts (cleared at start: unpublished parts are read again).
    pub work_dir: PathBuf,
    /// `maxBytesInMemory` when a spec leaves it 0.
    pub max_bytes_in_memory: usize,
    pub shutdown: Shutdown,
}

impl StreamContext {
    /// The stream a spec reads: the embedded log, unless it names Kafka brokers.
    pub fn source(&self, spec: &SupervisorSpec) -> Result<Arc<dyn StreamSource>, String> {
        match &spec.settings.bootstrap_servers {
            None => Ok(Arc::new(self.embedded.clone())),
            Some(servers) => Err(kafka_unavailable(servers)),
        }
    }
}

pub(crate) fn kafka_unavailable(servers: &str) -> String {
    format!(
        "spec.ioConfig.consumerProperties.bootstrap.servers: this build reads only the embedded stream; Kafka at {servers:?} is not supported yet (leave bootstrap.servers out or set it to \"embedded\")"
    )
}
