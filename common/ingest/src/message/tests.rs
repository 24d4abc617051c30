#![allow(clippy::unwrap_used, deprecated)]

use apache_avro::Schema;
use apache_avro::types::{Record as AvroRecord, Value as Avro};
use serde_json::{Value, json};

use eddy_segment::input::{InputRow, InputValue};
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

const EVERY_TYPE: &str = r#"{"type": "record", "name": "All", "fields": [
    {"name": "n", "type": "null"}, {"name": "b", "type": "boolean"},
    {"name": "i", "type": "int"}, {"name": "l", "type": "long"},
    {"name": "us", "type": {"type": "long", "logicalType": "timestamp-micros"}},
    {"name": "ns", "type": {"type": "long", "logicalType": "timestamp-nanos"}},
    {"name": "d", "type": {"type": "int", "logicalType": "date"}},
    {"name": "f", "type": "float"}, {"name": "x", "type": "double"},
    {"name": "s", "type": "string"}, {"name": "by", "type": "bytes"},
    {"name": "fx", "type": {"type": "fixed", "name": "F3", "size": 3}},
    {"name": "e", "type": {"type": "enum", "name": "E", "symbols": ["A", "B", "C"]}},
    {"name": "u", "type": ["null", "string", "long", "double"]}]}"#;

/// Random values of every type the compiled decoder handles.
fn every_type_datums(schema: &Schema, n: usize) -> Vec<Vec<u8>> {
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    (0..n)
        .map(|_| {
            let r = next();
            let big = next() as i64 >> (r % 60);
            let text: String = (0..r % 7)
                .map(|k| ['a', 'é', '€', '𝄞', ' ', 'Z', '0'][(r as usize >> k) % 7])
                .collect();
            let mut rec = AvroRecord::new(schema).unwrap();
            rec.put("n", Avro::Null);
            rec.put("b", Avro::Boolean(r & 1 == 1));
            rec.put("i", Avro::Int(big as i32));
            rec.put("l", Avro::Long(big));
            rec.put("us", Avro::TimestampMicros(big));
            rec.put("ns", Avro::TimestampNanos(big));
            rec.put("d", Avro::Date((r >> 3) as i32));
            rec.put("f", Avro::Float(big as f32 / 7.0));
            rec.put("x", Avro::Double(big as f64 / 3.0));
            rec.put("s", Avro::String(text.clone()));
            rec.put("by", Avro::Bytes(text.as_bytes().to_vec()));
            rec.put("fx", Avro::Fixed(3, vec![r as u8, (r >> 8) as u8, 0xff]));
            rec.put(
                "e",
                Avro::Enum((r % 3) as u32, ["A", "B", "C"][(r % 3) as usize].into()),
            );
            let u = match r % 4 {
                0 => Avro::Union(0, Box::new(Avro::Null)),
                1 => Avro::Union(1, Box::new(Avro::String(text))),
                2 => Avro::Union(2, Box::new(Avro::Long(big))),
                _ => Avro::Union(3, Box::new(Avro::Double(big as f64 * 1.5))),
            };
            rec.put("u", u);
            apache_avro::to_avro_datum(schema, rec).unwrap()
        })
        .collect()
}

/// The compiled decoder reads every value exactly as apache-avro's generic reader does.
#[test]
fn compiled_avro_reads_what_the_generic_reader_reads() {
    let schema = Schema::parse_str(EVERY_TYPE).unwrap();
    let fields = [
        "n", "b", "i", "l", "us", "ns", "d", "f", "x", "s", "by", "fx", "e", "u",
    ];
    for binary_as_string in [false, true] {
        let d = MessageDecoder::new(&format(json!({"type": "avro_stream",
            "binaryAsString": binary_as_string,
            "avroBytesDecoder": {"type": "schema_inline",
                "schema": serde_json::from_str::<Value>(EVERY_TYPE).unwrap()}})))
        .unwrap()
        .unwrap();
        let mut batch = d.batch();
        for datum in every_type_datums(&schema, 500) {
            let generic = apache_avro::from_avro_datum(&schema, &mut &datum[..], None).unwrap();
            let Avro::Record(generic_fields) = &generic else {
                panic!("not a record");
            };
            let expected = crate::format::avro::AvroRow {
                fields: generic_fields,
                binary_as_string,
            };
            let mut seen = false;
            batch
                .decode(&msg(&datum), &mut |r| {
                    let Record::Row(row) = r else {
                        panic!("the compiled decoder refused a valid datum");
                    };
                    // Out of schema order too, and a field the schema does not have.
                    for f in fields.iter().rev().chain(&fields).chain(&["absent"]) {
                        assert_eq!(row.get(f), expected.get(f), "field {f}");
                    }
                    seen = true;
                    Ok(())
                })
                .unwrap();
            assert!(seen);
        }
    }
}

/// A datum the compiled decoder cannot read is a parse error naming the field.
#[test]
fn compiled_avro_names_the_field_of_a_broken_datum() {
    let schema = Schema::parse_str(EVERY_TYPE).unwrap();
    let d = MessageDecoder::new(&format(json!({"type": "avro_stream",
        "avroBytesDecoder": {"type": "schema_inline",
            "schema": serde_json::from_str::<Value>(EVERY_TYPE).unwrap()}})))
    .unwrap()
    .unwrap();
    let good = every_type_datums(&schema, 1).remove(0);
    let reason = |bytes: &[u8]| decode(&d, &msg(bytes), &["s"]).unwrap_err();
    assert!(
        reason(&good[..good.len() - 1]).contains("field \"u\""),
        "{}",
        reason(&good[..good.len() - 1])
    );
    assert!(
        reason(&[2]).contains("field \"b\": 2 is not a boolean"),
        "{}",
        reason(&[2])
    );
    // b = true, i = 2^31 (zig-zag 2^32): too big for an int.
    let too_big = [1u8, 0x80, 0x80, 0x80, 0x80, 0x10];
    assert!(
        reason(&too_big).contains("field \"i\": 2147483648 does not fit an int"),
        "{}",
        reason(&too_big)
    );
    // The union's branch index is the last varint: 4 is out of range (zig-zag 8).
    let mut bad_branch = good.clone();
    let branch_at = good.len() - union_value_len(&good, &schema);
    bad_branch.truncate(branch_at);
    bad_branch.push(8);
    assert!(
        reason(&bad_branch).contains("field \"u\": union branch 4 is not one of its 4 types"),
        "{}",
        reason(&bad_branch)
    );
}

/// Bytes taken by the last field (the union: branch index and value) of an encoded datum.
fn union_value_len(datum: &[u8], schema: &Schema) -> usize {
    let Avro::Record(fields) = apache_avro::from_avro_datum(schema, &mut &datum[..], None).unwrap()
    else {
        panic!("not a record");
    };
    let (_, u) = fields.last().unwrap();
    let one = Schema::parse_str(r#"["null", "string", "long", "double"]"#).unwrap();
    apache_avro::to_avro_datum(&one, u.clone()).unwrap().len()
}

/// JSON messages read flat give every field exactly as the JSON map does: escapes, unicode,
/// numbers beyond i64, nested arrays and objects, nulls, repeated names (the last wins), and
/// fields asked for out of order; what is not an object keeps its reason.
#[test]
fn flat_json_reads_what_the_json_map_reads() {
    let d = MessageDecoder::new(&format(json!({"type": "json"})))
        .unwrap()
        .unwrap();
    let messages = [
        r#"{"a": "x", "b": 1, "c": -2.5, "d": true, "e": null}"#,
        r#"{"a": "tab\there \"q\" \u00e9 \ud834\udd1e", "b\u0041": 18446744073709551615}"#,
        r#"{"n": [1, "two", [3], {"k": "v"}], "o": {"z": 1, "a": [true]}, "b": 9223372036854775807}"#,
        r#"{"a": "first", "b": 1, "a": "last"}"#,
        r#"{"a": 1e3, "b": -0, "c": 12345678901234567890123}"#,
        r#"{}"#,
    ];
    let fields = ["e", "d", "c", "b", "a", "bA", "n", "o", "missing"];
    for m in messages {
        // Read flat, except the repeated name, which the map path reads.
        assert_eq!(
            super::flat_json::parse(m.as_bytes()).is_some(),
            !m.contains("\"last\""),
            "{m}"
        );
        let map: serde_json::Map<String, Value> = serde_json::from_str(m).unwrap();
        let mut seen = false;
        d.batch()
            .decode(&msg(m.as_bytes()), &mut |r| {
                let Record::Row(row) = r else {
                    panic!("{m} did not read");
                };
                for f in fields.iter().chain(fields.iter().rev()) {
                    assert_eq!(row.get(f), InputRow::get(&map, f), "{m}: field {f}");
                }
                let (mut a, mut b) = (Vec::new(), Vec::new());
                row.field_names(&mut a);
                InputRow::field_names(&map, &mut b);
                assert_eq!(a, b, "{m}");
                seen = true;
                Ok(())
            })
            .unwrap();
        assert!(seen);
    }
    for (m, reason) in [
        ("[1, 2]", "expected a JSON object, got an array"),
        ("{\"a\": 1} trailing", "invalid JSON"),
        ("{\"a\": ", "invalid JSON"),
    ] {
        assert!(
            decode(&d, &msg(m.as_bytes()), &["a"])
                .unwrap_err()
                .contains(reason),
            "{m}"
        );
    }
}

/// Every record of `msgs` decoded in groups (field texts, or the error reason), and the size
/// of each group handed on.
fn decode_grouped(
    d: &MessageDecoder,
    msgs: &[Message<'_>],
) -> (Vec<Result<String, String>>, Vec<usize>) {
    let (mut out, mut sizes) = (Vec::new(), Vec::new());
    let mut batch = d.batch();
    for group in msgs.chunks(super::GROUP) {
        batch
            .decode_group(group, &mut |records| {
                sizes.push(records.len());
                out.extend(records.iter().map(|r| match r {
                    Record::Row(row) => Ok(format!(
                        "{}/{}",
                        row.get("page").as_text().unwrap_or_default(),
                        row.get("uid").as_text().unwrap_or_default()
                    )),
                    Record::Bad { reason, .. } => Err(reason.clone()),
                }));
                Ok(())
            })
            .unwrap();
    }
    (out, sizes)
}

#[test]
fn a_group_of_messages_decodes_as_its_messages_one_by_one() {
    let mut d = MessageDecoder::new(&format(json!({"type": "avro_stream",
        "avroBytesDecoder": {"type": "schema_registry", "url": "http://127.0.0.1:8081/"}})))
    .unwrap()
    .unwrap();
    d.add_schema(9, SCHEMA).unwrap();
    // Good datums between a broken one, one without the framing and one of an unknown schema.
    let values: Vec<Vec<u8>> = (0..40)
        .map(|i| match i % 10 {
            3 => vec![0, 0, 0, 0, 9, 0xff, 0xff],
            5 => b"not framed".to_vec(),
            7 => [vec![0, 0, 0, 0, 8], datum("/x", 1)].concat(),
            _ => [vec![0, 0, 0, 0, 9], datum(&format!("/p{i}"), i)].concat(),
        })
        .collect();
    let msgs: Vec<Message<'_>> = values.iter().map(|v| msg(v)).collect();
    let one_by_one: Vec<Result<String, String>> = msgs
        .iter()
        .map(|m| decode(&d, m, &["page", "uid"]).map(|f| f.join("/")))
        .collect();
    let (grouped, sizes) = decode_grouped(&d, &msgs);
    assert_eq!(grouped, one_by_one);
    assert_eq!(grouped[0], Ok("/p0/0".to_string()));
    assert!(grouped[3].as_ref().unwrap_err().contains("does not decode"));
    assert!(grouped[5].as_ref().unwrap_err().contains("Confluent"));
    assert!(grouped[7].as_ref().unwrap_err().contains("schema 8"));
    // Handed on a group at a time.
    assert_eq!(sizes, [16, 16, 8]);

    // JSON has no grouped decoding: one record at a time, the same records.
    let json = MessageDecoder::new(&format(json!({"type": "json"})))
        .unwrap()
        .unwrap();
    let lines: Vec<Vec<u8>> = (0..20)
        .map(|i| format!(r#"{{"page": "/j{i}", "uid": {i}}}"#).into_bytes())
        .collect();
    let msgs: Vec<Message<'_>> = lines.iter().map(|v| msg(v)).collect();
    let (grouped, sizes) = decode_grouped(&json, &msgs);
    assert_eq!(grouped[19], Ok("/j19/19".to_string()));
    assert_eq!(sizes, vec![1; 20]);
}
