//! The segment file layout.
//!
//! ```text
//! header   "EDDYSEG1"  u32 format_version  u32 reserved
//! parts    column parts, back to back
//! footer   JSON: format version, segment id, rows, schema, stats, and the part table
//!          (name, offset, length, CRC-32 of every part)
//! trailer  u64 footer_offset  u32 footer_len  u32 footer_crc  "EDDYEND1"
//! ```
//!
//! Readers check the magic numbers, the footer's CRC, the format version, that every part lies
//! inside the file, and every part's CRC before they answer anything, so a truncated or damaged
//! file fails to open with the name of the damaged part instead of giving wrong answers.

use serde::{Deserialize, Serialize};

use eddy_types::SegmentId;

use crate::schema::{ColumnStats, SegmentSchema};

pub const MAGIC: &[u8; 8] = b"EDDYSEG1";
pub const TAIL_MAGIC: &[u8; 8] = b"EDDYEND1";
pub const HEADER_LEN: usize = 16;
pub const TRAILER_LEN: usize = 24;
/// Newest format this build writes and reads. Additions to the footer stay readable by older
/// builds (unknown JSON keys are ignored); a layout change bumps this number.
pub const FORMAT_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PartRef {
    pub name: String,
    pub offset: u64,
    pub len: u64,
    pub crc32: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Footer {
    pub format_version: u32,
    pub segment_id: SegmentId,
    pub num_rows: u64,
    pub block_rows: u32,
    pub time_sorted: bool,
    pub min_time: Option<i64>,
    pub max_time: Option<i64>,
    pub schema: SegmentSchema,
    /// Aligned with `schema.columns`.
    pub stats: Vec<ColumnStats>,
    pub parts: Vec<PartRef>,
}

impl Footer {
    pub fn part(&self, name: &str) -> Option<&PartRef> {
        self.parts.iter().find(|p| p.name == name)
    }
}

/// Part names: `__time`, and `c{index}.{kind}` for column `index` of the schema.
pub fn part_name(column: usize, kind: &str) -> String {
    format!("c{column}.{kind}")
}

/// A human name for a part in error messages: `column "page" (dict)`.
pub fn describe_part(schema: &SegmentSchema, part: &str) -> String {
    if part == "__time" {
        return "column \"__time\"".to_string();
    }
    let parsed = part
        .strip_prefix('c')
        .and_then(|rest| rest.split_once('.'))
        .and_then(|(i, kind)| i.parse::<usize>().ok().map(|i| (i, kind)));
    match parsed.and_then(|(i, kind)| schema.columns.get(i).map(|c| (c, kind))) {
        Some((c, kind)) => format!("column {:?} ({kind})", c.name),
        None => format!("part {part:?}"),
    }
}
