//! TxnOffsetCommit (key 28): a transactional producer commits its consumer's offsets to the
//! group coordinator as part of its transaction; they become the group's committed offsets
//! when the transaction commits (its marker lands on the group's `__consumer_offsets`
//! partition) and vanish if it aborts. v3+ (KIP-447) carry the member's generation and id,
//! checked as OffsetCommit checks them. Before v3, PRODUCER_FENCED is INVALID_PRODUCER_EPOCH.

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
use crate::kafka::router::Versions;

pub(crate) const VERSIONS: Versions = Versions::new(0, 4);

/// KIP-588: the first version whose clients understand PRODUCER_FENCED.
const FENCED_SINCE: i16 = 3;

pub(crate) async fn handle(
    broker: &Arc<Broker>,
    version: i16,
    request: TxnOffsetCommitRequest,
) -> Option<TxnOffsetCommitResponse> {
    let group = request.group_id.0.to_string();
    let now = now_ms();
    let max_metadata = broker.groups.config().offset_metadata_max_bytes as usize;
    let mut entries = Vec::new();
    let mut too_large = Vec::new();
    for t in &request.topics {
        for p in &t.partitions {
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
            rp.error_code = if too_large.contains(&(t.name.0.to_string(), p.partition_index)) {
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
