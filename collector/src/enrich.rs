//! What the collector adds to an event: the parsed user agent, a bot flag, the referrer's class,
//! campaign parameters and, with a database configured, geo-IP. Each part is computed only when
//! the mapping uses it.

pub mod bot;
pub mod geo;
pub mod mmdb_writer;
pub mod referrer;
pub mod ua;

use std::net::IpAddr;
use std::sync::Arc;

use geo::{Geo, GeoDb};
use referrer::{Campaign, Referrer};
use ua::{UserAgent, UserAgentParser};

use crate::event::Event;

/// Which enrichments the mapping reads.
#[derive(Debug, Clone, Copy, Default)]
pub struct Needs {
    pub user_agent: bool,
    pub bot: bool,
    pub referrer: bool,
    pub campaign: bool,
    pub geo: bool,
}

/// The enrichments of one event.
#[derive(Debug, Default)]
pub struct Enriched {
    pub user_agent: Option<Arc<UserAgent>>,
    pub bot: Option<&'static str>,
    pub referrer: Option<Referrer>,
    pub campaign: Campaign,
    pub geo: Option<Geo>,
}

pub struct Enricher {
    pub user_agents: UserAgentParser,
    pub geo: Option<Arc<GeoDb>>,
    pub internal_domains: Vec<String>,
}

impl Enricher {
    /// Enriches `event`; `ip` is the client address before any anonymisation (geo-IP runs on
    /// the full address, then the address is truncated).
    pub fn enrich(
        &self,
        needs: Needs,
        event: &Event,
        user_agent: Option<&str>,
        ip: Option<IpAddr>,
    ) -> Enriched {
        let mut out = Enriched::default();
        let parsed = (needs.user_agent || needs.bot)
            .then(|| user_agent.map(|ua| self.user_agents.parse(ua)))
            .flatten();
        if needs.bot {
            out.bot = bot::reason(parsed.as_deref(), event.automated);
        }
        out.user_agent = parsed;
        if needs.campaign || needs.referrer {
            // The page URL is parsed once for both.
            let location = event
                .location
                .as_deref()
                .and_then(|l| url::Url::parse(l).ok());
            out.campaign = referrer::campaign(location.as_ref());
            if needs.referrer {
                out.referrer = Some(referrer::classify(
                    event.referer.as_deref(),
                    location.as_ref(),
                    &self.internal_domains,
                    out.campaign.medium.as_deref(),
                ));
            }
        }
        if needs.geo
            && let (Some(db), Some(ip)) = (&self.geo, ip)
        {
            out.geo = db.lookup(ip);
        }
        out
    }
}
