//! The replica's reads and upkeep: consumer and follower reads, applying a leader's answer
//! as a follower, offset lookups, flushes, recovery-point checkpoints and retention. Each takes
//! the log lock only for what must be read or written together, and never fsyncs under it on
//! the write path.

use std::io;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::Bytes;

use super::{
    ConsumerRead, FetchPosition, FollowerApplied, FollowerRead, Isolation, LeaderData, LogOffsets,
    Partition, PendingFlush,
};
use crate::error_code::ErrorCode;
use crate::log::ReadError;
#[cfg(test)]
use crate::log::partition_log::FlushJob;
use crate::replica::divergence::divergence;
use crate::types::{LeaderEpoch, NodeId, Offset};

/// The last stable offset: the first offset of the oldest open transaction, capped by the high
/// watermark.
fn last_stable(log: &crate::log::PartitionLog, hw: Offset) -> Offset {
    log.first_unstable_offset().map_or(hw, |o| o.min(hw))
}

impl Partition {
    /// Log start, log end, high watermark and last stable offset, read together.
    pub(crate) fn offsets(&self) -> LogOffsets {
        let log = self.lock_log();
        let high_watermark = self.high_watermark();
        LogOffsets {
            log_start_offset: log.log_start_offset(),
            log_end_offset: log.log_end_offset(),
            high_watermark,
            last_stable_offset: last_stable(&log, high_watermark),
        }
    }

    /// A consumer's read from `fetch_offset`: whole batches below the high watermark, at most
    /// `max_bytes` unless `at_least_one_batch` (KIP-74). An offset equal to the high watermark
    /// reads nothing; one beyond the log end is out of range. Only located under the lock:
    /// committed data does not change, so the caller copies or sends the slice after it.
    ///
    /// Read_committed reads stop at the last stable offset and carry the aborted transactions
    /// from `fetch_offset` to it (Kafka bounds them by the end of the data read; a longer list
    /// only names transactions the consumer has not reached).
    pub(crate) fn read_for_consumer(
        &self,
        fetch_offset: Offset,
        max_bytes: usize,
        at_least_one_batch: bool,
        isolation: Isolation,
    ) -> Result<ConsumerRead, ReadError> {
        let hw = self.high_watermark();
        let log = self.lock_log();
        let lso = last_stable(&log, hw);
        let end = match isolation {
            Isolation::ReadUncommitted => hw,
            Isolation::ReadCommitted => lso,
        };
        // An offset between the LSO and the HW reads nothing yet; it is not out of range.
        let records = if fetch_offset > end && fetch_offset <= log.log_end_offset() {
            crate::log::FileSlice::default()
        } else {
            log.slice(fetch_offset, end, max_bytes, at_least_one_batch)?
        };
        let aborted = (isolation == Isolation::ReadCommitted && !records.is_empty())
            .then(|| log.aborted_txns(fetch_offset, lso));
        Ok(ConsumerRead {
            records,
            high_watermark: hw,
            last_stable_offset: lso,
            log_start_offset: log.log_start_offset(),
            aborted,
        })
    }

    /// Whether the topic's `compression.type` is zstd (Fetch below v10 is then refused with
    /// UNSUPPORTED_COMPRESSION_TYPE, as Kafka: those clients cannot read zstd).
    pub(crate) fn stores_zstd(&self) -> bool {
        self.lock_log().config().compression == Some(crate::log::batch::Codec::Zstd)
    }

    /// The topic's `message.downconversion.enable`.
    pub(crate) fn down_conversion_enabled(&self) -> bool {
        self.lock_log().config().down_conversion
    }

    /// Whether `producer_id` has a transaction open in this replica.
    pub(crate) fn has_open_txn(&self, producer_id: crate::types::ProducerId) -> bool {
        self.lock_log().has_open_txn(producer_id)
    }

    /// Every producer's state in this replica (DescribeProducers).
    pub(crate) fn producers(&self) -> Vec<crate::log::producer_state::ProducerInfo> {
        self.lock_log().producers()
    }

    /// Leader: answers a follower's fetch at `fetch_offset` whose last batch had
    /// `last_fetched_epoch`: the truncation point if its log diverges (KIP-320), else the
    /// batches after it. Records the follower's progress and raises the high watermark.
    pub(crate) fn read_for_follower(
        &self,
        follower: NodeId,
        fetch_offset: i64,
        last_fetched_epoch: i32,
        max_bytes: usize,
        now_ms: i64,
    ) -> Result<FollowerRead, ReadError> {
        let log = self.lock_log();
        let mut out = FollowerRead {
            log_start_offset: log.log_start_offset(),
            log_end_offset: log.log_end_offset(),
            ..Default::default()
        };
        if let Some(d) = divergence(&log, last_fetched_epoch, fetch_offset) {
            out.diverging = Some(d);
            out.high_watermark = self.high_watermark();
            return Ok(out);
        }
        out.records = log.read(Offset(fetch_offset), out.log_end_offset, max_bytes, true)?;
        // Where this leadership began (its log end offset then); unknown counts as the log end.
        let epoch_start = log.epoch_start_offset(self.leader_epoch()).unwrap_or(out.log_end_offset);
        drop(log);
        out.isr_expansion = self.record_follower_fetch(
            follower,
            fetch_offset,
            out.log_end_offset,
            epoch_start,
            now_ms,
        );
        out.high_watermark = self.advance_high_watermark(out.log_end_offset);
        Ok(out)
    }

    /// Follower: where the next fetch starts, and in which leader epoch it is asked.
    pub(crate) fn fetch_position(&self) -> FetchPosition {
        let log = self.lock_log();
        FetchPosition {
            fetch_offset: log.log_end_offset(),
            last_fetched_epoch: log.latest_epoch(),
            current_leader_epoch: self.leader_epoch(),
        }
    }

    /// Follower: applies `leader`'s answer to a fetch asked in leader epoch `asked_in` at this
    /// replica's log end offset (`data.fetch_offset`; an answer for another offset is
    /// stale): truncates to a divergence point, or appends the batches verbatim; then adopts
    /// the leader's high watermark.
    ///
    /// Checked under the log lock, which a new leadership takes to record its epoch: an answer
    /// that arrives after this replica stopped following `leader` in `asked_in` (it became
    /// leader, or follows someone else now) is stale and must not touch the log. Applying it
    /// would put the deposed leader's records after the new leader's epoch start (found by the
    /// chaos suite; the regression test is beside the fetcher).
    pub(crate) fn apply_as_follower(
        self: &Arc<Self>,
        leader: NodeId,
        asked_in: LeaderEpoch,
        data: LeaderData<'_>,
        now_ms: i64,
    ) -> (FollowerApplied, Option<PendingFlush>) {
        let mut log = self.lock_log();
        if self.is_leader() || self.leader() != Some(leader) || self.leader_epoch() != asked_in {
            tracing::info!(partition = %self.tp, %leader, epoch = %asked_in,
                "ignoring a fetch answer from before a leadership change");
            return (FollowerApplied::Stale, None);
        }
        if log.log_end_offset().0 != data.fetch_offset {
            // Answers are applied in the order asked, so this cannot happen; appending it would
            // leave a hole before its first batch (Kafka refuses the same mismatch).
            tracing::error!(partition = %self.tp, fetch_offset = data.fetch_offset,
                log_end_offset = %log.log_end_offset(), "ignoring a fetch answer for another offset");
            return (FollowerApplied::Stale, None);
        }
        let mut applied = FollowerApplied::Applied;
        let result = if let Some((epoch, end_offset)) = data.diverging {
            let before = (log.log_end_offset(), log.latest_epoch());
            let truncated = log.truncate_to(Offset(end_offset)).map_err(|e| e.to_string());
            let after = (log.log_end_offset(), log.latest_epoch());
            if truncated.is_ok() && after == before {
                // Nothing changed, so the next fetch gets the same answer: back off rather than
                // spin (a bug if it happens; the log says which partition).
                tracing::error!(partition = %self.tp, epoch, end_offset,
                    "truncation changed nothing; backing off");
                applied = FollowerApplied::Stuck;
            } else if after.0 == before.0 {
                // Only an epoch this replica led in without writing went: no record was lost.
                tracing::info!(partition = %self.tp, epoch, end_offset,
                    "dropped an empty leader epoch the leader never knew");
            } else {
                tracing::warn!(partition = %self.tp, epoch, end_offset,
                    log_end_offset = %before.0, "log diverged from the leader; truncated");
            }
            truncated
        } else if !data.records.is_empty() {
            log.append_as_follower(data.records, now_ms).map(|_| ()).map_err(|e| e.to_string())
        } else {
            Ok(())
        };
        if let Err(e) = result {
            tracing::error!(partition = %self.tp, error = %e, "applying replicated data failed");
        }
        if data.log_start_offset > log.log_start_offset().0
            && let Err(e) = log.advance_log_start(Offset(data.log_start_offset))
        {
            tracing::error!(partition = %self.tp, error = %e, "adopting the leader's log start failed");
        }
        let flush = self.flush_to_wait_for(&mut log).unwrap_or_else(|e| {
            tracing::error!(partition = %self.tp, error = %e, "flushing replicated data failed");
            None
        });
        let leo = log.log_end_offset();
        drop(log);
        self.publish_log_end(leo);
        self.set_follower_high_watermark(data.high_watermark, leo);
        (applied, flush)
    }

    /// Follower whose next offset lies below `leader`'s log start: empties the log and goes on
    /// from `log_start` (unless the answer is stale, checked as in
    /// [`apply_as_follower`](Self::apply_as_follower)). Returns whether it restarted.
    pub(crate) fn restart_as_follower_at(
        &self,
        leader: NodeId,
        asked_in: LeaderEpoch,
        log_start: i64,
        leader_hw: i64,
    ) -> bool {
        let mut log = self.lock_log();
        if self.is_leader() || self.leader() != Some(leader) || self.leader_epoch() != asked_in {
            return false;
        }
        if log.log_end_offset().0 >= log_start {
            return false;
        }
        tracing::warn!(partition = %self.tp, log_end_offset = %log.log_end_offset(), log_start,
            "behind the leader's log start: restarting the replica there");
        if let Err(e) = log.truncate_fully_and_start_at(Offset(log_start)) {
            tracing::error!(partition = %self.tp, error = %e, "restarting the replica failed");
            return false;
        }
        let leo = log.log_end_offset();
        drop(log);
        self.publish_log_end(leo);
        self.set_follower_high_watermark(leader_hw, leo);
        true
    }

    /// Leader: DeleteRecords (KIP-107) moves the log start offset to `offset` (-1: the high
    /// watermark). Refused with OFFSET_OUT_OF_RANGE past the high watermark, as Kafka does.
    /// Returns the new log start offset (the low watermark).
    pub(crate) fn delete_records_before(&self, offset: i64) -> Result<Offset, ErrorCode> {
        let mut log = self.lock_log();
        if !self.is_leader() {
            return Err(ErrorCode::NotLeaderOrFollower);
        }
        let hw = self.high_watermark();
        let target = if offset == -1 { hw } else { Offset(offset) };
        if target.0 < 0 || target > hw {
            return Err(ErrorCode::OffsetOutOfRange);
        }
        log.advance_log_start(target).map_err(|e| {
            tracing::error!(partition = %self.tp, error = %e, "DeleteRecords failed");
            ErrorCode::KafkaStorageError
        })
    }

    /// KIP-320 (OffsetForLeaderEpoch): the largest epoch ≤ `epoch` and where it ends.
    pub(crate) fn end_offset_for_epoch(&self, epoch: LeaderEpoch) -> Option<(LeaderEpoch, Offset)> {
        self.lock_log().end_offset_for_epoch(epoch)
    }

    /// The first offset below the high watermark whose timestamp is ≥ `timestamp_ms`.
    pub(crate) fn offset_for_timestamp(
        &self,
        timestamp_ms: i64,
    ) -> io::Result<Option<(Offset, i64)>> {
        let hw = self.high_watermark();
        self.lock_log().offset_for_timestamp(timestamp_ms, hw)
    }

    /// The offset and timestamp of the largest timestamp below the high watermark.
    pub(crate) fn max_timestamp(&self) -> Option<(Offset, i64)> {
        let hw = self.high_watermark();
        self.lock_log().max_timestamp(hw)
    }

    /// Reads from `from` up to the log end (not the high watermark): a coordinator loading its
    /// internal topic reads everything its leadership will commit.
    pub(crate) fn read_to_log_end(
        &self,
        from: Offset,
        max_bytes: usize,
    ) -> Result<Bytes, ReadError> {
        let log = self.lock_log();
        log.read(from, log.log_end_offset(), max_bytes, true)
    }

    /// fsyncs the log if its unflushed data is older than `flush.ms`. Blocking; the fsync
    /// runs without the log lock, so appends, fetches and replication of this partition go on
    /// meanwhile.
    pub(crate) fn flush_if_due(&self, now_ms: i64) -> io::Result<()> {
        let job = {
            let mut log = self.lock_log();
            if !log.flush_due(now_ms) {
                return Ok(());
            }
            log.begin_flush()?
        };
        let Some(job) = job else { return Ok(()) };
        match job.run() {
            Ok(()) => {
                self.lock_log().flush_done(&job);
                Ok(())
            }
            Err(e) => {
                self.lock_log().flush_failed(job.first_unflushed_ms());
                Err(e)
            }
        }
    }

    /// Writes the recovery point to disk if it moved since the last checkpoint; the fsync runs
    /// without the log lock. Blocking.
    pub(crate) fn checkpoint_recovery_point(&self) -> io::Result<()> {
        let (recovery_point, ticket) = self.lock_log().recovery_point_to_checkpoint();
        if self.checkpointed_recovery_point.load(Ordering::Acquire) == recovery_point.0 {
            return Ok(());
        }
        crate::log::recovery::write_recovery_point_candidate(&self.dir, recovery_point)?;
        if self.lock_log().install_recovery_point(ticket)? {
            self.checkpointed_recovery_point.store(recovery_point.0, Ordering::Release);
        }
        Ok(())
    }

    /// Clean shutdown: fsyncs the log, records its recovery point and the clean-shutdown
    /// marker, and refuses appends from then on.
    pub(crate) fn close_cleanly(&self) -> io::Result<()> {
        self.lock_log().close_cleanly()
    }

    /// Takes a flush job of this replica without running it (tests: what a flush in progress
    /// holds).
    #[cfg(test)]
    pub(crate) fn begin_flush(&self) -> Option<FlushJob> {
        self.lock_log().begin_flush().expect("sync handles")
    }

    /// Expires idempotent producers idle since before `producer_cutoff_ms` and deletes segments
    /// past retention (never beyond the high watermark). Returns the segments deleted and the
    /// log start offset after.
    pub(crate) fn enforce_retention(
        &self,
        now_ms: i64,
        producer_cutoff_ms: i64,
    ) -> io::Result<(usize, Offset)> {
        let hw = self.high_watermark();
        let mut log = self.lock_log();
        log.expire_producers(producer_cutoff_ms);
        let deleted = log.enforce_retention(now_ms, hw)?;
        Ok((deleted, log.log_start_offset()))
    }
}
