//! DeleteRecords (key 21, KIP-107): moves each partition's log start offset (the "low
//! watermark") up to the given offset on its leader; -1 means the high watermark. Needs DELETE
//! on the topic. An offset past the high watermark is OFFSET_OUT_OF_RANGE; a request to a
//! replica that is not the leader is NOT_LEADER_OR_FOLLOWER (the client refreshes and
//! retries). Followers adopt the leader's log start on their next fetch (within the follower
//! long-poll, 500 ms) and report theirs in the fetch after; as Kafka's DelayedDeleteRecords,
//! the answer waits (up to `timeout_ms`) until every live replica's log start reached the
//! offset and carries that low watermark, else REQUEST_TIMED_OUT. A restart keeps the log
//! start (`log-start-offset` in the partition directory).

use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};
use kafka_protocol::messages::{DeleteRecordsRequest, DeleteRecordsResponse};

use crate::broker::Broker;
use crate::error_code::ErrorCode;
use crate::kafka::handlers::Authz;
use crate::kafka::router::{RequestContext, Versions};
use crate::security::acl::Operation;
use crate::types::{NodeId, Offset};

pub(crate) const VERSIONS: Versions = Versions::new(0, 2);

/// Longest DeleteRecords waits for the followers, whatever `timeout_ms` says.
const DELETE_RECORDS_WAIT_MAX: Duration = Duration::from_secs(60);
/// How often the low watermark is looked at while waiting.
const LOW_WATERMARK_POLL: Duration = Duration::from_millis(20);

/// Waits until every live replica of the partition has its log start at `low` or beyond;
/// returns the low watermark then, REQUEST_TIMED_OUT at `deadline`.
async fn replicas_reach(
    broker: &Broker,
    topic: &str,
    partition: i32,
    low: Offset,
    deadline: tokio::time::Instant,
) -> Result<Offset, ErrorCode> {
    loop {
        let part = broker
            .replicas
            .lookup(topic, partition)
            .map_err(|m| m.code(ErrorCode::NotLeaderOrFollower))?;
        let image = broker.metadata.image();
        let alive = |id: NodeId| image.brokers.get(&id).is_some_and(|b| !b.fenced);
        match part.low_watermark(alive) {
            None => return Err(ErrorCode::NotLeaderOrFollower),
            Some(w) if w >= low => return Ok(w),
            Some(_) => {}
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(ErrorCode::RequestTimedOut);
        }
        tokio::time::sleep(LOW_WATERMARK_POLL).await;
    }
}

pub(crate) async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    _version: i16,
    request: DeleteRecordsRequest,
) -> Option<DeleteRecordsResponse> {
    let mut response = DeleteRecordsResponse::default();
    let authz = Authz::new(broker, ctx);
    let wait = Duration::from_millis(request.timeout_ms.max(0) as u64).min(DELETE_RECORDS_WAIT_MAX);
    let deadline = tokio::time::Instant::now() + wait;
    for t in &request.topics {
        let mut rt = DeleteRecordsTopicResult::default();
        rt.name = t.name.clone();
        let allowed = authz.allows_topic(Operation::Delete, &t.name.0);
        for p in &t.partitions {
            let mut rp = DeleteRecordsPartitionResult::default();
            rp.partition_index = p.partition_index;
            rp.low_watermark = -1;
            let result = if !allowed {
                Err(ErrorCode::TopicAuthorizationFailed)
            } else {
                broker
                    .replicas
                    .lookup(&t.name.0, p.partition_index)
                    .map_err(|m| m.code(ErrorCode::UnknownTopicOrPartition))
                    .and_then(|part| part.delete_records_before(p.offset))
            };
            let result = match result {
                Ok(low) => {
                    tracing::info!(topic = %t.name.0, partition = p.partition_index,
                        log_start_offset = %low, "records deleted (DeleteRecords)");
                    replicas_reach(broker, &t.name.0, p.partition_index, low, deadline).await
                }
                Err(code) => Err(code),
            };
            match result {
                Ok(low) => rp.low_watermark = low.0,
                Err(code) => rp.error_code = code.code(),
            }
            rt.partitions.push(rp);
        }
        response.topics.push(rt);
    }
    Some(response)
}
