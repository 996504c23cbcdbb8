//! InitProducerId (key 22): hands an idempotent producer a new producer id with epoch 0, from
//! this broker's block of ids (allocated through the metadata log, so ids are never reused).
//! Transactions are not implemented: a transactional id is refused with UNSUPPORTED_VERSION,
//! which clients report as "the broker does not support transactions".

use std::sync::Arc;

use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};

use crate::broker::Broker;
use crate::error_code::ErrorCode;
use crate::kafka::router::Versions;

pub(crate) const VERSIONS: Versions = Versions::new(0, 4);

pub(crate) async fn handle(
    broker: &Arc<Broker>,
    _version: i16,
    request: InitProducerIdRequest,
) -> Option<InitProducerIdResponse> {
    let mut r = InitProducerIdResponse::default();
    r.producer_id = ProducerId(-1);
    r.producer_epoch = -1;
    if request.transactional_id.as_ref().is_some_and(|t| !t.0.is_empty()) {
        r.error_code = ErrorCode::UnsupportedVersion.code();
        return Some(r);
    }
    match broker.next_producer_id().await {
        Ok(id) => {
            r.producer_id = ProducerId(id);
            r.producer_epoch = 0;
        }
        Err(e) => r.error_code = e.code.code(),
    }
    Some(r)
}
