//! The `eddy` binary as a user runs it: configuration errors, the bound-address log line,
//! graceful shutdown on SIGTERM, and `eddy ingest` against a running node.

// Test code: a failed unwrap is a failed assertion.
#![allow(clippy::unwrap_used)]

mod common;

use std::process::Command;
use std::time::Duration;

use common::process::{EDDY, spawn_standalone, wait_exit};
use common::repo_path;

#[test]
fn bad_configuration_names_the_key() {
    let out = Command::new(EDDY)
        .args([
            "standalone",
            "--http-addr",
            "127.0.0.1:0",
            "--flight-addr",
            "",
            "--collector-addr",
            "",
        ])
        .env("EDDY_QUERY__THREADS", "lots")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("EDDY_QUERY__THREADS") && err.contains("query.threads"),
        "{err}"
    );

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("eddy.toml");
    std::fs::write(&file, "[http]\nport = 8888\n").unwrap();
    let out = Command::new(EDDY)
        .args(["standalone", "--config"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unknown field `port`"), "{err}");

    let out = Command::new(EDDY)
        .args(["standalone", "--http-addr", "not-an-address"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("http.addr"));

    // A collector node has no embedded stream: it must be told to write Kafka.
    let out = Command::new(EDDY)
        .args(["collector", "--addr", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("collector.sink = \"embedded\" needs a node with an embedded stream"),
        "{err}"
    );
    let out = Command::new(EDDY)
        .args(["collector", "--addr", "127.0.0.1:0"])
        .env("EDDY_COLLECTOR__TRACKER__COOKIE_SAME_SITE", "None")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("collector.tracker.cookie_same_site"), "{err}");
}

#[test]
fn sigterm_stops_gracefully_and_ingest_follows_a_task() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, url) = spawn_standalone(&dir.path().join("data"));

    // `eddy ingest` resolves the relative baseDir from its own working directory.
    let out = Command::new(EDDY)
        .args(["ingest", "examples/clicks-index.json", "--url", &url])
        .current_dir(repo_path(""))
        .output()
        .expect("run eddy ingest");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("SUCCESS: 1000 rows"), "{stderr}");

    let health = reqwest::blocking::get(format!("{url}/status/health"))
        .unwrap()
        .text()
        .unwrap();
    assert_eq!(health, "true");

    let pid = child.0.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let status = wait_exit(&mut child.0, Duration::from_secs(30));
    assert!(status.success(), "{status:?}");

    // A refused spec is reported with the server's reason.
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, r#"{"type":"index_parallel","spec":{"dataSchema":{"dataSource":"x"},"ioConfig":{"inputSource":{"type":"inline","data":""},"inputFormat":{"type":"xml"}}}}"#).unwrap();
    let (_node, url) = spawn_standalone(&dir.path().join("data"));
    let out = Command::new(EDDY)
        .args(["ingest"])
        .arg(&bad)
        .args(["--url", &url])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("inputFormat"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn topics_and_produce_write_into_the_embedded_stream() {
    let dir = tempfile::tempdir().unwrap();
    let (_child, url) = spawn_standalone(&dir.path().join("data"));
    let eddy = |args: &[&str]| {
        let out = Command::new(EDDY).args(args).output().expect("run eddy");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let (ok, _, err) = eddy(&[
        "topics",
        "create",
        "clicks",
        "--partitions",
        "2",
        "--url",
        &url,
    ]);
    assert!(ok, "{err}");
    let (ok, _, err) = eddy(&["topics", "create", "clicks", "--url", &url]);
    assert!(!ok && err.contains("already exists"), "{err}");
    let input = dir.path().join("events.ndjson");
    let lines: Vec<String> = (0..2500)
        .map(|i| format!("{{\"page\": \"/p{}\", \"n\": {i}}}", i % 9))
        .collect();
    std::fs::write(&input, lines.join("\n")).unwrap();
    let (ok, _, err) = eddy(&[
        "produce",
        "clicks",
        input.to_str().unwrap(),
        "--key",
        "page",
        "--url",
        &url,
    ]);
    assert!(
        ok && err.contains("2500 records written to clicks"),
        "{err}"
    );
    let (ok, out, err) = eddy(&["topics", "list", "--url", &url]);
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "clicks\t2 partitions\t2500 records");
}
