//! DescribeConfigs (key 32): a topic's effective configs (override or broker default, with the
//! source, synonyms from v1 and type and documentation from v3), this broker's configs (dynamic
//! values from the metadata log over static ones, each with its source and synonyms; the
//! `ssl.*`/`sasl.*` keys too, a sensitive one with a null value and `is_sensitive`, as Kafka), or
//! the cluster-wide dynamic default (resource name "").

use std::collections::BTreeMap;
use std::sync::Arc;

use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
};
use kafka_protocol::messages::{DescribeConfigsRequest, DescribeConfigsResponse};

use super::{RESOURCE_BROKER, RESOURCE_TOPIC, sb};
use crate::broker::Broker;
use crate::config::broker::BrokerConfig;
use crate::config::dynamic;
use crate::config::topic::{ConfigType, TOPIC_CONFIGS};
use crate::error_code::ErrorCode;
use crate::kafka::handlers::Authz;
use crate::kafka::router::{RequestContext, Versions};
use crate::metadata::image::MetadataImage;
use crate::security::acl::Operation;
use crate::types::NodeId;

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
            RESOURCE_BROKER => {
                describe_broker(broker, &res.resource_name, &wanted, &request, version)
            }
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
    let layers = Layers::new(broker, &image);
    Ok(TOPIC_CONFIGS
        .iter()
        .filter(|d| wanted(d.name))
        .map(|d| {
            let over = t.configs.get(d.name).cloned();
            topic_entry(&layers, d.name, d.config_type, d.doc, over, request, version)
        })
        .collect())
}

/// Where a broker-level value comes from: the dynamic layers in the metadata image, the static
/// config, the built-in default.
struct Layers<'a> {
    image: &'a MetadataImage,
    node: NodeId,
    /// The static config with the dynamic values folded in.
    effective: std::borrow::Cow<'a, BrokerConfig>,
    static_config: &'a BrokerConfig,
    /// What DescribeConfigs shows for each key, statically set and built in (described once).
    static_values: BTreeMap<&'static str, String>,
    builtin_values: BTreeMap<&'static str, String>,
}

impl<'a> Layers<'a> {
    fn new(broker: &'a Broker, image: &'a MetadataImage) -> Self {
        let builtin = BrokerConfig::dev(broker.config.data_dir.clone(), broker.config.listener);
        Layers {
            image,
            node: broker.config.node_id,
            effective: dynamic::effective(&broker.config, image),
            static_config: &broker.config,
            static_values: broker.config.describe().into_iter().collect(),
            builtin_values: builtin.describe().into_iter().collect(),
        }
    }

    /// The source of broker key `key`'s effective value.
    fn source(&self, key: &str) -> i8 {
        match dynamic::lookup(self.image, self.node, key) {
            Some((_, source)) => source,
            None if self.static_config.explicit.contains(key) => SOURCE_STATIC_BROKER,
            None => SOURCE_DEFAULT,
        }
    }

    /// Every layer that sets broker key `key`, most specific first (DescribeConfigs synonyms).
    fn synonyms(&self, key: &str) -> Vec<DescribeConfigsSynonym> {
        let mut out = Vec::new();
        let mut push = |value: String, source: i8| {
            let mut s = DescribeConfigsSynonym::default();
            s.name = sb(key.to_string());
            s.value = Some(sb(value));
            s.source = source;
            out.push(s);
        };
        let own = self.image.broker_configs.get(&self.node.0.to_string());
        if let Some(v) = own.and_then(|c| c.get(key)) {
            push(v.clone(), dynamic::SOURCE_DYNAMIC_BROKER);
        }
        let default = self.image.broker_configs.get(dynamic::CLUSTER_DEFAULT);
        if let Some(v) = default.and_then(|c| c.get(key)) {
            push(v.clone(), dynamic::SOURCE_DYNAMIC_DEFAULT_BROKER);
        }
        if self.static_config.explicit.contains(key)
            && let Some(v) = self.static_values.get(key)
        {
            push(v.clone(), SOURCE_STATIC_BROKER);
        }
        if let Some(v) = self.builtin_values.get(key) {
            push(v.clone(), SOURCE_DEFAULT);
        }
        out
    }
}

fn describe_broker(
    broker: &Broker,
    name: &str,
    wanted: &dyn Fn(&str) -> bool,
    request: &DescribeConfigsRequest,
    version: i16,
) -> Described {
    let image = broker.metadata.image();
    if name == dynamic::CLUSTER_DEFAULT {
        // The cluster-wide default entity holds only what was set on it (as Kafka shows it).
        let set = image.broker_configs.get(dynamic::CLUSTER_DEFAULT).cloned().unwrap_or_default();
        return Ok(set
            .into_iter()
            .filter(|(k, _)| wanted(k))
            .map(|(k, v)| {
                let mut c = DescribeConfigsResourceResult::default();
                c.config_source = dynamic::SOURCE_DYNAMIC_DEFAULT_BROKER;
                if version >= 3 {
                    c.config_type = dynamic::definition(&k).map_or(0, |d| d.config_type as i8);
                }
                if request.include_synonyms {
                    let mut syn = DescribeConfigsSynonym::default();
                    syn.name = sb(k.clone());
                    syn.value = Some(sb(v.clone()));
                    syn.source = dynamic::SOURCE_DYNAMIC_DEFAULT_BROKER;
                    c.synonyms.push(syn);
                }
                c.name = sb(k);
                c.value = Some(sb(v));
                c
            })
            .collect());
    }
    if name != broker.config.node_id.0.to_string() {
        return Err((
            ErrorCode::InvalidRequest,
            format!("this is broker {}, not {name}", broker.config.node_id),
        ));
    }
    let layers = Layers::new(broker, &image);
    let security = broker.config.security_props.shown().filter(|(k, _)| wanted(k)).map(|(k, v)| {
        let mut c = DescribeConfigsResourceResult::default();
        c.name = sb(k.to_string());
        c.value = v.map(|v| sb(v.to_string()));
        c.is_sensitive = crate::security::props::is_sensitive(k);
        c.read_only = true;
        c.config_source = SOURCE_STATIC_BROKER;
        c
    });
    let effective = layers.effective.clone();
    Ok(effective
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
            let dynamic_key = dynamic::definition(k);
            c.read_only = dynamic_key.is_none();
            c.config_source = layers.source(k);
            if request.include_synonyms && !unset {
                c.synonyms = layers.synonyms(k);
            }
            if version >= 3
                && let Some(d) = dynamic_key
            {
                c.config_type = d.config_type as i8;
            }
            c
        })
        .chain(security)
        .collect())
}

fn topic_entry(
    layers: &Layers<'_>,
    key: &str,
    config_type: ConfigType,
    doc: &str,
    override_value: Option<String>,
    request: &DescribeConfigsRequest,
    version: i16,
) -> DescribeConfigsResourceResult {
    let default = layers.effective.topic_default(key);
    let broker_key = BrokerConfig::broker_synonym(key);
    let mut c = DescribeConfigsResourceResult::default();
    c.name = sb(key);
    c.value = override_value.clone().or(default.clone()).map(sb);
    c.config_source = match (&override_value, broker_key) {
        (Some(_), _) => SOURCE_TOPIC,
        (None, Some(b)) => layers.source(b),
        (None, None) => SOURCE_DEFAULT,
    };
    if request.include_synonyms {
        if let Some(v) = &override_value {
            let mut s = DescribeConfigsSynonym::default();
            s.name = sb(key);
            s.value = Some(sb(v.clone()));
            s.source = SOURCE_TOPIC;
            c.synonyms.push(s);
        }
        match broker_key {
            Some(b) if layers.builtin_values.contains_key(b) => {
                c.synonyms.extend(layers.synonyms(b));
            }
            Some(b) => {
                if let Some(v) = default {
                    let mut s = DescribeConfigsSynonym::default();
                    s.name = sb(b);
                    s.value = Some(sb(v));
                    s.source = SOURCE_DEFAULT;
                    c.synonyms.push(s);
                }
            }
            None => {}
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
