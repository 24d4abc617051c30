use eddy_types::{ErrorCode, HasErrorCode};

#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    #[error("topic {0:?} does not exist")]
    UnknownTopic(String),
    #[error("topic {0:?} already exists")]
    TopicExists(String),
    #[error("partition {partition} of topic {topic:?} does not exist")]
    UnknownPartition { topic: String, partition: u32 },
    #[error(
        "offset {offset} of partition {partition} of topic {topic:?} is out of range ({earliest}..{next})"
    )]
    OffsetOutOfRange {
        topic: String,
        partition: u32,
        offset: u64,
        earliest: u64,
        next: u64,
    },
    #[error("{0}")]
    Invalid(String),
    #[error("stream i/o error at {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the stream is unavailable: {0}")]
    Unavailable(String),
}

impl StreamError {
    pub(crate) fn io(path: &std::path::Path, source: std::io::Error) -> Self {
        StreamError::Io {
            path: path.display().to_string(),
            source,
        }
    }
}

impl HasErrorCode for StreamError {
    fn error_code(&self) -> ErrorCode {
        match self {
            StreamError::UnknownTopic(_) | StreamError::UnknownPartition { .. } => {
                ErrorCode::NotFound
            }
            StreamError::TopicExists(_) => ErrorCode::Conflict,
            StreamError::OffsetOutOfRange { .. } | StreamError::Invalid(_) => {
                ErrorCode::InvalidInput
            }
            StreamError::Io { .. } => ErrorCode::Internal,
            StreamError::Unavailable(_) => ErrorCode::Unavailable,
        }
    }
}
