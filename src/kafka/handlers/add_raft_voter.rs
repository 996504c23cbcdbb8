//! AddRaftVoter (key 80, KIP-853): a controller joins the metadata quorum's voters under its
//! node id and data directory id, reached at its CONTROLLER listener; it first catches up as a
//! learner (`MetadataLog::add_voter`). Needs ALTER on the cluster.

use std::sync::Arc;

use kafka_protocol::messages::{AddRaftVoterRequest, AddRaftVoterResponse};

use super::{Authz, sb};
use crate::broker::Broker;
use crate::controller::ControllerRequest;
use crate::error_code::{ApiError, ErrorCode};
use crate::kafka::router::{RequestContext, Versions};
use crate::security::acl::Operation;
use crate::types::NodeId;

pub(crate) const VERSIONS: Versions = Versions::new(0, 0);

/// Refuses a request naming another cluster.
pub(crate) fn check_cluster(broker: &Broker, cluster_id: Option<&str>) -> Result<(), ApiError> {
    let ours = broker.metadata.image().cluster_id.clone();
    match (cluster_id, ours) {
        (Some(theirs), Some(ours)) if !theirs.is_empty() && theirs != ours => Err(ApiError::new(
            ErrorCode::InconsistentClusterId,
            format!("this is cluster {ours}, not {theirs}"),
        )),
        _ => Ok(()),
    }
}

pub(crate) async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    _version: i16,
    request: AddRaftVoterRequest,
) -> Option<AddRaftVoterResponse> {
    let result = if !Authz::new(broker, ctx).allows_cluster(Operation::Alter) {
        Err(ApiError::new(ErrorCode::ClusterAuthorizationFailed, "Cluster authorization failed."))
    } else {
        let listener = request
            .listeners
            .iter()
            .find(|l| l.name.as_str() == "CONTROLLER")
            .or(request.listeners.first());
        match (check_cluster(broker, request.cluster_id.as_deref()), listener) {
            (Err(e), _) => Err(e),
            (Ok(()), None) => Err(ApiError::new(
                ErrorCode::InvalidRequest,
                "AddRaftVoter needs the new voter's CONTROLLER listener",
            )),
            (Ok(()), Some(l)) => {
                let req = ControllerRequest::AddVoter {
                    id: NodeId(request.voter_id),
                    directory: request.voter_directory_id,
                    addr: format!("{}:{}", l.host.as_str(), l.port),
                };
                broker.controller.execute(req).await.map(|_| ())
            }
        }
    };
    let mut response = AddRaftVoterResponse::default();
    if let Err(e) = result {
        response.error_code = e.code.code();
        response.error_message = Some(sb(e.message));
    }
    Some(response)
}
