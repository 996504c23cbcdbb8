//! OffsetCommit (key 8): stores a group's consumed positions as records in
//! `__consumer_offsets`, acknowledged once the in-sync replicas have them. Members commit with
//! their generation (checked); a standalone consumer commits with generation -1 while the
//! group has no members. v2 is the oldest version Kafka 4 still speaks.

use std::sync::Arc;

use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::{OffsetCommitRequest, OffsetCommitResponse};

use crate::broker::Broker;
use crate::clock::now_ms;
use crate::error_code::ErrorCode;
use crate::group::records::OffsetValue;
use crate::kafka::handlers::Authz;
use crate::kafka::router::{RequestContext, Versions};
use crate::security::acl::Operation;

pub(crate) const VERSIONS: Versions = Versions::new(2, 9);

pub(crate) async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    _version: i16,
    request: OffsetCommitRequest,
) -> Option<OffsetCommitResponse> {
    let group = request.group_id.0.to_string();
    let authz = Authz::new(broker, ctx);
    let group_allowed = authz.allows_group(Operation::Read, &group);
    let image = broker.metadata.image();
    let metadata_max = broker.groups.config().offset_metadata_max_bytes as usize;
    let now = now_ms();
    // Per partition: an early error, or the index of its entry.
    let mut slots: Vec<Vec<(i32, Result<usize, ErrorCode>)>> = Vec::new();
    let mut entries: Vec<(String, i32, Option<OffsetValue>)> = Vec::new();
    for t in &request.topics {
        let name = t.name.0.to_string();
        let count = image.topic(&name).map_or(0, |t| t.partitions.len() as i32);
        let topic_allowed = authz.allows_topic(Operation::Read, &name);
        let mut row = Vec::new();
        for p in &t.partitions {
            let metadata = p.committed_metadata.as_ref().map(|m| m.to_string()).unwrap_or_default();
            let slot = if !group_allowed {
                Err(ErrorCode::GroupAuthorizationFailed)
            } else if !topic_allowed {
                Err(ErrorCode::TopicAuthorizationFailed)
            } else if !(0..count).contains(&p.partition_index) {
                Err(ErrorCode::UnknownTopicOrPartition)
            } else if metadata.len() > metadata_max {
                Err(ErrorCode::OffsetMetadataTooLarge)
            } else {
                entries.push((
                    name.clone(),
                    p.partition_index,
                    Some(OffsetValue {
                        offset: p.committed_offset,
                        leader_epoch: p.committed_leader_epoch,
                        metadata,
                        commit_timestamp_ms: now,
                    }),
                ));
                Ok(entries.len() - 1)
            };
            row.push((p.partition_index, slot));
        }
        slots.push(row);
    }
    let written =
        if entries.is_empty() { Ok(()) } else { commit(broker, &group, &request, entries).await };
    let mut response = OffsetCommitResponse::default();
    for (t, row) in request.topics.iter().zip(slots) {
        let mut rt = OffsetCommitResponseTopic::default();
        rt.name = t.name.clone();
        rt.topic_id = t.topic_id;
        for (index, slot) in row {
            let mut rp = OffsetCommitResponsePartition::default();
            rp.partition_index = index;
            rp.error_code = match (slot, written) {
                (Err(code), _) | (Ok(_), Err(code)) => code.code(),
                (Ok(_), Ok(())) => ErrorCode::None.code(),
            };
            rt.partitions.push(rp);
        }
        response.topics.push(rt);
    }
    Some(response)
}

async fn commit(
    broker: &Arc<Broker>,
    group: &str,
    request: &OffsetCommitRequest,
    entries: Vec<(String, i32, Option<OffsetValue>)>,
) -> Result<(), ErrorCode> {
    let instance = request.group_instance_id.as_ref().map(|i| i.to_string());
    let generation = request.generation_id_or_member_epoch;
    broker
        .groups
        .commit_offsets(group, generation, &request.member_id, instance.as_deref(), entries)
        .await
}
