//! SaslAuthenticate (key 36) after authentication, or on a listener without SASL: Kafka answers
//! ILLEGAL_SASL_STATE (tokens are taken only while a SASL connection authenticates, in
//! `kafka::authenticate`).

use std::sync::Arc;

use kafka_protocol::messages::{SaslAuthenticateRequest, SaslAuthenticateResponse};
use kafka_protocol::protocol::StrBytes;

use crate::broker::Broker;
use crate::error_code::ErrorCode;
use crate::kafka::router::{RequestContext, Versions};

pub(crate) const VERSIONS: Versions = Versions::new(0, 2);

pub(crate) async fn handle(
    _broker: &Arc<Broker>,
    _ctx: &RequestContext,
    _version: i16,
    _request: SaslAuthenticateRequest,
) -> Option<SaslAuthenticateResponse> {
    let mut response = SaslAuthenticateResponse::default();
    response.error_code = ErrorCode::IllegalSaslState.code();
    response.error_message = Some(StrBytes::from_static_str(
        "SaslAuthenticate request received after successful authentication",
    ));
    Some(response)
}
