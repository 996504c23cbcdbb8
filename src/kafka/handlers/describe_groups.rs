//! DescribeGroups (key 15): state, protocol and members of groups this broker coordinates.
//! Member metadata and assignments are filled only while the group is Stable. A group that
//! does not exist is "Dead" before v6 and GROUP_ID_NOT_FOUND from v6, as in Kafka 4.

use std::sync::Arc;

use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::{DescribeGroupsRequest, DescribeGroupsResponse};

use super::{Authz, sb};
use crate::broker::Broker;
use crate::error_code::ErrorCode;
use crate::kafka::router::{RequestContext, Versions};
use crate::security::acl::{Operation, ResourceType};

pub(crate) const VERSIONS: Versions = Versions::new(0, 6);

pub(crate) async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    version: i16,
    request: DescribeGroupsRequest,
) -> Option<DescribeGroupsResponse> {
    let mut r = DescribeGroupsResponse::default();
    let authz = Authz::new(broker, ctx);
    for id in &request.groups {
        let mut d = DescribedGroup::default();
        d.group_id = id.clone();
        if !authz.allows_group(Operation::Describe, &id.0) {
            d.error_code = ErrorCode::GroupAuthorizationFailed.code();
            d.authorized_operations = super::AUTHORIZED_OPERATIONS_OMITTED;
            r.groups.push(d);
            continue;
        }
        d.authorized_operations =
            authz.operations(ResourceType::Group, &id.0, request.include_authorized_operations);
        match broker.groups.describe(&id.0) {
            Err(code) => d.error_code = code.code(),
            Ok(None) if version >= 6 => {
                d.error_code = ErrorCode::GroupIdNotFound.code();
                d.error_message = Some(sb(format!("Group {} not found.", id.0)));
            }
            Ok(None) => d.group_state = sb("Dead"),
            Ok(Some(g)) => {
                d.group_state = sb(g.state.name());
                d.protocol_type = sb(g.protocol_type);
                d.protocol_data = sb(g.protocol);
                d.members = g
                    .members
                    .into_iter()
                    .map(|m| {
                        let mut dm = DescribedGroupMember::default();
                        dm.member_id = sb(m.member_id);
                        if version >= 4 {
                            dm.group_instance_id = m.group_instance_id.map(sb);
                        }
                        dm.client_id = sb(m.client_id);
                        dm.client_host = sb(m.client_host);
                        dm.member_metadata = m.metadata;
                        dm.member_assignment = m.assignment;
                        dm
                    })
                    .collect();
            }
        }
        r.groups.push(d);
    }
    Some(r)
}
