//! Hands records to the stream and says when they are durable.
//!
//! Requests put their records on a bounded queue and wait for an acknowledgement. One writer
//! drains whatever is queued and hands it to the stream in one ordered call per topic
//! ([`StreamSink::produce_ordered`]), in arrival order, so a party's events keep their order.
//! It does not wait for those records to be durable before handing over the next batch: up to
//! [`MAX_IN_FLIGHT`] batches wait at once, so one fsync of the embedded log (or one round of
//! Kafka acknowledgements) covers everything written while the previous one ran. Each request
//! is answered when its batch is durable. A full queue is answered at once (overload); a write
//! that fails, or that takes longer than the timeout, is answered with an error: the client is
//! always told, and the tracker retries.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use eddy_stream::{ProduceRecord, StreamSink};
use futures::StreamExt;
use futures::stream::FuturesOrdered;
use tokio::sync::{mpsc, oneshot};

use crate::metrics;

/// Which of the collector's topics a record goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Topic {
    Events,
    BadRows,
}

/// Why records were not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SinkError {
    #[error("the collector is overloaded: {0} records are waiting for the sink")]
    Overloaded(usize),
    #[error("the sink did not acknowledge within {0} ms")]
    Timeout(u64),
    #[error("the sink failed: {0}")]
    Failed(String),
    #[error("the collector is shutting down")]
    Closed,
}

struct Job {
    topic: Topic,
    records: Vec<ProduceRecord>,
    ack: oneshot::Sender<Result<(), SinkError>>,
}

/// The sink's state, for `/ping` and `/metrics`.
#[derive(Default)]
pub struct Health {
    failing: AtomicBool,
    last_error: Mutex<Option<String>>,
}

impl Health {
    /// `None` while healthy, else the last error.
    pub fn problem(&self) -> Option<String> {
        if !self.failing.load(Ordering::Relaxed) {
            return None;
        }
        self.last_error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .or_else(|| Some("the sink is failing".into()))
    }

    fn record(&self, result: &Result<(), String>) {
        match result {
            Ok(()) => {
                self.failing.store(false, Ordering::Relaxed);
                metrics::SINK_HEALTHY.set(1);
            }
            Err(e) => {
                *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(e.clone());
                self.failing.store(true, Ordering::Relaxed);
                metrics::SINK_HEALTHY.set(0);
                metrics::SINK_FAILURES.inc();
            }
        }
    }
}

#[derive(Clone)]
pub struct Sink {
    queue: mpsc::Sender<Job>,
    capacity: usize,
    timeout: Duration,
    pub health: Arc<Health>,
}

/// The most requests one produce call carries.
const MAX_BATCH: usize = 4096;
/// Batches handed to the stream and waiting to be durable.
pub const MAX_IN_FLIGHT: usize = 8;

impl Sink {
    /// Starts the writer. `capacity` bounds queued requests; `timeout` bounds how long a
    /// request waits for its acknowledgement.
    pub fn start(
        stream: Arc<dyn StreamSink>,
        events_topic: String,
        bad_rows_topic: String,
        capacity: usize,
        timeout: Duration,
    ) -> Sink {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        let health = Arc::new(Health::default());
        metrics::SINK_HEALTHY.set(1);
        tokio::spawn(write_loop(
            rx,
            stream,
            [events_topic, bad_rows_topic],
            health.clone(),
        ));
        Sink {
            queue: tx,
            capacity: capacity.max(1),
            timeout,
            health,
        }
    }

    /// Sends `records` and waits until they are durable (or fail, or time out).
    pub async fn send(&self, topic: Topic, records: Vec<ProduceRecord>) -> Result<(), SinkError> {
        if records.is_empty() {
            return Ok(());
        }
        let (ack, done) = oneshot::channel();
        let job = Job {
            topic,
            records,
            ack,
        };
        match self.queue.try_send(job) {
            Ok(()) => metrics::QUEUED.inc(),
            Err(mpsc::error::TrySendError::Full(_)) => {
                return Err(SinkError::Overloaded(self.capacity));
            }
            Err(mpsc::error::TrySendError::Closed(_)) => return Err(SinkError::Closed),
        }
        match tokio::time::timeout(self.timeout, done).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(SinkError::Closed),
            Err(_) => {
                let e = SinkError::Timeout(self.timeout.as_millis() as u64);
                self.health.record(&Err(e.to_string()));
                Err(e)
            }
        }
    }
}

async fn write_loop(
    mut rx: mpsc::Receiver<Job>,
    stream: Arc<dyn StreamSink>,
    topics: [String; 2],
    health: Arc<Health>,
) {
    let mut in_flight = FuturesOrdered::new();
    let mut open = true;
    while open || !in_flight.is_empty() {
        let mut jobs: Vec<Job> = Vec::new();
        tokio::select! {
            // Answer finished batches first: that frees room and keeps latency low.
            biased;
            Some(()) = in_flight.next(), if !in_flight.is_empty() => continue,
            n = rx.recv_many(&mut jobs, MAX_BATCH), if open && in_flight.len() < MAX_IN_FLIGHT => {
                if n == 0 {
                    open = false;
                    continue;
                }
            }
        }
        metrics::QUEUED.sub(jobs.len() as i64);
        for topic in [Topic::Events, Topic::BadRows] {
            let (mine, rest): (Vec<Job>, Vec<Job>) =
                jobs.into_iter().partition(|j| j.topic == topic);
            jobs = rest;
            if mine.is_empty() {
                continue;
            }
            let name = topics[usize::from(topic == Topic::BadRows)].clone();
            in_flight.push_back(hand_over(stream.clone(), name, mine, health.clone()).await);
        }
    }
}

/// Hands one batch to the stream (in order) and returns what answers its requests once it
/// is durable.
async fn hand_over(
    stream: Arc<dyn StreamSink>,
    name: String,
    mut jobs: Vec<Job>,
    health: Arc<Health>,
) -> futures::future::BoxFuture<'static, ()> {
    let records: Vec<ProduceRecord> = jobs
        .iter_mut()
        .flat_map(|j| std::mem::take(&mut j.records))
        .collect();
    let started = Instant::now();
    let handed = stream.produce_ordered(&name, records).await;
    Box::pin(async move {
        let result = match handed {
            Ok(durable) => durable.await.map(|_| ()),
            Err(e) => Err(e),
        }
        .map_err(|e| format!("writing to topic {name}: {e}"));
        metrics::SINK_LATENCY.observe(started.elapsed().as_secs_f64());
        health.record(&result);
        if let Err(e) = &result {
            tracing::warn!(topic = %name, error = %e, "the sink refused records; their requests are answered with 503");
        }
        for job in jobs {
            let _ = job.ack.send(result.clone().map_err(SinkError::Failed));
        }
    })
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use async_trait::async_trait;
    use eddy_stream::{EmbeddedLog, StreamError, StreamSource};

    use super::*;

    fn record(v: &str) -> ProduceRecord {
        ProduceRecord {
            key: Some(b"party".to_vec()),
            value: v.as_bytes().to_vec(),
            timestamp: Some(1),
        }
    }

    #[tokio::test]
    async fn acknowledged_records_are_in_the_log_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let log = EmbeddedLog::open(dir.path().to_path_buf()).unwrap();
        log.create_topic("clicks", 2).await.unwrap();
        log.create_topic("bad", 1).await.unwrap();
        let sink = Sink::start(
            Arc::new(log.clone()),
            "clicks".into(),
            "bad".into(),
            1000,
            Duration::from_secs(5),
        );
        let sends: Vec<_> = (0..200)
            .map(|i| {
                let sink = sink.clone();
                tokio::spawn(async move {
                    sink.send(Topic::Events, vec![record(&format!("e{i:03}"))])
                        .await
                })
            })
            .collect();
        for s in sends {
            s.await.unwrap().unwrap();
        }
        sink.send(Topic::BadRows, vec![record("bad")])
            .await
            .unwrap();
        let offsets = log.offsets("clicks").await.unwrap();
        let total: u64 = offsets.values().map(|(a, b)| b - a).sum();
        assert_eq!(total, 200);
        let mut reader = log
            .reader("clicks", &offsets.keys().map(|p| (*p, 0)).collect())
            .await
            .unwrap();
        let got = reader.poll(1000, Duration::from_secs(1)).await.unwrap();
        let values: Vec<String> = got
            .iter()
            .map(|r| String::from_utf8(r.value.clone()).unwrap())
            .collect();
        let mut sorted = values.clone();
        sorted.sort();
        assert_eq!(values, sorted, "one key, one partition, arrival order");
        assert_eq!(log.offsets("bad").await.unwrap()[&0], (0, 1));
        assert_eq!(sink.health.problem(), None);
    }

    /// A sink that fails while `down` is set and counts its calls.
    struct Flaky {
        down: AtomicBool,
        calls: AtomicUsize,
        slow: Option<Duration>,
    }

    #[async_trait]
    impl StreamSink for Flaky {
        async fn create_topic(&self, _: &str, _: u32) -> Result<(), StreamError> {
            Ok(())
        }
        async fn produce(
            &self,
            _: &str,
            records: Vec<ProduceRecord>,
        ) -> Result<Vec<(u32, u64)>, StreamError> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            if let Some(d) = self.slow {
                tokio::time::sleep(d).await;
            }
            if self.down.load(Ordering::SeqCst) {
                return Err(StreamError::Unavailable("disk full".into()));
            }
            Ok(records
                .iter()
                .enumerate()
                .map(|(i, _)| (0, i as u64))
                .collect())
        }
    }

    #[tokio::test]
    async fn a_failing_sink_is_reported_and_recovers() {
        let flaky = Arc::new(Flaky {
            down: AtomicBool::new(true),
            calls: AtomicUsize::new(0),
            slow: None,
        });
        let sink = Sink::start(
            flaky.clone(),
            "e".into(),
            "b".into(),
            10,
            Duration::from_secs(5),
        );
        let err = sink
            .send(Topic::Events, vec![record("x")])
            .await
            .unwrap_err();
        assert_eq!(
            err,
            SinkError::Failed("writing to topic e: the stream is unavailable: disk full".into())
        );
        assert!(sink.health.problem().unwrap().contains("disk full"));
        flaky.down.store(false, Ordering::SeqCst);
        sink.send(Topic::Events, vec![record("x")]).await.unwrap();
        assert_eq!(sink.health.problem(), None);
    }

    #[tokio::test]
    async fn a_slow_sink_times_out_and_a_full_queue_is_refused() {
        let flaky = Arc::new(Flaky {
            down: AtomicBool::new(false),
            calls: AtomicUsize::new(0),
            slow: Some(Duration::from_millis(500)),
        });
        let sink = Sink::start(
            flaky.clone(),
            "e".into(),
            "b".into(),
            2,
            Duration::from_millis(50),
        );
        let err = sink
            .send(Topic::Events, vec![record("x")])
            .await
            .unwrap_err();
        assert_eq!(err, SinkError::Timeout(50));
        assert!(sink.health.problem().is_some());
        // The writer is busy with the first record: two more fill the queue, the next is refused.
        let waiting: Vec<_> = (0..2)
            .map(|_| {
                let s = sink.clone();
                tokio::spawn(async move { s.send(Topic::Events, vec![record("y")]).await })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(10)).await;
        let err = sink
            .send(Topic::Events, vec![record("z")])
            .await
            .unwrap_err();
        assert_eq!(err, SinkError::Overloaded(2));
        for w in waiting {
            let _ = w.await.unwrap();
        }
    }
}
