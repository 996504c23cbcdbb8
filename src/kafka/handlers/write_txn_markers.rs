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
use crate::kafka::router::Versions;
use crate::replication::pb;

pub(crate) const VERSIONS: Versions = Versions::new(1, 1);

pub(crate) async fn handle(
    broker: &Arc<Broker>,
    _version: i16,
    request: WriteTxnMarkersRequest,
) -> Option<WriteTxnMarkersResponse> {
    let mut r = WriteTxnMarkersResponse::default();
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
        let ctx = broker.replication.context();
        let written = crate::replication::markers::write_markers(
            &broker.replicas,
            ctx.markers.as_ref(),
            pb::WriteTxnMarkersRequest { markers: vec![marker] },
        )
        .await;
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
