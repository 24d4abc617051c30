//! The group table: composite keys of small per-part ids to dense group numbers.

use std::hash::BuildHasher;

use super::DENSE_LIMIT;
use super::packed::PackedSlots;

pub(super) enum Table {
    /// One key part with a known cardinality: the group is the part's id. Every id has a
    /// group from the start; `seen` marks those that met a row.
    Identity(Vec<bool>),
    Dense(Vec<u32>),
    /// Keys of all parts packed into 64 bits, found a block at a time.
    Hash(PackedSlots),
    Wide(hashbrown::HashMap<Vec<u32>, u32>),
    /// Keys of 64-bit words (a number's value bits, another part's id), found by their hash;
    /// each group's words are in `words`.
    Words(hashbrown::HashTable<u32>),
}

/// Bits of each key part's ids: enough for its cardinality, 32 when that is unknown.
fn part_bits(cards: &[Option<u64>]) -> Vec<u32> {
    cards
        .iter()
        .map(|c| c.map_or(32, |c| 64 - c.max(1).saturating_sub(1).leading_zeros()))
        .collect()
}

/// Whether two keys of a few words are equal, compared inline (slice equality calls `memcmp`,
/// a call per probe).
#[inline]
fn same_words(a: &[u64], b: &[u64]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x == y)
}

/// Whether the ids of parts of these cardinalities pack into one 64-bit key.
pub(super) fn packs(cards: &[Option<u64>]) -> bool {
    part_bits(cards).iter().sum::<u32>() <= 64
}

/// Maps composite keys to group numbers and remembers each group's key parts.
pub(super) struct GroupTable {
    pub(super) table: Table,
    pub(super) strides: Vec<u64>,
    pub(super) bits: Vec<u32>,
    /// Key parts of every group, `width` per group.
    pub(super) keys: Vec<u32>,
    /// Key words of every group, `width` per group (the `Words` table only).
    words: Vec<u64>,
    hasher: hashbrown::DefaultHashBuilder,
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
        let bits = part_bits(cards);
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
                words: Vec::new(),
                hasher: Default::default(),
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
                words: Vec::new(),
                hasher: Default::default(),
                width,
                count: 0,
            };
        }
        let total_bits: u32 = bits.iter().sum();
        // Sized for one group per row (at most 2^20) so that a many-group segment never
        // rehashes; a table of few groups leaves the rest of it untouched.
        let room = rows.min(product.unwrap_or(u64::MAX)).min(1 << 20) as usize;
        let table = if total_bits <= 64 {
            Table::Hash(PackedSlots::for_groups(room))
        } else {
            Table::Wide(hashbrown::HashMap::with_capacity(room))
        };
        GroupTable {
            table,
            strides,
            bits,
            keys: Vec::new(),
            words: Vec::new(),
            hasher: Default::default(),
            width,
            count: 0,
        }
    }

    /// A table for keys of `width` 64-bit words, sized like a hash table of [`GroupTable::new`].
    pub(super) fn of_words(width: usize, rows: u64) -> Self {
        let room = rows.min(1 << 20) as usize;
        GroupTable {
            table: Table::Words(hashbrown::HashTable::with_capacity(room)),
            strides: Vec::new(),
            bits: Vec::new(),
            keys: Vec::new(),
            words: Vec::with_capacity(room * width),
            hasher: Default::default(),
            width,
            count: 0,
        }
    }

    /// Key part `i` of group `g`: a word of a `Words` table, else an id.
    #[inline]
    pub(super) fn part(&self, g: usize, i: usize) -> u64 {
        match self.table {
            Table::Words(_) => self.words[g * self.width + i],
            _ => u64::from(self.keys[g * self.width + i]),
        }
    }

    /// The group of the key `words` in a `Words` table, creating it if new.
    #[inline]
    pub(super) fn group_words(&mut self, key: &[u64]) -> u32 {
        let GroupTable {
            table: Table::Words(table),
            words,
            hasher,
            width,
            count,
            ..
        } = self
        else {
            unreachable!("group_words is only called on a table of words")
        };
        let width = *width;
        let h = hasher.hash_one(key);
        let at = |g: u32| &words[g as usize * width..][..width];
        if let Some(&g) = table.find(h, |&g| same_words(at(g), key)) {
            return g;
        }
        let g = *count as u32;
        table.insert_unique(h, g, |&g| {
            hasher.hash_one(&words[g as usize * width..][..width])
        });
        for w in key {
            words.push(*w);
        }
        *count += 1;
        g
    }

    /// Appends to `out` the group of each key of `packed` in a `Hash` table, creating the new
    /// ones; the keys are packed as [`pack_keys`](super::packed::pack_keys) packs them.
    pub(super) fn group_packed(&mut self, packed: &[u64], out: &mut Vec<u32>) {
        let GroupTable {
            table: Table::Hash(slots),
            keys,
            bits,
            count,
            ..
        } = self
        else {
            unreachable!("group_packed is only called on a hash table")
        };
        let next = slots.group_block(packed, *count as u32, out, |mut key| {
            let start = keys.len();
            keys.resize(start + bits.len(), 0);
            for (part, b) in keys[start..].iter_mut().zip(bits.iter()).rev() {
                *part = (key & ((1u64 << b) - 1)) as u32;
                key = key.checked_shr(*b).unwrap_or(0);
            }
        });
        *count = next as usize;
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
            Table::Hash(slots) => {
                let mut key = 0u64;
                for (p, b) in parts.iter().zip(&self.bits) {
                    key = (key << b) | u64::from(*p);
                }
                slots.group(key, next)
            }
            Table::Words(_) => unreachable!("a table of words groups with group_words"),
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
