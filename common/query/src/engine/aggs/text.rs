//! stringMin and stringMax: per group the best dictionary id by the rank of its value (the id
//! itself when the dictionary is sorted), turned into text only for the groups' answers.

use eddy_segment::{BLOCK_ROWS, StringColumn};

use super::{Agg, Block, Groups, Rows};
use crate::error::QueryError;
use crate::partial::AggValue;

pub(super) struct TextExtreme<'a> {
    max: bool,
    /// None: the column is missing here, so every group stays null.
    col: Option<&'a dyn StringColumn>,
    /// Rank of each id's value in byte order, 1-based (0 for null); empty when ids are ranks.
    rank: Vec<u32>,
    /// The id of each rank, when `rank` is used.
    id_of: Vec<u32>,
    /// Best rank per group (0: no value yet).
    best: Vec<u32>,
    ids: Vec<u32>,
    offsets: Vec<u32>,
}

impl<'a> TextExtreme<'a> {
    pub(super) fn new(max: bool, col: Option<&'a dyn StringColumn>) -> Result<Self, QueryError> {
        let (mut rank, mut id_of) = (Vec::new(), Vec::new());
        if let Some(c) = col.filter(|c| !c.is_sorted()) {
            let mut values: Vec<(u32, String)> = Vec::with_capacity(c.cardinality() as usize);
            c.for_each_value(&mut |id, v| values.push((id, v.to_string())))?;
            values.sort_unstable_by(|a, b| a.1.cmp(&b.1));
            rank = vec![0; c.cardinality() as usize];
            id_of = vec![0; values.len() + 1];
            for (r, (id, _)) in values.iter().enumerate() {
                rank[*id as usize] = r as u32 + 1;
                id_of[r + 1] = *id;
            }
        }
        Ok(TextExtreme {
            max,
            col,
            rank,
            id_of,
            best: Vec::new(),
            ids: vec![0; BLOCK_ROWS],
            offsets: Vec::new(),
        })
    }

    fn rank_of(&self, id: u32) -> u32 {
        if self.rank.is_empty() {
            id
        } else {
            self.rank[id as usize]
        }
    }

    fn offer(&mut self, group: u32, id: u32) {
        let r = self.rank_of(id);
        let best = &mut self.best[group as usize];
        if r != 0 && (*best == 0 || (self.max && r > *best) || (!self.max && r < *best)) {
            *best = r;
        }
    }
}

impl Agg for TextExtreme<'_> {
    fn grow(&mut self, groups: usize) {
        self.best.resize(groups, 0);
    }

    fn update(&mut self, b: &Block, rows: Rows<'_>, groups: Groups<'_>) -> Result<(), QueryError> {
        let Some(col) = self.col else {
            return Ok(());
        };
        let group = |k: usize| match groups {
            Groups::One(g) => g,
            Groups::Each(gs) => gs[k],
        };
        if col.is_multi_value() {
            // Every value of a row counts.
            let mut ids = std::mem::take(&mut self.ids);
            col.read_multi_ids(b.index, &mut self.offsets, &mut ids)?;
            for k in 0..rows.len() {
                let r = rows.get(k);
                let (from, to) = (self.offsets[r] as usize, self.offsets[r + 1] as usize);
                for &id in &ids[from..to] {
                    self.offer(group(k), id);
                }
            }
            self.ids = ids;
        } else {
            col.read_ids(b.index, &mut self.ids)?;
            for k in 0..rows.len() {
                let id = self.ids[rows.get(k)];
                self.offer(group(k), id);
            }
        }
        Ok(())
    }

    /// The whole segment in one group: the best rank whose id holds rows, found from the
    /// dictionary's end through the bitmaps (the ranks of ids nothing holds are skipped).
    fn whole_segment(&mut self, group: usize, _num_rows: usize) -> bool {
        let Some(col) = self.col.filter(|c| c.has_bitmaps()) else {
            return self.col.is_none();
        };
        let ranks = col.cardinality().saturating_sub(1);
        for step in 0..ranks {
            let r = if self.max { ranks - step } else { step + 1 };
            let id = if self.rank.is_empty() {
                r
            } else {
                self.id_of[r as usize]
            };
            match col.bitmap(id) {
                Ok(b) if b.is_empty() => continue,
                Ok(_) => {
                    self.best[group] = r;
                    return true;
                }
                // Read it row by row instead, where the error will surface.
                Err(_) => return false,
            }
        }
        true
    }

    fn value(&self, group: usize) -> AggValue {
        let (Some(col), r) = (self.col, self.best[group]) else {
            return AggValue::Text(None);
        };
        if r == 0 {
            return AggValue::Text(None);
        }
        let id = if self.rank.is_empty() {
            r
        } else {
            self.id_of[r as usize]
        };
        match col.value(id) {
            Ok(v) => AggValue::Text(v.map(|v| v.into_owned())),
            Err(e) => {
                tracing::error!(error = %e, id, "string dictionary could not be read");
                AggValue::Text(None)
            }
        }
    }
}
