//! The settings one partition log runs with, resolved from topic overrides and broker defaults.

use std::collections::BTreeMap;

use super::batch::Codec;
use crate::config::broker::BrokerConfig;
use crate::config::topic::{CleanupPolicy, effective};

/// How timestamps of appended batches are set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TimestampType {
    /// Keep the producer's timestamps.
    CreateTime,
    /// Stamp each batch with the broker's clock at append.
    LogAppendTime,
}

/// A partition log's settings. Units are in the names.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct LogConfig {
    pub segment_bytes: u64,
    pub segment_ms: i64,
    /// -1: keep forever.
    pub retention_ms: i64,
    /// -1: no size limit.
    pub retention_bytes: i64,
    pub max_message_bytes: usize,
    pub index_interval_bytes: u64,
    pub flush_messages: u64,
    pub flush_ms: i64,
    pub timestamp_type: TimestampType,
    pub min_insync_replicas: i32,
    /// `cleanup.policy`: retention applies with `delete`, the log cleaner with `compact`.
    pub cleanup_policy: CleanupPolicy,
    /// `min.cleanable.dirty.ratio`, in [0, 1].
    pub min_cleanable_ratio: f64,
    pub min_compaction_lag_ms: i64,
    pub max_compaction_lag_ms: i64,
    /// How long a tombstone outlives its first cleaning.
    pub delete_retention_ms: i64,
    /// KIP-937: how far a CreateTime record may lie before / after the broker's clock.
    pub timestamp_before_max_ms: i64,
    pub timestamp_after_max_ms: i64,
    /// `compression.type`: the codec every appended batch is stored with; `None` keeps each
    /// batch as the producer compressed it (`producer`).
    pub compression: Option<Codec>,
    /// KIP-390: the level broker-side compression uses for that codec (`None`: its default).
    pub compression_level: Option<i32>,
    /// `message.downconversion.enable`: whether Fetch v0–3 may be answered with this log's
    /// batches down-converted (false: UNSUPPORTED_VERSION, as Kafka).
    pub down_conversion: bool,
}

impl LogConfig {
    /// The age at which the active segment rolls: `segment.ms`, or for a compacted log
    /// `max.compaction.lag.ms` if shorter (KIP-354), so no record waits in the active segment,
    /// which is never cleaned, past its lag.
    pub(crate) fn roll_ms(&self) -> i64 {
        if self.cleanup_policy.compact {
            self.segment_ms.min(self.max_compaction_lag_ms)
        } else {
            self.segment_ms
        }
    }

    /// The timestamps a CreateTime record may carry at `now_ms`, or `None` when unbounded.
    pub(crate) fn timestamp_bounds(&self, now_ms: i64) -> Option<(i64, i64)> {
        if self.timestamp_before_max_ms == i64::MAX && self.timestamp_after_max_ms == i64::MAX {
            return None;
        }
        Some((
            now_ms.saturating_sub(self.timestamp_before_max_ms),
            now_ms.saturating_add(self.timestamp_after_max_ms),
        ))
    }

    /// Resolves a topic's settings. Values were validated when they were set; anything
    /// unparsable falls back to the broker default.
    pub(crate) fn resolve(overrides: &BTreeMap<String, String>, broker: &BrokerConfig) -> Self {
        let num = |key: &str, fallback: i64| -> i64 {
            effective(key, overrides, broker).and_then(|v| v.parse().ok()).unwrap_or(fallback)
        };
        let timestamp_type = match effective("message.timestamp.type", overrides, broker).as_deref()
        {
            Some("LogAppendTime") => TimestampType::LogAppendTime,
            _ => TimestampType::CreateTime,
        };
        let compression = match effective("compression.type", overrides, broker).as_deref() {
            Some("uncompressed") => Some(Codec::None),
            Some("gzip") => Some(Codec::Gzip),
            Some("snappy") => Some(Codec::Snappy),
            Some("lz4") => Some(Codec::Lz4),
            Some("zstd") => Some(Codec::Zstd),
            _ => None,
        };
        let level = |key: &str| effective(key, overrides, broker).and_then(|v| v.parse().ok());
        let compression_level = match compression {
            // -1 is zlib's default level.
            Some(Codec::Gzip) => level("compression.gzip.level").filter(|l: &i32| *l >= 1),
            Some(Codec::Lz4) => level("compression.lz4.level"),
            Some(Codec::Zstd) => level("compression.zstd.level"),
            _ => None,
        };
        LogConfig {
            compression,
            compression_level,
            down_conversion: effective("message.downconversion.enable", overrides, broker)
                .is_none_or(|v| v != "false"),
            segment_bytes: num("segment.bytes", broker.log_segment_bytes).max(1024) as u64,
            segment_ms: num("segment.ms", broker.log_roll_ms).max(1),
            retention_ms: num("retention.ms", broker.log_retention_ms),
            retention_bytes: num("retention.bytes", broker.log_retention_bytes),
            max_message_bytes: num("max.message.bytes", broker.message_max_bytes).max(0) as usize,
            index_interval_bytes: num("index.interval.bytes", broker.log_index_interval_bytes)
                .max(0) as u64,
            flush_messages: num("flush.messages", broker.log_flush_interval_messages).max(1) as u64,
            flush_ms: num("flush.ms", broker.log_flush_interval_ms),
            timestamp_type,
            min_insync_replicas: num("min.insync.replicas", broker.min_insync_replicas)
                .clamp(1, i64::from(i32::MAX)) as i32,
            cleanup_policy: effective("cleanup.policy", overrides, broker)
                .and_then(|v| CleanupPolicy::parse("cleanup.policy", &v).ok())
                .unwrap_or(broker.cleaner.cleanup_policy),
            min_cleanable_ratio: effective("min.cleanable.dirty.ratio", overrides, broker)
                .and_then(|v| v.parse::<f64>().ok())
                .filter(|r| (0.0..=1.0).contains(r))
                .unwrap_or(broker.cleaner.min_cleanable_ratio),
            min_compaction_lag_ms: num(
                "min.compaction.lag.ms",
                broker.cleaner.min_compaction_lag_ms,
            )
            .max(0),
            max_compaction_lag_ms: num(
                "max.compaction.lag.ms",
                broker.cleaner.max_compaction_lag_ms,
            )
            .max(1),
            delete_retention_ms: num("delete.retention.ms", broker.cleaner.delete_retention_ms)
                .max(0),
            timestamp_before_max_ms: num(
                "message.timestamp.before.max.ms",
                broker.log_message_timestamp_before_max_ms,
            )
            .max(0),
            timestamp_after_max_ms: num(
                "message.timestamp.after.max.ms",
                broker.log_message_timestamp_after_max_ms,
            )
            .max(0),
        }
    }
}

#[cfg(test)]
impl LogConfig {
    /// Settings for unit tests: small segments, no periodic flush.
    pub(crate) fn for_tests() -> Self {
        LogConfig {
            segment_bytes: 4096,
            segment_ms: i64::MAX,
            retention_ms: -1,
            retention_bytes: -1,
            max_message_bytes: 1 << 20,
            index_interval_bytes: 256,
            flush_messages: u64::MAX,
            flush_ms: i64::MAX,
            timestamp_type: TimestampType::CreateTime,
            min_insync_replicas: 1,
            cleanup_policy: CleanupPolicy { delete: true, compact: false },
            min_cleanable_ratio: 0.5,
            min_compaction_lag_ms: 0,
            max_compaction_lag_ms: i64::MAX,
            delete_retention_ms: 86_400_000,
            timestamp_before_max_ms: i64::MAX,
            timestamp_after_max_ms: i64::MAX,
            compression: None,
            compression_level: None,
            down_conversion: true,
        }
    }
}
