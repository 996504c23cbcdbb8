//! ListGroups (key 16): the groups this broker coordinates (clients ask every broker). v4
//! filters by state, v5 by type (samsa's groups are all "classic"). While an offsets partition
//! loads, the answer carries COORDINATOR_LOAD_IN_PROGRESS.

use std::sync::Arc;

use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::{GroupId, ListGroupsRequest, ListGroupsResponse};

use super::sb;
use crate::broker::Broker;
use crate::kafka::handlers::Authz;
use crate::kafka::router::{RequestContext, Versions};
use crate::security::acl::{Operation, ResourceType};

pub(crate) const VERSIONS: Versions = Versions::new(0, 5);

const GROUP_TYPE: &str = "classic";

pub(crate) async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    version: i16,
    request: ListGroupsRequest,
) -> Option<ListGroupsResponse> {
    let (code, groups) = broker.groups.list();
    let states: Vec<String> = request.states_filter.iter().map(|s| s.to_lowercase()).collect();
    let types: Vec<String> = request.types_filter.iter().map(|s| s.to_lowercase()).collect();
    let mut r = ListGroupsResponse::default();
    r.error_code = code.code();
    // DESCRIBE on the cluster lists every group; otherwise only the groups the principal may
    // DESCRIBE (Kafka's behaviour).
    let authz = Authz::new(broker, ctx);
    let all = authz.allows_cluster(Operation::Describe);
    r.groups = groups
        .into_iter()
        .filter(|g| all || authz.allows(Operation::Describe, ResourceType::Group, &g.group_id))
        .filter(|g| states.is_empty() || states.contains(&g.state.name().to_lowercase()))
        .filter(|_| types.is_empty() || types.iter().any(|t| t == GROUP_TYPE))
        .map(|g| {
            let mut l = ListedGroup::default();
            l.group_id = GroupId(sb(g.group_id));
            l.protocol_type = sb(g.protocol_type);
            if version >= 4 {
                l.group_state = sb(g.state.name());
            }
            if version >= 5 {
                l.group_type = sb(GROUP_TYPE);
            }
            l
        })
        .collect();
    Some(r)
}
