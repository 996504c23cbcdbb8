//! ListPartitionReassignments (key 46, KIP-455): the ongoing reassignments, of every partition
//! (null topics) or of the named ones, from this broker's metadata image. Needs DESCRIBE on the
//! cluster. A partition that is not being reassigned (or does not exist) is left out, as Kafka
//! does.

use std::sync::Arc;

use kafka_protocol::messages::list_partition_reassignments_response::{
    OngoingPartitionReassignment, OngoingTopicReassignment,
};
use kafka_protocol::messages::{
    BrokerId, ListPartitionReassignmentsRequest, ListPartitionReassignmentsResponse,
};

use super::{Authz, sb, topic_name};
use crate::broker::Broker;
use crate::error_code::ErrorCode;
use crate::kafka::router::{RequestContext, Versions};
use crate::metadata::reassign;
use crate::security::acl::Operation;
use crate::types::NodeId;

pub(crate) const VERSIONS: Versions = Versions::new(0, 0);

fn ids(nodes: &[NodeId]) -> Vec<BrokerId> {
    nodes.iter().map(|n| BrokerId(n.0)).collect()
}

pub(crate) async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    _version: i16,
    request: ListPartitionReassignmentsRequest,
) -> Option<ListPartitionReassignmentsResponse> {
    let mut response = ListPartitionReassignmentsResponse::default();
    if !Authz::new(broker, ctx).allows_cluster(Operation::Describe) {
        response.error_code = ErrorCode::ClusterAuthorizationFailed.code();
        response.error_message = Some(sb("Cluster authorization failed."));
        return Some(response);
    }
    let only: Option<Vec<(String, Vec<i32>)>> = request
        .topics
        .as_ref()
        .map(|ts| ts.iter().map(|t| (t.name.to_string(), t.partition_indexes.clone())).collect());
    let image = broker.metadata.image();
    for o in reassign::ongoing(&image, only.as_deref()) {
        let mut p = OngoingPartitionReassignment::default();
        p.partition_index = o.partition;
        p.replicas = ids(&o.replicas);
        p.adding_replicas = ids(&o.adding);
        p.removing_replicas = ids(&o.removing);
        match response.topics.iter_mut().find(|t| t.name.as_str() == o.topic) {
            Some(t) => t.partitions.push(p),
            None => {
                let mut t = OngoingTopicReassignment::default();
                t.name = topic_name(&o.topic);
                t.partitions.push(p);
                response.topics.push(t);
            }
        }
    }
    Some(response)
}
