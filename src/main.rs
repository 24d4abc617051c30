//! `eddy`: a real-time clickstream analytics database. One binary runs any set of roles.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};

use eddy::config::Config;

/// Query and ingestion paths allocate and free many short-lived buffers across threads;
/// mimalloc's thread-local free lists handle that better than glibc's arenas (measured on the
/// topN merge: glibc spent a quarter of its time in free and consolidation).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "eddy",
    version,
    about = "Eddy: real-time clickstream analytics, Druid-compatible"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run every role in one process on embedded defaults (metadata, deep storage and the
    /// segment cache under the data dir).
    Standalone {
        /// TOML configuration file.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Where Eddy keeps its data (node.data_dir).
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Address of the HTTP API (http.addr); port 0 picks a free port.
        #[arg(long)]
        http_addr: Option<String>,
        /// Address of the Arrow Flight SQL endpoint (http.flight_addr, default 127.0.0.1:8815);
        /// port 0 picks a free port, an empty value disables it.
        #[arg(long)]
        flight_addr: Option<String>,
        /// Address of the click collector (collector.addr, default 127.0.0.1:8290); port 0
        /// picks a free port, an empty value disables it.
        #[arg(long)]
        collector_addr: Option<String>,
    },
    /// Run only the click collector, producing to Kafka (collector.sink = "kafka"): the
    /// collector nodes of a cluster.
    Collector {
        /// TOML configuration file (its [collector] section).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Address to listen on (collector.addr).
        #[arg(long)]
        addr: Option<String>,
    },
    /// Submit a batch ingestion spec (Druid's index_parallel task JSON) and follow it.
    Ingest {
        spec: PathBuf,
        /// URL of a running Eddy.
        #[arg(long, default_value = "http://127.0.0.1:8888")]
        url: String,
        /// Print the task id and return at once.
        #[arg(long)]
        no_wait: bool,
    },
    /// Write newline-delimited records (JSON or CSV lines), or the records of an Avro container
    /// file (*.avro, each as a bare datum), into a topic of the embedded stream; each chunk is
    /// acknowledged once durable. The topic is created if missing.
    Produce {
        topic: String,
        /// Input file, or - for stdin.
        #[arg(default_value = "-")]
        input: PathBuf,
        /// URL of a running Eddy.
        #[arg(long, default_value = "http://127.0.0.1:8888")]
        url: String,
        /// JSON field whose value keys each record (records with one key share a partition).
        #[arg(long)]
        key: Option<String>,
        /// Partitions of the topic if this creates it.
        #[arg(long)]
        partitions: Option<u32>,
    },
    /// Create or list topics of the embedded stream.
    Topics {
        #[command(subcommand)]
        action: TopicsAction,
    },
}

#[derive(Subcommand)]
enum TopicsAction {
    /// Create a topic.
    Create {
        topic: String,
        #[arg(long, default_value_t = 1)]
        partitions: u32,
        #[arg(long, default_value = "http://127.0.0.1:8888")]
        url: String,
    },
    /// List topics with their partition and record counts.
    List {
        #[arg(long, default_value = "http://127.0.0.1:8888")]
        url: String,
    },
}

/// Large queries allocate and free gigabytes of group arrays. By default mimalloc hands freed
/// memory back to the OS within milliseconds, so the next query faults it in again and the
/// kernel zeroes it page by page (a third of the time of a 10M-group query here). Freed memory
/// stays 10 s for reuse instead, and no explicit large OS pages are used (mimalloc v3 returns
/// free memory in sweeps: the first free after a sweep sets the next one 10 s later, and a
/// sweep returns everything free then, also what was freed a moment before; a minute's delay
/// kept a busy node from re-faulting its working set, but measured within noise on the
/// ClickBench group-bys, so the shorter delay stays); the `MIMALLOC_PURGE_DELAY` and
/// `MIMALLOC_ALLOW_LARGE_OS_PAGES` variables still override this. mimalloc still advises
/// transparent huge pages for its arenas (the kernel then zeroes 2 MiB at a first touch);
/// `MIMALLOC_ALLOW_THP=0` turns that off for the process, which measured within noise for
/// ingestion here, so it is left on.
fn tune_allocator() {
    use libmimalloc_sys as mi;
    // The option's number in the mimalloc (v3) that the pinned libmimalloc-sys builds; the
    // crate names no constant for it (mimalloc.h: mi_option_purge_delay).
    const PURGE_DELAY: mi::mi_option_t = 15;
    // SAFETY: setting options is thread-safe and valid at any time; these only change when
    // freed memory is returned and which page size new memory uses.
    unsafe {
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
            mi::mi_option_set(PURGE_DELAY, 10_000);
        }
        if std::env::var_os("MIMALLOC_ALLOW_LARGE_OS_PAGES").is_none() {
            mi::mi_option_set(mi::mi_option_large_os_pages, 0);
        }
    }
}

fn main() -> std::process::ExitCode {
    tune_allocator();
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        match cli.command {
            Command::Standalone {
                config,
                data_dir,
                http_addr,
                flight_addr,
                collector_addr,
            } => {
                let mut cfg = Config::load(config.as_deref(), std::env::vars())
                    .map_err(anyhow::Error::msg)?;
                if let Some(d) = data_dir {
                    cfg.node.data_dir = d;
                }
                if let Some(a) = http_addr {
                    cfg.http.addr = a;
                }
                if let Some(a) = flight_addr {
                    cfg.http.flight_addr = a;
                }
                if let Some(a) = collector_addr {
                    cfg.collector.addr = a;
                }
                cfg.validate().map_err(anyhow::Error::msg)?;
                eddy_runtime::telemetry::init_logging(&cfg.log.level, cfg.log.format == "json");
                let node = eddy::node::start_standalone(cfg, None).await?;
                node.shutdown.listen_for_signals();
                node.join().await?;
                tracing::info!("stopped");
                Ok(())
            }
            Command::Collector { config, addr } => {
                let mut cfg = Config::load(config.as_deref(), std::env::vars())
                    .map_err(anyhow::Error::msg)?;
                if let Some(a) = addr {
                    cfg.collector.addr = a;
                }
                cfg.validate().map_err(anyhow::Error::msg)?;
                eddy_runtime::telemetry::init_logging(&cfg.log.level, cfg.log.format == "json");
                eddy::node::run_collector(cfg).await
            }
            Command::Ingest { spec, url, no_wait } => {
                eddy::ingest_cli::run(&spec, &url, !no_wait).await
            }
            Command::Produce {
                topic,
                input,
                url,
                key,
                partitions,
            } => eddy::stream_cli::produce(&topic, &input, &url, key.as_deref(), partitions).await,
            Command::Topics { action } => match action {
                TopicsAction::Create {
                    topic,
                    partitions,
                    url,
                } => eddy::stream_cli::create_topic(&topic, partitions, &url).await,
                TopicsAction::List { url } => eddy::stream_cli::list_topics(&url).await,
            },
        }
    })
}
