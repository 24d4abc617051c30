//! User-agent parsing with the ua-parser project's rules (uap-core's `regexes.yaml`, compiled
//! in from `collector/rules/uap-core.json`, or loaded from a newer file named in the config).
//! Parsing costs microseconds, so results are cached per distinct user-agent string.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use ua_parser::Extractor;

/// The rules compiled into the binary (uap-core, version in `rules/uap-core.version`).
const BUILTIN_RULES: &str = include_str!("../../rules/uap-core.json");
const BUILTIN_VERSION: &str = include_str!("../../rules/uap-core.version");

/// What a user-agent string says about the client.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserAgent {
    /// Browser or app family: `Chrome`, `Firefox`, `Googlebot`, ...
    pub family: String,
    /// `major.minor.patch`, as far as known.
    pub version: Option<String>,
    pub os_family: String,
    pub os_version: Option<String>,
    pub device_family: String,
    pub device_brand: Option<String>,
    pub device_model: Option<String>,
    /// `desktop`, `smartphone`, `tablet`, `robot` or `other`.
    pub device_category: &'static str,
    /// `browser`, `robot` or `other`.
    pub agent_type: &'static str,
    /// Why the user agent itself looks automated (see [`super::bot`]), if it does.
    pub bot: Option<&'static str>,
}

const SHARDS: usize = 16;

pub struct UserAgentParser {
    extractor: Extractor<'static>,
    rules_version: String,
    cache: Vec<Mutex<HashMap<String, Arc<UserAgent>>>>,
    per_shard: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum RulesError {
    #[error("cannot read the user-agent rules {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("the user-agent rules {path} are not uap-core rules in JSON: {reason}")]
    Parse { path: String, reason: String },
}

fn version_string(parts: &[Option<&str>]) -> Option<String> {
    let present: Vec<&str> = parts
        .iter()
        .map_while(|p| *p)
        .filter(|p| !p.is_empty())
        .collect();
    (!present.is_empty()).then(|| present.join("."))
}

impl UserAgentParser {
    /// Compiles the built-in rules, or the JSON file at `path` (uap-core's regexes.yaml turned
    /// into JSON, as `scripts/update-ua-rules` writes it). `cache_size` bounds the cache.
    pub fn new(path: Option<&str>, cache_size: usize) -> Result<UserAgentParser, RulesError> {
        let (text, origin, version) = match path {
            None => (
                BUILTIN_RULES.to_string(),
                "built-in".to_string(),
                format!("uap-core {}", BUILTIN_VERSION.trim()),
            ),
            Some(p) => (
                std::fs::read_to_string(p).map_err(|source| RulesError::Read {
                    path: p.to_string(),
                    source,
                })?,
                p.to_string(),
                p.to_string(),
            ),
        };
        let parse_error = |reason: String| RulesError::Parse {
            path: origin.clone(),
            reason,
        };
        // The rules' strings deserialize as owned copies, so they outlive `text`.
        let regexes: ua_parser::Regexes<'static> =
            serde_json::from_str(&text).map_err(|e| parse_error(e.to_string()))?;
        let extractor = Extractor::try_from(regexes).map_err(|e| parse_error(e.to_string()))?;
        Ok(UserAgentParser {
            extractor,
            rules_version: version,
            cache: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            per_shard: cache_size.div_ceil(SHARDS).max(1),
        })
    }

    pub fn rules_version(&self) -> &str {
        &self.rules_version
    }

    /// Parses `ua`, from the cache when it was seen before.
    pub fn parse(&self, ua: &str) -> Arc<UserAgent> {
        let shard = &self.cache[(xxhash_rust::xxh3::xxh3_64(ua.as_bytes()) as usize) % SHARDS];
        if let Some(hit) = lock(shard).get(ua) {
            return hit.clone();
        }
        let parsed = Arc::new(self.parse_uncached(ua));
        let mut map = lock(shard);
        if map.len() >= self.per_shard {
            // Bounded memory: start the shard over rather than track recency per entry.
            map.clear();
        }
        map.insert(ua.to_string(), parsed.clone());
        parsed
    }

    fn parse_uncached(&self, ua: &str) -> UserAgent {
        let (agent, os, device) = self.extractor.extract(ua);
        let family = agent
            .as_ref()
            .map_or("Other".to_string(), |a| a.family.to_string());
        let version = agent
            .as_ref()
            .and_then(|a| version_string(&[a.major, a.minor, a.patch]));
        let os_family = os
            .as_ref()
            .map_or("Other".to_string(), |o| o.os.to_string());
        let os_version = os.as_ref().and_then(|o| {
            version_string(&[o.major.as_deref(), o.minor.as_deref(), o.patch.as_deref()])
        });
        let device_family = device
            .as_ref()
            .map_or("Other".to_string(), |d| d.device.to_string());
        let device_brand = device
            .as_ref()
            .and_then(|d| d.brand.as_ref().map(|b| b.to_string()));
        let device_model = device
            .as_ref()
            .and_then(|d| d.model.as_ref().map(|m| m.to_string()));
        let device_category = category(ua, &device_family, &os_family);
        let agent_type = match device_category {
            "robot" => "robot",
            _ if family == "Other" => "other",
            _ => "browser",
        };
        let mut parsed = UserAgent {
            family,
            version,
            os_family,
            os_version,
            device_family,
            device_brand,
            device_model,
            device_category,
            agent_type,
            bot: None,
        };
        parsed.bot = super::bot::from_user_agent(ua, &parsed);
        parsed
    }
}

/// A coarse device class from the parsed device and OS and a few well-known UA tokens.
fn category(ua: &str, device: &str, os: &str) -> &'static str {
    if device == "Spider" {
        return "robot";
    }
    let tablet = device.contains("iPad")
        || device.contains("Tablet")
        || device.contains("Kindle")
        || ua.contains("Tablet")
        || (os == "Android" && !ua.contains("Mobile"));
    if tablet {
        return "tablet";
    }
    let phone = matches!(device, "iPhone" | "iPod")
        || device.contains("Smartphone")
        || ua.contains("Mobi")
        || matches!(os, "iOS" | "Android");
    if phone {
        return "smartphone";
    }
    let desktop = matches!(
        os,
        "Windows" | "Mac OS X" | "Linux" | "Ubuntu" | "Chrome OS" | "Fedora" | "FreeBSD"
    ) || device == "Mac";
    if desktop { "desktop" } else { "other" }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parser() -> UserAgentParser {
        UserAgentParser::new(None, 100).unwrap()
    }

    #[test]
    fn parses_common_browsers_with_the_builtin_rules() {
        let p = parser();
        let chrome = p.parse("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36");
        assert_eq!(chrome.family, "Chrome");
        assert_eq!(chrome.version.as_deref(), Some("131.0.0"));
        assert_eq!(chrome.os_family, "Windows");
        assert_eq!(chrome.device_category, "desktop");
        assert_eq!(chrome.agent_type, "browser");
        let iphone = p.parse("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1");
        assert_eq!(iphone.family, "Mobile Safari");
        assert_eq!(iphone.os_family, "iOS");
        assert_eq!(iphone.os_version.as_deref(), Some("17.5"));
        assert_eq!(iphone.device_family, "iPhone");
        assert_eq!(iphone.device_brand.as_deref(), Some("Apple"));
        assert_eq!(iphone.device_category, "smartphone");
        let ipad = p.parse("Mozilla/5.0 (iPad; CPU OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/16.6 Mobile/15E148 Safari/604.1");
        assert_eq!(ipad.device_category, "tablet");
        let bot =
            p.parse("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)");
        assert_eq!(bot.family, "Googlebot");
        assert_eq!((bot.device_category, bot.agent_type), ("robot", "robot"));
        assert!(
            p.rules_version().starts_with("uap-core 0."),
            "{}",
            p.rules_version()
        );
    }

    #[test]
    fn the_cache_is_bounded_and_answers_the_same() {
        let p = UserAgentParser::new(None, 16).unwrap();
        let first = p.parse("curl/8.5.0");
        for i in 0..100 {
            p.parse(&format!("agent-{i}/1.0"));
        }
        let total: usize = p.cache.iter().map(|s| lock(s).len()).sum();
        assert!(total <= 16, "{total} cached");
        assert_eq!(*p.parse("curl/8.5.0"), *first);
        assert_eq!(first.family, "curl");
    }

    #[test]
    fn a_rules_file_that_is_not_uap_core_is_refused_with_its_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rules.json");
        std::fs::write(&path, "{\"user_agent_parsers\": 3}").unwrap();
        let err = UserAgentParser::new(path.to_str(), 10)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("rules.json are not uap-core rules"), "{err}");
        let err = UserAgentParser::new(Some("/nonexistent/rules.json"), 10)
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("cannot read the user-agent rules /nonexistent/rules.json"),
            "{err}"
        );
    }
}
