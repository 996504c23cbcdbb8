//! DescribeTopicPartitions (key 75, KIP-966): what Kafka 3.7+ admin clients (and the UIs built
//! on them) ask instead of Metadata to describe topics: every partition's leader, epoch,
//! replicas, ISR and offline replicas, paginated by a partition limit and a cursor. Topics come
//! sorted by name, from the cursor's topic and partition on; an all-topics request leaves out
//! what the principal may not DESCRIBE, a named topic it may not is answered
//! TOPIC_AUTHORIZATION_FAILED, an unknown one UNKNOWN_TOPIC_OR_PARTITION. samsa has no eligible
//! leader replicas (KIP-966's ELR): those lists are empty.

use std::sync::Arc;

use kafka_protocol::messages::describe_topic_partitions_response::{
    Cursor, DescribeTopicPartitionsResponsePartition, DescribeTopicPartitionsResponseTopic,
};
use kafka_protocol::messages::{DescribeTopicPartitionsRequest, DescribeTopicPartitionsResponse};

use super::{Authz, topic_name};
use crate::broker::Broker;
use crate::error_code::ErrorCode;
use crate::kafka::router::{RequestContext, Versions};
use crate::security::acl::{Operation, ResourceType};

pub(crate) const VERSIONS: Versions = Versions::new(0, 0);

/// Kafka's `max.request.partition.size.limit`: the most partitions one answer carries.
pub(crate) const PARTITIONS_PER_RESPONSE_MAX: usize = 2000;

pub(crate) async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    _version: i16,
    request: DescribeTopicPartitionsRequest,
) -> Option<DescribeTopicPartitionsResponse> {
    let authz = Authz::new(broker, ctx);
    let image = broker.metadata.image();
    let mut names: Vec<String> = if request.topics.is_empty() {
        image
            .topics
            .keys()
            .filter(|n| authz.allows_topic(Operation::Describe, n))
            .cloned()
            .collect()
    } else {
        request.topics.iter().map(|t| t.name.to_string()).collect()
    };
    names.sort();
    names.dedup();
    let (start_topic, start_partition) = match &request.cursor {
        Some(c) => (Some(c.topic_name.to_string()), c.partition_index.max(0) as usize),
        None => (None, 0),
    };
    let limit = usize::try_from(request.response_partition_limit)
        .unwrap_or(0)
        .clamp(1, PARTITIONS_PER_RESPONSE_MAX);
    let mut response = DescribeTopicPartitionsResponse::default();
    let mut carried = 0usize;
    for name in names.iter().filter(|n| start_topic.as_ref().is_none_or(|s| *n >= s)) {
        let mut t = DescribeTopicPartitionsResponseTopic::default();
        t.name = Some(topic_name(name));
        t.topic_authorized_operations = super::AUTHORIZED_OPERATIONS_OMITTED;
        if !authz.allows_topic(Operation::Describe, name) {
            t.error_code = ErrorCode::TopicAuthorizationFailed.code();
            response.topics.push(t);
            continue;
        }
        let Some(topic) = image.topic(name) else {
            t.error_code = ErrorCode::UnknownTopicOrPartition.code();
            response.topics.push(t);
            continue;
        };
        if carried >= limit {
            response.next_cursor = Some(cursor(name, 0));
            break;
        }
        let described = super::metadata::describe(&image, topic, 12);
        t.topic_id = described.topic_id;
        t.is_internal = described.is_internal;
        t.topic_authorized_operations = authz.operations(ResourceType::Topic, name, true);
        let first = if start_topic.as_deref() == Some(name.as_str()) { start_partition } else { 0 };
        for p in described.partitions.into_iter().skip(first) {
            if carried >= limit {
                response.next_cursor = Some(cursor(name, p.partition_index));
                break;
            }
            let mut out = DescribeTopicPartitionsResponsePartition::default();
            out.error_code = p.error_code;
            out.partition_index = p.partition_index;
            out.leader_id = p.leader_id;
            out.leader_epoch = p.leader_epoch;
            out.replica_nodes = p.replica_nodes;
            out.isr_nodes = p.isr_nodes;
            out.eligible_leader_replicas = Some(Vec::new());
            out.last_known_elr = Some(Vec::new());
            out.offline_replicas = p.offline_replicas;
            t.partitions.push(out);
            carried += 1;
        }
        response.topics.push(t);
        if response.next_cursor.is_some() {
            break;
        }
    }
    Some(response)
}

fn cursor(topic: &str, partition: i32) -> Cursor {
    let mut c = Cursor::default();
    c.topic_name = topic_name(topic);
    c.partition_index = partition;
    c
}
