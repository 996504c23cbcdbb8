//! OffsetForLeaderEpoch (key 23, KIP-101/KIP-320): for a leader epoch, the largest epoch ≤ it
//! that this leader has and the offset where that epoch ended (the log end offset for the
//! current epoch). Consumers (librdkafka) use it after a leader change to validate their
//! position; a wrong answer looks like truncation to them, so it comes from the same leader-epoch
//! cache that replication truncates by. An epoch older than the whole log answers UNDEFINED
//! (-1, -1), as Kafka does.

use std::sync::Arc;

use kafka_protocol::messages::offset_for_leader_epoch_response::{
    EpochEndOffset, OffsetForLeaderTopicResult,
};
use kafka_protocol::messages::{OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse};

use super::check_leader_epoch;
use crate::broker::Broker;
use crate::error_code::ErrorCode;
use crate::kafka::handlers::Authz;
use crate::kafka::router::{RequestContext, Versions};
use crate::security::acl::Operation;
use crate::types::LeaderEpoch;

pub(crate) const VERSIONS: Versions = Versions::new(2, 4);

pub(crate) async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    _version: i16,
    request: OffsetForLeaderEpochRequest,
) -> Option<OffsetForLeaderEpochResponse> {
    let mut response = OffsetForLeaderEpochResponse::default();
    for t in request.topics {
        let name = t.topic.0.to_string();
        let mut tr = OffsetForLeaderTopicResult::default();
        tr.topic = t.topic.clone();
        for p in t.partitions {
            let mut e = EpochEndOffset::default();
            e.partition = p.partition;
            e.leader_epoch = -1;
            e.end_offset = -1;
            let looked = if Authz::new(broker, ctx).allows_topic(Operation::Describe, &name) {
                lookup(broker, &name, p.partition, p.current_leader_epoch, p.leader_epoch)
            } else {
                Err(crate::error_code::ErrorCode::TopicAuthorizationFailed)
            };
            match looked {
                Ok(Some((epoch, end))) => {
                    e.leader_epoch = epoch;
                    e.end_offset = end;
                }
                Ok(None) => {}
                Err(code) => e.error_code = code.code(),
            }
            tr.partitions.push(e);
        }
        response.topics.push(tr);
    }
    Some(response)
}

fn lookup(
    broker: &Broker,
    topic: &str,
    partition: i32,
    current_leader_epoch: i32,
    leader_epoch: i32,
) -> Result<Option<(i32, i64)>, ErrorCode> {
    let part = broker
        .replicas
        .lookup(topic, partition)
        .map_err(|m| m.code(ErrorCode::UnknownTopicOrPartition))?;
    if !part.is_leader() {
        return Err(ErrorCode::NotLeaderOrFollower);
    }
    check_leader_epoch(current_leader_epoch, part.leader_epoch())?;
    Ok(part.end_offset_for_epoch(LeaderEpoch(leader_epoch)).map(|(e, o)| (e.0, o.0)))
}
