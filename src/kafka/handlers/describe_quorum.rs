//! DescribeQuorum (key 55, KIP-595/KIP-853): the metadata quorum as `kafka-metadata-quorum`
//! shows it: leader, term (as leader epoch), commit index (as high watermark), voters and
//! observers with their log end offsets (raft indexes; known on the active controller only,
//! -1 elsewhere), and from v2 the voters' controller endpoints and directory ids (KIP-853).

use std::sync::Arc;

use kafka_protocol::messages::describe_quorum_response::{
    Listener, Node, PartitionData, ReplicaState, TopicData,
};
use kafka_protocol::messages::{BrokerId, DescribeQuorumRequest, DescribeQuorumResponse};

use super::sb;
use crate::broker::Broker;
use crate::error_code::ErrorCode;
use crate::kafka::handlers::Authz;
use crate::kafka::router::{RequestContext, Versions};
use crate::metadata::QuorumMember;
use crate::security::acl::Operation;

pub(crate) const VERSIONS: Versions = Versions::new(0, 2);

/// The name KRaft gives its metadata log; DescribeQuorum asks about partition 0 of it.
pub(crate) const METADATA_TOPIC: &str = "__cluster_metadata";

fn replica(m: &QuorumMember) -> ReplicaState {
    let mut r = ReplicaState::default();
    r.replica_id = BrokerId(m.id.0);
    // v2 (KIP-853): the voter's data directory; zero until recorded.
    r.replica_directory_id = m.directory_id.unwrap_or_default();
    r.log_end_offset = m.matched_index;
    r.last_fetch_timestamp = -1;
    r.last_caught_up_timestamp = -1;
    r
}

pub(crate) async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    version: i16,
    request: DescribeQuorumRequest,
) -> Option<DescribeQuorumResponse> {
    let q = broker.metadata.quorum();
    let mut response = DescribeQuorumResponse::default();
    if !Authz::new(broker, ctx).allows_cluster(Operation::Describe) {
        response.error_code = ErrorCode::ClusterAuthorizationFailed.code();
        response.error_message = Some(crate::kafka::handlers::sb("Cluster authorization failed."));
        return Some(response);
    }
    for t in request.topics {
        let mut td = TopicData::default();
        td.topic_name = t.topic_name.clone();
        for p in t.partitions {
            let mut pd = PartitionData::default();
            pd.partition_index = p.partition_index;
            if t.topic_name.0.as_str() != METADATA_TOPIC || p.partition_index != 0 {
                pd.error_code = ErrorCode::UnknownTopicOrPartition.code();
                td.partitions.push(pd);
                continue;
            }
            pd.leader_id = BrokerId(q.leader.map_or(-1, |l| l.0));
            pd.leader_epoch = q.term.min(i32::MAX as u64) as i32;
            pd.high_watermark = q.commit_index as i64;
            pd.current_voters = q.voters.iter().map(replica).collect();
            pd.observers = q.observers.iter().map(replica).collect();
            td.partitions.push(pd);
        }
        response.topics.push(td);
    }
    if version >= 2 {
        response.nodes = q
            .voters
            .iter()
            .map(|m| {
                let mut n = Node::default();
                n.node_id = BrokerId(m.id.0);
                if let Some((host, port)) = m.addr.rsplit_once(':') {
                    let mut l = Listener::default();
                    l.name = sb("CONTROLLER");
                    l.host = sb(host);
                    l.port = port.parse().unwrap_or(0);
                    n.listeners.push(l);
                }
                n
            })
            .collect();
    }
    Some(response)
}
