//! One hosted partition replica: its `PartitionLog` behind a mutex, its replication state
//! (leader, epochs, ISR, follower progress) and its high watermark.
//!
//! Every operation that must see leadership and the log together (a leader append stamping its
//! epoch, a follower applying a fetch answer only if it still follows that leader in that epoch)
//! is a method here or in [`storage`] (reads, follower appends, flushes, retention), done under
//! the log lock; the lock guard never leaves this module (tests aside). The lock is never held
//! across an `.await`.

use std::collections::HashMap;
use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::watch;
use uuid::Uuid;

use crate::log::control::ControlRecord;
use crate::log::partition_log::FlushJob;
use crate::log::{AppendError, AppendOutcome, LogConfig, PartitionLog};
use crate::metadata::image::PartitionImage;
use crate::types::{LeaderEpoch, NodeId, Offset, ProducerEpoch, ProducerId, TopicPartition};

/// The last checkpointed high watermark of a replica (Kafka's replication-offset-checkpoint,
/// per partition): consumers see the same "latest" right after a restart.
pub(super) const HIGH_WATERMARK_FILE: &str = "high-watermark";

/// How often a commit wait re-checks leadership even if nothing wakes it (a leadership change
/// also wakes it at once).
const LEADERSHIP_RECHECK: Duration = Duration::from_millis(250);

/// What this node knows of a follower's progress (leader side).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FollowerProgress {
    /// The follower's log end offset: its last fetch offset.
    pub(crate) log_end_offset: i64,
    /// When it last fetched at or beyond the leader's log end offset.
    pub(crate) caught_up_ms: i64,
    /// The log start offset its last fetch reported (-1: not reported yet).
    pub(crate) log_start_offset: i64,
}

/// Which acknowledgement a leader append is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Acks {
    /// acks=0 or 1: the leader's append is enough.
    Leader,
    /// acks=all: refused while the ISR is smaller than `min.insync.replicas`.
    All,
}

/// Why a leader append refused.
#[derive(Debug)]
pub(crate) enum LeaderAppendError {
    /// This replica does not lead (or no longer in the epoch the caller required).
    NotLeader,
    NotEnoughReplicas {
        isr: i32,
        min_isr: i32,
    },
    Append(AppendError),
}

/// A leader append that landed.
#[derive(Debug)]
pub(crate) struct LeaderAppend {
    pub(crate) outcome: AppendOutcome,
    /// The leader epoch the records were stamped with.
    pub(crate) epoch: LeaderEpoch,
    /// Set when the append reached `flush.messages`: the writer acknowledges only once it is
    /// done.
    pub(crate) flush: Option<PendingFlush>,
}

/// An fsync a writer waits for before it acknowledges (`flush.messages` reached). It runs on a
/// blocking thread without the log lock, so neither the partition's other appends nor the
/// tokio workers wait for the disk.
#[derive(Debug)]
pub(crate) struct PendingFlush {
    part: Arc<Partition>,
    job: FlushJob,
}

impl PendingFlush {
    /// Runs the fsync; on failure what it covered counts as unflushed again.
    pub(crate) async fn wait(self) -> io::Result<()> {
        let PendingFlush { part, job } = self;
        let first_unflushed_ms = job.first_unflushed_ms();
        let ran = tokio::task::spawn_blocking(move || job.run().map(|()| job)).await;
        match ran.unwrap_or_else(|e| Err(io::Error::other(e))) {
            Ok(job) => {
                part.lock_log().flush_done(&job);
                Ok(())
            }
            Err(e) => {
                part.lock_log().flush_failed(first_unflushed_ms);
                Err(e)
            }
        }
    }
}

/// Why [`Partition::wait_for_commit`] gave up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CommitWait {
    /// This replica no longer leads in the write's epoch: the write's fate is unknown here.
    NotLeader,
    /// The ISR did not confirm the write before the deadline.
    TimedOut,
}

/// A partition's replication state on this node, from metadata plus follower fetches.
#[derive(Debug, Clone, Default)]
pub(crate) struct ReplicaState {
    pub(crate) leader: Option<NodeId>,
    pub(crate) leader_epoch: LeaderEpoch,
    pub(crate) partition_epoch: i32,
    pub(crate) replicas: Vec<NodeId>,
    pub(crate) isr: Vec<NodeId>,
    /// Leader only: each follower's progress in the current leader epoch.
    pub(crate) followers: HashMap<NodeId, FollowerProgress>,
    /// Leader only: when this leadership began (lag is measured from it for silent followers).
    pub(crate) leader_since_ms: i64,
    /// The ISR of the AlterPartition in flight; no other is sent until metadata answers. While
    /// it is in flight the high watermark counts its members too (Kafka's maximal ISR): the
    /// controller may already have committed it, and a member it adds may be elected leader
    /// before this leader hears of the change, so it must hold everything acknowledged.
    pub(crate) pending_isr: Option<Vec<NodeId>>,
}

/// The offsets a reader sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LogOffsets {
    pub(crate) log_start_offset: Offset,
    pub(crate) log_end_offset: Offset,
    pub(crate) high_watermark: Offset,
    /// The first offset of the oldest open transaction, or the high watermark (KIP-98).
    pub(crate) last_stable_offset: Offset,
}

/// Which records a consumer may see (Fetch's and ListOffsets' `isolation_level`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Isolation {
    /// Everything below the high watermark.
    ReadUncommitted,
    /// Everything below the last stable offset, with the aborted transactions in range.
    ReadCommitted,
}

impl Isolation {
    /// From the wire: 1 is read_committed, anything else read_uncommitted (Kafka's reading).
    pub(crate) fn from_wire(level: i8) -> Self {
        if level == 1 { Isolation::ReadCommitted } else { Isolation::ReadUncommitted }
    }
}

/// A consumer's read: batches below the high watermark (or the last stable offset).
#[derive(Debug)]
pub(crate) struct ConsumerRead {
    /// Committed batches, located but not yet copied: read them after the lock is gone.
    pub(crate) records: crate::log::FileSlice,
    pub(crate) high_watermark: Offset,
    pub(crate) last_stable_offset: Offset,
    pub(crate) log_start_offset: Offset,
    /// Read_committed only: the aborted transactions in the range read.
    pub(crate) aborted: Option<Vec<crate::log::txn_index::AbortedTxn>>,
}

/// A follower's fetch as its leader answers it.
#[derive(Debug, Default)]
pub(crate) struct FollowerRead {
    pub(crate) log_start_offset: Offset,
    pub(crate) log_end_offset: Offset,
    pub(crate) high_watermark: Offset,
    pub(crate) records: Bytes,
    /// KIP-320: the epoch and end offset the follower must truncate to, when its log diverges.
    pub(crate) diverging: Option<(i32, i64)>,
    /// The ISR to propose because this fetch brought the follower back in sync.
    pub(crate) isr_expansion: Option<Vec<NodeId>>,
}

/// A leader's answer to this replica's fetch, for [`Partition::apply_as_follower`].
#[derive(Debug)]
pub(crate) struct LeaderData<'a> {
    /// The offset the fetch asked from: this replica's log end offset when it asked.
    pub(crate) fetch_offset: i64,
    pub(crate) diverging: Option<(i32, i64)>,
    pub(crate) records: &'a [u8],
    pub(crate) high_watermark: i64,
    /// The leader's log start offset: the follower's moves up to it (DeleteRecords).
    pub(crate) log_start_offset: i64,
}

/// What [`Partition::apply_as_follower`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FollowerApplied {
    /// The answer came from before a leadership change and was dropped.
    Stale,
    /// The answer was applied (possibly with nothing to append).
    Applied,
    /// A truncation changed nothing: the next fetch would get the same answer.
    Stuck,
}

/// Where a follower fetches from next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FetchPosition {
    pub(crate) fetch_offset: Offset,
    pub(crate) last_fetched_epoch: Option<LeaderEpoch>,
    pub(crate) current_leader_epoch: LeaderEpoch,
}

/// One hosted partition replica.
#[derive(Debug)]
pub(crate) struct Partition {
    pub(crate) tp: TopicPartition,
    pub(crate) topic_id: Uuid,
    local: NodeId,
    /// The replica's directory (never changes while the replica is hosted).
    dir: PathBuf,
    log: Mutex<PartitionLog>,
    /// Consumers read below this. Leaders advance it (only ever up) as the ISR's log end offsets
    /// grow; followers copy the leader's. acks=all and consumer long polls wait on it.
    hw: watch::Sender<i64>,
    /// The log end offset after the last append or truncation: follower long polls wait on it,
    /// so an append wakes only the fetches of this partition.
    log_end: watch::Sender<i64>,
    /// The high watermark last written to `high-watermark`.
    checkpointed_hw: AtomicI64,
    /// The recovery point last written to `recovery-point`.
    checkpointed_recovery_point: AtomicI64,
    state: Mutex<ReplicaState>,
}

impl Partition {
    pub(super) fn new(
        tp: TopicPartition,
        topic_id: Uuid,
        local: NodeId,
        log: PartitionLog,
        high_watermark: i64,
    ) -> Self {
        let dir = log.dir().to_path_buf();
        let log_end = log.log_end_offset().0;
        let recovery_point = log.recovery_point().0;
        Partition {
            tp,
            topic_id,
            local,
            dir,
            log: Mutex::new(log),
            hw: watch::channel(high_watermark).0,
            log_end: watch::channel(log_end).0,
            checkpointed_hw: AtomicI64::new(high_watermark),
            checkpointed_recovery_point: AtomicI64::new(recovery_point),
            state: Mutex::new(ReplicaState::default()),
        }
    }

    /// Locks the log. Poisoning (a panic while appending) is an invariant breach: the lock is
    /// recovered, because the log's own state stays consistent between calls.
    fn lock_log(&self) -> MutexGuard<'_, PartitionLog> {
        self.log.lock().unwrap_or_else(|p| p.into_inner())
    }
    /// The log itself, for tests that arrange or inspect it directly.
    #[cfg(test)]
    pub(crate) fn log(&self) -> MutexGuard<'_, PartitionLog> {
        self.lock_log()
    }
    fn state(&self) -> MutexGuard<'_, ReplicaState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
    pub(super) fn dir(&self) -> &std::path::Path {
        &self.dir
    }
    /// A copy of the replication state.
    pub(crate) fn snapshot(&self) -> ReplicaState {
        self.state().clone()
    }
    pub(crate) fn high_watermark(&self) -> Offset {
        Offset(*self.hw.borrow())
    }
    /// Changes whenever the high watermark moves or the leadership changes.
    pub(crate) fn subscribe_high_watermark(&self) -> watch::Receiver<i64> {
        self.hw.subscribe()
    }
    /// Changes whenever the log end offset moves (appends, truncations).
    pub(crate) fn subscribe_log_end(&self) -> watch::Receiver<i64> {
        self.log_end.subscribe()
    }
    fn publish_log_end(&self, leo: Offset) {
        self.log_end.send_if_modified(|cur| {
            let changed = *cur != leo.0;
            *cur = leo.0;
            changed
        });
    }

    /// Leader: appends a producer's records stamped with the epoch this replica leads in, and
    /// raises the HW when the leader is alone in the ISR. With [`Acks::All`], refuses while the
    /// ISR is smaller than `min.insync.replicas`.
    ///
    /// Leadership and epoch are read together under the log lock. (Reading them apart once let a
    /// replica that had just become a follower stamp a write with its new leader's epoch: a
    /// divergence no epoch check sees, which left a follower out of the ISR for good. Found by
    /// the chaos suite.) A leadership that ends right after the read leaves a record of the old
    /// epoch, which followers' epoch checks truncate.
    pub(crate) fn append_as_leader(
        self: &Arc<Self>,
        records: &[u8],
        acks: Acks,
        now_ms: i64,
    ) -> Result<LeaderAppend, LeaderAppendError> {
        self.append_checked(None, acks, |log, epoch| log.append_as_leader(records, epoch, now_ms))
    }

    /// Leader: writes a transaction marker for `producer_id` (the partition side of
    /// WriteTxnMarkers) with acks=all semantics, as Kafka appends markers.
    pub(crate) fn append_marker(
        self: &Arc<Self>,
        producer_id: ProducerId,
        producer_epoch: ProducerEpoch,
        marker: ControlRecord,
        now_ms: i64,
    ) -> Result<LeaderAppend, LeaderAppendError> {
        self.append_checked(None, Acks::All, |log, epoch| {
            log.append_marker(producer_id, producer_epoch, marker, epoch, now_ms)
        })
    }

    /// Leader: appends with acks=all semantics only while this replica still leads in `epoch`
    /// (a coordinator's write to its internal topic, decided under that leadership).
    pub(crate) fn append_in_epoch(
        self: &Arc<Self>,
        records: &[u8],
        epoch: LeaderEpoch,
        now_ms: i64,
    ) -> Result<LeaderAppend, LeaderAppendError> {
        self.append_checked(Some(epoch), Acks::All, |log, epoch| {
            log.append_as_leader(records, epoch, now_ms)
        })
    }

    fn append_checked(
        self: &Arc<Self>,
        required_epoch: Option<LeaderEpoch>,
        acks: Acks,
        append: impl FnOnce(&mut PartitionLog, LeaderEpoch) -> Result<AppendOutcome, AppendError>,
    ) -> Result<LeaderAppend, LeaderAppendError> {
        let mut log = self.lock_log();
        let epoch = self.epoch_if_leader().ok_or(LeaderAppendError::NotLeader)?;
        if required_epoch.is_some_and(|e| e != epoch) {
            return Err(LeaderAppendError::NotLeader);
        }
        let min_isr = log.config().min_insync_replicas;
        let isr = self.isr_len();
        if acks == Acks::All && isr < min_isr {
            return Err(LeaderAppendError::NotEnoughReplicas { isr, min_isr });
        }
        let outcome = append(&mut log, epoch).map_err(LeaderAppendError::Append)?;
        let flush = self.flush_to_wait_for(&mut log).map_err(LeaderAppendError::Append)?;
        let leo = log.log_end_offset();
        drop(log);
        self.publish_log_end(leo);
        self.advance_high_watermark(leo);
        Ok(LeaderAppend { outcome, epoch, flush })
    }

    /// The fsync an appender must wait for, when its append reached `flush.messages`.
    fn flush_to_wait_for(
        self: &Arc<Self>,
        log: &mut PartitionLog,
    ) -> Result<Option<PendingFlush>, AppendError> {
        if !log.flush_messages_due() {
            return Ok(None);
        }
        let job = log.begin_flush().map_err(AppendError::Io)?;
        Ok(job.map(|job| PendingFlush { part: self.clone(), job }))
    }

    /// The leader epoch, if this replica is the leader; both from one reading of the state.
    pub(crate) fn epoch_if_leader(&self) -> Option<LeaderEpoch> {
        let st = self.state();
        (st.leader == Some(self.local)).then_some(st.leader_epoch)
    }

    /// Whether this replica leads in `epoch` (not a later one).
    pub(crate) fn leads_in(&self, epoch: LeaderEpoch) -> bool {
        let st = self.state();
        st.leader == Some(self.local) && st.leader_epoch == epoch
    }

    /// Leader: waits until the high watermark covers `target` (an offset one past the write)
    /// while this replica still leads in `epoch`, the epoch the write was appended in.
    ///
    /// Only the leadership that appended a write may acknowledge it: once this replica follows
    /// (or leads a later epoch), its tail may have been truncated and replaced, and the high
    /// watermark it copies from the new leader says nothing about that write. Found by the
    /// chaos suite: a leader frozen with a produce queued appended it on waking, was deposed,
    /// truncated the write, and answered success once the new leader's HW passed the offset.
    pub(crate) async fn wait_for_commit(
        &self,
        target: i64,
        epoch: LeaderEpoch,
        deadline: tokio::time::Instant,
    ) -> Result<(), CommitWait> {
        let mut hw = self.hw.subscribe();
        loop {
            if !self.leads_in(epoch) {
                return Err(CommitWait::NotLeader);
            }
            if *hw.borrow_and_update() >= target {
                // Checked again after reading the HW: it must be this leadership's HW.
                return if self.leads_in(epoch) { Ok(()) } else { Err(CommitWait::NotLeader) };
            }
            let wake = deadline.min(tokio::time::Instant::now() + LEADERSHIP_RECHECK);
            match tokio::time::timeout_at(wake, hw.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => return Err(CommitWait::NotLeader), // the replica was removed
                Err(_) if tokio::time::Instant::now() >= deadline => {
                    return Err(CommitWait::TimedOut);
                }
                Err(_) => {}
            }
        }
    }
    pub(crate) fn leader_epoch(&self) -> LeaderEpoch {
        self.state().leader_epoch
    }
    pub(crate) fn leader(&self) -> Option<NodeId> {
        self.state().leader
    }
    pub(crate) fn is_leader(&self) -> bool {
        self.state().leader == Some(self.local)
    }
    pub(crate) fn isr_len(&self) -> i32 {
        self.state().isr.len() as i32
    }
    /// Whether this replica is in the partition's ISR (a follower outside it serves no
    /// consumer: KIP-392 sends the consumer back to the leader).
    pub(crate) fn in_isr(&self) -> bool {
        let st = self.state();
        st.isr.contains(&self.local)
    }

    /// KIP-392, leader only (RackAwareReplicaSelector): the in-sync follower a consumer whose
    /// rack `in_rack` accepts should read `fetch_offset` from. `None` sends the consumer to the
    /// leader: this replica is not the leader, the leader is in the consumer's rack, or no
    /// in-sync follower there has reached `fetch_offset`. Of several, the one furthest ahead,
    /// then the one caught up last, as Kafka's selector picks.
    pub(crate) fn preferred_read_replica(
        &self,
        fetch_offset: i64,
        in_rack: impl Fn(NodeId) -> bool,
    ) -> Option<NodeId> {
        let st = self.state();
        if st.leader != Some(self.local) || in_rack(self.local) {
            return None;
        }
        st.isr
            .iter()
            .filter(|r| **r != self.local && in_rack(**r))
            .filter_map(|r| st.followers.get(r).map(|f| (*r, f)))
            .filter(|(_, f)| f.log_end_offset >= fetch_offset)
            .max_by_key(|(_, f)| (f.log_end_offset, f.caught_up_ms))
            .map(|(r, _)| r)
    }

    /// Leader: recomputes HW = min log end offset over the maximal ISR (the ISR and the members
    /// an AlterPartition in flight adds; the leader's is `leader_leo`) and raises it if it
    /// grew. Returns the HW.
    pub(crate) fn advance_high_watermark(&self, leader_leo: Offset) -> Offset {
        let st = self.state();
        if st.leader != Some(self.local) {
            return self.high_watermark();
        }
        let adding = st.pending_isr.iter().flatten().filter(|r| !st.isr.contains(r));
        let min = st
            .isr
            .iter()
            .chain(adding)
            .map(|r| {
                if *r == self.local {
                    leader_leo.0
                } else {
                    st.followers.get(r).map_or(-1, |f| f.log_end_offset)
                }
            })
            .min()
            .unwrap_or(leader_leo.0);
        drop(st);
        self.hw.send_if_modified(|hw| {
            if min > *hw {
                *hw = min;
                true
            } else {
                false
            }
        });
        self.high_watermark()
    }

    /// Follower: adopts the leader's HW, bounded by its own log end offset (and lowered after a
    /// truncation).
    pub(crate) fn set_follower_high_watermark(&self, leader_hw: i64, local_leo: Offset) {
        let hw = leader_hw.min(local_leo.0).max(0);
        self.hw.send_if_modified(|cur| {
            let changed = *cur != hw;
            *cur = hw;
            changed
        });
    }

    /// Leader: records a follower fetch at `fetch_offset`. Returns the ISR to propose when the
    /// follower should (re)join it: it is a replica outside the ISR whose fetch reached both
    /// the HW and `epoch_start`, the offset this leadership began at (as Kafka's
    /// `isFollowerInSync`). A new leader's HW can lag what its predecessor acknowledged; the
    /// epoch start is past all of that, so a member admitted here holds every acknowledged
    /// record and may be elected safely.
    pub(crate) fn record_follower_fetch(
        &self,
        follower: NodeId,
        fetch_offset: i64,
        leader_leo: Offset,
        epoch_start: Offset,
        now_ms: i64,
    ) -> Option<Vec<NodeId>> {
        let mut st = self.state();
        let hw = *self.hw.borrow();
        let prev = st.followers.get(&follower).map_or(st.leader_since_ms, |f| f.caught_up_ms);
        let log_start_offset = st.followers.get(&follower).map_or(-1, |f| f.log_start_offset);
        let caught_up_ms = if fetch_offset >= leader_leo.0 { now_ms } else { prev };
        st.followers.insert(
            follower,
            FollowerProgress { log_end_offset: fetch_offset, caught_up_ms, log_start_offset },
        );
        let expand = !st.isr.contains(&follower)
            && st.replicas.contains(&follower)
            && fetch_offset >= hw
            && fetch_offset >= epoch_start.0
            && st.pending_isr.is_none();
        if !expand {
            return None;
        }
        let mut isr = st.isr.clone();
        isr.push(follower);
        st.pending_isr = Some(isr.clone());
        Some(isr)
    }

    /// Leader: notes the log start offset a follower's fetch reported.
    pub(crate) fn record_follower_log_start(&self, follower: NodeId, log_start_offset: i64) {
        let mut st = self.state();
        if let Some(f) = st.followers.get_mut(&follower) {
            f.log_start_offset = log_start_offset;
        }
    }

    /// Leader: the low watermark (Kafka's `lowWatermarkIfLeader`): the smallest log start
    /// offset of this replica and every follower `alive` says is up (one that never reported
    /// counts as -1); `None` when not the leader.
    pub(crate) fn low_watermark(&self, alive: impl Fn(NodeId) -> bool) -> Option<Offset> {
        let own = self.offsets().log_start_offset;
        let st = self.state();
        if st.leader != Some(self.local) {
            return None;
        }
        let followers = st
            .replicas
            .iter()
            .filter(|r| **r != self.local && alive(**r))
            .map(|r| st.followers.get(r).map_or(-1, |f| f.log_start_offset));
        Some(Offset(followers.fold(own.0, i64::min)))
    }

    /// Leader: the ISR without followers that have not caught up for `lag_max_ms`, if any must
    /// go. Never drops the leader itself.
    pub(crate) fn shrink_candidates(&self, now_ms: i64, lag_max_ms: i64) -> Option<Vec<NodeId>> {
        let mut st = self.state();
        if st.leader != Some(self.local) || st.pending_isr.is_some() {
            return None;
        }
        let since = st.leader_since_ms;
        let keep: Vec<NodeId> = st
            .isr
            .iter()
            .copied()
            .filter(|r| {
                *r == self.local
                    || now_ms - st.followers.get(r).map_or(since, |f| f.caught_up_ms) <= lag_max_ms
            })
            .collect();
        if keep.len() == st.isr.len() {
            return None;
        }
        st.pending_isr = Some(keep.clone());
        Some(keep)
    }

    /// Writes the high watermark to disk if it moved since the last checkpoint.
    pub(crate) fn checkpoint_high_watermark(&self) -> io::Result<()> {
        let hw = *self.hw.borrow();
        if self.checkpointed_hw.load(Ordering::Acquire) == hw {
            return Ok(());
        }
        crate::fsutil::write_atomically(
            &self.dir.join(HIGH_WATERMARK_FILE),
            hw.to_string().as_bytes(),
        )?;
        self.checkpointed_hw.store(hw, Ordering::Release);
        Ok(())
    }

    /// Lets the next ISR change be proposed (the previous one was answered or failed).
    pub(crate) fn clear_isr_change(&self) {
        self.state().pending_isr = None;
    }

    /// Applies this partition's metadata. A new leader epoch resets follower progress; a
    /// leadership gained records its epoch in the log's epoch cache and raises the HW.
    pub(super) fn apply_metadata(
        &self,
        p: &PartitionImage,
        config: LogConfig,
        now_ms: i64,
    ) -> io::Result<()> {
        {
            let mut log = self.lock_log();
            if *log.config() != config {
                log.set_config(config);
            }
        }
        self.apply_replica_state(p, now_ms);
        if self.is_leader() {
            let leo = {
                let mut log = self.lock_log();
                log.start_leader_epoch(p.leader_epoch)?;
                log.log_end_offset()
            };
            self.advance_high_watermark(leo);
        }
        Ok(())
    }

    fn apply_replica_state(&self, p: &PartitionImage, now_ms: i64) {
        let mut st = self.state();
        let new_epoch = st.leader_epoch != p.leader_epoch || st.leader != p.leader;
        if new_epoch {
            st.followers.clear();
            st.leader_since_ms = now_ms;
        }
        if st.partition_epoch != p.partition_epoch || new_epoch {
            st.pending_isr = None;
        }
        st.leader = p.leader;
        st.leader_epoch = p.leader_epoch;
        st.partition_epoch = p.partition_epoch;
        st.replicas = p.replicas.clone();
        st.isr = p.isr.clone();
        drop(st);
        if new_epoch {
            // Wakes writes waiting for their commit: they belong to the previous leadership.
            self.hw.send_modify(|_| {});
        }
    }
}

mod cleaning;
mod storage;
