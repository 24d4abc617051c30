//! Druid SQL over HTTP, end to end on an in-process standalone node loaded with the sample
//! clickstream: the sqllogictest files under `tests/slt/` (every function, clause and catalog
//! query, expected results reviewed by hand), the HTTP contract of `/druid/v2/sql` (result
//! formats, headers, bodies, parameters, errors, cancellation, EXPLAIN), and the native scans
//! SQL plans for ORDER BY columns ... LIMIT.

#![allow(clippy::unwrap_used)]

mod common;

use common::slt::{Record, cell, parse_slt};
use common::{TestNode, repo_path, sample_rows, sample_spec};
use serde_json::{Value, json};

async fn loaded_node(dir: &std::path::Path) -> TestNode {
    let node = TestNode::start(dir).await;
    let done = node.ingest(&sample_spec()).await;
    assert_eq!(done["status"], "SUCCESS", "{done}");
    node.wait_loaded().await;
    node
}

async fn sql_raw(node: &TestNode, body: Value) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{}/druid/v2/sql", node.url))
        .json(&body)
        .send()
        .await
        .unwrap()
}

/// The native queries `EXPLAIN PLAN FOR q` shows.
async fn explain(client: &reqwest::Client, url: &str, q: &str) -> Value {
    let body = json!({"query": format!("EXPLAIN PLAN FOR {q}"), "resultFormat": "array"});
    let rows: Value = post_json(client, url, &body).await;
    serde_json::from_str(rows[0][0].as_str().unwrap()).unwrap()
}

/// POSTs a JSON body and returns the JSON answer.
async fn post_json(client: &reqwest::Client, url: &str, body: &Value) -> Value {
    client
        .post(url)
        .json(body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqllogictest_files() {
    let dir = tempfile::tempdir().unwrap();
    let node = loaded_node(dir.path()).await;
    let slt_dir = repo_path("tests/slt");
    let mut files: Vec<_> = std::fs::read_dir(&slt_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "slt"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no .slt files in {}", slt_dir.display());
    let mut failures = Vec::new();
    let mut count = 0;
    for file in &files {
        let name = file.file_name().unwrap().to_string_lossy().to_string();
        for record in parse_slt(&std::fs::read_to_string(file).unwrap()) {
            count += 1;
            match record {
                Record::Query {
                    sql,
                    sort,
                    expected,
                    line,
                } => {
                    let resp = sql_raw(&node, json!({"query": sql, "resultFormat": "array"})).await;
                    let status = resp.status();
                    let body: Value = resp.json().await.unwrap();
                    if !status.is_success() {
                        failures.push(format!("{name}:{line}: HTTP {status}: {body}"));
                        continue;
                    }
                    let mut got: Vec<String> = body
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|row| {
                            row.as_array()
                                .unwrap()
                                .iter()
                                .map(cell)
                                .collect::<Vec<_>>()
                                .join(" ")
                        })
                        .collect();
                    let mut want = expected.clone();
                    if sort {
                        got.sort();
                        want.sort();
                    }
                    if got != want {
                        failures.push(format!(
                            "{name}:{line}: {sql}\n  expected:\n    {}\n  got:\n    {}",
                            want.join("\n    "),
                            got.join("\n    ")
                        ));
                    }
                }
                Record::Error { sql, pattern, line } => {
                    let resp = sql_raw(&node, json!({"query": sql})).await;
                    let status = resp.status();
                    let body: Value = resp.json().await.unwrap();
                    let msg = body["errorMessage"].as_str().unwrap_or_default();
                    if status.is_success() || !msg.contains(&pattern) {
                        failures.push(format!(
                            "{name}:{line}: {sql}\n  expected an error containing {pattern:?}, got HTTP {status}: {body}"
                        ));
                    }
                }
            }
        }
    }
    node.stop().await;
    assert!(
        failures.is_empty(),
        "{} of {count} records failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_contract() {
    let dir = tempfile::tempdir().unwrap();
    let node = loaded_node(dir.path()).await;
    let client = reqwest::Client::new();
    let url = format!("{}/druid/v2/sql/", node.url);
    let q = "SELECT country, COUNT(*) AS c FROM clicks WHERE country IN ('US', 'DE') GROUP BY country ORDER BY c DESC";

    // Default object format: compact JSON ending in a newline, query id header set.
    let resp = client
        .post(&url)
        .json(&json!({"query": q, "context": {"sqlQueryId": "my-query"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["X-Druid-SQL-Query-Id"], "my-query");
    assert_eq!(resp.headers()["content-type"], "application/json");
    let text = resp.text().await.unwrap();
    assert_eq!(
        text,
        "[{\"country\":\"US\",\"c\":139},{\"country\":\"DE\",\"c\":128}]\n"
    );

    // array + all header rows.
    let body = json!({"query": q, "resultFormat": "array", "header": true, "typesHeader": true, "sqlTypesHeader": true});
    let resp = client.post(&url).json(&body).send().await.unwrap();
    assert_eq!(resp.headers()["X-Druid-SQL-Header-Included"], "yes");
    let rows: Value = resp.json().await.unwrap();
    assert_eq!(
        rows,
        json!([
            ["country", "c"],
            ["STRING", "LONG"],
            ["VARCHAR", "BIGINT"],
            ["US", 139],
            ["DE", 128]
        ])
    );

    // object header row forms.
    let body = json!({"query": q, "header": true, "typesHeader": true, "sqlTypesHeader": true});
    let rows: Value = post_json(&client, &url, &body).await;
    assert_eq!(
        rows[0],
        json!({"country": {"type": "STRING", "sqlType": "VARCHAR"}, "c": {"type": "LONG", "sqlType": "BIGINT"}})
    );
    let rows: Value = post_json(&client, &url, &json!({"query": q, "header": true})).await;
    assert_eq!(rows[0], json!({"country": null, "c": null}));

    // Line formats end with a blank line; csv quotes and has its header.
    for (format, want) in [
        (
            "objectLines",
            "{\"country\":\"US\",\"c\":139}\n{\"country\":\"DE\",\"c\":128}\n\n",
        ),
        ("arrayLines", "[\"US\",139]\n[\"DE\",128]\n\n"),
        ("csv", "country,c\nUS,139\nDE,128\n\n"),
    ] {
        let resp = client
            .post(&url)
            .json(&json!({"query": q, "resultFormat": format, "header": format == "csv"}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.text().await.unwrap(), want, "{format}");
    }
    let resp = client
        .post(&url)
        .json(&json!({"query": "SELECT 'a,b' AS x, 'say \"hi\"' AS y", "resultFormat": "csv"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.text().await.unwrap(), "\"a,b\",\"say \"\"hi\"\"\"\n\n");

    // text/plain and form bodies carry bare SQL.
    for (content_type, body, want) in [
        (
            "text/plain",
            "SELECT COUNT(*) AS n FROM clicks",
            "[{\"n\":1000}]\n",
        ),
        (
            "application/x-www-form-urlencoded",
            "SELECT+COUNT(*)+AS+n+FROM+clicks+WHERE+country+%3D+'US'",
            "[{\"n\":139}]\n",
        ),
    ] {
        let resp = client
            .post(&url)
            .header("Content-Type", content_type)
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.text().await.unwrap(), want, "{content_type}");
    }

    // Parameters.
    let body = json!({"query": "SELECT COUNT(*) AS n FROM clicks WHERE country = ? AND latency_ms > ?",
                      "parameters": [{"type": "VARCHAR", "value": "US"}, {"type": "BIGINT", "value": 500}]});
    let rows: Value = post_json(&client, &url, &body).await;
    let want = common::sample_rows()
        .iter()
        .filter(|r| r["country"] == "US" && r["latency_ms"].as_i64().unwrap() > 500)
        .count();
    assert_eq!(rows, json!([{"n": want}]));
    let body = json!({"query": "SELECT ? AS a", "parameters": []});
    let resp = client.post(&url).json(&body).send().await.unwrap();
    assert_eq!(resp.status(), 400);
    let err: Value = resp.json().await.unwrap();
    assert!(
        err["errorMessage"]
            .as_str()
            .unwrap()
            .contains("placeholder"),
        "{err}"
    );

    // Errors: Druid's body with error and errorMessage; parse errors give the position.
    let resp = client
        .post(&url)
        .json(&json!({"query": "SELECT * FROM clicks WHERE"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let err: Value = resp.json().await.unwrap();
    assert_eq!(err["error"], "SQL parse failed");
    assert!(
        err["errorMessage"]
            .as_str()
            .unwrap()
            .contains("Line: 1, Column"),
        "{err}"
    );
    let resp = client
        .post(&url)
        .json(&json!({"query": "SELECT nope FROM clicks"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let err: Value = resp.json().await.unwrap();
    assert!(
        err["errorMessage"].as_str().unwrap().contains("nope"),
        "{err}"
    );
    let resp = client
        .post(&url)
        .json(&json!({"query": "SELECT 1", "resultFormat": "xml"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let resp = client
        .post(&url)
        .body("{not json")
        .header("Content-Type", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let resp = client
        .post(&url)
        .json(&json!({"query": "SELECT 1", "context": {"sqlTimeZone": "Mars/Olympus"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);

    // Unaliased expressions are EXPR$<position>; columns keep their names.
    let rows: Value = post_json(&client, &url, &json!({"query": "SELECT 1, country, COUNT(*) FROM clicks WHERE country = 'US' GROUP BY country"})).await;
    assert_eq!(rows, json!([{"EXPR$0": 1, "country": "US", "EXPR$2": 139}]));

    // sqlTimeZone is the zone of TIME_FLOOR without one (and of pushed-down buckets).
    let body = json!({"query": "SELECT TIME_FLOOR(__time, 'P1D') AS d, COUNT(*) AS c FROM clicks GROUP BY 1 ORDER BY 1 LIMIT 1",
                      "context": {"sqlTimeZone": "America/Los_Angeles"}});
    let rows: Value = post_json(&client, &url, &body).await;
    let first_la_day = common::sample_rows()
        .iter()
        .filter(|r| r["time"].as_str().unwrap() < "2023-06-27T07:00:00Z")
        .count();
    assert_eq!(
        rows,
        json!([{"d": "2023-06-26T07:00:00.000Z", "c": first_la_day}])
    );

    // Cancelling an unknown query is a 404.
    let resp = client.delete(format!("{url}nope")).send().await.unwrap();
    assert_eq!(resp.status(), 404);

    // EXPLAIN PLAN FOR shows the native queries; a GROUP BY runs as a groupBy next to the data.
    let body = json!({"query": format!("EXPLAIN PLAN FOR {q}"), "resultFormat": "array"});
    let rows: Value = post_json(&client, &url, &body).await;
    let plan: Value = serde_json::from_str(rows[0][0].as_str().unwrap()).unwrap();
    assert_eq!(plan.as_array().unwrap().len(), 1, "{plan}");
    assert_eq!(plan[0]["query"]["queryType"], "groupBy");
    // The filter runs natively too (DataFusion turns a short IN list into ORs).
    assert!(plan[0]["query"]["filter"].is_object(), "{plan}");
    // ORDER BY .. LIMIT: one dimension becomes a topN (as Druid plans it), more become the
    // groupBy's limitSpec; either way only the top rows leave the data nodes.
    let body = json!({"query": format!("EXPLAIN PLAN FOR {q} LIMIT 1"), "resultFormat": "array"});
    let rows: Value = post_json(&client, &url, &body).await;
    let plan: Value = serde_json::from_str(rows[0][0].as_str().unwrap()).unwrap();
    assert_eq!(plan[0]["query"]["queryType"], "topN", "{plan}");
    assert_eq!(plan[0]["query"]["threshold"], 1, "{plan}");
    assert_eq!(plan[0]["query"]["metric"], "a0", "{plan}");
    let two =
        "SELECT country, browser, COUNT(*) AS c FROM clicks GROUP BY 1, 2 ORDER BY c DESC LIMIT 2";
    let plan = explain(&client, &url, two).await;
    let spec = &plan[0]["query"]["limitSpec"];
    assert_eq!(spec["limit"], 2, "{plan}");
    assert_eq!(spec["columns"][0]["direction"], "descending", "{plan}");

    // EXTRACT as a group key: a virtual column of the groupBy, not a grouping on raw times.
    let vplan = explain(
        &client,
        &url,
        "SELECT EXTRACT(MINUTE FROM __time) AS m, COUNT(*) FROM clicks GROUP BY 1",
    )
    .await;
    assert_eq!(
        vplan[0]["query"]["virtualColumns"],
        json!([{"type": "expression", "name": "v0", "outputType": "LONG",
                "expression": "timestamp_extract(\"__time\", 'MINUTE', 'UTC')"}]),
        "{vplan}"
    );
    assert_eq!(
        vplan[0]["query"]["dimensions"][0]["dimension"], "v0",
        "{vplan}"
    );
    assert_eq!(
        vplan[0]["query"]["aggregations"][0]["name"], "a0",
        "{vplan}"
    );

    // Other expressions the native language computes alike: a CASE key and a LENGTH inside
    // an aggregate are virtual columns of the groupBy (the .slt files check their answers).
    let cplan = explain(
        &client,
        &url,
        "SELECT CASE WHEN browser = 'Chrome' THEN country ELSE '' END AS k, AVG(LENGTH(page)) FROM clicks GROUP BY 1",
    )
    .await;
    let q = &cplan[0]["query"];
    assert_eq!(
        q["virtualColumns"][0],
        json!({"type": "expression", "name": "v0", "outputType": "STRING",
               "expression": "case_searched((\"browser\" == 'Chrome'), \"country\", '')"}),
        "{cplan}"
    );
    assert_eq!(
        q["virtualColumns"][1]["expression"], "strlen(\"page\")",
        "{cplan}"
    );
    assert_eq!(
        q["aggregations"][0]["fieldName"], q["virtualColumns"][1]["name"],
        "{cplan}"
    );
    assert_eq!(
        q["aggregations"][1]["fieldName"], q["virtualColumns"][2]["name"],
        "{cplan}"
    );

    let dplan = explain(
        &client,
        &url,
        "SELECT DATE_TRUNC('hour', bytes) AS h, COUNT(*) FROM clicks GROUP BY 1",
    )
    .await;
    assert_eq!(
        dplan[0]["query"]["virtualColumns"][0]["expression"],
        "timestamp_floor(\"bytes\", 'PT1H', null, 'UTC')",
        "{dplan}"
    );
    let splan = explain(&client, &url, "SELECT MIN(country), MAX(page) FROM clicks").await;
    assert_eq!(
        splan[0]["query"]["aggregations"],
        json!([{"type": "stringMin", "name": "a0", "fieldName": "country"},
               {"type": "stringMax", "name": "a1", "fieldName": "page"}]),
        "{splan}"
    );

    // LIMIT without ORDER BY over a GROUP BY: a limitSpec without columns (skip + fetch).
    let lplan = explain(
        &client,
        &url,
        "SELECT country, browser, COUNT(*) FROM clicks GROUP BY 1, 2 LIMIT 3 OFFSET 2",
    )
    .await;
    assert_eq!(
        lplan[0]["query"]["limitSpec"],
        json!({"type": "default", "limit": 5, "columns": []}),
        "{lplan}"
    );

    // ORDER BY columns ... LIMIT over rows: the scan orders and limits on each segment.
    let scan_plan = explain(
        &client,
        &url,
        "SELECT page FROM clicks ORDER BY latency_ms DESC LIMIT 5",
    )
    .await;
    assert_eq!(scan_plan[0]["query"]["queryType"], "scan", "{scan_plan}");
    assert_eq!(scan_plan[0]["query"]["limit"], 5, "{scan_plan}");
    assert_eq!(
        scan_plan[0]["query"]["orderBy"],
        json!([{"columnName": "latency_ms", "order": "descending", "nullsFirst": true}]),
        "{scan_plan}"
    );

    // A GROUP BY over expressions still aggregates next to the data: a native groupBy on the
    // columns it reads, with a row count; no raw rows reach the broker.
    let body = json!({"query": "EXPLAIN PLAN FOR SELECT UPPER(country) AS c, SUM(latency_ms + 1) AS s FROM clicks GROUP BY 1",
                      "resultFormat": "array"});
    let expr_rows: Value = post_json(&client, &url, &body).await;
    let expr_plan: Value = serde_json::from_str(expr_rows[0][0].as_str().unwrap()).unwrap();
    assert_eq!(expr_plan.as_array().unwrap().len(), 1, "{expr_plan}");
    assert_eq!(expr_plan[0]["query"]["queryType"], "groupBy", "{expr_plan}");
    assert_eq!(
        expr_plan[0]["query"]["aggregations"][0]["type"], "count",
        "{expr_plan}"
    );
    let expr_rows: Value = post_json(&client, &url, &json!({"query": "SELECT UPPER(country) AS c, SUM(latency_ms + 1) AS s FROM clicks WHERE country = 'us' OR country = 'US' GROUP BY 1"})).await;
    let us: Vec<Value> = common::sample_rows()
        .into_iter()
        .filter(|r| r["country"] == "US")
        .collect();
    let want: i64 = us
        .iter()
        .map(|r| r["latency_ms"].as_i64().unwrap() + 1)
        .sum();
    assert_eq!(expr_rows, json!([{"c": "US", "s": want}]));
    let resources: Value = serde_json::from_str(rows[0][1].as_str().unwrap()).unwrap();
    assert_eq!(resources, json!([{"name": "clicks", "type": "DATASOURCE"}]));

    node.stop().await;
}

#[test]
fn slt_parser_reads_records() {
    let recs = parse_slt(
        "# c\nquery IT rowsort\nSELECT 1,\n 2\n----\n1 2\n\nquery error No field\nSELECT x\n",
    );
    assert_eq!(recs.len(), 2);
    match &recs[0] {
        Record::Query {
            sql,
            sort,
            expected,
            ..
        } => {
            assert_eq!(sql, "SELECT 1,\n 2");
            assert!(*sort);
            assert_eq!(expected, &vec!["1 2".to_string()]);
        }
        Record::Error { .. } => panic!("first is a query"),
    }
}

/// The native scan SQL uses for ORDER BY columns ... LIMIT: `orderBy` on any columns (an Eddy
/// addition to Druid's, which orders by `__time` only), across segments, and on `__time`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn native_scans_order_by_columns() {
    let dir = tempfile::tempdir().unwrap();
    let node = loaded_node(dir.path()).await;
    let interval = "2023-06-01/2023-08-01";
    let by_cols = node
        .query(json!({"queryType": "scan", "dataSource": "clicks", "intervals": [interval], "columns": ["page", "bytes"],
            "orderBy": [{"columnName": "bytes", "order": "descending"}], "limit": 3, "offset": 1}))
        .await;
    let mut want: Vec<i64> = sample_rows()
        .iter()
        .map(|r| r["bytes"].as_i64().unwrap())
        .collect();
    want.sort_unstable_by(|a, b| b.cmp(a));
    let got: Vec<i64> = by_cols[0]["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["bytes"].as_i64().unwrap())
        .collect();
    assert_eq!(got, want[1..4]);
    let by_time = node
        .query(json!({"queryType": "scan", "dataSource": "clicks", "intervals": [interval], "columns": ["__time"],
            "orderBy": [{"columnName": "__time", "order": "descending"}], "limit": 1}))
        .await;
    // The sample's last event: 2023-06-28T23:57:30Z.
    assert_eq!(by_time[0]["events"][0]["__time"], 1_687_996_650_000i64);
    node.stop().await;
}
