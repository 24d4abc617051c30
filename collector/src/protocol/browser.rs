//! The tracker's event request (`/csc-event?p=..&s=..`): Divolte's parameters, plus two Eddy
//! adds (`b=t`: the browser is automated; `z=t`: the tracker runs without cookies).
//!
//! | param | meaning | |
//! | --- | --- | --- |
//! | `p` `s` | party and session ids (`0:<b36 ms>:<id>`) | required |
//! | `v` `e` | page-view and event ids | required |
//! | `c` | client time, ms, base 36 | required |
//! | `n` `f` | new party, first in session (`t`/`f`) | required |
//! | `t` | event type | |
//! | `l` `r` | location, referrer | |
//! | `i` `j` `w` `h` | screen and viewport size, base 36 | |
//! | `k` | device pixel ratio, base 36 (fractions allowed) or decimal | |
//! | `u` | custom parameters, mincode | |
//! | `x` | checksum; missing or wrong marks the event corrupt | |

use super::ids::Identifier;
use super::mincode;
use super::query::{Params, parse_base36, parse_flag, parse_ratio};
use super::{Invalid, ViolationKind};
use crate::event::{Event, Source};

fn required<'a>(
    params: &'a Params<'a>,
    name: &'static str,
    what: &str,
) -> Result<&'a str, Invalid> {
    params.get(name).ok_or_else(|| {
        Invalid::new(
            ViolationKind::Protocol,
            format!("parameter {name} ({what}) is missing"),
        )
    })
}

fn identifier(params: &Params<'_>, name: &'static str, what: &str) -> Result<String, Invalid> {
    let raw = required(params, name, what)?;
    match Identifier::parse(raw) {
        Some(id) => Ok(id.value),
        None => Err(Invalid::new(
            ViolationKind::Protocol,
            format!(
                "parameter {name} ({what}) is not an id of the form 0:<base36 time>:<id>: {raw:?}"
            ),
        )),
    }
}

fn flag(params: &Params<'_>, name: &'static str, what: &str) -> Result<bool, Invalid> {
    match required(params, name, what)? {
        "t" => Ok(true),
        "f" => Ok(false),
        other => Err(Invalid::new(
            ViolationKind::Protocol,
            format!("parameter {name} ({what}) must be t or f, not {other:?}"),
        )),
    }
}

fn dimension(params: &Params<'_>, name: &str) -> Option<i32> {
    params
        .get(name)
        .and_then(parse_base36)
        .and_then(|v| i32::try_from(v).ok())
}

fn text(params: &Params<'_>, name: &str) -> Option<String> {
    params
        .get(name)
        .filter(|v| !v.is_empty())
        .map(str::to_string)
}

/// Reads one event; `now_ms` is the server's receive time.
pub fn parse(params: &Params<'_>, now_ms: i64) -> Result<Event, Invalid> {
    let party_id = identifier(params, "p", "party id")?;
    let session_id = identifier(params, "s", "session id")?;
    let page_view_id = required(params, "v", "page-view id")?.to_string();
    let event_id = required(params, "e", "event id")?.to_string();
    let client_raw = required(params, "c", "client timestamp")?;
    let client_timestamp = parse_base36(client_raw).ok_or_else(|| {
        Invalid::new(
            ViolationKind::Protocol,
            format!("parameter c (client timestamp) is not a base-36 number: {client_raw:?}"),
        )
    })?;
    let new_party = flag(params, "n", "new party")?;
    let first_in_session = flag(params, "f", "first in session")?;
    let parameters = match params.get("u") {
        None => None,
        Some(u) => Some(mincode::decode(u).map_err(|e| {
            Invalid::new(
                ViolationKind::Protocol,
                format!("parameter u (custom parameters): {e}"),
            )
        })?),
    };
    Ok(Event {
        source: Source::Browser,
        party_id,
        session_id,
        page_view_id: Some(page_view_id),
        event_id,
        event_type: text(params, "t"),
        new_party,
        first_in_session,
        client_timestamp,
        timestamp: now_ms,
        location: text(params, "l"),
        referer: text(params, "r"),
        viewport_width: dimension(params, "w"),
        viewport_height: dimension(params, "h"),
        screen_width: dimension(params, "i"),
        screen_height: dimension(params, "j"),
        device_pixel_ratio: params.get("k").and_then(parse_ratio),
        parameters,
        corrupt: !params.checksum_ok(),
        duplicate: false,
        automated: params.get("b").is_some_and(parse_flag),
        cookieless: params.get("z").is_some_and(parse_flag),
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::protocol::query::{encode_component, sign};

    /// A request as the tracker builds it: parameters in its order, then the checksum.
    fn signed(pairs: &[(&str, &str)]) -> Params<'static> {
        Params::parse(&sign(pairs)).into_owned()
    }

    fn base() -> Vec<(&'static str, &'static str)> {
        vec![
            ("p", "0:is8tiwk4:GKv5gCc5TtrvBTs9bXfVD8KIQ3oO~sEg"),
            ("s", "0:is8tiwk4:XLEUVj9hA6AXRUOp2zuIdUpaeFOC~7AU"),
            ("v", "0:T06RVSZxTC2Wbc~S9Mh~Mmza0RQq8ys6"),
            ("e", "0:T06RVSZxTC2Wbc~S9Mh~Mmza0RQq8ys60"),
            ("c", "is8tj0rg"),
            ("n", "t"),
            ("f", "t"),
            ("l", "https://shop.example/p/42?utm_source=news"),
            ("r", "https://www.google.com/"),
            ("i", "1hc"),
            ("j", "u0"),
            ("k", "1.i"),
            ("w", "1hc"),
            ("h", "kw"),
            ("t", "pageView"),
        ]
    }

    #[test]
    fn reads_a_tracker_request() {
        let mut pairs = base();
        pairs.push(("u", "(sbutton!buy!dqty!2!)"));
        let e = parse(&signed(&pairs), 1_000).unwrap();
        assert_eq!(e.party_id, "0:is8tiwk4:GKv5gCc5TtrvBTs9bXfVD8KIQ3oO~sEg");
        assert_eq!(e.event_type.as_deref(), Some("pageView"));
        assert_eq!(e.client_timestamp, parse_base36("is8tj0rg").unwrap());
        assert_eq!(e.timestamp, 1_000);
        assert!(e.new_party && e.first_in_session);
        assert_eq!(e.screen_width, Some(1920));
        assert_eq!(e.screen_height, Some(1080));
        assert_eq!(e.viewport_height, Some(752));
        assert_eq!(e.device_pixel_ratio, Some(1.5));
        assert_eq!(e.parameters, Some(json!({"button": "buy", "qty": 2})));
        assert!(!e.corrupt, "the checksum matches");
        assert!(!e.automated && !e.cookieless);
    }

    #[test]
    fn a_wrong_or_missing_checksum_marks_the_event_corrupt() {
        let params = signed(&base());
        let query: Vec<String> = params
            .iter()
            .map(|(k, v)| {
                let v = if k == "l" {
                    "https://shop.example/p/4"
                } else {
                    v
                };
                format!("{k}={}", encode_component(v))
            })
            .collect();
        let truncated_text = query.join("&");
        let truncated = Params::parse(&truncated_text);
        assert!(parse(&truncated, 0).unwrap().corrupt);
        let unsigned: Vec<String> = base()
            .iter()
            .map(|(k, v)| format!("{k}={}", encode_component(v)))
            .collect();
        assert!(
            parse(&Params::parse(&unsigned.join("&")), 0)
                .unwrap()
                .corrupt
        );
    }

    #[test]
    fn violations_name_the_parameter() {
        let cases: [(&str, Option<&str>, &str); 6] = [
            ("p", None, "parameter p (party id) is missing"),
            ("s", Some("abc"), "parameter s (session id) is not an id"),
            ("e", None, "parameter e (event id) is missing"),
            (
                "c",
                Some("!!"),
                "parameter c (client timestamp) is not a base-36 number",
            ),
            ("n", Some("yes"), "parameter n (new party) must be t or f"),
            (
                "u",
                Some("(sa"),
                "parameter u (custom parameters): invalid mincode",
            ),
        ];
        for (name, value, message) in cases {
            let mut pairs: Vec<(&str, &str)> =
                base().into_iter().filter(|(k, _)| *k != name).collect();
            if let Some(v) = value {
                pairs.push((name, v));
            }
            let err = parse(&signed(&pairs), 0).unwrap_err();
            assert!(err.message.starts_with(message), "{name}: {}", err.message);
        }
    }

    #[test]
    fn optional_numbers_that_do_not_parse_are_absent() {
        let mut pairs: Vec<(&str, &str)> = base()
            .into_iter()
            .filter(|(k, _)| !matches!(*k, "i" | "k"))
            .collect();
        pairs.push(("i", "not a number"));
        pairs.push(("k", "?"));
        pairs.push(("b", "t"));
        let e = parse(&signed(&pairs), 0).unwrap();
        assert_eq!((e.screen_width, e.device_pixel_ratio), (None, None));
        assert!(e.automated);
    }
}
