//! LeaveGroup (key 13): members leave at once instead of waiting for their session to lapse,
//! and the group rebalances. v3+ batch members (KIP-345, by member id or instance id); earlier
//! versions carry one member id and answer its error at the top level.

use std::sync::Arc;

use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::{LeaveGroupRequest, LeaveGroupResponse};

use super::sb;
use crate::broker::Broker;
use crate::error_code::ErrorCode;
use crate::kafka::handlers::Authz;
use crate::kafka::router::{RequestContext, Versions};
use crate::security::acl::Operation;

pub(crate) const VERSIONS: Versions = Versions::new(0, 5);

pub(crate) async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    version: i16,
    request: LeaveGroupRequest,
) -> Option<LeaveGroupResponse> {
    if !Authz::new(broker, ctx).allows_group(Operation::Read, &request.group_id.0) {
        let mut refused = LeaveGroupResponse::default();
        refused.error_code = ErrorCode::GroupAuthorizationFailed.code();
        return Some(refused);
    }
    let group = request.group_id.0.to_string();
    let members: Vec<(String, Option<String>)> = if version >= 3 {
        request
            .members
            .iter()
            .map(|m| (m.member_id.to_string(), m.group_instance_id.as_ref().map(|i| i.to_string())))
            .collect()
    } else {
        vec![(request.member_id.to_string(), None)]
    };
    let mut r = LeaveGroupResponse::default();
    let result = if group.is_empty() {
        Err(ErrorCode::InvalidGroupId)
    } else {
        broker.groups.leave(&group, &members)
    };
    match result {
        Err(code) => r.error_code = code.code(),
        Ok(codes) if version >= 3 => {
            r.members = members
                .into_iter()
                .zip(codes)
                .map(|((id, instance), code)| {
                    let mut m = MemberResponse::default();
                    m.member_id = sb(id);
                    m.group_instance_id = instance.map(sb);
                    m.error_code = code.code();
                    m
                })
                .collect();
        }
        Ok(codes) => r.error_code = codes.first().copied().unwrap_or(ErrorCode::None).code(),
    }
    Some(r)
}
