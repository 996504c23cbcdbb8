//! Which partitions of an internal topic this node coordinates. Pure bookkeeping: the
//! coordinator keeps a [`Shards`] inside its own state lock and feeds it leaderships.

use std::collections::{BTreeMap, HashMap};

use crate::error_code::ErrorCode;
use crate::types::LeaderEpoch;

/// The partition of an internal topic a key (group id, transactional id) is coordinated in:
/// Java's `String.hashCode`, made non-negative as Kafka's `Utils.abs` does, modulo the
/// partition count; so a samsa broker and a Kafka tool agree on the coordinator.
pub(crate) fn partition_for(key: &str, partitions: i32) -> i32 {
    let mut h: i32 = 0;
    for unit in key.encode_utf16() {
        h = h.wrapping_mul(31).wrapping_add(i32::from(unit));
    }
    (h & 0x7fff_ffff) % partitions.max(1)
}

/// Where a key is coordinated: a partition this node leads, in the epoch its state was loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Placement {
    pub(crate) partition: i32,
    pub(crate) epoch: LeaderEpoch,
}

#[derive(Debug, Clone, Copy)]
struct Shard {
    epoch: LeaderEpoch,
    loaded: bool,
}

/// What a change of leaderships asks of the coordinator.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct LeadershipChange {
    /// Partitions no longer led (or led in a new epoch): drop their state, answer waiters.
    pub(crate) lost: Vec<i32>,
    /// Partitions newly led: load their state.
    pub(crate) gained: Vec<Placement>,
}

/// The partitions this node coordinates, with their load state.
#[derive(Debug, Default)]
pub(crate) struct Shards {
    /// The topic's partition count (fixed once the topic exists); 0 before it does.
    partition_count: i32,
    shards: HashMap<i32, Shard>,
}

impl Shards {
    pub(crate) fn partition_count(&self) -> i32 {
        self.partition_count
    }

    /// Where `partition`'s state is served, or why not here.
    pub(crate) fn placement(&self, partition: i32) -> Result<Placement, ErrorCode> {
        if self.partition_count == 0 {
            return Err(ErrorCode::NotCoordinator);
        }
        match self.shards.get(&partition) {
            None => Err(ErrorCode::NotCoordinator),
            Some(s) if !s.loaded => Err(ErrorCode::CoordinatorLoadInProgress),
            Some(s) => Ok(Placement { partition, epoch: s.epoch }),
        }
    }

    /// Takes the current leaderships (`led`: partition → epoch) of a topic of `count`
    /// partitions; returns what to drop and what to load. A partition led in a new epoch is
    /// both lost and gained.
    pub(crate) fn follow(
        &mut self,
        count: i32,
        led: &BTreeMap<i32, LeaderEpoch>,
    ) -> LeadershipChange {
        self.partition_count = count;
        let mut change = LeadershipChange::default();
        self.shards.retain(|p, s| {
            let keep = led.get(p) == Some(&s.epoch);
            if !keep {
                change.lost.push(*p);
            }
            keep
        });
        for (&partition, &epoch) in led {
            if let std::collections::hash_map::Entry::Vacant(e) = self.shards.entry(partition) {
                e.insert(Shard { epoch, loaded: false });
                change.gained.push(Placement { partition, epoch });
            }
        }
        change.lost.sort_unstable();
        change
    }

    /// Marks `at` loaded; false if the leadership moved on while it loaded (drop the state).
    pub(crate) fn finish_load(&mut self, at: Placement) -> bool {
        match self.shards.get_mut(&at.partition) {
            Some(s) if s.epoch == at.epoch && !s.loaded => {
                s.loaded = true;
                true
            }
            _ => false,
        }
    }

    /// Whether any partition's state is still loading.
    pub(crate) fn loading(&self) -> bool {
        self.shards.values().any(|s| !s.loaded)
    }

    /// Forgets every partition (shutdown).
    pub(crate) fn clear(&mut self) {
        self.shards.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn led(pairs: &[(i32, i32)]) -> BTreeMap<i32, LeaderEpoch> {
        pairs.iter().map(|(p, e)| (*p, LeaderEpoch(*e))).collect()
    }

    #[test]
    fn a_partition_is_served_only_once_loaded_and_only_in_its_epoch() {
        let mut s = Shards::default();
        assert_eq!(s.placement(0), Err(ErrorCode::NotCoordinator), "no topic yet");
        let change = s.follow(3, &led(&[(0, 1), (2, 4)]));
        assert_eq!(change.gained.len(), 2);
        assert!(change.lost.is_empty());
        assert_eq!(s.placement(0), Err(ErrorCode::CoordinatorLoadInProgress));
        assert_eq!(s.placement(1), Err(ErrorCode::NotCoordinator));
        assert!(s.finish_load(Placement { partition: 0, epoch: LeaderEpoch(1) }));
        assert_eq!(s.placement(0), Ok(Placement { partition: 0, epoch: LeaderEpoch(1) }));
        assert!(s.loading(), "partition 2 still loads");

        // Partition 0 is led again in a later epoch: lost and gained; the old load is stale.
        let change = s.follow(3, &led(&[(0, 2), (2, 4)]));
        assert_eq!(change.lost, vec![0]);
        assert_eq!(change.gained, vec![Placement { partition: 0, epoch: LeaderEpoch(2) }]);
        assert!(!s.finish_load(Placement { partition: 0, epoch: LeaderEpoch(1) }));
        assert_eq!(s.placement(0), Err(ErrorCode::CoordinatorLoadInProgress));

        let change = s.follow(3, &led(&[]));
        assert_eq!(change.lost, vec![0, 2]);
        assert_eq!(s.placement(2), Err(ErrorCode::NotCoordinator));
    }
}
