//! Segment errors. A damaged file always names the segment and the part that failed.

use eddy_types::{ErrorCode, HasErrorCode};

#[derive(Debug, thiserror::Error)]
pub enum SegmentError {
    #[error("segment {segment} is corrupt in {part}: {reason}")]
    Corrupt {
        segment: String,
        part: String,
        reason: String,
    },
    #[error(
        "segment {segment} has format version {found}, newer than this build reads ({supported})"
    )]
    UnsupportedVersion {
        segment: String,
        found: u32,
        supported: u32,
    },
    #[error("segment {segment}: i/o error: {source}")]
    Io {
        segment: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Invalid(String),
}

impl SegmentError {
    pub fn corrupt(
        segment: impl Into<String>,
        part: impl Into<String>,
        reason: impl Into<String>,
    ) -> Self {
        SegmentError::Corrupt {
            segment: segment.into(),
            part: part.into(),
            reason: reason.into(),
        }
    }
}

impl HasErrorCode for SegmentError {
    fn error_code(&self) -> ErrorCode {
        match self {
            SegmentError::Invalid(_) => ErrorCode::InvalidInput,
            _ => ErrorCode::Internal,
        }
    }
}

pub type Result<T, E = SegmentError> = std::result::Result<T, E>;
