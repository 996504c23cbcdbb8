//! DeleteRecords (key 21, KIP-107): moves each partition's log start offset (the "low
//! watermark") up to the given offset on its leader; -1 means the high watermark. Needs DELETE
//! on the topic. An offset past the high watermark is OFFSET_OUT_OF_RANGE; a request to a
//! replica that is not the leader is NOT_LEADER_OR_FOLLOWER (the client refreshes and
//! retries). Followers adopt the leader's log start on their next fetch (within the follower
//! long-poll, 500 ms), and a restart keeps it (`log-start-offset` in the partition directory).

use std::sync::Arc;

use kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};
use kafka_protocol::messages::{DeleteRecordsRequest, DeleteRecordsResponse};

use crate::broker::Broker;
use crate::error_code::ErrorCode;
use crate::kafka::handlers::Authz;
use crate::kafka::router::{RequestContext, Versions};
use crate::security::acl::Operation;

pub(crate) const VERSIONS: Versions = Versions::new(0, 2);

pub(crate) async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    _version: i16,
    request: DeleteRecordsRequest,
) -> Option<DeleteRecordsResponse> {
    let mut response = DeleteRecordsResponse::default();
    let authz = Authz::new(broker, ctx);
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
            match result {
                Ok(low) => {
                    tracing::info!(topic = %t.name.0, partition = p.partition_index,
                        log_start_offset = %low, "records deleted (DeleteRecords)");
                    rp.low_watermark = low.0;
                }
                Err(code) => rp.error_code = code.code(),
            }
            rt.partitions.push(rp);
        }
        response.topics.push(rt);
    }
    Some(response)
}
