//! DescribeConfigs (key 32): a topic's effective configs (override or broker default, with the
//! source, synonyms from v1 and type and documentation from v3), or this broker's static configs.

use std::sync::Arc;

use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
};
use kafka_protocol::messages::{DescribeConfigsRequest, DescribeConfigsResponse};

use super::{RESOURCE_BROKER, RESOURCE_TOPIC, sb};
use crate::broker::Broker;
use crate::config::broker::BrokerConfig;
use crate::config::topic::{ConfigType, TOPIC_CONFIGS};
use crate::error_code::ErrorCode;
use crate::kafka::router::Versions;

pub const VERSIONS: Versions = Versions::new(1, 4);

/// Config sources, as Kafka numbers them.
pub const SOURCE_TOPIC: i8 = 1;
pub const SOURCE_STATIC_BROKER: i8 = 4;
pub const SOURCE_DEFAULT: i8 = 5;

pub async fn handle(
    broker: &Arc<Broker>,
    version: i16,
    request: DescribeConfigsRequest,
) -> Option<DescribeConfigsResponse> {
    let mut response = DescribeConfigsResponse::default();
    for res in &request.resources {
        let mut r = DescribeConfigsResult::default();
        r.resource_type = res.resource_type;
        r.resource_name = res.resource_name.clone();
        let keys: Option<Vec<String>> =
            res.configuration_keys.as_ref().map(|k| k.iter().map(|s| s.to_string()).collect());
        // Null or empty: every key (as Kafka treats both).
        let wanted =
            |k: &str| keys.as_ref().is_none_or(|ks| ks.is_empty() || ks.iter().any(|x| x == k));
        match res.resource_type {
            RESOURCE_TOPIC => {
                let image = broker.metadata.image();
                match image.topic(&res.resource_name) {
                    Some(t) => {
                        r.configs = TOPIC_CONFIGS
                            .iter()
                            .filter(|d| wanted(d.name))
                            .map(|d| {
                                let over = t.configs.get(d.name).cloned();
                                topic_entry(
                                    &broker.config,
                                    d.name,
                                    d.config_type,
                                    d.doc,
                                    over,
                                    &request,
                                    version,
                                )
                            })
                            .collect();
                    }
                    None => {
                        r.error_code = ErrorCode::UnknownTopicOrPartition.code();
                        r.error_message =
                            Some(sb(format!("Topic '{}' does not exist.", res.resource_name)));
                    }
                }
            }
            RESOURCE_BROKER => {
                let name = res.resource_name.to_string();
                if !name.is_empty() && name != broker.config.node_id.0.to_string() {
                    r.error_code = ErrorCode::InvalidRequest.code();
                    r.error_message =
                        Some(sb(format!("this is broker {}, not {name}", broker.config.node_id)));
                } else {
                    r.configs = broker
                        .config
                        .describe()
                        .into_iter()
                        .filter(|(k, _)| wanted(k))
                        .map(|(k, v)| {
                            let mut c = DescribeConfigsResourceResult::default();
                            c.name = sb(k);
                            c.value = Some(sb(v));
                            c.read_only = true;
                            c.config_source = SOURCE_STATIC_BROKER;
                            c
                        })
                        .collect();
                }
            }
            other => {
                r.error_code = ErrorCode::InvalidRequest.code();
                r.error_message =
                    Some(sb(format!("config resource type {other} is not supported")));
            }
        }
        response.results.push(r);
    }
    Some(response)
}

fn topic_entry(
    broker: &BrokerConfig,
    key: &str,
    config_type: ConfigType,
    doc: &str,
    override_value: Option<String>,
    request: &DescribeConfigsRequest,
    version: i16,
) -> DescribeConfigsResourceResult {
    let default = broker.topic_default(key);
    let mut c = DescribeConfigsResourceResult::default();
    c.name = sb(key);
    c.value = override_value.clone().or(default.clone()).map(sb);
    c.config_source = if override_value.is_some() { SOURCE_TOPIC } else { SOURCE_DEFAULT };
    if request.include_synonyms {
        if let Some(v) = &override_value {
            let mut s = DescribeConfigsSynonym::default();
            s.name = sb(key);
            s.value = Some(sb(v.clone()));
            s.source = SOURCE_TOPIC;
            c.synonyms.push(s);
        }
        if let (Some(broker_key), Some(v)) = (BrokerConfig::broker_synonym(key), default) {
            let mut s = DescribeConfigsSynonym::default();
            s.name = sb(broker_key);
            s.value = Some(sb(v));
            s.source = SOURCE_DEFAULT;
            c.synonyms.push(s);
        }
    }
    if version >= 3 {
        c.config_type = config_type as i8;
        if request.include_documentation {
            c.documentation = Some(sb(doc));
        }
    }
    c
}
