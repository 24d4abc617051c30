//! Input formats and sources of ingestion specs: how bytes become rows (`inputFormat`,
//! `flattenSpec`, Avro decoders) and where batch tasks read them (`inputSource`).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::ingest::default_true;
use crate::serde_util::{bool_lenient, opt_bool_lenient};

/// `flattenSpec` of json, parquet and avro input formats.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FlattenSpec {
    #[serde(default = "default_true", deserialize_with = "bool_lenient")]
    pub use_field_discovery: bool,
    #[serde(default)]
    pub fields: Vec<FlattenField>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FlattenField {
    #[serde(rename = "type")]
    pub kind: String,
    pub name: String,
    #[serde(default)]
    pub expr: Option<String>,
    #[serde(default)]
    pub nodes: Option<Vec<String>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(
    tag = "type",
    rename_all = "snake_case",
    rename_all_fields = "camelCase"
)]
pub enum InputFormat {
    Json {
        #[serde(default)]
        flatten_spec: Option<FlattenSpec>,
        #[serde(default, deserialize_with = "bool_lenient")]
        keep_null_columns: bool,
    },
    Csv {
        #[serde(default)]
        columns: Vec<String>,
        #[serde(default, deserialize_with = "opt_bool_lenient")]
        find_columns_from_header: Option<bool>,
        #[serde(default)]
        skip_header_rows: usize,
        #[serde(default)]
        list_delimiter: Option<String>,
    },
    Tsv {
        #[serde(default)]
        columns: Vec<String>,
        #[serde(default, deserialize_with = "opt_bool_lenient")]
        find_columns_from_header: Option<bool>,
        #[serde(default)]
        skip_header_rows: usize,
        #[serde(default)]
        list_delimiter: Option<String>,
        #[serde(default)]
        delimiter: Option<String>,
    },
    Parquet {
        #[serde(default)]
        flatten_spec: Option<FlattenSpec>,
        #[serde(default, deserialize_with = "bool_lenient")]
        binary_as_string: bool,
    },
    AvroOcf {
        #[serde(default)]
        flatten_spec: Option<FlattenSpec>,
        #[serde(default, deserialize_with = "bool_lenient")]
        binary_as_string: bool,
        #[serde(default)]
        schema: Option<Value>,
    },
    /// One Avro datum per stream message (streams only).
    AvroStream {
        #[serde(default)]
        flatten_spec: Option<FlattenSpec>,
        #[serde(default, deserialize_with = "bool_lenient")]
        binary_as_string: bool,
        avro_bytes_decoder: AvroBytesDecoder,
    },
    /// Kafka's record wrapper (streams only): the value parsed with `valueFormat`, plus the
    /// key, timestamp, topic and headers as columns.
    Kafka {
        value_format: Box<InputFormat>,
        #[serde(default)]
        key_format: Option<Box<InputFormat>>,
        #[serde(default)]
        header_format: Option<Value>,
        #[serde(default)]
        key_column_name: Option<String>,
        #[serde(default)]
        timestamp_column_name: Option<String>,
        #[serde(default)]
        topic_column_name: Option<String>,
        #[serde(default)]
        header_column_prefix: Option<String>,
    },
}

/// How `avro_stream` finds the writer schema of a message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(
    tag = "type",
    rename_all = "snake_case",
    rename_all_fields = "camelCase"
)]
pub enum AvroBytesDecoder {
    /// Every message is a bare datum of this schema.
    SchemaInline { schema: Value },
    /// Confluent framing (magic byte 0, 4-byte schema id, datum); schemas come from the
    /// registry at `url` (or the first of `urls`).
    SchemaRegistry {
        #[serde(default)]
        url: Option<String>,
        #[serde(default)]
        urls: Option<Vec<String>>,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(
    tag = "type",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum InputSource {
    Local {
        #[serde(default)]
        base_dir: Option<String>,
        #[serde(default)]
        filter: Option<String>,
        #[serde(default)]
        files: Vec<String>,
    },
    Inline {
        data: String,
    },
    Http {
        uris: Vec<String>,
        #[serde(default)]
        http_authentication_username: Option<String>,
        #[serde(default)]
        http_authentication_password: Option<Value>,
    },
}
