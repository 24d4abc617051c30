//! The metadata store interface. Writes go through `apply` (one command, atomic); reads take a
//! snapshot of the whole state; `watch` notifies when the state changed.

use std::sync::Arc;

use async_trait::async_trait;
use tokio::sync::watch;

use crate::error::MetaError;
use crate::state::{Command, MetaState, Outcome};

#[async_trait]
pub trait MetadataStore: Send + Sync {
    /// Applies one command durably; on error nothing changed.
    async fn apply(&self, cmd: Command) -> Result<Outcome, MetaError>;
    /// The current state (immutable snapshot).
    fn state(&self) -> Arc<MetaState>;
    /// Receives the count of applied commands whenever it grows.
    fn watch(&self) -> watch::Receiver<u64>;
}
