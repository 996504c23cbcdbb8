//! SyncGroup (key 14): members collect their assignment for the generation. The leader's
//! request carries everyone's; it is written to `__consumer_offsets` (acks=all) before any
//! member is answered, so a new coordinator knows the assignment. v5+ echo the protocol type
//! and name, and a mismatch is INCONSISTENT_GROUP_PROTOCOL.

use std::sync::Arc;

use kafka_protocol::messages::{SyncGroupRequest, SyncGroupResponse};

use super::sb;
use crate::broker::Broker;
use crate::error_code::ErrorCode;
use crate::group::member::{SyncOutcome, SyncRequest};
use crate::kafka::handlers::Authz;
use crate::kafka::router::{RequestContext, Versions};
use crate::security::acl::Operation;

pub(crate) const VERSIONS: Versions = Versions::new(0, 5);

pub(crate) async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    version: i16,
    request: SyncGroupRequest,
) -> Option<SyncGroupResponse> {
    if !Authz::new(broker, ctx).allows_group(Operation::Read, &request.group_id.0) {
        let mut refused = SyncGroupResponse::default();
        refused.error_code = ErrorCode::GroupAuthorizationFailed.code();
        return Some(refused);
    }
    let group = request.group_id.0.to_string();
    let outcome = if group.is_empty() {
        SyncOutcome::error(ErrorCode::InvalidGroupId)
    } else {
        sync(broker, &group, request).await
    };
    let mut r = SyncGroupResponse::default();
    r.error_code = outcome.error.code();
    if version >= 5 {
        r.protocol_type = outcome.protocol_type.map(sb);
        r.protocol_name = outcome.protocol.map(sb);
    }
    r.assignment = outcome.assignment;
    Some(r)
}

async fn sync(broker: &Arc<Broker>, group: &str, request: SyncGroupRequest) -> SyncOutcome {
    let req = SyncRequest {
        generation: request.generation_id,
        member_id: request.member_id.to_string(),
        group_instance_id: request.group_instance_id.as_ref().map(|i| i.to_string()),
        protocol_type: request.protocol_type.as_ref().map(|p| p.to_string()),
        protocol: request.protocol_name.as_ref().map(|p| p.to_string()),
        assignments: request
            .assignments
            .into_iter()
            .map(|a| (a.member_id.to_string(), a.assignment))
            .collect(),
    };
    broker.groups.sync(group, req).await
}
