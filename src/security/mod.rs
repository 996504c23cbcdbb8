//! Who is on the other end of a Kafka connection, and how they proved it: the listener's
//! security protocol (`listener.security.protocol.map`), its TLS set-up ([`tls`]), its SASL
//! mechanisms ([`sasl`], users from [`jaas`] lines), and the [`principal`] a connection is
//! served as once it has authenticated.
//!
//! Everything here is built once, at startup, from the node's `ssl.*`, `sasl.*` and
//! `listener.name.<listener>.*` keys ([`props`]); a misconfiguration stops the node with a
//! message naming the key, never serves a listener with less security than it was configured for.
//!
//! Invariant: no secret (password, private key, JAAS line) reaches a log line, an error message
//! or a `Debug` rendering; [`props::SecurityProps`] and the SASL user table redact them.

pub mod acl;
pub mod authorizer;
pub mod jaas;
pub mod principal;
pub mod props;
pub mod sasl;
pub mod tls;

use std::sync::Arc;

use anyhow::bail;

pub use principal::Principal;
pub use principal::PrincipalRules;
use props::SecurityProps;

/// A value of `listener.security.protocol.map`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecurityProtocol {
    Plaintext,
    Ssl,
    SaslPlaintext,
    SaslSsl,
}

impl SecurityProtocol {
    pub const ALL: [SecurityProtocol; 4] = [
        SecurityProtocol::Plaintext,
        SecurityProtocol::Ssl,
        SecurityProtocol::SaslPlaintext,
        SecurityProtocol::SaslSsl,
    ];

    /// Kafka's name (`SASL_SSL`, ...), case-insensitively.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.name().eq_ignore_ascii_case(s.trim()))
    }

    pub fn name(self) -> &'static str {
        match self {
            SecurityProtocol::Plaintext => "PLAINTEXT",
            SecurityProtocol::Ssl => "SSL",
            SecurityProtocol::SaslPlaintext => "SASL_PLAINTEXT",
            SecurityProtocol::SaslSsl => "SASL_SSL",
        }
    }

    pub fn uses_tls(self) -> bool {
        matches!(self, SecurityProtocol::Ssl | SecurityProtocol::SaslSsl)
    }

    pub fn uses_sasl(self) -> bool {
        matches!(self, SecurityProtocol::SaslPlaintext | SecurityProtocol::SaslSsl)
    }
}

/// The CONTROLLER listener over TLS (mapped to `SSL`): how it accepts the other nodes, and how
/// this node dials theirs (see `raft::transport`).
#[derive(Debug, Clone)]
pub struct PeerTls {
    pub server: Arc<rustls::ServerConfig>,
    pub client: Arc<rustls::ClientConfig>,
    /// `ssl.principal.mapping.rules`: a peer certificate's subject to its principal name.
    pub principal_rules: Arc<PrincipalRules>,
}

impl PeerTls {
    pub fn build(listener: &str, props: &SecurityProps) -> anyhow::Result<Self> {
        let mut server = tls::server_config(listener, props)?;
        server.alpn_protocols = vec![b"h2".to_vec()];
        let principal_rules = principal_rules(listener, props)?;
        Ok(PeerTls {
            server: Arc::new(server),
            client: Arc::new(tls::peer_client_config(listener, props)?),
            principal_rules,
        })
    }
}

/// `ssl.principal.mapping.rules` of `listener` (Kafka's DEFAULT rule when unset).
fn principal_rules(listener: &str, props: &SecurityProps) -> anyhow::Result<Arc<PrincipalRules>> {
    match props.get(listener, "ssl.principal.mapping.rules") {
        Some(rules) => Ok(Arc::new(PrincipalRules::parse(rules).map_err(|e| {
            anyhow::anyhow!("ssl.principal.mapping.rules for listener {listener}: {e}")
        })?)),
        None => Ok(Arc::new(PrincipalRules::default())),
    }
}

/// How one Kafka listener secures its connections.
#[derive(Debug, Clone)]
pub struct ListenerSecurity {
    pub protocol: SecurityProtocol,
    /// The TLS server set-up, for `SSL` and `SASL_SSL`.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// `ssl.principal.mapping.rules`: client-certificate subjects to principal names (`SSL`).
    pub principal_rules: Arc<PrincipalRules>,
    /// The enabled mechanisms and their users, for `SASL_PLAINTEXT` and `SASL_SSL`.
    pub sasl: Option<Arc<sasl::SaslConfig>>,
}

impl ListenerSecurity {
    /// A PLAINTEXT listener: every connection is `User:ANONYMOUS`.
    pub fn plaintext() -> Self {
        ListenerSecurity {
            protocol: SecurityProtocol::Plaintext,
            tls: None,
            principal_rules: Arc::new(PrincipalRules::default()),
            sasl: None,
        }
    }

    /// Builds listener `listener`'s security from the node's keys.
    pub fn build(
        listener: &str,
        protocol: SecurityProtocol,
        props: &SecurityProps,
    ) -> anyhow::Result<Self> {
        let tls = if protocol.uses_tls() {
            Some(Arc::new(tls::server_config(listener, props)?))
        } else {
            None
        };
        let principal_rules = principal_rules(listener, props)?;
        let sasl = if protocol.uses_sasl() {
            Some(Arc::new(sasl::SaslConfig::build(listener, props)?))
        } else {
            if let Some(m) = props.get_listener_only(listener, "sasl.enabled.mechanisms") {
                bail!(
                    "listener {listener} is {} but sets sasl.enabled.mechanisms={m}: map it to SASL_PLAINTEXT or SASL_SSL in listener.security.protocol.map",
                    protocol.name()
                );
            }
            None
        };
        Ok(ListenerSecurity { protocol, tls, principal_rules, sasl })
    }
}
