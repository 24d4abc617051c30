use apache_avro::types::Value as Avro;
use http::HeaderMap;
use serde_json::json;

use super::*;
use crate::enrich::Enriched;
use crate::enrich::geo::Geo;
use crate::enrich::referrer::{Campaign, Referrer};
use crate::event::{Event, Source};
use crate::protocol::query::Params;

fn event() -> Event {
    Event {
        source: Source::Browser,
        party_id: "0:k1:party".into(),
        session_id: "0:k1:sess".into(),
        page_view_id: Some("0:pv".into()),
        event_id: "0:pv0".into(),
        event_type: Some("signup".into()),
        new_party: true,
        first_in_session: false,
        client_timestamp: 1_796_029_200_000,
        timestamp: 1_796_029_200_123,
        location: Some("https://shop.example/p/7?exp=b&utm_source=news".into()),
        referer: None,
        viewport_width: Some(1200),
        viewport_height: None,
        screen_width: Some(1920),
        screen_height: Some(1080),
        device_pixel_ratio: Some(1.5),
        parameters: Some(json!({"plan": "pro", "seats": "12", "cart": {"total": 99.5}})),
        corrupt: false,
        duplicate: true,
        automated: false,
        cookieless: false,
    }
}

fn enriched() -> Enriched {
    Enriched {
        user_agent: None,
        bot: Some("headless browser"),
        referrer: Some(Referrer {
            class: "direct",
            host: None,
        }),
        campaign: Campaign {
            source: Some("news".into()),
            ..Campaign::default()
        },
        geo: Some(Geo {
            country_code: Some("NL".into()),
            latitude: Some(52.37),
            ..Geo::default()
        }),
    }
}

fn decode(schema: &apache_avro::Schema, bytes: &[u8]) -> Vec<(String, Avro)> {
    let mut reader = bytes;
    #[allow(deprecated)]
    match apache_avro::from_avro_datum(schema, &mut reader, None).unwrap() {
        Avro::Record(fields) => {
            assert!(reader.is_empty(), "trailing bytes");
            fields
        }
        other => panic!("not a record: {other:?}"),
    }
}

fn field<'a>(fields: &'a [(String, Avro)], name: &str) -> &'a Avro {
    &fields
        .iter()
        .find(|(k, _)| k == name)
        .unwrap_or_else(|| panic!("no field {name}"))
        .1
}

fn unwrap_union(v: &Avro) -> &Avro {
    match v {
        Avro::Union(_, inner) => inner,
        other => other,
    }
}

#[test]
fn the_default_mapping_fills_the_default_schema() {
    let mapping = Mapping::compile(DEFAULT_SCHEMA, DEFAULT_MAPPING).unwrap();
    let needs = mapping.needs();
    assert!(needs.user_agent && needs.bot && needs.referrer && needs.campaign && needs.geo);
    let (ev, en, headers) = (event(), enriched(), HeaderMap::new());
    let ctx = Context {
        event: &ev,
        enriched: &en,
        remote_host: Some("81.2.69.0"),
        user_agent: Some("Mozilla/5.0"),
        headers: &headers,
        query: None,
    };
    let encoder = Encoder::new(mapping, Framing::Naked, 0);
    let bytes = encoder.message(&ctx).unwrap();
    let fields = decode(encoder.mapping.schema(), &bytes);
    assert_eq!(
        field(&fields, "timestamp"),
        &Avro::TimestampMillis(1_796_029_200_123)
    );
    assert_eq!(field(&fields, "eventType"), &Avro::String("signup".into()));
    assert_eq!(field(&fields, "newParty"), &Avro::Boolean(true));
    assert_eq!(field(&fields, "detectedDuplicate"), &Avro::Boolean(true));
    assert_eq!(unwrap_union(field(&fields, "referer")), &Avro::Null);
    assert_eq!(
        unwrap_union(field(&fields, "screenPixelWidth")),
        &Avro::Int(1920)
    );
    assert_eq!(
        unwrap_union(field(&fields, "devicePixelRatio")),
        &Avro::Double(1.5)
    );
    assert_eq!(
        unwrap_union(field(&fields, "remoteHost")),
        &Avro::String("81.2.69.0".into())
    );
    assert_eq!(field(&fields, "isBot"), &Avro::Boolean(true));
    assert_eq!(
        unwrap_union(field(&fields, "botReason")),
        &Avro::String("headless browser".into())
    );
    assert_eq!(
        field(&fields, "refererClass"),
        &Avro::String("direct".into())
    );
    assert_eq!(
        unwrap_union(field(&fields, "utmSource")),
        &Avro::String("news".into())
    );
    assert_eq!(
        unwrap_union(field(&fields, "geoCountryCode")),
        &Avro::String("NL".into())
    );
    assert_eq!(
        unwrap_union(field(&fields, "geoLatitude")),
        &Avro::Double(52.37)
    );
    assert_eq!(unwrap_union(field(&fields, "userAgentFamily")), &Avro::Null);
    let params = unwrap_union(field(&fields, "eventParameters"));
    let Avro::String(text) = params else {
        panic!("{params:?}")
    };
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(text).unwrap(),
        ev.parameters.clone().unwrap()
    );
}

const SMALL: &str = r#"{"type": "record", "name": "R", "fields": [
    {"name": "ts", "type": "long"},
    {"name": "plan", "type": ["null", "string"], "default": null},
    {"name": "seats", "type": "int", "default": 1},
    {"name": "total", "type": ["null", "double"], "default": null},
    {"name": "consent", "type": ["null", "string"], "default": null},
    {"name": "lang", "type": ["null", "string"], "default": null},
    {"name": "path", "type": ["null", "string"], "default": null},
    {"name": "exp", "type": ["null", "string"], "default": null},
    {"name": "build", "type": ["null", "string"], "default": null},
    {"name": "site", "type": "string"},
    {"name": "tags", "type": {"type": "array", "items": "string"}, "default": []}
]}"#;

#[test]
fn sources_read_parameters_headers_cookies_urls_and_literals() {
    let mapping = Mapping::compile(
        SMALL,
        r#"[fields]
ts = "timestamp"
plan = { param = "plan" }
seats = { param = "seats" }
total = { param = "cart.total" }
consent = { cookie = "consent" }
lang = { header = "Accept-Language", pick = "last" }
path = { url = "location", part = "path" }
exp = { url = "location", query = "exp" }
build = { query = "bv" }
site = { value = "shop" }
"#,
    )
    .unwrap();
    let (ev, en) = (event(), enriched());
    let mut headers = HeaderMap::new();
    headers.insert("cookie", "a=1; consent=yes".parse().unwrap());
    headers.append("accept-language", "en".parse().unwrap());
    headers.append("accept-language", "nl".parse().unwrap());
    let query = Params::parse("bv=42&x=1");
    let ctx = Context {
        event: &ev,
        enriched: &en,
        remote_host: None,
        user_agent: None,
        headers: &headers,
        query: Some(&query),
    };
    let mut out = Vec::new();
    mapping.encode(&ctx, &mut out).unwrap();
    let fields = decode(mapping.schema(), &out);
    let text = |n: &str| match unwrap_union(field(&fields, n)) {
        Avro::String(s) => s.clone(),
        other => panic!("{n}: {other:?}"),
    };
    assert_eq!(text("plan"), "pro");
    assert_eq!(
        field(&fields, "seats"),
        &Avro::Int(12),
        "a numeric string converts"
    );
    assert_eq!(unwrap_union(field(&fields, "total")), &Avro::Double(99.5));
    assert_eq!(text("consent"), "yes");
    assert_eq!(text("lang"), "nl");
    assert_eq!(text("path"), "/p/7");
    assert_eq!(text("exp"), "b");
    assert_eq!(text("build"), "42");
    assert_eq!(text("site"), "shop");
    assert_eq!(
        field(&fields, "tags"),
        &Avro::Array(vec![]),
        "unmapped fields take their default"
    );
}

#[test]
fn a_parameter_that_does_not_convert_fails_the_event_and_names_the_field() {
    let mapping = Mapping::compile(
        SMALL,
        "[fields]\nts = \"timestamp\"\nseats = { param = \"plan\" }\nsite = { value = \"s\" }\n",
    )
    .unwrap();
    let (ev, en, headers) = (event(), enriched(), HeaderMap::new());
    let ctx = Context {
        event: &ev,
        enriched: &en,
        remote_host: None,
        user_agent: None,
        headers: &headers,
        query: None,
    };
    let mut out = vec![7];
    let err = mapping.encode(&ctx, &mut out).unwrap_err();
    assert_eq!(
        err,
        r#"field seats: a string ("pro") cannot be written as int"#
    );
    assert_eq!(out, vec![7], "nothing of the failed record stays");
}

#[test]
fn start_up_errors_name_the_field() {
    let cases = [
        (
            "[fields]\nts = \"timestamp\"\nsite = \"eventType\"\n",
            "mapping field site: eventType may be absent, but the schema field is string without a default",
        ),
        (
            "[fields]\nts = \"eventId\"\nsite = { value = \"s\" }\n",
            "mapping field ts: eventId is a string, but the schema field is long",
        ),
        (
            "[fields]\nts = \"timestamp\"\nsite = { value = \"s\" }\nnope = \"partyId\"\n",
            "mapping field nope: the schema has no field nope",
        ),
        (
            "[fields]\nts = \"timestamp\"\nsite = \"partyid\"\n",
            "mapping field site: unknown source \"partyid\"",
        ),
        (
            "[fields]\nts = \"timestamp\"\n",
            "schema field site: not mapped and has no default",
        ),
        (
            "[fields]\nts = \"timestamp\"\nsite = { value = \"s\" }\ntags = \"partyId\"\n",
            "mapping field tags: the schema field has type array",
        ),
        (
            "[fields]\nts = \"timestamp\"\nsite = { value = \"s\" }\nseats = { value = \"many\" }\n",
            "mapping field seats: a string (\"many\") cannot be written as int",
        ),
        (
            "[fields]\nts = \"timestamp\"\nsite = { header = \"X\", pick = \"middle\" }\n",
            "mapping field site: pick must be first, last or all",
        ),
        (
            "[fields]\nts = \"timestamp\"\nsite = { url = \"location\" }\n",
            "mapping field site: a url source needs part or query",
        ),
        (
            "[fields]\nts = \"timestamp\"\nsite = { param = \"a\", cookie = \"b\" }\n",
            "mapping field site: give exactly one of param, cookie, query, value",
        ),
        (
            "[fields]\nts = 3\n",
            "mapping field ts: expected a source name or a table",
        ),
        ("[field]\n", "the mapping is not valid"),
    ];
    for (mapping, want) in cases {
        let err = Mapping::compile(SMALL, mapping)
            .err()
            .unwrap_or_else(|| panic!("accepted: {mapping}"));
        assert!(
            err.lines().any(|l| l.starts_with(want)),
            "{mapping}\n=> {err}\nwanted: {want}"
        );
    }
    let err = Mapping::compile("{\"type\": \"string\"}", "[fields]\n")
        .err()
        .unwrap();
    assert_eq!(err, "the schema must be a record");
    let several = Mapping::compile(SMALL, "[fields]\nts = \"eventId\"\nx = \"partyId\"\n")
        .err()
        .unwrap();
    assert_eq!(
        several.lines().count(),
        3,
        "every problem is reported: {several}"
    );
}

#[test]
fn confluent_framing_prefixes_the_schema_id() {
    let mapping = Mapping::compile(
        SMALL,
        "[fields]\nts = \"timestamp\"\nsite = { value = \"s\" }\n",
    )
    .unwrap();
    let (ev, en, headers) = (event(), enriched(), HeaderMap::new());
    let ctx = Context {
        event: &ev,
        enriched: &en,
        remote_host: None,
        user_agent: None,
        headers: &headers,
        query: None,
    };
    let encoder = Encoder::new(mapping, Framing::Confluent, 258);
    let bytes = encoder.message(&ctx).unwrap();
    assert_eq!(&bytes[..5], &[0, 0, 0, 1, 2]);
    let fields = decode(encoder.mapping.schema(), &bytes[5..]);
    assert_eq!(field(&fields, "ts"), &Avro::Long(1_796_029_200_123));
}
