//! Topic-level configuration: the keys a topic may override, their validation, and how a topic's
//! effective settings are resolved (override, else broker default).
//!
//! `cleanup.policy=compact` is refused with a clear error rather than silently ignored: samsa
//! has no log cleaner yet. `compression.type` other than `producer` is refused likewise, because
//! samsa stores batches exactly as the producer compressed them.

use std::collections::BTreeMap;

use super::broker::BrokerConfig;
use super::{ConfigError, invalid};

/// The type of a topic config value, as DescribeConfigs v3+ reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigType {
    Boolean = 1,
    String = 2,
    Int = 3,
    Long = 5,
    List = 7,
}

/// One topic-level key.
#[derive(Debug)]
pub struct TopicConfigDef {
    pub name: &'static str,
    pub config_type: ConfigType,
    pub doc: &'static str,
}

/// Every topic-level key samsa understands.
pub const TOPIC_CONFIGS: &[TopicConfigDef] = &[
    TopicConfigDef {
        name: "cleanup.policy",
        config_type: ConfigType::List,
        doc: "delete: segments are removed by retention. compact is not supported yet.",
    },
    TopicConfigDef {
        name: "compression.type",
        config_type: ConfigType::String,
        doc: "producer: batches are stored as the producer compressed them (the only value supported).",
    },
    TopicConfigDef {
        name: "flush.messages",
        config_type: ConfigType::Long,
        doc: "fsync after this many records (1 = before every acknowledgement).",
    },
    TopicConfigDef {
        name: "flush.ms",
        config_type: ConfigType::Long,
        doc: "fsync data that has been unflushed this long.",
    },
    TopicConfigDef {
        name: "index.interval.bytes",
        config_type: ConfigType::Int,
        doc: "bytes of log between offset-index entries.",
    },
    TopicConfigDef {
        name: "max.message.bytes",
        config_type: ConfigType::Int,
        doc: "largest record batch accepted, in bytes.",
    },
    TopicConfigDef {
        name: "message.timestamp.type",
        config_type: ConfigType::String,
        doc: "CreateTime or LogAppendTime.",
    },
    TopicConfigDef {
        name: "min.insync.replicas",
        config_type: ConfigType::Int,
        doc: "replicas that must have a write before acks=all answers.",
    },
    TopicConfigDef {
        name: "retention.bytes",
        config_type: ConfigType::Long,
        doc: "size a partition may grow to before old segments are deleted (-1: unlimited).",
    },
    TopicConfigDef {
        name: "retention.ms",
        config_type: ConfigType::Long,
        doc: "age after which a segment is deleted (-1: forever).",
    },
    TopicConfigDef {
        name: "segment.bytes",
        config_type: ConfigType::Int,
        doc: "size at which a segment is rolled.",
    },
    TopicConfigDef {
        name: "segment.ms",
        config_type: ConfigType::Long,
        doc: "age at which a segment is rolled.",
    },
    TopicConfigDef {
        name: "unclean.leader.election.enable",
        config_type: ConfigType::Boolean,
        doc: "elect a leader outside the ISR when no ISR member is alive (may lose data).",
    },
];

/// The definition of `key`, if it is a topic-level key.
pub fn definition(key: &str) -> Option<&'static TopicConfigDef> {
    TOPIC_CONFIGS.iter().find(|d| d.name == key)
}

/// Checks one topic-level `key=value`.
pub fn validate(key: &str, value: &str) -> Result<(), ConfigError> {
    let def = definition(key).ok_or_else(|| ConfigError::UnknownKey(key.into()))?;
    let long_at_least = |min: i64, max: i64| -> Result<(), ConfigError> {
        let v: i64 = value.trim().parse().map_err(|_| invalid(key, value, "not an integer"))?;
        if v < min || v > max {
            return Err(invalid(key, value, format!("must be between {min} and {max}")));
        }
        Ok(())
    };
    match key {
        "cleanup.policy" => {
            for policy in value.split(',').map(str::trim) {
                match policy {
                    "delete" => {}
                    "compact" => {
                        return Err(ConfigError::Unsupported {
                            key: key.into(),
                            value: value.into(),
                            reason: "log compaction is not implemented yet; use cleanup.policy=delete".into(),
                        });
                    }
                    _ => return Err(invalid(key, value, "must be delete or compact")),
                }
            }
            Ok(())
        }
        "compression.type" => match value {
            "producer" => Ok(()),
            "uncompressed" | "gzip" | "snappy" | "lz4" | "zstd" => Err(ConfigError::Unsupported {
                key: key.into(),
                value: value.into(),
                reason: "samsa stores batches as the producer compressed them; use compression.type=producer and set compression on the producer".into(),
            }),
            _ => Err(invalid(key, value, "unknown compression type")),
        },
        "message.timestamp.type" => match value {
            "CreateTime" | "LogAppendTime" => Ok(()),
            _ => Err(invalid(key, value, "must be CreateTime or LogAppendTime")),
        },
        "unclean.leader.election.enable" => match value {
            "true" | "false" => Ok(()),
            _ => Err(invalid(key, value, "must be true or false")),
        },
        "retention.ms" | "retention.bytes" => long_at_least(-1, i64::MAX),
        "segment.bytes" => long_at_least(1024, i64::from(i32::MAX)),
        "max.message.bytes" | "index.interval.bytes" => long_at_least(0, i64::from(i32::MAX)),
        "min.insync.replicas" => long_at_least(1, i64::from(i32::MAX)),
        "flush.messages" | "segment.ms" => long_at_least(1, i64::MAX),
        "flush.ms" => long_at_least(0, i64::MAX),
        _ => {
            debug_assert!(false, "validated key without a rule: {}", def.name);
            Ok(())
        }
    }
}

/// Validates a whole set of overrides.
pub fn validate_all(configs: &BTreeMap<String, String>) -> Result<(), ConfigError> {
    configs.iter().try_for_each(|(k, v)| validate(k, v))
}

/// The effective value of `key` for a topic: its override, else the broker default.
pub fn effective(
    key: &str,
    overrides: &BTreeMap<String, String>,
    broker: &BrokerConfig,
) -> Option<String> {
    overrides.get(key).cloned().or_else(|| broker.topic_default(key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_defined_key_has_a_broker_default_and_validates_it() {
        let b = BrokerConfig::dev("d".into(), "127.0.0.1:9092".parse().expect("addr"));
        for def in TOPIC_CONFIGS {
            let v = b.topic_default(def.name).expect("default");
            validate(def.name, &v).unwrap_or_else(|e| panic!("{}: {e}", def.name));
        }
    }

    #[test]
    fn compaction_and_broker_side_compression_are_refused_clearly() {
        let e = validate("cleanup.policy", "compact").expect_err("refused");
        assert!(e.to_string().contains("not implemented"));
        assert!(validate("compression.type", "zstd").is_err());
        assert!(validate("retention.ms", "-2").is_err());
        assert!(validate("segment.bytes", "12").is_err());
        assert!(matches!(validate("foo.bar", "1"), Err(ConfigError::UnknownKey(_))));
        assert!(validate("retention.ms", "1000").is_ok());
    }
}
