//! Node composition: which roles run in this process and how they reach each other. In
//! `standalone` every role runs here and talks through in-process clients; a cluster swaps
//! those for remote ones without touching the roles.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use eddy_broker::{Broker, BrokerConfig};
use eddy_coordinator::{Coordinator, CoordinatorConfig};
use eddy_historical::{Historical, HistoricalConfig};
use eddy_meta::{LocalMetadataStore, MetadataStore};
use eddy_realtime::stream::{Allocator, RealtimeNode, StreamApi, StreamContext, Supervisors};
use eddy_realtime::{TaskRunner, TaskRunnerConfig};
use eddy_rpc::{Availability, DataNode, HistoricalControl, SegmentHealth};
use eddy_runtime::{CpuPool, SharedClock, Shutdown, SystemClock};
use eddy_storage::DeepStorage;
use eddy_stream::EmbeddedLog;
use eddy_types::NodeId;

use crate::config::Config;
use crate::status;

/// A running standalone node.
pub struct Node {
    pub addr: SocketAddr,
    /// Where Flight SQL listens, when enabled.
    pub flight_addr: Option<SocketAddr>,
    /// Where the click collector listens, when enabled.
    pub collector_addr: Option<SocketAddr>,
    pub shutdown: Shutdown,
    /// The embedded stream (also reachable over `/eddy/v1/streams`).
    pub streams: EmbeddedLog,
    server: JoinHandle<Result<(), std::io::Error>>,
    collector: Option<JoinHandle<Result<(), std::io::Error>>>,
    supervisors: JoinHandle<()>,
    flight: Option<JoinHandle<Result<(), tonic::transport::Error>>>,
}

impl Node {
    /// Stops accepting, lets requests and tasks finish, and waits for the server to end.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.shutdown.trigger();
        self.join().await
    }

    pub async fn join(self) -> anyhow::Result<()> {
        self.server
            .await
            .context("the HTTP server task panicked")?
            .context("the HTTP server failed")?;
        self.supervisors
            .await
            .context("stopping the supervisors panicked")?;
        if let Some(c) = self.collector {
            c.await
                .context("the collector task panicked")?
                .context("the collector's HTTP server failed")?;
        }
        if let Some(f) = self.flight {
            f.await
                .context("the Flight SQL server task panicked")?
                .context("the Flight SQL server failed")?;
        }
        Ok(())
    }
}

/// Starts every role in this process. `listener` overrides `http.addr` (tests bind port 0).
pub async fn start_standalone(
    config: Config,
    listener: Option<TcpListener>,
) -> anyhow::Result<Node> {
    // Bound first, so a taken port fails start-up before anything else is opened.
    let collector_listener = match config.collector.enabled() {
        false => None,
        true => Some(
            TcpListener::bind(&config.collector.addr)
                .await
                .with_context(|| {
                    format!(
                        "cannot listen on {} (collector.addr)",
                        config.collector.addr
                    )
                })?,
        ),
    };
    let listener = match listener {
        Some(l) => l,
        None => {
            let addr = config.http_addr()?;
            TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot listen on {addr} (http.addr)"))?
        }
    };
    let addr = listener.local_addr()?;
    let host = config.node.host.clone().unwrap_or_else(|| addr.to_string());
    eddy_runtime::http::set_host(&host);
    eddy_runtime::telemetry::register_build_info(crate::status::VERSION);
    eddy_historical::metrics::register();
    eddy_broker::metrics::register();
    eddy_realtime::metrics::register();
    let shutdown = Shutdown::new();
    let clock: SharedClock = Arc::new(SystemClock);
    let data_dir = config.data_dir();
    std::fs::create_dir_all(&data_dir)
        .with_context(|| format!("cannot create node.data_dir {}", data_dir.display()))?;

    let meta_store = Arc::new(
        LocalMetadataStore::open(&config.meta_dir()).context("opening the metadata store")?,
    );
    let meta: Arc<dyn MetadataStore> = Arc::new(meta_store);
    let deep = DeepStorage::from_uri(&config.deep_uri()).context("storage.deep")?;
    let pool = CpuPool::new(config.query.threads, "eddy-cpu").map_err(anyhow::Error::msg)?;

    let historical = Historical::start(
        HistoricalConfig {
            node_id: NodeId::new(format!("{host}-historical"))?,
            cache_dir: config.cache_dir(),
            max_size: if config.storage.cache_max_bytes == 0 {
                u64::MAX / 2
            } else {
                config.storage.cache_max_bytes
            },
        },
        deep.clone(),
        pool.clone(),
    )?;
    let coordinator = Coordinator::start(
        meta.clone(),
        vec![historical.clone() as Arc<dyn HistoricalControl>],
        CoordinatorConfig {
            replicants: config.coordinator.replicants,
            period: Duration::from_millis(config.coordinator.period_ms),
            ..CoordinatorConfig::default()
        },
        shutdown.child(),
    );
    let tasks = TaskRunner::start(
        meta.clone(),
        deep.clone(),
        coordinator.clone() as Arc<dyn Availability>,
        clock.clone(),
        TaskRunnerConfig {
            work_dir: config.work_dir(),
            max_rows_in_memory: config.ingest.max_rows_in_memory,
            await_availability: Duration::from_millis(config.ingest.await_availability_ms),
        },
        shutdown.child(),
    )
    .await?;
    let streams = EmbeddedLog::open(config.stream_dir()).context("opening the embedded stream")?;
    let realtime = RealtimeNode::new(NodeId::new(format!("{host}-realtime"))?, pool.clone());
    let supervisors = Supervisors::start(Arc::new(StreamContext {
        meta: meta.clone(),
        deep: deep.clone(),
        availability: coordinator.clone() as Arc<dyn Availability>,
        node: realtime.clone(),
        allocator: Arc::new(Allocator::new(meta.clone())),
        embedded: streams.clone(),
        clock: clock.clone(),
        work_dir: config.work_dir().join("realtime"),
        max_bytes_in_memory: config.stream.max_bytes_in_memory,
        shutdown: shutdown.child(),
        kafka: Default::default(),
        tasks: tasks.stream_tasks(),
    }))
    .await;
    let stop_supervisors = {
        let supervisors = supervisors.clone();
        let stop = shutdown.clone();
        tokio::spawn(async move {
            stop.wait().await;
            supervisors.shutdown().await;
        })
    };
    let broker = Broker::new(
        meta.clone(),
        vec![
            historical.clone() as Arc<dyn DataNode>,
            realtime.clone() as Arc<dyn DataNode>,
        ],
        coordinator.clone() as Arc<dyn SegmentHealth>,
        pool.clone(),
        BrokerConfig {
            default_timeout_ms: config.query.default_timeout_ms,
            max_timeout_ms: config.query.max_timeout_ms,
        },
    );

    let flight = match config.flight_addr()? {
        Some(addr) => Some(start_flight(addr, broker.clone(), shutdown.clone()).await?),
        None => None,
    };

    let app: Router = Router::new()
        .merge(status::router(config.clone()))
        .merge(eddy_coordinator::router(coordinator))
        .merge(eddy_realtime::router(tasks))
        .merge(eddy_realtime::stream::supervisor_router(
            supervisors.clone(),
        ))
        .merge(eddy_realtime::stream::stream_router(StreamApi {
            log: streams.clone(),
            default_partitions: config.stream.default_partitions,
        }))
        .merge(eddy_broker::router(broker))
        .fallback(status::not_found)
        .layer(DefaultBodyLimit::max(config.http.max_body_bytes));

    tracing::info!(%addr, data_dir = %data_dir.display(), deep = %deep.uri(), "eddy standalone listening on http://{addr}");
    let stop = shutdown.clone();
    let server = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move { stop.wait().await })
            .await
    });
    let collector = match collector_listener {
        None => None,
        Some(l) => {
            let handle = eddy_collector::start(
                config.collector.clone(),
                eddy_collector::CollectorEnv {
                    embedded: Some(Arc::new(streams.clone())),
                    clock: clock.clone(),
                    shutdown: shutdown.clone(),
                    listener: Some(l),
                    demo: Some(crate::clicks::demo(addr)),
                },
            )
            .await?;
            crate::clicks::ensure_supervisor(&supervisors, &config.collector).await?;
            Some(handle)
        }
    };
    Ok(Node {
        addr,
        collector_addr: collector.as_ref().map(|c| c.addr),
        collector: collector.map(|c| c.server),
        flight_addr: flight.as_ref().map(|(a, _)| *a),
        shutdown,
        streams,
        server,
        supervisors: stop_supervisors,
        flight: flight.map(|(_, h)| h),
    })
}

/// Serves Arrow Flight SQL on `addr` until shutdown; returns the bound address.
async fn start_flight(
    addr: SocketAddr,
    broker: Arc<Broker>,
    shutdown: Shutdown,
) -> anyhow::Result<(SocketAddr, JoinHandle<Result<(), tonic::transport::Error>>)> {
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot bind the Flight SQL address {addr} (http.flight_addr)"))?;
    let bound = listener.local_addr()?;
    tracing::info!(addr = %bound, "Flight SQL on grpc://{bound}");
    let incoming = tonic::transport::server::TcpIncoming::from(listener);
    let handle = tokio::spawn(async move {
        tonic::transport::Server::builder()
            .add_service(eddy_broker::sql::flight_service(broker))
            .serve_with_incoming_shutdown(incoming, async move { shutdown.wait().await })
            .await
    });
    Ok((bound, handle))
}

/// Runs only the click collector (a collector node of a cluster: it writes to Kafka) until
/// SIGINT or SIGTERM.
pub async fn run_collector(config: Config) -> anyhow::Result<()> {
    if !config.collector.enabled() {
        anyhow::bail!("collector.addr is empty: there is nothing to run");
    }
    eddy_runtime::telemetry::register_build_info(crate::status::VERSION);
    let shutdown = Shutdown::new();
    shutdown.listen_for_signals();
    let handle = eddy_collector::start(
        config.collector.clone(),
        eddy_collector::CollectorEnv {
            embedded: None,
            clock: Arc::new(SystemClock),
            shutdown: shutdown.clone(),
            listener: None,
            demo: None,
        },
    )
    .await?;
    handle
        .server
        .await
        .context("the collector task panicked")?
        .context("the collector's HTTP server failed")?;
    tracing::info!("stopped");
    Ok(())
}
