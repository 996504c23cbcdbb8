//! Idempotent-producer state of one partition (KIP-98): per producer id, its epoch and the
//! metadata of its last [`BATCHES_RETAINED`] batches, so that a retried batch is recognised as a
//! duplicate and answered with its original offset, and a gap in sequence numbers is refused.
//!
//! The rules follow Kafka's `ProducerAppendInfo`: an older epoch is fenced; a new epoch must
//! start at sequence 0; within an epoch each batch must start right after the previous one
//! (sequences wrap at `i32::MAX`). A producer the partition knows nothing about (its state was
//! removed by retention or expiry) may start at any sequence, as in Kafka.
//!
//! Transactions (KIP-98): a transactional producer's first record after a marker opens its
//! transaction at that offset; its COMMIT or ABORT marker closes it. The smallest open
//! transaction's first offset is the partition's first unstable offset, which bounds the last
//! stable offset (what `read_committed` consumers may read) and the log cleaner. A marker carries
//! the coordinator's producer epoch: an older epoch than the producer's is fenced.
//!
//! The state is rebuilt from the log at startup (`PartitionLog::open`) and snapshotted to the
//! `producer-state` file on flush and at rolls, with open transactions, so recovery only replays
//! the tail. Not thread-safe.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::fs;
use std::io;
use std::path::Path;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::batch::BatchHeader;
use crate::types::{Offset, ProducerEpoch, ProducerId};

/// How many recent batches per producer are kept for duplicate detection; Kafka's value, matching
/// the clients' `max.in.flight.requests.per.connection` limit of 5 for idempotence.
pub(crate) const BATCHES_RETAINED: usize = 5;
/// Upper bound on producers tracked per partition; beyond it the least recently used is dropped
/// (it may then restart at any sequence, as after expiry).
pub(crate) const PRODUCERS_PER_PARTITION_MAX: usize = 100_000;

/// Why a batch was refused by the sequence checks.
#[derive(Debug, Error, PartialEq, Eq)]
pub(crate) enum ProducerError {
    #[error("producer {producer_id} epoch {got} is older than the current epoch {current}")]
    InvalidProducerEpoch { producer_id: ProducerId, current: ProducerEpoch, got: ProducerEpoch },
    #[error("out of order sequence for producer {producer_id}: expected {expected}, got {got}")]
    OutOfOrderSequence { producer_id: ProducerId, expected: i32, got: i32 },
}

/// The outcome of checking a batch against the producer state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SequenceCheck {
    /// Not a duplicate: append it.
    Append,
    /// A retry of a batch already in the log, stored at these offsets.
    Duplicate { base_offset: Offset, last_offset: Offset },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct BatchMetadata {
    first_sequence: i32,
    last_sequence: i32,
    base_offset: Offset,
    last_offset: Offset,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct ProducerEntry {
    epoch: ProducerEpoch,
    batches: VecDeque<BatchMetadata>,
    last_timestamp_ms: i64,
    /// The first offset of the producer's open transaction.
    #[serde(default)]
    txn_first_offset: Option<Offset>,
    /// The coordinator epoch of the producer's last marker (-1 before one).
    #[serde(default = "no_coordinator_epoch")]
    coordinator_epoch: i32,
}

fn no_coordinator_epoch() -> i32 {
    -1
}

/// A transaction closed by a marker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CompletedTxn {
    pub producer_id: ProducerId,
    pub first_offset: Offset,
    /// The marker's offset.
    pub last_offset: Offset,
    pub aborted: bool,
    /// The first unstable offset once it is closed, else one past the marker.
    pub last_stable_offset: Offset,
}

/// What DescribeProducers reports of one producer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ProducerInfo {
    pub producer_id: ProducerId,
    pub epoch: ProducerEpoch,
    pub last_sequence: i32,
    pub last_timestamp_ms: i64,
    pub coordinator_epoch: i32,
    pub txn_first_offset: Option<Offset>,
}

/// The on-disk snapshot: valid for the log up to (excluding) `next_offset`.
#[derive(Debug, Serialize, Deserialize)]
struct Snapshot {
    next_offset: Offset,
    producers: Vec<(ProducerId, ProducerEntry)>,
}

/// Sequence state of every idempotent producer that wrote to a partition.
#[derive(Debug, Default)]
pub(crate) struct ProducerStateManager {
    producers: HashMap<ProducerId, ProducerEntry>,
    /// Every open transaction by its first offset (kept in step with the entries).
    open_txns: BTreeSet<(Offset, ProducerId)>,
}

fn new_entry(epoch: ProducerEpoch, h: &BatchHeader) -> ProducerEntry {
    ProducerEntry {
        epoch,
        batches: VecDeque::new(),
        last_timestamp_ms: h.max_timestamp_ms,
        txn_first_offset: None,
        coordinator_epoch: -1,
    }
}

fn next_sequence(seq: i32) -> i32 {
    if seq == i32::MAX { 0 } else { seq + 1 }
}

impl ProducerStateManager {
    /// Checks a producer's batch before it is appended. Batches without a producer id pass.
    pub(crate) fn check(&self, h: &BatchHeader) -> Result<SequenceCheck, ProducerError> {
        if !h.has_producer_id() {
            return Ok(SequenceCheck::Append);
        }
        let Some(entry) = self.producers.get(&h.producer_id) else {
            return Ok(SequenceCheck::Append);
        };
        if h.producer_epoch < entry.epoch {
            return Err(ProducerError::InvalidProducerEpoch {
                producer_id: h.producer_id,
                current: entry.epoch,
                got: h.producer_epoch,
            });
        }
        // A coordinator's transactional write (TxnOffsetCommit) carries no sequence: only the
        // epoch is checked.
        if h.base_sequence < 0 {
            return Ok(SequenceCheck::Append);
        }
        if h.producer_epoch > entry.epoch {
            if h.base_sequence != 0 {
                return Err(ProducerError::OutOfOrderSequence {
                    producer_id: h.producer_id,
                    expected: 0,
                    got: h.base_sequence,
                });
            }
            return Ok(SequenceCheck::Append);
        }
        let last_sequence = h.last_sequence();
        if let Some(dup) = entry
            .batches
            .iter()
            .find(|b| b.first_sequence == h.base_sequence && b.last_sequence == last_sequence)
        {
            return Ok(SequenceCheck::Duplicate {
                base_offset: dup.base_offset,
                last_offset: dup.last_offset,
            });
        }
        match entry.batches.back() {
            Some(last) if next_sequence(last.last_sequence) != h.base_sequence => {
                Err(ProducerError::OutOfOrderSequence {
                    producer_id: h.producer_id,
                    expected: next_sequence(last.last_sequence),
                    got: h.base_sequence,
                })
            }
            _ => Ok(SequenceCheck::Append),
        }
    }

    /// Records a batch that is now in the log (its offsets assigned).
    pub(crate) fn update(&mut self, h: &BatchHeader) {
        if !h.has_producer_id() || h.is_control() {
            return;
        }
        if self.producers.len() >= PRODUCERS_PER_PARTITION_MAX
            && !self.producers.contains_key(&h.producer_id)
        {
            self.evict_oldest();
        }
        let entry =
            self.producers.entry(h.producer_id).or_insert_with(|| new_entry(h.producer_epoch, h));
        if h.is_transactional() && entry.txn_first_offset.is_none() {
            entry.txn_first_offset = Some(h.base_offset);
            self.open_txns.insert((h.base_offset, h.producer_id));
        }
        if h.producer_epoch != entry.epoch {
            entry.epoch = h.producer_epoch;
            entry.batches.clear();
        }
        if h.base_sequence < 0 {
            entry.last_timestamp_ms = entry.last_timestamp_ms.max(h.max_timestamp_ms);
            return;
        }
        if entry.batches.len() == BATCHES_RETAINED {
            entry.batches.pop_front();
        }
        entry.batches.push_back(BatchMetadata {
            first_sequence: h.base_sequence,
            last_sequence: h.last_sequence(),
            base_offset: h.base_offset,
            last_offset: h.last_offset(),
        });
        entry.last_timestamp_ms = entry.last_timestamp_ms.max(h.max_timestamp_ms);
    }

    /// Whether a marker of producer `producer_id` in `epoch` may be written: an older epoch
    /// than the producer's is a zombie coordinator's (fenced).
    pub(crate) fn check_marker(
        &self,
        producer_id: ProducerId,
        epoch: ProducerEpoch,
    ) -> Result<(), ProducerError> {
        match self.producers.get(&producer_id) {
            Some(e) if epoch < e.epoch => Err(ProducerError::InvalidProducerEpoch {
                producer_id,
                current: e.epoch,
                got: epoch,
            }),
            _ => Ok(()),
        }
    }

    /// Records a marker now in the log (`h` is its control batch): closes the producer's open
    /// transaction. `None` when it had none open (nothing to index).
    pub(crate) fn complete_txn(
        &mut self,
        h: &BatchHeader,
        aborted: bool,
        coordinator_epoch: i32,
    ) -> Option<CompletedTxn> {
        if self.producers.len() >= PRODUCERS_PER_PARTITION_MAX
            && !self.producers.contains_key(&h.producer_id)
        {
            self.evict_oldest();
        }
        let entry =
            self.producers.entry(h.producer_id).or_insert_with(|| new_entry(h.producer_epoch, h));
        if h.producer_epoch > entry.epoch {
            entry.epoch = h.producer_epoch;
            entry.batches.clear();
        }
        entry.coordinator_epoch = coordinator_epoch;
        entry.last_timestamp_ms = entry.last_timestamp_ms.max(h.max_timestamp_ms);
        let first_offset = entry.txn_first_offset.take()?;
        self.open_txns.remove(&(first_offset, h.producer_id));
        let last_stable_offset = self
            .first_unstable_offset()
            .unwrap_or(h.base_offset.plus(1))
            .min(h.base_offset.plus(1));
        Some(CompletedTxn {
            producer_id: h.producer_id,
            first_offset,
            last_offset: h.base_offset,
            aborted,
            last_stable_offset,
        })
    }

    /// Whether `producer_id` has a transaction open here.
    pub(crate) fn has_open_txn(&self, producer_id: ProducerId) -> bool {
        self.producers.get(&producer_id).is_some_and(|e| e.txn_first_offset.is_some())
    }

    /// The first offset of the oldest open transaction.
    pub(crate) fn first_unstable_offset(&self) -> Option<Offset> {
        self.open_txns.first().map(|(o, _)| *o)
    }

    /// Every producer, for DescribeProducers.
    pub(crate) fn describe(&self) -> Vec<ProducerInfo> {
        let mut out: Vec<ProducerInfo> = self
            .producers
            .iter()
            .map(|(pid, e)| ProducerInfo {
                producer_id: *pid,
                epoch: e.epoch,
                last_sequence: e.batches.back().map_or(-1, |b| b.last_sequence),
                last_timestamp_ms: e.last_timestamp_ms,
                coordinator_epoch: e.coordinator_epoch,
                txn_first_offset: e.txn_first_offset,
            })
            .collect();
        out.sort_by_key(|p| p.producer_id);
        out
    }

    /// Drops the least recently used producer without an open transaction (an open one must
    /// stay: it holds the last stable offset until its marker).
    fn evict_oldest(&mut self) {
        if let Some(pid) = self
            .producers
            .iter()
            .filter(|(_, e)| e.txn_first_offset.is_none())
            .min_by_key(|(_, e)| e.last_timestamp_ms)
            .map(|(pid, _)| *pid)
        {
            self.producers.remove(&pid);
        }
    }

    /// The last offset of every producer's latest batch: the log cleaner keeps those batches
    /// (emptied if need be), so this state can be rebuilt from a cleaned log.
    pub(crate) fn last_batch_offsets(&self) -> HashMap<ProducerId, Offset> {
        self.producers
            .iter()
            .filter_map(|(pid, e)| e.batches.back().map(|b| (*pid, b.last_offset)))
            .collect()
    }

    /// Forgets producers whose last write is older than `cutoff_ms` (`producer.id.expiration.ms`),
    /// except those with an open transaction (Kafka keeps them until the coordinator aborts).
    pub(crate) fn expire(&mut self, cutoff_ms: i64) {
        self.producers
            .retain(|_, e| e.last_timestamp_ms >= cutoff_ms || e.txn_first_offset.is_some());
    }

    /// Writes a snapshot valid up to `next_offset` (atomically: temp file, fsync, rename).
    pub(crate) fn write_snapshot(&self, path: &Path, next_offset: Offset) -> io::Result<()> {
        crate::fsutil::write_atomically(path, &self.snapshot_bytes(next_offset)?)
    }

    /// As [`write_snapshot`](Self::write_snapshot), replacing the file atomically but without
    /// an fsync: the caller has one scheduled.
    pub(crate) fn write_snapshot_unsynced(
        &self,
        path: &Path,
        next_offset: Offset,
    ) -> io::Result<()> {
        crate::fsutil::replace_unsynced(path, &self.snapshot_bytes(next_offset)?)
    }

    fn snapshot_bytes(&self, next_offset: Offset) -> io::Result<Vec<u8>> {
        let snap = Snapshot {
            next_offset,
            producers: self.producers.iter().map(|(k, v)| (*k, v.clone())).collect(),
        };
        serde_json::to_vec(&snap).map_err(io::Error::other)
    }

    /// Loads a snapshot; returns the state and the offset replay must start from. A missing or
    /// unreadable snapshot yields empty state and offset `None` (replay everything).
    pub(crate) fn read_snapshot(path: &Path) -> (Self, Option<Offset>) {
        let Ok(bytes) = fs::read(path) else { return (Self::default(), None) };
        match serde_json::from_slice::<Snapshot>(&bytes) {
            Ok(s) => {
                let producers: HashMap<ProducerId, ProducerEntry> =
                    s.producers.into_iter().collect();
                let open_txns = producers
                    .iter()
                    .filter_map(|(pid, e)| e.txn_first_offset.map(|o| (o, *pid)))
                    .collect();
                (Self { producers, open_txns }, Some(s.next_offset))
            }
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "ignoring unreadable producer-state snapshot; rebuilding from the log");
                (Self::default(), None)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::LeaderEpoch;

    fn header(pid: i64, epoch: i16, seq: i32, count: i32, base: i64) -> BatchHeader {
        BatchHeader {
            base_offset: Offset(base),
            size_bytes: 100,
            partition_leader_epoch: LeaderEpoch(0),
            magic: 2,
            crc: 0,
            attributes: 0,
            last_offset_delta: count - 1,
            base_timestamp_ms: 0,
            max_timestamp_ms: 0,
            producer_id: ProducerId(pid),
            producer_epoch: ProducerEpoch(epoch),
            base_sequence: seq,
            records_count: count,
        }
    }

    #[test]
    fn in_order_batches_append_and_a_retry_is_a_duplicate_with_its_first_offset() {
        let mut s = ProducerStateManager::default();
        let a = header(1, 0, 0, 3, 10);
        assert_eq!(s.check(&a), Ok(SequenceCheck::Append));
        s.update(&a);
        let b = header(1, 0, 3, 2, 13);
        assert_eq!(s.check(&b), Ok(SequenceCheck::Append));
        s.update(&b);
        assert_eq!(
            s.check(&header(1, 0, 0, 3, -1)),
            Ok(SequenceCheck::Duplicate { base_offset: Offset(10), last_offset: Offset(12) })
        );
    }

    #[test]
    fn a_gap_is_out_of_order() {
        let mut s = ProducerStateManager::default();
        s.update(&header(1, 0, 0, 3, 0));
        assert_eq!(
            s.check(&header(1, 0, 5, 1, -1)),
            Err(ProducerError::OutOfOrderSequence {
                producer_id: ProducerId(1),
                expected: 3,
                got: 5
            })
        );
    }

    #[test]
    fn an_older_epoch_is_fenced_and_a_new_epoch_starts_at_zero() {
        let mut s = ProducerStateManager::default();
        s.update(&header(1, 2, 0, 1, 0));
        assert!(matches!(
            s.check(&header(1, 1, 1, 1, -1)),
            Err(ProducerError::InvalidProducerEpoch { .. })
        ));
        assert!(matches!(
            s.check(&header(1, 3, 4, 1, -1)),
            Err(ProducerError::OutOfOrderSequence { .. })
        ));
        assert_eq!(s.check(&header(1, 3, 0, 1, -1)), Ok(SequenceCheck::Append));
    }

    #[test]
    fn only_the_last_five_batches_are_remembered() {
        let mut s = ProducerStateManager::default();
        for i in 0..7 {
            s.update(&header(1, 0, i, 1, i64::from(i)));
        }
        assert!(matches!(s.check(&header(1, 0, 6, 1, -1)), Ok(SequenceCheck::Duplicate { .. })));
        // Batch 0 fell out of the window: it is no longer a duplicate but out of order.
        assert!(s.check(&header(1, 0, 0, 1, -1)).is_err());
    }

    #[test]
    fn sequences_wrap_at_i32_max() {
        let mut s = ProducerStateManager::default();
        s.update(&header(1, 0, i32::MAX - 1, 2, 0));
        assert_eq!(s.check(&header(1, 0, 0, 1, -1)), Ok(SequenceCheck::Append));
    }

    #[test]
    fn an_unknown_producer_may_start_anywhere_and_batches_without_id_pass() {
        let s = ProducerStateManager::default();
        assert_eq!(s.check(&header(9, 0, 42, 1, -1)), Ok(SequenceCheck::Append));
        assert_eq!(s.check(&header(-1, -1, -1, 1, -1)), Ok(SequenceCheck::Append));
    }

    #[test]
    fn snapshot_round_trips() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("producer-state");
        let mut s = ProducerStateManager::default();
        s.update(&header(1, 0, 0, 3, 10));
        s.write_snapshot(&path, Offset(13)).expect("write");
        let (loaded, from) = ProducerStateManager::read_snapshot(&path);
        assert_eq!(from, Some(Offset(13)));
        assert!(matches!(
            loaded.check(&header(1, 0, 0, 3, -1)),
            Ok(SequenceCheck::Duplicate { .. })
        ));
    }

    fn txn_header(pid: i64, epoch: i16, seq: i32, count: i32, base: i64) -> BatchHeader {
        BatchHeader { attributes: 0x10, ..header(pid, epoch, seq, count, base) }
    }

    fn marker(pid: i64, epoch: i16, at: i64) -> BatchHeader {
        BatchHeader { attributes: 0x30, base_sequence: -1, ..header(pid, epoch, -1, 1, at) }
    }

    #[test]
    fn open_transactions_bound_the_first_unstable_offset_until_their_markers() {
        let mut s = ProducerStateManager::default();
        s.update(&header(9, 0, 0, 2, 0)); // idempotent, not transactional
        assert_eq!(s.first_unstable_offset(), None);
        s.update(&txn_header(1, 0, 0, 2, 2));
        s.update(&txn_header(2, 0, 0, 1, 4));
        s.update(&txn_header(1, 0, 2, 1, 5));
        assert_eq!(s.first_unstable_offset(), Some(Offset(2)));
        let done = s.complete_txn(&marker(1, 0, 6), true, 3).expect("open txn");
        assert_eq!(
            done,
            CompletedTxn {
                producer_id: ProducerId(1),
                first_offset: Offset(2),
                last_offset: Offset(6),
                aborted: true,
                last_stable_offset: Offset(4),
            }
        );
        assert_eq!(s.first_unstable_offset(), Some(Offset(4)));
        assert_eq!(s.complete_txn(&marker(1, 0, 7), false, 3), None, "nothing open");
        let done = s.complete_txn(&marker(2, 0, 8), false, 3).expect("open txn");
        assert_eq!(done.last_stable_offset, Offset(9));
        assert_eq!(s.first_unstable_offset(), None);
    }

    #[test]
    fn a_marker_from_an_older_epoch_is_fenced_and_a_newer_one_bumps_the_epoch() {
        let mut s = ProducerStateManager::default();
        s.update(&txn_header(1, 3, 0, 1, 0));
        assert!(s.check_marker(ProducerId(1), ProducerEpoch(2)).is_err());
        assert!(s.check_marker(ProducerId(1), ProducerEpoch(4)).is_ok());
        s.complete_txn(&marker(1, 4, 1), true, 0).expect("open");
        assert!(matches!(
            s.check(&txn_header(1, 3, 1, 1, -1)),
            Err(ProducerError::InvalidProducerEpoch { .. })
        ));
    }

    #[test]
    fn open_transactions_survive_a_snapshot_and_are_never_expired() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("producer-state");
        let mut s = ProducerStateManager::default();
        s.update(&txn_header(1, 0, 0, 3, 10));
        s.update(&header(2, 0, 0, 1, 13));
        s.expire(i64::MAX);
        assert_eq!(s.describe().len(), 1, "only the open transaction's producer stays");
        s.write_snapshot(&path, Offset(14)).expect("write");
        let (loaded, _) = ProducerStateManager::read_snapshot(&path);
        assert_eq!(loaded.first_unstable_offset(), Some(Offset(10)));
    }
}
