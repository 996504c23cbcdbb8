//! WriteTxnMarkers (key 27): writes COMMIT or ABORT markers to partitions this broker leads.
//! samsa's own coordinators send markers over the inter-broker gRPC; this API is what Kafka's
//! tools use, `kafka-transactions.sh abort` (and `samsa transactions abort`) to close a hanging
//! transaction whose coordinator no longer knows it. Each marker is answered once the in-sync
//! replicas have it. Kafka restricts it to the CLUSTER_ACTION ACL; samsa has no ACLs yet
//! (issue 18), so any client may call it, like every other admin API here today.

use std::sync::Arc;

use kafka_protocol::messages::write_txn_markers_response::{
    WritableTxnMarkerPartitionResult, WritableTxnMarkerResult, WritableTxnMarkerTopicResult,
};
use kafka_protocol::messages::{WriteTxnMarkersRequest, WriteTxnMarkersResponse};

use super::topic_name;
use crate::broker::Broker;
use crate::kafka::handlers::Authz;
use crate::kafka::router::{RequestContext, Versions};
use crate::replication::pb;
use crate::security::acl::Operation;

pub(crate) const VERSIONS: Versions = Versions::new(1, 1);

pub(crate) async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    _version: i16,
    request: WriteTxnMarkersRequest,
) -> Option<WriteTxnMarkersResponse> {
    let mut r = WriteTxnMarkersResponse::default();
    let allowed = Authz::new(broker, ctx).allows_cluster(Operation::ClusterAction);
    for m in request.markers {
        let marker = pb::TxnMarker {
            producer_id: m.producer_id.0,
            producer_epoch: i32::from(m.producer_epoch),
            commit: m.transaction_result,
            coordinator_epoch: m.coordinator_epoch,
            partitions: m
                .topics
                .iter()
                .flat_map(|t| {
                    t.partition_indexes
                        .iter()
                        .map(|p| pb::MarkerPartition { topic: t.name.0.to_string(), partition: *p })
                })
                .collect(),
        };
        let written = if allowed {
            let replication = broker.replication.context();
            crate::replication::markers::write_markers(
                &broker.replicas,
                replication.markers.as_ref(),
                pb::WriteTxnMarkersRequest { markers: vec![marker] },
            )
            .await
        } else {
            // Only brokers write markers: CLUSTER_ACTION on the cluster, as Kafka checks.
            let code = crate::error_code::ErrorCode::ClusterAuthorizationFailed.code();
            pb::WriteTxnMarkersResponse {
                results: marker
                    .partitions
                    .iter()
                    .map(|p| pb::MarkerResult {
                        producer_id: marker.producer_id,
                        topic: p.topic.clone(),
                        partition: p.partition,
                        error_code: i32::from(code),
                    })
                    .collect(),
            }
        };
        let mut res = WritableTxnMarkerResult::default();
        res.producer_id = m.producer_id;
        for result in written.results {
            let mut pr = WritableTxnMarkerPartitionResult::default();
            pr.partition_index = result.partition;
            pr.error_code = result.error_code as i16;
            match res.topics.iter_mut().find(|t| t.name.0.as_str() == result.topic) {
                Some(t) => t.partitions.push(pr),
                None => {
                    let mut t = WritableTxnMarkerTopicResult::default();
                    t.name = topic_name(&result.topic);
                    t.partitions.push(pr);
                    res.topics.push(t);
                }
            }
        }
        r.markers.push(res);
    }
    Some(r)
}
