use eddy_types::{ErrorCode, HasErrorCode};

#[derive(Debug, thiserror::Error)]
pub enum MetaError {
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("not found: {0}")]
    NotFound(String),
    #[error("metadata store i/o error at {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("metadata store at {path} is damaged: {reason}")]
    Corrupt { path: String, reason: String },
    #[error("metadata store is unavailable: {0}")]
    Unavailable(String),
}

impl HasErrorCode for MetaError {
    fn error_code(&self) -> ErrorCode {
        match self {
            MetaError::Conflict(_) => ErrorCode::Conflict,
            MetaError::NotFound(_) => ErrorCode::NotFound,
            MetaError::Unavailable(_) => ErrorCode::Unavailable,
            MetaError::Io { .. } | MetaError::Corrupt { .. } => ErrorCode::Internal,
        }
    }
}
