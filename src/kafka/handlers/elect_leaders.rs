//! ElectLeaders (key 43, KIP-183/KIP-460): PREFERRED or UNCLEAN leader elections for the named
//! partitions or (null) every partition. Needs ALTER on the cluster. Decided by the controller
//! (see `metadata::elect`); an unknown election type is INVALID_REQUEST for the whole request.

use std::sync::Arc;

use kafka_protocol::messages::elect_leaders_response::{PartitionResult, ReplicaElectionResult};
use kafka_protocol::messages::{ElectLeadersRequest, ElectLeadersResponse};

use super::{Authz, apply_metadata_now, sb, topic_name};
use crate::broker::Broker;
use crate::controller::{ControllerReply, ControllerRequest};
use crate::error_code::{ApiError, ErrorCode};
use crate::kafka::router::{RequestContext, Versions};
use crate::metadata::elect::ElectionType;
use crate::security::acl::Operation;

pub(crate) const VERSIONS: Versions = Versions::new(0, 2);

/// Every named partition answered with one error (authorization, an unreachable controller).
fn refuse_all(request: &ElectLeadersRequest, response: &mut ElectLeadersResponse, e: &ApiError) {
    response.error_code = e.code.code();
    for t in request.topic_partitions.iter().flatten() {
        let mut r = ReplicaElectionResult::default();
        r.topic = t.topic.clone();
        for p in &t.partitions {
            let mut pr = PartitionResult::default();
            pr.partition_id = *p;
            pr.error_code = e.code.code();
            pr.error_message = Some(sb(e.message.clone()));
            r.partition_result.push(pr);
        }
        response.replica_election_results.push(r);
    }
}

pub(crate) async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    version: i16,
    request: ElectLeadersRequest,
) -> Option<ElectLeadersResponse> {
    let mut response = ElectLeadersResponse::default();
    if !Authz::new(broker, ctx).allows_cluster(Operation::Alter) {
        let e =
            ApiError::new(ErrorCode::ClusterAuthorizationFailed, "Cluster authorization failed.");
        refuse_all(&request, &mut response, &e);
        return Some(response);
    }
    // v0 has no election type: it is always a preferred election.
    let kind = if version == 0 {
        Some(ElectionType::Preferred)
    } else {
        ElectionType::from_wire(request.election_type)
    };
    let Some(kind) = kind else {
        let e = ApiError::new(
            ErrorCode::InvalidRequest,
            format!("Unknown election type {}", request.election_type),
        );
        refuse_all(&request, &mut response, &e);
        return Some(response);
    };
    let partitions: Option<Vec<(String, i32)>> = request.topic_partitions.as_ref().map(|ts| {
        ts.iter().flat_map(|t| t.partitions.iter().map(|p| (t.topic.to_string(), *p))).collect()
    });
    let reply =
        broker.controller.execute(ControllerRequest::ElectLeaders { kind, partitions }).await;
    let results = match reply {
        Ok(ControllerReply::PartitionResults { results }) => results,
        Ok(other) => {
            let e = ApiError::new(
                ErrorCode::UnknownServerError,
                format!("unexpected controller reply {other:?}"),
            );
            refuse_all(&request, &mut response, &e);
            return Some(response);
        }
        Err(e) => {
            refuse_all(&request, &mut response, &e);
            return Some(response);
        }
    };
    if results.iter().any(|(_, _, e)| e.is_none()) {
        apply_metadata_now(broker).await;
    }
    for (topic, index, error) in results {
        let mut pr = PartitionResult::default();
        pr.partition_id = index;
        if let Some(e) = error {
            pr.error_code = e.code.code();
            pr.error_message = Some(sb(e.message));
        }
        match response.replica_election_results.iter_mut().find(|r| r.topic.as_str() == topic) {
            Some(r) => r.partition_result.push(pr),
            None => {
                let mut r = ReplicaElectionResult::default();
                r.topic = topic_name(&topic);
                r.partition_result.push(pr);
                response.replica_election_results.push(r);
            }
        }
    }
    Some(response)
}
