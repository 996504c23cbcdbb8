//! TxnOffsetCommit (key 28): a transactional producer commits its consumer's offsets to the
//! group coordinator as part of its transaction; they become the group's committed offsets
//! when the transaction commits (its marker lands on the group's `__consumer_offsets`
//! partition) and vanish if it aborts. v3+ (KIP-447) carry the member's generation and id,
//! checked as OffsetCommit checks them. Before v3, PRODUCER_FENCED is INVALID_PRODUCER_EPOCH.
//!
//! As Kafka: WRITE on the transactional id and READ on the group are checked first (each
//! failing every partition), then READ on each topic (TOPIC_AUTHORIZATION_FAILED for that
//! topic's partitions); partitions of unknown topics get UNKNOWN_TOPIC_OR_PARTITION. Only the
//! partitions that pass are committed.

use std::sync::Arc;

use kafka_protocol::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
use kafka_protocol::messages::{TxnOffsetCommitRequest, TxnOffsetCommitResponse};

use crate::broker::Broker;
use crate::clock::now_ms;
use crate::error_code::ErrorCode;
use crate::group::records::OffsetValue;
use crate::group::txn_offsets::TxnCommitter;
use crate::kafka::handlers::Authz;
use crate::kafka::router::{RequestContext, Versions};
use crate::security::acl::{Operation, ResourceType};

pub(crate) const VERSIONS: Versions = Versions::new(0, 4);

/// KIP-588: the first version whose clients understand PRODUCER_FENCED.
const FENCED_SINCE: i16 = 3;

pub(crate) async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    version: i16,
    request: TxnOffsetCommitRequest,
) -> Option<TxnOffsetCommitResponse> {
    let group = request.group_id.0.to_string();
    let authz = Authz::new(broker, ctx);
    let everything_refused = if !authz.allows(
        Operation::Write,
        ResourceType::TransactionalId,
        &request.transactional_id.0,
    ) {
        Some(ErrorCode::TransactionalIdAuthorizationFailed)
    } else if !authz.allows_group(Operation::Read, &group) {
        Some(ErrorCode::GroupAuthorizationFailed)
    } else {
        None
    };
    let image = broker.metadata.image();
    // Partitions answered without being committed, with their error.
    let mut refused: Vec<((String, i32), ErrorCode)> = Vec::new();
    for t in &request.topics {
        let topic = image.topic(&t.name.0);
        for p in &t.partitions {
            let code = if let Some(c) = everything_refused {
                c
            } else if !authz.allows_topic(Operation::Read, &t.name.0) {
                ErrorCode::TopicAuthorizationFailed
            } else if topic.is_none_or(|tp| {
                p.partition_index < 0 || p.partition_index as usize >= tp.partitions.len()
            }) {
                ErrorCode::UnknownTopicOrPartition
            } else {
                continue;
            };
            refused.push(((t.name.0.to_string(), p.partition_index), code));
        }
    }
    let refusal_of = |topic: &str, partition: i32| {
        refused.iter().find(|((t, p), _)| t == topic && *p == partition).map(|(_, c)| *c)
    };
    let now = now_ms();
    let max_metadata = broker.groups.config().offset_metadata_max_bytes as usize;
    let mut entries = Vec::new();
    let mut too_large = Vec::new();
    for t in &request.topics {
        for p in &t.partitions {
            if refusal_of(&t.name.0, p.partition_index).is_some() {
                continue;
            }
            let metadata = p.committed_metadata.as_ref().map(|m| m.to_string()).unwrap_or_default();
            if metadata.len() > max_metadata {
                too_large.push((t.name.0.to_string(), p.partition_index));
                continue;
            }
            let value = OffsetValue {
                offset: p.committed_offset,
                leader_epoch: p.committed_leader_epoch,
                metadata,
                commit_timestamp_ms: now,
            };
            entries.push((t.name.0.to_string(), p.partition_index, Some(value)));
        }
    }
    let who = TxnCommitter {
        producer_id: request.producer_id.0,
        producer_epoch: request.producer_epoch,
        generation: if version >= 3 { request.generation_id } else { -1 },
        member_id: if version >= 3 { request.member_id.to_string() } else { String::new() },
        group_instance_id: request.group_instance_id.as_ref().map(|s| s.to_string()),
    };
    let code = if entries.is_empty() {
        ErrorCode::None
    } else {
        match broker.groups.commit_txn_offsets(&group, &who, entries).await {
            Ok(()) => ErrorCode::None,
            Err(c) => c.fenced_for(version, FENCED_SINCE),
        }
    };
    let mut r = TxnOffsetCommitResponse::default();
    for t in &request.topics {
        let mut rt = TxnOffsetCommitResponseTopic::default();
        rt.name = t.name.clone();
        for p in &t.partitions {
            let mut rp = TxnOffsetCommitResponsePartition::default();
            rp.partition_index = p.partition_index;
            rp.error_code = if let Some(c) = refusal_of(&t.name.0, p.partition_index) {
                c.code()
            } else if too_large.contains(&(t.name.0.to_string(), p.partition_index)) {
                ErrorCode::OffsetMetadataTooLarge.code()
            } else {
                code.code()
            };
            rt.partitions.push(rp);
        }
        r.topics.push(rt);
    }
    Some(r)
}
