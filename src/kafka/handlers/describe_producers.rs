//! DescribeProducers (key 61, KIP-664): the idempotent and transactional producers a partition
//! leader knows, with their epoch, last sequence and the first offset of their open
//! transaction (-1: none); what `kafka-transactions.sh find-hanging` reads.

use std::sync::Arc;

use kafka_protocol::messages::describe_producers_response::{
    PartitionResponse, ProducerState, TopicResponse,
};
use kafka_protocol::messages::{DescribeProducersRequest, DescribeProducersResponse, ProducerId};

use crate::broker::Broker;
use crate::error_code::ErrorCode;
use crate::kafka::handlers::Authz;
use crate::kafka::router::{RequestContext, Versions};
use crate::security::acl::Operation;

pub(crate) const VERSIONS: Versions = Versions::new(0, 0);

pub(crate) async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    _version: i16,
    request: DescribeProducersRequest,
) -> Option<DescribeProducersResponse> {
    let mut r = DescribeProducersResponse::default();
    for t in &request.topics {
        let mut rt = TopicResponse::default();
        rt.name = t.name.clone();
        for &p in &t.partition_indexes {
            let mut rp = PartitionResponse::default();
            rp.partition_index = p;
            if !Authz::new(broker, ctx).allows_topic(Operation::Read, &t.name.0) {
                rp.error_code = crate::error_code::ErrorCode::TopicAuthorizationFailed.code();
                rt.partitions.push(rp);
                continue;
            }
            match broker.replicas.lookup(&t.name.0, p) {
                Ok(part) if part.is_leader() => {
                    rp.active_producers = part
                        .producers()
                        .into_iter()
                        .map(|info| {
                            let mut s = ProducerState::default();
                            s.producer_id = ProducerId(info.producer_id.0);
                            s.producer_epoch = i32::from(info.epoch.0);
                            s.last_sequence = info.last_sequence;
                            s.last_timestamp = info.last_timestamp_ms;
                            s.coordinator_epoch = info.coordinator_epoch;
                            s.current_txn_start_offset = info.txn_first_offset.map_or(-1, |o| o.0);
                            s
                        })
                        .collect();
                }
                Ok(_) => rp.error_code = ErrorCode::NotLeaderOrFollower.code(),
                Err(m) => rp.error_code = m.code(ErrorCode::UnknownTopicOrPartition).code(),
            }
            rt.partitions.push(rp);
        }
        r.topics.push(rt);
    }
    Some(r)
}
