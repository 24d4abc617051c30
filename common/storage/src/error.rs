use std::path::Path;

use eddy_types::{ErrorCode, HasErrorCode};

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("{0}")]
    Config(String),
    #[error("i/o error at {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("deep storage error for {key}: {source}")]
    Store {
        key: String,
        #[source]
        source: object_store::Error,
    },
    #[error("segment {key} downloaded with checksum {actual:08x}, expected {expected:08x}")]
    Checksum {
        key: String,
        expected: u32,
        actual: u32,
    },
}

impl StorageError {
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        StorageError::Io {
            path: path.display().to_string(),
            source,
        }
    }

    pub fn store(key: &str, source: object_store::Error) -> Self {
        StorageError::Store {
            key: key.to_string(),
            source,
        }
    }
}

impl HasErrorCode for StorageError {
    fn error_code(&self) -> ErrorCode {
        match self {
            StorageError::Config(_) => ErrorCode::InvalidInput,
            StorageError::Store { .. } => ErrorCode::Unavailable,
            _ => ErrorCode::Internal,
        }
    }
}
