//! Divolte's JSON source: `POST /json?p=<party id>` with a snake_case body, for servers and
//! mobile apps that keep their own ids.
//!
//! ```json
//! {"session_id": "0:k1:abc", "event_id": "e1", "is_new_party": false, "is_new_session": true,
//!  "client_timestamp_iso": "2026-11-30T10:00:00.000+01:00", "event_type": "purchase",
//!  "parameters": {"amount": 12.5}}
//! ```
//!
//! Required: `session_id`, `event_id`, `is_new_party`, `is_new_session`,
//! `client_timestamp_iso`. Optional: `event_type`, `parameters`, and (Eddy adds) `location`,
//! `referer`, `page_view_id`. Other fields are ignored.

use serde::Deserialize;
use serde_json::Value;

use super::ids::Identifier;
use super::{Invalid, ViolationKind};
use crate::event::{Event, Source};

#[derive(Deserialize)]
struct Body {
    session_id: Option<String>,
    event_id: Option<String>,
    is_new_party: Option<bool>,
    is_new_session: Option<bool>,
    client_timestamp_iso: Option<String>,
    event_type: Option<String>,
    parameters: Option<Value>,
    location: Option<String>,
    referer: Option<String>,
    page_view_id: Option<String>,
}

fn missing(field: &str, what: &str) -> Invalid {
    Invalid::new(
        ViolationKind::Protocol,
        format!("field {field} ({what}) is missing"),
    )
}

/// Reads one event posted for `party` (the `p` query parameter, if any).
pub fn parse(party: Option<&str>, body: &[u8], now_ms: i64) -> Result<Event, Invalid> {
    let party = party.ok_or_else(|| {
        Invalid::new(
            ViolationKind::Protocol,
            "query parameter p (party id) is missing".to_string(),
        )
    })?;
    let party_id = Identifier::parse(party).ok_or_else(|| {
        Invalid::new(
            ViolationKind::Protocol,
            format!("query parameter p (party id) is not an id of the form 0:<base36 time>:<id>: {party:?}"),
        )
    })?;
    let body: Body = serde_json::from_slice(body).map_err(|e| {
        Invalid::new(
            ViolationKind::Protocol,
            format!("the body is not a JSON event: {e}"),
        )
    })?;
    let session = body
        .session_id
        .ok_or_else(|| missing("session_id", "session id"))?;
    let session_id = Identifier::parse(&session).ok_or_else(|| {
        Invalid::new(
            ViolationKind::Protocol,
            format!("field session_id is not an id of the form 0:<base36 time>:<id>: {session:?}"),
        )
    })?;
    let event_id = body
        .event_id
        .ok_or_else(|| missing("event_id", "event id"))?;
    let new_party = body
        .is_new_party
        .ok_or_else(|| missing("is_new_party", "new party"))?;
    let first_in_session = body
        .is_new_session
        .ok_or_else(|| missing("is_new_session", "new session"))?;
    let iso = body
        .client_timestamp_iso
        .ok_or_else(|| missing("client_timestamp_iso", "client time"))?;
    let client_timestamp = chrono::DateTime::parse_from_rfc3339(&iso)
        .map_err(|e| {
            Invalid::new(
                ViolationKind::Protocol,
                format!("field client_timestamp_iso is not an ISO-8601 time with an offset ({e}): {iso:?}"),
            )
        })?
        .timestamp_millis();
    Ok(Event {
        source: Source::Json,
        party_id: party_id.value,
        session_id: session_id.value,
        page_view_id: body.page_view_id,
        event_id,
        event_type: body.event_type,
        new_party,
        first_in_session,
        client_timestamp,
        timestamp: now_ms,
        location: body.location,
        referer: body.referer,
        viewport_width: None,
        viewport_height: None,
        screen_width: None,
        screen_height: None,
        device_pixel_ratio: None,
        parameters: body.parameters,
        corrupt: false,
        duplicate: false,
        automated: false,
        cookieless: false,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const PARTY: &str = "0:k1:party";

    fn body() -> Value {
        json!({"session_id": "0:k1:sess", "event_id": "ev1", "is_new_party": false,
               "is_new_session": true, "client_timestamp_iso": "2026-11-30T10:00:00.250+01:00",
               "event_type": "purchase", "parameters": {"amount": 12.5}, "extra": 1})
    }

    #[test]
    fn reads_the_snake_case_body() {
        let e = parse(Some(PARTY), body().to_string().as_bytes(), 7).unwrap();
        assert_eq!(e.source, Source::Json);
        assert_eq!(e.client_timestamp, 1_796_029_200_250);
        assert_eq!(e.event_type.as_deref(), Some("purchase"));
        assert_eq!(e.parameters, Some(json!({"amount": 12.5})));
        assert!(e.first_in_session && !e.new_party);
    }

    #[test]
    fn violations_name_the_field() {
        let err = parse(None, b"{}", 0).unwrap_err();
        assert_eq!(err.message, "query parameter p (party id) is missing");
        let err = parse(Some(PARTY), b"{not json", 0).unwrap_err();
        assert!(
            err.message.starts_with("the body is not a JSON event"),
            "{}",
            err.message
        );
        for field in [
            "session_id",
            "event_id",
            "is_new_party",
            "is_new_session",
            "client_timestamp_iso",
        ] {
            let mut b = body();
            b.as_object_mut().unwrap().remove(field);
            let err = parse(Some(PARTY), b.to_string().as_bytes(), 0).unwrap_err();
            assert!(
                err.message.starts_with(&format!("field {field} ")),
                "{}",
                err.message
            );
        }
        let mut b = body();
        b["client_timestamp_iso"] = json!("yesterday");
        let err = parse(Some(PARTY), b.to_string().as_bytes(), 0).unwrap_err();
        assert!(
            err.message
                .contains("client_timestamp_iso is not an ISO-8601"),
            "{}",
            err.message
        );
    }
}
