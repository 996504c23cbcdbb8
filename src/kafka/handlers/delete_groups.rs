//! DeleteGroups (key 42): removes empty groups with their committed offsets, by writing
//! tombstones. A group with members gets NON_EMPTY_GROUP, an unknown one GROUP_ID_NOT_FOUND.

use std::sync::Arc;

use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::{DeleteGroupsRequest, DeleteGroupsResponse};

use crate::broker::Broker;
use crate::error_code::ErrorCode;
use crate::kafka::handlers::Authz;
use crate::kafka::router::{RequestContext, Versions};
use crate::security::acl::{Operation, ResourceType};

pub(crate) const VERSIONS: Versions = Versions::new(0, 2);

pub(crate) async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    _version: i16,
    request: DeleteGroupsRequest,
) -> Option<DeleteGroupsResponse> {
    let mut r = DeleteGroupsResponse::default();
    let authz = Authz::new(broker, ctx);
    for id in &request.groups_names {
        let code = if authz.allows(Operation::Delete, ResourceType::Group, &id.0) {
            broker.groups.delete_group(&id.0).await
        } else {
            ErrorCode::GroupAuthorizationFailed
        };
        let mut g = DeletableGroupResult::default();
        g.group_id = id.clone();
        g.error_code = code.code();
        r.results.push(g);
    }
    Some(r)
}
