//! The cleaner's key → last offset map over a log's dirty section, bounded in memory like
//! Kafka's `SkimpyOffsetMap`: keys are stored as 128-bit hashes (a collision would need ~2^64
//! distinct keys in one map), and the map refuses new keys past a capacity computed from
//! `log.cleaner.dedupe.buffer.size`, so the cleaner maps the dirty section in as many rounds as
//! its key count needs.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, DefaultHasher, Hash, Hasher};

use crate::types::Offset;

/// Bytes one entry costs: the 16-byte key hash and the 8-byte offset (Kafka's accounting).
pub(crate) const ENTRY_BYTES: u64 = 24;

/// `log.cleaner.io.buffer.load.factor`'s default: how full the map may get.
pub(crate) const LOAD_FACTOR: f64 = 0.9;

/// 128 bits of a key: two SipHash passes over differently prefixed input.
fn key_hash(key: &[u8]) -> u128 {
    let half = |salt: u8| {
        let mut h = DefaultHasher::new();
        salt.hash(&mut h);
        key.hash(&mut h);
        h.finish()
    };
    (u128::from(half(0)) << 64) | u128::from(half(1))
}

/// Already a hash: used as its own bucket hash.
#[derive(Default)]
struct IdentityHasher(u64);

impl Hasher for IdentityHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes.iter().take(8) {
            self.0 = (self.0 << 8) | u64::from(*b);
        }
    }
    fn write_u128(&mut self, n: u128) {
        self.0 = n as u64;
    }
}

/// Key hash → the largest offset seen for it.
pub(crate) struct OffsetMap {
    entries: HashMap<u128, i64, BuildHasherDefault<IdentityHasher>>,
    capacity: usize,
}

impl OffsetMap {
    /// A map that holds at most what `memory_bytes` allows at [`LOAD_FACTOR`].
    pub(crate) fn with_memory(memory_bytes: u64) -> Self {
        let capacity = ((memory_bytes as f64 * LOAD_FACTOR) / ENTRY_BYTES as f64) as usize;
        OffsetMap { entries: HashMap::default(), capacity: capacity.max(1) }
    }

    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }
    /// Room for `n` more distinct keys, counting every one as new.
    pub(crate) fn has_room_for(&self, n: usize) -> bool {
        self.entries.len().saturating_add(n) <= self.capacity
    }

    /// Records `offset` for `key`; later offsets win.
    pub(crate) fn put(&mut self, key: &[u8], offset: Offset) {
        let slot = self.entries.entry(key_hash(key)).or_insert(offset.0);
        *slot = (*slot).max(offset.0);
    }

    pub(crate) fn get(&self, key: &[u8]) -> Option<Offset> {
        self.entries.get(&key_hash(key)).copied().map(Offset)
    }

    pub(crate) fn clear(&mut self) {
        self.entries.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn later_offsets_win_and_capacity_follows_memory() {
        let mut m = OffsetMap::with_memory(24 * 100);
        assert_eq!(m.capacity(), 90);
        m.put(b"a", Offset(5));
        m.put(b"a", Offset(3));
        m.put(b"b", Offset(7));
        assert_eq!(m.get(b"a"), Some(Offset(5)));
        assert_eq!(m.get(b"b"), Some(Offset(7)));
        assert_eq!(m.get(b"c"), None);
        assert!(m.has_room_for(88) && !m.has_room_for(89));
        let distinct: std::collections::HashSet<u128> =
            (0..10_000u32).map(|i| key_hash(&i.to_be_bytes())).collect();
        assert_eq!(distinct.len(), 10_000);
    }
}
