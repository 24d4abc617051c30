//! The lookup table of an in-memory dictionary: open addressing with linear probing over a
//! power-of-two array of slots, never more than three quarters full. Unlike a general hash
//! table it lets the index prefetch the slot a value will be probed at, and then the value
//! bytes behind it, so the lookups of one row's dimensions wait for memory together instead of
//! one after the other (with a million-row index most of them miss the caches).

use crate::hint::prefetch;

/// A slot: the high half of the value's hash, its dictionary id (0: empty, as id 0 is null
/// and never in the table) and where the value is in the dictionary's arena.
#[derive(Clone, Copy, Default)]
struct Slot {
    tag: u32,
    id: u32,
    start: u32,
    len: u32,
}

#[derive(Default)]
pub(super) struct IdTable {
    slots: Vec<Slot>,
    len: usize,
}

fn tag(hash: u64) -> u32 {
    (hash >> 32) as u32
}

impl IdTable {
    pub fn len(&self) -> usize {
        self.len
    }

    /// How many ids fit before the table grows.
    pub fn capacity(&self) -> usize {
        self.slots.len() / 4 * 3
    }

    /// Whether the table is large enough that a probe is likely to miss the caches (more
    /// than 64 KiB of slots).
    pub fn is_large(&self) -> bool {
        self.slots.len() > 4096
    }

    fn home(&self, hash: u64) -> usize {
        hash as usize & (self.slots.len().wrapping_sub(1))
    }

    /// The id of `value` (with `hash`), or the slot where it would go.
    pub fn find(&self, hash: u64, value: &[u8], arena: &[u8]) -> Result<u32, usize> {
        if self.slots.is_empty() {
            return Err(0);
        }
        let mask = self.slots.len() - 1;
        let tag = tag(hash);
        let mut i = self.home(hash);
        loop {
            let s = self.slots[i];
            if s.id == 0 {
                return Err(i);
            }
            if s.tag == tag
                && s.len as usize == value.len()
                && &arena[s.start as usize..][..value.len()] == value
            {
                return Ok(s.id);
            }
            i = (i + 1) & mask;
        }
    }

    /// Puts `id` at `slot`, a slot [`IdTable::find`] returned for its value since the table
    /// last changed; the caller has made room first ([`IdTable::reserve`]).
    pub fn insert_at(&mut self, slot: usize, hash: u64, id: u32, start: u32, len: u32) {
        debug_assert!(self.len < self.capacity() && self.slots[slot].id == 0);
        self.slots[slot] = Slot {
            tag: tag(hash),
            id,
            start,
            len,
        };
        self.len += 1;
    }

    /// Room for `additional` more ids; `hash_of` gives the hash of an id already in the table.
    /// Returns whether the table was rebuilt (slots found before are then stale).
    pub fn reserve(&mut self, additional: usize, hash_of: impl Fn(u32) -> u64) -> bool {
        let needed = self.len + additional;
        if needed <= self.capacity() {
            return false;
        }
        let size = (needed * 4 / 3 + 1).next_power_of_two().max(16);
        let old = std::mem::replace(&mut self.slots, vec![Slot::default(); size]);
        let mask = size - 1;
        for s in old.into_iter().filter(|s| s.id != 0) {
            let mut i = hash_of(s.id) as usize & mask;
            while self.slots[i].id != 0 {
                i = (i + 1) & mask;
            }
            self.slots[i] = s;
        }
        true
    }

    /// Asks the CPU to fetch the slot `hash` is first probed at.
    pub fn prefetch_slot(&self, hash: u64) {
        if !self.slots.is_empty() {
            prefetch(self.slots.as_ptr().wrapping_add(self.home(hash)));
        }
    }

    /// Asks the CPU to fetch the value bytes of the id in the first slot `hash` is probed at,
    /// if its tag matches (best after [`IdTable::prefetch_slot`] had time to arrive).
    pub fn prefetch_value(&self, hash: u64, arena: &[u8]) {
        if let Some(s) = self.slots.get(self.home(hash))
            && s.id != 0
            && s.tag == tag(hash)
        {
            prefetch(arena.as_ptr().wrapping_add(s.start as usize));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hash(v: &[u8]) -> u64 {
        // Few distinct home slots, so probing past collisions and wrapping is exercised.
        let h = v
            .iter()
            .fold(0u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(*b)));
        (h % 7) | (h << 32)
    }

    #[test]
    fn finds_what_was_inserted_across_growth_and_collisions() {
        let mut table = IdTable::default();
        let mut arena = Vec::new();
        let mut hashes = vec![0u64];
        let values: Vec<String> = (0..1000).map(|i| format!("v{i}")).collect();
        for (i, v) in values.iter().enumerate() {
            let h = hash(v.as_bytes());
            let mut slot = table.find(h, v.as_bytes(), &arena).unwrap_err();
            if table.reserve(1, |id| hashes[id as usize]) {
                slot = table.find(h, v.as_bytes(), &arena).unwrap_err();
            }
            let start = arena.len() as u32;
            arena.extend_from_slice(v.as_bytes());
            table.insert_at(slot, h, i as u32 + 1, start, v.len() as u32);
            hashes.push(h);
        }
        assert_eq!(table.len(), 1000);
        assert!(table.capacity() >= 1000 && table.slots.len().is_power_of_two());
        for (i, v) in values.iter().enumerate() {
            assert_eq!(
                table.find(hash(v.as_bytes()), v.as_bytes(), &arena),
                Ok(i as u32 + 1)
            );
            table.prefetch_slot(hash(v.as_bytes()));
            table.prefetch_value(hash(v.as_bytes()), &arena);
        }
        // Same hash and length as a stored value, different bytes: not found.
        assert!(table.find(hash(b"v1"), b"v9", &arena).is_err());
        assert!(table.find(hash(b"zz"), b"zz", &arena).is_err());
    }
}
