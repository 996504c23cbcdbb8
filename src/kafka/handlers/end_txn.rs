//! EndTxn (key 26): commits or aborts the producer's transaction. Answered once the Prepare
//! state is stored; the coordinator then writes the markers (a consumer with
//! `read_committed` sees the records once the markers are committed). Before v2,
//! PRODUCER_FENCED is INVALID_PRODUCER_EPOCH.

use std::sync::Arc;

use kafka_protocol::messages::{EndTxnRequest, EndTxnResponse, ProducerId};

use crate::broker::Broker;
use crate::error_code::ErrorCode;
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
    request: EndTxnRequest,
) -> Option<EndTxnResponse> {
    let mut r = EndTxnResponse::default();
    r.producer_id = ProducerId(-1);
    r.producer_epoch = -1;
    if !Authz::new(broker, ctx).allows(
        Operation::Write,
        ResourceType::TransactionalId,
        &request.transactional_id.0,
    ) {
        r.error_code = ErrorCode::TransactionalIdAuthorizationFailed.code();
        return Some(r);
    }
    let id = request.transactional_id.0.to_string();
    let ended = broker
        .txns
        .end_txn(&id, request.producer_id.0, request.producer_epoch, request.committed)
        .await;
    if let Err(c) = ended {
        r.error_code = c.fenced_for(version, FENCED_SINCE).code();
    }
    Some(r)
}
