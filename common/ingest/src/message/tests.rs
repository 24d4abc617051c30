#![allow(clippy::unwrap_used, deprecated)]

use apache_avro::Schema;
use apache_avro::types::{Record as AvroRecord, Value as Avro};
use serde_json::{Value, json};

use eddy_segment::input::InputValue;
use eddy_types::spec::ingest::InputFormat;

use super::{Message, MessageDecoder};
use crate::format::Record;

const SCHEMA: &str = r#"{"type": "record", "name": "Click", "fields": [
    {"name": "ts", "type": "long"}, {"name": "page", "type": "string"},
    {"name": "uid", "type": ["null", "long"], "default": null}]}"#;

fn datum(page: &str, uid: i64) -> Vec<u8> {
    let schema = Schema::parse_str(SCHEMA).unwrap();
    let mut r = AvroRecord::new(&schema).unwrap();
    r.put("ts", Avro::Long(1_700_000_000_000));
    r.put("page", Avro::String(page.into()));
    r.put("uid", Avro::Union(1, Box::new(Avro::Long(uid))));
    apache_avro::to_avro_datum(&schema, r).unwrap()
}

fn format(v: Value) -> InputFormat {
    serde_json::from_value(v).unwrap()
}

fn msg(value: &[u8]) -> Message<'_> {
    Message {
        value,
        key: Some(b"k1"),
        timestamp: 42,
        topic: "clicks",
        headers: &[],
    }
}

/// Decodes and returns (field -> text) of the row, or the error reason.
fn decode(d: &MessageDecoder, m: &Message<'_>, fields: &[&str]) -> Result<Vec<String>, String> {
    let mut out = Err("nothing came out".to_string());
    d.batch()
        .decode(m, &mut |r| {
            out = match r {
                Record::Row(row) => Ok(fields
                    .iter()
                    .map(|f| match row.get(f) {
                        InputValue::Null => "null".into(),
                        v => v.as_text().map(|t| t.into_owned()).unwrap_or_default(),
                    })
                    .collect()),
                Record::Bad { reason, .. } => Err(reason),
            };
            Ok(())
        })
        .unwrap();
    out
}

#[test]
fn avro_with_an_inline_schema() {
    let d = MessageDecoder::new(&format(json!({"type": "avro_stream",
        "avroBytesDecoder": {"type": "schema_inline", "schema": serde_json::from_str::<Value>(SCHEMA).unwrap()}})))
    .unwrap()
    .unwrap();
    let bytes = datum("/home", 7);
    assert_eq!(
        decode(&d, &msg(&bytes), &["page", "uid", "ts"]).unwrap(),
        ["/home", "7", "1700000000000"]
    );
    let err = decode(&d, &msg(b"\xff\xff\xff"), &["page"]).unwrap_err();
    assert!(err.contains("does not decode"), "{err}");
}

#[test]
fn avro_with_the_schema_registry_framing() {
    let mut d = MessageDecoder::new(&format(json!({"type": "avro_stream",
        "avroBytesDecoder": {"type": "schema_registry", "url": "http://127.0.0.1:8081/"}})))
    .unwrap()
    .unwrap();
    assert_eq!(d.registry_url(), Some("http://127.0.0.1:8081"));
    let mut framed = vec![0, 0, 0, 0, 9];
    framed.extend(datum("/cart", 3));
    assert_eq!(d.missing_schemas([framed.as_slice()].into_iter()), vec![9]);
    let err = decode(&d, &msg(&framed), &["page"]).unwrap_err();
    assert!(err.contains("schema 9"), "{err}");
    d.add_schema(9, SCHEMA).unwrap();
    assert!(
        d.missing_schemas([framed.as_slice()].into_iter())
            .is_empty()
    );
    assert_eq!(
        decode(&d, &msg(&framed), &["page", "uid"]).unwrap(),
        ["/cart", "3"]
    );
    let err = decode(&d, &msg(b"{\"not\": \"framed\"}"), &["page"]).unwrap_err();
    assert!(err.contains("Confluent"), "{err}");
    assert!(
        d.add_schema(10, "{not avro")
            .unwrap_err()
            .contains("schema 10")
    );
}

#[test]
fn the_kafka_wrapper_adds_key_timestamp_topic_and_headers() {
    let d = MessageDecoder::new(&format(
        json!({"type": "kafka", "valueFormat": {"type": "json"}}),
    ))
    .unwrap()
    .unwrap();
    let headers = vec![("source".to_string(), Some(b"web".to_vec()))];
    let m = Message {
        headers: &headers,
        ..msg(br#"{"page": "/a"}"#)
    };
    assert_eq!(
        decode(
            &d,
            &m,
            &[
                "page",
                "kafka.key",
                "kafka.timestamp",
                "kafka.topic",
                "kafka.header.source"
            ]
        )
        .unwrap(),
        ["/a", "k1", "42", "clicks", "web"]
    );
    let custom = MessageDecoder::new(&format(
        json!({"type": "kafka", "valueFormat": {"type": "json"},
        "keyColumnName": "key", "timestampColumnName": "kts", "headerColumnPrefix": "h_"}),
    ))
    .unwrap()
    .unwrap();
    assert_eq!(
        decode(&custom, &m, &["key", "kts", "h_source"]).unwrap(),
        ["k1", "42", "web"]
    );
    assert!(MessageDecoder::new(&format(json!({"type": "kafka", "valueFormat": {"type": "kafka", "valueFormat": {"type": "json"}}}))).is_err());
}

#[test]
fn bad_schemas_and_json_are_named() {
    let err = MessageDecoder::new(&format(json!({"type": "avro_stream",
        "avroBytesDecoder": {"type": "schema_inline", "schema": {"type": "record"}}})))
    .err()
    .unwrap()
    .to_string();
    assert!(
        err.contains("spec.ioConfig.inputFormat.avroBytesDecoder.schema"),
        "{err}"
    );
    let d = MessageDecoder::new(&format(json!({"type": "json"})))
        .unwrap()
        .unwrap();
    assert!(
        decode(&d, &msg(b"[1]"), &["a"])
            .unwrap_err()
            .contains("got an array")
    );
    assert!(
        MessageDecoder::new(&format(json!({"type": "csv", "columns": ["a"]})))
            .unwrap()
            .is_none()
    );
}
