//! DescribeCluster (key 60): cluster id, controller and brokers (KIP-700).

use std::sync::Arc;

use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{BrokerId, DescribeClusterRequest, DescribeClusterResponse};

use super::{AUTHORIZED_OPERATIONS_OMITTED, sb};
use crate::broker::Broker;
use crate::kafka::router::Versions;

pub const VERSIONS: Versions = Versions::new(0, 1);

pub async fn handle(
    broker: &Arc<Broker>,
    _version: i16,
    _request: DescribeClusterRequest,
) -> Option<DescribeClusterResponse> {
    let image = broker.metadata.image();
    let mut r = DescribeClusterResponse::default();
    r.cluster_id = sb(image.cluster_id.clone().unwrap_or_default());
    r.controller_id = BrokerId(super::controller_id(broker));
    r.cluster_authorized_operations = AUTHORIZED_OPERATIONS_OMITTED;
    r.brokers = image
        .live_brokers()
        .map(|b| {
            let mut d = DescribeClusterBroker::default();
            d.broker_id = BrokerId(b.id.0);
            d.host = sb(b.host.clone());
            d.port = i32::from(b.port);
            d.rack = b.rack.clone().map(sb);
            d
        })
        .collect();
    Some(r)
}
