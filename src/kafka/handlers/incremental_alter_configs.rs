//! IncrementalAlterConfigs (key 44, KIP-339): SET, DELETE, APPEND and SUBTRACT on a topic's
//! overrides or on a broker's dynamic configs (resource name "" for the cluster default, see
//! `config::dynamic`), decided by the controller (`metadata::decide`).

use std::sync::Arc;

use kafka_protocol::messages::incremental_alter_configs_request::AlterableConfig;
use kafka_protocol::messages::incremental_alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse};

use super::{RESOURCE_BROKER, RESOURCE_TOPIC, apply_metadata_now, message_of};
use crate::broker::Broker;
use crate::controller::ControllerRequest;
use crate::error_code::{ApiError, ErrorCode};
use crate::kafka::handlers::Authz;
use crate::kafka::router::{RequestContext, Versions};
use crate::metadata::decide::ConfigOp;
use crate::security::acl::Operation;

pub(crate) const VERSIONS: Versions = Versions::new(0, 1);

pub(crate) async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    _version: i16,
    request: IncrementalAlterConfigsRequest,
) -> Option<IncrementalAlterConfigsResponse> {
    let mut response = IncrementalAlterConfigsResponse::default();
    let mut changed = false;
    let authz = Authz::new(broker, ctx);
    for res in request.resources {
        let result = match res.resource_type {
            RESOURCE_TOPIC if !authz.allows_topic(Operation::AlterConfigs, &res.resource_name) => {
                Err(ApiError::new(
                    ErrorCode::TopicAuthorizationFailed,
                    "Topic authorization failed.",
                ))
            }
            RESOURCE_BROKER if !authz.allows_cluster(Operation::AlterConfigs) => {
                Err(ApiError::new(
                    ErrorCode::ClusterAuthorizationFailed,
                    "Cluster authorization failed.",
                ))
            }
            RESOURCE_TOPIC => {
                let req = ControllerRequest::AlterTopicConfigs {
                    topic: res.resource_name.to_string(),
                    ops: config_ops(&res.configs),
                    validate_only: request.validate_only,
                };
                broker.controller.execute(req).await.map(|_| ())
            }
            RESOURCE_BROKER => {
                let req = ControllerRequest::AlterBrokerConfigs {
                    resource: res.resource_name.to_string(),
                    ops: config_ops(&res.configs),
                    validate_only: request.validate_only,
                };
                broker.controller.execute(req).await.map(|_| ())
            }
            other => Err(ApiError::new(
                ErrorCode::InvalidRequest,
                format!("config resource type {other} is not supported"),
            )),
        };
        changed |= result.is_ok() && !request.validate_only;
        let (code, message) = message_of(&result);
        let mut r = AlterConfigsResourceResponse::default();
        r.error_code = code;
        r.error_message = message;
        r.resource_type = res.resource_type;
        r.resource_name = res.resource_name.clone();
        response.responses.push(r);
    }
    if changed {
        apply_metadata_now(broker).await;
    }
    Some(response)
}

fn config_ops(configs: &[AlterableConfig]) -> Vec<ConfigOp> {
    configs
        .iter()
        .map(|c| ConfigOp {
            key: c.name.to_string(),
            op: c.config_operation,
            value: c.value.as_ref().map(|v| v.to_string()),
        })
        .collect()
}
