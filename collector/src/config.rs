//! The collector's settings (the `[collector]` section of Eddy's configuration), with
//! Divolte's defaults where Divolte has one. [`CollectorConfig::validate`] names the key of
//! every bad value.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::output::Framing;
use crate::privacy::DoNotTrack;

/// Where records go.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SinkKind {
    /// The node's embedded stream (standalone).
    #[default]
    Embedded,
    /// A Kafka cluster (`collector.kafka` holds the producer properties).
    Kafka,
}

/// What to do with events that look automated.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BotPolicy {
    /// Record them with `isBot` set.
    #[default]
    Flag,
    /// Count them and record nothing.
    Drop,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CollectorConfig {
    /// Public HTTP address; empty disables the collector.
    pub addr: String,
    /// Topic of the event records.
    pub topic: String,
    /// Topic of requests that failed validation or mapping.
    pub bad_rows_topic: String,
    /// Partitions of the topics when the collector creates them.
    pub partitions: u32,
    pub sink: SinkKind,
    /// Kafka producer properties (librdkafka names), `bootstrap.servers` at least.
    pub kafka: BTreeMap<String, String>,
    pub framing: Framing,
    /// The schema id written in Confluent framing.
    pub schema_id: u32,
    /// A schema registry to register the schema with at start-up (subject `<topic>-value`);
    /// its answer is the schema id.
    pub schema_registry_url: Option<String>,
    /// An Avro schema (`.avsc`) instead of the built-in `clicks` record.
    pub schema_file: Option<PathBuf>,
    /// A TOML mapping onto that schema.
    pub mapping_file: Option<PathBuf>,
    /// The tracker's event path (Divolte: `/csc-event`).
    pub event_path: String,
    /// The JSON source's path.
    pub json_path: String,
    /// The JSON source's party-id query parameter.
    pub json_party_param: String,
    /// Largest JSON event body (Divolte: 4096).
    pub json_max_body_bytes: usize,
    /// Largest tracker request: a query string, or a batch body.
    pub max_request_bytes: usize,
    /// Requests that may wait for the sink before new ones are refused with 503.
    pub queue_capacity: usize,
    /// How long a request waits for the sink before it is answered with 503.
    pub sink_timeout_ms: u64,
    /// Take the client address from the rightmost `X-Forwarded-For` entry.
    pub use_x_forwarded_for: bool,
    /// Send events whose checksum fails to the bad rows instead of recording them flagged.
    pub discard_corrupted: bool,
    /// Drop (and count) events the duplicate memory recognises instead of flagging them.
    pub discard_duplicates: bool,
    /// Slots of the duplicate memory (8 bytes each).
    pub duplicate_memory_slots: usize,
    /// Hosts whose referrals count as internal besides the page's own host.
    pub internal_domains: Vec<String>,
    pub bots: BotPolicy,
    /// Serve a demo page at `/`.
    pub demo: bool,
    pub tracker: TrackerConfig,
    pub user_agent: UserAgentConfig,
    pub geo: GeoConfig,
    pub privacy: PrivacyConfig,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrackerConfig {
    /// Send a pageView event when a page view starts.
    pub auto_page_view: bool,
    /// No cookies and no local storage: the collector derives parties and sessions.
    pub cookieless: bool,
    pub party_cookie: String,
    pub party_timeout_days: u32,
    pub session_cookie: String,
    pub session_timeout_minutes: u32,
    /// `domain=` of the cookies (empty: the page's host).
    pub cookie_domain: String,
    /// `Strict`, `Lax` or `None`.
    pub cookie_same_site: String,
    pub cookie_secure: bool,
    /// Events the tracker keeps for retry (oldest dropped past it).
    pub retry_queue: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UserAgentConfig {
    /// uap-core rules as JSON (scripts/update-ua-rules writes them); default: compiled in.
    pub rules: Option<PathBuf>,
    /// Distinct user agents whose parse is kept.
    pub cache_size: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GeoConfig {
    /// A MaxMind database (GeoIP2/GeoLite2 City or Country `.mmdb`).
    pub database: Option<PathBuf>,
    /// How often the file is checked for a new version.
    pub reload_interval_ms: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PrivacyConfig {
    /// Store client addresses without their last octet (IPv4) or last 80 bits (IPv6), after
    /// the geo-IP lookup.
    pub anonymize_ip: bool,
    /// `ignore`, `anonymize` or `drop` requests with `DNT: 1` or `Sec-GPC: 1`.
    pub do_not_track: DoNotTrack,
}

impl Default for CollectorConfig {
    fn default() -> Self {
        CollectorConfig {
            addr: "127.0.0.1:8290".into(),
            topic: "clicks".into(),
            bad_rows_topic: "clicks_bad_rows".into(),
            partitions: 1,
            sink: SinkKind::Embedded,
            kafka: BTreeMap::new(),
            framing: Framing::Naked,
            schema_id: 0,
            schema_registry_url: None,
            schema_file: None,
            mapping_file: None,
            event_path: "/csc-event".into(),
            json_path: "/json".into(),
            json_party_param: "p".into(),
            json_max_body_bytes: 4096,
            max_request_bytes: 64 << 10,
            queue_capacity: 50_000,
            sink_timeout_ms: 5_000,
            use_x_forwarded_for: false,
            discard_corrupted: false,
            discard_duplicates: false,
            duplicate_memory_slots: 1 << 20,
            internal_domains: Vec::new(),
            bots: BotPolicy::Flag,
            demo: true,
            tracker: TrackerConfig::default(),
            user_agent: UserAgentConfig::default(),
            geo: GeoConfig::default(),
            privacy: PrivacyConfig::default(),
        }
    }
}

impl Default for TrackerConfig {
    fn default() -> Self {
        TrackerConfig {
            auto_page_view: true,
            cookieless: false,
            party_cookie: "_dvp".into(),
            party_timeout_days: 730,
            session_cookie: "_dvs".into(),
            session_timeout_minutes: 30,
            cookie_domain: String::new(),
            cookie_same_site: "Lax".into(),
            cookie_secure: false,
            retry_queue: 100,
        }
    }
}

impl Default for UserAgentConfig {
    fn default() -> Self {
        UserAgentConfig {
            rules: None,
            cache_size: 10_000,
        }
    }
}

impl Default for GeoConfig {
    fn default() -> Self {
        GeoConfig {
            database: None,
            reload_interval_ms: 60_000,
        }
    }
}

fn cookie_name_ok(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

impl CollectorConfig {
    /// Whether the collector runs at all.
    pub fn enabled(&self) -> bool {
        !self.addr.is_empty()
    }

    /// The session timeout in ms (the tracker's cookie, and server-side sessions).
    pub fn session_timeout_ms(&self) -> i64 {
        i64::from(self.tracker.session_timeout_minutes) * 60_000
    }

    /// Checks every value; errors name the key as `collector.<key>`.
    pub fn validate(&self) -> Result<(), String> {
        let bad = |key: &str, why: String| Err(format!("collector.{key}: {why}"));
        if self.enabled() && self.addr.parse::<SocketAddr>().is_err() {
            return bad(
                "addr",
                format!("{:?} is not an address like 127.0.0.1:8290", self.addr),
            );
        }
        for (key, topic) in [
            ("topic", &self.topic),
            ("bad_rows_topic", &self.bad_rows_topic),
        ] {
            if let Err(e) = eddy_stream::check_topic_name(topic) {
                return bad(key, e.to_string());
            }
        }
        if self.topic == self.bad_rows_topic {
            return bad("bad_rows_topic", "must differ from collector.topic".into());
        }
        if self.partitions == 0 {
            return bad("partitions", "must be at least 1".into());
        }
        if self.sink == SinkKind::Kafka && !self.kafka.contains_key("bootstrap.servers") {
            return bad("kafka", "the kafka sink needs \"bootstrap.servers\"".into());
        }
        if self.framing == Framing::Confluent
            && self.schema_id == 0
            && self.schema_registry_url.is_none()
        {
            return bad("schema_id", "confluent framing needs a schema id, or collector.schema_registry_url to register the schema".into());
        }
        if self.mapping_file.is_some() != self.schema_file.is_some() {
            return bad(
                "mapping_file",
                "give schema_file and mapping_file together".into(),
            );
        }
        for (key, path) in [
            ("event_path", &self.event_path),
            ("json_path", &self.json_path),
        ] {
            if !path.starts_with('/') || path.len() < 2 || path.contains(['?', '#', ' ']) {
                return bad(key, format!("{path:?} must be a path like /csc-event"));
            }
        }
        if self.event_path == self.json_path {
            return bad("json_path", "must differ from collector.event_path".into());
        }
        if self.json_party_param.is_empty() {
            return bad("json_party_param", "must not be empty".into());
        }
        for (key, v) in [
            ("json_max_body_bytes", self.json_max_body_bytes),
            ("max_request_bytes", self.max_request_bytes),
            ("queue_capacity", self.queue_capacity),
            ("duplicate_memory_slots", self.duplicate_memory_slots),
            ("user_agent.cache_size", self.user_agent.cache_size),
        ] {
            if v == 0 {
                return bad(key, "must be at least 1".into());
            }
        }
        if self.sink_timeout_ms == 0 {
            return bad("sink_timeout_ms", "must be at least 1".into());
        }
        let t = &self.tracker;
        for (key, name) in [
            ("tracker.party_cookie", &t.party_cookie),
            ("tracker.session_cookie", &t.session_cookie),
        ] {
            if !cookie_name_ok(name) {
                return bad(key, format!("{name:?} is not a cookie name"));
            }
        }
        if t.party_cookie == t.session_cookie {
            return bad(
                "tracker.session_cookie",
                "must differ from tracker.party_cookie".into(),
            );
        }
        if t.party_timeout_days == 0 || t.session_timeout_minutes == 0 {
            return bad(
                "tracker",
                "party_timeout_days and session_timeout_minutes must be at least 1".into(),
            );
        }
        if !t
            .cookie_domain
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
        {
            return bad(
                "tracker.cookie_domain",
                format!("{:?} is not a domain", t.cookie_domain),
            );
        }
        match t.cookie_same_site.as_str() {
            "Strict" | "Lax" => {}
            "None" if t.cookie_secure => {}
            "None" => {
                return bad(
                    "tracker.cookie_same_site",
                    "None needs tracker.cookie_secure = true (browsers refuse it otherwise)".into(),
                );
            }
            other => {
                return bad(
                    "tracker.cookie_same_site",
                    format!("{other:?} must be Strict, Lax or None"),
                );
            }
        }
        if t.retry_queue == 0 {
            return bad("tracker.retry_queue", "must be at least 1".into());
        }
        if self.geo.reload_interval_ms == 0 {
            return bad("geo.reload_interval_ms", "must be at least 1".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_divolte_like() {
        let c = CollectorConfig::default();
        c.validate().unwrap();
        assert_eq!(c.addr, "127.0.0.1:8290");
        assert_eq!(
            (
                c.tracker.party_cookie.as_str(),
                c.tracker.party_timeout_days
            ),
            ("_dvp", 730)
        );
        assert_eq!(
            (
                c.tracker.session_cookie.as_str(),
                c.tracker.session_timeout_minutes
            ),
            ("_dvs", 30)
        );
        assert_eq!(c.event_path, "/csc-event");
        assert_eq!(c.json_max_body_bytes, 4096);
    }

    #[test]
    fn errors_name_the_key() {
        type Change = fn(&mut CollectorConfig);
        let cases: Vec<(Change, &str)> = vec![
            (|c| c.addr = "nowhere".into(), "collector.addr:"),
            (|c| c.topic = "a b".into(), "collector.topic:"),
            (
                |c| c.bad_rows_topic = "clicks".into(),
                "collector.bad_rows_topic:",
            ),
            (
                |c| c.sink = SinkKind::Kafka,
                "collector.kafka: the kafka sink needs",
            ),
            (|c| c.framing = Framing::Confluent, "collector.schema_id:"),
            (|c| c.event_path = "csc".into(), "collector.event_path:"),
            (
                |c| c.tracker.party_cookie = "a;b".into(),
                "collector.tracker.party_cookie:",
            ),
            (
                |c| c.tracker.cookie_same_site = "None".into(),
                "collector.tracker.cookie_same_site: None needs",
            ),
            (
                |c| c.tracker.cookie_same_site = "lax".into(),
                "collector.tracker.cookie_same_site:",
            ),
            (|c| c.queue_capacity = 0, "collector.queue_capacity:"),
            (
                |c| c.mapping_file = Some("m.toml".into()),
                "collector.mapping_file:",
            ),
        ];
        for (change, want) in cases {
            let mut c = CollectorConfig::default();
            change(&mut c);
            let err = c.validate().unwrap_err();
            assert!(err.starts_with(want), "{err} (wanted {want})");
        }
        let mut off = CollectorConfig::default();
        off.addr.clear();
        off.validate().unwrap();
        assert!(!off.enabled());
    }
}
