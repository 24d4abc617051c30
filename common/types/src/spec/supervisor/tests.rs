#![allow(clippy::unwrap_used)]

use serde_json::{Value, json};

use super::SupervisorSpec;

fn minimal() -> Value {
    json!({"type": "kafka", "spec": {
        "dataSchema": {
            "dataSource": "clicks",
            "timestampSpec": {"column": "ts", "format": "iso"},
            "dimensionsSpec": {"dimensions": ["user_id", "page", {"type": "long", "name": "latency_ms"}]},
            "metricsSpec": [{"type": "count", "name": "count"},
                            {"type": "longSum", "name": "latency_sum", "fieldName": "latency_ms"}],
            "granularitySpec": {"type": "uniform", "segmentGranularity": "hour", "queryGranularity": "MINUTE", "rollup": true}},
        "ioConfig": {"type": "kafka", "topic": "clicks", "inputFormat": {"type": "json"},
            "consumerProperties": {"bootstrap.servers": "embedded"},
            "taskCount": 1, "replicas": 1, "taskDuration": "PT1H", "useEarliestOffset": true},
        "tuningConfig": {"type": "kafka", "maxRowsPerSegment": 5000000}}})
}

fn parse(v: &Value) -> Result<SupervisorSpec, String> {
    SupervisorSpec::from_json_bytes(v.to_string().as_bytes())
}

fn error_of(edit: impl FnOnce(&mut Value)) -> String {
    let mut v = minimal();
    edit(&mut v);
    parse(&v).unwrap_err()
}

#[test]
fn nested_and_flat_layouts_parse_alike() {
    let nested = parse(&minimal()).unwrap();
    let m = minimal();
    let flat = json!({"type": "kafka", "dataSchema": m["spec"]["dataSchema"],
        "ioConfig": m["spec"]["ioConfig"], "tuningConfig": m["spec"]["tuningConfig"]});
    let flat = parse(&flat).unwrap();
    assert_eq!(nested.data_schema, flat.data_schema);
    assert_eq!(nested.settings, flat.settings);
    assert_eq!(nested.settings.topic, "clicks");
    assert_eq!(nested.settings.bootstrap_servers, None);
    assert_eq!(nested.settings.task_duration_ms, 3_600_000);
    assert_eq!(nested.settings.max_rows_in_memory, 150_000);
}

#[test]
fn errors_name_the_field() {
    let cases: Vec<(String, &str)> = vec![
        (
            error_of(|v| v["type"] = json!("kinesis")),
            "type: supervisor type \"kinesis\"",
        ),
        (
            error_of(|v| {
                v["spec"]
                    .as_object_mut()
                    .unwrap()
                    .remove("ioConfig")
                    .map(|_| ())
                    .unwrap()
            }),
            "spec.ioConfig: missing",
        ),
        (
            error_of(|v| {
                v["spec"]["ioConfig"]
                    .as_object_mut()
                    .unwrap()
                    .remove("topic")
                    .map(|_| ())
                    .unwrap()
            }),
            "spec.ioConfig.topic: missing",
        ),
        (
            error_of(|v| v["spec"]["ioConfig"]["taskCount"] = json!(0)),
            "spec.ioConfig.taskCount: must be at least 1",
        ),
        (
            error_of(|v| v["spec"]["ioConfig"]["taskCount"] = json!("two")),
            "spec.ioConfig.taskCount: invalid type",
        ),
        (
            error_of(|v| v["spec"]["ioConfig"]["taskDuration"] = json!("an hour")),
            "spec.ioConfig.taskDuration: cannot parse",
        ),
        (
            error_of(|v| v["spec"]["ioConfig"]["inputFormat"] = json!({"type": "parquet"})),
            "spec.ioConfig.inputFormat.type: \"parquet\" is not a stream input format",
        ),
        (
            error_of(|v| v["spec"]["dataSchema"]["metricsSpec"][1]["type"] = json!("longSun")),
            "spec.dataSchema.metricsSpec[1]",
        ),
        (
            error_of(|v| {
                v["spec"]["dataSchema"]["dimensionsSpec"]["dimensions"]
                    .as_array_mut()
                    .unwrap()
                    .push(json!("user_id"))
            }),
            "spec.dataSchema.dimensionsSpec.dimensions[3].name: dimension \"user_id\" is listed twice",
        ),
        (
            error_of(|v| v["spec"]["tuningConfig"]["maxRowsPerSegment"] = json!(-5)),
            "spec.tuningConfig.maxRowsPerSegment: invalid value",
        ),
        (
            error_of(|v| v["suspended"] = json!("yes")),
            "suspended: expected true or false",
        ),
    ];
    for (got, want) in cases {
        assert!(
            got.starts_with(want),
            "error {got:?} should start with {want:?}"
        );
    }
}

#[test]
fn kafka_servers_are_kept_and_embedded_is_the_default() {
    let mut v = minimal();
    v["spec"]["ioConfig"]["consumerProperties"] = json!({"bootstrap.servers": "127.0.0.1:9092"});
    assert_eq!(
        parse(&v).unwrap().settings.bootstrap_servers.as_deref(),
        Some("127.0.0.1:9092")
    );
    v["spec"]["ioConfig"]["consumerProperties"] = json!({});
    assert_eq!(parse(&v).unwrap().settings.bootstrap_servers, None);
}

#[test]
fn the_echo_is_normalized_like_druid() {
    let spec = parse(&minimal()).unwrap();
    let echo = spec.normalized();
    let schema = &echo["spec"]["dataSchema"];
    assert_eq!(
        schema["granularitySpec"]["segmentGranularity"],
        json!("HOUR")
    );
    assert_eq!(
        schema["granularitySpec"]["queryGranularity"],
        json!({"type": "minute"})
    );
    assert_eq!(
        schema["dimensionsSpec"]["dimensions"][0],
        json!({"type": "string", "name": "user_id", "multiValueHandling": "SORTED_ARRAY", "createBitmapIndex": true})
    );
    assert_eq!(
        schema["dimensionsSpec"]["dimensions"][2]["createBitmapIndex"],
        json!(false)
    );
    assert_eq!(
        schema["dimensionsSpec"]["dimensionExclusions"],
        json!(["__time"])
    );
    assert_eq!(
        schema["transformSpec"],
        json!({"filter": null, "transforms": []})
    );
    let io = &echo["spec"]["ioConfig"];
    assert_eq!(io["taskDuration"], json!("PT3600S"));
    assert_eq!(io["completionTimeout"], json!("PT1800S"));
    assert_eq!(io["stream"], json!("clicks"));
    assert_eq!(io["useEarliestSequenceNumber"], json!(true));
    assert_eq!(
        echo["spec"]["tuningConfig"]["maxRowsInMemory"],
        json!(150000)
    );
    assert_eq!(echo["ioConfig"], *io, "top-level copies");
    assert_eq!(echo["dataSchema"], *schema);
    assert_eq!(echo["context"], Value::Null);
    assert_eq!(echo["suspended"], json!(false));
    assert_eq!(
        spec.with_suspended(true).normalized()["suspended"],
        json!(true)
    );
}
