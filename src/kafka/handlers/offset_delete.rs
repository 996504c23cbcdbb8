//! OffsetDelete (key 47): removes a group's committed offsets for some partitions, by writing
//! tombstones. Refused per partition (GROUP_SUBSCRIBED_TO_TOPIC) for topics an active consumer
//! group subscribes to, and for the whole group (NON_EMPTY_GROUP) when an active group's
//! subscriptions cannot be read.

use std::sync::Arc;

use kafka_protocol::messages::offset_delete_response::{
    OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};
use kafka_protocol::messages::{OffsetDeleteRequest, OffsetDeleteResponse};

use crate::broker::Broker;
use crate::error_code::ErrorCode;
use crate::kafka::handlers::Authz;
use crate::kafka::router::{RequestContext, Versions};
use crate::security::acl::Operation;

pub(crate) const VERSIONS: Versions = Versions::new(0, 0);

pub(crate) async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    _version: i16,
    request: OffsetDeleteRequest,
) -> Option<OffsetDeleteResponse> {
    let group = request.group_id.0.to_string();
    let image = broker.metadata.image();
    let mut asked: Vec<(String, i32)> = Vec::new();
    for t in &request.topics {
        for p in &t.partitions {
            asked.push((t.name.0.to_string(), p.partition_index));
        }
    }
    let mut r = OffsetDeleteResponse::default();
    if !Authz::new(broker, ctx).allows_group(Operation::Delete, &group) {
        r.error_code = ErrorCode::GroupAuthorizationFailed.code();
        return Some(r);
    }
    let codes = match delete(broker, &group, &asked, &image).await {
        Ok(codes) => codes,
        Err(code) => {
            r.error_code = code.code();
            return Some(r);
        }
    };
    let mut codes = codes.into_iter();
    for t in &request.topics {
        let mut rt = OffsetDeleteResponseTopic::default();
        rt.name = t.name.clone();
        for p in &t.partitions {
            let mut rp = OffsetDeleteResponsePartition::default();
            rp.partition_index = p.partition_index;
            rp.error_code = codes.next().unwrap_or(ErrorCode::None).code();
            rt.partitions.push(rp);
        }
        r.topics.push(rt);
    }
    Some(r)
}

async fn delete(
    broker: &Arc<Broker>,
    group: &str,
    asked: &[(String, i32)],
    image: &crate::metadata::image::MetadataImage,
) -> Result<Vec<ErrorCode>, ErrorCode> {
    let partitions: Vec<(String, i32, bool)> = asked
        .iter()
        .map(|(topic, partition)| {
            let exists = image
                .topic(topic)
                .is_some_and(|t| (0..t.partitions.len() as i32).contains(partition));
            (topic.clone(), *partition, exists)
        })
        .collect();
    broker.groups.delete_offsets(group, &partitions).await
}
