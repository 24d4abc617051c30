//! Query errors and their Druid error codes.

use eddy_segment::SegmentError;
use eddy_types::{ErrorCode, HasErrorCode};

#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// The body is not valid JSON or does not match a query's shape.
    #[error("{0}")]
    Json(String),
    /// The query is well-formed but asks for something that cannot work.
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Unsupported(String),
    #[error("query {query_id} timed out after {timeout_ms} ms")]
    Timeout { query_id: String, timeout_ms: u64 },
    #[error("query {0} was cancelled")]
    Cancelled(String),
    #[error("{0}")]
    ResourceLimit(String),
    #[error(transparent)]
    Segment(#[from] SegmentError),
    /// Data the query needs is not available.
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    Internal(String),
}

impl HasErrorCode for QueryError {
    fn error_code(&self) -> ErrorCode {
        match self {
            QueryError::Json(_) => ErrorCode::JsonParse,
            QueryError::Invalid(_) => ErrorCode::InvalidInput,
            QueryError::Unsupported(_) => ErrorCode::Unsupported,
            QueryError::Timeout { .. } => ErrorCode::Timeout,
            QueryError::Cancelled(_) => ErrorCode::Cancelled,
            QueryError::ResourceLimit(_) => ErrorCode::ResourceLimitExceeded,
            QueryError::Segment(e) => e.error_code(),
            QueryError::Unavailable(_) => ErrorCode::Unavailable,
            QueryError::Internal(_) => ErrorCode::Internal,
        }
    }
}
