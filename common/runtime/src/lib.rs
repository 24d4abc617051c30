//! Process runtime pieces every role uses: the CPU pool, shutdown, the clock, logging and
//! metrics.

pub mod clock;
pub mod http;
pub mod pool;
pub mod shutdown;
pub mod telemetry;

pub use clock::{Clock, ManualClock, SharedClock, SystemClock};
pub use pool::CpuPool;
pub use shutdown::Shutdown;
