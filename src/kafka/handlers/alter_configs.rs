//! AlterConfigs (key 33): replaces a topic's whole set of overrides, or a broker resource's whole
//! set of dynamic configs (the legacy, non-incremental API).

use std::collections::BTreeMap;
use std::sync::Arc;

use kafka_protocol::messages::alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{AlterConfigsRequest, AlterConfigsResponse};

use super::{RESOURCE_BROKER, RESOURCE_TOPIC, apply_metadata_now, message_of};
use crate::broker::Broker;
use crate::controller::ControllerRequest;
use crate::error_code::{ApiError, ErrorCode};
use crate::kafka::handlers::Authz;
use crate::kafka::router::{RequestContext, Versions};
use crate::security::acl::Operation;

pub(crate) const VERSIONS: Versions = Versions::new(0, 2);

pub(crate) async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    _version: i16,
    request: AlterConfigsRequest,
) -> Option<AlterConfigsResponse> {
    let mut response = AlterConfigsResponse::default();
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
                let configs: BTreeMap<String, String> = res
                    .configs
                    .iter()
                    .filter_map(|c| c.value.as_ref().map(|v| (c.name.to_string(), v.to_string())))
                    .collect();
                let req = ControllerRequest::ReplaceTopicConfigs {
                    topic: res.resource_name.to_string(),
                    configs,
                    validate_only: request.validate_only,
                };
                broker.controller.execute(req).await.map(|_| ())
            }
            RESOURCE_BROKER => {
                let req = ControllerRequest::ReplaceBrokerConfigs {
                    resource: res.resource_name.to_string(),
                    configs: res
                        .configs
                        .iter()
                        .filter_map(|c| {
                            c.value.as_ref().map(|v| (c.name.to_string(), v.to_string()))
                        })
                        .collect(),
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
