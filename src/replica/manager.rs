//! The replicas this broker hosts, and the reconciler that turns metadata into local actions:
//! a partition assigned to this node gets a log, a deleted topic's logs are removed, config
//! changes reach the logs. Reconciliations run one at a time; a replica that cannot be opened
//! does not hold the others up.

use std::collections::HashMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use uuid::Uuid;

use super::partition::{HIGH_WATERMARK_FILE, Partition};
use crate::config::broker::BrokerConfig;
use crate::error_code::ErrorCode;
use crate::log::{LogConfig, PartitionLog};
use crate::metadata::image::{MetadataImage, PartitionImage};
use crate::types::{NodeId, TopicPartition};

/// The file holding the topic id a replica directory belongs to (Kafka's name and format).
const PARTITION_METADATA_FILE: &str = "partition.metadata";

/// Every replica hosted by this broker.
pub(crate) struct ReplicaManager {
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
pub(crate) struct ReconcileFailures(pub(crate) Vec<(String, io::Error)>);

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
pub(crate) enum Missing {
    /// This broker does not host it (or the metadata has not reached it yet).
    NotHosted,
    /// It should, but the replica could not be opened; the error says why.
    Offline(String),
}

impl Missing {
    /// The Kafka error for a request to this partition: `not_hosted` (the API's own code for
    /// an unknown partition) or KAFKA_STORAGE_ERROR for a replica that could not be opened.
    pub(crate) fn code(&self, not_hosted: ErrorCode) -> ErrorCode {
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
    pub(crate) fn new(node_id: NodeId, data_dir: PathBuf) -> Self {
        ReplicaManager {
            node_id,
            data_dir,
            partitions: RwLock::new(HashMap::new()),
            reconcile_lock: Mutex::new(()),
            offline: Mutex::new(HashMap::new()),
        }
    }

    pub(crate) fn get(&self, topic: &str, partition: i32) -> Option<Arc<Partition>> {
        let map = self.partitions.read().unwrap_or_else(|p| p.into_inner());
        map.get(&TopicPartition::new(topic, partition)).cloned()
    }

    /// The replica serving `topic`-`partition`, or why there is none.
    pub(crate) fn lookup(&self, topic: &str, partition: i32) -> Result<Arc<Partition>, Missing> {
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
    pub(crate) fn has_offline(&self) -> bool {
        !self.offline.lock().unwrap_or_else(|p| p.into_inner()).is_empty()
    }

    pub(crate) fn all(&self) -> Vec<Arc<Partition>> {
        let map = self.partitions.read().unwrap_or_else(|p| p.into_inner());
        map.values().cloned().collect()
    }

    /// Brings local replicas in line with `image`. Blocking (opens and recovers logs). A replica
    /// that fails (a full disk, an unreadable directory) does not stop the others: it is listed
    /// in the error, answers KAFKA_STORAGE_ERROR until a later call succeeds, and every other
    /// replica still gets its leadership, epoch and config.
    pub(crate) fn reconcile(
        &self,
        image: &MetadataImage,
        broker: &BrokerConfig,
    ) -> Result<(), ReconcileFailures> {
        let _one_at_a_time = self.reconcile_lock.lock().unwrap_or_else(|p| p.into_inner());
        let mut wanted: HashMap<TopicPartition, (Uuid, LogConfig, &PartitionImage)> =
            HashMap::new();
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
        let wanted_dirs: std::collections::HashSet<String> =
            wanted.keys().map(TopicPartition::dir_name).collect();
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
        if let Err(e) = self.remove_strays(image, &wanted_dirs) {
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
        part.apply_metadata(p, config, crate::clock::now_ms())
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
        let part = Arc::new(Partition::new(tp.clone(), id, self.node_id, log, hw0));
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
            let dir = part.dir().to_path_buf();
            tracing::info!(partition = %tp, "deleting replica");
            drop(part);
            match fs::remove_dir_all(&dir) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
        Ok(())
    }

    /// Deletes replica directories the metadata no longer assigns here: of topics deleted
    /// while this broker was down, and of partitions moved off it (a reassignment that
    /// completed while it was down). Hosted replicas of such partitions were already removed
    /// above, and `wanted` names every directory the metadata assigns here (opened or not), so
    /// a directory deleted here is never in use.
    fn remove_strays(
        &self,
        image: &MetadataImage,
        wanted: &std::collections::HashSet<String>,
    ) -> io::Result<()> {
        let Ok(entries) = fs::read_dir(&self.data_dir) else { return Ok(()) };
        for entry in entries.flatten() {
            let dir = entry.path();
            let Some(id) = read_topic_id(&dir) else { continue };
            let why = if image.topic_by_id(&id).is_none() {
                "deleting the replica of a deleted topic"
            } else if !wanted.contains(&entry.file_name().to_string_lossy().into_owned()) {
                "deleting a replica moved off this broker"
            } else {
                continue;
            };
            tracing::info!(dir = %dir.display(), "{why}");
            fs::remove_dir_all(&dir)?;
        }
        Ok(())
    }

    /// Clean shutdown: fsyncs every log, records its recovery point and the clean-shutdown
    /// marker (the next start re-validates nothing), and checkpoints high watermarks.
    pub(crate) fn close_all(&self) {
        for part in self.all() {
            if let Err(e) = part.close_cleanly() {
                tracing::error!(partition = %part.tp, error = %e, "flush at shutdown failed");
            }
        }
        self.checkpoint_high_watermarks();
    }

    /// fsyncs the logs whose unflushed data is due (`flush.ms`, `flush.messages`).
    pub(crate) fn flush_due(&self, now_ms: i64) {
        for part in self.all() {
            if let Err(e) = part.flush_if_due(now_ms) {
                tracing::error!(partition = %part.tp, error = %e, "periodic flush failed");
            }
        }
    }

    /// Deletes segments past retention and expires idle idempotent producers, on every replica.
    pub(crate) fn enforce_retention(&self, now_ms: i64, producer_cutoff_ms: i64) {
        for part in self.all() {
            match part.enforce_retention(now_ms, producer_cutoff_ms) {
                Ok((0, _)) => {}
                Ok((n, log_start_offset)) => tracing::info!(partition = %part.tp, segments = n,
                    %log_start_offset, "retention deleted segments"),
                Err(e) => tracing::error!(partition = %part.tp, error = %e, "retention failed"),
            }
        }
    }

    /// Writes every moved high watermark to its partition directory.
    pub(crate) fn checkpoint_high_watermarks(&self) {
        for part in self.all() {
            if let Err(e) = part.checkpoint_high_watermark() {
                tracing::error!(partition = %part.tp, error = %e, "high watermark checkpoint failed");
            }
        }
    }

    /// Writes every moved recovery point (Kafka's `log.flush.offset.checkpoint.interval.ms`
    /// job), so a restart after a crash re-validates only what lies past the last flush.
    pub(crate) fn checkpoint_recovery_points(&self) {
        for part in self.all() {
            if let Err(e) = part.checkpoint_recovery_point() {
                tracing::error!(partition = %part.tp, error = %e, "recovery point checkpoint failed");
            }
        }
    }
}
