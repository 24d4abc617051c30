//! HTTP error responses in Druid's shape, for every role's API: one `ApiError` type carrying an
//! `ErrorCode` that decides the status, and the body `{error, errorMessage, errorClass, host}`.

use std::sync::OnceLock;

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use eddy_types::{ErrorCode, HasErrorCode};

static HOST: OnceLock<String> = OnceLock::new();

/// Sets the `host` reported in error bodies (the node's advertised address).
pub fn set_host(host: &str) {
    let _ = HOST.set(host.to_string());
}

pub fn host() -> &'static str {
    HOST.get().map_or("localhost", String::as_str)
}

#[derive(Debug, Clone)]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError {
            code,
            message: message.into(),
        }
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        ApiError::new(ErrorCode::InvalidInput, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        ApiError::new(ErrorCode::NotFound, message)
    }

    pub fn from_error<E: HasErrorCode + std::fmt::Display>(e: &E) -> Self {
        ApiError::new(e.error_code(), e.to_string())
    }
}

impl<E: HasErrorCode + std::fmt::Display> From<E> for ApiError {
    fn from(e: E) -> Self {
        ApiError::from_error(&e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.code.http_status())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        if status.is_server_error() {
            tracing::warn!(code = ?self.code, message = %self.message, "request failed");
        }
        (status, Json(self.code.druid_body(&self.message, host()))).into_response()
    }
}

/// Druid-style JSON body parsing: malformed JSON is a 400 with the parser's message.
pub fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8], what: &str) -> Result<T, ApiError> {
    let de = &mut serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.inner();
        let msg = if inner.is_syntax() || inner.is_eof() {
            format!("{what} is not valid JSON: {inner}")
        } else if path == "." {
            format!("{what}: {inner}")
        } else {
            format!("{what}: {path}: {inner}")
        };
        ApiError::new(ErrorCode::JsonParse, msg)
    })
}
