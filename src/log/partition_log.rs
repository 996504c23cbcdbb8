//! `PartitionLog`: one partition replica's ordered sequence of segments, plus its producer state
//! and leader-epoch cache. The top of the storage ladder (batch → index → segment → here).
//!
//! Invariants:
//! * segments are contiguous in offset order; only the last ("active") one is appended to;
//! * `log_start_offset` is the first segment's base offset, or above it where DeleteRecords or
//!   the leader moved it (see `partition_log_start.rs`); `log_end_offset` is the last segment's
//!   next offset; offsets handed out only grow;
//! * an append is in the OS page cache before `append_as_leader` returns, so every acknowledged
//!   write survives a process kill; what survives power loss depends on the flush policy
//!   (`flush.messages`, `flush.ms`; at shutdown everything). A roll fsyncs nothing under the
//!   lock: the segments rolled since the last flush, the new segments' directory entries and the
//!   producer snapshot written at the roll are fsynced by the next flush job, as Kafka's roll
//!   schedules its flush; the recovery point passes a rolled segment only once that job is done.
//!
//! Synchronous, no tasks, not thread-safe: the broker wraps each log in a mutex.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use kafka_protocol::records::RecordBatchDecoder;
use thiserror::Error;

use super::batch::{self, BatchError, BatchHeader};
use super::cleaner::swap::{self, CleanerCheckpoint};
use super::config::{LogConfig, TimestampType};
use super::control::{self, ControlRecord, Marker};
use super::epoch_cache::LeaderEpochCache;
use super::producer_state::{ProducerError, ProducerInfo, ProducerStateManager, SequenceCheck};
use super::records::{self, RecordsError};
use super::recovery::{
    CLEAN_SHUTDOWN_FILE, RECOVERY_POINT_CANDIDATE_FILE, RECOVERY_POINT_FILE, open_segments,
    read_offset_file,
};
use super::segment::{LogSegment, RecoveryReport, SEGMENT_BYTES_MAX, SyncHandles};
use super::slice::FileSlice;
use super::txn_index::AbortedTxn;
use crate::types::{LeaderEpoch, Offset, ProducerEpoch, ProducerId};

#[path = "partition_log_compaction.rs"]
mod compaction;
#[path = "partition_log_start.rs"]
mod log_start;
#[cfg(test)]
#[path = "partition_log_txn_tests.rs"]
mod txn_tests;

const PRODUCER_STATE_FILE: &str = "producer-state";
/// The snapshot before the latest: after a crash the latest may lie past the recovery point,
/// and replay must start at or below it (what recovery revalidates is replayed again).
const PRODUCER_STATE_PREV_FILE: &str = "producer-state.prev";
const EPOCH_CHECKPOINT_FILE: &str = "leader-epoch-checkpoint";
/// The log start offset DeleteRecords (or the leader's) set, when above the first segment's
/// base (Kafka keeps the same number in `log-start-offset-checkpoint`).
const LOG_START_FILE: &str = "log-start-offset";
/// Why an append was refused. Nothing was written when this is returned.
#[derive(Debug, Error)]
pub(crate) enum AppendError {
    #[error(transparent)]
    Batch(#[from] BatchError),
    #[error("record batch of {size_bytes} bytes exceeds max.message.bytes {max_bytes}")]
    MessageTooLarge { size_bytes: usize, max_bytes: usize },
    #[error(transparent)]
    Producer(#[from] ProducerError),
    /// Kafka's wording; the producer gets INVALID_RECORD, with the record's index in its batch.
    #[error("compacted topic cannot accept a record without a key")]
    KeylessRecord { record_index: i32 },
    /// KIP-937: a CreateTime timestamp outside `message.timestamp.before.max.ms` /
    /// `after.max.ms` of the broker's clock; the producer gets INVALID_TIMESTAMP.
    #[error(
        "timestamp {timestamp_ms} of the record at index {record_index} is out of range: it \
         must be within [{low_ms}, {high_ms}] (message.timestamp.before.max.ms and \
         message.timestamp.after.max.ms)"
    )]
    InvalidTimestamp { record_index: i32, timestamp_ms: i64, low_ms: i64, high_ms: i64 },
    #[error("the batch's records cannot be read: {0}")]
    Records(#[from] RecordsError),
    /// A replicated batch does not start at this log's end (a follower missed data).
    #[error("replicated batch starts at offset {got}, but the log ends at {expected}")]
    OffsetMismatch { expected: Offset, got: Offset },
    #[error("storage error: {0}")]
    Io(#[from] io::Error),
}

/// Why a read was refused.
#[derive(Debug, Error)]
pub(crate) enum ReadError {
    #[error("offset {requested} is out of range [{log_start}, {log_end}]")]
    OffsetOutOfRange { requested: Offset, log_start: Offset, log_end: Offset },
    #[error("storage error: {0}")]
    Io(#[from] io::Error),
}

/// Where an append landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AppendOutcome {
    pub base_offset: Offset,
    pub last_offset: Offset,
    /// The broker timestamp for LogAppendTime topics, else -1.
    pub log_append_time_ms: i64,
    /// The batch was a producer retry already in the log; nothing was written.
    pub duplicate: bool,
    /// The log start offset after the append (Produce v5+ reports it).
    pub log_start_offset: Offset,
}

/// What opening a log found and repaired.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct OpenReport {
    pub segments: usize,
    pub recovered: RecoveryReport,
    /// Segments removed because an earlier segment had to be cut (the log must stay contiguous).
    pub segments_dropped: usize,
    /// Segments opened without re-validation (below the recovery point, or a clean shutdown).
    pub segments_trusted: usize,
}

/// An fsync of what a log's active segment holds, taken out of the log so that it runs without
/// the log's lock: appends go on into the page cache while it syncs. Made by
/// [`PartitionLog::begin_flush`]; if it fails, [`PartitionLog::flush_failed`] puts the data back
/// among the unflushed.
#[derive(Debug)]
pub(crate) struct FlushJob {
    /// The active segment's handles, then those of the segments rolled since the last flush.
    handles: Vec<SyncHandles>,
    /// The rolled segments (by base offset) the job covers.
    rolled: Vec<Offset>,
    /// The log directory, when segments were created or the producer snapshot replaced since
    /// the last flush: the snapshot and the directory's entries are fsynced too.
    dir: Option<PathBuf>,
    /// The log's roll count then (see [`PartitionLog::flush_done`]).
    rolls: u64,
    /// When the oldest append this job covers was made (restored if the job fails).
    first_unflushed_ms: i64,
    /// The log end offset when the job was taken: what it makes durable.
    flushed_to: Offset,
    /// The log's truncation count then: a job that straddles a truncation proves nothing about
    /// what lies below its `flushed_to` now.
    truncations: u64,
}

impl FlushJob {
    /// The fsyncs. Blocking: run it on a blocking thread, never under the log lock.
    pub(crate) fn run(&self) -> io::Result<()> {
        for h in &self.handles {
            h.sync()?;
        }
        if let Some(dir) = &self.dir {
            match fs::File::open(dir.join(PRODUCER_STATE_FILE)) {
                Ok(f) => f.sync_data()?,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
            crate::fsutil::sync_dir(dir)?;
        }
        Ok(())
    }

    /// Segments whose data the job fsyncs.
    #[cfg(test)]
    pub(crate) fn segments(&self) -> usize {
        self.handles.len()
    }

    pub(crate) fn first_unflushed_ms(&self) -> i64 {
        self.first_unflushed_ms
    }
}

/// One partition replica's log.
#[derive(Debug)]
pub(crate) struct PartitionLog {
    dir: PathBuf,
    config: LogConfig,
    /// Segments by base offset; never empty.
    segments: BTreeMap<Offset, LogSegment>,
    producers: ProducerStateManager,
    epochs: LeaderEpochCache,
    /// Wall time of the oldest unflushed append, for `flush.ms`.
    first_unflushed_ms: Option<i64>,
    /// Wall time of the first append to the active segment since it was created or the log
    /// opened: the clock `segment.ms` rolls by. (Producer timestamps are not used: a producer
    /// sending old timestamps must not roll a segment per batch.)
    active_since_ms: Option<i64>,
    /// Every record below this offset is fsynced (and was validated or written by this
    /// process); never above the log end offset.
    recovery_point: Offset,
    /// Truncations so far (see [`FlushJob::truncations`]).
    truncations: u64,
    /// Segments rolled since a flush last covered them (by base offset); not yet fsynced.
    rolled_unsynced: Vec<Offset>,
    /// A segment was created, or the producer snapshot replaced, since a flush last synced the
    /// directory.
    dir_unsynced: bool,
    /// Rolls so far.
    rolls: u64,
    /// Closed cleanly: appends are refused, so nothing lands after the clean-shutdown marker.
    closed: bool,
    /// Where the log cleaner stands (its dirty section starts at `first_dirty`).
    cleaner: CleanerCheckpoint,
    /// The log start offset DeleteRecords or the leader set; the log starts at the larger of
    /// this and the first segment's base.
    start_floor: Offset,
}

/// How much of a compacted log the cleaner could take now (see [`PartitionLog::cleanable`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Cleanable {
    /// Where the dirty section starts (the cleaner's position).
    pub first_dirty: Offset,
    /// Nothing at or above this is cleaned this round.
    pub first_uncleanable: Offset,
    pub clean_bytes: u64,
    pub dirty_bytes: u64,
    /// Dirty bytes over all cleanable bytes.
    pub dirty_ratio: f64,
    /// A record has waited longer than `max.compaction.lag.ms`: clean regardless of the ratio.
    pub overdue: bool,
}

impl Cleanable {
    /// Whether the cleaner should take this log now.
    pub(crate) fn due(&self, min_ratio: f64) -> bool {
        self.dirty_bytes > 0 && (self.overdue || self.dirty_ratio >= min_ratio)
    }
}

/// How a finished cleaning round ended at its swap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CommitOutcome {
    /// The cleaned segments replaced the originals.
    Swapped { groups: usize },
    /// The log changed under the round (truncation, retention): the round was discarded.
    Discarded,
}

pub(super) fn segment_base_offsets(dir: &Path) -> io::Result<Vec<Offset>> {
    let mut bases = Vec::new();
    for entry in fs::read_dir(dir)? {
        let name = entry?.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(stem) = name.strip_suffix(".log")
            && let Ok(base) = stem.parse::<i64>()
        {
            bases.push(Offset(base));
        }
    }
    bases.sort();
    Ok(bases)
}

impl PartitionLog {
    /// Opens the log in `dir` (creating it if needed) and recovers it: segments wholly below
    /// the recovery point (every segment, after a clean shutdown) are opened as stored, with
    /// their indexes; every other segment is validated batch by batch, a torn or corrupt tail is
    /// cut, and its indexes are rebuilt. Producer state and the epoch cache are then brought in
    /// line with what is intact.
    pub(crate) fn open(dir: &Path, config: LogConfig) -> io::Result<(Self, OpenReport)> {
        fs::create_dir_all(dir)?;
        // A swap of cleaned segments that was committed is finished before anything is read.
        if swap::recover(dir)? {
            tracing::info!(dir = %dir.display(), "finished a cleaner swap interrupted by a crash");
        }
        let cleaner = CleanerCheckpoint::read(dir);
        let clean = dir.join(CLEAN_SHUTDOWN_FILE).exists();
        let saved_recovery_point = read_offset_file(&dir.join(RECOVERY_POINT_FILE));
        let rp = saved_recovery_point.unwrap_or(Offset(0));
        let gaps_trusted_below = rp.max(Offset(cleaner.first_dirty));
        let (mut segments, mut report) =
            open_segments(dir, &config, clean, rp, gaps_trusted_below)?;
        // Empty segments other than the last carry nothing; drop them, except those the cleaner
        // emptied: they hold the log start offset where it was.
        while segments.len() > 1 {
            let Some((&base, seg)) = segments.first_key_value() else { break };
            if !seg.is_empty() || base.0 < cleaner.first_dirty {
                break;
            }
            if let Some(seg) = segments.remove(&base) {
                seg.delete()?;
            }
        }
        if segments.is_empty() {
            segments.insert(
                Offset(0),
                LogSegment::create(dir, Offset(0), config.index_interval_bytes)?,
            );
        }
        report.segments = segments.len();
        let epochs = LeaderEpochCache::open(&dir.join(EPOCH_CHECKPOINT_FILE));
        let mut log = PartitionLog {
            dir: dir.to_path_buf(),
            config,
            segments,
            producers: ProducerStateManager::default(),
            epochs,
            first_unflushed_ms: None,
            active_since_ms: None,
            recovery_point: Offset(0),
            truncations: 0,
            rolled_unsynced: Vec::new(),
            dir_unsynced: false,
            rolls: 0,
            closed: false,
            cleaner,
            start_floor: Self::read_log_start(dir),
        };
        log.recovery_point = if clean {
            log.log_end_offset()
        } else {
            saved_recovery_point.unwrap_or(Offset(0)).min(log.log_end_offset())
        };
        log.rebuild_derived_state()?;
        if clean {
            // From here on a crash must not find the marker.
            fs::remove_file(dir.join(CLEAN_SHUTDOWN_FILE))?;
            crate::fsutil::sync_dir(dir)?;
        }
        Ok((log, report))
    }

    /// Rebuilds producer state (from a snapshot plus the tail) and the epoch cache (from the
    /// batches' partition leader epochs) so both agree with the recovered segments; markers met
    /// on the way re-enter the aborted-transaction indexes that recovery cut.
    fn rebuild_derived_state(&mut self) -> io::Result<()> {
        let leo = self.log_end_offset();
        let (producers, replay_from) = self.snapshot_at_or_below(self.recovery_point);
        let mut epochs_changed = self.epochs.truncate_from_end(leo);
        epochs_changed |= self.epochs.truncate_from_start(self.log_start_offset());
        let rebuild_epochs = self.epochs.entries().is_empty();
        if rebuild_epochs {
            let mut epoch_starts = Vec::new();
            self.for_each_batch_from(self.log_start_offset(), |h| {
                if h.partition_leader_epoch.0 >= 0 {
                    epoch_starts.push((h.partition_leader_epoch, h.base_offset));
                }
            })?;
            for (epoch, offset) in epoch_starts {
                epochs_changed |= self.epochs.assign(epoch, offset);
            }
        }
        self.producers = producers;
        self.replay_producers(replay_from)?;
        if epochs_changed {
            self.epochs.persist()?;
        }
        Ok(())
    }

    /// The newest producer snapshot valid at or below `bound` (and not below the log start),
    /// with the offset replay starts from; empty state from the log start when none is.
    fn snapshot_at_or_below(&self, bound: Offset) -> (ProducerStateManager, Offset) {
        for file in [PRODUCER_STATE_FILE, PRODUCER_STATE_PREV_FILE] {
            let (state, next) = ProducerStateManager::read_snapshot(&self.dir.join(file));
            if let Some(next) = next
                && next <= bound
                && next <= self.log_end_offset()
                && next >= self.log_start_offset()
            {
                return (state, next);
            }
        }
        (ProducerStateManager::default(), self.log_start_offset())
    }

    /// Applies every batch from `from` to the log end to the producer state: sequences, open
    /// transactions and markers (an ABORT is indexed in its segment unless it already is).
    fn replay_producers(&mut self, from: Offset) -> io::Result<()> {
        let mut offset = from;
        let bases: Vec<Offset> = self.segments.keys().copied().collect();
        for base in bases {
            let Some(seg) = self.segments.get(&base) else { continue };
            if seg.next_offset() <= offset {
                continue;
            }
            while let Some(at) =
                self.segments.get(&base).map(|s| s.find_batch(offset)).transpose()?.flatten()
            {
                offset = at.header.next_offset();
                if at.header.is_control() && at.header.has_producer_id() {
                    let bytes = self.segments.get(&base).map(|s| s.read_batch(&at)).transpose()?;
                    let Some(bytes) = bytes else { break };
                    match control::control_record(&bytes, &at.header) {
                        Ok(rec) => self.track_marker(&at.header, rec, Some(base))?,
                        Err(e) => tracing::warn!(dir = %self.dir.display(),
                            offset = %at.header.base_offset, error = %e,
                            "skipping an unreadable control batch while replaying producer state"),
                    }
                } else {
                    self.producers.update(&at.header);
                }
            }
        }
        Ok(())
    }

    /// A marker now in the log closes its producer's transaction; an ABORT goes into the
    /// aborted-transaction index of the segment holding it (`segment`; the active one if
    /// `None`).
    fn track_marker(
        &mut self,
        h: &BatchHeader,
        rec: ControlRecord,
        segment: Option<Offset>,
    ) -> io::Result<()> {
        let aborted = rec.marker == Marker::Abort;
        let Some(done) = self.producers.complete_txn(h, aborted, rec.coordinator_epoch) else {
            return Ok(());
        };
        if !aborted {
            return Ok(());
        }
        let entry = AbortedTxn {
            producer_id: done.producer_id,
            first_offset: done.first_offset,
            last_offset: done.last_offset,
            last_stable_offset: done.last_stable_offset,
        };
        let seg = match segment {
            Some(base) => self.segments.get_mut(&base),
            None => self.segments.values_mut().next_back(),
        };
        match seg {
            Some(seg) => seg.index_aborted_txn(entry),
            None => Ok(()),
        }
    }

    /// Visits the header of every batch from the one holding `from` to the end.
    fn for_each_batch_from(&self, from: Offset, mut f: impl FnMut(&BatchHeader)) -> io::Result<()> {
        let mut offset = from;
        for seg in self.segments.values() {
            if seg.next_offset() <= offset {
                continue;
            }
            while let Some(at) = seg.find_batch(offset)? {
                f(&at.header);
                offset = at.header.next_offset();
            }
        }
        Ok(())
    }

    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }
    pub(crate) fn config(&self) -> &LogConfig {
        &self.config
    }
    pub(crate) fn set_config(&mut self, config: LogConfig) {
        self.config = config;
    }

    pub(crate) fn log_start_offset(&self) -> Offset {
        self.first_base().max(self.start_floor).min(self.log_end_offset())
    }

    /// The first segment's base offset.
    fn first_base(&self) -> Offset {
        self.segments.first_key_value().map_or(Offset(0), |(base, _)| *base)
    }

    pub(crate) fn log_end_offset(&self) -> Offset {
        self.segments.last_key_value().map_or(Offset(0), |(_, s)| s.next_offset())
    }

    /// Total bytes of all segments.
    pub(crate) fn size_bytes(&self) -> u64 {
        self.segments.values().map(LogSegment::size_bytes).sum()
    }

    #[cfg(test)]
    pub(crate) fn segment_count(&self) -> usize {
        self.segments.len()
    }

    #[cfg(test)]
    pub(crate) fn active_base_offset(&self) -> Offset {
        self.active_ref().base_offset()
    }

    pub(crate) fn latest_epoch(&self) -> Option<LeaderEpoch> {
        self.epochs.latest_epoch()
    }

    /// Records that `epoch` starts at the log end offset (a new leadership), as Kafka does on
    /// becoming leader, so OffsetForLeaderEpoch knows the current epoch before its first write.
    pub(crate) fn start_leader_epoch(&mut self, epoch: LeaderEpoch) -> io::Result<()> {
        let leo = self.log_end_offset();
        if self.epochs.assign(epoch, leo) {
            self.epochs.persist()?;
        }
        Ok(())
    }

    /// Where `epoch` begins in this log, if the epoch cache has it.
    pub(crate) fn epoch_start_offset(&self, epoch: LeaderEpoch) -> Option<Offset> {
        self.epochs.entries().iter().find(|(e, _)| *e == epoch).map(|(_, start)| *start)
    }

    /// The epoch whose range holds `offset` (per the epoch cache), with that range's start.
    #[cfg(test)]
    pub(crate) fn epochs_covering(&self, offset: Offset) -> Option<(LeaderEpoch, Offset)> {
        self.epochs.entries().iter().rev().find(|(_, start)| *start <= offset).copied()
    }

    /// KIP-101: the largest epoch ≤ `epoch` and the offset where it ended.
    pub(crate) fn end_offset_for_epoch(&self, epoch: LeaderEpoch) -> Option<(LeaderEpoch, Offset)> {
        self.epochs.end_offset_for(epoch, self.log_end_offset())
    }

    fn active(&mut self) -> &mut LogSegment {
        self.segments
            .last_entry()
            .map(|e| e.into_mut())
            .expect("invariant: a partition log always has an active segment")
    }

    fn refuse_if_closed(&self) -> Result<(), AppendError> {
        if self.closed {
            return Err(AppendError::Io(io::Error::other("the log was closed for shutdown")));
        }
        Ok(())
    }

    fn active_ref(&self) -> &LogSegment {
        self.segments
            .values()
            .next_back()
            .expect("invariant: a partition log always has an active segment")
    }

    /// Appends a producer's record set: validates every batch, checks idempotent sequences,
    /// assigns offsets and the leader epoch, rolls segments as needed and writes. On an error
    /// nothing is written.
    pub(crate) fn append_as_leader(
        &mut self,
        records: &[u8],
        leader_epoch: LeaderEpoch,
        now_ms: i64,
    ) -> Result<AppendOutcome, AppendError> {
        self.refuse_if_closed()?;
        let mut headers = batch::split_client_batches(records)?;
        let recompressed = self.recompressed(records, &headers)?;
        if let Some(rebuilt) = &recompressed {
            headers = batch::split_client_batches(rebuilt)?;
        }
        let records = recompressed.as_deref().unwrap_or(records);
        let mut at = 0usize;
        for h in &headers {
            let bytes = &records[at..at + h.size_bytes];
            at += h.size_bytes;
            if h.size_bytes > self.config.max_message_bytes {
                return Err(AppendError::MessageTooLarge {
                    size_bytes: h.size_bytes,
                    max_bytes: self.config.max_message_bytes,
                });
            }
            // Kafka's check: a compacted log keeps records by key, so every record needs one.
            if self.config.cleanup_policy.compact
                && let Some(record_index) = records::first_keyless_record(bytes, h)?
            {
                return Err(AppendError::KeylessRecord { record_index });
            }
            if self.config.timestamp_type == TimestampType::CreateTime
                && let Some((low_ms, high_ms)) = self.config.timestamp_bounds(now_ms)
                && let Some((record_index, timestamp_ms)) =
                    records::first_timestamp_outside(bytes, h, low_ms, high_ms)?
            {
                return Err(AppendError::InvalidTimestamp {
                    record_index,
                    timestamp_ms,
                    low_ms,
                    high_ms,
                });
            }
            if let SequenceCheck::Duplicate { base_offset, last_offset } =
                self.producers.check(h)?
            {
                return Ok(AppendOutcome {
                    base_offset,
                    last_offset,
                    log_append_time_ms: -1,
                    duplicate: true,
                    log_start_offset: self.log_start_offset(),
                });
            }
        }
        let log_append_time_ms = match self.config.timestamp_type {
            TimestampType::LogAppendTime => now_ms,
            TimestampType::CreateTime => -1,
        };
        let base_offset = self.log_end_offset();
        let mut buf = records.to_vec();
        let mut position = 0usize;
        let mut last_offset = base_offset;
        for h in &headers {
            let bytes = &mut buf[position..position + h.size_bytes];
            let offset = self.log_end_offset();
            batch::assign_offset(bytes, offset, leader_epoch);
            if log_append_time_ms >= 0 {
                batch::set_log_append_time(bytes, log_append_time_ms);
            }
            let header = batch::parse_header(bytes)?;
            self.maybe_roll(header.size_bytes, header.last_offset(), now_ms)?;
            self.active_since_ms.get_or_insert(now_ms);
            self.active().append(bytes, &header)?;
            if self.epochs.assign(leader_epoch, offset) {
                self.epochs.persist()?;
            }
            self.producers.update(&header);
            last_offset = header.last_offset();
            position += h.size_bytes;
        }
        self.first_unflushed_ms.get_or_insert(now_ms);
        Ok(AppendOutcome {
            base_offset,
            last_offset,
            log_append_time_ms,
            duplicate: false,
            log_start_offset: self.log_start_offset(),
        })
    }

    /// Broker-side compression (`compression.type` other than `producer`): the record set with
    /// every batch in another codec rebuilt in the topic's, or `None` when nothing changes.
    /// The limits (`max.message.bytes`) then apply to what is stored, as in Kafka.
    fn recompressed(
        &self,
        records: &[u8],
        headers: &[BatchHeader],
    ) -> Result<Option<Vec<u8>>, AppendError> {
        let Some(codec) = self.config.compression else { return Ok(None) };
        if headers.iter().all(|h| h.codec() == Some(codec)) {
            return Ok(None);
        }
        let mut out = Vec::with_capacity(records.len());
        let mut at = 0usize;
        for h in headers {
            let bytes = &records[at..at + h.size_bytes];
            at += h.size_bytes;
            if h.codec() == Some(codec) {
                out.extend_from_slice(bytes);
            } else {
                let level = self.config.compression_level;
                out.extend_from_slice(&records::recompress(bytes, h, codec, level)?);
            }
        }
        Ok(Some(out))
    }

    /// Appends batches copied from the leader, offsets and epochs already assigned (the
    /// follower side of replication). Every batch is CRC-checked and must start at or after the
    /// log end offset (after it where the leader's cleaner left a gap); nothing is written on an
    /// error. Returns the new log end offset.
    pub(crate) fn append_as_follower(
        &mut self,
        records: &[u8],
        now_ms: i64,
    ) -> Result<Offset, AppendError> {
        self.refuse_if_closed()?;
        let mut headers = Vec::new();
        let mut rest = records;
        let mut expected = self.log_end_offset();
        while !rest.is_empty() {
            let h = batch::validate(rest)?;
            // A compacted leader's log has gaps: a batch may start past the log end, never
            // before it.
            if h.base_offset < expected {
                return Err(AppendError::OffsetMismatch { expected, got: h.base_offset });
            }
            expected = h.next_offset();
            let marker = if h.is_control() && h.has_producer_id() {
                Some(control::control_record(&rest[..h.size_bytes], &h)?)
            } else {
                None
            };
            rest = &rest[h.size_bytes..];
            headers.push((h, marker));
        }
        let mut position = 0usize;
        for (h, marker) in &headers {
            let bytes = &records[position..position + h.size_bytes];
            self.maybe_roll(h.size_bytes, h.last_offset(), now_ms)?;
            self.active_since_ms.get_or_insert(now_ms);
            self.active().append(bytes, h)?;
            if h.partition_leader_epoch.0 >= 0
                && self.epochs.assign(h.partition_leader_epoch, h.base_offset)
            {
                self.epochs.persist()?;
            }
            match marker {
                Some(rec) => self.track_marker(h, *rec, None)?,
                None => self.producers.update(h),
            }
            position += h.size_bytes;
        }
        if !headers.is_empty() {
            self.first_unflushed_ms.get_or_insert(now_ms);
        }
        Ok(self.log_end_offset())
    }

    /// Rolls to a new segment if the batch would not fit, the active segment is older than
    /// `segment.ms`, or its offsets would overflow the index's relative offsets.
    fn maybe_roll(
        &mut self,
        batch_bytes: usize,
        last_offset: Offset,
        now_ms: i64,
    ) -> io::Result<()> {
        let segment_bytes = self.config.segment_bytes.min(SEGMENT_BYTES_MAX);
        let segment_ms = self.config.roll_ms();
        let old = self.active_since_ms.is_some_and(|t| now_ms.saturating_sub(t) > segment_ms);
        let active = self.active();
        if active.is_empty() {
            return Ok(());
        }
        let full = active.size_bytes() + batch_bytes as u64 > segment_bytes;
        let overflow = last_offset.0 - active.base_offset().0 > i64::from(u32::MAX);
        if full || old || overflow {
            self.roll()?;
        }
        Ok(())
    }

    /// Starts a new active segment at the log end offset. Nothing is fsynced here, under the
    /// lock: the old segment, the new directory entry and the producer snapshot are left to the
    /// next flush job (see the module doc), and the recovery point stays where it is until then.
    pub(crate) fn roll(&mut self) -> io::Result<()> {
        let next = self.log_end_offset();
        if self.segments.contains_key(&next) {
            return Ok(()); // the active segment is empty and already starts here
        }
        let (old, unflushed) =
            (self.active_ref().base_offset(), self.active_ref().unflushed_messages());
        let mut seg = LogSegment::create(&self.dir, next, self.config.index_interval_bytes)?;
        // `flush.messages` counts across the roll: the old segment's appends are unflushed too.
        seg.carry_unflushed_messages(unflushed);
        self.segments.insert(next, seg);
        self.rolled_unsynced.push(old);
        self.dir_unsynced = true;
        self.rolls += 1;
        self.active_since_ms = None;
        // The producer state as of the new segment's start: crash recovery replays it from
        // here over the later segments only. Not fsynced here (the next flush job does it); a
        // snapshot that a power cut left unreadable, or ahead of the recovered log, is ignored
        // and the state rebuilt from the log.
        self.write_snapshot_unsynced(next)
    }

    /// Replaces the latest producer snapshot, keeping the one before it (no fsync: the next
    /// flush job syncs the directory and the snapshot).
    fn write_snapshot_unsynced(&mut self, next: Offset) -> io::Result<()> {
        let latest = self.dir.join(PRODUCER_STATE_FILE);
        match fs::rename(&latest, self.dir.join(PRODUCER_STATE_PREV_FILE)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        self.producers.write_snapshot_unsynced(&latest, next)
    }

    /// Appends a transaction marker as leader (the partition side of WriteTxnMarkers): closes
    /// the producer's open transaction, indexes an ABORT. A marker from an older producer epoch
    /// than the partition has seen is fenced.
    pub(crate) fn append_marker(
        &mut self,
        producer_id: ProducerId,
        producer_epoch: ProducerEpoch,
        rec: ControlRecord,
        leader_epoch: LeaderEpoch,
        now_ms: i64,
    ) -> Result<AppendOutcome, AppendError> {
        self.refuse_if_closed()?;
        self.producers.check_marker(producer_id, producer_epoch)?;
        let mut bytes = control::encode_marker(producer_id.0, producer_epoch.0, rec, now_ms);
        let offset = self.log_end_offset();
        batch::assign_offset(&mut bytes, offset, leader_epoch);
        let header = batch::parse_header(&bytes)?;
        self.maybe_roll(header.size_bytes, header.last_offset(), now_ms)?;
        self.active_since_ms.get_or_insert(now_ms);
        self.active().append(&bytes, &header)?;
        if self.epochs.assign(leader_epoch, offset) {
            self.epochs.persist()?;
        }
        self.track_marker(&header, rec, None)?;
        self.first_unflushed_ms.get_or_insert(now_ms);
        Ok(AppendOutcome {
            base_offset: offset,
            last_offset: offset,
            log_append_time_ms: -1,
            duplicate: false,
            log_start_offset: self.log_start_offset(),
        })
    }

    /// The first offset of the oldest open transaction: the last stable offset is the smaller
    /// of it and the high watermark.
    pub(crate) fn first_unstable_offset(&self) -> Option<Offset> {
        self.producers.first_unstable_offset()
    }

    /// Whether `producer_id` has a transaction open in this log (KIP-890: its later batches
    /// need no verification).
    pub(crate) fn has_open_txn(&self, producer_id: ProducerId) -> bool {
        self.producers.has_open_txn(producer_id)
    }

    /// Every producer's state, for DescribeProducers.
    pub(crate) fn producers(&self) -> Vec<ProducerInfo> {
        self.producers.describe()
    }

    /// The aborted transactions a read of `[from, upper)` must report (Kafka's
    /// `collectAbortedTransactions`): those whose marker is at or after `from` and whose first
    /// offset is below `upper`. The scan stops at the first entry whose last stable offset
    /// reaches `upper`: no later abort can reach below it.
    pub(crate) fn aborted_txns(&self, from: Offset, upper: Offset) -> Vec<AbortedTxn> {
        let start = self.segments.range(..=from).next_back().map_or(from, |(b, _)| *b);
        let mut out = Vec::new();
        for seg in self.segments.range(start..).map(|(_, s)| s) {
            for e in seg.aborted_txns() {
                if e.last_offset >= from && e.first_offset < upper {
                    out.push(*e);
                }
                if e.last_stable_offset >= upper {
                    return out;
                }
            }
        }
        out
    }

    /// Reads whole batches from the one holding `offset`, up to `max_bytes`, never including a
    /// batch at or beyond `end_offset` (the log end for followers and coordinators).
    pub(crate) fn read(
        &self,
        offset: Offset,
        end_offset: Offset,
        max_bytes: usize,
        at_least_one_batch: bool,
    ) -> Result<Bytes, ReadError> {
        Ok(self.slice(offset, end_offset, max_bytes, at_least_one_batch)?.to_bytes()?)
    }

    /// Locates what [`read`](Self::read) would return without copying it: the caller reads
    /// the slice after releasing the log lock, which is safe only below the high watermark (see
    /// `slice.rs`).
    pub(crate) fn slice(
        &self,
        offset: Offset,
        end_offset: Offset,
        max_bytes: usize,
        at_least_one_batch: bool,
    ) -> Result<FileSlice, ReadError> {
        let (log_start, log_end) = (self.log_start_offset(), self.log_end_offset());
        if offset < log_start || offset > log_end {
            return Err(ReadError::OffsetOutOfRange { requested: offset, log_start, log_end });
        }
        // A caught-up reader (a consumer at the high watermark, a follower at the log end) is
        // answered without reading a header: the end offset lies on a batch boundary, so no
        // batch at or after `offset` starts below it.
        if offset >= end_offset {
            return Ok(FileSlice::default());
        }
        for (_, seg) in self.segments.range(..=offset).next_back().into_iter().chain(
            self.segments.range((std::ops::Bound::Excluded(offset), std::ops::Bound::Unbounded)),
        ) {
            if let Some(at) = seg.find_batch(offset)? {
                return Ok(seg.slice(at, end_offset, max_bytes, at_least_one_batch)?);
            }
        }
        Ok(FileSlice::default())
    }

    /// The first offset below `end_offset` whose record timestamp is ≥ `timestamp_ms`, with that
    /// timestamp (ListOffsets by time). Looks up the time index, then decodes one batch to find
    /// the exact record.
    pub(crate) fn offset_for_timestamp(
        &self,
        timestamp_ms: i64,
        end_offset: Offset,
    ) -> io::Result<Option<(Offset, i64)>> {
        for seg in self.segments.values() {
            let Some(at) = seg.find_batch_by_timestamp(timestamp_ms)? else { continue };
            if at.header.base_offset >= end_offset {
                return Ok(None);
            }
            let bytes = seg.read_batch(&at)?;
            let mut buf = bytes.clone();
            let found = RecordBatchDecoder::decode(&mut buf).ok().and_then(|set| {
                set.records
                    .into_iter()
                    .map(|r| {
                        let ts = if at.header.attributes & 0x08 != 0 {
                            at.header.max_timestamp_ms
                        } else {
                            r.timestamp
                        };
                        (Offset(r.offset), ts)
                    })
                    .find(|(o, ts)| *ts >= timestamp_ms && *o < end_offset)
            });
            // Batches the decoder cannot read (unknown codec) are answered at batch granularity.
            return Ok(Some(found.unwrap_or((at.header.base_offset, at.header.max_timestamp_ms))));
        }
        Ok(None)
    }

    /// The record with the largest timestamp below `end_offset` (ListOffsets -3, KIP-734): the
    /// first record carrying it (KAFKA-16310), found in the batch the segment's time index
    /// names; under LogAppendTime every record of a batch has its timestamp, so its first
    /// record. A batch that cannot be read answers with its last offset.
    pub(crate) fn max_timestamp(&self, end_offset: Offset) -> Option<(Offset, i64)> {
        let (seg, batch_last, ts) = self
            .segments
            .values()
            .filter(|s| !s.is_empty() && s.offset_of_max_timestamp() < end_offset)
            .map(|s| (s, s.offset_of_max_timestamp(), s.max_timestamp_ms()))
            .max_by_key(|(_, o, ts)| (*ts, std::cmp::Reverse(*o)))?;
        let exact = seg.find_batch(batch_last).ok().flatten().and_then(|at| {
            if at.header.attributes & 0x08 != 0 {
                return Some(at.header.base_offset); // LogAppendTime
            }
            let bytes = seg.read_batch(&at).ok()?;
            let section = records::records_section(&bytes, &at.header).ok()?;
            let mut first = None;
            records::for_each_record(&section, &at.header, |r| {
                if first.is_none() && r.timestamp_ms == ts {
                    first = Some(r.offset);
                }
            })
            .ok()?;
            first
        });
        Some((exact.unwrap_or(batch_last), ts))
    }

    /// Deletes whole segments by `retention.ms` and `retention.bytes`, oldest first, never the
    /// active segment nor one holding offsets at or above `high_watermark`; only when
    /// `cleanup.policy` includes `delete`. Returns how many
    /// segments were deleted; the log start offset moves to the first remaining segment.
    pub(crate) fn enforce_retention(
        &mut self,
        now_ms: i64,
        high_watermark: Offset,
    ) -> io::Result<usize> {
        let mut deleted = 0;
        let mut size = self.size_bytes() as i64;
        while self.config.cleanup_policy.delete {
            if self.segments.len() < 2 {
                break;
            }
            let Some((&base, seg)) = self.segments.first_key_value() else { break };
            if seg.next_offset() > high_watermark {
                break;
            }
            let too_old = self.config.retention_ms >= 0
                && seg.max_timestamp_ms() >= 0
                && now_ms.saturating_sub(seg.max_timestamp_ms()) > self.config.retention_ms;
            let too_big = self.config.retention_bytes >= 0
                && size - seg.size_bytes() as i64 >= self.config.retention_bytes;
            if !(too_old || too_big) {
                break;
            }
            let Some(seg) = self.segments.remove(&base) else { break };
            size -= seg.size_bytes() as i64;
            seg.delete()?;
            deleted += 1;
        }
        if deleted > 0 {
            let start = self.log_start_offset();
            if self.epochs.truncate_from_start(start) {
                self.epochs.persist()?;
            }
            crate::fsutil::sync_dir(&self.dir)?;
        }
        // An active segment DeleteRecords passed has rolled since: it goes too.
        if self.start_floor > self.first_base() {
            deleted += self.delete_segments_below_start()?;
        }
        Ok(deleted)
    }

    /// Removes every record at or after `offset` (follower truncation, KIP-101).
    pub(crate) fn truncate_to(&mut self, offset: Offset) -> io::Result<()> {
        if offset >= self.log_end_offset() {
            // No record goes, but an epoch that starts at the log end and holds no record goes:
            // this replica led in it without appending anything, and a leader that never knew
            // that epoch would otherwise report the same divergence forever (Kafka's
            // `UnifiedLog.truncateTo` does the same).
            if self.epochs.truncate_from_end(self.log_end_offset()) {
                self.epochs.persist()?;
            }
            return Ok(());
        }
        let offset = offset.max(self.first_base());
        let doomed: Vec<Offset> = self.segments.range(offset..).map(|(k, _)| *k).collect();
        for base in doomed {
            if base == self.first_base() {
                continue; // keep one segment; it is truncated below
            }
            if let Some(seg) = self.segments.remove(&base) {
                seg.delete()?;
            }
        }
        self.active().truncate_to(offset)?;
        self.truncations += 1;
        if self.recovery_point > offset {
            self.recovery_point = offset;
            // A stale recovery point on disk would vouch for whatever is appended here next.
            self.checkpoint_recovery_point()?;
        }
        // Producer state as of the cut: a marker truncated away reopens its transaction.
        let (producers, replay_from) = self.snapshot_at_or_below(offset);
        self.producers = producers;
        self.replay_producers(replay_from)?;
        if self.cleaner.first_dirty > offset.0 {
            self.cleaner = self.cleaner.truncated(offset);
            self.cleaner.store(&self.dir)?;
        }
        if self.epochs.truncate_from_end(offset) {
            self.epochs.persist()?;
        }
        // A snapshot taken past the cut would describe batches that are gone.
        self.producers.write_snapshot(&self.dir.join(PRODUCER_STATE_FILE), self.log_end_offset())
    }

    /// Whether the active segment holds `flush.messages` unflushed records: the appender must
    /// flush before it acknowledges (see [`PartitionLog::begin_flush`]).
    pub(crate) fn flush_messages_due(&self) -> bool {
        self.first_unflushed_ms.is_some()
            && self.active_ref().unflushed_messages() >= self.config.flush_messages
    }

    /// Takes the fsync of everything appended so far out of the log, or `None` when nothing
    /// was appended since the last flush. The caller runs it without the log lock.
    pub(crate) fn begin_flush(&mut self) -> io::Result<Option<FlushJob>> {
        let Some(first_unflushed_ms) = self.first_unflushed_ms.take() else { return Ok(None) };
        let (flushed_to, truncations) = (self.log_end_offset(), self.truncations);
        match self.sync_handles() {
            Ok((handles, rolled)) => Ok(Some(FlushJob {
                handles,
                rolled,
                dir: self.dir_unsynced.then(|| self.dir.clone()),
                rolls: self.rolls,
                first_unflushed_ms,
                flushed_to,
                truncations,
            })),
            Err(e) => {
                self.first_unflushed_ms = Some(first_unflushed_ms);
                Err(e)
            }
        }
    }

    /// Handles on the active segment and on the rolled segments not yet fsynced (those still in
    /// the log: a truncation or retention may have removed some), with the latter's offsets.
    fn sync_handles(&mut self) -> io::Result<(Vec<SyncHandles>, Vec<Offset>)> {
        let mut handles = vec![self.active().sync_handles()?];
        let mut rolled = Vec::new();
        for base in &self.rolled_unsynced {
            if let Some(seg) = self.segments.get_mut(base) {
                handles.push(seg.sync_handles()?);
                rolled.push(*base);
            }
        }
        Ok((handles, rolled))
    }

    /// A flush job succeeded: the recovery point moves up to what it made durable, the rolled
    /// segments it covered are durable, and the directory too unless a roll came after the job
    /// began. Unless the log was truncated meanwhile: then nothing is concluded, and the next
    /// flush covers it all again.
    pub(crate) fn flush_done(&mut self, job: &FlushJob) {
        if job.truncations != self.truncations {
            return; // what the job covered may have been cut and rewritten since
        }
        self.rolled_unsynced.retain(|b| !job.rolled.contains(b));
        if job.dir.is_some() && job.rolls == self.rolls {
            self.dir_unsynced = false;
        }
        self.recovery_point = self.recovery_point.max(job.flushed_to.min(self.log_end_offset()));
    }

    /// Every record below this offset is durable.
    pub(crate) fn recovery_point(&self) -> Offset {
        self.recovery_point
    }

    /// Records the recovery point on disk (atomically), for the next start. Under the log's
    /// lock; the periodic checkpoint uses [`PartitionLog::recovery_point_to_checkpoint`] instead.
    pub(crate) fn checkpoint_recovery_point(&self) -> io::Result<()> {
        crate::fsutil::write_atomically(
            &self.dir.join(RECOVERY_POINT_FILE),
            self.recovery_point.0.to_string().as_bytes(),
        )
    }

    /// The periodic checkpoint, in two halves so the fsync runs without the log's lock: this
    /// returns the recovery point with a ticket; the caller writes it with
    /// [`write_recovery_point_candidate`] and then, under the lock again, installs it with
    /// [`PartitionLog::install_recovery_point`] — which refuses if a truncation came between.
    pub(crate) fn recovery_point_to_checkpoint(&self) -> (Offset, u64) {
        (self.recovery_point, self.truncations)
    }

    /// Second half of the periodic checkpoint (a rename: no fsync under the lock). A rename
    /// lost to a power cut leaves the older, lower recovery point, which is safe.
    pub(crate) fn install_recovery_point(&self, ticket: u64) -> io::Result<bool> {
        let candidate = self.dir.join(RECOVERY_POINT_CANDIDATE_FILE);
        if ticket != self.truncations {
            let _ = fs::remove_file(&candidate);
            return Ok(false);
        }
        fs::rename(candidate, self.dir.join(RECOVERY_POINT_FILE))?;
        Ok(true)
    }

    /// Clean shutdown: fsyncs everything and leaves the marker that lets the next start skip
    /// recovery. Nothing may be appended after it.
    pub(crate) fn close_cleanly(&mut self) -> io::Result<()> {
        self.closed = true;
        self.flush()?;
        self.checkpoint_recovery_point()?;
        crate::fsutil::write_atomically(&self.dir.join(CLEAN_SHUTDOWN_FILE), b"")
    }

    /// A flush job failed: what it covered is unflushed again (the flusher retries it).
    pub(crate) fn flush_failed(&mut self, first_unflushed_ms: i64) {
        let t = self.first_unflushed_ms.map_or(first_unflushed_ms, |t| t.min(first_unflushed_ms));
        self.first_unflushed_ms = Some(t);
    }

    /// Whether unflushed data is older than `flush.ms`.
    pub(crate) fn flush_due(&self, now_ms: i64) -> bool {
        self.first_unflushed_ms.is_some_and(|t| now_ms.saturating_sub(t) >= self.config.flush_ms)
    }

    /// fsyncs the active segment, the rolled ones not yet synced and their indexes, and
    /// snapshots producer state, under the caller's lock (clean shutdown).
    pub(crate) fn flush(&mut self) -> io::Result<()> {
        self.active().flush()?;
        for base in std::mem::take(&mut self.rolled_unsynced) {
            if let Some(seg) = self.segments.get_mut(&base) {
                seg.flush()?;
            }
        }
        crate::fsutil::sync_dir(&self.dir)?;
        self.dir_unsynced = false;
        self.first_unflushed_ms = None;
        self.recovery_point = self.log_end_offset();
        let leo = self.log_end_offset();
        self.producers.write_snapshot(&self.dir.join(PRODUCER_STATE_FILE), leo)
    }

    /// Forgets idempotent producers idle since before `cutoff_ms`.
    pub(crate) fn expire_producers(&mut self, cutoff_ms: i64) {
        self.producers.expire(cutoff_ms);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::batch::tests::encode_batch;
    use kafka_protocol::records::Compression;

    fn open(dir: &Path, config: LogConfig) -> PartitionLog {
        PartitionLog::open(dir, config).expect("open").0
    }

    fn append(log: &mut PartitionLog, n: usize, ts: i64) -> AppendOutcome {
        let b = encode_batch(n, ts, None, Compression::None);
        log.append_as_leader(&b, LeaderEpoch(0), ts).expect("append")
    }

    /// A roll fsyncs nothing under the log lock: the rolled segments wait for the next flush
    /// job, which the recovery point waits for too; a failed job leaves them waiting.
    #[test]
    fn a_roll_leaves_its_fsync_to_the_next_flush_and_the_recovery_point_waits_for_it() {
        let dir = tempfile::tempdir().expect("tmp");
        let mut log = open(dir.path(), LogConfig::for_tests());
        let mut i = 0;
        while log.segment_count() < 3 {
            append(&mut log, 3, 1000 + i);
            i += 1;
        }
        assert_eq!(log.recovery_point(), Offset(0), "no roll made anything durable");
        let job = log.begin_flush().expect("handles").expect("unflushed data");
        assert_eq!(job.segments(), 3, "the active segment and the two rolled ones");
        log.flush_failed(job.first_unflushed_ms());
        let job = log.begin_flush().expect("handles").expect("unflushed again");
        assert_eq!(job.segments(), 3, "a failed job leaves the rolled segments unsynced");
        job.run().expect("fsync");
        log.flush_done(&job);
        assert_eq!(log.recovery_point(), log.log_end_offset());
        append(&mut log, 1, 5000);
        let job = log.begin_flush().expect("handles").expect("unflushed data");
        assert_eq!(job.segments(), 1, "synced rolled segments are not synced again");
    }

    #[test]
    fn offsets_are_assigned_contiguously_across_batches_and_segments() {
        let dir = tempfile::tempdir().expect("tmp");
        let mut log = open(dir.path(), LogConfig::for_tests());
        for i in 0..100 {
            let out = append(&mut log, 3, 1000 + i);
            assert_eq!(out.base_offset, Offset(i * 3));
            assert_eq!(out.last_offset, Offset(i * 3 + 2));
        }
        assert!(log.segment_count() > 1, "4 KiB segments must have rolled");
        assert_eq!(log.log_end_offset(), Offset(300));
        // Every offset is readable, from whichever segment holds it.
        for o in [0, 1, 150, 299] {
            let bytes = log.read(Offset(o), Offset(300), 100, true).expect("read");
            let h = batch::validate(&bytes).expect("whole batch");
            assert!(h.base_offset.0 <= o && o <= h.last_offset().0);
        }
        assert!(log.read(Offset(300), Offset(300), 100, true).expect("read").is_empty());
        assert!(matches!(
            log.read(Offset(301), Offset(300), 100, true),
            Err(ReadError::OffsetOutOfRange { .. })
        ));
    }

    #[test]
    fn the_end_offset_bounds_reads() {
        let dir = tempfile::tempdir().expect("tmp");
        let mut log = open(dir.path(), LogConfig::for_tests());
        append(&mut log, 2, 0);
        append(&mut log, 2, 0);
        let bytes = log.read(Offset(0), Offset(2), 1 << 20, true).expect("read");
        assert_eq!(batch::split_client_batches(&bytes).expect("ok").len(), 1);
    }

    #[test]
    fn restart_recovers_everything_written() {
        let dir = tempfile::tempdir().expect("tmp");
        {
            let mut log = open(dir.path(), LogConfig::for_tests());
            for i in 0..50 {
                append(&mut log, 2, i);
            }
        } // dropped without flush: page cache holds it, as after a process kill
        let (log, report) = PartitionLog::open(dir.path(), LogConfig::for_tests()).expect("open");
        assert_eq!(log.log_end_offset(), Offset(100));
        assert_eq!(report.recovered.truncated_bytes, 0);
    }

    #[test]
    fn corrupting_the_tail_keeps_what_is_intact() {
        let dir = tempfile::tempdir().expect("tmp");
        let mut log = open(dir.path(), LogConfig::for_tests());
        for i in 0..10 {
            append(&mut log, 1, i);
        }
        let active = log.segments.values().next_back().expect("seg").log_path().to_path_buf();
        drop(log);
        let mut bytes = fs::read(&active).expect("read");
        let n = bytes.len();
        bytes[n - 3] ^= 0x55; // flip a byte inside the last batch
        fs::write(&active, &bytes).expect("write");
        let (log, report) = PartitionLog::open(dir.path(), LogConfig::for_tests()).expect("open");
        assert_eq!(log.log_end_offset(), Offset(9));
        assert!(report.recovered.truncated_bytes > 0);
    }

    #[test]
    fn idempotent_retries_are_answered_with_the_original_offsets() {
        let dir = tempfile::tempdir().expect("tmp");
        let mut log = open(dir.path(), LogConfig::for_tests());
        append(&mut log, 1, 0);
        let b = encode_batch(3, 0, Some((5, 0, 0)), Compression::None);
        let first = log.append_as_leader(&b, LeaderEpoch(0), 0).expect("first");
        let retry = log.append_as_leader(&b, LeaderEpoch(0), 0).expect("retry");
        assert!(retry.duplicate);
        assert_eq!(retry.base_offset, first.base_offset);
        assert_eq!(log.log_end_offset(), Offset(4));
        let gap = encode_batch(1, 0, Some((5, 0, 9)), Compression::None);
        assert!(matches!(
            log.append_as_leader(&gap, LeaderEpoch(0), 0),
            Err(AppendError::Producer(ProducerError::OutOfOrderSequence { expected: 3, .. }))
        ));
        // Producer state survives a restart (rebuilt from the log).
        drop(log);
        let mut log = open(dir.path(), LogConfig::for_tests());
        assert!(log.append_as_leader(&b, LeaderEpoch(0), 0).expect("retry").duplicate);
    }

    #[test]
    fn oversize_batches_are_refused_and_nothing_is_written() {
        let dir = tempfile::tempdir().expect("tmp");
        let mut cfg = LogConfig::for_tests();
        cfg.max_message_bytes = 100;
        let mut log = open(dir.path(), cfg);
        let b = encode_batch(10, 0, None, Compression::None);
        assert!(matches!(
            log.append_as_leader(&b, LeaderEpoch(0), 0),
            Err(AppendError::MessageTooLarge { .. })
        ));
        assert_eq!(log.log_end_offset(), Offset(0));
    }

    #[test]
    fn retention_by_bytes_and_time_deletes_whole_old_segments() {
        let dir = tempfile::tempdir().expect("tmp");
        let mut cfg = LogConfig::for_tests();
        cfg.retention_bytes = 8192;
        let mut log = open(dir.path(), cfg.clone());
        for i in 0..200 {
            append(&mut log, 2, i);
        }
        let leo = log.log_end_offset();
        let deleted = log.enforce_retention(0, leo).expect("retention");
        assert!(deleted > 0);
        assert!(log.size_bytes() < 8192 + 4096);
        assert!(log.log_start_offset() > Offset(0));
        assert!(matches!(
            log.read(Offset(0), leo, 100, true),
            Err(ReadError::OffsetOutOfRange { .. })
        ));
        // By time: every closed segment is older than 1 s at t = 1 day.
        cfg.retention_bytes = -1;
        cfg.retention_ms = 1000;
        log.set_config(cfg);
        log.enforce_retention(86_400_000, leo).expect("retention");
        assert_eq!(log.segment_count(), 1);
        // Retention never passes the high watermark.
        let dir2 = tempfile::tempdir().expect("tmp");
        let mut cfg2 = LogConfig::for_tests();
        cfg2.retention_ms = 0;
        let mut log2 = open(dir2.path(), cfg2);
        for i in 0..100 {
            append(&mut log2, 2, i);
        }
        assert_eq!(log2.enforce_retention(1_000_000, Offset(0)).expect("ret"), 0);
    }

    #[test]
    fn segments_roll_by_time() {
        let dir = tempfile::tempdir().expect("tmp");
        let mut cfg = LogConfig::for_tests();
        cfg.segment_ms = 1000;
        let mut log = open(dir.path(), cfg);
        append(&mut log, 1, 0);
        append(&mut log, 1, 500);
        assert_eq!(log.segment_count(), 1);
        let b = encode_batch(1, 5000, None, Compression::None);
        log.append_as_leader(&b, LeaderEpoch(0), 5000).expect("append");
        assert_eq!(log.segment_count(), 2);
    }

    #[test]
    fn lookups_by_timestamp_find_the_exact_record() {
        let dir = tempfile::tempdir().expect("tmp");
        let mut log = open(dir.path(), LogConfig::for_tests());
        for i in 0..20 {
            append(&mut log, 5, 1000 + i * 10); // records at 1000+10i .. 1004+10i
        }
        let leo = log.log_end_offset();
        assert_eq!(log.offset_for_timestamp(1052, leo).expect("io"), Some((Offset(27), 1052)));
        assert_eq!(log.offset_for_timestamp(0, leo).expect("io"), Some((Offset(0), 1000)));
        assert_eq!(log.offset_for_timestamp(99_999, leo).expect("io"), None);
        assert_eq!(log.max_timestamp(leo), Some((Offset(99), 1194)));
    }

    /// Broker-side compression: a topic with `compression.type=zstd` stores zstd whatever the
    /// producer sent, with the same records at the same offsets; a batch already in zstd is
    /// kept as it came.
    #[test]
    fn a_topic_compression_type_recompresses_batches_on_append() {
        let dir = tempfile::tempdir().expect("tmp");
        let cfg = LogConfig { compression: Some(batch::Codec::Zstd), ..LogConfig::for_tests() };
        let mut log = open(dir.path(), cfg);
        for codec in [Compression::Lz4, Compression::None, Compression::Gzip, Compression::Zstd] {
            let b = encode_batch(4, 1000, Some((7, 0, log.log_end_offset().0 as i32)), codec);
            log.append_as_leader(&b, LeaderEpoch(0), 1000).expect("append");
        }
        let mut bytes = log.read(Offset(0), log.log_end_offset(), usize::MAX, true).expect("read");
        let mut rest = bytes.clone();
        while !rest.is_empty() {
            let h = batch::validate(&rest).expect("a valid batch");
            assert_eq!(h.codec(), Some(batch::Codec::Zstd), "batch at {}", h.base_offset);
            let _ = rest.split_to(h.size_bytes);
        }
        let sets = RecordBatchDecoder::decode_all(&mut bytes).expect("decodes");
        let values: Vec<(i64, Option<bytes::Bytes>)> =
            sets.into_iter().flat_map(|s| s.records).map(|r| (r.offset, r.value)).collect();
        assert_eq!(values.len(), 16);
        for (i, (o, v)) in values.iter().enumerate() {
            assert_eq!(*o, i as i64);
            assert_eq!(v.as_deref(), Some(format!("value-{}", i % 4).as_bytes()));
        }
        // A producer retry of a recompressed batch is still recognised as a duplicate.
        let retry = encode_batch(4, 1000, Some((7, 0, 12)), Compression::Zstd);
        assert!(log.append_as_leader(&retry, LeaderEpoch(0), 1000).expect("retry").duplicate);
    }

    /// KIP-390: broker-side compression runs at the topic's level for its codec; a higher level
    /// stores fewer bytes of the same, readable records.
    #[test]
    fn broker_side_compression_uses_the_codec_level() {
        let records: Vec<_> = (0..200)
            .map(|i| {
                let v = format!("value {i} {}", "abcdefgh".repeat(i % 7 + 1));
                crate::client::records::new_record(i, None, Some(v.into()), 1000, None)
            })
            .collect();
        let batch = crate::client::records::encode_records(&records, Compression::None)
            .expect("encode")
            .to_vec();
        for (codec, low, high) in
            [(batch::Codec::Gzip, 1, 9), (batch::Codec::Zstd, 1, 19), (batch::Codec::Lz4, 1, 17)]
        {
            let stored = |level: i32| {
                let dir = tempfile::tempdir().expect("tmp");
                let cfg = LogConfig {
                    compression: Some(codec),
                    compression_level: Some(level),
                    ..LogConfig::for_tests()
                };
                let mut log = open(dir.path(), cfg);
                log.append_as_leader(&batch, LeaderEpoch(0), 1000).expect("append");
                let mut bytes =
                    log.read(Offset(0), log.log_end_offset(), usize::MAX, true).expect("read");
                let n = bytes.len();
                let sets = RecordBatchDecoder::decode_all(&mut bytes).expect("decodes");
                assert_eq!(sets.iter().map(|s| s.records.len()).sum::<usize>(), 200);
                n
            };
            let (small_effort, big_effort) = (stored(low), stored(high));
            assert!(big_effort <= small_effort, "{codec:?}: {big_effort} > {small_effort}");
        }
    }

    /// KAFKA-16310: ListOffsets -3 names the record with the largest timestamp, not the last
    /// record of its batch.
    #[test]
    fn the_max_timestamp_lookup_names_the_record_inside_its_batch() {
        use crate::client::records::{encode_records, new_record};
        let dir = tempfile::tempdir().expect("tmp");
        let mut log = open(dir.path(), LogConfig::for_tests());
        append(&mut log, 2, 1000); // offsets 0-1
        let recs: Vec<_> = [1500, 3000, 2000]
            .iter()
            .enumerate()
            .map(|(i, ts)| new_record(i, None, Some(bytes::Bytes::from_static(b"v")), *ts, None))
            .collect();
        let b = encode_records(&recs, Compression::Lz4).expect("encode");
        log.append_as_leader(&b, LeaderEpoch(0), 5000).expect("append"); // offsets 2-4
        assert_eq!(log.max_timestamp(log.log_end_offset()), Some((Offset(3), 3000)));
    }

    #[test]
    fn log_append_time_topics_stamp_the_broker_clock() {
        let dir = tempfile::tempdir().expect("tmp");
        let mut cfg = LogConfig::for_tests();
        cfg.timestamp_type = TimestampType::LogAppendTime;
        let mut log = open(dir.path(), cfg);
        let b = encode_batch(2, 5, None, Compression::None);
        let out = log.append_as_leader(&b, LeaderEpoch(0), 777).expect("append");
        assert_eq!(out.log_append_time_ms, 777);
        let bytes = log.read(Offset(0), Offset(2), 1000, true).expect("read");
        assert_eq!(batch::validate(&bytes).expect("valid").max_timestamp_ms, 777);
    }

    #[test]
    fn a_follower_appends_the_leaders_batches_verbatim_and_refuses_gaps() {
        let (ld, fd) = (tempfile::tempdir().expect("tmp"), tempfile::tempdir().expect("tmp"));
        let mut leader = open(ld.path(), LogConfig::for_tests());
        let mut follower = open(fd.path(), LogConfig::for_tests());
        for i in 0..10 {
            let b = encode_batch(3, i, Some((4, 0, (i * 3) as i32)), Compression::None);
            leader.append_as_leader(&b, LeaderEpoch(2), i).expect("append");
        }
        let leo = leader.log_end_offset();
        let bytes = leader.read(Offset(0), leo, 1 << 20, true).expect("read");
        assert_eq!(follower.append_as_follower(&bytes, 0).expect("replicate"), leo);
        assert_eq!(
            follower.read(Offset(0), leo, 1 << 20, true).expect("read"),
            bytes,
            "identical bytes"
        );
        assert_eq!(
            follower.latest_epoch(),
            Some(LeaderEpoch(2)),
            "epoch cache follows the batches"
        );
        // The follower's producer state saw the batches: a retry is a duplicate there too.
        let retry = encode_batch(3, 9, Some((4, 0, 27)), Compression::None);
        assert!(follower.append_as_leader(&retry, LeaderEpoch(3), 0).expect("dup").duplicate);
        let again = leader.read(Offset(3), leo, 1 << 20, true).expect("read");
        assert!(matches!(
            follower.append_as_follower(&again, 0),
            Err(AppendError::OffsetMismatch { expected: Offset(30), got: Offset(3) })
        ));
    }

    #[test]
    fn truncation_rewinds_the_log_end_and_epochs() {
        let dir = tempfile::tempdir().expect("tmp");
        let mut log = open(dir.path(), LogConfig::for_tests());
        for i in 0..100 {
            let b = encode_batch(2, i, None, Compression::None);
            log.append_as_leader(&b, LeaderEpoch((i / 50) as i32), i).expect("append");
        }
        log.truncate_to(Offset(90)).expect("truncate");
        assert_eq!(log.log_end_offset(), Offset(90));
        assert_eq!(log.end_offset_for_epoch(LeaderEpoch(0)), Some((LeaderEpoch(0), Offset(90))));
        append(&mut log, 1, 0);
        assert_eq!(log.log_end_offset(), Offset(91));
    }
}
