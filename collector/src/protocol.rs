//! Divolte's wire protocol: the tracker's query-string events, the JSON source, ids, the
//! custom-parameter encoding and the checksum. Pure functions over bytes and strings.

pub mod browser;
pub mod ids;
pub mod json;
pub mod mincode;
pub mod murmur3;
pub mod query;

/// What kind of rule a rejected request broke; the bad-rows record carries it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ViolationKind {
    /// A required parameter is missing or malformed.
    Protocol,
    /// The request or an event is larger than allowed.
    Size,
    /// The checksum did not match and `discard_corrupted` is on.
    Checksum,
    /// The event could not be mapped onto the schema.
    Mapping,
}

impl ViolationKind {
    pub fn name(self) -> &'static str {
        match self {
            ViolationKind::Protocol => "tracker_protocol_violation",
            ViolationKind::Size => "size_violation",
            ViolationKind::Checksum => "checksum_violation",
            ViolationKind::Mapping => "mapping_failure",
        }
    }
}

/// Why an event was not accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    pub kind: ViolationKind,
    pub message: String,
}

impl Invalid {
    pub fn new(kind: ViolationKind, message: String) -> Invalid {
        Invalid { kind, message }
    }
}

impl std::fmt::Display for Invalid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.kind.name(), self.message)
    }
}
