//! InitProducerId (key 22). Without a transactional id: a new idempotent producer id with epoch
//! 0, from this broker's block of ids (allocated through the metadata log, so ids are never
//! reused). With one: the transaction coordinator's answer (a new id for a new transactional
//! id, else the same id with its epoch bumped, fencing older instances; an open transaction is
//! aborted first, answered CONCURRENT_TRANSACTIONS until it is). KIP-360 (v3+): the producer
//! may name its current id and epoch. Before v4, PRODUCER_FENCED is INVALID_PRODUCER_EPOCH.

use std::sync::Arc;

use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};

use crate::broker::Broker;
use crate::error_code::ErrorCode;
use crate::kafka::handlers::Authz;
use crate::kafka::router::{RequestContext, Versions};
use crate::security::acl::{Operation, ResourceType};
use crate::txn::metadata::{InitError, ProducerIdAndEpoch};

pub(crate) const VERSIONS: Versions = Versions::new(0, 5);

/// KIP-588: the first version whose clients understand PRODUCER_FENCED.
const FENCED_SINCE: i16 = 4;

pub(crate) async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    version: i16,
    request: InitProducerIdRequest,
) -> Option<InitProducerIdResponse> {
    let mut r = InitProducerIdResponse::default();
    r.producer_id = ProducerId(-1);
    r.producer_epoch = -1;
    let txn_id = request.transactional_id.as_ref().map(|t| t.0.to_string());
    let authz = Authz::new(broker, ctx);
    let result = match txn_id.filter(|t| !t.is_empty()) {
        // KIP-679: an idempotent producer needs IDEMPOTENT_WRITE on the cluster or WRITE on
        // some topic.
        None if !authz.allows_cluster(Operation::IdempotentWrite)
            && !authz.allows_any(Operation::Write, ResourceType::Topic) =>
        {
            Err(ErrorCode::ClusterAuthorizationFailed)
        }
        None => broker.next_producer_id().await.map(|id| (id, 0)).map_err(|e| e.code),
        Some(id) if !authz.allows(Operation::Write, ResourceType::TransactionalId, &id) => {
            Err(ErrorCode::TransactionalIdAuthorizationFailed)
        }
        Some(id) => transactional(broker, &id, &request).await,
    };
    match result {
        Ok((id, epoch)) => {
            r.producer_id = ProducerId(id);
            r.producer_epoch = epoch;
        }
        Err(code) => r.error_code = code.fenced_for(version, FENCED_SINCE).code(),
    }
    Some(r)
}

async fn transactional(
    broker: &Arc<Broker>,
    id: &str,
    request: &InitProducerIdRequest,
) -> Result<(i64, i16), ErrorCode> {
    let claimed =
        ProducerIdAndEpoch { producer_id: request.producer_id.0, epoch: request.producer_epoch };
    let timeout = request.transaction_timeout_ms;
    let first = broker.txns.init_producer_id(id, timeout, claimed, None).await;
    match first {
        Ok(r) => Ok(r),
        Err(InitError::NeedProducerId) => {
            let fresh = broker.next_producer_id().await.map_err(|e| e.code)?;
            match broker.txns.init_producer_id(id, timeout, claimed, Some(fresh)).await {
                Ok(r) => Ok(r),
                // Another request created the id meanwhile: the producer retries.
                Err(InitError::NeedProducerId) => Err(ErrorCode::ConcurrentTransactions),
                Err(InitError::Code(c)) => Err(c),
            }
        }
        Err(InitError::Code(c)) => Err(c),
    }
}
