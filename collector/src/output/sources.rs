//! The values a mapping can read: the event's own fields, enrichments, request headers,
//! cookies and query parameters, custom event parameters, parts of the page and referrer URLs,
//! and literals. Each has a type the mapping checks against the schema at start-up.

use std::borrow::Cow;

use http::HeaderMap;
use serde_json::Value;

use crate::enrich::{Enriched, Needs};
use crate::event::Event;
use crate::protocol::query::Params;

/// The type of a source's values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Bool,
    Int,
    Long,
    Double,
    Str,
    /// Decided per value (custom parameters, literals): converted to the field's type when
    /// written; a value that does not convert is a mapping failure.
    Dynamic,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Bool => "a boolean",
            Kind::Int => "an int",
            Kind::Long => "a long",
            Kind::Double => "a double",
            Kind::Str => "a string",
            Kind::Dynamic => "a JSON value",
        }
    }
}

/// One value read for a field.
#[derive(Debug, Clone, PartialEq)]
pub enum Val<'a> {
    Null,
    Bool(bool),
    Int(i32),
    Long(i64),
    Double(f64),
    Str(Cow<'a, str>),
    Json(Cow<'a, Value>),
}

macro_rules! builtins {
    ($($variant:ident = $name:literal : $kind:ident, $optional:literal, $need:ident;)*) => {
        /// The named sources.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum Builtin { $($variant),* }

        impl Builtin {
            pub const ALL: &'static [Builtin] = &[$(Builtin::$variant),*];

            pub fn name(self) -> &'static str {
                match self { $(Builtin::$variant => $name),* }
            }

            pub fn kind(self) -> Kind {
                match self { $(Builtin::$variant => Kind::$kind),* }
            }

            /// Whether some events have no value.
            pub fn optional(self) -> bool {
                match self { $(Builtin::$variant => $optional),* }
            }

            fn need(self, n: &mut Needs) {
                match self { $(Builtin::$variant => need!(n, $need)),* }
            }
        }
    };
}

macro_rules! need {
    ($n:ident, none) => {{
        let _ = $n;
    }};
    ($n:ident, $field:ident) => {
        $n.$field = true
    };
}

builtins! {
    Timestamp = "timestamp": Long, false, none;
    ClientTimestamp = "clientTimestamp": Long, false, none;
    EventType = "eventType": Str, true, none;
    EventId = "eventId": Str, false, none;
    PartyId = "partyId": Str, false, none;
    SessionId = "sessionId": Str, false, none;
    PageViewId = "pageViewId": Str, true, none;
    FirstInSession = "firstInSession": Bool, false, none;
    NewParty = "newParty": Bool, false, none;
    Corrupt = "detectedCorruption": Bool, false, none;
    Duplicate = "detectedDuplicate": Bool, false, none;
    SourceName = "source": Str, false, none;
    RemoteHost = "remoteHost": Str, true, none;
    Location = "location": Str, true, none;
    Referer = "referer": Str, true, none;
    ViewportWidth = "viewportPixelWidth": Int, true, none;
    ViewportHeight = "viewportPixelHeight": Int, true, none;
    ScreenWidth = "screenPixelWidth": Int, true, none;
    ScreenHeight = "screenPixelHeight": Int, true, none;
    DevicePixelRatio = "devicePixelRatio": Double, true, none;
    EventParameters = "eventParameters": Str, true, none;
    UserAgentString = "userAgentString": Str, true, none;
    UaFamily = "userAgent.family": Str, true, user_agent;
    UaVersion = "userAgent.version": Str, true, user_agent;
    UaType = "userAgent.type": Str, true, user_agent;
    UaDeviceCategory = "userAgent.deviceCategory": Str, true, user_agent;
    UaDeviceFamily = "userAgent.deviceFamily": Str, true, user_agent;
    UaDeviceBrand = "userAgent.deviceBrand": Str, true, user_agent;
    UaDeviceModel = "userAgent.deviceModel": Str, true, user_agent;
    UaOsFamily = "userAgent.osFamily": Str, true, user_agent;
    UaOsVersion = "userAgent.osVersion": Str, true, user_agent;
    IsBot = "isBot": Bool, false, bot;
    BotReason = "botReason": Str, true, bot;
    RefererClass = "referer.class": Str, false, referrer;
    RefererHost = "referer.host": Str, true, referrer;
    UtmSource = "utm.source": Str, true, campaign;
    UtmMedium = "utm.medium": Str, true, campaign;
    UtmCampaign = "utm.campaign": Str, true, campaign;
    UtmTerm = "utm.term": Str, true, campaign;
    UtmContent = "utm.content": Str, true, campaign;
    ClickId = "clickId": Str, true, campaign;
    ClickIdType = "clickIdType": Str, true, campaign;
    GeoContinentCode = "geo.continentCode": Str, true, geo;
    GeoCountryCode = "geo.countryCode": Str, true, geo;
    GeoCountryName = "geo.countryName": Str, true, geo;
    GeoSubdivisionCode = "geo.subdivisionCode": Str, true, geo;
    GeoSubdivisionName = "geo.subdivisionName": Str, true, geo;
    GeoCityName = "geo.cityName": Str, true, geo;
    GeoPostalCode = "geo.postalCode": Str, true, geo;
    GeoLatitude = "geo.latitude": Double, true, geo;
    GeoLongitude = "geo.longitude": Double, true, geo;
    GeoTimeZone = "geo.timeZone": Str, true, geo;
}

/// Which URL a `url` source reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UrlOf {
    Location,
    Referer,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UrlPart {
    Scheme,
    Host,
    Path,
    Query,
    Fragment,
    /// One query parameter's first value.
    Param(String),
}

/// Which value of a repeated header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pick {
    First,
    Last,
    /// All values joined with `,`.
    All,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    Builtin(Builtin),
    Header {
        name: String,
        pick: Pick,
    },
    Cookie(String),
    /// A parameter of the collector request itself (the tracker's query string).
    Query(String),
    /// A custom event parameter, by path into the parameters object.
    Param(Vec<String>),
    Url {
        of: UrlOf,
        part: UrlPart,
    },
    Literal(Value),
}

impl Source {
    pub fn kind(&self) -> Kind {
        match self {
            Source::Builtin(b) => b.kind(),
            Source::Param(_) | Source::Literal(_) => Kind::Dynamic,
            _ => Kind::Str,
        }
    }

    pub fn optional(&self) -> bool {
        match self {
            Source::Builtin(b) => b.optional(),
            Source::Literal(_) => false,
            _ => true,
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Source::Builtin(b) => b.name().to_string(),
            Source::Header { name, .. } => format!("header {name}"),
            Source::Cookie(c) => format!("cookie {c}"),
            Source::Query(q) => format!("query parameter {q}"),
            Source::Param(p) => format!("event parameter {}", p.join(".")),
            Source::Url { of, part } => format!("{part:?} of the {of:?} URL").to_lowercase(),
            Source::Literal(v) => format!("the value {v}"),
        }
    }

    pub fn need(&self, n: &mut Needs) {
        if let Source::Builtin(b) = self {
            b.need(n);
        }
    }
}

/// Everything a source can read for one event.
pub struct Context<'a> {
    pub event: &'a Event,
    pub enriched: &'a Enriched,
    pub remote_host: Option<&'a str>,
    pub user_agent: Option<&'a str>,
    pub headers: &'a HeaderMap,
    /// The collector request's query parameters (browser events).
    pub query: Option<&'a Params<'a>>,
}

fn s<'a>(v: Option<&'a str>) -> Val<'a> {
    v.map_or(Val::Null, |v| Val::Str(Cow::Borrowed(v)))
}

fn owned<'a>(v: Option<String>) -> Val<'a> {
    v.map_or(Val::Null, |v| Val::Str(Cow::Owned(v)))
}

fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|h| h.to_str().ok())
        .flat_map(|h| h.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| k.trim() == name)
        .map(|(_, v)| v.trim())
}

fn url_part(url: &str, part: &UrlPart) -> Option<String> {
    let u = url::Url::parse(url).ok()?;
    match part {
        UrlPart::Scheme => Some(u.scheme().to_string()),
        UrlPart::Host => u.host_str().map(str::to_string),
        UrlPart::Path => Some(u.path().to_string()),
        UrlPart::Query => u.query().map(str::to_string),
        UrlPart::Fragment => u.fragment().map(str::to_string),
        UrlPart::Param(name) => u
            .query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned()),
    }
}

impl Builtin {
    fn read<'a>(self, c: &Context<'a>) -> Val<'a> {
        use crate::enrich::geo::Geo;
        use crate::enrich::ua::UserAgent;
        let e: &'a Event = c.event;
        let ua: Option<&'a UserAgent> = c.enriched.user_agent.as_deref();
        let geo: Option<&'a Geo> = c.enriched.geo.as_ref();
        let referrer = c.enriched.referrer.as_ref();
        let campaign = &c.enriched.campaign;
        let ua_str = |f: for<'x> fn(&'x UserAgent) -> Option<&'x str>| s(ua.and_then(f));
        let geo_str = |f: for<'x> fn(&'x Geo) -> Option<&'x str>| s(geo.and_then(f));
        let int = |v: Option<i32>| v.map_or(Val::Null, Val::Int);
        let double = |v: Option<f64>| v.map_or(Val::Null, Val::Double);
        match self {
            Builtin::Timestamp => Val::Long(e.timestamp),
            Builtin::ClientTimestamp => Val::Long(e.client_timestamp),
            Builtin::EventType => s(e.event_type.as_deref()),
            Builtin::EventId => s(Some(&e.event_id)),
            Builtin::PartyId => s(Some(&e.party_id)),
            Builtin::SessionId => s(Some(&e.session_id)),
            Builtin::PageViewId => s(e.page_view_id.as_deref()),
            Builtin::FirstInSession => Val::Bool(e.first_in_session),
            Builtin::NewParty => Val::Bool(e.new_party),
            Builtin::Corrupt => Val::Bool(e.corrupt),
            Builtin::Duplicate => Val::Bool(e.duplicate),
            Builtin::SourceName => s(Some(e.source.name())),
            Builtin::RemoteHost => s(c.remote_host),
            Builtin::Location => s(e.location.as_deref()),
            Builtin::Referer => s(e.referer.as_deref()),
            Builtin::ViewportWidth => int(e.viewport_width),
            Builtin::ViewportHeight => int(e.viewport_height),
            Builtin::ScreenWidth => int(e.screen_width),
            Builtin::ScreenHeight => int(e.screen_height),
            Builtin::DevicePixelRatio => double(e.device_pixel_ratio),
            Builtin::EventParameters => owned(e.parameters.as_ref().map(Value::to_string)),
            Builtin::UserAgentString => s(c.user_agent),
            Builtin::UaFamily => ua_str(|u| Some(&u.family)),
            Builtin::UaVersion => ua_str(|u| u.version.as_deref()),
            Builtin::UaType => ua_str(|u| Some(u.agent_type)),
            Builtin::UaDeviceCategory => ua_str(|u| Some(u.device_category)),
            Builtin::UaDeviceFamily => ua_str(|u| Some(&u.device_family)),
            Builtin::UaDeviceBrand => ua_str(|u| u.device_brand.as_deref()),
            Builtin::UaDeviceModel => ua_str(|u| u.device_model.as_deref()),
            Builtin::UaOsFamily => ua_str(|u| Some(&u.os_family)),
            Builtin::UaOsVersion => ua_str(|u| u.os_version.as_deref()),
            Builtin::IsBot => Val::Bool(c.enriched.bot.is_some()),
            Builtin::BotReason => s(c.enriched.bot),
            Builtin::RefererClass => s(Some(referrer.map_or("direct", |r| r.class))),
            Builtin::RefererHost => s(referrer.and_then(|r| r.host.as_deref())),
            Builtin::UtmSource => s(campaign.source.as_deref()),
            Builtin::UtmMedium => s(campaign.medium.as_deref()),
            Builtin::UtmCampaign => s(campaign.campaign.as_deref()),
            Builtin::UtmTerm => s(campaign.term.as_deref()),
            Builtin::UtmContent => s(campaign.content.as_deref()),
            Builtin::ClickId => s(campaign.click_id.as_deref()),
            Builtin::ClickIdType => s(campaign.click_id_type.as_deref()),
            Builtin::GeoContinentCode => geo_str(|g| g.continent_code.as_deref()),
            Builtin::GeoCountryCode => geo_str(|g| g.country_code.as_deref()),
            Builtin::GeoCountryName => geo_str(|g| g.country_name.as_deref()),
            Builtin::GeoSubdivisionCode => geo_str(|g| g.subdivision_code.as_deref()),
            Builtin::GeoSubdivisionName => geo_str(|g| g.subdivision_name.as_deref()),
            Builtin::GeoCityName => geo_str(|g| g.city_name.as_deref()),
            Builtin::GeoPostalCode => geo_str(|g| g.postal_code.as_deref()),
            Builtin::GeoLatitude => double(geo.and_then(|g| g.latitude)),
            Builtin::GeoLongitude => double(geo.and_then(|g| g.longitude)),
            Builtin::GeoTimeZone => geo_str(|g| g.time_zone.as_deref()),
        }
    }
}

impl Source {
    /// Reads this source for one event.
    pub fn read<'a>(&self, c: &Context<'a>) -> Val<'a> {
        match self {
            Source::Builtin(b) => b.read(c),
            Source::Header { name, pick } => {
                let mut values = c
                    .headers
                    .get_all(name.as_str())
                    .iter()
                    .filter_map(|v| v.to_str().ok());
                match pick {
                    Pick::First => s(values.next()),
                    Pick::Last => s(values.next_back()),
                    Pick::All => {
                        let all: Vec<&str> = values.collect();
                        if all.is_empty() {
                            Val::Null
                        } else {
                            Val::Str(Cow::Owned(all.join(",")))
                        }
                    }
                }
            }
            Source::Cookie(name) => s(cookie(c.headers, name)),
            Source::Query(name) => s(c.query.and_then(|q| q.get(name))),
            Source::Param(path) => {
                let mut v = c.event.parameters.as_ref();
                for key in path {
                    v = v.and_then(|v| match v {
                        Value::Object(m) => m.get(key),
                        Value::Array(a) => key.parse::<usize>().ok().and_then(|i| a.get(i)),
                        _ => None,
                    });
                }
                match v {
                    None | Some(Value::Null) => Val::Null,
                    Some(v) => Val::Json(Cow::Borrowed(v)),
                }
            }
            Source::Url { of, part } => {
                let url = match of {
                    UrlOf::Location => c.event.location.as_deref(),
                    UrlOf::Referer => c.event.referer.as_deref(),
                };
                owned(url.and_then(|u| url_part(u, part)))
            }
            Source::Literal(v) => Val::Json(Cow::Owned(v.clone())),
        }
    }
}
