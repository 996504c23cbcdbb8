//! Transaction coordinator settings, with Kafka's key names and defaults (KIP-98).

use super::{ConfigError, invalid};

/// The internal topic holding every transactional id's state.
pub const TRANSACTION_STATE_TOPIC: &str = "__transaction_state";

/// `transaction.*` and `transactional.id.*` settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnConfig {
    /// `transaction.state.log.num.partitions`: fixed when `__transaction_state` is created.
    pub state_log_num_partitions: i32,
    /// `transaction.state.log.replication.factor`: capped by the live brokers at creation.
    pub state_log_replication_factor: i16,
    /// `transaction.state.log.min.isr`: the topic's `min.insync.replicas`.
    pub state_log_min_isr: i32,
    /// `transaction.state.log.segment.bytes`.
    pub state_log_segment_bytes: i64,
    /// `transaction.max.timeout.ms`: a producer asking for a longer `transaction.timeout.ms`
    /// gets INVALID_TRANSACTION_TIMEOUT.
    pub max_timeout_ms: i32,
    /// `transaction.abort.timed.out.transaction.cleanup.interval.ms`: how often transactions
    /// open longer than their timeout are looked for (and aborted).
    pub abort_timed_out_cleanup_interval_ms: i64,
    /// `transactional.id.expiration.ms`: an id with no transaction for this long is forgotten.
    pub id_expiration_ms: i64,
    /// `transaction.remove.expired.transaction.cleanup.interval.ms`.
    pub remove_expired_cleanup_interval_ms: i64,
}

impl Default for TxnConfig {
    /// Kafka's defaults.
    fn default() -> Self {
        TxnConfig {
            state_log_num_partitions: 50,
            state_log_replication_factor: 3,
            state_log_min_isr: 2,
            state_log_segment_bytes: 100 * 1024 * 1024,
            max_timeout_ms: 900_000,
            abort_timed_out_cleanup_interval_ms: 10_000,
            id_expiration_ms: 7 * 24 * 3600 * 1000,
            remove_expired_cleanup_interval_ms: 3_600_000,
        }
    }
}

impl TxnConfig {
    /// Applies one key if it is a transaction key: `None` when the key is not one of ours.
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
            "transaction.state.log.num.partitions" => {
                int(1, 10_000).map(|v| self.state_log_num_partitions = v as i32)
            }
            "transaction.state.log.replication.factor" => {
                int(1, i64::from(i16::MAX)).map(|v| self.state_log_replication_factor = v as i16)
            }
            "transaction.state.log.min.isr" => {
                int(1, i32_max).map(|v| self.state_log_min_isr = v as i32)
            }
            "transaction.state.log.segment.bytes" => {
                int(1024, i32_max).map(|v| self.state_log_segment_bytes = v)
            }
            "transaction.max.timeout.ms" => int(1, i32_max).map(|v| self.max_timeout_ms = v as i32),
            "transaction.abort.timed.out.transaction.cleanup.interval.ms" => {
                int(1, i64::MAX).map(|v| self.abort_timed_out_cleanup_interval_ms = v)
            }
            "transactional.id.expiration.ms" => int(1, i32_max).map(|v| self.id_expiration_ms = v),
            "transaction.remove.expired.transaction.cleanup.interval.ms" => {
                int(1, i64::MAX).map(|v| self.remove_expired_cleanup_interval_ms = v)
            }
            _ => return None,
        };
        Some(result)
    }

    /// The settings DescribeConfigs shows for a broker.
    pub fn describe(&self) -> Vec<(&'static str, String)> {
        vec![
            ("transaction.state.log.num.partitions", self.state_log_num_partitions.to_string()),
            (
                "transaction.state.log.replication.factor",
                self.state_log_replication_factor.to_string(),
            ),
            ("transaction.state.log.min.isr", self.state_log_min_isr.to_string()),
            ("transaction.state.log.segment.bytes", self.state_log_segment_bytes.to_string()),
            ("transaction.max.timeout.ms", self.max_timeout_ms.to_string()),
            (
                "transaction.abort.timed.out.transaction.cleanup.interval.ms",
                self.abort_timed_out_cleanup_interval_ms.to_string(),
            ),
            ("transactional.id.expiration.ms", self.id_expiration_ms.to_string()),
            (
                "transaction.remove.expired.transaction.cleanup.interval.ms",
                self.remove_expired_cleanup_interval_ms.to_string(),
            ),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transaction_keys_are_applied_with_bounds_and_others_left_alone() {
        let mut c = TxnConfig::default();
        assert_eq!(c.set("transaction.max.timeout.ms", "60000"), Some(Ok(())));
        assert_eq!(c.max_timeout_ms, 60_000);
        assert!(matches!(c.set("transaction.state.log.num.partitions", "0"), Some(Err(_))));
        assert_eq!(c.set("group.max.size", "3"), None);
    }
}
