//! Stream ingestion: Kafka-style supervisors, their realtime task groups, and the node that
//! serves what the tasks are building.

mod allocate;
mod api;
mod appender;
mod fault;
mod group;
mod handoff;
pub mod node;
mod record;
mod replica;
mod supervise;
mod supervisor;
mod task;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use eddy_meta::MetadataStore;
use eddy_rpc::Availability;
use eddy_runtime::{SharedClock, Shutdown};
use eddy_storage::DeepStorage;
use eddy_stream::{EmbeddedLog, StreamSource};
use eddy_types::spec::supervisor::SupervisorSpec;

pub use allocate::Allocator;
pub use api::{StreamApi, stream_router, supervisor_router};
pub use node::RealtimeNode;
pub use record::{KIND as TASK_KIND, LiveTasks};
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
    /// Kafka clients by their properties.
    pub kafka: Mutex<HashMap<String, Arc<dyn StreamSource>>>,
    /// The realtime tasks running here, for the task API.
    pub tasks: Arc<LiveTasks>,
}

impl StreamContext {
    /// The stream a spec reads: the embedded log, or Kafka when it names brokers (one client
    /// per distinct set of consumer properties, kept).
    pub fn source(&self, spec: &SupervisorSpec) -> Result<Arc<dyn StreamSource>, String> {
        if spec.settings.bootstrap_servers.is_none() {
            return Ok(Arc::new(self.embedded.clone()));
        }
        let props = kafka_properties(spec);
        let key = format!("{props:?}");
        let mut clients = self.kafka.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(k) = clients.get(&key) {
            return Ok(k.clone());
        }
        let client: Arc<dyn StreamSource> = Arc::new(
            eddy_stream::KafkaStream::new(props).map_err(|e| format!("spec.ioConfig.{e}"))?,
        );
        clients.insert(key, client.clone());
        Ok(client)
    }
}

/// `consumerProperties` as librdkafka settings (values as text).
fn kafka_properties(spec: &SupervisorSpec) -> BTreeMap<String, String> {
    spec.io_config
        .consumer_properties
        .iter()
        .filter(|(_, v)| !v.is_null())
        .map(|(k, v)| {
            let text = match v {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            (k.clone(), text)
        })
        .collect()
}
