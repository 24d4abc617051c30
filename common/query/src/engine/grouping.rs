//! Grouped aggregation on one segment: the engine behind timeseries, topN and groupBy.
//!
//! Each key part is a small integer per row: the time bucket's ordinal, a dictionary id for
//! string and indexed long dimensions, or a segment-local id for other numeric dimensions. Parts
//! combine into one composite number that indexes a dense table when the key space is small and
//! a hash table otherwise, probed a block of rows at a time. A key with a number part, or whose
//! ids do not pack into 64 bits, is hashed as a row of 64-bit words instead. Strings are looked
//! up only for the groups that are returned.

use std::collections::HashMap;

use eddy_segment::{BLOCK_ROWS, SegmentReader};
use eddy_types::Granularity;
use eddy_types::spec::{AggregatorSpec, DimensionSpec};

use super::aggs::{self, Agg, Block, Groups, Rows};
use super::select::{ExecContext, Selection};
use crate::error::QueryError;
use crate::model::virtuals::VirtualColumn;
use crate::partial::{AggValue, GroupSet, Key};

mod keys;
mod packed;
mod table;

use keys::{KeySource, PartIds, open_key, resolve};
use packed::pack_keys;
use table::{GroupTable, Table, packs};

const DENSE_LIMIT: u64 = 1 << 20;

/// Keeps only the best `keep` groups per bucket by `score` (used by topN on each segment).
pub struct Prune<'q> {
    pub keep: usize,
    /// A group's score from its aggregate states; lower is better.
    pub score: &'q (dyn Fn(&[AggValue]) -> f64 + Sync),
    /// The only aggregator `score` reads, when known; otherwise it reads them all.
    pub reads: Option<usize>,
}

pub struct GroupingPlan<'q> {
    pub granularity: Granularity,
    pub dims: &'q [DimensionSpec],
    /// Virtual columns the dimensions may name.
    pub virtuals: &'q [VirtualColumn],
    pub aggs: &'q [AggregatorSpec],
    pub prune: Option<Prune<'q>>,
}

/// Runs grouped aggregation over the selected rows.
pub fn group_segment(
    plan: &GroupingPlan<'_>,
    segment: &dyn SegmentReader,
    selection: &Selection,
    ctx: &ExecContext<'_>,
) -> Result<GroupSet, QueryError> {
    let mut aggs: Vec<Box<dyn Agg + '_>> = plan
        .aggs
        .iter()
        .map(|a| aggs::build(a, segment, plan.virtuals))
        .collect::<Result<_, _>>()?;
    let bucketed = !plan.granularity.is_all();
    let mut sources: Vec<KeySource<'_>> = plan
        .dims
        .iter()
        .map(|d| open_key(segment, &d.dimension, plan.virtuals))
        .collect();
    let mut bucket_starts: Vec<i64> = Vec::new();
    let mut bucket_ids: HashMap<i64, u32> = HashMap::new();
    let bucket_card = if bucketed {
        count_buckets(plan.granularity, segment)
    } else {
        Some(1)
    };
    let mut cards: Vec<Option<u64>> = Vec::with_capacity(sources.len() + 1);
    if bucketed {
        cards.push(bucket_card);
    }
    cards.extend(sources.iter().map(KeySource::cardinality));
    let single_group = !bucketed && sources.is_empty();
    // A key with a number part hashes the numbers' values themselves, one probe per row,
    // instead of first giving each value a segment-local id (a probe of its own). A key whose
    // ids do not pack into 64 bits is also a key of words (one word per part).
    let any_multi = sources
        .iter()
        .any(|s| matches!(s, KeySource::Strings { multi: true, .. }));
    let by_value = (sources
        .iter()
        .any(|s| matches!(s, KeySource::Numbers { .. }))
        || !packs(&cards))
        && !any_multi
        && sources.len() < 64;
    let mut value_parts: Vec<Option<bool>> = vec![None; sources.len()];
    let nullable = by_value && sources.iter().any(KeySource::nullable_number);
    let mut table = if by_value {
        for (v, s) in value_parts.iter_mut().zip(sources.iter_mut()) {
            *v = s.group_by_value();
        }
        // The key's words: the bucket, every part, then which number parts are null.
        GroupTable::of_words(cards.len() + usize::from(nullable), selection.count())
    } else {
        GroupTable::new(&cards, selection.count())
    };
    for s in &mut sources {
        s.expect_rows(selection.count());
    }

    if single_group {
        table.group(&[]);
        aggs.iter_mut().for_each(|a| a.grow(1));
        if selection.rows.is_none() {
            // Aggregators that know the answer for the whole segment skip the scan.
            let mut pending: Vec<usize> = Vec::new();
            for (i, a) in aggs.iter_mut().enumerate() {
                if !a.whole_segment(0, segment.num_rows()) {
                    pending.push(i);
                }
            }
            if !pending.is_empty() {
                selection.for_each_block(ctx, &mut |b, len, _| {
                    let block = Block::new(b, len);
                    for i in &pending {
                        aggs[*i].update(&block, Rows::All(len), Groups::One(0))?;
                    }
                    Ok(())
                })?;
            }
        } else {
            selection.for_each_block(ctx, &mut |b, len, rows| {
                let block = Block::new(b, len);
                let rows = rows.map_or(Rows::All(len), Rows::Some);
                aggs.iter_mut()
                    .try_for_each(|a| a.update(&block, rows, Groups::One(0)))
            })?;
        }
    } else {
        let mut parts: Vec<PartIds> = sources.iter().map(|_| PartIds::new()).collect();
        let mut times = vec![0i64; BLOCK_ROWS];
        let mut bucket_of_row = vec![0u32; BLOCK_ROWS];
        let mut bucketer = plan.granularity.bucketer();
        let mut pair_rows: Vec<u32> = Vec::with_capacity(BLOCK_ROWS);
        let mut pair_groups: Vec<u32> = Vec::with_capacity(BLOCK_ROWS);
        let mut key: Vec<u32> = vec![0; cards.len()];
        let mut words: Vec<u64> = vec![0; table.width];
        let mut packed_keys: Vec<u64> = Vec::new();
        let identity = matches!(table.table, Table::Identity(_))
            && !any_multi
            && !bucketed
            && parts.len() == 1;
        aggs.iter_mut().for_each(|a| a.grow(table.len()));
        selection.for_each_block(ctx, &mut |b, len, rows| {
            let block = Block::new(b, len);
            let rows = rows.map_or(Rows::All(len), Rows::Some);
            if bucketed {
                segment.time().read_i64(b, &mut times)?;
                let mut last: Option<(i64, u32)> = None;
                for i in 0..rows.len() {
                    let r = rows.get(i);
                    let start = bucketer.bucket_start(times[r]);
                    let ord = match last {
                        Some((s, o)) if s == start => o,
                        _ => {
                            let next = bucket_starts.len() as u32;
                            let o = *bucket_ids.entry(start).or_insert_with(|| {
                                bucket_starts.push(start);
                                next
                            });
                            last = Some((start, o));
                            o
                        }
                    };
                    bucket_of_row[r] = ord;
                }
            }
            for (p, src) in parts.iter_mut().zip(sources.iter_mut()) {
                p.load(src, &block, rows)?;
            }
            if identity {
                // Group numbers are the ids themselves: no lookups, no copies for whole blocks.
                let Table::Identity(seen) = &mut table.table else {
                    unreachable!("checked above")
                };
                let ids = &parts[0].ids;
                let groups: &[u32] = match rows {
                    Rows::All(n) => &ids[..n],
                    Rows::Some(rs) => {
                        pair_groups.clear();
                        pair_groups.extend(rs.iter().map(|r| ids[*r as usize]));
                        &pair_groups
                    }
                };
                for g in groups {
                    seen[*g as usize] = true;
                }
                for a in aggs.iter_mut() {
                    a.update(&block, rows, Groups::Each(groups))?;
                }
                return Ok(());
            }
            pair_rows.clear();
            pair_groups.clear();
            let offset = usize::from(bucketed);
            let before = table.len();
            let packed = !by_value && !any_multi && matches!(table.table, Table::Hash(_));
            if packed {
                pack_keys(
                    &parts,
                    &table.bits,
                    bucketed.then_some(&bucket_of_row[..]),
                    rows,
                    &mut packed_keys,
                );
                pair_rows.extend((0..rows.len()).map(|i| rows.get(i) as u32));
                table.group_packed(&packed_keys, &mut pair_groups);
            } else {
                for i in 0..rows.len() {
                    let r = rows.get(i);
                    if by_value {
                        if bucketed {
                            words[0] = u64::from(bucket_of_row[r]);
                        }
                        let mut nulls = 0u64;
                        for (k, (p, v)) in parts.iter().zip(&value_parts).enumerate() {
                            words[offset + k] = match v {
                                None => u64::from(p.ids[r]),
                                Some(_) if p.nulls[r] => {
                                    nulls |= 1 << k;
                                    0
                                }
                                Some(true) => p.longs[r] as u64,
                                Some(false) => p.doubles[r].to_bits(),
                            };
                        }
                        if nullable {
                            words[offset + parts.len()] = nulls;
                        }
                        pair_rows.push(r as u32);
                        pair_groups.push(table.group_words(&words));
                        continue;
                    }
                    if bucketed {
                        key[0] = bucket_of_row[r];
                    }
                    if !any_multi {
                        for (k, p) in parts.iter().enumerate() {
                            key[offset + k] = p.ids[r];
                        }
                        let (g, _) = table.group(&key);
                        pair_rows.push(r as u32);
                        pair_groups.push(g);
                    } else {
                        expand(
                            &parts,
                            r,
                            offset,
                            0,
                            &mut key,
                            &mut table,
                            &mut pair_rows,
                            &mut pair_groups,
                        );
                    }
                }
            }
            if table.len() != before {
                let n = table.len();
                aggs.iter_mut().for_each(|a| a.grow(n));
            }
            for a in aggs.iter_mut() {
                a.update(&block, Rows::Some(&pair_rows), Groups::Each(&pair_groups))?;
            }
            Ok(())
        })?;
    }

    aggs.iter_mut().for_each(|a| a.seal());
    // Prune (topN) by score, then compute states and keys of the kept groups only.
    let mut kept: Vec<usize> = table.used();
    if let Some(prune) = &plan.prune {
        let bucket_of = |g: usize| {
            if bucketed { table.part(g, 0) as u32 } else { 0 }
        };
        // One scratch state row, refreshed per group where the score reads it.
        let mut scratch: Vec<AggValue> = match kept.first() {
            Some(&g) => aggs.iter().map(|a| a.value(g)).collect(),
            None => Vec::new(),
        };
        let mut scored: Vec<(u32, f64, usize)> = Vec::with_capacity(kept.len());
        for &g in &kept {
            match prune.reads {
                Some(i) => scratch[i] = aggs[i].value(g),
                None => {
                    for (slot, a) in scratch.iter_mut().zip(aggs.iter()) {
                        *slot = a.value(g);
                    }
                }
            }
            scored.push((bucket_of(g), (prune.score)(&scratch), g));
        }
        scored.sort_unstable_by_key(|(b, _, _)| *b);
        kept.clear();
        for bucket in scored.chunk_by_mut(|a, b| a.0 == b.0) {
            if bucket.len() > prune.keep && prune.keep > 0 {
                bucket.select_nth_unstable_by(prune.keep - 1, |a, b| a.1.total_cmp(&b.1));
                kept.extend(bucket[..prune.keep].iter().map(|(_, _, g)| *g));
            } else {
                kept.extend(bucket.iter().map(|(_, _, g)| *g));
            }
        }
        kept.sort_unstable();
    }
    // Each key part's values for the ids the kept groups use, as cells of the output's pool.
    let offset = usize::from(bucketed);
    let mut out = GroupSet::with_capacity(sources.len(), aggs.len(), kept.len());
    let mut lookups: Vec<Option<IdLookup>> = Vec::with_capacity(sources.len());
    for (d, src) in sources.iter().enumerate() {
        if value_parts[d].is_some() {
            lookups.push(None);
            continue;
        }
        let mut ids: Vec<u32> = kept
            .iter()
            .map(|g| table.part(*g, offset + d) as u32)
            .collect();
        ids.sort_unstable();
        ids.dedup();
        let values = resolve(src, &ids)?;
        let cells: Vec<Key> = values.iter().map(|v| out.key_of(v)).collect();
        lookups.push(Some(IdLookup::new(ids, cells)));
    }
    // Every kept group's cell per looked-up part, gathered part by part: a loop that does
    // nothing else keeps many of these scattered reads in flight at once.
    let gathered: Vec<Vec<Key>> = lookups
        .iter()
        .enumerate()
        .map(|(d, lookup)| match lookup {
            Some(lookup) => lookup.gather(kept.iter().map(|g| table.part(*g, offset + d) as u32)),
            None => Vec::new(),
        })
        .collect();
    let mut key: Vec<Key> = vec![Key::Null; sources.len()];
    for (i, g) in kept.into_iter().enumerate() {
        let bucket = if bucketed {
            bucket_starts[table.part(g, 0) as usize]
        } else {
            eddy_types::time::MIN_INSTANT
        };
        let nulls = if nullable {
            table.part(g, offset + sources.len())
        } else {
            0
        };
        for (d, cells) in gathered.iter().enumerate() {
            if !cells.is_empty() {
                key[d] = cells[i];
                continue;
            }
            let word = table.part(g, offset + d);
            key[d] = match value_parts[d] {
                _ if nulls & (1 << d) != 0 => Key::Null,
                Some(false) => Key::Double(word),
                _ => Key::Long(word as i64),
            };
        }
        out.push(bucket, &key, aggs.iter().map(|a| a.value(g)));
    }
    Ok(out)
}

/// A key part's cell by segment id: a dense array when the ids are compact enough, else a
/// binary search over them.
enum IdLookup {
    Dense(Vec<Key>),
    Sorted(Vec<u32>, Vec<Key>),
}

impl IdLookup {
    fn new(ids: Vec<u32>, cells: Vec<Key>) -> Self {
        let span = ids.last().map_or(0, |m| *m as usize + 1);
        if span <= 4 * ids.len() + 1024 {
            let mut dense = vec![Key::Null; span];
            for (id, c) in ids.iter().zip(cells) {
                dense[*id as usize] = c;
            }
            IdLookup::Dense(dense)
        } else {
            IdLookup::Sorted(ids, cells)
        }
    }

    /// The cells of `ids`, in order.
    fn gather(&self, ids: impl Iterator<Item = u32>) -> Vec<Key> {
        match self {
            IdLookup::Dense(d) => ids.map(|id| d[id as usize]).collect(),
            IdLookup::Sorted(sorted, cells) => ids
                .map(|id| sorted.binary_search(&id).map_or(Key::Null, |i| cells[i]))
                .collect(),
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn expand(
    parts: &[PartIds],
    row: usize,
    offset: usize,
    d: usize,
    key: &mut Vec<u32>,
    table: &mut GroupTable,
    pair_rows: &mut Vec<u32>,
    pair_groups: &mut Vec<u32>,
) {
    if d == parts.len() {
        let (g, _) = table.group(key);
        pair_rows.push(row as u32);
        pair_groups.push(g);
        return;
    }
    for id in parts[d].values_of(row) {
        key[offset + d] = *id;
        expand(
            parts,
            row,
            offset,
            d + 1,
            key,
            table,
            pair_rows,
            pair_groups,
        );
    }
}

/// Buckets the segment's rows can fall into, if few enough to size a dense table.
fn count_buckets(granularity: Granularity, segment: &dyn SegmentReader) -> Option<u64> {
    let (lo, hi) = segment.time_range()?;
    let iv = eddy_types::Interval {
        start: lo,
        end: hi.saturating_add(1),
    };
    let mut n = 0u64;
    for _ in granularity.buckets(iv) {
        n += 1;
        if n > 1 << 16 {
            return None;
        }
    }
    Some(n)
}
