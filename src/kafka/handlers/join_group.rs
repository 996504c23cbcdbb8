//! JoinGroup (key 11): a member enters the group's next generation. The answer waits until the
//! rebalance completes (every member rejoined, or the rebalance timeout passed). v4+ new
//! members first get MEMBER_ID_REQUIRED with their id (KIP-394); v5+ carry static membership
//! (KIP-345); v9 tells a rejoining static leader to skip assignment.

use std::sync::Arc;

use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::{JoinGroupRequest, JoinGroupResponse};

use super::sb;
use crate::broker::Broker;
use crate::error_code::ErrorCode;
use crate::group::member::{JoinOutcome, JoinRequest};
use crate::kafka::handlers::Authz;
use crate::kafka::router::{RequestContext, Versions};
use crate::security::acl::Operation;

pub(crate) const VERSIONS: Versions = Versions::new(0, 9);

pub(crate) async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    version: i16,
    request: JoinGroupRequest,
) -> Option<JoinGroupResponse> {
    if !Authz::new(broker, ctx).allows_group(Operation::Read, &request.group_id.0) {
        let mut refused = JoinGroupResponse::default();
        refused.error_code = ErrorCode::GroupAuthorizationFailed.code();
        return Some(refused);
    }
    let group = request.group_id.0.to_string();
    let member_id = request.member_id.to_string();
    let session_timeout_ms = request.session_timeout_ms;
    // v0 has no rebalance timeout: the session timeout serves as both.
    let rebalance_timeout_ms = if version == 0 || request.rebalance_timeout_ms <= 0 {
        session_timeout_ms
    } else {
        request.rebalance_timeout_ms
    };
    let outcome = if group.is_empty() {
        JoinOutcome::error(ErrorCode::InvalidGroupId, &member_id)
    } else {
        let req = JoinRequest {
            member_id: member_id.clone(),
            group_instance_id: request.group_instance_id.as_ref().map(|i| i.to_string()),
            client_id: ctx.client_id.clone(),
            client_host: ctx.client_host.clone(),
            session_timeout_ms,
            rebalance_timeout_ms,
            protocol_type: request.protocol_type.to_string(),
            protocols: request
                .protocols
                .iter()
                .map(|p| (p.name.to_string(), p.metadata.clone()))
                .collect(),
            require_known_member_id: version >= 4,
        };
        broker.groups.join(&group, req).await
    };
    Some(response(version, outcome))
}

fn response(version: i16, o: JoinOutcome) -> JoinGroupResponse {
    let mut r = JoinGroupResponse::default();
    r.error_code = o.error.code();
    r.generation_id = o.generation;
    if version >= 7 {
        r.protocol_type = o.protocol_type.map(sb);
        r.protocol_name = o.protocol.map(sb);
    } else {
        r.protocol_name = Some(sb(o.protocol.unwrap_or_default()));
    }
    r.leader = sb(o.leader);
    if version >= 9 {
        r.skip_assignment = o.skip_assignment;
    }
    r.member_id = sb(o.member_id);
    r.members = o
        .members
        .into_iter()
        .map(|(id, instance, metadata)| {
            let mut m = JoinGroupResponseMember::default();
            m.member_id = sb(id);
            if version >= 5 {
                m.group_instance_id = instance.map(sb);
            }
            m.metadata = metadata;
            m
        })
        .collect();
    r
}
