//! SASL on the server side, free of I/O: which mechanisms a listener enables
//! (`sasl.enabled.mechanisms`) and, per connection, one [`SaslServer`] that takes the client's
//! tokens and either answers a challenge or names the authenticated user.
//!
//! The Kafka framing (SaslHandshake, SaslAuthenticate, or raw tokens after a v0 handshake)
//! lives in `kafka::authenticate`; this module never sees a request header.
//!
//! Invariants: a failed exchange says only what Kafka says ("Invalid username or password"),
//! never which half was wrong nor any submitted bytes; secrets are compared in constant time.

pub mod plain;
pub mod scram;

#[cfg(test)]
mod proptests;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use thiserror::Error;

use super::props::SecurityProps;

use scram::{CredentialStore, ScramMechanism};

/// A SASL mechanism samsa serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mechanism {
    Plain,
    Scram(ScramMechanism),
}

impl Mechanism {
    pub fn name(self) -> &'static str {
        match self {
            Mechanism::Plain => "PLAIN",
            Mechanism::Scram(m) => m.name(),
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "PLAIN" => Some(Mechanism::Plain),
            other => ScramMechanism::parse(other).map(Mechanism::Scram),
        }
    }
}

/// A secret that never prints.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[hidden]")
    }
}

/// A SASL listener's mechanisms and the users each knows.
#[derive(Debug, Clone)]
pub struct SaslConfig {
    /// In `sasl.enabled.mechanisms` order.
    pub enabled: Vec<Mechanism>,
    pub plain: plain::PlainUsers,
    /// `connections.max.reauth.ms` per enabled mechanism (KIP-368): how long a session lasts
    /// before the client must re-authenticate; `None` (0, Kafka's default) for no limit.
    pub max_reauth: Vec<(Mechanism, Option<Duration>)>,
}

impl SaslConfig {
    /// Reads `sasl.enabled.mechanisms` and each mechanism's JAAS line for `listener`.
    pub fn build(listener: &str, props: &SecurityProps) -> anyhow::Result<Self> {
        let Some(list) = props.get(listener, "sasl.enabled.mechanisms") else {
            bail!(
                "listener {listener} uses SASL but sasl.enabled.mechanisms is not set (Kafka's default, GSSAPI, is not served by samsa): set sasl.enabled.mechanisms=PLAIN"
            );
        };
        let mut enabled = Vec::new();
        for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            let mechanism = match Mechanism::parse(name) {
                Some(m) => m,
                None => bail!(
                    "sasl.enabled.mechanisms for listener {listener}: {name} is not served by samsa (PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512 are; GSSAPI and OAUTHBEARER are not)"
                ),
            };
            if !enabled.contains(&mechanism) {
                enabled.push(mechanism);
            }
        }
        if enabled.is_empty() {
            bail!("sasl.enabled.mechanisms for listener {listener} is empty");
        }
        let plain = if enabled.contains(&Mechanism::Plain) {
            let line = props.jaas(listener, "PLAIN").with_context(|| {
                format!(
                    "listener {listener} enables PLAIN but has no JAAS line: set listener.name.{}.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_<name>=\"<password>\";",
                    listener.to_lowercase()
                )
            })?;
            plain::PlainUsers::from_jaas(line)
                .map_err(|e| anyhow::anyhow!("the PLAIN JAAS line of listener {listener}: {e}"))?
        } else {
            plain::PlainUsers::default()
        };
        let mut max_reauth = Vec::new();
        for m in &enabled {
            let key = "connections.max.reauth.ms";
            let ms = match props.get_for_mechanism(listener, m.name(), key) {
                None => 0,
                Some(v) => v.trim().parse::<u64>().map_err(|_| {
                    anyhow::anyhow!(
                        "{key} for SASL/{} on listener {listener} is not a number of milliseconds (0 for no re-authentication)",
                        m.name()
                    )
                })?,
            };
            max_reauth.push((*m, (ms > 0).then(|| Duration::from_millis(ms))));
        }
        Ok(SaslConfig { enabled, plain, max_reauth })
    }

    /// How long a session authenticated with `mechanism` lasts (`connections.max.reauth.ms`).
    pub fn session_lifetime(&self, mechanism: Mechanism) -> Option<Duration> {
        self.max_reauth.iter().find(|(m, _)| *m == mechanism).and_then(|(_, d)| *d)
    }

    /// The enabled mechanism called `name`, if any.
    pub fn mechanism(&self, name: &str) -> Option<Mechanism> {
        Mechanism::parse(name).filter(|m| self.enabled.contains(m))
    }

    pub fn enabled_names(&self) -> Vec<&'static str> {
        self.enabled.iter().map(|m| m.name()).collect()
    }

    /// A fresh server-side exchange for `mechanism`; SCRAM credentials come from `store`.
    pub fn server(&self, mechanism: Mechanism, store: &Arc<dyn CredentialStore>) -> SaslServer {
        match mechanism {
            Mechanism::Plain => SaslServer::Plain(plain::PlainServer::new(self.plain.clone())),
            Mechanism::Scram(m) => {
                SaslServer::Scram(Box::new(scram::ScramServer::new(m, store.clone())))
            }
        }
    }
}

/// One connection's exchange.
#[derive(Debug)]
pub enum SaslServer {
    Plain(plain::PlainServer),
    Scram(Box<scram::ScramServer>),
}

/// What the server says after a client token.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// Send these bytes and wait for the next token.
    Challenge(Vec<u8>),
    /// Authenticated as `user`; send `last` (possibly empty) as the final answer.
    Done { user: String, last: Vec<u8> },
}

/// Why an exchange failed; the message is what the client is told.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum AuthError {
    #[error("Authentication failed: Invalid username or password")]
    BadCredentials,
    #[error("Authentication failed: {0}")]
    Refused(String),
    #[error("Invalid SASL/{mechanism} response: {reason}")]
    Malformed { mechanism: &'static str, reason: String },
}

impl SaslServer {
    pub fn mechanism(&self) -> Mechanism {
        match self {
            SaslServer::Plain(_) => Mechanism::Plain,
            SaslServer::Scram(s) => Mechanism::Scram(s.mechanism()),
        }
    }

    /// Takes the client's next token.
    pub fn step(&mut self, token: &[u8]) -> Result<Step, AuthError> {
        match self {
            SaslServer::Plain(s) => s.step(token),
            SaslServer::Scram(s) => s.step(token),
        }
    }
}
