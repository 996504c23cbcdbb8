//! DeleteGroups (key 42): removes empty groups with their committed offsets, by writing
//! tombstones. A group with members gets NON_EMPTY_GROUP, an unknown one GROUP_ID_NOT_FOUND.

use std::sync::Arc;

use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::{DeleteGroupsRequest, DeleteGroupsResponse};

use crate::broker::Broker;
use crate::kafka::router::Versions;

pub(crate) const VERSIONS: Versions = Versions::new(0, 2);

pub(crate) async fn handle(
    broker: &Arc<Broker>,
    _version: i16,
    request: DeleteGroupsRequest,
) -> Option<DeleteGroupsResponse> {
    let mut r = DeleteGroupsResponse::default();
    for id in &request.groups_names {
        let code = broker.groups.delete_group(&id.0).await;
        let mut g = DeletableGroupResult::default();
        g.group_id = id.clone();
        g.error_code = code.code();
        r.results.push(g);
    }
    Some(r)
}
