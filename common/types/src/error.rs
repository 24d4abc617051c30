//! One error vocabulary for every user-facing failure, mapped to HTTP status and Druid's error
//! body in one place. Crates keep their own `thiserror` enums and say which code each maps to.

use serde_json::{Value, json};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// The request is malformed or names something that cannot work (400).
    InvalidInput,
    /// A query's JSON could not be parsed (400).
    JsonParse,
    /// A SQL statement could not be parsed (400).
    SqlParse,
    /// A SQL statement parsed but cannot be planned (400).
    PlanValidation,
    /// The thing asked for does not exist (404).
    NotFound,
    /// A concurrent change got there first (409).
    Conflict,
    /// A query or operation ran past its deadline (504).
    Timeout,
    /// A query was cancelled on request (500, as Druid does).
    Cancelled,
    /// Too many concurrent queries (429).
    CapacityExceeded,
    /// A query would use more memory or rows than allowed (400).
    ResourceLimitExceeded,
    /// Valid but not implemented (501).
    Unsupported,
    /// A dependency (deep storage, metadata, a node) is down (503).
    Unavailable,
    /// Anything else: a bug or an I/O failure (500).
    Internal,
}

impl ErrorCode {
    pub fn http_status(self) -> u16 {
        match self {
            ErrorCode::InvalidInput
            | ErrorCode::JsonParse
            | ErrorCode::SqlParse
            | ErrorCode::PlanValidation
            | ErrorCode::ResourceLimitExceeded => 400,
            ErrorCode::NotFound => 404,
            ErrorCode::Conflict => 409,
            ErrorCode::CapacityExceeded => 429,
            ErrorCode::Unsupported => 501,
            ErrorCode::Unavailable => 503,
            ErrorCode::Timeout => 504,
            ErrorCode::Cancelled | ErrorCode::Internal => 500,
        }
    }

    /// Druid's legacy `error` code string.
    pub fn druid_error(self) -> &'static str {
        match self {
            ErrorCode::InvalidInput => "Invalid input",
            ErrorCode::JsonParse => "Json parse failed",
            ErrorCode::SqlParse => "SQL parse failed",
            ErrorCode::PlanValidation => "Plan validation failed",
            ErrorCode::NotFound => "Not found",
            ErrorCode::Conflict => "Conflict",
            ErrorCode::Timeout => "Query timeout",
            ErrorCode::Cancelled => "Query cancelled",
            ErrorCode::CapacityExceeded => "Query capacity exceeded",
            ErrorCode::ResourceLimitExceeded => "Resource limit exceeded",
            ErrorCode::Unsupported => "Unsupported operation",
            ErrorCode::Unavailable => "Service unavailable",
            ErrorCode::Internal => "Unknown exception",
        }
    }

    /// A Java-style class name where Druid clients look for one.
    pub fn druid_error_class(self) -> &'static str {
        match self {
            ErrorCode::InvalidInput | ErrorCode::PlanValidation => {
                "org.apache.druid.error.InvalidInput"
            }
            ErrorCode::JsonParse => "com.fasterxml.jackson.core.JsonParseException",
            ErrorCode::SqlParse => "org.apache.calcite.sql.parser.SqlParseException",
            ErrorCode::NotFound => "org.apache.druid.error.NotFound",
            ErrorCode::Conflict => "org.apache.druid.error.Conflict",
            ErrorCode::Timeout => "java.util.concurrent.TimeoutException",
            ErrorCode::Cancelled => "java.util.concurrent.CancellationException",
            ErrorCode::CapacityExceeded => "org.apache.druid.query.QueryCapacityExceededException",
            ErrorCode::ResourceLimitExceeded => {
                "org.apache.druid.query.ResourceLimitExceededException"
            }
            ErrorCode::Unsupported => "org.apache.druid.query.QueryUnsupportedException",
            ErrorCode::Unavailable => "org.apache.druid.query.QueryUnavailableException",
            ErrorCode::Internal => "java.lang.RuntimeException",
        }
    }

    /// DruidException category, for the newer error shape's `category` field.
    pub fn druid_category(self) -> &'static str {
        match self {
            ErrorCode::InvalidInput
            | ErrorCode::JsonParse
            | ErrorCode::SqlParse
            | ErrorCode::PlanValidation
            | ErrorCode::ResourceLimitExceeded => "INVALID_INPUT",
            ErrorCode::NotFound => "NOT_FOUND",
            ErrorCode::Conflict => "CONFLICT",
            ErrorCode::Timeout => "TIMEOUT",
            ErrorCode::Cancelled => "CANCELED",
            ErrorCode::CapacityExceeded => "CAPACITY_EXCEEDED",
            ErrorCode::Unsupported => "UNSUPPORTED",
            ErrorCode::Unavailable => "SERVICE_UNAVAILABLE",
            ErrorCode::Internal => "RUNTIME_FAILURE",
        }
    }

    /// Druid's error body: `error`, `errorMessage`, `errorClass`, `host`.
    pub fn druid_body(self, message: &str, host: &str) -> Value {
        json!({
            "error": self.druid_error(),
            "errorMessage": message,
            "errorClass": self.druid_error_class(),
            "host": host,
        })
    }
}

/// Implemented by every error type that can reach a user.
pub trait HasErrorCode {
    fn error_code(&self) -> ErrorCode;
}
