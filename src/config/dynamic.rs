//! Dynamic broker configs (KIP-226 in KRaft form): the broker-level keys an operator changes at
//! run time with IncrementalAlterConfigs or AlterConfigs on a BROKER resource. They live in the
//! metadata log (`MetadataImage::broker_configs`), for one broker (resource name = its node id)
//! or as the cluster-wide default (resource name ""), so every node sees the same values and a
//! restarted node gets them back.
//!
//! Precedence, as Kafka's: a topic override, else the broker's own dynamic value, else the
//! cluster default, else the static value (properties file, `SAMSA_*`, `--override`), else the
//! built-in default. [`effective`] folds the two dynamic layers onto the static config.
//!
//! Invariants: only keys in [`DYNAMIC_KEYS`] are ever stored (the controller refuses the rest,
//! naming them); every stored value was accepted by `BrokerConfig::set_dynamic`, so folding them
//! never fails, and a value that somehow does not parse is skipped, never fatal.

use std::borrow::Cow;
use std::collections::BTreeMap;

use super::ConfigError;
use super::broker::BrokerConfig;
use super::topic::ConfigType;
use crate::metadata::image::MetadataImage;
use crate::types::NodeId;

/// The resource name of the cluster-wide default (Kafka's `--entity-default`).
pub const CLUSTER_DEFAULT: &str = "";

/// DescribeConfigs sources for the dynamic layers, as Kafka numbers them.
pub const SOURCE_DYNAMIC_BROKER: i8 = 2;
pub const SOURCE_DYNAMIC_DEFAULT_BROKER: i8 = 3;

/// One broker-level key samsa applies at run time.
#[derive(Debug)]
pub struct DynamicKey {
    pub name: &'static str,
    pub config_type: ConfigType,
}

const fn key(name: &'static str, config_type: ConfigType) -> DynamicKey {
    DynamicKey { name, config_type }
}

/// The keys Kafka marks cluster-wide dynamic that samsa honours without a restart: the log
/// defaults every topic without an override follows (applied at the next metadata change, so
/// at once), the unclean-election default the controller uses, and the replication throttles.
pub const DYNAMIC_KEYS: &[DynamicKey] = &[
    key("log.segment.bytes", ConfigType::Int),
    key("log.roll.ms", ConfigType::Long),
    key("log.retention.ms", ConfigType::Long),
    key("log.retention.bytes", ConfigType::Long),
    key("log.flush.interval.messages", ConfigType::Long),
    key("log.flush.interval.ms", ConfigType::Long),
    key("log.index.interval.bytes", ConfigType::Int),
    key("log.message.timestamp.type", ConfigType::String),
    key("log.message.timestamp.before.max.ms", ConfigType::Long),
    key("log.message.timestamp.after.max.ms", ConfigType::Long),
    key("log.cleanup.policy", ConfigType::List),
    key("log.cleaner.min.cleanable.ratio", ConfigType::Double),
    key("log.cleaner.min.compaction.lag.ms", ConfigType::Long),
    key("log.cleaner.max.compaction.lag.ms", ConfigType::Long),
    key("log.cleaner.delete.retention.ms", ConfigType::Long),
    key("message.max.bytes", ConfigType::Int),
    key("min.insync.replicas", ConfigType::Int),
    key("compression.type", ConfigType::String),
    key("unclean.leader.election.enable", ConfigType::Boolean),
    key("leader.replication.throttled.rate", ConfigType::Long),
    key("follower.replication.throttled.rate", ConfigType::Long),
];

/// The definition of `name` if it is dynamic here.
pub fn definition(name: &str) -> Option<&'static DynamicKey> {
    DYNAMIC_KEYS.iter().find(|k| k.name == name)
}

/// Why a dynamic change is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DynamicConfigError {
    #[error(
        "Cannot update these configs dynamically: {0} (samsa applies it only at start: set it in the properties file, SAMSA_* or --override and restart)"
    )]
    NotDynamic(String),
    #[error(
        "unknown broker config '{0}'; the dynamic broker configs are log.retention.ms, log.segment.bytes, message.max.bytes, min.insync.replicas, leader/follower.replication.throttled.rate and the other log.* defaults"
    )]
    Unknown(String),
    #[error("{0}")]
    Invalid(#[from] ConfigError),
    #[error("broker resource name '{0}' is neither empty (the cluster default) nor a node id")]
    BadResourceName(String),
}

/// Checks a resource name: "" (the cluster default) or a node id.
pub fn entity(resource_name: &str) -> Result<String, DynamicConfigError> {
    if resource_name == CLUSTER_DEFAULT {
        return Ok(String::new());
    }
    match resource_name.parse::<i32>() {
        Ok(id) if id >= 0 => Ok(id.to_string()),
        _ => Err(DynamicConfigError::BadResourceName(resource_name.into())),
    }
}

/// Checks one `key=value` a dynamic change would store.
pub fn validate(key: &str, value: &str) -> Result<(), DynamicConfigError> {
    if definition(key).is_none() {
        let mut probe = BrokerConfig::dev("probe".into(), ([127, 0, 0, 1], 0).into());
        return Err(match probe.set_dynamic(key, "") {
            Err(ConfigError::UnknownKey(_))
                if !key.starts_with("ssl.") && !key.starts_with("sasl.") =>
            {
                DynamicConfigError::Unknown(key.into())
            }
            _ => DynamicConfigError::NotDynamic(key.into()),
        });
    }
    let mut probe = BrokerConfig::dev("probe".into(), ([127, 0, 0, 1], 0).into());
    probe.set_dynamic(key, value)?;
    Ok(())
}

/// Checks a whole set for one resource.
pub fn validate_all(configs: &BTreeMap<String, String>) -> Result<(), DynamicConfigError> {
    configs.iter().try_for_each(|(k, v)| validate(k, v))
}

/// The value `node` runs with for dynamic `key` and where it comes from: its own, else the
/// cluster default; `None` when neither is set (the static value applies).
pub fn lookup<'a>(image: &'a MetadataImage, node: NodeId, key: &str) -> Option<(&'a str, i8)> {
    let own = image.broker_configs.get(&node.0.to_string()).and_then(|c| c.get(key));
    if let Some(v) = own {
        return Some((v, SOURCE_DYNAMIC_BROKER));
    }
    image
        .broker_configs
        .get(CLUSTER_DEFAULT)
        .and_then(|c| c.get(key))
        .map(|v| (v.as_str(), SOURCE_DYNAMIC_DEFAULT_BROKER))
}

/// A dynamic number for `node`, else `fallback` (the static value).
pub fn number(image: &MetadataImage, node: NodeId, key: &str, fallback: i64) -> i64 {
    lookup(image, node, key).and_then(|(v, _)| v.trim().parse().ok()).unwrap_or(fallback)
}

/// The config `node` runs with: `base` with the cluster default and then its own dynamic
/// values applied. Borrowed when nothing dynamic is set.
pub fn effective<'a>(base: &'a BrokerConfig, image: &MetadataImage) -> Cow<'a, BrokerConfig> {
    let node = base.node_id.0.to_string();
    let layers: Vec<&BTreeMap<String, String>> = [CLUSTER_DEFAULT, node.as_str()]
        .iter()
        .filter_map(|name| image.broker_configs.get(*name))
        .filter(|c| !c.is_empty())
        .collect();
    if layers.is_empty() {
        return Cow::Borrowed(base);
    }
    let mut config = base.clone();
    for (k, v) in layers.into_iter().flatten() {
        if let Err(e) = config.set_dynamic(k, v) {
            tracing::warn!(key = %k, error = %e, "ignoring a dynamic broker config that no longer applies");
        }
    }
    Cow::Owned(config)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::commands::{MetadataCommand, apply};

    fn image_with(entity: &str, pairs: &[(&str, &str)]) -> MetadataImage {
        let mut img = MetadataImage::default();
        let configs = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        apply(&mut img, &MetadataCommand::SetBrokerConfigs { entity: entity.into(), configs });
        img
    }

    #[test]
    fn a_brokers_own_value_beats_the_cluster_default_which_beats_the_static_one() {
        let base = BrokerConfig::dev("d".into(), "127.0.0.1:9092".parse().expect("addr"));
        let mut img = image_with("", &[("log.retention.ms", "1000"), ("min.insync.replicas", "2")]);
        assert_eq!(effective(&base, &img).log_retention_ms, 1000);
        let own = MetadataCommand::SetBrokerConfigs {
            entity: "1".into(),
            configs: [("log.retention.ms".to_string(), "5".to_string())].into(),
        };
        apply(&mut img, &own);
        let eff = effective(&base, &img);
        assert_eq!((eff.log_retention_ms, eff.min_insync_replicas), (5, 2));
        assert!(!eff.explicit.contains("log.retention.ms"), "a dynamic value is not static");
        assert_eq!(lookup(&img, NodeId(1), "log.retention.ms"), Some(("5", SOURCE_DYNAMIC_BROKER)));
        assert_eq!(
            lookup(&img, NodeId(2), "log.retention.ms"),
            Some(("1000", SOURCE_DYNAMIC_DEFAULT_BROKER))
        );
        assert!(matches!(effective(&base, &MetadataImage::default()), Cow::Borrowed(_)));
    }

    #[test]
    fn static_unknown_and_bad_values_are_refused_by_name() {
        assert!(validate("log.retention.ms", "60000").is_ok());
        assert!(validate("follower.replication.throttled.rate", "1048576").is_ok());
        assert!(matches!(
            validate("log.retention.ms", "soon"),
            Err(DynamicConfigError::Invalid(_))
        ));
        assert!(matches!(validate("num.partitions", "3"), Err(DynamicConfigError::NotDynamic(_))));
        assert!(matches!(
            validate("ssl.keystore.location", "/x"),
            Err(DynamicConfigError::NotDynamic(_))
        ));
        assert!(matches!(validate("no.such.key", "1"), Err(DynamicConfigError::Unknown(_))));
        assert_eq!(entity("").as_deref(), Ok(""));
        assert_eq!(entity("3").as_deref(), Ok("3"));
        assert!(entity("broker-3").is_err());
        for k in DYNAMIC_KEYS {
            let base = BrokerConfig::dev("d".into(), "127.0.0.1:9092".parse().expect("addr"));
            let shown = base.describe().into_iter().chain(base.cleaner.describe());
            assert!(shown.into_iter().any(|(n, _)| n == k.name), "{} is not described", k.name);
        }
    }
}
