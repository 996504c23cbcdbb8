//! The node's security keys as Kafka reads them: `ssl.*` and `sasl.*` apply to every listener,
//! `listener.name.<listener>.<key>` (listener name in lower case) overrides them for one
//! listener, and `listener.name.<listener>.<mechanism>.sasl.jaas.config` gives one SASL
//! mechanism its JAAS line.
//!
//! Invariant: values of sensitive keys ([`is_sensitive`]) are never shown: `Debug` prints
//! `[hidden]` for them, and nothing here formats a value into an error.

use std::collections::BTreeMap;
use std::fmt;

/// Whether `key` holds a security setting this module keeps (rather than `BrokerConfig`).
pub fn is_security_key(key: &str) -> bool {
    key.starts_with("ssl.")
        || key.starts_with("sasl.")
        || key.starts_with("listener.name.")
        || key == "connections.max.reauth.ms"
}

/// Whether `key`'s value is a secret, as Kafka's `ConfigDef.Type.PASSWORD` keys are:
/// passwords, private keys and JAAS lines (which hold passwords).
pub fn is_sensitive(key: &str) -> bool {
    key.ends_with(".password")
        || key.ends_with("sasl.jaas.config")
        || key.ends_with("ssl.keystore.key")
        || key.ends_with("token")
}

/// The security keys of one node.
#[derive(Clone, Default)]
pub struct SecurityProps {
    values: BTreeMap<String, String>,
}

impl SecurityProps {
    pub fn insert(&mut self, key: &str, value: &str) {
        self.values.insert(key.to_string(), value.to_string());
    }

    /// `key` for `listener`: its `listener.name.` override, else the node-wide value.
    pub fn get(&self, listener: &str, key: &str) -> Option<&str> {
        self.get_listener_only(listener, key)
            .or_else(|| self.values.get(key).map(String::as_str))
            .filter(|v| !v.trim().is_empty())
    }

    /// `key` only where it is set for `listener` with the `listener.name.` prefix.
    pub fn get_listener_only(&self, listener: &str, key: &str) -> Option<&str> {
        self.values
            .get(&format!("{}{key}", prefix(listener)))
            .map(String::as_str)
            .filter(|v| !v.trim().is_empty())
    }

    /// `key` for SASL `mechanism` on `listener`: `listener.name.<l>.<mechanism>.<key>`, else
    /// the listener's or the node-wide `key`.
    pub fn get_for_mechanism(&self, listener: &str, mechanism: &str, key: &str) -> Option<&str> {
        let specific = format!("{}{}.{key}", prefix(listener), mechanism.to_lowercase());
        self.values
            .get(&specific)
            .map(String::as_str)
            .filter(|v| !v.trim().is_empty())
            .or_else(|| self.get(listener, key))
    }

    /// The JAAS line for SASL `mechanism` on `listener`:
    /// `listener.name.<l>.<mechanism>.sasl.jaas.config`, else `listener.name.<l>.sasl.jaas.config`,
    /// else `sasl.jaas.config`.
    pub fn jaas(&self, listener: &str, mechanism: &str) -> Option<&str> {
        let specific = format!("{}{}.sasl.jaas.config", prefix(listener), mechanism.to_lowercase());
        self.values
            .get(&specific)
            .map(String::as_str)
            .or_else(|| self.get(listener, "sasl.jaas.config"))
    }

    /// Every key with its value as DescribeConfigs may show it: `None` for a sensitive key,
    /// as Kafka answers a `PASSWORD` config with a null value and `is_sensitive`.
    pub fn shown(&self) -> impl Iterator<Item = (&str, Option<&str>)> {
        self.values.iter().map(|(k, v)| (k.as_str(), (!is_sensitive(k)).then_some(v.as_str())))
    }

    /// Every key set, for checking that each is one samsa knows.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.values.keys().map(String::as_str)
    }
}

/// Kafka's per-listener prefix: `listener.name.` and the listener name in lower case.
pub fn prefix(listener: &str) -> String {
    format!("listener.name.{}.", listener.to_lowercase())
}

impl fmt::Debug for SecurityProps {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut m = f.debug_map();
        for (k, v) in &self.values {
            if is_sensitive(k) {
                m.entry(k, &"[hidden]");
            } else {
                m.entry(k, v);
            }
        }
        m.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listener_overrides_win_and_secrets_are_hidden() {
        let mut p = SecurityProps::default();
        p.insert("ssl.client.auth", "none");
        p.insert("listener.name.external.ssl.client.auth", "required");
        p.insert("listener.name.sasl_ssl.plain.sasl.jaas.config", "x password=\"s3cret\";");
        p.insert("ssl.key.password", "hunter2");
        assert_eq!(p.get("EXTERNAL", "ssl.client.auth"), Some("required"));
        assert_eq!(p.get("INTERNAL", "ssl.client.auth"), Some("none"));
        assert!(p.jaas("SASL_SSL", "PLAIN").is_some());
        assert!(p.jaas("SASL_SSL", "SCRAM-SHA-256").is_none());
        p.insert("connections.max.reauth.ms", "60000");
        p.insert("listener.name.external.scram-sha-512.connections.max.reauth.ms", "1000");
        let reauth = |l, m| p.get_for_mechanism(l, m, "connections.max.reauth.ms");
        assert_eq!(reauth("EXTERNAL", "SCRAM-SHA-512"), Some("1000"));
        assert_eq!(reauth("EXTERNAL", "PLAIN"), Some("60000"));
        let shown = format!("{p:?}");
        assert!(!shown.contains("s3cret") && !shown.contains("hunter2"), "{shown}");
    }
}
