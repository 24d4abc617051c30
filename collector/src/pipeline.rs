//! From a parsed event to the record the sink gets: privacy rules, server-side ids for
//! cookieless events, duplicate and corruption handling, enrichment, bot policy and the
//! mapping. Anything that fails becomes a bad row carrying the reason and the raw request.

use std::net::IpAddr;

use eddy_stream::ProduceRecord;
use http::HeaderMap;
use serde_json::{Map, Value, json};

use crate::config::{BotPolicy, CollectorConfig};
use crate::dedup::{DuplicateMemory, Sessions};
use crate::enrich::Enricher;
use crate::event::Event;
use crate::output::{Context, Encoder};
use crate::privacy::{self, CookielessIds, DoNotTrack};
use crate::protocol::query::Params;
use crate::protocol::{Invalid, ViolationKind};

/// The request an event came in, as the bad rows and the mapping see it.
pub struct Request<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub query: &'a str,
    pub headers: &'a HeaderMap,
    /// The raw body, or for a batch, the one line this event came from.
    pub body: &'a [u8],
    pub client: Option<IpAddr>,
    pub received: i64,
    /// The collector request's own parameters (browser events).
    pub params: Option<&'a Params<'a>>,
}

/// What became of one event.
pub enum Outcome {
    Record(ProduceRecord),
    BadRow(ProduceRecord),
    /// Dropped on purpose, with the metric label saying why.
    Discarded(&'static str),
}

pub struct Pipeline {
    pub encoder: Encoder,
    pub enricher: Enricher,
    dedup: DuplicateMemory,
    sessions: Sessions,
    cookieless: CookielessIds,
    discard_corrupted: bool,
    discard_duplicates: bool,
    bots: BotPolicy,
    anonymize_ip: bool,
    do_not_track: DoNotTrack,
}

/// Headers whose values never go into a bad row.
const SECRET_HEADERS: &[&str] = &["cookie", "authorization", "proxy-authorization"];
/// How much of a body a bad row keeps.
const BAD_ROW_BODY: usize = 64 << 10;

fn site_of(location: Option<&str>) -> String {
    location
        .and_then(|l| url::Url::parse(l).ok())
        .and_then(|u| u.host_str().map(str::to_string))
        .unwrap_or_default()
}

impl Pipeline {
    pub fn new(config: &CollectorConfig, encoder: Encoder, enricher: Enricher) -> Pipeline {
        Pipeline {
            encoder,
            enricher,
            dedup: DuplicateMemory::new(config.duplicate_memory_slots),
            sessions: Sessions::new(config.session_timeout_ms(), 1 << 20),
            cookieless: CookielessIds::default(),
            discard_corrupted: config.discard_corrupted,
            discard_duplicates: config.discard_duplicates,
            bots: config.bots,
            anonymize_ip: config.privacy.anonymize_ip,
            do_not_track: config.privacy.do_not_track,
        }
    }

    /// Runs one parsed (or failed) event through the pipeline.
    pub fn process(&self, req: &Request<'_>, parsed: Result<Event, Invalid>) -> Outcome {
        let mut event = match parsed {
            Ok(e) => e,
            Err(invalid) => return Outcome::BadRow(self.bad_row(req, &invalid)),
        };
        let opted_out = privacy::opted_out(req.headers);
        let anonymous = opted_out && self.do_not_track == DoNotTrack::Anonymize;
        if opted_out && self.do_not_track == DoNotTrack::Drop {
            return Outcome::Discarded("discarded_do_not_track");
        }
        if event.corrupt && self.discard_corrupted {
            let invalid = Invalid::new(
                ViolationKind::Checksum,
                "the checksum (parameter x) is missing or does not match: the request was probably truncated".into(),
            );
            return Outcome::BadRow(self.bad_row(req, &invalid));
        }
        let user_agent = req
            .headers
            .get(http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok());
        let stored_ip = match req.client {
            Some(ip) if anonymous || self.anonymize_ip => Some(privacy::truncate(ip)),
            other => other,
        };
        if event.cookieless || anonymous {
            let site = site_of(event.location.as_deref());
            let party =
                self.cookieless
                    .party(req.received, &site, stored_ip, user_agent.unwrap_or(""));
            let turn = self.sessions.track(&party.value, req.received);
            event.party_id = party.value;
            event.session_id = turn.session_id;
            event.first_in_session = turn.first_in_session;
            event.new_party = turn.new_party;
        }
        event.duplicate = self.dedup.seen(&event.party_id, &event.event_id);
        if event.duplicate && self.discard_duplicates {
            return Outcome::Discarded("discarded_duplicate");
        }
        // Geo-IP reads the address before truncation, unless the client asked for anonymity.
        let geo_ip = if anonymous { stored_ip } else { req.client };
        let enriched =
            self.enricher
                .enrich(self.encoder.mapping.needs(), &event, user_agent, geo_ip);
        if enriched.bot.is_some() && self.bots == BotPolicy::Drop {
            return Outcome::Discarded("discarded_bot");
        }
        let remote_host = if anonymous {
            None
        } else {
            stored_ip.map(|ip| ip.to_string())
        };
        let ctx = Context {
            event: &event,
            enriched: &enriched,
            remote_host: remote_host.as_deref(),
            user_agent,
            headers: req.headers,
            query: req.params,
        };
        match self.encoder.message(&ctx) {
            Ok(value) => Outcome::Record(ProduceRecord {
                key: Some(event.party_id.into_bytes()),
                value,
                timestamp: Some(req.received),
            }),
            Err(e) => Outcome::BadRow(self.bad_row(req, &Invalid::new(ViolationKind::Mapping, e))),
        }
    }

    /// A bad-rows record: what was wrong, and the request as it came (without secrets).
    pub fn bad_row(&self, req: &Request<'_>, invalid: &Invalid) -> ProduceRecord {
        crate::metrics::BAD_ROWS
            .with_label_values(&[invalid.kind.name()])
            .inc();
        let mut headers = Map::new();
        for (name, value) in req.headers {
            let shown = if SECRET_HEADERS.contains(&name.as_str()) {
                "(removed)".to_string()
            } else {
                String::from_utf8_lossy(value.as_bytes()).into_owned()
            };
            headers.insert(name.as_str().to_string(), Value::String(shown));
        }
        let truncated = req.body.len() > BAD_ROW_BODY;
        let body =
            String::from_utf8_lossy(&req.body[..req.body.len().min(BAD_ROW_BODY)]).into_owned();
        let client = req.client.map(|ip| {
            if self.anonymize_ip {
                privacy::truncate(ip)
            } else {
                ip
            }
        });
        let row = json!({
            "kind": invalid.kind.name(),
            "message": invalid.message,
            "collector": concat!("eddy-collector ", env!("CARGO_PKG_VERSION")),
            "received": req.received,
            "remoteHost": client.map(|ip| ip.to_string()),
            "request": {
                "method": req.method,
                "path": req.path,
                "query": req.query,
                "headers": headers,
                "body": body,
                "bodyTruncated": truncated,
            },
        });
        ProduceRecord {
            key: req
                .params
                .and_then(|p| p.get("p"))
                .map(|p| p.as_bytes().to_vec()),
            value: row.to_string().into_bytes(),
            timestamp: Some(req.received),
        }
    }
}
