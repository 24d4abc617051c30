//! The collector in a standalone node: it writes the embedded `clicks` topic, a supervisor
//! (the spec shipped in `deploy/clicks-supervisor.json`) reads it into the `clicks`
//! datasource, and the demo page asks the node's own SQL endpoint for a party's events.

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{Value, json};

use eddy_collector::CollectorConfig;
use eddy_collector::config::SinkKind;
use eddy_collector::output::Framing;
use eddy_realtime::stream::Supervisors;

/// The supervisor spec for the collector's records (Druid's Kafka supervisor JSON).
pub const CLICKS_SUPERVISOR: &str = include_str!("../deploy/clicks-supervisor.json");

/// The spec for this collector: its topic and schema, and its Kafka cluster when it writes one.
pub fn supervisor_spec(config: &CollectorConfig, schema: &str) -> anyhow::Result<Value> {
    let mut spec: Value = serde_json::from_str(CLICKS_SUPERVISOR)?;
    let io = &mut spec["spec"]["ioConfig"];
    io["topic"] = json!(config.topic);
    io["inputFormat"]["avroBytesDecoder"]["schema"] = serde_json::from_str(schema)?;
    if config.sink == SinkKind::Kafka {
        io["consumerProperties"] = json!({
            "bootstrap.servers": config.kafka.get("bootstrap.servers").cloned().unwrap_or_default()
        });
    }
    Ok(spec)
}

/// Submits the `clicks` supervisor unless one was ever submitted (a user who terminated it
/// keeps it terminated), and only for bare Avro records (Confluent framing needs a registry
/// the spec cannot name).
pub async fn ensure_supervisor(
    supervisors: &Supervisors,
    config: &CollectorConfig,
) -> anyhow::Result<()> {
    if config.framing != Framing::Naked {
        tracing::info!(
            "collector.framing is confluent: submit a clicks supervisor with a schema_registry decoder yourself"
        );
        return Ok(());
    }
    let (schema, _) = eddy_collector::load_mapping(config)?;
    let spec = supervisor_spec(config, &schema)?;
    let datasource = spec["spec"]["dataSchema"]["dataSource"]
        .as_str()
        .unwrap_or("clicks")
        .to_string();
    // Any record (running, suspended or terminated) means the user has one already.
    if supervisors.history(Some(&datasource)).is_ok() {
        return Ok(());
    }
    supervisors
        .submit(spec.to_string().as_bytes(), false)
        .await
        .map_err(|e| anyhow::anyhow!("submitting the clicks supervisor: {e}"))?;
    tracing::info!(%datasource, topic = %config.topic, "started the clicks supervisor");
    Ok(())
}

/// Answers the demo page with the node's SQL endpoint.
pub struct DemoQueries {
    pub sql_url: String,
    pub datasource: String,
    pub client: reqwest::Client,
}

#[async_trait]
impl eddy_collector::DemoEvents for DemoQueries {
    async fn recent(&self, party_id: &str) -> Result<Value, String> {
        let body = json!({
            "query": format!(
                "SELECT __time, eventType, location, eventParameters FROM \"{}\" WHERE partyId = ? ORDER BY __time DESC LIMIT 20",
                self.datasource
            ),
            "parameters": [{"type": "VARCHAR", "value": party_id}],
        });
        let response = self
            .client
            .post(&self.sql_url)
            .json(&body)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let status = response.status();
        let value: Value = response.json().await.map_err(|e| e.to_string())?;
        if status.is_success() {
            Ok(value)
        } else {
            Err(value["errorMessage"]
                .as_str()
                .unwrap_or("query failed")
                .to_string())
        }
    }
}

pub fn demo(node_addr: std::net::SocketAddr) -> Arc<dyn eddy_collector::DemoEvents> {
    Arc::new(DemoQueries {
        sql_url: format!("http://{node_addr}/druid/v2/sql"),
        datasource: "clicks".into(),
        client: reqwest::Client::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_spec_carries_the_built_in_schema() {
        let shipped: Value = serde_json::from_str(CLICKS_SUPERVISOR).unwrap();
        let schema: Value = serde_json::from_str(eddy_collector::output::DEFAULT_SCHEMA).unwrap();
        assert_eq!(
            shipped["spec"]["ioConfig"]["inputFormat"]["avroBytesDecoder"]["schema"], schema,
            "deploy/clicks-supervisor.json must embed collector/schema/clicks.avsc"
        );
        let fields: Vec<&str> = schema["fields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["name"].as_str().unwrap())
            .filter(|n| *n != "timestamp")
            .collect();
        let dims: Vec<&str> = shipped["spec"]["dataSchema"]["dimensionsSpec"]["dimensions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d.as_str().or_else(|| d["name"].as_str()).unwrap())
            .collect();
        assert_eq!(
            dims, fields,
            "every record field is a dimension, in schema order"
        );
    }

    #[test]
    fn a_kafka_collector_gets_a_kafka_spec() {
        let mut c = CollectorConfig {
            sink: SinkKind::Kafka,
            topic: "web".into(),
            ..CollectorConfig::default()
        };
        c.kafka.insert("bootstrap.servers".into(), "k1:9092".into());
        let spec = supervisor_spec(&c, eddy_collector::output::DEFAULT_SCHEMA).unwrap();
        assert_eq!(spec["spec"]["ioConfig"]["topic"], "web");
        assert_eq!(
            spec["spec"]["ioConfig"]["consumerProperties"]["bootstrap.servers"],
            "k1:9092"
        );
    }
}
