//! Configuration with Kafka's names: the broker's static settings ([`broker`]) and the per-topic
//! settings that override them ([`topic`]).

pub mod broker;
pub mod cleaner;
pub mod dynamic;
pub mod group;
pub mod server;
pub mod topic;
pub mod txn;

use thiserror::Error;

/// A configuration value that was refused, with the reason in words a user can act on.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum ConfigError {
    #[error("unknown configuration key '{0}'")]
    UnknownKey(String),
    #[error("invalid value '{value}' for '{key}': {reason}")]
    InvalidValue { key: String, value: String, reason: String },
    #[error("'{key}' = '{value}' is not supported by samsa: {reason}")]
    Unsupported { key: String, value: String, reason: String },
}

pub(crate) fn invalid(key: &str, value: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError::InvalidValue { key: key.into(), value: value.into(), reason: reason.into() }
}
