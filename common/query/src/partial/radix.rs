//! Merging many large grouped partials partition by partition. Every group goes to one of up
//! to 1,024 partitions by a hash of its values (strings by their text, so partials with
//! different string pools agree). A data node keeps one [`Partitioned`] per query thread and
//! copies each segment's groups into its partitions as the segment finishes, so the segment's
//! own arrays are freed at once. Its strings go once into one pool per spread, which all its
//! partitions share. At the end each partition folds the groups all threads copied into it,
//! partitions in parallel: a partition's table stays small enough for the caches and
//! its incoming groups are read front to back, where one table of millions of groups, or
//! groups picked out of whole segments' arrays, would miss the caches on almost every group.

use std::hash::BuildHasher;

use rayon::prelude::*;

use eddy_types::Interval;

use super::groups::{GroupSet, Key, Strings};
use super::{AggKind, GroupedPartial};

/// Below this many groups in all, one sequential merge is faster than partitioning.
pub const PARTITION_MIN_GROUPS: usize = 1 << 16;

/// Groups per partition aimed at: a partition's table and cells then fit in a core's cache.
const GROUPS_PER_PARTITION: usize = 1 << 14;

/// Grouped partials spread over `1 << bits` partitions, not yet folded. Spreads that finish
/// together must have the same `bits` and hasher (copies of one hasher), so that equal groups
/// meet in the same partition.
pub struct Partitioned {
    bits: u32,
    hasher: hashbrown::DefaultHashBuilder,
    /// Key parts and states per group, from the first groups added.
    shape: Option<(usize, usize)>,
    /// Every string the spread's groups hold, once, hashed by `hasher`. The partitions keep no
    /// strings of their own: their string keys are ids here.
    strings: Strings,
    /// Each partition's groups as added (a key may repeat), with their value hashes.
    parts: Vec<(GroupSet, Vec<u64>)>,
    covered: Vec<Interval>,
    /// Groups this spread expects in all, to size its partitions once.
    expected: usize,
}

impl Partitioned {
    /// A spread expecting about `expected` groups (room that stays unused is never touched).
    pub fn new(bits: u32, hasher: hashbrown::DefaultHashBuilder, expected: usize) -> Self {
        let mut strings = Strings::default();
        strings.hash_with(hasher);
        Partitioned {
            bits,
            hasher,
            shape: None,
            strings,
            parts: (0..1usize << bits).map(|_| Default::default()).collect(),
            covered: Vec::new(),
            expected,
        }
    }

    /// Partition bits for about `groups` groups in all.
    pub fn bits_for(groups: usize) -> u32 {
        (groups / GROUPS_PER_PARTITION)
            .next_power_of_two()
            .trailing_zeros()
            .clamp(1, 10)
    }

    /// Copies one partial's groups into their partitions, on the calling thread.
    pub fn add(&mut self, part: GroupedPartial) {
        self.covered.extend(part.covered);
        let mut set = part.groups;
        if set.is_empty() || !self.fits(set.width, set.states) {
            return;
        }
        let texts: Vec<u64> = (0..set.strings.len() as u32)
            .map(|id| self.hasher.hash_one(set.strings.get(id)))
            .collect();
        // The set's string ids as ids of the spread's pool.
        let pooled: Vec<u32> = (0..set.strings.len() as u32)
            .map(|id| {
                self.strings
                    .intern_hashed(set.strings.get(id), texts[id as usize])
            })
            .collect();
        let mut key: Vec<Key> = Vec::with_capacity(set.width);
        for g in 0..set.len() {
            let h = value_hash(&self.hasher, set.bucket(g), set.key(g), &texts);
            let p = (h >> (64 - self.bits)) as usize;
            let (out, hashes) = &mut self.parts[p];
            key.clear();
            for k in set.key(g) {
                key.push(match k {
                    Key::Str(id) => Key::Str(pooled[*id as usize]),
                    k => *k,
                });
            }
            out.push_from(set.bucket(g), &key, &mut set, g);
            hashes.push(h);
        }
    }

    /// Folds every spread's partitions, partition by partition in parallel on the current
    /// rayon pool. Groups come out in partition order.
    pub fn finish(kinds: &[AggKind], mut spreads: Vec<Partitioned>) -> GroupedPartial {
        let covered = spreads.iter().flat_map(|s| s.covered.iter().copied());
        let covered = eddy_types::interval::condense(covered.collect());
        let shapes: Vec<(usize, usize)> = spreads.iter().filter_map(|s| s.shape).collect();
        let Some(&(width, states)) = shapes.first() else {
            return GroupedPartial {
                groups: GroupSet::default(),
                covered,
            };
        };
        let bits = spreads[0].bits;
        let fits = |s: &Partitioned| s.bits == bits && s.shape.is_none_or(|x| x == (width, states));
        if !spreads.iter().all(fits) {
            tracing::error!("partial groups of different shapes cannot merge; keeping the first");
            spreads.retain(fits);
        }
        // The first spread's pool becomes the result's; every other spread's string ids as
        // ids of it.
        let mut strings = std::mem::take(&mut spreads[0].strings);
        let remaps: Vec<Option<Vec<u32>>> = spreads
            .iter()
            .enumerate()
            .map(|(i, s)| {
                (i > 0).then(|| {
                    (0..s.strings.len() as u32)
                        .map(|id| strings.intern(s.strings.get(id)))
                        .collect()
                })
            })
            .collect();
        // By partition, each spread's groups for it, with the spread's number.
        let mut by_partition: Vec<Vec<(GroupSet, Vec<u64>, usize)>> =
            (0..1usize << bits).map(|_| Vec::new()).collect();
        for (i, s) in spreads.into_iter().enumerate() {
            for (p, (set, hashes)) in s.parts.into_iter().enumerate() {
                if !hashes.is_empty() {
                    by_partition[p].push((set, hashes, i));
                }
            }
        }
        let merged: Vec<GroupSet> = by_partition
            .into_par_iter()
            .map(|incoming| fold_partition(kinds, width, states, incoming, &remaps))
            .collect();
        let mut groups =
            GroupSet::with_capacity(width, states, merged.iter().map(GroupSet::len).sum());
        // The folded partitions keep no strings: their keys are already ids of `strings`.
        for m in merged {
            groups.append(m);
        }
        groups.strings = strings;
        GroupedPartial { groups, covered }
    }

    /// Whether groups of this shape can join the spread (the first groups decide it).
    fn fits(&mut self, width: usize, states: usize) -> bool {
        match self.shape {
            None => {
                self.shape = Some((width, states));
                // A quarter more than an even share, so that few partitions grow again.
                let room = self.expected / self.parts.len() * 5 / 4 + 16;
                for (set, hashes) in &mut self.parts {
                    *set = GroupSet::with_capacity(width, states, room);
                    hashes.reserve(room);
                }
                true
            }
            Some(s) if s == (width, states) => true,
            Some(_) => {
                tracing::error!(
                    "partial groups of different shapes cannot merge; keeping the first"
                );
                false
            }
        }
    }
}

/// One partition's groups from every spread, folded: equal (bucket, key) combine. A spread's
/// string ids are mapped by its entry in `remaps` (none: they are the result's already); the
/// folded groups keep no strings.
fn fold_partition(
    kinds: &[AggKind],
    width: usize,
    states: usize,
    incoming: Vec<(GroupSet, Vec<u64>, usize)>,
    remaps: &[Option<Vec<u32>>],
) -> GroupSet {
    let mut out = GroupSet::new(width, states);
    let total: usize = incoming.iter().map(|(_, h, _)| h.len()).sum();
    out.reserve(total);
    let mut table: hashbrown::HashTable<(u64, u32)> = hashbrown::HashTable::with_capacity(total);
    let mut key: Vec<Key> = Vec::with_capacity(width);
    for (mut from, hashes, spread) in incoming {
        let remap = remaps[spread].as_deref();
        for (g, &h) in hashes.iter().enumerate() {
            let bucket = from.bucket(g);
            key.clear();
            for k in from.key(g) {
                key.push(match (k, remap) {
                    (Key::Str(id), Some(ids)) => Key::Str(ids[*id as usize]),
                    (k, _) => *k,
                });
            }
            let found = table.find(h, |&(eh, i)| {
                eh == h && out.bucket(i as usize) == bucket && out.key(i as usize) == key
            });
            match found {
                Some(&(_, i)) => {
                    let base = i as usize * states;
                    for (a, kind) in kinds.iter().enumerate().take(states) {
                        out.combine_value(*kind, base + a, from.take_state(g, a));
                    }
                }
                None => {
                    table.insert_unique(h, (h, out.len() as u32), |e| e.0);
                    out.push_from(bucket, &key, &mut from, g);
                }
            }
        }
    }
    out
}

/// A hash of a group's bucket and key values; `texts` holds the hash of each pooled string.
fn value_hash(
    hasher: &hashbrown::DefaultHashBuilder,
    bucket: i64,
    key: &[Key],
    texts: &[u64],
) -> u64 {
    let mut h = hasher.hash_one(bucket);
    for k in key {
        let v = match k {
            Key::Null => 0x9e37_79b9_7f4a_7c15,
            Key::Long(x) => hasher.hash_one((1u8, *x)),
            Key::Double(b) => hasher.hash_one((2u8, *b)),
            Key::Str(id) => texts[*id as usize],
        };
        h = hasher.hash_one((h, v));
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::partial::{AggValue, GroupRow, KeyValue};

    #[test]
    fn partitioned_folds_equal_a_sequential_merge() {
        let kinds = [AggKind::LongSum, AggKind::StringMin];
        // Parts that share keys in different pools, with nulls, doubles and empty strings.
        let parts: Vec<GroupedPartial> = (0..5)
            .map(|p| {
                let rows = (0..40_000i64)
                    .filter(|i| (i + p) % 3 != 0)
                    .map(|i| GroupRow {
                        bucket: i % 2,
                        key: vec![
                            match i % 5 {
                                0 => KeyValue::Null,
                                1 => KeyValue::Str(String::new()),
                                _ => KeyValue::Str(format!("s{}", (i * 7) % 20011)),
                            },
                            if i % 7 == 0 {
                                KeyValue::double(i as f64 / 2.0)
                            } else {
                                KeyValue::Long(i % 500)
                            },
                        ],
                        aggs: vec![
                            AggValue::Long((i % 4 != 0).then_some(i)),
                            AggValue::Text(Some(format!("t{}", (i + p) % 13))),
                        ],
                    });
                // Keys within one part are distinct: the first row of each key stays.
                let mut distinct = std::collections::BTreeMap::new();
                for r in rows {
                    distinct.entry((r.bucket, r.key.clone())).or_insert(r);
                }
                GroupedPartial {
                    groups: GroupSet::from_rows(distinct.into_values().collect()),
                    covered: Vec::new(),
                }
            })
            .collect();
        assert!(parts.iter().map(|p| p.groups.len()).sum::<usize>() > PARTITION_MIN_GROUPS);
        let sorted = |p: GroupedPartial| {
            let mut rows = p.groups.into_rows();
            rows.sort_by(|a, b| (a.bucket, &a.key).cmp(&(b.bucket, &b.key)));
            rows
        };
        let sequential = sorted(GroupedPartial::merge(&kinds, parts.clone()));
        // Two spreads (as two query threads keep), each taking some of the parts.
        let hasher = hashbrown::DefaultHashBuilder::default();
        let bits = Partitioned::bits_for(PARTITION_MIN_GROUPS * 4);
        let mut spreads = vec![
            Partitioned::new(bits, hasher, 0),
            Partitioned::new(bits, hasher, 0),
        ];
        for (i, p) in parts.into_iter().enumerate() {
            spreads[i % 2].add(p);
        }
        let partitioned = sorted(Partitioned::finish(&kinds, spreads));
        assert_eq!(sequential.len(), partitioned.len());
        assert!(sequential == partitioned);
    }
}
