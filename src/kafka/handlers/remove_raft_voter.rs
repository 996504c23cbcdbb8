//! RemoveRaftVoter (key 81, KIP-853): the voter with this node id *and* data directory id
//! leaves the metadata quorum's voters (a wiped voter is removed under its old directory id,
//! then added again under its new one). Needs ALTER on the cluster.

use std::sync::Arc;

use kafka_protocol::messages::{RemoveRaftVoterRequest, RemoveRaftVoterResponse};

use super::add_raft_voter::check_cluster;
use super::{Authz, sb};
use crate::broker::Broker;
use crate::controller::ControllerRequest;
use crate::error_code::{ApiError, ErrorCode};
use crate::kafka::router::{RequestContext, Versions};
use crate::security::acl::Operation;
use crate::types::NodeId;

pub(crate) const VERSIONS: Versions = Versions::new(0, 0);

pub(crate) async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    _version: i16,
    request: RemoveRaftVoterRequest,
) -> Option<RemoveRaftVoterResponse> {
    let result = if !Authz::new(broker, ctx).allows_cluster(Operation::Alter) {
        Err(ApiError::new(ErrorCode::ClusterAuthorizationFailed, "Cluster authorization failed."))
    } else {
        match check_cluster(broker, request.cluster_id.as_deref()) {
            Err(e) => Err(e),
            Ok(()) => {
                let req = ControllerRequest::RemoveVoter {
                    id: NodeId(request.voter_id),
                    directory: request.voter_directory_id,
                };
                broker.controller.execute(req).await.map(|_| ())
            }
        }
    };
    let mut response = RemoveRaftVoterResponse::default();
    if let Err(e) = result {
        response.error_code = e.code.code();
        response.error_message = Some(sb(e.message));
    }
    Some(response)
}
