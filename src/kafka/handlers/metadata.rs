//! Metadata (key 3): brokers, controller, topics with ids (v10+), partitions with leader, leader
//! epoch (v7+), replicas and ISR, all from the local metadata image. Auto-creates requested
//! topics when `auto.create.topics.enable` is on and the client allows it (v4+), as Kafka does.

use std::sync::Arc;

use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{BrokerId, MetadataRequest, MetadataResponse};
use uuid::Uuid;

use super::{AUTHORIZED_OPERATIONS_OMITTED, Authz, apply_metadata_now, sb, topic_name};
use crate::broker::Broker;
use crate::controller::ControllerRequest;
use crate::error_code::ErrorCode;
use crate::kafka::router::{RequestContext, Versions};
use crate::metadata::decide::{TopicSpec, validate_topic_name};
use crate::metadata::image::{MetadataImage, TopicImage};
use crate::security::acl::{CLUSTER_NAME, Operation, ResourceType};

pub(crate) const VERSIONS: Versions = Versions::new(0, 12);

/// Which topics a request asks about.
enum Wanted {
    All,
    Some(Vec<(Option<String>, Uuid)>),
}

fn wanted(version: i16, request: &MetadataRequest) -> Wanted {
    match &request.topics {
        None => Wanted::All,
        Some(t) if t.is_empty() && version == 0 => Wanted::All,
        Some(t) => Wanted::Some(
            t.iter().map(|t| (t.name.as_ref().map(|n| n.0.to_string()), t.topic_id)).collect(),
        ),
    }
}

pub(crate) async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    version: i16,
    request: MetadataRequest,
) -> Option<MetadataResponse> {
    let wanted = wanted(version, &request);
    let allow_create = version < 4 || request.allow_auto_topic_creation;
    if let Wanted::Some(list) = &wanted
        && allow_create
        && broker.config.auto_create_topics_enable
    {
        // Auto-creation needs CREATE on the cluster or on the topic, as in Kafka.
        let authz = Authz::new(broker, ctx);
        let creatable: Vec<(Option<String>, Uuid)> = list
            .iter()
            .filter(|(name, _)| {
                name.as_ref().is_some_and(|n| {
                    authz.allows_cluster(Operation::Create)
                        || authz.allows_topic(Operation::Create, n)
                })
            })
            .cloned()
            .collect();
        auto_create(broker, &creatable).await;
    }
    let authz = Authz::new(broker, ctx);
    let image = broker.metadata.image();
    let mut r = MetadataResponse::default();
    r.brokers = image
        .live_brokers()
        .map(|b| {
            let mut m = MetadataResponseBroker::default();
            m.node_id = BrokerId(b.id.0);
            let (host, port) = b.endpoint(&ctx.listener);
            m.host = sb(host);
            m.port = i32::from(port);
            m.rack = b.rack.clone().map(sb);
            m
        })
        .collect();
    r.cluster_id = image.cluster_id.clone().map(sb);
    r.controller_id = BrokerId(super::controller_id(broker));
    // KIP-430: asked for in v8+ (the cluster's only up to v10).
    let cluster_asked =
        (8..=10).contains(&version) && request.include_cluster_authorized_operations;
    r.cluster_authorized_operations =
        authz.operations(ResourceType::Cluster, CLUSTER_NAME, cluster_asked);
    // Topics the principal may not DESCRIBE are left out of an all-topics answer and answered
    // TOPIC_AUTHORIZATION_FAILED when named (Kafka's behaviour).
    let visible = |name: &str| authz.allows_topic(Operation::Describe, name);
    r.topics = match wanted {
        Wanted::All => image
            .topics
            .values()
            .filter(|t| visible(&t.name))
            .map(|t| describe(&image, t, version))
            .collect(),
        Wanted::Some(list) => list
            .iter()
            .map(|(name, id)| {
                let known = match name {
                    Some(n) => Some(n.clone()),
                    None => image.topic_by_id(id).map(|t| t.name.clone()),
                };
                match known {
                    Some(n) if !visible(&n) => denied(name, id, version),
                    _ => lookup(&image, name, id, version),
                }
            })
            .collect(),
    };
    let topics_asked = version >= 8 && request.include_topic_authorized_operations;
    for t in r.topics.iter_mut().filter(|t| t.error_code == 0) {
        let name = t.name.as_ref().map(|n| n.0.to_string()).unwrap_or_default();
        t.topic_authorized_operations = authz.operations(ResourceType::Topic, &name, topics_asked);
    }
    Some(r)
}

async fn auto_create(broker: &Arc<Broker>, list: &[(Option<String>, Uuid)]) {
    let image = broker.metadata.image();
    let mut created = false;
    for (name, _) in list {
        let Some(name) = name else { continue };
        if image.topics.contains_key(name) || validate_topic_name(name).is_err() {
            continue;
        }
        let spec = TopicSpec {
            name: name.clone(),
            num_partitions: -1,
            replication_factor: -1,
            ..Default::default()
        };
        let request = ControllerRequest::CreateTopic { spec, validate_only: false };
        match broker.controller.execute(request).await {
            Ok(_) => {
                tracing::info!(topic = %name, "auto-created topic");
                created = true;
            }
            Err(e) if e.code == ErrorCode::TopicAlreadyExists => {}
            Err(e) => tracing::warn!(topic = %name, error = %e, "auto-creating topic failed"),
        }
    }
    if created {
        apply_metadata_now(broker).await;
    }
}

/// A named topic the principal may not describe.
fn denied(name: &Option<String>, id: &Uuid, version: i16) -> MetadataResponseTopic {
    let mut t = MetadataResponseTopic::default();
    t.topic_authorized_operations = AUTHORIZED_OPERATIONS_OMITTED;
    t.name = name.as_deref().map(topic_name);
    if version >= 10 {
        t.topic_id = if name.is_some() { Uuid::nil() } else { *id };
    }
    t.error_code = ErrorCode::TopicAuthorizationFailed.code();
    t
}

fn lookup(
    image: &MetadataImage,
    name: &Option<String>,
    id: &Uuid,
    version: i16,
) -> MetadataResponseTopic {
    let found = match name {
        Some(n) => image.topic(n),
        None => image.topic_by_id(id),
    };
    if let Some(t) = found {
        return describe(image, t, version);
    }
    let mut t = MetadataResponseTopic::default();
    t.topic_authorized_operations = AUTHORIZED_OPERATIONS_OMITTED;
    t.name = name.as_deref().map(topic_name);
    if version >= 10 {
        t.topic_id = *id;
    }
    t.error_code = match name {
        Some(n) if validate_topic_name(n).is_err() => ErrorCode::InvalidTopicException,
        Some(_) => ErrorCode::UnknownTopicOrPartition,
        None => ErrorCode::UnknownTopicId,
    }
    .code();
    t
}

pub(crate) fn describe(
    image: &MetadataImage,
    topic: &TopicImage,
    version: i16,
) -> MetadataResponseTopic {
    let live = |id: &crate::types::NodeId| image.brokers.get(id).is_some_and(|b| !b.fenced);
    let mut t = MetadataResponseTopic::default();
    t.name = Some(topic_name(&topic.name));
    if version >= 10 {
        t.topic_id = topic.id;
    }
    t.is_internal = topic.name == crate::config::group::OFFSETS_TOPIC
        || topic.name == crate::config::txn::TRANSACTION_STATE_TOPIC;
    t.topic_authorized_operations = AUTHORIZED_OPERATIONS_OMITTED;
    t.partitions = topic
        .partitions
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let mut m = MetadataResponsePartition::default();
            m.partition_index = i as i32;
            m.leader_id = BrokerId(p.leader.filter(live).map_or(-1, |l| l.0));
            if m.leader_id.0 < 0 {
                m.error_code = ErrorCode::LeaderNotAvailable.code();
            }
            m.leader_epoch = p.leader_epoch.0;
            m.replica_nodes = p.replicas.iter().map(|r| BrokerId(r.0)).collect();
            m.isr_nodes = p.isr.iter().map(|r| BrokerId(r.0)).collect();
            if version >= 5 {
                m.offline_replicas =
                    p.replicas.iter().filter(|r| !live(r)).map(|r| BrokerId(r.0)).collect();
            }
            m
        })
        .collect();
    t
}
