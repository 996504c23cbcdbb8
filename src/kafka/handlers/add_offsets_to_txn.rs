//! AddOffsetsToTxn (key 25): adds the group's `__consumer_offsets` partition to the producer's
//! transaction, before it sends TxnOffsetCommit to the group coordinator. Before v2,
//! PRODUCER_FENCED is INVALID_PRODUCER_EPOCH.

use std::sync::Arc;

use kafka_protocol::messages::{AddOffsetsToTxnRequest, AddOffsetsToTxnResponse};

use crate::broker::Broker;
use crate::config::group::OFFSETS_TOPIC;
use crate::error_code::ErrorCode;
use crate::group::records::partition_for;
use crate::kafka::handlers::Authz;
use crate::kafka::router::{RequestContext, Versions};
use crate::security::acl::{Operation, ResourceType};

pub(crate) const VERSIONS: Versions = Versions::new(0, 4);

/// KIP-588: the first version whose clients understand PRODUCER_FENCED.
const FENCED_SINCE: i16 = 2;

pub(crate) async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    version: i16,
    request: AddOffsetsToTxnRequest,
) -> Option<AddOffsetsToTxnResponse> {
    let mut r = AddOffsetsToTxnResponse::default();
    if !Authz::new(broker, ctx).allows(
        Operation::Write,
        ResourceType::TransactionalId,
        &request.transactional_id.0,
    ) {
        r.error_code = ErrorCode::TransactionalIdAuthorizationFailed.code();
        return Some(r);
    }
    if !Authz::new(broker, ctx).allows(Operation::Read, ResourceType::Group, &request.group_id.0) {
        r.error_code = ErrorCode::GroupAuthorizationFailed.code();
        return Some(r);
    }
    let image = broker.metadata.image();
    let Some(offsets) = image.topic(OFFSETS_TOPIC) else {
        r.error_code = ErrorCode::CoordinatorNotAvailable.code();
        return Some(r);
    };
    let partition = partition_for(&request.group_id.0, offsets.partitions.len() as i32);
    let id = request.transactional_id.0.to_string();
    let added = broker
        .txns
        .add_partitions(
            &id,
            request.producer_id.0,
            request.producer_epoch,
            &[(OFFSETS_TOPIC.to_string(), partition)],
        )
        .await;
    if let Err(c) = added {
        r.error_code = c.fenced_for(version, FENCED_SINCE).code();
    }
    Some(r)
}
