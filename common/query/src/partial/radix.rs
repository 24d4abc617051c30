//! Merging many large grouped partials partition by partition. Every group goes to one of a
//! few hundred partitions by a hash of its values (strings by their text, so partials with
//! different string pools agree); each partition is then merged on its own, in parallel. A
//! partition's table and groups stay small enough for the caches, where one table of millions
//! of groups would miss them on almost every probe.

use std::hash::BuildHasher;

use rayon::prelude::*;

use super::groups::{GroupSet, Key};
use super::{AggKind, GroupedPartial};

/// Below this many groups in all, one sequential merge is faster than partitioning.
pub const PARTITION_MIN_GROUPS: usize = 1 << 16;

/// Groups per partition aimed at: a partition's table and cells then fit in a core's cache.
const GROUPS_PER_PARTITION: usize = 1 << 14;

/// Merges `parts` on the current rayon pool. Groups come out in partition order.
pub fn merge_partitioned(kinds: &[AggKind], parts: Vec<GroupedPartial>) -> GroupedPartial {
    let mut covered = Vec::new();
    let mut sets: Vec<GroupSet> = Vec::with_capacity(parts.len());
    for p in parts {
        covered.extend(p.covered);
        if !p.groups.is_empty() {
            sets.push(p.groups);
        }
    }
    let covered = eddy_types::interval::condense(covered);
    let total: usize = sets.iter().map(GroupSet::len).sum();
    let Some(first) = sets.first() else {
        return GroupedPartial {
            groups: GroupSet::default(),
            covered,
        };
    };
    let (width, states) = (first.width, first.states);
    if sets.iter().any(|s| s.width != width || s.states != states) {
        tracing::error!("partial groups of different shapes cannot merge; keeping the first");
        sets.truncate(1);
    }
    let bits = (total / GROUPS_PER_PARTITION)
        .next_power_of_two()
        .trailing_zeros()
        .clamp(1, 10);
    let partitions = 1usize << bits;
    let hasher = hashbrown::DefaultHashBuilder::default();
    // Each set's groups by partition, with their hashes.
    let spread: Vec<Vec<Vec<(u64, u32)>>> = sets
        .par_iter()
        .map(|set| {
            let texts: Vec<u64> = (0..set.strings.len() as u32)
                .map(|id| hasher.hash_one(set.strings.get(id)))
                .collect();
            let mut lists: Vec<Vec<(u64, u32)>> = (0..partitions)
                .map(|_| Vec::with_capacity(set.len() / partitions + 16))
                .collect();
            for g in 0..set.len() {
                let h = value_hash(&hasher, set.bucket(g), set.key(g), &texts);
                lists[(h >> (64 - bits)) as usize].push((h, g as u32));
            }
            lists
        })
        .collect();
    let merged: Vec<GroupSet> = (0..partitions)
        .into_par_iter()
        .map(|p| {
            let mut out = GroupSet::new(width, states);
            out.reserve(spread.iter().map(|s| s[p].len()).sum());
            let mut table: hashbrown::HashTable<(u64, u32)> = hashbrown::HashTable::new();
            let mut key: Vec<Key> = Vec::with_capacity(width);
            for (set, lists) in sets.iter().zip(&spread) {
                // The set's string ids as ids of this partition's pool, as they are met.
                let mut ids: hashbrown::HashMap<u32, u32> = hashbrown::HashMap::new();
                for &(h, g) in &lists[p] {
                    let g = g as usize;
                    let bucket = set.bucket(g);
                    key.clear();
                    for k in set.key(g) {
                        key.push(match k {
                            Key::Str(id) => Key::Str(
                                *ids.entry(*id)
                                    .or_insert_with(|| out.strings.intern(set.strings.get(*id))),
                            ),
                            k => *k,
                        });
                    }
                    let found = table.find(h, |&(eh, i)| {
                        eh == h && out.bucket(i as usize) == bucket && out.key(i as usize) == key
                    });
                    match found {
                        Some(&(_, i)) => {
                            let base = i as usize * states;
                            for (a, (kind, s)) in kinds.iter().zip(set.slots_of(g)).enumerate() {
                                out.combine_value(*kind, base + a, set.value_of(*s));
                            }
                        }
                        None => {
                            table.insert_unique(h, (h, out.len() as u32), |e| e.0);
                            out.push_from(bucket, &key, set, set.slots_of(g));
                        }
                    }
                }
            }
            out
        })
        .collect();
    let mut groups = GroupSet::with_capacity(width, states, merged.iter().map(GroupSet::len).sum());
    for m in merged {
        groups.append(m);
    }
    GroupedPartial { groups, covered }
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
    fn partitioned_merge_equals_a_sequential_merge() {
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
        let partitioned = sorted(merge_partitioned(&kinds, parts));
        assert_eq!(sequential.len(), partitioned.len());
        assert!(sequential == partitioned);
    }
}
