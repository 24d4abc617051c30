//! Enrichment and privacy end to end: geo-IP with hot reload, IP truncation, Do-Not-Track and
//! GPC, bot flags, cookieless parties and sessions, and a custom mapping.

// Test code: a failed unwrap is a failed assertion.
#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;

use eddy_collector::config::BotPolicy;
use eddy_collector::enrich::mmdb_writer::MmdbWriter;
use eddy_collector::privacy::DoNotTrack;
use support::{CHROME, TestCollector, config, event, eventually, signed};

fn city_db(country: &str, city: &str) -> Vec<u8> {
    let mut w = MmdbWriter::new("GeoIP2-City");
    w.insert(
        "81.2.69.0".parse().unwrap(),
        24,
        &json!({"country": {"iso_code": country, "names": {"en": format!("{country} land")}},
                "continent": {"code": "EU"}, "city": {"names": {"en": city}},
                "location": {"latitude": 51.5, "longitude": -0.1, "time_zone": "Europe/London"}}),
    )
    .unwrap();
    w.finish()
}

#[tokio::test]
async fn geo_ip_reads_the_forwarded_address_truncates_it_and_reloads_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("city.mmdb");
    std::fs::write(&db, city_db("GB", "London")).unwrap();
    let mut cfg = config();
    cfg.geo.database = Some(db.clone());
    cfg.geo.reload_interval_ms = 50;
    cfg.use_x_forwarded_for = true;
    cfg.privacy.anonymize_ip = true;
    let c = TestCollector::start(cfg).await;
    let forwarded = [("X-Forwarded-For", "10.9.9.9, 81.2.69.160")];
    assert_eq!(
        c.pixel(&signed(&event("kim", "0:pv0", &[])), &forwarded)
            .await
            .status(),
        StatusCode::OK
    );
    let e = &c.events().await[0];
    assert_eq!(e["geoCountryCode"], "GB");
    assert_eq!(e["geoCountryName"], "GB land");
    assert_eq!(e["geoCityName"], "London");
    assert_eq!(e["geoContinentCode"], "EU");
    assert_eq!(e["geoLatitude"], 51.5);
    assert_eq!(e["geoTimeZone"], "Europe/London");
    assert_eq!(
        e["remoteHost"], "81.2.69.0",
        "the rightmost forwarded address, truncated after the lookup"
    );

    // A new database file is picked up without a restart; a broken one is ignored.
    let staged = dir.path().join("city.mmdb.new");
    std::fs::write(&staged, city_db("IE", "Dublin")).unwrap();
    std::fs::rename(&staged, &db).unwrap();
    let mut n = 0;
    eventually(Duration::from_secs(10), "the new database answers", || {
        n += 1;
        let q = signed(&event("kim", &format!("0:pv{n}"), &[]));
        let c = &c;
        async move {
            c.pixel(&q, &forwarded).await;
            c.events()
                .await
                .last()
                .is_some_and(|e| e["geoCityName"] == "Dublin")
        }
    })
    .await;
    std::fs::write(&db, b"not a database").unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    c.pixel(&signed(&event("kim", "0:pv-last", &[])), &forwarded)
        .await;
    assert_eq!(c.events().await.last().unwrap()["geoCityName"], "Dublin");
    assert!(c.metric("eddy_collector_geo_reload_failures_total").await >= 1.0);
}

#[tokio::test]
async fn do_not_track_is_ignored_dropped_or_anonymised_as_configured() {
    let dnt = [("DNT", "1")];
    let gpc = [("Sec-GPC", "1")];
    let c = TestCollector::start(config()).await;
    c.pixel(&signed(&event("lee", "0:pv0", &[])), &dnt).await;
    assert_eq!(
        c.events().await[0]["partyId"],
        "0:mf3k2a1b:lee",
        "ignored by default"
    );
    drop(c);

    let mut cfg = config();
    cfg.privacy.do_not_track = DoNotTrack::Drop;
    let c = TestCollector::start(cfg).await;
    let metric = "eddy_collector_events_total{outcome=\"discarded_do_not_track\"}";
    let before = c.metric(metric).await;
    assert_eq!(
        c.pixel(&signed(&event("lee", "0:pv0", &[])), &gpc)
            .await
            .status(),
        StatusCode::OK
    );
    assert!(c.records("clicks").await.is_empty());
    assert_eq!(c.metric(metric).await - before, 1.0, "counted, not silent");
    drop(c);

    let mut cfg = config();
    cfg.privacy.do_not_track = DoNotTrack::Anonymize;
    let c = TestCollector::start(cfg).await;
    for i in 0..2 {
        c.pixel(
            &signed(&event("lee", &format!("0:pv{i}"), &[])),
            &[("DNT", "1"), ("User-Agent", CHROME)],
        )
        .await;
    }
    let events = c.events().await;
    assert_eq!(events[0]["remoteHost"], json!(null));
    assert_ne!(
        events[0]["partyId"], "0:mf3k2a1b:lee",
        "the sent id is replaced by a cookieless one"
    );
    assert_eq!(events[0]["partyId"], events[1]["partyId"]);
    assert_eq!(events[0]["sessionId"], events[1]["sessionId"]);
    assert_eq!(
        (
            events[0]["firstInSession"].clone(),
            events[1]["firstInSession"].clone()
        ),
        (json!(true), json!(false))
    );
}

#[tokio::test]
async fn bots_are_flagged_or_dropped() {
    let headless = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/131.0.0.0 Safari/537.36";
    let c = TestCollector::start(config()).await;
    c.pixel(
        &signed(&event("max", "0:pv0", &[])),
        &[("User-Agent", headless)],
    )
    .await;
    c.pixel(
        &signed(&event("max", "0:pv1", &[("b", "t")])),
        &[("User-Agent", CHROME)],
    )
    .await;
    c.pixel(
        &signed(&event("max", "0:pv2", &[])),
        &[(
            "User-Agent",
            "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
        )],
    )
    .await;
    c.pixel(
        &signed(&event("max", "0:pv3", &[])),
        &[("User-Agent", CHROME)],
    )
    .await;
    let flags: Vec<(bool, Option<String>)> = c
        .events()
        .await
        .iter()
        .map(|e| {
            (
                e["isBot"].as_bool().unwrap(),
                e["botReason"].as_str().map(str::to_string),
            )
        })
        .collect();
    assert_eq!(
        flags,
        [
            (true, Some("headless browser".to_string())),
            (true, Some("webdriver".to_string())),
            (true, Some("known crawler".to_string())),
            (false, None)
        ]
    );
    drop(c);

    let mut cfg = config();
    cfg.bots = BotPolicy::Drop;
    let c = TestCollector::start(cfg).await;
    c.pixel(
        &signed(&event("max", "0:pv0", &[])),
        &[("User-Agent", headless)],
    )
    .await;
    c.pixel(
        &signed(&event("max", "0:pv1", &[])),
        &[("User-Agent", CHROME)],
    )
    .await;
    assert_eq!(c.events().await.len(), 1);
}

#[tokio::test]
async fn cookieless_events_get_parties_and_sessions_from_the_server() {
    let mut cfg = config();
    cfg.tracker.session_timeout_minutes = 30;
    let c = TestCollector::start(cfg).await;
    let ua = [("User-Agent", CHROME)];
    c.pixel(&signed(&event("one-page-load", "0:a0", &[("z", "t")])), &ua)
        .await;
    c.pixel(
        &signed(&event("another-page-load", "0:b0", &[("z", "t")])),
        &ua,
    )
    .await;
    c.pixel(
        &signed(&event("third", "0:c0", &[("z", "t")])),
        &[("User-Agent", "Mozilla/5.0 (Macintosh) Firefox/128.0")],
    )
    .await;
    let e = c.events().await;
    assert_eq!(
        e[0]["partyId"], e[1]["partyId"],
        "same site, address and browser: one visitor today"
    );
    assert_ne!(e[0]["partyId"], e[2]["partyId"]);
    assert_eq!(e[0]["sessionId"], e[1]["sessionId"]);
    assert_eq!(
        (
            e[0]["firstInSession"].clone(),
            e[1]["firstInSession"].clone()
        ),
        (json!(true), json!(false))
    );
    assert_eq!(
        (e[0]["newParty"].clone(), e[1]["newParty"].clone()),
        (json!(true), json!(false))
    );
    assert!(
        eddy_collector::protocol::ids::Identifier::parse(e[0]["partyId"].as_str().unwrap())
            .is_some()
    );
}

#[tokio::test]
async fn a_custom_mapping_writes_a_custom_record() {
    let dir = tempfile::tempdir().unwrap();
    let schema = dir.path().join("orders.avsc");
    std::fs::write(
        &schema,
        r#"{"type": "record", "name": "Order", "fields": [
        {"name": "ts", "type": "long"},
        {"name": "party", "type": "string"},
        {"name": "amount", "type": ["null", "double"], "default": null},
        {"name": "plan", "type": "string", "default": "free"},
        {"name": "page", "type": ["null", "string"], "default": null},
        {"name": "site", "type": "string"}]}"#,
    )
    .unwrap();
    let mapping = dir.path().join("orders.toml");
    std::fs::write(
        &mapping,
        r#"[fields]
ts = "timestamp"
party = "partyId"
amount = { param = "cart.total" }
plan = { param = "plan" }
page = { url = "location", part = "path" }
site = { value = "tea-shop" }
"#,
    )
    .unwrap();
    let mut cfg = config();
    cfg.schema_file = Some(schema.clone());
    cfg.mapping_file = Some(mapping);
    let c = TestCollector::start(cfg).await;
    c.pixel(
        &signed(&event(
            "nina",
            "0:pv0",
            &[("u", "((cart!jtotal!12.5!)splan!pro!)")],
        )),
        &[],
    )
    .await;
    c.pixel(
        &signed(&event("nina", "0:pv1", &[("u", "((cart!stotal!lots!))")])),
        &[],
    )
    .await;
    let records = c.records("clicks").await;
    assert_eq!(records.len(), 1, "the second event's total is not a number");
    let parsed =
        apache_avro::Schema::parse_str(&std::fs::read_to_string(&schema).unwrap()).unwrap();
    let mut reader = &records[0].value[..];
    #[allow(deprecated)]
    let value = apache_avro::from_avro_datum(&parsed, &mut reader, None).unwrap();
    let apache_avro::types::Value::Record(fields) = value else {
        panic!("not a record")
    };
    let get = |n: &str| fields.iter().find(|(k, _)| k == n).unwrap().1.clone();
    use apache_avro::types::Value as A;
    assert_eq!(get("party"), A::String("0:mf3k2a1b:nina".into()));
    assert_eq!(get("amount"), A::Union(1, Box::new(A::Double(12.5))));
    assert_eq!(get("plan"), A::String("pro".into()));
    assert_eq!(
        get("page"),
        A::Union(1, Box::new(A::String("/p/42".into())))
    );
    assert_eq!(get("site"), A::String("tea-shop".into()));
    let bad = c.bad_rows().await;
    assert_eq!(bad[0]["kind"], "mapping_failure");
    assert_eq!(
        bad[0]["message"],
        "field amount: a string (\"lots\") cannot be written as double"
    );
}
