//! A coordinator whose state lives in an internal topic: `__consumer_offsets` for consumer
//! groups today, `__transaction_state` for transactions next. The coordinator of a key is the
//! leader of the partition the key hashes to; this piece is what every such coordinator shares.
//!
//! * [`shards`]: which partitions of the topic this node coordinates, in which leader epoch,
//!   and whether their state is loaded.
//! * [`InternalTopic`]: the topic's replicas on this node — the leaderships to follow, the
//!   records to replay at load, and writes.
//!
//! # Invariants
//! * A partition's state is served only while this node leads it, in the leader epoch it was
//!   loaded in. Before the load finishes requests get COORDINATOR_LOAD_IN_PROGRESS; once the
//!   leadership is lost the state is dropped and waiters are answered NOT_COORDINATOR.
//! * A write is appended synchronously, under the caller's state lock, in the epoch its
//!   decision was made in; so records of one key reach the log in the order they were decided.
//!   It is acknowledged (and its effect applied) only once the high watermark covers it, by the
//!   leadership that appended it: what a coordinator answers is what its successor loads.
//! * A load reads the partition to its log end: a new leader's log is the committed log plus,
//!   at most, records its leadership will commit.

pub(crate) mod shards;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::records::{Compression, RecordBatchDecoder};

pub(crate) use self::shards::{Placement, Shards, partition_for};
use crate::clock::now_ms;
use crate::log::{AppendError, ReadError};
use crate::replica::{CommitWait, LeaderAppendError, Partition, PendingFlush, ReplicaManager};
use crate::types::{LeaderEpoch, Offset};

/// How much of the log one load step reads.
const LOAD_READ_BYTES: usize = 1024 * 1024;

/// Why a write to an internal topic failed; each coordinator maps it to its API's codes.
#[derive(Debug, thiserror::Error)]
pub(crate) enum WriteError {
    #[error("this node no longer leads the partition in the epoch the write was decided in")]
    NotLeader,
    #[error("the ISR has {isr} replicas, min.insync.replicas is {min_isr}")]
    NotEnoughReplicas { isr: i32, min_isr: i32 },
    #[error("the in-sync replicas did not confirm the write in time")]
    TimedOut,
    #[error("the write was refused: {0}")]
    Append(AppendError),
    #[error("the records cannot be encoded: {0}")]
    Encode(String),
}

/// One stored record, in log order.
#[derive(Debug, Clone)]
pub(crate) struct StoredRecord {
    pub(crate) key: Bytes,
    /// `None` is a tombstone.
    pub(crate) value: Option<Bytes>,
    pub(crate) offset: i64,
    /// The producer of a transactional record (a TxnOffsetCommit), else -1: it takes effect
    /// only once that producer's COMMIT marker follows.
    pub(crate) producer_id: i64,
    /// For a transaction marker (key and value empty): whether it commits.
    pub(crate) marker: Option<bool>,
}

/// An internal topic's replicas on this node.
pub(crate) struct InternalTopic {
    name: &'static str,
    replicas: Arc<ReplicaManager>,
    /// How long a write waits for the ISR (`offsets.commit.timeout.ms`, ...).
    commit_timeout: Duration,
    /// The codec of the batches it writes (`offsets.topic.compression.codec`, ...).
    compression: Compression,
}

impl InternalTopic {
    pub(crate) fn new(
        name: &'static str,
        replicas: Arc<ReplicaManager>,
        commit_timeout: Duration,
        compression: Compression,
    ) -> Self {
        InternalTopic { name, replicas, commit_timeout, compression }
    }

    /// The partitions among the first `count` that this node leads, with their epochs.
    pub(crate) fn led_partitions(&self, count: i32) -> BTreeMap<i32, LeaderEpoch> {
        (0..count)
            .filter_map(|p| {
                let part = self.replicas.get(self.name, p)?;
                part.epoch_if_leader().map(|epoch| (p, epoch))
            })
            .collect()
    }

    /// Appends `records` (key, value; a `None` value is a tombstone) as one batch while this
    /// node still leads the partition in `at.epoch`. Synchronous: call it under the state lock
    /// that decided the records, then await [`PendingWrite::committed`] without the lock.
    pub(crate) fn append(
        &self,
        at: Placement,
        records: Vec<(Bytes, Option<Bytes>)>,
    ) -> Result<PendingWrite, WriteError> {
        let pairs: Vec<(Option<Bytes>, Option<Bytes>)> =
            records.into_iter().map(|(k, v)| (Some(k), v)).collect();
        let now = now_ms();
        let batch = crate::client::records::encode_batch(&pairs, now, self.compression)
            .map_err(|e| WriteError::Encode(e.to_string()))?;
        self.append_batch(at, &batch, now)
    }

    /// As [`append`](Self::append), as one transactional batch of `producer`'s (id, epoch):
    /// the records count once the producer's COMMIT marker lands on the partition.
    pub(crate) fn append_transactional(
        &self,
        at: Placement,
        records: Vec<(Bytes, Option<Bytes>)>,
        producer: (i64, i16),
    ) -> Result<PendingWrite, WriteError> {
        let now = now_ms();
        let recs: Vec<kafka_protocol::records::Record> = records
            .into_iter()
            .enumerate()
            .map(|(i, (k, v))| {
                let mut r = crate::client::records::new_record(i, Some(k), v, now, None);
                r.transactional = true;
                r.producer_id = producer.0;
                r.producer_epoch = producer.1;
                r.sequence = -1;
                r
            })
            .collect();
        let batch = crate::client::records::encode_records(&recs, self.compression)
            .map_err(|e| WriteError::Encode(e.to_string()))?;
        self.append_batch(at, &batch, now)
    }

    fn append_batch(
        &self,
        at: Placement,
        batch: &[u8],
        now: i64,
    ) -> Result<PendingWrite, WriteError> {
        let part = self.replicas.get(self.name, at.partition).ok_or(WriteError::NotLeader)?;
        let appended = part.append_in_epoch(batch, at.epoch, now).map_err(|e| match e {
            LeaderAppendError::NotLeader => WriteError::NotLeader,
            LeaderAppendError::NotEnoughReplicas { isr, min_isr } => {
                WriteError::NotEnoughReplicas { isr, min_isr }
            }
            LeaderAppendError::Append(e) => WriteError::Append(e),
        })?;
        Ok(PendingWrite {
            part,
            epoch: at.epoch,
            base_offset: appended.outcome.base_offset.0,
            target: appended.outcome.last_offset.0 + 1,
            flush: appended.flush,
            deadline: tokio::time::Instant::now() + self.commit_timeout,
        })
    }

    /// Every record of `partition`'s local replica, log start to log end. Blocking. Batches
    /// that cannot be decoded end the load there (they cannot be ours); records without a key
    /// are skipped; transaction markers come as records with `marker` set.
    pub(crate) fn read_all(&self, partition: i32) -> Result<Vec<StoredRecord>, ReadError> {
        let Some(part) = self.replicas.get(self.name, partition) else { return Ok(Vec::new()) };
        let offsets = part.offsets();
        let (mut next, end) = (offsets.log_start_offset, offsets.log_end_offset);
        let mut out = Vec::new();
        while next < end {
            let mut chunk = part.read_to_log_end(next, LOAD_READ_BYTES)?;
            if chunk.is_empty() {
                break;
            }
            let batches = match RecordBatchDecoder::decode_all(&mut chunk) {
                Ok(b) => b,
                Err(e) => {
                    tracing::warn!(partition = %part.tp, offset = %next, error = %e,
                        "undecodable batch in an internal topic; stopping the load here");
                    break;
                }
            };
            let before = next;
            for r in batches.into_iter().flat_map(|set| set.records) {
                next = Offset(next.0.max(r.offset + 1));
                let producer_id = if r.transactional { r.producer_id } else { -1 };
                match (r.control, r.key) {
                    (true, Some(key)) if r.transactional => out.push(StoredRecord {
                        marker: Some(key.get(..4) == Some(&[0, 0, 0, 1][..])),
                        key: Bytes::new(),
                        value: None,
                        offset: r.offset,
                        producer_id,
                    }),
                    (false, Some(key)) => out.push(StoredRecord {
                        key,
                        value: r.value,
                        offset: r.offset,
                        producer_id,
                        marker: None,
                    }),
                    _ => {}
                }
            }
            if next == before {
                break;
            }
        }
        Ok(out)
    }

    /// Reads `at`'s records on a blocking thread and hands them to `install` (which checks the
    /// placement is still current before using them).
    pub(crate) fn load<F>(self: &Arc<Self>, at: Placement, install: F)
    where
        F: FnOnce(Vec<StoredRecord>, Duration) + Send + 'static,
    {
        let topic = self.clone();
        tokio::spawn(async move {
            let started = std::time::Instant::now();
            let read = tokio::task::spawn_blocking({
                let topic = topic.clone();
                move || topic.read_all(at.partition)
            })
            .await;
            match read {
                Ok(Ok(records)) => install(records, started.elapsed()),
                Ok(Err(e)) => tracing::error!(topic = topic.name, partition = at.partition,
                    error = %e, "cannot load the coordinator state of a partition"),
                Err(e) => tracing::error!(topic = topic.name, partition = at.partition,
                    error = %e, "coordinator load panicked"),
            }
        });
    }
}

/// A write appended to the leader's log, not yet acknowledged by the ISR.
#[derive(Debug)]
pub(crate) struct PendingWrite {
    part: Arc<Partition>,
    epoch: LeaderEpoch,
    base_offset: i64,
    /// One past the write's last offset: the high watermark that commits it.
    target: i64,
    /// The fsync to wait for first, when the write reached the topic's `flush.messages`.
    flush: Option<PendingFlush>,
    deadline: tokio::time::Instant,
}

impl PendingWrite {
    /// Waits until the leadership that appended the write commits it; returns its first
    /// offset.
    pub(crate) async fn committed(self) -> Result<i64, WriteError> {
        if let Some(flush) = self.flush {
            flush.wait().await.map_err(|e| WriteError::Append(AppendError::Io(e)))?;
        }
        match self.part.wait_for_commit(self.target, self.epoch, self.deadline).await {
            Ok(()) => Ok(self.base_offset),
            Err(CommitWait::NotLeader) => Err(WriteError::NotLeader),
            Err(CommitWait::TimedOut) => Err(WriteError::TimedOut),
        }
    }
}
