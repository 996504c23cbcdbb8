//! Heartbeat (key 12): keeps a member's session alive and tells it when to rejoin
//! (REBALANCE_IN_PROGRESS), or that it was dropped (UNKNOWN_MEMBER_ID, ILLEGAL_GENERATION).

use std::sync::Arc;

use kafka_protocol::messages::{HeartbeatRequest, HeartbeatResponse};

use crate::broker::Broker;
use crate::error_code::ErrorCode;
use crate::kafka::handlers::Authz;
use crate::kafka::router::{RequestContext, Versions};
use crate::security::acl::Operation;

pub(crate) const VERSIONS: Versions = Versions::new(0, 4);

pub(crate) async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    _version: i16,
    request: HeartbeatRequest,
) -> Option<HeartbeatResponse> {
    if !Authz::new(broker, ctx).allows_group(Operation::Read, &request.group_id.0) {
        let mut refused = HeartbeatResponse::default();
        refused.error_code = ErrorCode::GroupAuthorizationFailed.code();
        return Some(refused);
    }
    let group = request.group_id.0.to_string();
    let code = if group.is_empty() {
        ErrorCode::InvalidGroupId
    } else {
        let instance = request.group_instance_id.as_ref().map(|i| i.to_string());
        broker.groups.heartbeat(
            &group,
            request.generation_id,
            &request.member_id,
            instance.as_deref(),
        )
    };
    let mut r = HeartbeatResponse::default();
    r.error_code = code.code();
    Some(r)
}
