//! Topic-level configuration: the keys a topic may override, their validation, and how a topic's
//! effective settings are resolved (override, else broker default).

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
    Double = 6,
    List = 7,
}

/// `cleanup.policy`: which of retention (`delete`) and the log cleaner (`compact`) apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CleanupPolicy {
    pub delete: bool,
    pub compact: bool,
}

impl CleanupPolicy {
    /// Kafka's list syntax: `delete`, `compact`, `compact,delete` (any order, spaces allowed).
    pub fn parse(key: &str, value: &str) -> Result<Self, ConfigError> {
        let mut policy = CleanupPolicy { delete: false, compact: false };
        for item in value.split(',').map(str::trim) {
            match item {
                "delete" => policy.delete = true,
                "compact" => policy.compact = true,
                _ => return Err(invalid(key, value, "must be a list of delete and compact")),
            }
        }
        Ok(policy)
    }
}

impl std::fmt::Display for CleanupPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match (self.compact, self.delete) {
            (true, true) => "compact,delete",
            (true, false) => "compact",
            _ => "delete",
        })
    }
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
        doc: "delete: old segments are removed by retention; compact: the log cleaner keeps the last record of every key; compact,delete: both.",
    },
    TopicConfigDef {
        name: "compression.type",
        config_type: ConfigType::String,
        doc: "producer: batches are stored as the producer compressed them; uncompressed, gzip, snappy, lz4 or zstd: every batch is stored in that codec, recompressed on append when the producer used another.",
    },
    TopicConfigDef {
        name: "delete.retention.ms",
        config_type: ConfigType::Long,
        doc: "how long a tombstone stays in a compacted log after it was first cleaned.",
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
        name: "max.compaction.lag.ms",
        config_type: ConfigType::Long,
        doc: "longest a record may stay uncompacted (the active segment rolls by it too).",
    },
    TopicConfigDef {
        name: "message.timestamp.type",
        config_type: ConfigType::String,
        doc: "CreateTime or LogAppendTime.",
    },
    TopicConfigDef {
        name: "min.cleanable.dirty.ratio",
        config_type: ConfigType::Double,
        doc: "share of a compacted log that must be uncleaned before the cleaner takes it.",
    },
    TopicConfigDef {
        name: "min.compaction.lag.ms",
        config_type: ConfigType::Long,
        doc: "records younger than this are never compacted.",
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
        name: "compression.gzip.level",
        config_type: ConfigType::Int,
        doc: "the gzip level of broker-side compression (compression.type=gzip): 1..9, or -1 for zlib's default (KIP-390).",
    },
    TopicConfigDef {
        name: "compression.lz4.level",
        config_type: ConfigType::Int,
        doc: "the lz4 level of broker-side compression (compression.type=lz4): 1..17 (KIP-390).",
    },
    TopicConfigDef {
        name: "compression.zstd.level",
        config_type: ConfigType::Int,
        doc: "the zstd level of broker-side compression (compression.type=zstd): -131072..22 (KIP-390).",
    },
    TopicConfigDef {
        name: "file.delete.delay.ms",
        config_type: ConfigType::Long,
        doc: "accepted, not used: samsa deletes a segment's files at once (reads in flight keep their open handles).",
    },
    TopicConfigDef {
        name: "follower.replication.throttled.replicas",
        config_type: ConfigType::List,
        doc: "replicas (partition:broker list, or *) whose replication is throttled to the broker's *.replication.throttled.rate while they are out of the ISR (KIP-73).",
    },
    TopicConfigDef {
        name: "leader.replication.throttled.replicas",
        config_type: ConfigType::List,
        doc: "replicas (partition:broker list, or *) whose replication is throttled to the broker's *.replication.throttled.rate while they are out of the ISR (KIP-73).",
    },
    TopicConfigDef {
        name: "local.retention.bytes",
        config_type: ConfigType::Long,
        doc: "tiered storage: accepted, no effect (samsa has no remote tier; retention.bytes applies).",
    },
    TopicConfigDef {
        name: "local.retention.ms",
        config_type: ConfigType::Long,
        doc: "tiered storage: accepted, no effect (samsa has no remote tier; retention.ms applies).",
    },
    TopicConfigDef {
        name: "message.downconversion.enable",
        config_type: ConfigType::Boolean,
        doc: "false: Fetch v0-3 (message formats v0/v1, down-converted) gets UNSUPPORTED_VERSION for this topic.",
    },
    TopicConfigDef {
        name: "message.format.version",
        config_type: ConfigType::String,
        doc: "deprecated in Kafka 3; accepted, no effect: batches are stored in format v2.",
    },
    TopicConfigDef {
        name: "message.timestamp.after.max.ms",
        config_type: ConfigType::Long,
        doc: "CreateTime records more than this ahead of the broker's clock get INVALID_TIMESTAMP (KIP-937).",
    },
    TopicConfigDef {
        name: "message.timestamp.before.max.ms",
        config_type: ConfigType::Long,
        doc: "CreateTime records more than this behind the broker's clock get INVALID_TIMESTAMP (KIP-937).",
    },
    TopicConfigDef {
        name: "message.timestamp.difference.max.ms",
        config_type: ConfigType::Long,
        doc: "deprecated in Kafka 3.6; accepted, not enforced.",
    },
    TopicConfigDef {
        name: "preallocate",
        config_type: ConfigType::Boolean,
        doc: "accepted, no effect: segment files grow as they are written.",
    },
    TopicConfigDef {
        name: "remote.log.copy.disable",
        config_type: ConfigType::Boolean,
        doc: "tiered storage: accepted, no effect.",
    },
    TopicConfigDef {
        name: "remote.log.delete.on.disable",
        config_type: ConfigType::Boolean,
        doc: "tiered storage: accepted, no effect.",
    },
    TopicConfigDef {
        name: "remote.storage.enable",
        config_type: ConfigType::Boolean,
        doc: "tiered storage: only false is accepted (samsa has no remote tier).",
    },
    TopicConfigDef {
        name: "segment.index.bytes",
        config_type: ConfigType::Int,
        doc: "accepted, no effect: samsa's indexes are not preallocated, and a segment rolls at segment.bytes.",
    },
    TopicConfigDef {
        name: "segment.jitter.ms",
        config_type: ConfigType::Long,
        doc: "accepted, not used yet: segments roll at exactly segment.ms.",
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
        "cleanup.policy" => CleanupPolicy::parse(key, value).map(|_| ()),
        "compression.type" => match value {
            "producer" | "uncompressed" | "gzip" | "snappy" | "lz4" | "zstd" => Ok(()),
            _ => Err(invalid(
                key,
                value,
                "must be producer, uncompressed, gzip, snappy, lz4 or zstd",
            )),
        },
        "message.timestamp.type" => match value {
            "CreateTime" | "LogAppendTime" => Ok(()),
            _ => Err(invalid(key, value, "must be CreateTime or LogAppendTime")),
        },
        "unclean.leader.election.enable"
        | "message.downconversion.enable"
        | "preallocate"
        | "remote.log.copy.disable"
        | "remote.log.delete.on.disable" => match value {
            "true" | "false" => Ok(()),
            _ => Err(invalid(key, value, "must be true or false")),
        },
        "remote.storage.enable" => match value {
            "false" => Ok(()),
            "true" => Err(ConfigError::Unsupported {
                key: key.into(),
                value: value.into(),
                reason: "samsa has no tiered storage; leave remote.storage.enable=false".into(),
            }),
            _ => Err(invalid(key, value, "must be true or false")),
        },
        "compression.gzip.level" => match value.trim().parse::<i64>() {
            Ok(-1 | 1..=9) => Ok(()),
            _ => Err(invalid(key, value, "must be -1 or between 1 and 9")),
        },
        "compression.lz4.level" => long_at_least(1, 17),
        "compression.zstd.level" => long_at_least(-131_072, 22),
        "file.delete.delay.ms"
        | "segment.jitter.ms"
        | "message.timestamp.after.max.ms"
        | "message.timestamp.before.max.ms"
        | "message.timestamp.difference.max.ms" => long_at_least(0, i64::MAX),
        "local.retention.bytes" | "local.retention.ms" => long_at_least(-2, i64::MAX),
        "segment.index.bytes" => long_at_least(4, i64::from(i32::MAX)),
        "message.format.version" => {
            if value.trim().is_empty() {
                Err(invalid(key, value, "must be a Kafka version such as 3.0-IV1"))
            } else {
                Ok(())
            }
        }
        "follower.replication.throttled.replicas" | "leader.replication.throttled.replicas" => {
            let ok = value.trim() == "*"
                || value.trim().is_empty()
                || value.split(',').map(str::trim).all(|item| {
                    item.split_once(':')
                        .is_some_and(|(p, b)| p.parse::<u32>().is_ok() && b.parse::<u32>().is_ok())
                });
            if ok {
                Ok(())
            } else {
                Err(invalid(key, value, "must be * or a list of partition:broker"))
            }
        }
        "retention.ms" | "retention.bytes" => long_at_least(-1, i64::MAX),
        "segment.bytes" => long_at_least(1024, i64::from(i32::MAX)),
        "max.message.bytes" | "index.interval.bytes" => long_at_least(0, i64::from(i32::MAX)),
        "min.insync.replicas" => long_at_least(1, i64::from(i32::MAX)),
        "flush.messages" | "segment.ms" => long_at_least(1, i64::MAX),
        "flush.ms" | "min.compaction.lag.ms" | "delete.retention.ms" => long_at_least(0, i64::MAX),
        "max.compaction.lag.ms" => long_at_least(1, i64::MAX),
        "min.cleanable.dirty.ratio" => super::cleaner::parse_f64(key, value, 0.0, 1.0).map(|_| ()),
        _ => {
            debug_assert!(false, "validated key without a rule: {}", def.name);
            Ok(())
        }
    }
}

/// Validates a whole set of overrides, and the pairs Kafka checks together.
pub fn validate_all(configs: &BTreeMap<String, String>) -> Result<(), ConfigError> {
    configs.iter().try_for_each(|(k, v)| validate(k, v))?;
    let lag = |k: &str| configs.get(k).and_then(|v| v.trim().parse::<i64>().ok());
    if let (Some(min), Some(max)) = (lag("min.compaction.lag.ms"), lag("max.compaction.lag.ms"))
        && min > max
    {
        return Err(invalid(
            "max.compaction.lag.ms",
            &max.to_string(),
            format!("must not be below min.compaction.lag.ms ({min})"),
        ));
    }
    Ok(())
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
    fn cleanup_policies_and_compaction_keys_validate_as_kafka_does() {
        for ok in ["compact", "delete", "compact,delete", "delete, compact"] {
            assert!(validate("cleanup.policy", ok).is_ok(), "{ok}");
        }
        assert!(validate("cleanup.policy", "compact,shred").is_err());
        assert!(validate("min.cleanable.dirty.ratio", "0.01").is_ok());
        assert!(validate("min.cleanable.dirty.ratio", "1.5").is_err());
        assert!(validate("max.compaction.lag.ms", "0").is_err());
        let pair: BTreeMap<String, String> = [
            ("min.compaction.lag.ms".to_string(), "100".to_string()),
            ("max.compaction.lag.ms".to_string(), "10".to_string()),
        ]
        .into();
        assert!(validate_all(&pair).is_err());
        assert!(validate("compression.type", "zstd").is_ok());
        assert!(validate("compression.type", "brotli").is_err());
        assert!(validate("retention.ms", "-2").is_err());
        assert!(validate("segment.bytes", "12").is_err());
        assert!(matches!(validate("foo.bar", "1"), Err(ConfigError::UnknownKey(_))));
        assert!(validate("retention.ms", "1000").is_ok());
    }
}
