//! CreateTopics (key 19): each topic is decided by the controller and committed to the metadata
//! log before the answer; `validate_only` decides without committing. From v5 the answer carries
//! the partition count, replication factor and effective configs; from v7 the topic id.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use kafka_protocol::messages::create_topics_response::{
    CreatableTopicConfigs, CreatableTopicResult,
};
use kafka_protocol::messages::{CreateTopicsRequest, CreateTopicsResponse};

use super::describe_configs::{SOURCE_DEFAULT, SOURCE_TOPIC};
use super::{apply_metadata_now, message_of, sb};
use crate::broker::Broker;
use crate::config::topic::{TOPIC_CONFIGS, effective};
use crate::controller::ControllerRequest;
use crate::error_code::{ApiError, ErrorCode};
use crate::kafka::handlers::Authz;
use crate::kafka::router::{RequestContext, Versions};
use crate::metadata::decide::TopicSpec;
use crate::security::acl::Operation;
use crate::types::NodeId;

pub(crate) const VERSIONS: Versions = Versions::new(2, 7);

pub(crate) async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    version: i16,
    request: CreateTopicsRequest,
) -> Option<CreateTopicsResponse> {
    let mut counts: HashMap<String, usize> = HashMap::new();
    for t in &request.topics {
        *counts.entry(t.name.0.to_string()).or_default() += 1;
    }
    let mut response = CreateTopicsResponse::default();
    let mut created = false;
    let authz = Authz::new(broker, ctx);
    let cluster_create = authz.allows_cluster(Operation::Create);
    for t in request.topics {
        let name = t.name.0.to_string();
        let spec = TopicSpec {
            name: name.clone(),
            num_partitions: t.num_partitions,
            replication_factor: t.replication_factor,
            assignments: t
                .assignments
                .iter()
                .map(|a| (a.partition_index, a.broker_ids.iter().map(|b| NodeId(b.0)).collect()))
                .collect(),
            configs: t
                .configs
                .iter()
                .filter_map(|c| c.value.as_ref().map(|v| (c.name.to_string(), v.to_string())))
                .collect::<BTreeMap<_, _>>(),
        };
        let result = if !cluster_create && !authz.allows_topic(Operation::Create, &name) {
            Err(ApiError::new(ErrorCode::TopicAuthorizationFailed, "Authorization failed."))
        } else if counts.get(&name).copied().unwrap_or(0) > 1 {
            Err(ApiError::new(
                ErrorCode::InvalidRequest,
                format!("Topic '{name}' appears more than once in the request."),
            ))
        } else {
            let req = ControllerRequest::CreateTopic {
                spec: spec.clone(),
                validate_only: request.validate_only,
            };
            broker.controller.execute(req).await.map(|_| ())
        };
        created |= result.is_ok() && !request.validate_only;
        let (code, message) = message_of(&result);
        let mut r = CreatableTopicResult::default();
        r.name = t.name.clone();
        r.error_code = code;
        r.error_message = message;
        r.num_partitions = -1;
        r.replication_factor = -1;
        if result.is_ok() && version >= 5 {
            describe_created(broker, &spec, &mut r, version);
        }
        response.topics.push(r);
    }
    if created {
        apply_metadata_now(broker).await;
    }
    Some(response)
}

fn describe_created(broker: &Broker, spec: &TopicSpec, r: &mut CreatableTopicResult, version: i16) {
    let image = broker.metadata.image();
    let (partitions, rf, id) = match image.topic(&spec.name) {
        Some(t) => (
            t.partitions.len() as i32,
            t.partitions.first().map_or(0, |p| p.replicas.len()) as i16,
            t.id,
        ),
        // validate_only: report what would be created.
        None => (
            if spec.num_partitions == -1 {
                broker.config.num_partitions
            } else {
                spec.num_partitions
            },
            if spec.replication_factor == -1 {
                broker.config.default_replication_factor
            } else {
                spec.replication_factor
            },
            uuid::Uuid::nil(),
        ),
    };
    r.num_partitions = partitions;
    r.replication_factor = rf;
    if version >= 7 {
        r.topic_id = id;
    }
    r.configs = Some(
        TOPIC_CONFIGS
            .iter()
            .map(|d| {
                let mut c = CreatableTopicConfigs::default();
                c.name = sb(d.name);
                c.value = effective(d.name, &spec.configs, &broker.config).map(sb);
                c.config_source =
                    if spec.configs.contains_key(d.name) { SOURCE_TOPIC } else { SOURCE_DEFAULT };
                c
            })
            .collect(),
    );
}
