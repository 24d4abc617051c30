//! Key parts of a group: where each part's per-row ids come from (dictionary ids, long index
//! ids, segment-local ids for other numbers), and turning the ids of kept groups into values.

use std::collections::HashMap;

use eddy_segment::{BLOCK_ROWS, ColumnRef, LongIndex, NumericColumn, SegmentReader, StringColumn};
use eddy_types::TIME_COLUMN;

use super::super::aggs::Block;
use crate::error::QueryError;
use crate::partial::KeyValue;

/// Where a key part comes from.
pub(super) enum KeySource<'a> {
    Null,
    Strings {
        col: &'a dyn StringColumn,
        multi: bool,
    },
    Indexed(&'a dyn LongIndex),
    /// Numbers given segment-local ids (0 = null).
    Numbers {
        col: &'a dyn NumericColumn,
        is_long: bool,
        local: HashMap<u64, u32>,
        values: Vec<Option<u64>>,
    },
}

impl KeySource<'_> {
    /// Number of distinct ids, when known up front.
    pub(super) fn cardinality(&self) -> Option<u64> {
        match self {
            KeySource::Null => Some(1),
            KeySource::Strings { col, .. } => Some(u64::from(col.cardinality())),
            KeySource::Indexed(i) => Some(u64::from(i.cardinality())),
            KeySource::Numbers { .. } => None,
        }
    }
}

pub(super) fn open_key<'a>(segment: &'a dyn SegmentReader, name: &str) -> KeySource<'a> {
    if name == TIME_COLUMN {
        return KeySource::Numbers {
            col: segment.time(),
            is_long: true,
            local: HashMap::new(),
            values: vec![None],
        };
    }
    match segment.column(name) {
        None | Some(ColumnRef::Sketch(_)) => KeySource::Null,
        Some(ColumnRef::String(col)) => KeySource::Strings {
            col,
            multi: col.is_multi_value(),
        },
        Some(ColumnRef::Numeric(col)) => match col.index() {
            Some(index) => KeySource::Indexed(index),
            None => KeySource::Numbers {
                col,
                is_long: col.kind() == eddy_segment::codec::numeric::NumKind::Long,
                local: HashMap::new(),
                values: vec![None],
            },
        },
    }
}

/// Per-block ids of one key part: one id per row, or per-row lists for multi-value columns.
pub(super) struct PartIds {
    pub(super) ids: Vec<u32>,
    pub(super) offsets: Vec<u32>,
    pub(super) multi: bool,
    pub(super) longs: Vec<i64>,
    pub(super) doubles: Vec<f64>,
    pub(super) nulls: Vec<bool>,
}

impl PartIds {
    pub(super) fn new() -> Self {
        PartIds {
            ids: vec![0; BLOCK_ROWS],
            offsets: Vec::new(),
            multi: false,
            longs: vec![0; BLOCK_ROWS],
            doubles: vec![0.0; BLOCK_ROWS],
            nulls: vec![false; BLOCK_ROWS],
        }
    }

    pub(super) fn load(&mut self, src: &mut KeySource<'_>, b: &Block) -> Result<(), QueryError> {
        self.multi = false;
        match src {
            KeySource::Null => self.ids[..b.len].fill(0),
            KeySource::Strings { col, multi: false } => col.read_ids(b.index, &mut self.ids)?,
            KeySource::Strings { col, multi: true } => {
                self.multi = true;
                col.read_multi_ids(b.index, &mut self.offsets, &mut self.ids)?;
            }
            KeySource::Indexed(index) => index.read_ids(b.index, &mut self.ids)?,
            KeySource::Numbers {
                col,
                is_long,
                local,
                values,
            } => {
                if *is_long {
                    col.read_i64(b.index, &mut self.longs)?;
                } else {
                    col.read_f64(b.index, &mut self.doubles)?;
                }
                self.nulls[..b.len].fill(false);
                if let Some(nb) = col.nulls() {
                    for r in nb.range(b.start as u32..(b.start + b.len) as u32) {
                        self.nulls[r as usize - b.start] = true;
                    }
                }
                for i in 0..b.len {
                    if self.nulls[i] {
                        self.ids[i] = 0;
                        continue;
                    }
                    let bits = if *is_long {
                        self.longs[i] as u64
                    } else {
                        self.doubles[i].to_bits()
                    };
                    let next = values.len() as u32;
                    let id = *local.entry(bits).or_insert_with(|| {
                        values.push(Some(bits));
                        next
                    });
                    self.ids[i] = id;
                }
            }
        }
        Ok(())
    }

    pub(super) fn values_of(&self, row: usize) -> &[u32] {
        if self.multi {
            let (s, e) = (self.offsets[row] as usize, self.offsets[row + 1] as usize);
            if s == e { &[0] } else { &self.ids[s..e] }
        } else {
            std::slice::from_ref(&self.ids[row])
        }
    }
}

/// Values of the given ids of a key part.
pub(super) fn resolve(
    src: &KeySource<'_>,
    ids: &[u32],
) -> Result<hashbrown::HashMap<u32, KeyValue>, QueryError> {
    let mut out = hashbrown::HashMap::with_capacity(ids.len());
    match src {
        KeySource::Null => {}
        KeySource::Strings { col, .. } => {
            for (id, v) in ids.iter().zip(col.values(ids)?) {
                out.insert(*id, v.map_or(KeyValue::Null, KeyValue::Str));
            }
        }
        KeySource::Indexed(index) => {
            for id in ids {
                out.insert(*id, index.value(*id).map_or(KeyValue::Null, KeyValue::Long));
            }
        }
        KeySource::Numbers {
            is_long, values, ..
        } => {
            for id in ids {
                let v = values.get(*id as usize).copied().flatten();
                out.insert(
                    *id,
                    match v {
                        None => KeyValue::Null,
                        Some(bits) if *is_long => KeyValue::Long(bits as i64),
                        Some(bits) => KeyValue::Double(bits),
                    },
                );
            }
        }
    }
    Ok(out)
}
