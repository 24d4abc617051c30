//! The group table: composite keys of small per-part ids to dense group numbers.

use super::DENSE_LIMIT;

pub(super) enum Table {
    /// One key part with a known cardinality: the group is the part's id. Every id has a
    /// group from the start; `seen` marks those that met a row.
    Identity(Vec<bool>),
    Dense(Vec<u32>),
    Hash(hashbrown::HashMap<u64, u32>),
    Wide(hashbrown::HashMap<Vec<u32>, u32>),
}

/// Maps composite keys to group numbers and remembers each group's key parts.
pub(super) struct GroupTable {
    pub(super) table: Table,
    pub(super) strides: Vec<u64>,
    pub(super) bits: Vec<u32>,
    /// Key parts of every group, `width` per group.
    pub(super) keys: Vec<u32>,
    pub(super) width: usize,
    pub(super) count: usize,
}

impl GroupTable {
    /// A table for keys of the given part cardinalities; `rows` is how many rows will be
    /// grouped (a one-part key indexes groups by id directly when ids are dense enough).
    pub(super) fn new(cards: &[Option<u64>], rows: u64) -> Self {
        let width = cards.len();
        let product = cards
            .iter()
            .try_fold(1u64, |acc, c| c.and_then(|c| acc.checked_mul(c.max(1))));
        let bits: Vec<u32> = cards
            .iter()
            .map(|c| c.map_or(32, |c| 64 - c.max(1).saturating_sub(1).leading_zeros()))
            .collect();
        let mut strides = vec![1u64; width];
        if let (1, Some(p)) = (
            width,
            product.filter(|p| *p <= DENSE_LIMIT && rows >= *p / 8),
        ) {
            return GroupTable {
                table: Table::Identity(vec![false; p as usize]),
                strides,
                bits,
                keys: (0..p as u32).collect(),
                width,
                count: p as usize,
            };
        }
        if let Some(p) = product.filter(|p| *p <= DENSE_LIMIT) {
            for i in (0..width.saturating_sub(1)).rev() {
                strides[i] = strides[i + 1] * cards[i + 1].unwrap_or(1).max(1);
            }
            return GroupTable {
                table: Table::Dense(vec![u32::MAX; p as usize]),
                strides,
                bits,
                keys: Vec::new(),
                width,
                count: 0,
            };
        }
        let total_bits: u32 = bits.iter().sum();
        // Sized for one group per row (at most 2^20) so that a many-group segment never
        // rehashes; a table of few groups leaves the rest of it untouched.
        let room = rows.min(product.unwrap_or(u64::MAX)).min(1 << 20) as usize;
        let table = if total_bits <= 64 {
            Table::Hash(hashbrown::HashMap::with_capacity(room))
        } else {
            Table::Wide(hashbrown::HashMap::with_capacity(room))
        };
        GroupTable {
            table,
            strides,
            bits,
            keys: Vec::new(),
            width,
            count: 0,
        }
    }

    pub(super) fn len(&self) -> usize {
        self.count
    }

    /// Groups that met at least one row.
    pub(super) fn used(&self) -> Vec<usize> {
        match &self.table {
            Table::Identity(seen) => (0..seen.len()).filter(|g| seen[*g]).collect(),
            _ => (0..self.count).collect(),
        }
    }

    /// The group of `parts`, creating it if new (then `created` is true).
    #[inline]
    pub(super) fn group(&mut self, parts: &[u32]) -> (u32, bool) {
        let next = self.len() as u32;
        let (g, created) = match &mut self.table {
            Table::Identity(seen) => {
                seen[parts[0] as usize] = true;
                return (parts[0], false);
            }
            Table::Dense(map) => {
                let slot = parts
                    .iter()
                    .zip(&self.strides)
                    .map(|(p, s)| u64::from(*p) * s)
                    .sum::<u64>() as usize;
                if map[slot] == u32::MAX {
                    map[slot] = next;
                    (next, true)
                } else {
                    (map[slot], false)
                }
            }
            Table::Hash(map) => {
                let mut key = 0u64;
                for (p, b) in parts.iter().zip(&self.bits) {
                    key = (key << b) | u64::from(*p);
                }
                let mut created = false;
                let g = *map.entry(key).or_insert_with(|| {
                    created = true;
                    next
                });
                (g, created)
            }
            Table::Wide(map) => match map.get(parts) {
                Some(g) => (*g, false),
                None => {
                    map.insert(parts.to_vec(), next);
                    (next, true)
                }
            },
        };
        if created {
            self.keys.extend_from_slice(parts);
            self.count += 1;
        }
        (g, created)
    }
}
