//! Every input format read end to end through the row pipeline.

// Test code: a failed unwrap is a failed assertion.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use serde_json::{Value, json};

use eddy_ingest::format::{self, Record};
use eddy_ingest::source::{self, Entity};
use eddy_ingest::{Processed, RowPipeline};
use eddy_segment::input::InputValue;
use eddy_types::spec::ingest::{DataSchema, InputFormat, InputSource};

fn schema(extra: Value) -> DataSchema {
    let mut base = json!({"dataSource": "t", "timestampSpec": {"column": "ts", "format": "auto"}});
    for (k, v) in extra.as_object().unwrap() {
        base[k] = v.clone();
    }
    serde_json::from_value(base).unwrap()
}

/// Reads an entity and returns (time, page, added) for kept rows plus counts of bad rows.
fn run(
    entity: &Entity,
    fmt: Value,
    schema: &DataSchema,
) -> (Vec<(i64, Value, Value)>, usize, usize) {
    let fmt: InputFormat = serde_json::from_value(fmt).unwrap();
    format::validate(&fmt).unwrap();
    let pipeline = RowPipeline::new(schema, None).unwrap();
    let bytes = Arc::new(AtomicU64::new(0));
    let mut kept = Vec::new();
    let (mut bad, mut dropped) = (0, 0);
    format::read(entity, &fmt, &bytes, &mut |rec| {
        match rec {
            Record::Bad { .. } => bad += 1,
            Record::Row(r) => match pipeline.process(r) {
                Processed::Keep { time, row } => {
                    use eddy_segment::input::InputRow;
                    let json = |v: InputValue<'_>| match v {
                        InputValue::Null => Value::Null,
                        InputValue::Str(s) => json!(s),
                        InputValue::Long(i) => json!(i),
                        InputValue::Double(f) => json!(f),
                        InputValue::Bool(b) => json!(b),
                        InputValue::List(l) => json!(l.len()),
                    };
                    kept.push((time, json(row.get("page")), json(row.get("added"))));
                }
                Processed::ThrownAway => dropped += 1,
                Processed::Unparseable(_) => bad += 1,
            },
        }
        Ok(())
    })
    .unwrap();
    assert!(std::sync::atomic::AtomicU64::load(&bytes, std::sync::atomic::Ordering::Relaxed) > 0);
    (kept, bad, dropped)
}

const T: i64 = 1_377_907_200_000; // 2013-08-31

#[test]
fn json_with_flatten_transform_and_filter() {
    let data = "{\"ts\":\"2013-08-31T00:00:00Z\",\"page\":\"a\",\"geo\":{\"c\":\"x\"},\"added\":5}\n\nnot json\n[1]\n{\"ts\":1377907200001,\"page\":\"skip\",\"added\":1}\n{\"page\":\"nots\"}\n";
    let s = schema(json!({"transformSpec": {
        "transforms": [{"type": "expression", "name": "page", "expression": "concat(upper(page), '-', city)"}],
        "filter": {"type": "not", "field": {"type": "selector", "dimension": "page", "value": "SKIP-"}}
    }}));
    let fmt = json!({"type": "json", "flattenSpec": {"fields": [{"type": "path", "name": "city", "expr": "$.geo.c"}]}});
    let (kept, bad, dropped) = run(&Entity::Inline(data.into()), fmt, &s);
    // "SKIP-" + null city is null, so the not(selector) is unknown and the row is dropped too.
    assert_eq!(kept, vec![(T, json!("A-x"), json!(5))]);
    assert_eq!(bad, 3, "not json, an array, and a row without a timestamp");
    assert_eq!(dropped, 1);
}

#[test]
fn csv_and_tsv_with_headers_and_lists() {
    let csv = "ts,page,added\n2013-08-31T00:00:00Z,\"a,b\",3\n2013-08-31T00:00:01Z,,4\nbad,row\n";
    let (kept, bad, _) = run(
        &Entity::Inline(csv.into()),
        json!({"type": "csv", "findColumnsFromHeader": true}),
        &schema(json!({})),
    );
    assert_eq!(
        kept,
        vec![
            (T, json!("a,b"), json!("3")),
            (T + 1000, Value::Null, json!("4"))
        ]
    );
    assert_eq!(bad, 1);
    let tsv = "skip me\n2013-08-31T00:00:00Z\tx|y\t7\n";
    let fmt = json!({"type": "tsv", "columns": ["ts", "page", "added"], "skipHeaderRows": 1, "listDelimiter": "|"});
    let (kept, _, _) = run(&Entity::Inline(tsv.into()), fmt, &schema(json!({})));
    assert_eq!(kept, vec![(T, json!(2), json!("7"))]);
    let missing: InputFormat = serde_json::from_value(json!({"type": "csv"})).unwrap();
    assert!(
        format::validate(&missing)
            .unwrap_err()
            .to_string()
            .contains("findColumnsFromHeader")
    );
}

#[test]
fn parquet_files() {
    use arrow::array::{Int32Array, RecordBatch, StringArray, TimestampSecondArray};
    use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.parquet");
    let schema_arrow = Arc::new(Schema::new(vec![
        Field::new("ts", DataType::Timestamp(TimeUnit::Second, None), false),
        Field::new("page", DataType::Utf8, true),
        Field::new("added", DataType::Int32, true),
    ]));
    let batch = RecordBatch::try_new(
        schema_arrow.clone(),
        vec![
            Arc::new(TimestampSecondArray::from(vec![T / 1000, T / 1000 + 1])),
            Arc::new(StringArray::from(vec![Some("p"), None])),
            Arc::new(Int32Array::from(vec![Some(1), Some(2)])),
        ],
    )
    .unwrap();
    let mut w = parquet::arrow::ArrowWriter::try_new(
        std::fs::File::create(&path).unwrap(),
        schema_arrow,
        None,
    )
    .unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
    let (kept, bad, _) = run(
        &Entity::File(path),
        json!({"type": "parquet"}),
        &schema(json!({})),
    );
    assert_eq!(bad, 0);
    assert_eq!(
        kept,
        vec![(T, json!("p"), json!(1)), (T + 1000, Value::Null, json!(2))]
    );
}

#[test]
fn avro_container_files() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.avro");
    let schema = apache_avro::Schema::parse_str(
        r#"{"type":"record","name":"r","fields":[{"name":"ts","type":"long"},{"name":"page","type":["null","string"]},{"name":"added","type":"int"}]}"#,
    )
    .unwrap();
    let mut w = apache_avro::Writer::new(&schema, std::fs::File::create(&path).unwrap()).unwrap();
    for (i, page) in [Some("a"), None].iter().enumerate() {
        let mut r = apache_avro::types::Record::new(&schema).unwrap();
        r.put("ts", T + i as i64);
        r.put("page", page.map(str::to_string));
        r.put("added", i as i32 * 10);
        w.append_value(r).unwrap();
    }
    w.flush().unwrap();
    drop(w);
    let (kept, bad, _) = run(
        &Entity::File(path),
        json!({"type": "avro_ocf"}),
        &self::schema(json!({})),
    );
    assert_eq!(bad, 0);
    assert_eq!(
        kept,
        vec![(T, json!("a"), json!(0)), (T + 1, Value::Null, json!(10))]
    );
}

#[test]
fn timestamp_formats() {
    let rows = "{\"ts\":1377907200}\n{\"ts\":\"31/08/2013 00:00\"}\n";
    let posix = schema(json!({"timestampSpec": {"column": "ts", "format": "posix"}}));
    let (kept, bad, _) = run(
        &Entity::Inline(rows.lines().next().unwrap().into()),
        json!({"type": "json"}),
        &posix,
    );
    assert_eq!((kept[0].0, bad), (T, 0));
    let joda = schema(json!({"timestampSpec": {"column": "ts", "format": "dd/MM/yyyy HH:mm"}}));
    let (kept, bad, _) = run(
        &Entity::Inline(rows.lines().nth(1).unwrap().into()),
        json!({"type": "json"}),
        &joda,
    );
    assert_eq!((kept[0].0, bad), (T, 0));
    let missing =
        schema(json!({"timestampSpec": {"column": "nope", "missingValue": "2013-08-31"}}));
    let (kept, _, _) = run(
        &Entity::Inline("{\"a\":1}".into()),
        json!({"type": "json"}),
        &missing,
    );
    assert_eq!(kept[0].0, T);
}

#[test]
fn local_sources_list_files_by_glob() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    for f in ["a.json", "b.json", "c.csv", "sub/d.json"] {
        std::fs::write(dir.path().join(f), "{}").unwrap();
    }
    let src: InputSource =
        serde_json::from_value(json!({"type": "local", "baseDir": dir.path(), "filter": "*.json"}))
            .unwrap();
    let names: Vec<String> = source::list(&src)
        .unwrap()
        .iter()
        .map(|e| e.name())
        .collect();
    assert_eq!(names.len(), 3, "{names:?}");
    let none: InputSource =
        serde_json::from_value(json!({"type": "local", "baseDir": dir.path(), "filter": "*.xml"}))
            .unwrap();
    assert!(
        source::list(&none)
            .unwrap_err()
            .to_string()
            .contains("*.xml")
    );
    let gone: InputSource =
        serde_json::from_value(json!({"type": "local", "baseDir": "/no/such/dir"})).unwrap();
    assert!(
        source::list(&gone)
            .unwrap_err()
            .to_string()
            .contains("baseDir")
    );
}
