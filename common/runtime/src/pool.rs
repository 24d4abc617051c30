//! The CPU pool: a rayon pool sized to the machine on which segment scans, merges and segment
//! builds run, so async tasks never block on CPU work.

use std::sync::Arc;

use tokio::sync::oneshot;

#[derive(Clone)]
pub struct CpuPool {
    pool: Arc<rayon::ThreadPool>,
}

impl CpuPool {
    /// `threads = 0` means one per available core.
    pub fn new(threads: usize, name: &str) -> Result<Self, String> {
        let n = if threads == 0 {
            std::thread::available_parallelism().map_or(2, |n| n.get())
        } else {
            threads
        };
        let prefix = name.to_string();
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .thread_name(move |i| format!("{prefix}-{i}"))
            .build()
            .map_err(|e| format!("cannot start the CPU pool: {e}"))?;
        Ok(CpuPool {
            pool: Arc::new(pool),
        })
    }

    pub fn threads(&self) -> usize {
        self.pool.current_num_threads()
    }

    /// Runs `f` on the pool and waits for it without blocking the async runtime.
    pub async fn run<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> T {
        let (tx, rx) = oneshot::channel();
        self.pool.spawn(move || {
            let _ = tx.send(f());
        });
        match rx.await {
            Ok(v) => v,
            // The closure panicked; surface it on the caller's side.
            Err(_) => panic!("a CPU pool task panicked"),
        }
    }

    /// Runs `f` inside the pool so rayon's parallel iterators use its threads.
    pub fn install<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        self.pool.install(f)
    }
}
