//! Consumer-group coordinator settings, with Kafka's key names and defaults. `samsa dev` differs
//! in one place, as Kafka's own development `server.properties` does: the initial rebalance delay
//! is 0, so a lone consumer gets its partitions at once.

use super::{ConfigError, invalid};

/// The internal topic holding committed offsets and group metadata.
pub const OFFSETS_TOPIC: &str = "__consumer_offsets";

/// `group.*` and `offsets.*` settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupConfig {
    /// `group.min.session.timeout.ms`: shorter member sessions get INVALID_SESSION_TIMEOUT.
    pub min_session_timeout_ms: i32,
    /// `group.max.session.timeout.ms`.
    pub max_session_timeout_ms: i32,
    /// `group.initial.rebalance.delay.ms`: how long the first rebalance of an empty group waits
    /// for more members (extended per joiner, up to the rebalance timeout).
    pub initial_rebalance_delay_ms: i32,
    /// `group.max.size`: members beyond it get GROUP_MAX_SIZE_REACHED.
    pub max_size: i32,
    /// `offsets.topic.num.partitions`: fixed when `__consumer_offsets` is created.
    pub offsets_topic_num_partitions: i32,
    /// `offsets.topic.replication.factor`: capped by the live brokers at creation.
    pub offsets_topic_replication_factor: i16,
    /// `offsets.topic.segment.bytes`.
    pub offsets_topic_segment_bytes: i64,
    /// `offsets.commit.timeout.ms`: how long a commit waits for the in-sync replicas.
    pub offsets_commit_timeout_ms: i32,
    /// `offset.metadata.max.bytes`: longer commit metadata gets OFFSET_METADATA_TOO_LARGE.
    pub offset_metadata_max_bytes: i32,
    /// `offsets.retention.minutes`: committed offsets of a group that has been empty this long
    /// (of a standalone consumer: committed this long ago) expire (KIP-211).
    pub offsets_retention_minutes: i64,
    /// `offsets.retention.check.interval.ms`: how often expired offsets are looked for.
    pub offsets_retention_check_interval_ms: i64,
    /// `offsets.topic.compression.codec`: 0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd, for the
    /// coordinator's writes.
    pub offsets_topic_compression_codec: i8,
}

impl Default for GroupConfig {
    /// Kafka's defaults.
    fn default() -> Self {
        GroupConfig {
            min_session_timeout_ms: 6_000,
            max_session_timeout_ms: 1_800_000,
            initial_rebalance_delay_ms: 3_000,
            max_size: i32::MAX,
            offsets_topic_num_partitions: 50,
            offsets_topic_replication_factor: 3,
            offsets_topic_segment_bytes: 100 * 1024 * 1024,
            offsets_commit_timeout_ms: 5_000,
            offset_metadata_max_bytes: 4096,
            offsets_retention_minutes: 7 * 24 * 60,
            offsets_retention_check_interval_ms: 600_000,
            offsets_topic_compression_codec: 0,
        }
    }
}

impl GroupConfig {
    /// `samsa dev`: Kafka's defaults, except no initial rebalance delay.
    pub fn dev() -> Self {
        GroupConfig { initial_rebalance_delay_ms: 0, ..Default::default() }
    }

    /// Applies one key if it is a group key: `None` when the key is not one of ours.
    pub fn set(&mut self, key: &str, value: &str) -> Option<Result<(), ConfigError>> {
        let int = |min: i64, max: i64| -> Result<i64, ConfigError> {
            let v: i64 = value.trim().parse().map_err(|_| invalid(key, value, "not an integer"))?;
            if v < min || v > max {
                return Err(invalid(key, value, format!("must be between {min} and {max}")));
            }
            Ok(v)
        };
        let i32_max = i64::from(i32::MAX);
        let result = match key {
            "group.min.session.timeout.ms" => {
                int(1, i32_max).map(|v| self.min_session_timeout_ms = v as i32)
            }
            "group.max.session.timeout.ms" => {
                int(1, i32_max).map(|v| self.max_session_timeout_ms = v as i32)
            }
            "group.initial.rebalance.delay.ms" => {
                int(0, i32_max).map(|v| self.initial_rebalance_delay_ms = v as i32)
            }
            "group.max.size" => int(1, i32_max).map(|v| self.max_size = v as i32),
            "offsets.topic.num.partitions" => {
                int(1, 10_000).map(|v| self.offsets_topic_num_partitions = v as i32)
            }
            "offsets.topic.replication.factor" => int(1, i64::from(i16::MAX))
                .map(|v| self.offsets_topic_replication_factor = v as i16),
            "offsets.topic.segment.bytes" => {
                int(1024, i32_max).map(|v| self.offsets_topic_segment_bytes = v)
            }
            "offsets.commit.timeout.ms" => {
                int(1, i32_max).map(|v| self.offsets_commit_timeout_ms = v as i32)
            }
            "offset.metadata.max.bytes" => {
                int(0, i32_max).map(|v| self.offset_metadata_max_bytes = v as i32)
            }
            "offsets.retention.minutes" => {
                int(1, i32_max).map(|v| self.offsets_retention_minutes = v)
            }
            "offsets.retention.check.interval.ms" => {
                int(1, i64::MAX).map(|v| self.offsets_retention_check_interval_ms = v)
            }
            "offsets.topic.compression.codec" => {
                int(0, 4).map(|v| self.offsets_topic_compression_codec = v as i8)
            }
            _ => return None,
        };
        Some(result)
    }

    /// The settings DescribeConfigs shows for a broker.
    pub fn describe(&self) -> Vec<(&'static str, String)> {
        vec![
            ("group.min.session.timeout.ms", self.min_session_timeout_ms.to_string()),
            ("group.max.session.timeout.ms", self.max_session_timeout_ms.to_string()),
            ("group.initial.rebalance.delay.ms", self.initial_rebalance_delay_ms.to_string()),
            ("group.max.size", self.max_size.to_string()),
            ("offsets.topic.num.partitions", self.offsets_topic_num_partitions.to_string()),
            ("offsets.topic.replication.factor", self.offsets_topic_replication_factor.to_string()),
            ("offsets.topic.segment.bytes", self.offsets_topic_segment_bytes.to_string()),
            ("offsets.commit.timeout.ms", self.offsets_commit_timeout_ms.to_string()),
            ("offset.metadata.max.bytes", self.offset_metadata_max_bytes.to_string()),
            ("offsets.retention.minutes", self.offsets_retention_minutes.to_string()),
            (
                "offsets.retention.check.interval.ms",
                self.offsets_retention_check_interval_ms.to_string(),
            ),
            ("offsets.topic.compression.codec", self.offsets_topic_compression_codec.to_string()),
        ]
    }

    /// Checks keys against each other.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.min_session_timeout_ms > self.max_session_timeout_ms {
            return Err(invalid(
                "group.min.session.timeout.ms",
                &self.min_session_timeout_ms.to_string(),
                "must not exceed group.max.session.timeout.ms",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_keys_are_applied_and_others_are_left_alone() {
        let mut c = GroupConfig::default();
        assert_eq!(c.set("group.min.session.timeout.ms", "1000"), Some(Ok(())));
        assert_eq!(c.min_session_timeout_ms, 1000);
        assert!(matches!(c.set("offsets.topic.num.partitions", "0"), Some(Err(_))));
        assert_eq!(c.set("num.partitions", "3"), None);
        c.max_session_timeout_ms = 500;
        assert!(c.validate().is_err());
    }
}
