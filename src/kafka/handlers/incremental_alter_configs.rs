//! IncrementalAlterConfigs (key 44, KIP-339): SET, DELETE, APPEND and SUBTRACT on a topic's
//! overrides; APPEND/SUBTRACT only on list-typed keys.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use kafka_protocol::messages::incremental_alter_configs_request::AlterableConfig;
use kafka_protocol::messages::incremental_alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse};

use super::alter_configs::broker_configs_are_static;
use super::{RESOURCE_BROKER, RESOURCE_TOPIC, apply_metadata_now, message_of};
use crate::broker::Broker;
use crate::config::broker::BrokerConfig;
use crate::config::topic::{ConfigType, definition, effective};
use crate::kafka::error_code::{ApiError, ErrorCode};
use crate::kafka::router::Versions;

pub const VERSIONS: Versions = Versions::new(0, 1);

const OP_SET: i8 = 0;
const OP_DELETE: i8 = 1;
const OP_APPEND: i8 = 2;
const OP_SUBTRACT: i8 = 3;

fn invalid(message: String) -> ApiError {
    ApiError::new(ErrorCode::InvalidConfig, message)
}

/// Applies the operations to `current`, returning the new overrides.
pub fn apply_ops(
    current: &BTreeMap<String, String>,
    ops: &[AlterableConfig],
    broker: &BrokerConfig,
) -> Result<BTreeMap<String, String>, ApiError> {
    let mut seen = HashSet::new();
    let mut next = current.clone();
    for op in ops {
        let key = op.name.to_string();
        if !seen.insert(key.clone()) {
            return Err(ApiError::new(
                ErrorCode::InvalidRequest,
                format!("'{key}' appears more than once"),
            ));
        }
        let def =
            definition(&key).ok_or_else(|| invalid(format!("unknown topic config '{key}'")))?;
        let value = op.value.as_ref().map(|v| v.to_string());
        match op.config_operation {
            OP_SET => {
                let v = value.ok_or_else(|| invalid(format!("SET of '{key}' needs a value")))?;
                next.insert(key, v);
            }
            OP_DELETE => {
                next.remove(&key);
            }
            OP_APPEND | OP_SUBTRACT => {
                if def.config_type != ConfigType::List {
                    return Err(invalid(format!(
                        "'{key}' is not a list; APPEND and SUBTRACT need a list config"
                    )));
                }
                let v = value.ok_or_else(|| invalid(format!("'{key}' needs a value")))?;
                let base = effective(&key, &next, broker).unwrap_or_default();
                let mut items: Vec<String> = base
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .collect();
                for item in v.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                    if op.config_operation == OP_APPEND {
                        if !items.iter().any(|i| i == item) {
                            items.push(item.to_string());
                        }
                    } else {
                        items.retain(|i| i != item);
                    }
                }
                next.insert(key, items.join(","));
            }
            other => {
                return Err(ApiError::new(
                    ErrorCode::InvalidRequest,
                    format!("unknown config operation {other}"),
                ));
            }
        }
    }
    Ok(next)
}

pub async fn handle(
    broker: &Arc<Broker>,
    _version: i16,
    request: IncrementalAlterConfigsRequest,
) -> Option<IncrementalAlterConfigsResponse> {
    let mut response = IncrementalAlterConfigsResponse::default();
    let mut changed = false;
    for res in request.resources {
        let result = match res.resource_type {
            RESOURCE_TOPIC => {
                broker
                    .controller
                    .alter_topic_configs(
                        &res.resource_name,
                        |current| apply_ops(current, &res.configs, &broker.config),
                        request.validate_only,
                    )
                    .await
            }
            RESOURCE_BROKER => Err(broker_configs_are_static()),
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
