//! `eddy ingest SPEC.json`: submits a batch ingestion task to a running node and follows it
//! with a progress bar until it succeeds or fails.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::Value;

/// Makes local input paths absolute, relative to the caller's directory, so a spec written for
/// the command line works whatever the server's working directory is.
fn absolutize(spec: &mut Value, cwd: &Path) {
    let Some(source) = spec.pointer_mut("/spec/ioConfig/inputSource") else {
        return;
    };
    if source.get("type").and_then(Value::as_str) != Some("local") {
        return;
    }
    let fix = |p: &str| -> String {
        let path = PathBuf::from(p);
        if path.is_absolute() {
            p.to_string()
        } else {
            cwd.join(path).display().to_string()
        }
    };
    if let Some(Value::String(dir)) = source.get_mut("baseDir") {
        *dir = fix(dir);
    }
    if let Some(Value::Array(files)) = source.get_mut("files") {
        for f in files.iter_mut() {
            if let Value::String(s) = f {
                *s = fix(s);
            }
        }
    }
}

pub async fn run(spec_path: &Path, url: &str, wait: bool) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(spec_path)
        .with_context(|| format!("cannot read {}", spec_path.display()))?;
    let mut spec: Value = serde_json::from_str(&text)
        .with_context(|| format!("{} is not valid JSON", spec_path.display()))?;
    absolutize(&mut spec, &std::env::current_dir()?);
    let base = url.trim_end_matches('/');
    let client = reqwest::Client::new();
    let resp = client
        .post(format!("{base}/druid/indexer/v1/task"))
        .json(&spec)
        .send()
        .await
        .with_context(|| format!("cannot reach Eddy at {base} (is `eddy standalone` running?)"))?;
    let status = resp.status();
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        bail!(
            "the task was refused ({status}): {}",
            body.get("errorMessage")
                .and_then(Value::as_str)
                .unwrap_or("no details")
        );
    }
    let task = body
        .get("task")
        .and_then(Value::as_str)
        .context("the server answered without a task id")?
        .to_string();
    eprintln!("submitted task {task}");
    if !wait {
        println!("{task}");
        return Ok(());
    }
    let bar = ProgressBar::new(1000);
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] [{bar:40}] {percent:>3}% {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    loop {
        let st: Value = client
            .get(format!("{base}/druid/indexer/v1/task/{task}/status"))
            .send()
            .await
            .context("lost contact with the server")?
            .json()
            .await
            .context("bad status response")?;
        let s = &st["status"];
        let fraction = s
            .pointer("/progress/fraction")
            .and_then(Value::as_f64)
            .unwrap_or(0.0);
        let phase = s
            .pointer("/progress/phase")
            .and_then(Value::as_str)
            .unwrap_or("");
        let rows = s
            .pointer("/rowStats/processed")
            .and_then(Value::as_u64)
            .unwrap_or(0);
        let bad = s
            .pointer("/rowStats/unparseable")
            .and_then(Value::as_u64)
            .unwrap_or(0);
        bar.set_position((fraction * 1000.0) as u64);
        bar.set_message(format!("{phase} {rows} rows, {bad} unparseable"));
        match s.get("status").and_then(Value::as_str) {
            Some("SUCCESS") => {
                bar.finish_and_clear();
                eprintln!("task {task} SUCCESS: {rows} rows, {bad} unparseable");
                return Ok(());
            }
            Some("FAILED") => {
                bar.finish_and_clear();
                bail!(
                    "task {task} failed: {}",
                    s.get("errorMsg")
                        .and_then(Value::as_str)
                        .unwrap_or("no details")
                );
            }
            _ => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    }
}
