//! Group numbers of composite keys packed into one 64-bit number, found a block of rows at a
//! time. The table is open addressing with linear probing over a power-of-two array of slots
//! holding the key itself and its group, at most three quarters full.
//!
//! A segment with hundreds of thousands of groups has a table far larger than the caches, so
//! nearly every row's probe waits for memory. With the key in the slot a probe reads one cache
//! line, and probing a whole block lets the slot of a row some rows ahead be fetched while this
//! row is placed, so the waits of many rows overlap instead of queueing one after the other.

use eddy_segment::hint::prefetch;

use super::aggs::Rows;
use super::keys::PartIds;

/// How many rows ahead a row's home slot is fetched.
const AHEAD: usize = 12;

/// Marks an empty slot (no segment has 2^32 - 1 groups).
const EMPTY: u32 = u32::MAX;

#[derive(Clone, Copy)]
struct Slot {
    key: u64,
    group: u32,
}

pub(super) struct PackedSlots {
    slots: Vec<Slot>,
    len: usize,
}

fn hash(key: u64) -> u64 {
    let p = u128::from(key ^ 0x243F_6A88_85A3_08D3) * 0x9E37_79B9_7F4A_7C15;
    (p as u64) ^ ((p >> 64) as u64)
}

/// Slots for `groups` groups at most three quarters full.
fn size_for(groups: usize) -> usize {
    (groups.max(12) * 4 / 3 + 1).next_power_of_two()
}

impl PackedSlots {
    /// A table with room for `groups` groups before it grows.
    pub(super) fn for_groups(groups: usize) -> Self {
        PackedSlots {
            slots: vec![
                Slot {
                    key: 0,
                    group: EMPTY
                };
                size_for(groups)
            ],
            len: 0,
        }
    }

    /// The group of `key`, numbered `next` if it is new (then the bool is true).
    #[inline]
    pub(super) fn group(&mut self, key: u64, next: u32) -> (u32, bool) {
        self.reserve(1);
        let mask = self.slots.len() - 1;
        self.place(key, hash(key), next, mask)
    }

    /// Appends to `out` the group of each of `keys`; new keys are numbered from `next` on, in
    /// order, and `created` is called with each. Returns the next unused group number.
    pub(super) fn group_block(
        &mut self,
        keys: &[u64],
        mut next: u32,
        out: &mut Vec<u32>,
        mut created: impl FnMut(u64),
    ) -> u32 {
        self.reserve(keys.len());
        let mask = self.slots.len() - 1;
        let home = |k: &u64| self.slots.as_ptr().wrapping_add(hash(*k) as usize & mask);
        keys.iter().take(AHEAD).for_each(|k| prefetch(home(k)));
        for (i, &key) in keys.iter().enumerate() {
            if let Some(k) = keys.get(i + AHEAD) {
                prefetch(self.slots.as_ptr().wrapping_add(hash(*k) as usize & mask));
            }
            let (g, new) = self.place(key, hash(key), next, mask);
            if new {
                created(key);
                next += 1;
            }
            out.push(g);
        }
        next
    }

    /// The group of `key` (with hash `h`), given `next` if new; there is room for it.
    #[inline]
    fn place(&mut self, key: u64, h: u64, next: u32, mask: usize) -> (u32, bool) {
        let mut i = h as usize & mask;
        loop {
            let s = &mut self.slots[i];
            if s.group == EMPTY {
                *s = Slot { key, group: next };
                self.len += 1;
                return (next, true);
            }
            if s.key == key {
                return (s.group, false);
            }
            i = (i + 1) & mask;
        }
    }

    /// Room for `more` groups, moving the slots into a larger array if needed.
    fn reserve(&mut self, more: usize) {
        if (self.len + more) * 4 <= self.slots.len() * 3 {
            return;
        }
        let empty = Slot {
            key: 0,
            group: EMPTY,
        };
        let old = std::mem::replace(&mut self.slots, vec![empty; size_for(self.len + more)]);
        let mask = self.slots.len() - 1;
        for s in old.into_iter().filter(|s| s.group != EMPTY) {
            let mut i = hash(s.key) as usize & mask;
            while self.slots[i].group != EMPTY {
                i = (i + 1) & mask;
            }
            self.slots[i] = s;
        }
    }
}

/// The packed keys of the block's selected `rows` into `out`: the time bucket's ordinal first
/// when `buckets` is given, then each part's id, each shifted in by its `bits` (one per key
/// part, the bucket's first), as [`GroupTable::group`](super::table::GroupTable::group) packs
/// them.
pub(super) fn pack_keys(
    parts: &[PartIds],
    bits: &[u32],
    buckets: Option<&[u32]>,
    rows: Rows<'_>,
    out: &mut Vec<u64>,
) {
    out.clear();
    match buckets {
        Some(b) => out.extend((0..rows.len()).map(|i| u64::from(b[rows.get(i)]))),
        None => out.resize(rows.len(), 0),
    }
    let part_bits = &bits[usize::from(buckets.is_some())..];
    for (p, &b) in parts.iter().zip(part_bits) {
        for (i, key) in out.iter_mut().enumerate() {
            *key = (*key << b) | u64::from(p.ids[rows.get(i)]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_and_single_keys_find_the_groups_a_map_gives_across_growth() {
        // Few distinct keys at first (rows meet existing groups while the table grows from
        // its smallest size), then mostly new ones, with keys that share their low bits.
        let mut slots = PackedSlots::for_groups(1);
        let mut expected: std::collections::HashMap<u64, u32> = Default::default();
        let (mut out, mut want, mut created) = (Vec::new(), Vec::new(), Vec::new());
        let keys: Vec<u64> = (0..60_000u64)
            .map(|i| if i < 10_000 { i % 37 } else { (i / 2) << 20 })
            .collect();
        let mut next = 0;
        for (b, block) in keys.chunks(777).enumerate() {
            if b % 5 == 4 {
                // Some rows one at a time, as multi-value keys are grouped.
                for &k in block {
                    let (g, new) = slots.group(k, next);
                    if new {
                        created.push(k);
                        next += 1;
                    }
                    out.push(g);
                }
            } else {
                next = slots.group_block(block, next, &mut out, |k| created.push(k));
            }
            for k in block {
                let n = expected.len() as u32;
                want.push(*expected.entry(*k).or_insert(n));
            }
        }
        assert_eq!(out, want);
        assert_eq!(next as usize, expected.len());
        assert_eq!(slots.len, expected.len());
        // Each new key reported once, in group order.
        for (g, k) in created.iter().enumerate() {
            assert_eq!(expected[k], g as u32);
        }
        assert!(slots.len * 4 <= slots.slots.len() * 3);
    }
}
