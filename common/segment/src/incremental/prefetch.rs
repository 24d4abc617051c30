//! Prefetching a row's dictionary lookups (see [`IdTable`](super::id_table)): the index hashes
//! the row's values in large dictionaries before interning any of them and asks the CPU for
//! their table slots, then, while interning one dimension, for the next one's stored value.
//! A batch of rows ([`IncrementalIndex::add_batch`]) starts the slot fetches of all its rows at
//! once and fetches each row's stored values while the row before it is added.

use super::{IncrementalIndex, MemDim};
use crate::input::InputValue;

impl IncrementalIndex {
    /// Starts the dictionary probes of the row's values in large dictionaries before any of
    /// them runs (the table slots; the row loop then fetches each stored value one dimension
    /// ahead), so that the cache misses of a row's high-cardinality values (ids of parties,
    /// sessions, page views) overlap instead of queueing one after the other.
    /// `values` may hold several rows, one after the other in dimension order.
    pub(super) fn prefetch_lookups(&mut self, values: &[InputValue<'_>]) {
        self.hash_scratch.clear();
        for (dim, value) in self.dims.iter().cycle().zip(values) {
            let hash = match dim {
                MemDim::String(dim) if dim.lookups_miss() => {
                    // Only single values (a list is interned value by value).
                    match value {
                        InputValue::Str(s) => {
                            let hash = dim.hash(s);
                            dim.prefetch_slot(hash);
                            Some(hash)
                        }
                        _ => None,
                    }
                }
                _ => None,
            };
            self.hash_scratch.push(hash);
        }
    }

    /// While dimension `d` is interned: the next prefetched dimension's slot has had time to
    /// arrive, so fetch the stored value it points at.
    pub(super) fn prefetch_next_value(&self, d: usize) {
        if let Some(next) = self
            .hash_scratch
            .get(d + 1..)
            .and_then(|h| h.iter().position(Option::is_some))
        {
            let next = d + 1 + next;
            if let (MemDim::String(dim), Some(hash)) = (&self.dims[next], self.hash_scratch[next]) {
                dim.prefetch_value(hash);
            }
        }
    }

    /// Fetches the stored value the lookup hashed at `position` of the hash scratch (row by
    /// row, in dimension order) will compare with, once its slot has had time to arrive.
    pub(super) fn prefetch_value_at(&self, position: usize) {
        if let Some(Some(hash)) = self.hash_scratch.get(position)
            && let MemDim::String(dim) = &self.dims[position % self.dims.len()]
        {
            dim.prefetch_value(*hash);
        }
    }
}
