use eddy_types::{ErrorCode, HasErrorCode};

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// The spec cannot work; the message names the field.
    #[error("{0}")]
    Spec(String),
    #[error("{0}")]
    Io(String),
    /// Too many unparseable rows.
    #[error("{0}")]
    TooManyParseErrors(String),
}

impl HasErrorCode for IngestError {
    fn error_code(&self) -> ErrorCode {
        match self {
            IngestError::Spec(_) => ErrorCode::InvalidInput,
            IngestError::Io(_) | IngestError::TooManyParseErrors(_) => ErrorCode::Internal,
        }
    }
}
