//! The tracker script as served: the minified build with this collector's settings filled in,
//! gzipped once at start-up, with an ETag and an hour of caching (as Divolte serves it).

use std::io::Write;

use serde_json::json;

use crate::config::CollectorConfig;

/// The minified tracker (`scripts/build-tracker` makes it from `tracker/eddy.js`).
const MINIFIED: &str = include_str!("../tracker/eddy.min.js");
/// The demo page served at `/`.
pub const DEMO_PAGE: &str = include_str!("../tracker/demo.html");

pub struct TrackerScript {
    pub plain: bytes::Bytes,
    pub gzip: bytes::Bytes,
    pub etag: String,
}

impl TrackerScript {
    pub fn build(config: &CollectorConfig) -> TrackerScript {
        let t = &config.tracker;
        let settings = json!({
            "e": config.event_path.trim_start_matches('/'),
            "p": t.party_cookie,
            "s": t.session_cookie,
            "pt": u64::from(t.party_timeout_days) * 86_400,
            "st": u64::from(t.session_timeout_minutes) * 60,
            "d": t.cookie_domain,
            "ss": t.cookie_same_site,
            "sec": u8::from(t.cookie_secure),
            "a": u8::from(t.auto_page_view),
            "c": u8::from(t.cookieless),
            "q": t.retry_queue,
        });
        let plain = MINIFIED.replace("__EDDY_CONFIG__", &settings.to_string());
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        // Writing to a Vec cannot fail.
        let _ = gz.write_all(plain.as_bytes());
        let gzip = gz.finish().unwrap_or_default();
        let etag = format!("\"{:016x}\"", xxhash_rust::xxh3::xxh3_64(plain.as_bytes()));
        TrackerScript {
            plain: plain.into(),
            gzip: gzip.into(),
            etag,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_served_script_fits_the_size_budget() {
        let script = TrackerScript::build(&CollectorConfig::default());
        let text = std::str::from_utf8(&script.plain).unwrap();
        assert!(!text.contains("__EDDY_CONFIG__"));
        assert!(text.contains("\"e\":\"csc-event\""), "{text}");
        assert!(
            script.gzip.len() <= 2048,
            "{} bytes gzipped",
            script.gzip.len()
        );
        let mut c = CollectorConfig::default();
        c.tracker.cookie_domain = "example.com".into();
        c.tracker.party_cookie = "visitor".into();
        let other = TrackerScript::build(&c);
        assert_ne!(other.etag, script.etag);
        assert!(
            std::str::from_utf8(&other.plain)
                .unwrap()
                .contains("\"d\":\"example.com\"")
        );
    }
}
