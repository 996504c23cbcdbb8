//! Produce (key 0): validates and appends each partition's record set on the partition leader.
//! acks=1 answers after the local append, acks=all once the high watermark covers the batch (on
//! a single replica: at once, after checking `min.insync.replicas`), acks=0 sends no response.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use crate::replica::{
    Acks, CommitWait, LeaderAppend, LeaderAppendError, Missing, Partition, PendingFlush,
};

use kafka_protocol::messages::produce_response::{
    BatchIndexAndErrorMessage, PartitionProduceResponse, TopicProduceResponse,
};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse};

use super::sb;
use crate::broker::Broker;
use crate::clock::now_ms;
use crate::error_code::ErrorCode;
use crate::kafka::handlers::Authz;
use crate::kafka::router::{Reply, RequestContext, Versions};
use crate::log::AppendError;
use crate::log::batch::BatchError;
use crate::log::producer_state::ProducerError;
use crate::quota::client::QuotaKind;
use crate::replication::pb::{MarkerPartition, VerifyTxnRequest};
use crate::security::acl::{Operation, ResourceType};
use crate::types::LeaderEpoch;

pub(crate) const VERSIONS: Versions = Versions::new(3, 11);

/// Why a partition's append was refused: the code, the message, and (KIP-467) the index of the
/// record that made the batch invalid.
type Refusal = (ErrorCode, String, Option<i32>);

/// KIP-467: the record (by index in its batch) that made an append invalid, for Produce v8+.
fn record_error(e: &AppendError) -> Option<i32> {
    match e {
        AppendError::KeylessRecord { record_index }
        | AppendError::InvalidTimestamp { record_index, .. } => Some(*record_index),
        _ => None,
    }
}

/// The Kafka error code for a refused append.
pub(crate) fn error_code(e: &AppendError) -> ErrorCode {
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
        AppendError::KeylessRecord { .. } => ErrorCode::InvalidRecord,
        AppendError::InvalidTimestamp { .. } => ErrorCode::InvalidTimestamp,
        AppendError::Records(_) => ErrorCode::CorruptMessage,
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

/// A write to finish before its partition is answered: its `flush.messages` fsync, and (acks=all)
/// its commit by the leadership that appended it.
struct Waiter {
    /// Where its answer sits in the response: (topic index, partition index).
    at: (usize, usize),
    part: Arc<Partition>,
    epoch: LeaderEpoch,
    /// acks=all: the high watermark that commits the write.
    commit_target: Option<i64>,
    flush: Option<PendingFlush>,
}

pub(crate) async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    version: i16,
    request: ProduceRequest,
) -> Reply<ProduceResponse> {
    handle_refusing(broker, ctx, version, request, HashMap::new()).await
}

/// Refuses what the principal may not write: every partition when the transactional id lacks
/// WRITE (TRANSACTIONAL_ID_AUTHORIZATION_FAILED), a topic's partitions when the topic lacks
/// WRITE (TOPIC_AUTHORIZATION_FAILED).
fn authorize(authz: &Authz<'_>, request: &ProduceRequest, refused: &mut Refused) {
    let txn = request.transactional_id.as_ref().map(|t| t.0.to_string()).filter(|t| !t.is_empty());
    let txn_denied =
        txn.is_some_and(|t| !authz.allows(Operation::Write, ResourceType::TransactionalId, &t));
    for topic in &request.topic_data {
        let name = topic.name.0.to_string();
        let refusal = if txn_denied {
            Some((
                ErrorCode::TransactionalIdAuthorizationFailed,
                "Transactional Id authorization failed.",
            ))
        } else if !authz.allows_topic(Operation::Write, &name) {
            Some((ErrorCode::TopicAuthorizationFailed, "Topic authorization failed."))
        } else {
            None
        };
        if let Some((code, why)) = refusal {
            for pd in &topic.partition_data {
                refused.insert((name.clone(), pd.index), (code, why.to_string()));
            }
        }
    }
}

/// A partition refused before its append: its code and message.
pub(crate) type Refused = HashMap<(String, i32), (ErrorCode, String)>;

/// [`handle`], with partitions already refused by the caller (Produce v0–2's message sets that
/// could not be up-converted) answered with their refusal.
pub(crate) async fn handle_refusing(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    version: i16,
    request: ProduceRequest,
    mut refused: Refused,
) -> Reply<ProduceResponse> {
    authorize(&Authz::new(broker, ctx), &request, &mut refused);
    let acks = request.acks;
    let timeout_ms = request.timeout_ms;
    for (tp, code) in verify_transactions(broker, &request).await {
        let why = "the partition is not part of the producer's open transaction (KIP-890)";
        refused.entry(tp).or_insert((code, why.to_string()));
    }
    let (mut response, waits, first_error) = append_all(broker, version, request, &refused);
    if !waits.is_empty() {
        let timeout = Duration::from_millis(timeout_ms.clamp(0, PRODUCE_TIMEOUT_MS_MAX) as u64);
        let waiting = std::time::Instant::now();
        finish_writes(&mut response, version, waits, timeout).await;
        ctx.quota.idle(waiting.elapsed());
    }
    // producer_byte_rate: the whole request counts, as in Kafka; the answer says how long to
    // pause and the connection is muted for as long.
    let bandwidth = broker.quotas.record(
        &broker.metadata.image(),
        ctx.quota_client(),
        QuotaKind::Produce,
        ctx.quota.request_bytes as f64,
        now_ms(),
    );
    ctx.quota.throttle(bandwidth);
    response.throttle_time_ms =
        bandwidth.max(ctx.quota.owed_ms).clamp(0, i64::from(i32::MAX)) as i32;
    if acks != 0 {
        return Reply::Send(response);
    }
    match first_error {
        Some(why) => Reply::Close(format!("acks=0 produce failed: {why}")),
        None => Reply::Nothing,
    }
}

/// KIP-890 part 1: the partitions whose transactional records start a transaction of their
/// producer here, checked with the producer's transaction coordinator; those it does not have
/// in the open transaction are answered INVALID_TXN_STATE (a late write of a transaction that
/// already ended would otherwise open a transaction nobody ends, holding the last stable
/// offset). A coordinator that cannot answer now gets the retriable NOT_ENOUGH_REPLICAS, a
/// fenced producer INVALID_PRODUCER_EPOCH, as Kafka answers.
async fn verify_transactions(
    broker: &Arc<Broker>,
    request: &ProduceRequest,
) -> HashMap<(String, i32), ErrorCode> {
    let mut out = HashMap::new();
    let Some(txn_id) =
        request.transactional_id.as_ref().map(|t| t.0.to_string()).filter(|t| !t.is_empty())
    else {
        return out;
    };
    let mut unverified: Vec<(String, i32)> = Vec::new();
    let mut producer = None;
    for topic in &request.topic_data {
        for pd in &topic.partition_data {
            // Malformed records are the append's to refuse.
            let Some(Ok(h)) = pd.records.as_deref().map(crate::log::batch::parse_header) else {
                continue;
            };
            if !h.is_transactional() || !h.has_producer_id() {
                continue;
            }
            let Some(part) = broker.replicas.get(&topic.name.0, pd.index) else { continue };
            if !part.is_leader() || part.has_open_txn(h.producer_id) {
                continue;
            }
            producer = Some((h.producer_id.0, h.producer_epoch.0));
            unverified.push((topic.name.0.to_string(), pd.index));
        }
    }
    let Some((producer_id, epoch)) = producer else { return out };
    let request = VerifyTxnRequest {
        transactional_id: txn_id,
        producer_id,
        producer_epoch: i32::from(epoch),
        partitions: unverified
            .iter()
            .map(|(t, p)| MarkerPartition { topic: t.clone(), partition: *p })
            .collect(),
    };
    let answer = broker.verify_txn(request).await;
    if answer.error_code != 0 {
        let code = match answer.error_code {
            47 | 49 | 90 => ErrorCode::InvalidProducerEpoch,
            48 => ErrorCode::InvalidTxnState,
            _ => ErrorCode::NotEnoughReplicas,
        };
        return unverified.into_iter().map(|p| (p, code)).collect();
    }
    for r in answer.results.into_iter().filter(|r| r.error_code != 0) {
        out.insert((r.topic, r.partition), ErrorCode::InvalidTxnState);
    }
    out
}

/// Appends every partition's records; returns the response so far, the acks=all writes to wait
/// for, and the first error (an acks=0 producer is told by a closed connection).
fn append_all(
    broker: &Broker,
    version: i16,
    request: ProduceRequest,
    refused: &Refused,
) -> (ProduceResponse, Vec<Waiter>, Option<String>) {
    let acks = request.acks;
    let mut response = ProduceResponse::default();
    let mut first_error: Option<String> = None;
    let mut waits = Vec::new();
    for topic in request.topic_data {
        let name = topic.name.0.to_string();
        let mut t = TopicProduceResponse::default();
        t.name = topic.name.clone();
        for pd in topic.partition_data {
            let mut p = partition_response(pd.index);
            let appended = match refused.get(&(name.clone(), pd.index)) {
                Some((code, why)) => Err((*code, why.clone(), None)),
                None => append(broker, &name, pd.index, acks, pd.records.as_deref()),
            };
            match appended {
                Ok((appended, part)) => {
                    let out = appended.outcome;
                    let commit_target = (acks == -1).then_some(out.last_offset.0 + 1);
                    if commit_target.is_some() || appended.flush.is_some() {
                        let at = (response.responses.len(), t.partition_responses.len());
                        let epoch = appended.epoch;
                        let flush = appended.flush;
                        waits.push(Waiter { at, part, epoch, commit_target, flush });
                    }
                    p.base_offset = out.base_offset.0;
                    p.log_append_time_ms = out.log_append_time_ms;
                    if version >= 5 {
                        p.log_start_offset = out.log_start_offset.0;
                    }
                }
                Err((code, message, record_index)) => {
                    p.error_code = code.code();
                    first_error.get_or_insert_with(|| format!("{}: {message}", code.name()));
                    if version >= 8 {
                        if let Some(batch_index) = record_index {
                            let mut e = BatchIndexAndErrorMessage::default();
                            e.batch_index = batch_index;
                            e.batch_index_error_message = Some(sb(message.clone()));
                            p.record_errors.push(e);
                        }
                        p.error_message = Some(sb(message));
                    }
                }
            }
            t.partition_responses.push(p);
        }
        response.responses.push(t);
    }
    (response, waits, first_error)
}

/// Waits for each write's fsync (`flush.messages`) and, for acks=all, for its commit by the
/// leadership that appended it (up to `timeout` in all); fills in the errors of those that did
/// not finish.
async fn finish_writes(
    response: &mut ProduceResponse,
    version: i16,
    waits: Vec<Waiter>,
    timeout: Duration,
) {
    let deadline = tokio::time::Instant::now() + timeout;
    for w in waits {
        let failed = match finish_write(&w.part, w.epoch, w.commit_target, w.flush, deadline).await
        {
            Ok(()) => continue,
            Err(WriteFailed::Flush(e)) => (
                ErrorCode::KafkaStorageError,
                format!("flushing {} (flush.messages) failed: {e}", w.part.tp),
            ),
            Err(WriteFailed::Commit(CommitWait::TimedOut, target)) => (
                ErrorCode::RequestTimedOut,
                format!(
                    "the in-sync replicas did not confirm offset {} within {} ms",
                    target - 1,
                    timeout.as_millis()
                ),
            ),
            // Kafka answers a delayed produce whose leadership moved with this; the idempotent
            // producer retries it on the new leader.
            Err(WriteFailed::Commit(CommitWait::NotLeader, target)) => (
                ErrorCode::NotLeaderOrFollower,
                format!(
                    "leadership of {} moved before offset {} was committed",
                    w.part.tp,
                    target - 1
                ),
            ),
        };
        let (code, message) = failed;
        let p = &mut response.responses[w.at.0].partition_responses[w.at.1];
        p.error_code = code.code();
        if version >= 8 {
            p.error_message = Some(sb(message));
        }
    }
}

/// Why a write could not be acknowledged.
enum WriteFailed {
    Flush(std::io::Error),
    /// The commit wait's outcome and the high watermark it waited for.
    Commit(CommitWait, i64),
}

async fn finish_write(
    part: &Partition,
    epoch: LeaderEpoch,
    commit_target: Option<i64>,
    flush: Option<PendingFlush>,
    deadline: tokio::time::Instant,
) -> Result<(), WriteFailed> {
    if let Some(flush) = flush {
        flush.wait().await.map_err(WriteFailed::Flush)?;
    }
    if let Some(target) = commit_target {
        part.wait_for_commit(target, epoch, deadline)
            .await
            .map_err(|e| WriteFailed::Commit(e, target))?;
    }
    Ok(())
}

/// Upper bound on how long an acks=all produce waits, whatever `timeout_ms` says.
pub(crate) const PRODUCE_TIMEOUT_MS_MAX: i32 = 300_000;

fn append(
    broker: &Broker,
    topic: &str,
    partition: i32,
    acks: i16,
    records: Option<&[u8]>,
) -> Result<(LeaderAppend, Arc<Partition>), Refusal> {
    if !matches!(acks, -1..=1) {
        return Err((
            ErrorCode::InvalidRequiredAcks,
            format!("acks={acks} is not -1, 0 or 1"),
            None,
        ));
    }
    if topic == crate::config::group::OFFSETS_TOPIC
        || topic == crate::config::txn::TRANSACTION_STATE_TOPIC
    {
        return Err((
            ErrorCode::InvalidTopicException,
            format!("Cannot append to internal topic {topic}"),
            None,
        ));
    }
    let part = match broker.replicas.lookup(topic, partition) {
        Ok(part) => part,
        Err(Missing::NotHosted) => {
            return Err((
                ErrorCode::UnknownTopicOrPartition,
                format!("This server does not host this topic-partition: {topic}-{partition}"),
                None,
            ));
        }
        Err(Missing::Offline(reason)) => {
            return Err((
                ErrorCode::KafkaStorageError,
                format!("the replica of {topic}-{partition} cannot be opened: {reason}"),
                None,
            ));
        }
    };
    if !part.is_leader() {
        return Err((
            ErrorCode::NotLeaderOrFollower,
            format!("not the leader of {topic}-{partition}"),
            None,
        ));
    }
    let Some(records) = records else {
        return Err((ErrorCode::CorruptMessage, "the record set is null".into(), None));
    };
    let appended = part
        .append_as_leader(records, if acks == -1 { Acks::All } else { Acks::Leader }, now_ms())
        .map_err(|e| match e {
            LeaderAppendError::NotLeader => (
                ErrorCode::NotLeaderOrFollower,
                format!("not the leader of {topic}-{partition}"),
                None,
            ),
            LeaderAppendError::NotEnoughReplicas { isr, min_isr } => (
                ErrorCode::NotEnoughReplicas,
                format!("ISR has {isr} replicas, min.insync.replicas is {min_isr}"),
                None,
            ),
            LeaderAppendError::Append(e) => (error_code(&e), e.to_string(), record_error(&e)),
        })?;
    Ok((appended, part))
}
