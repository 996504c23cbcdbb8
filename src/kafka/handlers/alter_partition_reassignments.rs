//! AlterPartitionReassignments (key 45, KIP-455): starts, replaces or cancels (null replicas)
//! partition reassignments. Needs ALTER on the cluster. The controller decides each partition
//! (see `metadata::reassign`); the answer comes once the change is in the metadata log, not
//! when the move completes: ListPartitionReassignments shows progress.

use std::sync::Arc;

use kafka_protocol::messages::alter_partition_reassignments_response::{
    ReassignablePartitionResponse, ReassignableTopicResponse,
};
use kafka_protocol::messages::{
    AlterPartitionReassignmentsRequest, AlterPartitionReassignmentsResponse,
};

use super::{Authz, apply_metadata_now, sb};
use crate::broker::Broker;
use crate::controller::{ControllerReply, ControllerRequest};
use crate::error_code::{ApiError, ErrorCode};
use crate::kafka::router::{RequestContext, Versions};
use crate::security::acl::Operation;
use crate::types::NodeId;

pub(crate) const VERSIONS: Versions = Versions::new(0, 0);

pub(crate) async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    _version: i16,
    request: AlterPartitionReassignmentsRequest,
) -> Option<AlterPartitionReassignmentsResponse> {
    let mut response = AlterPartitionReassignmentsResponse::default();
    if !Authz::new(broker, ctx).allows_cluster(Operation::Alter) {
        response.error_code = ErrorCode::ClusterAuthorizationFailed.code();
        response.error_message = Some(sb("Cluster authorization failed."));
        return Some(response);
    }
    let partitions: Vec<(String, i32, Option<Vec<NodeId>>)> = request
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions.iter().map(|p| {
                let target = p.replicas.as_ref().map(|r| r.iter().map(|b| NodeId(b.0)).collect());
                (t.name.to_string(), p.partition_index, target)
            })
        })
        .collect();
    let reply =
        broker.controller.execute(ControllerRequest::AlterReassignments { partitions }).await;
    let results = match reply {
        Ok(ControllerReply::PartitionResults { results }) => results,
        Ok(other) => {
            response.error_code = ErrorCode::UnknownServerError.code();
            response.error_message = Some(sb(format!("unexpected controller reply {other:?}")));
            return Some(response);
        }
        Err(e) => {
            response.error_code = e.code.code();
            response.error_message = Some(sb(e.message));
            return Some(response);
        }
    };
    apply_metadata_now(broker).await;
    response.responses = group_by_topic(results);
    Some(response)
}

fn group_by_topic(results: Vec<(String, i32, Option<ApiError>)>) -> Vec<ReassignableTopicResponse> {
    let mut topics: Vec<ReassignableTopicResponse> = Vec::new();
    for (topic, index, error) in results {
        let mut r = ReassignablePartitionResponse::default();
        r.partition_index = index;
        if let Some(e) = error {
            r.error_code = e.code.code();
            r.error_message = Some(sb(e.message));
        }
        match topics.iter_mut().find(|t| t.name.as_str() == topic) {
            Some(t) => t.partitions.push(r),
            None => {
                let mut t = ReassignableTopicResponse::default();
                t.name = super::topic_name(&topic);
                t.partitions.push(r);
                topics.push(t);
            }
        }
    }
    topics
}
