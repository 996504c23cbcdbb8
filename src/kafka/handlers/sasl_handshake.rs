//! SaslHandshake (key 17) after authentication, or on a listener without SASL: Kafka answers
//! ILLEGAL_SASL_STATE (a handshake is served only while a SASL connection authenticates, in
//! `kafka::authenticate`).

use std::sync::Arc;

use kafka_protocol::messages::{SaslHandshakeRequest, SaslHandshakeResponse};

use crate::broker::Broker;
use crate::error_code::ErrorCode;
use crate::kafka::router::{RequestContext, Versions};

pub(crate) const VERSIONS: Versions = Versions::new(0, 1);

pub(crate) async fn handle(
    _broker: &Arc<Broker>,
    _ctx: &RequestContext,
    _version: i16,
    _request: SaslHandshakeRequest,
) -> Option<SaslHandshakeResponse> {
    let mut response = SaslHandshakeResponse::default();
    response.error_code = ErrorCode::IllegalSaslState.code();
    Some(response)
}
