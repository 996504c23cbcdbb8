//! Log-cleaner settings (`log.cleaner.*`, `log.cleanup.policy`), with Kafka's key names and
//! defaults. The `log.cleaner.*` keys that a topic can override are the broker defaults of
//! `min.cleanable.dirty.ratio`, `min.compaction.lag.ms`, `max.compaction.lag.ms` and
//! `delete.retention.ms`.

use super::topic::CleanupPolicy;
use super::{ConfigError, invalid};

/// `log.cleaner.*` and `log.cleanup.policy`.
#[derive(Debug, Clone, PartialEq)]
pub struct CleanerConfig {
    /// `log.cleanup.policy`: the default `cleanup.policy` of topics.
    pub cleanup_policy: CleanupPolicy,
    /// `log.cleaner.enable`: run the cleaner (compacted topics grow without it).
    pub enable: bool,
    /// `log.cleaner.threads`: logs cleaned at the same time.
    pub threads: usize,
    /// `log.cleaner.backoff.ms`: how long a cleaner thread sleeps when no log needs cleaning.
    pub backoff_ms: i64,
    /// `log.cleaner.dedupe.buffer.size`: memory for the key → offset maps of all threads.
    pub dedupe_buffer_bytes: u64,
    /// `log.cleaner.io.max.bytes.per.second`: read throttle per thread (unlimited by default).
    pub io_max_bytes_per_second: f64,
    /// `log.cleaner.min.cleanable.ratio`: default of `min.cleanable.dirty.ratio`.
    pub min_cleanable_ratio: f64,
    /// `log.cleaner.min.compaction.lag.ms`: default of `min.compaction.lag.ms`.
    pub min_compaction_lag_ms: i64,
    /// `log.cleaner.max.compaction.lag.ms`: default of `max.compaction.lag.ms`.
    pub max_compaction_lag_ms: i64,
    /// `log.cleaner.delete.retention.ms`: default of `delete.retention.ms`.
    pub delete_retention_ms: i64,
}

impl Default for CleanerConfig {
    /// Kafka's defaults.
    fn default() -> Self {
        CleanerConfig {
            cleanup_policy: CleanupPolicy { delete: true, compact: false },
            enable: true,
            threads: 1,
            backoff_ms: 15_000,
            dedupe_buffer_bytes: 128 * 1024 * 1024,
            io_max_bytes_per_second: f64::MAX,
            min_cleanable_ratio: 0.5,
            min_compaction_lag_ms: 0,
            max_compaction_lag_ms: i64::MAX,
            delete_retention_ms: 86_400_000,
        }
    }
}

impl CleanerConfig {
    /// Applies one key if it is a cleaner key: `None` when the key is not one of ours.
    pub fn set(&mut self, key: &str, value: &str) -> Option<Result<(), ConfigError>> {
        let long = |min: i64| -> Result<i64, ConfigError> {
            let v: i64 = value.trim().parse().map_err(|_| invalid(key, value, "not an integer"))?;
            if v < min {
                return Err(invalid(key, value, format!("must be at least {min}")));
            }
            Ok(v)
        };
        let result = match key {
            "log.cleanup.policy" => {
                CleanupPolicy::parse(key, value).map(|p| self.cleanup_policy = p)
            }
            "log.cleaner.enable" => match value.trim() {
                "true" | "false" => {
                    self.enable = value.trim() == "true";
                    Ok(())
                }
                _ => Err(invalid(key, value, "must be true or false")),
            },
            "log.cleaner.threads" => match long(1) {
                Ok(v) if v <= 64 => {
                    self.threads = v as usize;
                    Ok(())
                }
                Ok(_) => Err(invalid(key, value, "must be between 1 and 64")),
                Err(e) => Err(e),
            },
            "log.cleaner.backoff.ms" => long(0).map(|v| self.backoff_ms = v),
            "log.cleaner.dedupe.buffer.size" => {
                long(1024 * 1024).map(|v| self.dedupe_buffer_bytes = v as u64)
            }
            "log.cleaner.io.max.bytes.per.second" => {
                parse_f64(key, value, 1.0, f64::MAX).map(|v| self.io_max_bytes_per_second = v)
            }
            "log.cleaner.min.cleanable.ratio" => {
                parse_f64(key, value, 0.0, 1.0).map(|v| self.min_cleanable_ratio = v)
            }
            "log.cleaner.min.compaction.lag.ms" => long(0).map(|v| self.min_compaction_lag_ms = v),
            "log.cleaner.max.compaction.lag.ms" => long(1).map(|v| self.max_compaction_lag_ms = v),
            "log.cleaner.delete.retention.ms" => long(0).map(|v| self.delete_retention_ms = v),
            // Accepted for compatibility; samsa's cleaner reads in fixed 1 MiB chunks.
            "log.cleaner.io.buffer.size" => long(1).map(|_| ()),
            "log.cleaner.io.buffer.load.factor" => parse_f64(key, value, 0.01, 1.0).map(|_| ()),
            _ => return None,
        };
        Some(result)
    }

    /// The settings DescribeConfigs shows for a BROKER resource.
    pub fn describe(&self) -> Vec<(&'static str, String)> {
        vec![
            ("log.cleanup.policy", self.cleanup_policy.to_string()),
            ("log.cleaner.enable", self.enable.to_string()),
            ("log.cleaner.threads", self.threads.to_string()),
            ("log.cleaner.backoff.ms", self.backoff_ms.to_string()),
            ("log.cleaner.dedupe.buffer.size", self.dedupe_buffer_bytes.to_string()),
            ("log.cleaner.io.max.bytes.per.second", format_f64(self.io_max_bytes_per_second)),
            ("log.cleaner.min.cleanable.ratio", format_f64(self.min_cleanable_ratio)),
            ("log.cleaner.min.compaction.lag.ms", self.min_compaction_lag_ms.to_string()),
            ("log.cleaner.max.compaction.lag.ms", self.max_compaction_lag_ms.to_string()),
            ("log.cleaner.delete.retention.ms", self.delete_retention_ms.to_string()),
        ]
    }
}

/// A double within `[min, max]`, as Kafka's DOUBLE keys take it.
pub(crate) fn parse_f64(key: &str, value: &str, min: f64, max: f64) -> Result<f64, ConfigError> {
    let v: f64 = value.trim().parse().map_err(|_| invalid(key, value, "not a number"))?;
    if !(min..=max).contains(&v) {
        return Err(invalid(key, value, format!("must be between {min} and {max}")));
    }
    Ok(v)
}

/// A double as Kafka prints it (`0.5`, `1.7976931348623157E308`).
pub(crate) fn format_f64(v: f64) -> String {
    if v == f64::MAX { "1.7976931348623157E308".to_string() } else { v.to_string() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_use_kafka_names_and_refuse_bad_values() {
        let mut c = CleanerConfig::default();
        assert!(c.set("log.cleaner.threads", "2").expect("ours").is_ok());
        assert_eq!(c.threads, 2);
        assert!(c.set("log.cleaner.min.cleanable.ratio", "1.5").expect("ours").is_err());
        assert!(c.set("log.cleanup.policy", "compact,delete").expect("ours").is_ok());
        assert!(c.cleanup_policy.compact && c.cleanup_policy.delete);
        assert!(c.set("log.cleanup.policy", "shred").expect("ours").is_err());
        assert!(c.set("log.cleaner.dedupe.buffer.size", "10").expect("ours").is_err());
        assert!(c.set("log.segment.bytes", "1").is_none());
    }
}
