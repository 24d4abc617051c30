//! One click event as the protocol delivered it, before enrichment and mapping.

use serde_json::Value;

/// Which endpoint an event came through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The tracker (`/csc-event`, pixel GET or batched POST).
    Browser,
    /// The JSON source (`POST /json?p=<party>`), for servers and apps.
    Json,
}

impl Source {
    pub fn name(self) -> &'static str {
        match self {
            Source::Browser => "browser",
            Source::Json => "json",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub source: Source,
    pub party_id: String,
    pub session_id: String,
    pub page_view_id: Option<String>,
    pub event_id: String,
    pub event_type: Option<String>,
    pub new_party: bool,
    pub first_in_session: bool,
    /// The client's clock when the event happened (ms since the epoch).
    pub client_timestamp: i64,
    /// When the collector received it (ms since the epoch).
    pub timestamp: i64,
    pub location: Option<String>,
    pub referer: Option<String>,
    pub viewport_width: Option<i32>,
    pub viewport_height: Option<i32>,
    pub screen_width: Option<i32>,
    pub screen_height: Option<i32>,
    pub device_pixel_ratio: Option<f64>,
    /// The custom parameters (`signal(type, params)`), if any.
    pub parameters: Option<Value>,
    /// The checksum was missing or wrong (the request was probably truncated on the way).
    pub corrupt: bool,
    /// The duplicate memory has seen this event id before.
    pub duplicate: bool,
    /// The tracker saw `navigator.webdriver` (an automated browser).
    pub automated: bool,
    /// The tracker ran without cookies: the server derives party and session.
    pub cookieless: bool,
}
