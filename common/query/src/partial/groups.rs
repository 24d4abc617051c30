//! Groups stored compactly: every group's time bucket, key parts and aggregator states sit in
//! flat arrays of fixed-width cells, strings once each in a pool. A segment returns its groups
//! this way and merges fold them without one allocation per group; rows of owned values
//! ([`GroupRow`]) are made only for the groups a result shows.

use std::hash::BuildHasher;

use super::{AggKind, AggValue, GroupRow, KeyValue};

/// One group-key part. A string is an id in the set's pool, which holds each string once, so
/// within a set equal keys are equal cells.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Key {
    Null,
    Long(i64),
    /// A double's bits.
    Double(u64),
    Str(u32),
}

/// One aggregator state: numbers inline, any other state an index into the set's `others`.
#[derive(Debug, Clone, Copy)]
pub(super) enum Slot {
    Long(i64),
    NoLong,
    Double(f64),
    NoDouble,
    Other(u32),
}

/// Distinct strings, each once, with ids in order of first appearance.
#[derive(Debug, Clone, Default)]
pub struct Strings {
    text: String,
    ends: Vec<usize>,
    /// (hash, id) of every string.
    index: hashbrown::HashTable<(u64, u32)>,
    hasher: hashbrown::DefaultHashBuilder,
}

impl Strings {
    pub fn get(&self, id: u32) -> &str {
        let i = id as usize;
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.text[start..self.ends[i]]
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// The id of `s`, added if new.
    pub fn intern(&mut self, s: &str) -> u32 {
        let h = self.hasher.hash_one(s);
        self.intern_hashed(s, h)
    }

    /// Strings hashed by `hasher` from now on; only while empty, when the caller knows the
    /// hashes of what it will add ([`Strings::intern_hashed`]).
    pub fn hash_with(&mut self, hasher: hashbrown::DefaultHashBuilder) {
        debug_assert!(self.is_empty());
        if self.is_empty() {
            self.hasher = hasher;
        }
    }

    /// [`Strings::intern`] of `s` whose hash by this pool's hasher is `h`.
    pub fn intern_hashed(&mut self, s: &str, h: u64) -> u32 {
        debug_assert_eq!(h, self.hasher.hash_one(s));
        let Strings {
            text, ends, index, ..
        } = self;
        let get = |id: u32| {
            let i = id as usize;
            let start = if i == 0 { 0 } else { ends[i - 1] };
            &text[start..ends[i]]
        };
        if let Some(&(_, id)) = index.find(h, |&(eh, id)| eh == h && get(id) == s) {
            return id;
        }
        let id = ends.len() as u32;
        text.push_str(s);
        ends.push(text.len());
        index.insert_unique(h, (h, id), |e| e.0);
        id
    }
}

/// Groups of one query: no two share a bucket and key (merges keep it so).
#[derive(Debug, Clone, Default)]
pub struct GroupSet {
    /// Key parts per group.
    pub(super) width: usize,
    /// States per group.
    pub(super) states: usize,
    buckets: Vec<i64>,
    keys: Vec<Key>,
    slots: Vec<Slot>,
    others: Vec<AggValue>,
    pub(super) strings: Strings,
}

impl GroupSet {
    pub fn new(width: usize, states: usize) -> Self {
        GroupSet {
            width,
            states,
            ..Default::default()
        }
    }

    pub fn with_capacity(width: usize, states: usize, groups: usize) -> Self {
        GroupSet {
            width,
            states,
            buckets: Vec::with_capacity(groups),
            keys: Vec::with_capacity(groups * width),
            slots: Vec::with_capacity(groups * states),
            ..Default::default()
        }
    }

    /// Groups from rows whose (bucket, key) are distinct.
    pub fn from_rows(rows: Vec<GroupRow>) -> Self {
        let (width, states) = rows.first().map_or((0, 0), |r| (r.key.len(), r.aggs.len()));
        let mut set = GroupSet::with_capacity(width, states, rows.len());
        let mut key = Vec::with_capacity(width);
        for row in rows {
            key.clear();
            key.extend(row.key.iter().map(|k| set.key_of(k)));
            set.push(row.bucket, &key, row.aggs);
        }
        set
    }

    pub fn len(&self) -> usize {
        self.buckets.len()
    }

    /// Room for `groups` more groups.
    pub fn reserve(&mut self, groups: usize) {
        self.buckets.reserve(groups);
        self.keys.reserve(groups * self.width);
        self.slots.reserve(groups * self.states);
    }

    pub fn is_empty(&self) -> bool {
        self.buckets.is_empty()
    }

    pub fn width(&self) -> usize {
        self.width
    }

    pub fn bucket(&self, g: usize) -> i64 {
        self.buckets[g]
    }

    pub fn key(&self, g: usize) -> &[Key] {
        &self.keys[g * self.width..][..self.width]
    }

    pub fn text(&self, id: u32) -> &str {
        self.strings.get(id)
    }

    /// The cell for `v`, its string added to the pool if new.
    pub fn key_of(&mut self, v: &KeyValue) -> Key {
        match v {
            KeyValue::Null => Key::Null,
            KeyValue::Long(x) => Key::Long(*x),
            KeyValue::Double(b) => Key::Double(*b),
            KeyValue::Str(s) => Key::Str(self.strings.intern(s)),
        }
    }

    pub fn key_value(&self, k: Key) -> KeyValue {
        match k {
            Key::Null => KeyValue::Null,
            Key::Long(x) => KeyValue::Long(x),
            Key::Double(b) => KeyValue::Double(b),
            Key::Str(id) => KeyValue::Str(self.strings.get(id).to_string()),
        }
    }

    /// Adds a group whose (bucket, key) is not in the set yet.
    pub fn push(&mut self, bucket: i64, key: &[Key], states: impl IntoIterator<Item = AggValue>) {
        debug_assert_eq!(key.len(), self.width);
        self.buckets.push(bucket);
        for k in key {
            self.keys.push(*k);
        }
        for v in states {
            let slot = self.slot_of(v);
            self.slots.push(slot);
        }
    }

    fn slot_of(&mut self, v: AggValue) -> Slot {
        match v {
            AggValue::Long(Some(x)) => Slot::Long(x),
            AggValue::Long(None) => Slot::NoLong,
            AggValue::Double(Some(x)) => Slot::Double(x),
            AggValue::Double(None) => Slot::NoDouble,
            other => {
                self.others.push(other);
                Slot::Other(self.others.len() as u32 - 1)
            }
        }
    }

    /// A slot's state (cloned when not a number).
    pub(super) fn value_of(&self, slot: Slot) -> AggValue {
        match slot {
            Slot::Long(x) => AggValue::Long(Some(x)),
            Slot::NoLong => AggValue::Long(None),
            Slot::Double(x) => AggValue::Double(Some(x)),
            Slot::NoDouble => AggValue::Double(None),
            Slot::Other(i) => self.others[i as usize].clone(),
        }
    }

    /// Aggregator `a`'s state in group `g`.
    pub fn state(&self, g: usize, a: usize) -> AggValue {
        self.value_of(self.slots[g * self.states + a])
    }

    /// Group `g`'s states, into `out` (replacing what it held).
    pub fn states_into(&self, g: usize, out: &mut Vec<AggValue>) {
        out.clear();
        out.extend(
            self.slots[g * self.states..][..self.states]
                .iter()
                .map(|s| self.value_of(*s)),
        );
    }

    /// Group `g` as a row of owned values.
    pub fn row(&self, g: usize) -> GroupRow {
        let mut aggs = Vec::with_capacity(self.states);
        self.states_into(g, &mut aggs);
        GroupRow {
            bucket: self.buckets[g],
            key: self.key(g).iter().map(|k| self.key_value(*k)).collect(),
            aggs,
        }
    }

    pub fn into_rows(mut self) -> Vec<GroupRow> {
        let mut others = std::mem::take(&mut self.others);
        (0..self.len())
            .map(|g| GroupRow {
                bucket: self.buckets[g],
                key: self.key(g).iter().map(|k| self.key_value(*k)).collect(),
                aggs: self.slots[g * self.states..][..self.states]
                    .iter()
                    .map(|s| match s {
                        Slot::Other(i) => {
                            std::mem::replace(&mut others[*i as usize], AggValue::NoValue)
                        }
                        s => self.value_of(*s),
                    })
                    .collect(),
            })
            .collect()
    }

    /// The groups `keep` names, in that order.
    pub fn select(&self, keep: &[usize]) -> GroupSet {
        let mut out = GroupSet::with_capacity(self.width, self.states, keep.len());
        out.strings = self.strings.clone();
        let mut states = Vec::with_capacity(self.states);
        for &g in keep {
            self.states_into(g, &mut states);
            out.push(self.buckets[g], self.key(g), states.drain(..));
        }
        out
    }

    /// The same groups with the key parts `keep` does not hold set to null; groups that then
    /// share a key are folded together.
    pub fn masked(&self, keep: &[bool], kinds: &[AggKind]) -> GroupSet {
        let mut copy = self.clone();
        for key in copy.keys.chunks_mut(self.width.max(1)) {
            for (k, keep) in key.iter_mut().zip(keep) {
                if !keep {
                    *k = Key::Null;
                }
            }
        }
        let mut merger = super::GroupMerger::new(kinds.to_vec());
        merger.fold(copy);
        merger.set
    }
}

/// The index a merger keeps over its groups.
pub(super) struct GroupIndex {
    hasher: hashbrown::DefaultHashBuilder,
    /// (hash, group) of every indexed group: the hash is kept so that growing the table and
    /// probing past other keys never read the groups themselves.
    table: hashbrown::HashTable<(u64, u32)>,
    /// Groups before this are indexed.
    pub indexed: usize,
}

impl GroupIndex {
    pub fn new() -> Self {
        GroupIndex {
            hasher: Default::default(),
            table: hashbrown::HashTable::new(),
            indexed: 0,
        }
    }

    /// Folds `part` into `set`: equal (bucket, key) combine their states, others are added.
    pub fn fold(&mut self, kinds: &[AggKind], set: &mut GroupSet, mut part: GroupSet) {
        if set.width != part.width || set.states != part.states {
            if set.is_empty() {
                set.width = part.width;
                set.states = part.states;
            } else if !part.is_empty() {
                tracing::error!(
                    "partial groups of different shapes cannot merge; keeping the first"
                );
                return;
            }
        }
        let hash = |hasher: &hashbrown::DefaultHashBuilder, bucket: i64, key: &[Key]| {
            hasher.hash_one((bucket, key))
        };
        let stored = |e: &(u64, u32)| e.0;
        self.table
            .reserve(set.len() - self.indexed + part.len(), stored);
        for g in self.indexed..set.len() {
            let h = hash(&self.hasher, set.buckets[g], set.key(g));
            self.table.insert_unique(h, (h, g as u32), stored);
        }
        // The part's strings as ids of the set's pool.
        let ids: Vec<u32> = (0..part.strings.len() as u32)
            .map(|id| set.strings.intern(part.strings.get(id)))
            .collect();
        let width = part.width;
        let mut key: Vec<Key> = Vec::with_capacity(width);
        set.reserve(part.len());
        for g in 0..part.len() {
            let bucket = part.buckets[g];
            key.clear();
            key.extend(part.keys[g * width..][..width].iter().map(|k| match k {
                Key::Str(id) => Key::Str(ids[*id as usize]),
                k => *k,
            }));
            let h = hash(&self.hasher, bucket, &key);
            let found = self.table.find(h, |&(eh, i)| {
                eh == h && set.buckets[i as usize] == bucket && set.key(i as usize) == key
            });
            match found {
                Some(&(_, i)) => {
                    let base = i as usize * set.states;
                    for (a, kind) in kinds.iter().enumerate().take(part.states) {
                        set.combine_value(*kind, base + a, part.take_state(g, a));
                    }
                }
                None => {
                    self.table.insert_unique(h, (h, set.len() as u32), stored);
                    set.push_from(bucket, &key, &mut part, g);
                }
            }
        }
        self.indexed = set.len();
    }
}

impl GroupSet {
    /// Folds `incoming` into slot `at`.
    pub(super) fn combine_value(&mut self, kind: AggKind, at: usize, incoming: AggValue) {
        match self.slots[at] {
            Slot::Other(i) => kind.combine(&mut self.others[i as usize], incoming),
            s => {
                let mut v = self.value_of(s);
                kind.combine(&mut v, incoming);
                self.slots[at] = self.slot_of(v);
            }
        }
    }

    /// Adds group `g` of `from` with `key`, moving its states that are not numbers (sketches,
    /// texts) out of `from`, which then holds none there.
    pub(super) fn push_from(&mut self, bucket: i64, key: &[Key], from: &mut GroupSet, g: usize) {
        self.buckets.push(bucket);
        // A few parts: pushed one by one, where a slice copy costs a call to memcpy per group.
        for k in key {
            self.keys.push(*k);
        }
        for a in 0..from.states {
            let s = match from.slots[g * from.states + a] {
                Slot::Other(_) => {
                    let v = from.take_state(g, a);
                    self.slot_of(v)
                }
                s => s,
            };
            self.slots.push(s);
        }
    }

    /// Aggregator `a`'s state in group `g`, moved out when it is not a number.
    pub(super) fn take_state(&mut self, g: usize, a: usize) -> AggValue {
        match self.slots[g * self.states + a] {
            Slot::Other(j) => std::mem::replace(&mut self.others[j as usize], AggValue::NoValue),
            s => self.value_of(s),
        }
    }

    /// Moves every group of `other` in after these; no key of `other` may be here already. An
    /// `other` without strings of its own holds ids of this set's pool (or no string keys).
    pub(super) fn append(&mut self, mut other: GroupSet) {
        // Taking `other` whole is free unless room was reserved here for more.
        if self.is_empty()
            && self.strings.is_empty()
            && self.buckets.capacity() <= other.buckets.capacity()
        {
            *self = other;
            return;
        }
        self.reserve(other.len());
        self.buckets.extend_from_slice(&other.buckets);
        if other.strings.is_empty() {
            self.keys.extend_from_slice(&other.keys);
        } else {
            let ids: Vec<u32> = (0..other.strings.len() as u32)
                .map(|id| self.strings.intern(other.strings.get(id)))
                .collect();
            self.keys.extend(other.keys.iter().map(|k| match k {
                Key::Str(id) => Key::Str(ids[*id as usize]),
                k => *k,
            }));
        }
        for i in 0..other.slots.len() {
            let s = match other.slots[i] {
                Slot::Other(j) => {
                    let v = std::mem::replace(&mut other.others[j as usize], AggValue::NoValue);
                    self.slot_of(v)
                }
                s => s,
            };
            self.slots.push(s);
        }
    }
}

#[cfg(test)]
mod tests;
