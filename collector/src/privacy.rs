//! Privacy: IP truncation, Do-Not-Track and Global Privacy Control, and cookieless ids that
//! a daily salt (kept only in memory) makes impossible to link across days.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Mutex;

use http::HeaderMap;
use rand::RngCore;
use serde::{Deserialize, Serialize};

use crate::protocol::ids::{Identifier, base64url};

/// What to do with a request that carries `DNT: 1` or `Sec-GPC: 1`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DoNotTrack {
    /// Record it like any other.
    #[default]
    Ignore,
    /// Record it without the client address and with cookieless ids.
    Anonymize,
    /// Answer it, count it, and record nothing.
    Drop,
}

/// Whether the browser asks not to be tracked.
pub fn opted_out(headers: &HeaderMap) -> bool {
    let is_one = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim() == "1")
    };
    is_one("dnt") || is_one("sec-gpc")
}

/// Drops the host part of an address: the last octet of IPv4, the last 80 bits of IPv6.
pub fn truncate(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            IpAddr::V4(Ipv4Addr::new(a, b, c, 0))
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], 0, 0, 0, 0, 0))
        }
    }
}

const DAY_MS: i64 = 86_400_000;

/// Party ids for cookieless events: a hash of the day's salt, the site, the client address
/// and its user agent. The same visitor gets the same id all day, a new one the next day.
pub struct CookielessIds {
    /// (day number, salt) of the current day.
    salt: Mutex<(i64, [u8; 32])>,
}

impl Default for CookielessIds {
    fn default() -> Self {
        CookielessIds {
            salt: Mutex::new((i64::MIN, [0; 32])),
        }
    }
}

impl CookielessIds {
    fn salt_for(&self, day: i64) -> [u8; 32] {
        let mut s = self.salt.lock().unwrap_or_else(|p| p.into_inner());
        if s.0 != day {
            let mut fresh = [0u8; 32];
            rand::rng().fill_bytes(&mut fresh);
            *s = (day, fresh);
        }
        s.1
    }

    /// The party id of a visitor of `site` from `ip` with `user_agent` on the day of `now_ms`.
    pub fn party(
        &self,
        now_ms: i64,
        site: &str,
        ip: Option<IpAddr>,
        user_agent: &str,
    ) -> Identifier {
        let day = now_ms.div_euclid(DAY_MS);
        let mut input = self.salt_for(day).to_vec();
        for part in [
            site,
            &ip.map(|i| i.to_string()).unwrap_or_default(),
            user_agent,
        ] {
            input.extend(part.as_bytes());
            input.push(0);
        }
        let hash = xxhash_rust::xxh3::xxh3_128(&input).to_le_bytes();
        Identifier::with_random_part(day * DAY_MS, &base64url(&hash))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncation_keeps_the_network() {
        assert_eq!(
            truncate("81.2.69.160".parse().unwrap()),
            "81.2.69.0".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            truncate("2001:db8:85a3:1234:8a2e:370:7334:1".parse().unwrap()),
            "2001:db8:85a3::".parse::<IpAddr>().unwrap()
        );
    }

    #[test]
    fn dnt_and_gpc_headers_opt_out() {
        let mut h = HeaderMap::new();
        assert!(!opted_out(&h));
        h.insert("DNT", "0".parse().unwrap());
        assert!(!opted_out(&h));
        h.insert("Sec-GPC", "1".parse().unwrap());
        assert!(opted_out(&h));
    }

    #[test]
    fn cookieless_ids_are_stable_for_a_day_and_change_the_next() {
        let ids = CookielessIds::default();
        let ip = Some("81.2.69.160".parse().unwrap());
        let t = 1_796_029_200_000;
        let a = ids.party(t, "shop.example", ip, "UA");
        assert_eq!(a, ids.party(t + 3_600_000, "shop.example", ip, "UA"));
        assert_ne!(a, ids.party(t, "shop.example", ip, "UA2"));
        assert_ne!(a, ids.party(t, "other.example", ip, "UA"));
        let tomorrow = ids.party(t + DAY_MS, "shop.example", ip, "UA");
        assert_ne!(
            a.value.rsplit(':').next(),
            tomorrow.value.rsplit(':').next()
        );
        assert!(Identifier::parse(&a.value).is_some());
    }
}
