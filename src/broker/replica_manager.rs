//! The replicas this broker hosts, and the reconciler that turns metadata into local actions:
//! a partition assigned to this node gets a log, a deleted topic's logs are removed, config
//! changes reach the logs. Each `PartitionLog` sits behind its own mutex; the lock is never held
//! across an `.await`.

use std::collections::HashMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI32, AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use uuid::Uuid;

use crate::config::broker::BrokerConfig;
use crate::log::{LogConfig, PartitionLog};
use crate::metadata::image::MetadataImage;
use crate::types::{LeaderEpoch, NodeId, Offset, TopicPartition};

const PARTITION_METADATA_FILE: &str = "partition.metadata";

/// One hosted partition replica.
#[derive(Debug)]
pub struct Partition {
    pub tp: TopicPartition,
    pub topic_id: Uuid,
    log: Mutex<PartitionLog>,
    /// Consumers read below this. On a single replica it follows the log end offset.
    high_watermark: AtomicI64,
    /// The epoch of the current leadership, from metadata.
    leader_epoch: AtomicI32,
    /// Whether this node leads the partition, from metadata (1) or not (0).
    is_leader: AtomicI32,
    /// The ISR size, from metadata, for the min.insync.replicas check.
    isr_len: AtomicI32,
}

impl Partition {
    /// Locks the log. Poisoning (a panic while appending) is an invariant breach: the lock is
    /// recovered, because the log's own state stays consistent between calls.
    pub fn log(&self) -> MutexGuard<'_, PartitionLog> {
        self.log.lock().unwrap_or_else(|p| p.into_inner())
    }
    pub fn high_watermark(&self) -> Offset {
        Offset(self.high_watermark.load(Ordering::Acquire))
    }
    pub fn set_high_watermark(&self, hw: Offset) {
        self.high_watermark.fetch_max(hw.0, Ordering::AcqRel);
    }
    pub fn leader_epoch(&self) -> LeaderEpoch {
        LeaderEpoch(self.leader_epoch.load(Ordering::Acquire))
    }
    pub fn is_leader(&self) -> bool {
        self.is_leader.load(Ordering::Acquire) == 1
    }
    pub fn isr_len(&self) -> i32 {
        self.isr_len.load(Ordering::Acquire)
    }
}

/// Every replica hosted by this broker.
pub struct ReplicaManager {
    node_id: NodeId,
    data_dir: PathBuf,
    partitions: RwLock<HashMap<TopicPartition, Arc<Partition>>>,
    /// Serializes reconciliations: two at once could both open (or delete) the same replica.
    reconcile_lock: Mutex<()>,
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
        }
    }

    pub fn get(&self, topic: &str, partition: i32) -> Option<Arc<Partition>> {
        let map = self.partitions.read().unwrap_or_else(|p| p.into_inner());
        map.get(&TopicPartition::new(topic, partition)).cloned()
    }

    pub fn all(&self) -> Vec<Arc<Partition>> {
        let map = self.partitions.read().unwrap_or_else(|p| p.into_inner());
        map.values().cloned().collect()
    }

    /// Brings local replicas in line with `image`. Blocking (opens and recovers logs).
    pub fn reconcile(&self, image: &MetadataImage, broker: &BrokerConfig) -> io::Result<()> {
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
        let existing = self.all();
        for part in existing {
            match wanted.get(&part.tp) {
                Some((id, _, _)) if *id == part.topic_id => {}
                _ => self.remove(&part.tp)?,
            }
        }
        for (tp, (id, config, p)) in wanted {
            let part = match self.get(&tp.topic, tp.partition.0) {
                Some(part) => part,
                None => self.open_replica(&tp, id, config.clone())?,
            };
            {
                let mut log = part.log();
                if *log.config() != config {
                    log.set_config(config);
                }
            }
            part.leader_epoch.store(p.leader_epoch.0, Ordering::Release);
            part.is_leader.store(i32::from(p.leader == Some(self.node_id)), Ordering::Release);
            part.isr_len.store(p.isr.len() as i32, Ordering::Release);
        }
        self.remove_strays(image)
    }

    fn open_replica(
        &self,
        tp: &TopicPartition,
        id: Uuid,
        config: LogConfig,
    ) -> io::Result<Arc<Partition>> {
        let dir = self.data_dir.join(tp.dir_name());
        if dir.exists() && read_topic_id(&dir) != Some(id) {
            tracing::info!(partition = %tp, "removing the replica of an older topic with the same name");
            fs::remove_dir_all(&dir)?;
        }
        // The topic id goes down first, so a replica directory is never without one.
        fs::create_dir_all(&dir)?;
        write_topic_id(&dir, id)?;
        let (log, report) = PartitionLog::open(&dir, config)?;
        if report.recovered.truncated_bytes > 0 || report.segments_dropped > 0 {
            tracing::warn!(partition = %tp, truncated_bytes = report.recovered.truncated_bytes,
                segments_dropped = report.segments_dropped, log_end_offset = %log.log_end_offset(),
                "recovered a damaged log tail");
        }
        let leo = log.log_end_offset();
        let part = Arc::new(Partition {
            tp: tp.clone(),
            topic_id: id,
            log: Mutex::new(log),
            high_watermark: AtomicI64::new(leo.0),
            leader_epoch: AtomicI32::new(0),
            is_leader: AtomicI32::new(0),
            isr_len: AtomicI32::new(1),
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

    /// fsyncs every log (clean shutdown).
    pub fn flush_all(&self) {
        for part in self.all() {
            if let Err(e) = part.log().flush() {
                tracing::error!(partition = %part.tp, error = %e, "flush failed");
            }
        }
    }
}
