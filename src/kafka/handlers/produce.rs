//! Produce (key 0): validates and appends each partition's record set on the partition leader.
//! acks=1 answers after the local append, acks=all once the high watermark covers the batch (on
//! a single replica: at once, after checking `min.insync.replicas`), acks=0 sends no response.

use std::sync::Arc;
use std::time::Duration;

use crate::broker::replica_manager::Partition;

use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse};

use super::sb;
use crate::broker::{Broker, now_ms};
use crate::kafka::error_code::ErrorCode;
use crate::kafka::router::{Reply, Versions};
use crate::log::batch::BatchError;
use crate::log::producer_state::ProducerError;
use crate::log::{AppendError, AppendOutcome};

pub const VERSIONS: Versions = Versions::new(3, 11);

/// The Kafka error code for a refused append.
pub fn error_code(e: &AppendError) -> ErrorCode {
    match e {
        AppendError::Batch(BatchError::UnsupportedMagic(_)) => {
            ErrorCode::UnsupportedForMessageFormat
        }
        AppendError::Batch(BatchError::InvalidRecord(_)) => ErrorCode::InvalidRecord,
        AppendError::Batch(_) => ErrorCode::CorruptMessage,
        AppendError::MessageTooLarge { .. } => ErrorCode::MessageTooLarge,
        AppendError::Producer(ProducerError::InvalidProducerEpoch { .. }) => {
            ErrorCode::InvalidProducerEpoch
        }
        AppendError::Producer(ProducerError::OutOfOrderSequence { .. }) => {
            ErrorCode::OutOfOrderSequenceNumber
        }
        AppendError::Transactional => ErrorCode::InvalidTxnState,
        AppendError::OffsetMismatch { .. } => ErrorCode::UnknownServerError,
        AppendError::Io(_) => ErrorCode::KafkaStorageError,
    }
}

fn partition_response(index: i32) -> PartitionProduceResponse {
    let mut p = PartitionProduceResponse::default();
    p.index = index;
    p.base_offset = -1;
    p.log_append_time_ms = -1;
    p.log_start_offset = -1;
    p
}

pub async fn handle(
    broker: &Arc<Broker>,
    version: i16,
    request: ProduceRequest,
) -> Reply<ProduceResponse> {
    let acks = request.acks;
    let mut response = ProduceResponse::default();
    let mut appended = false;
    let mut first_error: Option<String> = None;
    // acks=all: (topic index, partition index, partition, offset the HW must reach).
    let mut waits = Vec::new();
    for topic in request.topic_data {
        let name = topic.name.0.to_string();
        let mut t = TopicProduceResponse::default();
        t.name = topic.name.clone();
        for pd in topic.partition_data {
            let mut p = partition_response(pd.index);
            let result = append(broker, &name, pd.index, acks, pd.records.as_deref());
            match result {
                Ok((out, part)) => {
                    if acks == -1 {
                        let at = (response.responses.len(), t.partition_responses.len());
                        waits.push((at, part, out.last_offset.0 + 1));
                    }
                    p.base_offset = out.base_offset.0;
                    p.log_append_time_ms = out.log_append_time_ms;
                    if version >= 5 {
                        p.log_start_offset = out.log_start_offset.0;
                    }
                    appended |= !out.duplicate;
                }
                Err((code, message)) => {
                    p.error_code = code.code();
                    first_error.get_or_insert_with(|| format!("{}: {message}", code.name()));
                    if version >= 8 {
                        p.error_message = Some(sb(message));
                    }
                }
            }
            t.partition_responses.push(p);
        }
        response.responses.push(t);
    }
    if appended {
        broker.data_appended.notify_waiters();
    }
    if !waits.is_empty() {
        let timeout =
            Duration::from_millis(request.timeout_ms.clamp(0, PRODUCE_TIMEOUT_MS_MAX) as u64);
        let deadline = tokio::time::Instant::now() + timeout;
        for ((ti, pi), part, target) in waits {
            let mut hw = part.subscribe_high_watermark();
            let reached = tokio::time::timeout_at(deadline, hw.wait_for(|h| *h >= target)).await;
            if !matches!(reached, Ok(Ok(_))) {
                let p = &mut response.responses[ti].partition_responses[pi];
                p.error_code = ErrorCode::RequestTimedOut.code();
                if version >= 8 {
                    p.error_message = Some(sb(format!(
                        "the in-sync replicas did not confirm offset {} within {} ms",
                        target - 1,
                        timeout.as_millis()
                    )));
                }
            }
        }
    }
    if acks != 0 {
        return Reply::Send(response);
    }
    match first_error {
        Some(why) => Reply::Close(format!("acks=0 produce failed: {why}")),
        None => Reply::Nothing,
    }
}

/// Upper bound on how long an acks=all produce waits, whatever `timeout_ms` says.
pub const PRODUCE_TIMEOUT_MS_MAX: i32 = 300_000;

fn append(
    broker: &Broker,
    topic: &str,
    partition: i32,
    acks: i16,
    records: Option<&[u8]>,
) -> Result<(AppendOutcome, Arc<Partition>), (ErrorCode, String)> {
    if !matches!(acks, -1..=1) {
        return Err((ErrorCode::InvalidRequiredAcks, format!("acks={acks} is not -1, 0 or 1")));
    }
    if topic == crate::config::group::OFFSETS_TOPIC {
        return Err((
            ErrorCode::InvalidTopicException,
            format!("Cannot append to internal topic {topic}"),
        ));
    }
    let Some(part) = broker.replicas.get(topic, partition) else {
        return Err((
            ErrorCode::UnknownTopicOrPartition,
            format!("This server does not host this topic-partition: {topic}-{partition}"),
        ));
    };
    if !part.is_leader() {
        return Err((
            ErrorCode::NotLeaderOrFollower,
            format!("not the leader of {topic}-{partition}"),
        ));
    }
    let Some(records) = records else {
        return Err((ErrorCode::CorruptMessage, "the record set is null".into()));
    };
    let mut log = part.log();
    let min_isr = log.config().min_insync_replicas;
    if acks == -1 && part.isr_len() < min_isr {
        return Err((
            ErrorCode::NotEnoughReplicas,
            format!("ISR has {} replicas, min.insync.replicas is {min_isr}", part.isr_len()),
        ));
    }
    let out = log
        .append_as_leader(records, part.leader_epoch(), now_ms())
        .map_err(|e| (error_code(&e), e.to_string()))?;
    let leo = log.log_end_offset();
    drop(log);
    // With the leader alone in the ISR this moves the HW at once; otherwise followers' fetches do.
    part.advance_high_watermark(leo);
    Ok((out, part))
}
