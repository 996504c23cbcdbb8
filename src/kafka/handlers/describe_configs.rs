//! DescribeConfigs (key 32): a topic's effective configs (override or broker default, with the
//! source, synonyms from v1 and type and documentation from v3), or this broker's static configs
//! (the `ssl.*`/`sasl.*` keys too, a sensitive one with a null value and `is_sensitive`, as Kafka).

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
use crate::kafka::handlers::Authz;
use crate::kafka::router::{RequestContext, Versions};
use crate::security::acl::Operation;

pub(crate) const VERSIONS: Versions = Versions::new(1, 4);

/// Config sources, as Kafka numbers them.
pub(crate) const SOURCE_TOPIC: i8 = 1;
pub(crate) const SOURCE_STATIC_BROKER: i8 = 4;
pub(crate) const SOURCE_DEFAULT: i8 = 5;

pub(crate) async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
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
        let authz = Authz::new(broker, ctx);
        let described = match res.resource_type {
            RESOURCE_TOPIC
                if !authz.allows_topic(Operation::DescribeConfigs, &res.resource_name) =>
            {
                Err((ErrorCode::TopicAuthorizationFailed, "Topic authorization failed.".into()))
            }
            RESOURCE_BROKER if !authz.allows_cluster(Operation::DescribeConfigs) => {
                Err((ErrorCode::ClusterAuthorizationFailed, "Cluster authorization failed.".into()))
            }
            RESOURCE_TOPIC => {
                describe_topic(broker, &res.resource_name, &wanted, &request, version)
            }
            RESOURCE_BROKER => describe_broker(broker, &res.resource_name, &wanted),
            other => Err((
                ErrorCode::InvalidRequest,
                format!("config resource type {other} is not supported"),
            )),
        };
        match described {
            Ok(configs) => r.configs = configs,
            Err((code, message)) => {
                r.error_code = code.code();
                r.error_message = Some(sb(message));
            }
        }
        response.results.push(r);
    }
    Some(response)
}

type Described = Result<Vec<DescribeConfigsResourceResult>, (ErrorCode, String)>;

fn describe_topic(
    broker: &Broker,
    topic: &str,
    wanted: &dyn Fn(&str) -> bool,
    request: &DescribeConfigsRequest,
    version: i16,
) -> Described {
    let image = broker.metadata.image();
    let t = image.topic(topic).ok_or_else(|| {
        (ErrorCode::UnknownTopicOrPartition, format!("Topic '{topic}' does not exist."))
    })?;
    Ok(TOPIC_CONFIGS
        .iter()
        .filter(|d| wanted(d.name))
        .map(|d| {
            let over = t.configs.get(d.name).cloned();
            topic_entry(&broker.config, d.name, d.config_type, d.doc, over, request, version)
        })
        .collect())
}

fn describe_broker(broker: &Broker, name: &str, wanted: &dyn Fn(&str) -> bool) -> Described {
    if !name.is_empty() && name != broker.config.node_id.0.to_string() {
        return Err((
            ErrorCode::InvalidRequest,
            format!("this is broker {}, not {name}", broker.config.node_id),
        ));
    }
    let security = broker.config.security_props.shown().filter(|(k, _)| wanted(k)).map(|(k, v)| {
        let mut c = DescribeConfigsResourceResult::default();
        c.name = sb(k.to_string());
        c.value = v.map(|v| sb(v.to_string()));
        c.is_sensitive = crate::security::props::is_sensitive(k);
        c.read_only = true;
        c.config_source = SOURCE_STATIC_BROKER;
        c
    });
    Ok(broker
        .config
        .describe()
        .into_iter()
        .filter(|(k, _)| wanted(k))
        .map(|(k, v)| {
            let mut c = DescribeConfigsResourceResult::default();
            c.name = sb(k);
            // Kafka shows an unset broker.rack or replica.selector.class as null.
            let unset = match k {
                "broker.rack" => broker.config.rack.is_none(),
                "replica.selector.class" => !broker.config.rack_aware_reads,
                _ => false,
            };
            c.value = (!unset).then(|| sb(v));
            c.read_only = true;
            let explicit = broker.config.explicit.contains(k);
            c.config_source = if explicit { SOURCE_STATIC_BROKER } else { SOURCE_DEFAULT };
            c
        })
        .chain(security)
        .collect())
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
