//! DescribeCluster (key 60): cluster id, controller and brokers (KIP-700); from v2 fenced
//! brokers too when asked (KIP-1073).

use std::sync::Arc;

use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{BrokerId, DescribeClusterRequest, DescribeClusterResponse};

use super::{Authz, sb};
use crate::broker::Broker;
use crate::error_code::ErrorCode;
use crate::kafka::router::{RequestContext, Versions};
use crate::security::acl::{CLUSTER_NAME, Operation, ResourceType};

pub(crate) const VERSIONS: Versions = Versions::new(0, 2);

pub(crate) async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    version: i16,
    request: DescribeClusterRequest,
) -> Option<DescribeClusterResponse> {
    let image = broker.metadata.image();
    let mut r = DescribeClusterResponse::default();
    let authz = Authz::new(broker, ctx);
    if !authz.allows_cluster(Operation::Describe) {
        r.error_code = ErrorCode::ClusterAuthorizationFailed.code();
        r.error_message = Some(sb("Cluster authorization failed."));
        return Some(r);
    }
    r.cluster_id = sb(image.cluster_id.clone().unwrap_or_default());
    r.controller_id = BrokerId(super::controller_id(broker));
    r.cluster_authorized_operations = authz.operations(
        ResourceType::Cluster,
        CLUSTER_NAME,
        request.include_cluster_authorized_operations,
    );
    let include_fenced = version >= 2 && request.include_fenced_brokers;
    r.brokers = image
        .brokers
        .values()
        .filter(|b| include_fenced || !b.fenced)
        .map(|b| {
            let mut d = DescribeClusterBroker::default();
            d.broker_id = BrokerId(b.id.0);
            let (host, port) = b.endpoint(&ctx.listener);
            d.host = sb(host);
            d.port = i32::from(port);
            d.rack = b.rack.clone().map(sb);
            if version >= 2 {
                d.is_fenced = b.fenced;
            }
            d
        })
        .collect();
    Some(r)
}
