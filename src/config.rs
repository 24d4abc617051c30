//! Node configuration: defaults < TOML file < `EDDY_SECTION__KEY` environment variables < CLI
//! flags. Unknown keys and bad values are errors that name the key (and the variable).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub node: NodeSection,
    pub http: HttpSection,
    pub storage: StorageSection,
    pub query: QuerySection,
    pub ingest: IngestSection,
    pub coordinator: CoordinatorSection,
    pub stream: StreamSection,
    pub log: LogSection,
    /// The click collector (its own public port).
    pub collector: eddy_collector::CollectorConfig,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NodeSection {
    /// Where metadata, deep storage (by default), the segment cache and task files live.
    pub data_dir: PathBuf,
    /// Name this node reports (in error bodies and server lists); default: the HTTP address.
    pub host: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpSection {
    /// Address of the HTTP API (Druid's router port is 8888).
    pub addr: String,
    /// Largest request body accepted, in bytes (task specs with inline data can be big).
    pub max_body_bytes: usize,
    /// Address of the Arrow Flight SQL endpoint (gRPC); empty disables it.
    pub flight_addr: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageSection {
    /// Deep storage URI: file:///dir, memory://, s3://bucket/prefix, gs://bucket/prefix.
    /// Default: file://<data_dir>/deep.
    pub deep: Option<String>,
    /// Segment cache of the historical. Default: <data_dir>/cache.
    pub cache_dir: Option<PathBuf>,
    /// Bytes of segments the historical reports it can hold (0: unlimited).
    pub cache_max_bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QuerySection {
    /// Threads of the CPU pool for scans, merges and segment builds (0: one per core).
    pub threads: usize,
    pub default_timeout_ms: u64,
    pub max_timeout_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IngestSection {
    /// Scratch space of running tasks. Default: <data_dir>/tasks.
    pub work_dir: Option<PathBuf>,
    /// Rows held in memory by a batch task before it finishes a segment early.
    pub max_rows_in_memory: usize,
    /// How long a batch task waits for its segments to be queryable before reporting success.
    pub await_availability_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StreamSection {
    /// Where the embedded stream keeps its topics. Default: <data_dir>/streams.
    pub dir: Option<PathBuf>,
    /// Partitions of a topic created by its first produce.
    pub default_partitions: u32,
    /// Bytes a realtime task holds in memory before it persists, when its spec leaves
    /// maxBytesInMemory at 0.
    pub max_bytes_in_memory: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CoordinatorSection {
    /// Copies of each segment across historicals.
    pub replicants: usize,
    /// How often placement is reconsidered when nothing changed (ms).
    pub period_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogSection {
    /// Level filter, like "info" or "eddy_broker=debug,info"; RUST_LOG overrides it.
    pub level: String,
    /// "text" or "json".
    pub format: String,
}

impl Default for NodeSection {
    fn default() -> Self {
        NodeSection {
            data_dir: PathBuf::from("var/eddy"),
            host: None,
        }
    }
}

impl Default for HttpSection {
    fn default() -> Self {
        HttpSection {
            addr: "127.0.0.1:8888".into(),
            max_body_bytes: 256 << 20,
            flight_addr: "127.0.0.1:8815".into(),
        }
    }
}

impl Default for QuerySection {
    fn default() -> Self {
        QuerySection {
            threads: 0,
            default_timeout_ms: 300_000,
            max_timeout_ms: 3_600_000,
        }
    }
}

impl Default for IngestSection {
    fn default() -> Self {
        IngestSection {
            work_dir: None,
            max_rows_in_memory: eddy_realtime::DEFAULT_MAX_ROWS_IN_MEMORY,
            await_availability_ms: 60_000,
        }
    }
}

impl Default for StreamSection {
    fn default() -> Self {
        StreamSection {
            dir: None,
            default_partitions: 1,
            max_bytes_in_memory: 256 << 20,
        }
    }
}

impl Default for CoordinatorSection {
    fn default() -> Self {
        CoordinatorSection {
            replicants: 1,
            period_ms: 5_000,
        }
    }
}

impl Default for LogSection {
    fn default() -> Self {
        LogSection {
            level: "info".into(),
            format: "text".into(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("configuration: {0}")]
pub struct ConfigError(pub String);

const ENV_PREFIX: &str = "EDDY_";

/// Reads `EDDY_SECTION__KEY=value` (deeper tables: `EDDY_SECTION__TABLE__KEY`) into the TOML
/// table (`value` as TOML if it parses, else text).
fn apply_env(
    table: &mut toml::Table,
    vars: impl Iterator<Item = (String, String)>,
) -> Result<(), ConfigError> {
    for (name, value) in vars {
        let Some(rest) = name.strip_prefix(ENV_PREFIX) else {
            continue;
        };
        let path: Vec<String> = rest.split("__").map(str::to_ascii_lowercase).collect();
        if path.len() < 2 {
            continue;
        }
        if path.iter().any(String::is_empty) {
            return Err(ConfigError(format!(
                "{name}: expected {ENV_PREFIX}SECTION__KEY"
            )));
        }
        let parsed: toml::Value = format!("v = {value}")
            .parse::<toml::Table>()
            .ok()
            .and_then(|mut t| t.remove("v"))
            .unwrap_or_else(|| toml::Value::String(value.clone()));
        let (key, tables) = path.split_last().unwrap_or((&path[0], &[]));
        let mut current = &mut *table;
        for section in tables {
            let entry = current
                .entry(section.clone())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            let toml::Value::Table(next) = entry else {
                return Err(ConfigError(format!("{name}: {section} is not a section")));
            };
            current = next;
        }
        current.insert(key.clone(), parsed);
    }
    Ok(())
}

impl Config {
    /// Loads the file (if any) and the environment.
    pub fn load(
        file: Option<&Path>,
        env: impl Iterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let mut table: toml::Table = match file {
            None => toml::Table::new(),
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| ConfigError(format!("cannot read {}: {e}", path.display())))?;
                text.parse::<toml::Table>()
                    .map_err(|e| ConfigError(format!("{}: {e}", path.display())))?
            }
        };
        let env: Vec<(String, String)> = env.collect();
        apply_env(&mut table, env.iter().cloned())?;
        let config: Config =
            serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(|e| {
                let key = e.path().to_string();
                let from_env = env.iter().find(|(n, _)| {
                    n.strip_prefix(ENV_PREFIX)
                        .is_some_and(|r| r.to_ascii_lowercase().replace("__", ".") == key)
                });
                match from_env {
                    Some((n, _)) => ConfigError(format!("{n} ({key}): {}", e.inner())),
                    None if key == "." => ConfigError(e.inner().to_string()),
                    None => ConfigError(format!("{key}: {}", e.inner())),
                }
            })?;
        config.validate()?;
        Ok(config)
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        self.http_addr()?;
        self.flight_addr()?;
        if !matches!(self.log.format.as_str(), "text" | "json") {
            return Err(ConfigError(format!(
                "log.format: {:?} is not \"text\" or \"json\"",
                self.log.format
            )));
        }
        if self.coordinator.replicants == 0 {
            return Err(ConfigError(
                "coordinator.replicants: must be at least 1".into(),
            ));
        }
        if self.query.default_timeout_ms == 0 || self.query.max_timeout_ms == 0 {
            return Err(ConfigError(
                "query.default_timeout_ms and query.max_timeout_ms must be positive".into(),
            ));
        }
        if self.stream.default_partitions == 0 {
            return Err(ConfigError(
                "stream.default_partitions: must be at least 1".into(),
            ));
        }
        self.collector.validate().map_err(ConfigError)?;
        if let Some(uri) = &self.storage.deep
            && !uri.contains("://")
        {
            return Err(ConfigError(format!(
                "storage.deep: {uri:?} is not a URI like file:///var/lib/eddy/deep"
            )));
        }
        Ok(())
    }

    pub fn http_addr(&self) -> Result<SocketAddr, ConfigError> {
        self.http.addr.parse().map_err(|e| {
            ConfigError(format!(
                "http.addr: {:?} is not host:port ({e})",
                self.http.addr
            ))
        })
    }

    /// The Flight SQL address, or None when `http.flight_addr` is empty (disabled).
    pub fn flight_addr(&self) -> Result<Option<SocketAddr>, ConfigError> {
        if self.http.flight_addr.is_empty() {
            return Ok(None);
        }
        self.http.flight_addr.parse().map(Some).map_err(|e| {
            ConfigError(format!(
                "http.flight_addr: {:?} is not host:port ({e})",
                self.http.flight_addr
            ))
        })
    }

    fn absolute(p: &Path) -> PathBuf {
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            std::env::current_dir().map_or_else(|_| p.to_path_buf(), |d| d.join(p))
        }
    }

    pub fn data_dir(&self) -> PathBuf {
        Self::absolute(&self.node.data_dir)
    }

    pub fn deep_uri(&self) -> String {
        self.storage
            .deep
            .clone()
            .unwrap_or_else(|| format!("file://{}", self.data_dir().join("deep").display()))
    }

    pub fn cache_dir(&self) -> PathBuf {
        self.storage
            .cache_dir
            .as_deref()
            .map_or_else(|| self.data_dir().join("cache"), Self::absolute)
    }

    pub fn work_dir(&self) -> PathBuf {
        self.ingest
            .work_dir
            .as_deref()
            .map_or_else(|| self.data_dir().join("tasks"), Self::absolute)
    }

    pub fn stream_dir(&self) -> PathBuf {
        self.stream
            .dir
            .as_deref()
            .map_or_else(|| self.data_dir().join("streams"), Self::absolute)
    }

    pub fn meta_dir(&self) -> PathBuf {
        self.data_dir().join("meta")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn layers_apply_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("eddy.toml");
        std::fs::write(
            &file,
            "[http]\naddr = \"127.0.0.1:9000\"\n[query]\nthreads = 3\n",
        )
        .unwrap();
        let c = Config::load(
            Some(&file),
            env(&[
                ("EDDY_QUERY__THREADS", "5"),
                ("EDDY_LOG__LEVEL", "debug"),
                ("OTHER", "x"),
            ])
            .into_iter(),
        )
        .unwrap();
        assert_eq!(c.http.addr, "127.0.0.1:9000");
        assert_eq!(c.query.threads, 5);
        assert_eq!(c.log.level, "debug");
        assert_eq!(c.coordinator.replicants, 1);
        let c = Config::load(
            None,
            env(&[
                ("EDDY_COLLECTOR__ADDR", "127.0.0.1:9290"),
                ("EDDY_COLLECTOR__TRACKER__COOKIELESS", "true"),
            ])
            .into_iter(),
        )
        .unwrap();
        assert_eq!(c.collector.addr, "127.0.0.1:9290");
        assert!(c.collector.tracker.cookieless);
        let e = Config::load(
            None,
            env(&[("EDDY_COLLECTOR__TRACKER__COOKIE_SAME_SITE", "None")]).into_iter(),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("collector.tracker.cookie_same_site"), "{e}");
    }

    #[test]
    fn unknown_keys_and_bad_values_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("eddy.toml");
        std::fs::write(&file, "[http]\nadress = \"x\"\n").unwrap();
        let e = Config::load(Some(&file), std::iter::empty())
            .unwrap_err()
            .to_string();
        assert!(e.contains("adress"), "{e}");
        let e = Config::load(None, env(&[("EDDY_QUERY__THREADS", "many")]).into_iter())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("EDDY_QUERY__THREADS") && e.contains("query.threads"),
            "{e}"
        );
        let e = Config::load(None, env(&[("EDDY_QUERRY__THREADS", "2")]).into_iter())
            .unwrap_err()
            .to_string();
        assert!(e.contains("querry"), "{e}");
        let e = Config::load(None, env(&[("EDDY_HTTP__ADDR", "nope")]).into_iter())
            .unwrap_err()
            .to_string();
        assert!(e.contains("http.addr"), "{e}");
    }
}
