//! Identifiers that cross crate boundaries: datasource names, segment ids, node and task ids.
//! Each is validated when it is made, so code that holds one never checks it again.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::interval::Interval;
use crate::time::format_iso;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {what} {value:?}: {reason}")]
pub struct IdError {
    pub what: &'static str,
    pub value: String,
    pub reason: &'static str,
}

/// A datasource (table) name. Druid's rules: not empty, no `/`, does not start with `.`, no
/// control characters or tabs.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct DataSourceName(Arc<str>);

impl DataSourceName {
    pub fn new(name: impl AsRef<str>) -> Result<Self, IdError> {
        let name = name.as_ref();
        let err = |reason| IdError {
            what: "dataSource",
            value: name.to_string(),
            reason,
        };
        if name.trim().is_empty() {
            return Err(err("it is empty"));
        }
        if name.contains('/') {
            return Err(err("it contains '/'"));
        }
        if name.starts_with('.') {
            return Err(err("it starts with '.'"));
        }
        if name.chars().any(|c| c.is_control()) {
            return Err(err("it contains control characters"));
        }
        if name.len() > 255 {
            return Err(err("it is longer than 255 bytes"));
        }
        Ok(DataSourceName(name.into()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for DataSourceName {
    type Error = IdError;
    fn try_from(s: String) -> Result<Self, IdError> {
        DataSourceName::new(s)
    }
}

impl From<DataSourceName> for String {
    fn from(d: DataSourceName) -> String {
        d.0.to_string()
    }
}

impl fmt::Display for DataSourceName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One segment: (datasource, interval, version, partition). Its text form is Druid's:
/// `ds_start_end_version` with `_partition` appended when the partition is not 0.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SegmentId {
    pub datasource: DataSourceName,
    pub interval: Interval,
    pub version: String,
    pub partition: u32,
}

impl SegmentId {
    /// A relative path for the segment's files, safe on object stores and local disks.
    pub fn storage_path(&self) -> String {
        format!(
            "{}/{}/{}/{}",
            self.datasource,
            self.interval.to_path_form(),
            self.version.replace(':', "-"),
            self.partition
        )
    }
}

impl fmt::Display for SegmentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}_{}_{}_{}",
            self.datasource,
            format_iso(self.interval.start),
            format_iso(self.interval.end),
            self.version
        )?;
        if self.partition != 0 {
            write!(f, "_{}", self.partition)?;
        }
        Ok(())
    }
}

macro_rules! string_id {
    ($name:ident, $what:literal) => {
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(Arc<str>);

        impl $name {
            pub fn new(id: impl AsRef<str>) -> Result<Self, IdError> {
                let id = id.as_ref();
                if id.is_empty() || id.len() > 512 || id.chars().any(|c| c.is_control() || c == '/')
                {
                    return Err(IdError {
                        what: $what,
                        value: id.to_string(),
                        reason: "must be 1..512 printable characters without '/'",
                    });
                }
                Ok($name(id.into()))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(s: String) -> Result<Self, IdError> {
                $name::new(s)
            }
        }

        impl From<$name> for String {
            fn from(d: $name) -> String {
                d.0.to_string()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

string_id!(NodeId, "node id");
string_id!(TaskId, "task id");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datasource_rules() {
        assert!(DataSourceName::new("wikipedia").is_ok());
        assert!(DataSourceName::new("").is_err());
        assert!(DataSourceName::new("a/b").is_err());
        assert!(DataSourceName::new(".hidden").is_err());
        assert!(DataSourceName::new("tab\there").is_err());
    }

    #[test]
    fn segment_id_text() {
        let id = SegmentId {
            datasource: DataSourceName::new("wiki").unwrap(),
            interval: Interval::parse("2013-01-01/P1D").unwrap(),
            version: "2024-01-01T00:00:00.000Z".into(),
            partition: 0,
        };
        assert_eq!(
            id.to_string(),
            "wiki_2013-01-01T00:00:00.000Z_2013-01-02T00:00:00.000Z_2024-01-01T00:00:00.000Z"
        );
        let p1 = SegmentId {
            partition: 1,
            ..id.clone()
        };
        assert!(p1.to_string().ends_with("_1"));
        assert!(!id.storage_path().contains(':'));
    }
}
