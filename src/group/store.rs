//! Writing to and loading from `__consumer_offsets`. Writes go through the partition leader's
//! log like a Produce with acks=all: the coordinator answers only once the in-sync replicas have
//! the record, so a new coordinator elected from the ISR loads every acknowledged commit.
//! Loading reads the whole local log (to its end: a new leader's log is the committed log plus,
//! at most, records that will become committed) and replays it in order.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::records::{Compression, RecordBatchDecoder};

use super::records::RecordKey;
use crate::broker::replica_manager::{CommitWait, Partition};
use crate::broker::{Broker, now_ms};
use crate::config::group::OFFSETS_TOPIC;
use crate::kafka::error_code::ErrorCode;
use crate::log::{AppendError, ReadError};
use crate::types::{LeaderEpoch, Offset};

/// How much of the log one load step reads.
const LOAD_READ_BYTES: usize = 1024 * 1024;

/// Why a write to `__consumer_offsets` failed, as the group APIs answer it (Kafka's mapping in
/// its group metadata manager).
fn write_error(e: &AppendError) -> ErrorCode {
    match e {
        AppendError::MessageTooLarge { .. } => ErrorCode::InvalidCommitOffsetSize,
        AppendError::Io(_) => ErrorCode::NotCoordinator,
        _ => ErrorCode::UnknownServerError,
    }
}

/// Appends `records` (key, value; a `None` value is a tombstone) to the group's partition while
/// this node still leads it at `epoch`, then waits for the ISR. Returns the first record's
/// offset.
pub async fn write(
    broker: &Arc<Broker>,
    partition: i32,
    epoch: LeaderEpoch,
    records: Vec<(Bytes, Option<Bytes>)>,
) -> Result<i64, ErrorCode> {
    let part = broker.replicas.get(OFFSETS_TOPIC, partition).ok_or(ErrorCode::NotCoordinator)?;
    if !part.is_leader() || part.leader_epoch() != epoch {
        return Err(ErrorCode::NotCoordinator);
    }
    let pairs: Vec<(Option<Bytes>, Option<Bytes>)> =
        records.into_iter().map(|(k, v)| (Some(k), v)).collect();
    let batch = crate::client::records::encode_batch(&pairs, now_ms(), Compression::None)
        .map_err(|_| ErrorCode::UnknownServerError)?;
    let (base, target) = {
        let mut log = part.log();
        // Checked again under the log lock, in one reading of the state (see produce.rs).
        if part.epoch_if_leader() != Some(epoch) {
            return Err(ErrorCode::NotCoordinator);
        }
        if part.isr_len() < log.config().min_insync_replicas {
            return Err(ErrorCode::CoordinatorNotAvailable);
        }
        let out = log.append_as_leader(&batch, epoch, now_ms()).map_err(|e| write_error(&e))?;
        let leo = log.log_end_offset();
        drop(log);
        part.advance_high_watermark(leo);
        (out.base_offset.0, out.last_offset.0 + 1)
    };
    broker.data_appended.notify_waiters();
    let timeout = Duration::from_millis(broker.config.group.offsets_commit_timeout_ms as u64);
    let deadline = tokio::time::Instant::now() + timeout;
    match part.wait_for_commit(target, epoch, deadline).await {
        Ok(()) => Ok(base),
        // The coordinator moved with the partition's leadership; the write's fate is unknown.
        Err(CommitWait::NotLeader) => Err(ErrorCode::NotCoordinator),
        // Kafka answers a commit the replicas did not confirm in time with this.
        Err(CommitWait::TimedOut) => Err(ErrorCode::CoordinatorNotAvailable),
    }
}

/// One stored record, in log order.
#[derive(Debug)]
pub struct Stored {
    pub key: RecordKey,
    pub value: Option<Bytes>,
    pub log_offset: i64,
}

/// Reads every record of the local replica, from its log start to its log end. Blocking.
/// Undecodable records are skipped with a warning (they cannot be ours).
pub fn read_all(part: &Partition) -> Result<Vec<Stored>, ReadError> {
    let mut out = Vec::new();
    let (mut next, end) = {
        let log = part.log();
        (log.log_start_offset(), log.log_end_offset())
    };
    while next < end {
        let mut chunk = part.log().read(next, end, LOAD_READ_BYTES, true)?;
        if chunk.is_empty() {
            break;
        }
        let batches = match RecordBatchDecoder::decode_all(&mut chunk) {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(partition = %part.tp, offset = %next, error = %e, "undecodable batch in __consumer_offsets; stopping the load here");
                break;
            }
        };
        let before = next;
        for set in batches {
            for r in set.records {
                next = Offset(next.0.max(r.offset + 1));
                if r.control {
                    continue;
                }
                let Some(key) = r.key else { continue };
                match RecordKey::decode(key) {
                    Ok(key) => out.push(Stored { key, value: r.value, log_offset: r.offset }),
                    Err(e) => {
                        tracing::warn!(partition = %part.tp, offset = r.offset, error = %e, "skipping a record of unknown format");
                    }
                }
            }
        }
        if next == before {
            break;
        }
    }
    Ok(out)
}
