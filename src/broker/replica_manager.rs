//! The replicas this broker hosts, and the reconciler that turns metadata into local actions:
//! a partition assigned to this node gets a log, a deleted topic's logs are removed, config
//! changes reach the logs. Each `PartitionLog` sits behind its own mutex; the lock is never held
//! across an `.await`.

use std::collections::HashMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use tokio::sync::watch;
use uuid::Uuid;

use crate::config::broker::BrokerConfig;
use crate::kafka::error_code::ErrorCode;
use crate::log::{AppendError, AppendOutcome, LogConfig, PartitionLog};
use crate::metadata::image::{MetadataImage, PartitionImage};
use crate::types::{LeaderEpoch, NodeId, Offset, TopicPartition};

const PARTITION_METADATA_FILE: &str = "partition.metadata";
/// The last checkpointed high watermark of a replica (Kafka's replication-offset-checkpoint,
/// per partition): consumers see the same "latest" right after a restart.
const HIGH_WATERMARK_FILE: &str = "high-watermark";

/// What this node knows of a follower's progress (leader side).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FollowerProgress {
    /// The follower's log end offset: its last fetch offset.
    pub log_end_offset: i64,
    /// When it last fetched at or beyond the leader's log end offset.
    pub caught_up_ms: i64,
}

/// Why [`Partition::append_as_leader`] refused.
#[derive(Debug)]
pub enum LeaderAppendError {
    NotLeader,
    NotEnoughReplicas { isr: i32, min_isr: i32 },
    Append(AppendError),
}

/// Why [`Partition::wait_for_commit`] gave up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommitWait {
    /// This replica no longer leads in the write's epoch: the write's fate is unknown here.
    NotLeader,
    /// The ISR did not confirm the write before the deadline.
    TimedOut,
}

/// How often a commit wait re-checks leadership even if nothing wakes it (a leadership change
/// also wakes it at once).
const LEADERSHIP_RECHECK: std::time::Duration = std::time::Duration::from_millis(250);

/// A partition's replication state on this node, from metadata plus follower fetches.
#[derive(Debug, Clone, Default)]
pub struct ReplicaState {
    pub leader: Option<NodeId>,
    pub leader_epoch: LeaderEpoch,
    pub partition_epoch: i32,
    pub replicas: Vec<NodeId>,
    pub isr: Vec<NodeId>,
    /// Leader only: each follower's progress in the current leader epoch.
    pub followers: HashMap<NodeId, FollowerProgress>,
    /// Leader only: when this leadership began (lag is measured from it for silent followers).
    pub leader_since_ms: i64,
    /// An AlterPartition is in flight; no other is sent until metadata answers.
    pub isr_change_pending: bool,
}

/// One hosted partition replica.
#[derive(Debug)]
pub struct Partition {
    pub tp: TopicPartition,
    pub topic_id: Uuid,
    local: NodeId,
    log: Mutex<PartitionLog>,
    /// Consumers read below this. Leaders advance it (only ever up) as the ISR's log end offsets
    /// grow; followers copy the leader's. acks=all waits on it.
    hw: watch::Sender<i64>,
    /// The high watermark last written to `high-watermark`.
    checkpointed_hw: std::sync::atomic::AtomicI64,
    state: Mutex<ReplicaState>,
}

impl Partition {
    /// Locks the log. Poisoning (a panic while appending) is an invariant breach: the lock is
    /// recovered, because the log's own state stays consistent between calls.
    pub fn log(&self) -> MutexGuard<'_, PartitionLog> {
        self.log.lock().unwrap_or_else(|p| p.into_inner())
    }
    fn state(&self) -> MutexGuard<'_, ReplicaState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
    /// A copy of the replication state.
    pub fn snapshot(&self) -> ReplicaState {
        self.state().clone()
    }
    pub fn high_watermark(&self) -> Offset {
        Offset(*self.hw.borrow())
    }
    pub fn subscribe_high_watermark(&self) -> watch::Receiver<i64> {
        self.hw.subscribe()
    }

    /// Leader: appends a producer's records stamped with the epoch this replica leads in, and
    /// raises the HW when the leader is alone in the ISR. With `acks_all`, refuses while the ISR
    /// is smaller than `min.insync.replicas`.
    ///
    /// Leadership and epoch are read together under the log lock. (Reading them apart once let a
    /// replica that had just become a follower stamp a write with its new leader's epoch: a
    /// divergence no epoch check sees, which left a follower out of the ISR for good. Found by
    /// the chaos suite.) A leadership that ends right after the read leaves a record of the old
    /// epoch, which followers' epoch checks truncate.
    pub fn append_as_leader(
        &self,
        records: &[u8],
        acks_all: bool,
        now_ms: i64,
    ) -> Result<(AppendOutcome, LeaderEpoch), LeaderAppendError> {
        let mut log = self.log();
        let epoch = self.epoch_if_leader().ok_or(LeaderAppendError::NotLeader)?;
        let min_isr = log.config().min_insync_replicas;
        let isr = self.isr_len();
        if acks_all && isr < min_isr {
            return Err(LeaderAppendError::NotEnoughReplicas { isr, min_isr });
        }
        let out =
            log.append_as_leader(records, epoch, now_ms).map_err(LeaderAppendError::Append)?;
        let leo = log.log_end_offset();
        drop(log);
        self.advance_high_watermark(leo);
        Ok((out, epoch))
    }

    /// The leader epoch, if this replica is the leader; both from one reading of the state.
    pub fn epoch_if_leader(&self) -> Option<LeaderEpoch> {
        let st = self.state();
        (st.leader == Some(self.local)).then_some(st.leader_epoch)
    }

    /// Whether this replica leads in `epoch` (not a later one).
    pub fn leads_in(&self, epoch: LeaderEpoch) -> bool {
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
    pub async fn wait_for_commit(
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
    pub fn leader_epoch(&self) -> LeaderEpoch {
        self.state().leader_epoch
    }
    pub fn leader(&self) -> Option<NodeId> {
        self.state().leader
    }
    pub fn is_leader(&self) -> bool {
        self.state().leader == Some(self.local)
    }
    pub fn isr_len(&self) -> i32 {
        self.state().isr.len() as i32
    }

    /// Leader: recomputes HW = min log end offset over the ISR (the leader's is `leader_leo`)
    /// and raises it if it grew. Returns the HW.
    pub fn advance_high_watermark(&self, leader_leo: Offset) -> Offset {
        let st = self.state();
        if st.leader != Some(self.local) {
            return self.high_watermark();
        }
        let min = st
            .isr
            .iter()
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
    pub fn set_follower_high_watermark(&self, leader_hw: i64, local_leo: Offset) {
        let hw = leader_hw.min(local_leo.0).max(0);
        self.hw.send_if_modified(|cur| {
            let changed = *cur != hw;
            *cur = hw;
            changed
        });
    }

    /// Leader: records a follower fetch at `fetch_offset`. Returns the ISR to propose when the
    /// follower should (re)join it: it is a replica outside the ISR whose fetch reached the HW.
    pub fn record_follower_fetch(
        &self,
        follower: NodeId,
        fetch_offset: i64,
        leader_leo: Offset,
        now_ms: i64,
    ) -> Option<Vec<NodeId>> {
        let mut st = self.state();
        let hw = *self.hw.borrow();
        let prev = st.followers.get(&follower).map_or(st.leader_since_ms, |f| f.caught_up_ms);
        let caught_up_ms = if fetch_offset >= leader_leo.0 { now_ms } else { prev };
        st.followers
            .insert(follower, FollowerProgress { log_end_offset: fetch_offset, caught_up_ms });
        let expand = !st.isr.contains(&follower)
            && st.replicas.contains(&follower)
            && fetch_offset >= hw
            && !st.isr_change_pending;
        if !expand {
            return None;
        }
        st.isr_change_pending = true;
        let mut isr = st.isr.clone();
        isr.push(follower);
        Some(isr)
    }

    /// Leader: the ISR without followers that have not caught up for `lag_max_ms`, if any must
    /// go. Never drops the leader itself.
    pub fn shrink_candidates(&self, now_ms: i64, lag_max_ms: i64) -> Option<Vec<NodeId>> {
        let mut st = self.state();
        if st.leader != Some(self.local) || st.isr_change_pending {
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
        st.isr_change_pending = true;
        Some(keep)
    }

    /// Writes the high watermark to disk if it moved since the last checkpoint.
    pub fn checkpoint_high_watermark(&self) -> io::Result<()> {
        use std::sync::atomic::Ordering;
        let hw = *self.hw.borrow();
        if self.checkpointed_hw.load(Ordering::Acquire) == hw {
            return Ok(());
        }
        let dir = self.log().dir().to_path_buf();
        crate::fsutil::write_atomically(&dir.join(HIGH_WATERMARK_FILE), hw.to_string().as_bytes())?;
        self.checkpointed_hw.store(hw, Ordering::Release);
        Ok(())
    }

    /// Lets the next ISR change be proposed (the previous one was answered or failed).
    pub fn clear_isr_change(&self) {
        self.state().isr_change_pending = false;
    }

    /// Applies this partition's metadata. A new leader epoch resets follower progress.
    fn apply_metadata(&self, p: &PartitionImage, now_ms: i64) {
        let mut st = self.state();
        let new_epoch = st.leader_epoch != p.leader_epoch || st.leader != p.leader;
        if new_epoch {
            st.followers.clear();
            st.leader_since_ms = now_ms;
        }
        if st.partition_epoch != p.partition_epoch || new_epoch {
            st.isr_change_pending = false;
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

/// Every replica hosted by this broker.
pub struct ReplicaManager {
    node_id: NodeId,
    data_dir: PathBuf,
    partitions: RwLock<HashMap<TopicPartition, Arc<Partition>>>,
    /// Serializes reconciliations: two at once could both open (or delete) the same replica.
    reconcile_lock: Mutex<()>,
    /// Replicas the last reconciliation could not open or update (a full disk, an unreadable
    /// directory), with the error. They answer KAFKA_STORAGE_ERROR, Kafka's answer for a replica
    /// in an offline log directory, and the reconciler retries them.
    offline: Mutex<HashMap<TopicPartition, String>>,
}

/// The replicas one reconciliation could not bring in line with the metadata; every other
/// replica was handled.
#[derive(Debug, thiserror::Error)]
#[error("{} replica(s) not in line with the metadata: {}", .0.len(), describe(.0))]
pub struct ReconcileFailures(pub Vec<(String, io::Error)>);

fn describe(failures: &[(String, io::Error)]) -> String {
    let shown: Vec<String> =
        failures.iter().take(FAILURES_SHOWN).map(|(what, e)| format!("{what}: {e}")).collect();
    let more = failures.len().saturating_sub(FAILURES_SHOWN);
    if more > 0 { format!("{} and {more} more", shown.join("; ")) } else { shown.join("; ") }
}

/// How many failed replicas a [`ReconcileFailures`] message names.
const FAILURES_SHOWN: usize = 5;

/// Why a partition has no replica on this broker to serve a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Missing {
    /// This broker does not host it (or the metadata has not reached it yet).
    NotHosted,
    /// It should, but the replica could not be opened; the error says why.
    Offline(String),
}

impl Missing {
    /// The Kafka error for a request to this partition: `not_hosted` (the API's own code for
    /// an unknown partition) or KAFKA_STORAGE_ERROR for a replica that could not be opened.
    pub fn code(&self, not_hosted: ErrorCode) -> ErrorCode {
        match self {
            Missing::NotHosted => not_hosted,
            Missing::Offline(_) => ErrorCode::KafkaStorageError,
        }
    }
}

fn read_topic_id(dir: &Path) -> Option<Uuid> {
    let text = fs::read_to_string(dir.join(PARTITION_METADATA_FILE)).ok()?;
    text.lines().find_map(|l| l.strip_prefix("topic_id: ")).and_then(|s| s.trim().parse().ok())
}

fn write_topic_id(dir: &Path, id: Uuid) -> io::Result<()> {
    crate::fsutil::write_atomically(
        &dir.join(PARTITION_METADATA_FILE),
        format!("version: 0\ntopic_id: {id}\n").as_bytes(),
    )
}

impl ReplicaManager {
    pub fn new(node_id: NodeId, data_dir: PathBuf) -> Self {
        ReplicaManager {
            node_id,
            data_dir,
            partitions: RwLock::new(HashMap::new()),
            reconcile_lock: Mutex::new(()),
            offline: Mutex::new(HashMap::new()),
        }
    }

    pub fn get(&self, topic: &str, partition: i32) -> Option<Arc<Partition>> {
        let map = self.partitions.read().unwrap_or_else(|p| p.into_inner());
        map.get(&TopicPartition::new(topic, partition)).cloned()
    }

    /// The replica serving `topic`-`partition`, or why there is none.
    pub fn lookup(&self, topic: &str, partition: i32) -> Result<Arc<Partition>, Missing> {
        let tp = TopicPartition::new(topic, partition);
        if let Some(part) = self.partitions.read().unwrap_or_else(|p| p.into_inner()).get(&tp) {
            return Ok(part.clone());
        }
        let offline = self.offline.lock().unwrap_or_else(|p| p.into_inner());
        match offline.get(&tp) {
            Some(reason) => Err(Missing::Offline(reason.clone())),
            None => Err(Missing::NotHosted),
        }
    }

    /// Whether the last reconciliation left replicas out (the reconciler retries them).
    pub fn has_offline(&self) -> bool {
        !self.offline.lock().unwrap_or_else(|p| p.into_inner()).is_empty()
    }

    pub fn all(&self) -> Vec<Arc<Partition>> {
        let map = self.partitions.read().unwrap_or_else(|p| p.into_inner());
        map.values().cloned().collect()
    }

    /// Brings local replicas in line with `image`. Blocking (opens and recovers logs). A replica
    /// that fails (a full disk, an unreadable directory) does not stop the others: it is listed
    /// in the error, answers KAFKA_STORAGE_ERROR until a later call succeeds, and every other
    /// replica still gets its leadership, epoch and config.
    pub fn reconcile(
        &self,
        image: &MetadataImage,
        broker: &BrokerConfig,
    ) -> Result<(), ReconcileFailures> {
        let _one_at_a_time = self.reconcile_lock.lock().unwrap_or_else(|p| p.into_inner());
        let mut wanted: HashMap<
            TopicPartition,
            (Uuid, LogConfig, &crate::metadata::image::PartitionImage),
        > = HashMap::new();
        for topic in image.topics.values() {
            let config = LogConfig::resolve(&topic.configs, broker);
            for (i, p) in topic.partitions.iter().enumerate() {
                if p.replicas.contains(&self.node_id) {
                    wanted.insert(
                        TopicPartition::new(&topic.name, i as i32),
                        (topic.id, config.clone(), p),
                    );
                }
            }
        }
        let mut failed: Vec<(TopicPartition, io::Error)> = Vec::new();
        for part in self.all() {
            match wanted.get(&part.tp) {
                Some((id, _, _)) if *id == part.topic_id => {}
                _ => {
                    if let Err(e) = self.remove(&part.tp) {
                        failed.push((part.tp.clone(), e));
                    }
                }
            }
        }
        for (tp, (id, config, p)) in wanted {
            if let Err(e) = self.reconcile_one(&tp, id, config, p) {
                failed.push((tp, e));
            }
        }
        *self.offline.lock().unwrap_or_else(|p| p.into_inner()) =
            failed.iter().map(|(tp, e)| (tp.clone(), e.to_string())).collect();
        let mut failures: Vec<(String, io::Error)> =
            failed.into_iter().map(|(tp, e)| (tp.to_string(), e)).collect();
        if let Err(e) = self.remove_strays(image) {
            failures.push(("deleted topics' directories".to_string(), e));
        }
        if failures.is_empty() { Ok(()) } else { Err(ReconcileFailures(failures)) }
    }

    /// Opens (if needed) and updates one wanted replica.
    fn reconcile_one(
        &self,
        tp: &TopicPartition,
        id: Uuid,
        config: LogConfig,
        p: &PartitionImage,
    ) -> io::Result<()> {
        let part = match self.get(&tp.topic, tp.partition.0) {
            Some(part) => part,
            None => self.open_replica(tp, id, config.clone())?,
        };
        {
            let mut log = part.log();
            if *log.config() != config {
                log.set_config(config);
            }
        }
        part.apply_metadata(p, crate::broker::now_ms());
        if part.is_leader() {
            let leo = {
                let mut log = part.log();
                log.start_leader_epoch(p.leader_epoch)?;
                log.log_end_offset()
            };
            part.advance_high_watermark(leo);
        }
        Ok(())
    }

    fn open_replica(
        &self,
        tp: &TopicPartition,
        id: Uuid,
        config: LogConfig,
    ) -> io::Result<Arc<Partition>> {
        let dir = self.data_dir.join(tp.dir_name());
        let ours = read_topic_id(&dir) == Some(id);
        if dir.exists() && !ours {
            tracing::info!(partition = %tp, "removing the replica of an older topic with the same name");
            fs::remove_dir_all(&dir)?;
        }
        // The topic id goes down first, so a replica directory is never without one. An existing
        // replica keeps its file untouched: on a full disk it still opens and serves reads.
        fs::create_dir_all(&dir)?;
        if !ours {
            write_topic_id(&dir, id)?;
        }
        let (log, report) = PartitionLog::open(&dir, config)?;
        if report.recovered.truncated_bytes > 0 || report.segments_dropped > 0 {
            tracing::warn!(partition = %tp, truncated_bytes = report.recovered.truncated_bytes,
                segments_dropped = report.segments_dropped, log_end_offset = %log.log_end_offset(),
                "recovered a damaged log tail");
        }
        // The checkpointed high watermark, never beyond what the log holds after recovery.
        let saved: i64 = fs::read_to_string(dir.join(HIGH_WATERMARK_FILE))
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0);
        let hw0 = saved.clamp(0, log.log_end_offset().0);
        let (hw, _) = watch::channel(hw0);
        let part = Arc::new(Partition {
            tp: tp.clone(),
            topic_id: id,
            local: self.node_id,
            log: Mutex::new(log),
            hw,
            checkpointed_hw: std::sync::atomic::AtomicI64::new(hw0),
            state: Mutex::new(ReplicaState::default()),
        });
        let mut map = self.partitions.write().unwrap_or_else(|p| p.into_inner());
        map.insert(tp.clone(), part.clone());
        Ok(part)
    }

    fn remove(&self, tp: &TopicPartition) -> io::Result<()> {
        let removed = {
            let mut map = self.partitions.write().unwrap_or_else(|p| p.into_inner());
            map.remove(tp)
        };
        if let Some(part) = removed {
            let dir = part.log().dir().to_path_buf();
            tracing::info!(partition = %tp, "deleting replica");
            drop(part);
            match fs::remove_dir_all(&dir) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
        Ok(())
    }

    /// Deletes replica directories of topics the metadata no longer has (deleted while down).
    /// Hosted replicas of such topics were already removed above, so a directory whose topic
    /// id is unknown to the image is never in use.
    fn remove_strays(&self, image: &MetadataImage) -> io::Result<()> {
        let Ok(entries) = fs::read_dir(&self.data_dir) else { return Ok(()) };
        for entry in entries.flatten() {
            let dir = entry.path();
            let Some(id) = read_topic_id(&dir) else { continue };
            if image.topic_by_id(&id).is_none() {
                tracing::info!(dir = %dir.display(), "deleting the replica of a deleted topic");
                fs::remove_dir_all(&dir)?;
            }
        }
        Ok(())
    }

    /// fsyncs every log and checkpoints high watermarks (clean shutdown).
    pub fn flush_all(&self) {
        for part in self.all() {
            if let Err(e) = part.log().flush() {
                tracing::error!(partition = %part.tp, error = %e, "flush failed");
            }
        }
        self.checkpoint_high_watermarks();
    }

    /// Writes every moved high watermark to its partition directory.
    pub fn checkpoint_high_watermarks(&self) {
        for part in self.all() {
            if let Err(e) = part.checkpoint_high_watermark() {
                tracing::error!(partition = %part.tp, error = %e, "high watermark checkpoint failed");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::records::encode_batch;
    use crate::metadata::commands::{MetadataCommand, apply};
    use kafka_protocol::records::Compression;

    fn image(leader: i32) -> MetadataImage {
        let mut img = MetadataImage::default();
        apply(
            &mut img,
            &MetadataCommand::CreateTopic {
                name: "t".into(),
                id: Uuid::from_u128(1),
                assignments: vec![vec![NodeId(1), NodeId(2)]],
                configs: Default::default(),
            },
        );
        apply(
            &mut img,
            &MetadataCommand::ChangePartition {
                topic: "t".into(),
                partition: 0,
                leader: Some(NodeId(leader)),
                isr: vec![NodeId(1), NodeId(2)],
            },
        );
        img
    }

    /// Moves the leadership of t-0 to `leader` (a new leader epoch), ISR both brokers.
    fn move_leader(img: &mut MetadataImage, leader: i32) {
        let other = if leader == 1 { 2 } else { 1 };
        apply(
            img,
            &MetadataCommand::ChangePartition {
                topic: "t".into(),
                partition: 0,
                leader: Some(NodeId(leader)),
                isr: vec![NodeId(leader), NodeId(other)],
            },
        );
    }

    #[test]
    fn the_high_watermark_survives_a_restart_bounded_by_the_log() {
        let dir = tempfile::tempdir().expect("tmp");
        let broker =
            BrokerConfig::dev(dir.path().to_path_buf(), "127.0.0.1:9092".parse().expect("addr"));
        {
            let rm = ReplicaManager::new(NodeId(1), dir.path().to_path_buf());
            rm.reconcile(&image(2), &broker).expect("reconcile");
            let part = rm.get("t", 0).expect("replica");
            let recs = vec![(None, Some(bytes::Bytes::from_static(b"v"))); 10];
            let batch = encode_batch(&recs, 0, Compression::None).expect("batch");
            {
                let mut log = part.log();
                let mut copy = batch.to_vec();
                crate::log::batch::assign_offset(&mut copy, Offset(0), LeaderEpoch(1));
                log.append_as_follower(&copy, 0).expect("append");
            }
            part.set_follower_high_watermark(7, Offset(10));
            rm.flush_all();
        }
        let rm = ReplicaManager::new(NodeId(1), dir.path().to_path_buf());
        rm.reconcile(&image(2), &broker).expect("reconcile");
        assert_eq!(rm.get("t", 0).expect("replica").high_watermark(), Offset(7));
    }

    /// A full disk or an unreadable directory fails one replica, not the reconciliation: the
    /// others are opened and led, the failed one answers KAFKA_STORAGE_ERROR, and a later
    /// reconciliation with the same metadata opens it once the cause is gone.
    #[test]
    fn a_replica_that_cannot_be_opened_is_offline_and_the_others_are_served() {
        let dir = tempfile::tempdir().expect("tmp");
        let broker =
            BrokerConfig::dev(dir.path().to_path_buf(), "127.0.0.1:9092".parse().expect("addr"));
        let mut img = image(1);
        apply(
            &mut img,
            &MetadataCommand::CreateTopic {
                name: "u".into(),
                id: Uuid::from_u128(2),
                assignments: vec![vec![NodeId(1)], vec![NodeId(1)]],
                configs: Default::default(),
            },
        );
        for partition in 0..2 {
            apply(
                &mut img,
                &MetadataCommand::ChangePartition {
                    topic: "u".into(),
                    partition,
                    leader: Some(NodeId(1)),
                    isr: vec![NodeId(1)],
                },
            );
        }
        // A file where u-0's directory belongs: creating the directory fails.
        let blocker = dir.path().join(TopicPartition::new("u", 0).dir_name());
        fs::write(&blocker, b"not a directory").expect("blocker");
        let rm = ReplicaManager::new(NodeId(1), dir.path().to_path_buf());

        let failures = rm.reconcile(&img, &broker).expect_err("u-0 cannot be opened");
        assert_eq!(failures.0.len(), 1, "{failures}");
        assert_eq!(failures.0[0].0, "u-0");
        assert!(rm.get("t", 0).expect("t-0").is_leader());
        assert!(rm.get("u", 1).expect("u-1").is_leader());
        let missing = rm.lookup("u", 0).expect_err("u-0 is offline");
        assert!(matches!(missing, Missing::Offline(_)), "{missing:?}");
        assert_eq!(missing.code(ErrorCode::UnknownTopicOrPartition), ErrorCode::KafkaStorageError);
        let unknown = rm.lookup("nope", 0).expect_err("not hosted");
        assert_eq!(unknown, Missing::NotHosted);
        assert_eq!(
            unknown.code(ErrorCode::UnknownTopicOrPartition),
            ErrorCode::UnknownTopicOrPartition
        );
        assert!(rm.has_offline());

        fs::remove_file(&blocker).expect("unblock");
        rm.reconcile(&img, &broker).expect("u-0 opens now");
        assert!(rm.lookup("u", 0).expect("u-0").is_leader());
        assert!(!rm.has_offline());
    }

    /// Found by the chaos suite (see [`Partition::wait_for_commit`]): a write waiting for its
    /// commit is not acknowledged by the high watermark this replica copies as a follower.
    #[tokio::test]
    async fn a_write_waiting_for_its_commit_fails_when_leadership_moves() {
        let dir = tempfile::tempdir().expect("tmp");
        let broker =
            BrokerConfig::dev(dir.path().to_path_buf(), "127.0.0.1:9092".parse().expect("addr"));
        let rm = ReplicaManager::new(NodeId(1), dir.path().to_path_buf());
        rm.reconcile(&image(1), &broker).expect("leader");
        let part = rm.get("t", 0).expect("replica");
        let epoch = part.leader_epoch();
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
        let waiter = {
            let part = part.clone();
            tokio::spawn(async move { part.wait_for_commit(5, epoch, deadline).await })
        };
        tokio::task::yield_now().await;
        // Deposed; as a follower it adopts the new leader's HW, which passes the target.
        let mut img = image(1);
        move_leader(&mut img, 2);
        rm.reconcile(&img, &broker).expect("follower");
        part.set_follower_high_watermark(10, Offset(10));
        let old_epoch = epoch;
        let outcome = tokio::time::timeout(std::time::Duration::from_secs(5), waiter)
            .await
            .expect("woken")
            .expect("joined");
        assert_eq!(outcome, Err(CommitWait::NotLeader));

        // Leading again (a later epoch): the leader's own HW acknowledges its own writes.
        move_leader(&mut img, 1);
        rm.reconcile(&img, &broker).expect("leader again");
        let epoch = part.leader_epoch();
        assert!(epoch > old_epoch, "a later epoch");
        part.set_follower_high_watermark(0, Offset(0));
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_millis(300);
        assert_eq!(part.wait_for_commit(1, epoch, deadline).await, Err(CommitWait::TimedOut));
        {
            let recs = vec![(None, Some(bytes::Bytes::from_static(b"v")))];
            let batch = encode_batch(&recs, 0, Compression::None).expect("batch");
            part.log().append_as_leader(&batch, epoch, 0).expect("append");
        }
        part.advance_high_watermark(Offset(1));
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(1);
        // ISR [1, 2]: node 2 must confirm first.
        assert_eq!(part.wait_for_commit(1, epoch, deadline).await, Err(CommitWait::TimedOut));
        part.record_follower_fetch(NodeId(2), 1, Offset(1), 0);
        part.advance_high_watermark(Offset(1));
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(1);
        assert_eq!(part.wait_for_commit(1, epoch, deadline).await, Ok(()));
    }

    /// Writes race leadership changes; every record must carry an epoch this replica led in
    /// (a record stamped with another leader's epoch is a divergence no epoch check sees).
    #[test]
    fn appends_racing_leadership_changes_carry_the_epoch_of_their_range() {
        let dir = tempfile::tempdir().expect("tmp");
        let broker =
            BrokerConfig::dev(dir.path().to_path_buf(), "127.0.0.1:9092".parse().expect("addr"));
        let rm = Arc::new(ReplicaManager::new(NodeId(1), dir.path().to_path_buf()));
        let mut img = image(1);
        rm.reconcile(&img, &broker).expect("leader");
        let part = rm.get("t", 0).expect("replica");
        let mut led = std::collections::HashSet::from([part.leader_epoch().0]);
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let writer = {
            let (part, stop) = (part.clone(), stop.clone());
            std::thread::spawn(move || {
                let recs = vec![(None, Some(bytes::Bytes::from_static(b"v")))];
                let batch = encode_batch(&recs, 0, Compression::None).expect("batch");
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let _ = part.append_as_leader(&batch, false, 0);
                }
            })
        };
        for round in 0..200 {
            let leader = if round % 2 == 0 { 2 } else { 1 };
            move_leader(&mut img, leader);
            rm.reconcile(&img, &broker).expect("reconcile");
            if leader == 1 {
                led.insert(part.leader_epoch().0);
            }
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        writer.join().expect("writer");
        let log = part.log();
        let bytes = log.read(Offset(0), log.log_end_offset(), usize::MAX, true).expect("read");
        let mut at = 0usize;
        while at + 61 <= bytes.len() {
            let base = i64::from_be_bytes(bytes[at..at + 8].try_into().expect("8"));
            let len = i32::from_be_bytes(bytes[at + 8..at + 12].try_into().expect("4")) as usize;
            let stamped = i32::from_be_bytes(bytes[at + 12..at + 16].try_into().expect("4"));
            assert!(led.contains(&stamped), "record at {base} carries epoch {stamped}, led by 2");
            let (covering, _) = log.epochs_covering(Offset(base)).expect("an epoch");
            assert_eq!(stamped, covering.0, "record at {base} outside its epoch's range");
            at += 12 + len;
        }
    }
}
