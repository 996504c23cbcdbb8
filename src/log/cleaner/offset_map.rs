//! The cleaner's key → last offset map over a log's dirty section, bounded in memory like
//! Kafka's `SkimpyOffsetMap`: keys are stored as 128-bit hashes (a collision would need ~2^64
//! distinct keys in one map) in one flat open-addressing table of 24-byte slots (hash, offset),
//! probed linearly. The table starts small and doubles as keys arrive, up to a size chosen so
//! that even while it doubles (old and new table both alive) it stays within the memory it was
//! given (`log.cleaner.dedupe.buffer.size` over the cleaner threads); past [`LOAD_FACTOR`] of
//! that size it refuses new keys, and the cleaner maps the dirty section in more rounds.

use std::hash::{DefaultHasher, Hash, Hasher};

use crate::types::Offset;

/// Bytes one slot costs: the 16-byte key hash and the 8-byte offset.
pub(crate) const SLOT_BYTES: u64 = 24;

/// `log.cleaner.io.buffer.load.factor`'s default: how full the table may get.
pub(crate) const LOAD_FACTOR: f64 = 0.9;

/// Slots of a new map's first table.
const INITIAL_SLOTS: usize = 1024;

/// 128 bits of a key: two SipHash passes over differently prefixed input; never 0 (the empty
/// slot).
fn key_hash(key: &[u8]) -> u128 {
    let half = |salt: u8| {
        let mut h = DefaultHasher::new();
        salt.hash(&mut h);
        key.hash(&mut h);
        h.finish()
    };
    ((u128::from(half(0)) << 64) | u128::from(half(1))).max(1)
}

/// One slot: the key hash's two halves and the offset (24 bytes; a `u128` field would align
/// the slot to 32).
#[derive(Clone, Copy, Default)]
struct Slot {
    hi: u64,
    lo: u64,
    offset: i64,
}

impl Slot {
    fn hash(&self) -> u128 {
        (u128::from(self.hi) << 64) | u128::from(self.lo)
    }
}

/// Key hash → the largest offset seen for it.
pub(crate) struct OffsetMap {
    /// Hash 0 is an empty slot.
    slots: Vec<Slot>,
    len: usize,
    /// The largest table the memory allows (see the module doc).
    max_slots: usize,
}

impl OffsetMap {
    /// A map that never holds more than `memory_bytes`.
    pub(crate) fn with_memory(memory_bytes: u64) -> Self {
        // Doubling from max/2 to max keeps 1.5 × max slots alive for a moment.
        let max_slots = ((memory_bytes * 2 / 3) / SLOT_BYTES).max(2) as usize;
        OffsetMap { slots: Vec::new(), len: 0, max_slots }
    }

    /// Keys it can hold.
    pub(crate) fn capacity(&self) -> usize {
        ((self.max_slots as f64 * LOAD_FACTOR) as usize).max(1)
    }
    pub(crate) fn len(&self) -> usize {
        self.len
    }
    /// Room for `n` more distinct keys, counting every one as new.
    pub(crate) fn has_room_for(&self, n: usize) -> bool {
        self.len.saturating_add(n) <= self.capacity()
    }

    fn index(hash: u128, slots: usize) -> usize {
        ((u128::from(hash as u64) * slots as u128) >> 64) as usize
    }

    /// The slot holding `hash`, or the empty one where it belongs.
    fn find(slots: &[Slot], hash: u128) -> usize {
        let mut i = Self::index(hash, slots.len());
        loop {
            let h = slots[i].hash();
            if h == hash || h == 0 {
                return i;
            }
            i = if i + 1 == slots.len() { 0 } else { i + 1 };
        }
    }

    fn grow(&mut self) {
        let size = if self.slots.is_empty() { INITIAL_SLOTS } else { self.slots.len() * 2 };
        let size = size.min(self.max_slots).max(2);
        let mut slots = vec![Slot::default(); size];
        for slot in self.slots.iter().copied().filter(|s| s.hash() != 0) {
            let i = Self::find(&slots, slot.hash());
            slots[i] = slot;
        }
        self.slots = slots;
    }

    /// Records `offset` for `key`; later offsets win. A key past the capacity is dropped (the
    /// caller checks [`OffsetMap::has_room_for`] first).
    pub(crate) fn put(&mut self, key: &[u8], offset: Offset) {
        let hash = key_hash(key);
        let full = (self.len + 1) as f64 > self.slots.len() as f64 * LOAD_FACTOR;
        if full && self.slots.len() < self.max_slots {
            self.grow();
        }
        if self.slots.is_empty() {
            return;
        }
        let i = Self::find(&self.slots, hash);
        let table = self.slots.len();
        let slot = &mut self.slots[i];
        if slot.hash() == 0 {
            if self.len + 1 >= table {
                return; // never fill the last slot: probing must find an empty one
            }
            *slot = Slot { hi: (hash >> 64) as u64, lo: hash as u64, offset: offset.0 };
            self.len += 1;
        } else {
            slot.offset = slot.offset.max(offset.0);
        }
    }

    pub(crate) fn get(&self, key: &[u8]) -> Option<Offset> {
        if self.slots.is_empty() {
            return None;
        }
        let slot = self.slots[Self::find(&self.slots, key_hash(key))];
        (slot.hash() != 0).then_some(Offset(slot.offset))
    }

    /// Empties the map, keeping its table (the next round of this thread reuses it).
    pub(crate) fn clear(&mut self) {
        if self.len > 0 {
            self.slots.fill(Slot::default());
        }
        self.len = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slot_is_24_bytes() {
        assert_eq!(std::mem::size_of::<Slot>() as u64, SLOT_BYTES);
    }

    #[test]
    fn later_offsets_win_and_capacity_follows_memory() {
        let mut m = OffsetMap::with_memory(24 * 150);
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
        // Filled to capacity through several doublings: every key still found.
        let mut m = OffsetMap::with_memory(24 * 30_000);
        let n = m.capacity();
        for i in 0..n {
            m.put(format!("k{i}").as_bytes(), Offset(i as i64));
        }
        assert_eq!(m.len(), n);
        assert!((0..n).all(|i| m.get(format!("k{i}").as_bytes()) == Some(Offset(i as i64))));
        assert_eq!(m.get(b"absent"), None);
        m.clear();
        assert_eq!((m.len(), m.get(b"k1")), (0, None));
    }
}
