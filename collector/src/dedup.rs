//! Short-term duplicate detection and server-side sessions.
//!
//! [`DuplicateMemory`] remembers a 64-bit signature of recently seen (party, event id) pairs in
//! a fixed array of slots, lock-free: a hash picks the slot, the slot holds the signature. It
//! can forget (a later event takes the slot) and, with probability about 2^-64 per lookup,
//! mistake one event for another; memory is fixed at 8 bytes per slot.
//!
//! [`Sessions`] detects sessions for events that carry no session of their own (cookieless
//! mode): a party's session continues while events arrive less than the timeout apart.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::protocol::ids::{Identifier, base64url};

pub struct DuplicateMemory {
    slots: Vec<AtomicU64>,
}

impl DuplicateMemory {
    /// A memory of `slots` signatures (at least one).
    pub fn new(slots: usize) -> DuplicateMemory {
        DuplicateMemory {
            slots: (0..slots.max(1)).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    /// Records the event and says whether it was seen before.
    pub fn seen(&self, party_id: &str, event_id: &str) -> bool {
        let mut key = Vec::with_capacity(party_id.len() + event_id.len() + 1);
        key.extend(party_id.as_bytes());
        key.push(0);
        key.extend(event_id.as_bytes());
        let h = xxhash_rust::xxh3::xxh3_128(&key);
        let slot = (h as u64 % self.slots.len() as u64) as usize;
        // Never zero, so an empty slot never matches.
        let signature = ((h >> 64) as u64) | 1;
        self.slots[slot].swap(signature, Ordering::Relaxed) == signature
    }
}

const SHARDS: usize = 16;

/// A party's open session.
#[derive(Clone)]
struct Open {
    id: String,
    last_seen: i64,
}

/// What [`Sessions::track`] decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionTurn {
    pub session_id: String,
    pub first_in_session: bool,
    /// No session of this party was known (within the memory's reach).
    pub new_party: bool,
}

pub struct Sessions {
    timeout_ms: i64,
    per_shard: usize,
    shards: Vec<Mutex<HashMap<String, Open>>>,
}

impl Sessions {
    /// Sessions end after `timeout_ms` without an event; at most about `capacity` parties are
    /// remembered (a full shard forgets its idle sessions, then everything).
    pub fn new(timeout_ms: i64, capacity: usize) -> Sessions {
        Sessions {
            timeout_ms,
            per_shard: capacity.div_ceil(SHARDS).max(1),
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
        }
    }

    pub fn track(&self, party_id: &str, now_ms: i64) -> SessionTurn {
        let shard = &self.shards[xxhash_rust::xxh3::xxh3_64(party_id.as_bytes()) as usize % SHARDS];
        let mut open = shard.lock().unwrap_or_else(|p| p.into_inner());
        let known = open.get_mut(party_id);
        let new_party = known.is_none();
        if let Some(s) = known
            && now_ms - s.last_seen < self.timeout_ms
        {
            s.last_seen = s.last_seen.max(now_ms);
            return SessionTurn {
                session_id: s.id.clone(),
                first_in_session: false,
                new_party: false,
            };
        }
        if open.len() >= self.per_shard {
            let timeout = self.timeout_ms;
            open.retain(|_, s| now_ms - s.last_seen < timeout);
            if open.len() >= self.per_shard {
                open.clear();
            }
        }
        let hash = xxhash_rust::xxh3::xxh3_128(format!("{party_id}\0{now_ms}").as_bytes());
        let id = Identifier::with_random_part(now_ms, &base64url(&hash.to_le_bytes())).value;
        open.insert(
            party_id.to_string(),
            Open {
                id: id.clone(),
                last_seen: now_ms,
            },
        );
        SessionTurn {
            session_id: id,
            first_in_session: true,
            new_party,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_recent_events() {
        let m = DuplicateMemory::new(1 << 16);
        assert!(!m.seen("p1", "e1"));
        assert!(m.seen("p1", "e1"));
        assert!(!m.seen("p1", "e2"));
        assert!(!m.seen("p2", "e1"), "event ids are per party");
        let many = (0..10_000)
            .filter(|i| m.seen("p3", &format!("e{i}")))
            .count();
        assert_eq!(many, 0, "distinct events are never duplicates");
    }

    #[test]
    fn a_one_slot_memory_forgets_at_once() {
        let m = DuplicateMemory::new(1);
        assert!(!m.seen("p", "a"));
        assert!(!m.seen("p", "b"));
        assert!(!m.seen("p", "a"));
    }

    #[test]
    fn sessions_slide_and_time_out() {
        let s = Sessions::new(30 * 60_000, 1000);
        let first = s.track("party", 0);
        assert!(first.first_in_session && first.new_party);
        let again = s.track("party", 29 * 60_000);
        assert_eq!(again.session_id, first.session_id);
        assert!(!again.first_in_session);
        // 29 minutes after the last event: still the same session (it slides).
        assert_eq!(s.track("party", 58 * 60_000).session_id, first.session_id);
        let later = s.track("party", 89 * 60_000);
        assert_ne!(later.session_id, first.session_id);
        assert!(later.first_in_session && !later.new_party);
        assert!(Identifier::parse(&later.session_id).is_some());
    }

    #[test]
    fn sessions_stay_bounded() {
        let s = Sessions::new(60_000, 32);
        for i in 0..1000 {
            s.track(&format!("p{i}"), i);
        }
        let total: usize = s.shards.iter().map(|m| m.lock().unwrap().len()).sum();
        assert!(total <= 32, "{total}");
    }
}
