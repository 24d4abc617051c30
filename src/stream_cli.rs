//! `eddy produce` and `eddy topics`: write newline-delimited records into the embedded stream
//! of a running node, and create or list its topics, over the `/eddy/v1/streams` API.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use anyhow::{Context, bail};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Value, json};

/// Bytes sent per request; each request is acknowledged once durable.
const CHUNK_BYTES: usize = 4 << 20;

fn error_text(body: &Value) -> String {
    body.get("errorMessage")
        .or_else(|| body.get("error"))
        .and_then(Value::as_str)
        .map_or_else(|| body.to_string(), str::to_string)
}

async fn send(client: &reqwest::Client, url: &str, body: Vec<u8>) -> anyhow::Result<u64> {
    let resp = client
        .post(url)
        .header("Content-Type", "application/x-ndjson")
        .body(body)
        .send()
        .await
        .with_context(|| format!("cannot reach Eddy at {url} (is `eddy standalone` running?)"))?;
    let status = resp.status();
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        bail!("the records were refused ({status}): {}", error_text(&body));
    }
    Ok(body["records"].as_u64().unwrap_or(0))
}

/// Sends every non-empty line of `input` (a file, or stdin for `-`) as one record.
pub async fn produce(
    topic: &str,
    input: &Path,
    url: &str,
    key: Option<&str>,
    partitions: Option<u32>,
) -> anyhow::Result<()> {
    if input.extension().is_some_and(|e| e == "avro") {
        return produce_avro(topic, input, url).await;
    }
    let reader: Box<dyn Read> = if input.as_os_str() == "-" {
        Box::new(std::io::stdin())
    } else {
        Box::new(
            std::fs::File::open(input)
                .with_context(|| format!("cannot read {}", input.display()))?,
        )
    };
    let total = std::fs::metadata(input).map(|m| m.len()).ok();
    let bar = match total {
        Some(n) => ProgressBar::new(n).with_style(
            ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        ),
        None => ProgressBar::new_spinner(),
    };
    let mut endpoint = format!("{}/eddy/v1/streams/{topic}", url.trim_end_matches('/'));
    let mut params = Vec::new();
    if let Some(k) = key {
        params.push(format!("key={k}"));
    }
    if let Some(p) = partitions {
        params.push(format!("partitions={p}"));
    }
    if !params.is_empty() {
        endpoint = format!("{endpoint}?{}", params.join("&"));
    }
    let client = reqwest::Client::new();
    let mut lines = BufReader::with_capacity(1 << 20, reader);
    let mut chunk: Vec<u8> = Vec::with_capacity(CHUNK_BYTES + 4096);
    let mut sent = 0u64;
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = lines
            .read_until(b'\n', &mut line)
            .context("reading the input")?;
        if n > 0 {
            chunk.extend_from_slice(&line);
            if !line.ends_with(b"\n") {
                chunk.push(b'\n');
            }
            bar.inc(n as u64);
        }
        if (n == 0 && !chunk.is_empty()) || chunk.len() >= CHUNK_BYTES {
            sent += send(&client, &endpoint, std::mem::take(&mut chunk)).await?;
            bar.set_message(format!("{sent} records acknowledged"));
        }
        if n == 0 {
            break;
        }
    }
    bar.finish_and_clear();
    eprintln!("{sent} records written to {topic}");
    Ok(())
}

/// Sends an Avro container file; each record becomes one message (a bare datum of the file's
/// schema).
async fn produce_avro(topic: &str, input: &Path, url: &str) -> anyhow::Result<()> {
    let body = std::fs::read(input).with_context(|| format!("cannot read {}", input.display()))?;
    let endpoint = format!("{}/eddy/v1/streams/{topic}", url.trim_end_matches('/'));
    let resp = reqwest::Client::new()
        .post(&endpoint)
        .header("Content-Type", "application/avro")
        .body(body)
        .send()
        .await
        .with_context(|| {
            format!("cannot reach Eddy at {endpoint} (is `eddy standalone` running?)")
        })?;
    let status = resp.status();
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        bail!("the records were refused ({status}): {}", error_text(&body));
    }
    eprintln!("{} records written to {topic}", body["records"]);
    Ok(())
}

pub async fn create_topic(topic: &str, partitions: u32, url: &str) -> anyhow::Result<()> {
    let endpoint = format!("{}/eddy/v1/streams", url.trim_end_matches('/'));
    let resp = reqwest::Client::new()
        .post(&endpoint)
        .json(&json!({"topic": topic, "partitions": partitions}))
        .send()
        .await
        .with_context(|| {
            format!("cannot reach Eddy at {endpoint} (is `eddy standalone` running?)")
        })?;
    let status = resp.status();
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        bail!(
            "cannot create topic {topic} ({status}): {}",
            error_text(&body)
        );
    }
    eprintln!("created topic {topic} with {partitions} partitions");
    Ok(())
}

pub async fn list_topics(url: &str) -> anyhow::Result<()> {
    let endpoint = format!("{}/eddy/v1/streams", url.trim_end_matches('/'));
    let body: Value = reqwest::get(&endpoint)
        .await
        .with_context(|| {
            format!("cannot reach Eddy at {endpoint} (is `eddy standalone` running?)")
        })?
        .json()
        .await
        .context("the topic list is not JSON")?;
    for t in body.as_array().into_iter().flatten() {
        let records: u64 = t["offsets"]
            .as_object()
            .map_or(0, |m| m.values().filter_map(Value::as_u64).sum());
        println!(
            "{}\t{} partitions\t{records} records",
            t["topic"].as_str().unwrap_or("?"),
            t["partitions"]
        );
    }
    Ok(())
}
