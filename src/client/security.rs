//! How samsa's own tools reach a secured cluster: Kafka's client properties from
//! `--command-config FILE` (`security.protocol`, `sasl.mechanism`, `sasl.username` /
//! `sasl.password` or `sasl.jaas.config`, `ssl.truststore.location` or `ssl.ca.location`,
//! `ssl.keystore.location` or `ssl.certificate.location` + `ssl.key.location` (an encrypted
//! PKCS#8 key opened with `ssl.key.password`),
//! `ssl.endpoint.identification.algorithm`), installed once per process.
//!
//! Invariant: passwords are held only here and never formatted into an error.

use std::sync::{Arc, OnceLock};

use anyhow::{Context, anyhow, bail};
use rustls::pki_types::ServerName;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

use crate::security::SecurityProtocol;
use crate::security::jaas;
use crate::security::sasl::Secret;
use crate::security::sasl::scram::ScramMechanism;

/// SASL credentials for the tools.
#[derive(Debug, Clone)]
pub struct SaslLogin {
    /// `PLAIN`, `SCRAM-SHA-256` or `SCRAM-SHA-512`.
    pub mechanism: String,
    pub username: String,
    pub password: Secret,
}

impl SaslLogin {
    pub fn scram(&self) -> Option<ScramMechanism> {
        ScramMechanism::parse(&self.mechanism)
    }
}

/// What a connection of the tools does after TCP connect.
#[derive(Debug, Clone)]
pub struct ClientSecurity {
    pub protocol: SecurityProtocol,
    /// The TLS set-up; the server's certificate is always checked against the host name
    /// (`ssl.endpoint.identification.algorithm=https`, Kafka's default).
    pub tls: Option<Arc<rustls::ClientConfig>>,
    pub sasl: Option<SaslLogin>,
}

static INSTALLED: OnceLock<ClientSecurity> = OnceLock::new();

/// Sets the security every connection of this process uses (once; the CLI calls it).
pub fn install(security: ClientSecurity) {
    let _ = INSTALLED.set(security);
}

/// The installed security, if any (PLAINTEXT otherwise).
pub fn installed() -> Option<&'static ClientSecurity> {
    INSTALLED.get()
}

impl ClientSecurity {
    /// Reads a Kafka client properties file.
    pub fn from_file(path: &std::path::Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read --command-config {}", path.display()))?;
        let pairs = crate::config::server::parse_properties(&text)
            .with_context(|| format!("in {}", path.display()))?;
        Self::from_pairs(&pairs).with_context(|| format!("in {}", path.display()))
    }

    pub fn from_pairs(pairs: &[(String, String)]) -> anyhow::Result<Self> {
        let props = Props(pairs);
        let get = |k: &str| props.get(k);
        let protocol = match get("security.protocol") {
            None => SecurityProtocol::Plaintext,
            Some(p) => SecurityProtocol::parse(p).with_context(|| {
                format!("security.protocol={p}: use PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL")
            })?,
        };
        let tls = if protocol.uses_tls() { Some(Arc::new(tls_config(&props)?)) } else { None };
        if get("ssl.endpoint.identification.algorithm").is_some_and(|v| v.trim().is_empty()) {
            bail!(
                "ssl.endpoint.identification.algorithm is empty: samsa's tools always check the broker's certificate against its host name; issue certificates with the advertised names (scripts/gen-certs.sh does)"
            );
        }
        let sasl = if protocol.uses_sasl() { Some(sasl_login(&props)?) } else { None };
        Ok(ClientSecurity { protocol, tls, sasl })
    }

    /// The name the server's certificate must carry for `addr` (`host:port`).
    pub fn server_name(&self, addr: &str) -> anyhow::Result<ServerName<'static>> {
        let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h).trim_matches(['[', ']']);
        ServerName::try_from(host.to_string())
            .map_err(|_| anyhow!("'{host}' is not a host name or IP address TLS can verify"))
    }
}

/// A properties file's pairs; the last occurrence of a key wins, as in Java's `Properties`.
struct Props<'a>(&'a [(String, String)]);

impl<'a> Props<'a> {
    fn get(&self, key: &str) -> Option<&'a str> {
        self.0.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }
}

fn sasl_login(props: &Props<'_>) -> anyhow::Result<SaslLogin> {
    let get = |k: &str| props.get(k);
    let mechanism =
        get("sasl.mechanism").or(get("sasl.mechanisms")).unwrap_or("GSSAPI").to_string();
    if mechanism != "PLAIN" && ScramMechanism::parse(&mechanism).is_none() {
        bail!(
            "sasl.mechanism={mechanism}: samsa's tools speak PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512"
        );
    }
    if let (Some(u), Some(p)) = (get("sasl.username"), get("sasl.password")) {
        return Ok(SaslLogin { mechanism, username: u.to_string(), password: Secret::new(p) });
    }
    let line = get("sasl.jaas.config").context(
        "SASL needs credentials: set sasl.username and sasl.password, or sasl.jaas.config=... username=\"...\" password=\"...\";",
    )?;
    let entries = jaas::parse(line).map_err(|e| anyhow!("sasl.jaas.config: {e}"))?;
    let entry = entries.first().context("sasl.jaas.config holds no login module")?;
    let username = entry.options.get("username").context("sasl.jaas.config has no username")?;
    let password = entry.options.get("password").context("sasl.jaas.config has no password")?;
    Ok(SaslLogin { mechanism, username: username.clone(), password: Secret::new(password) })
}

fn read_pem(key: &str, path: &str) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("cannot read {key} {path}"))
}

fn tls_config(props: &Props<'_>) -> anyhow::Result<rustls::ClientConfig> {
    let get = |k: &str| props.get(k);
    #[expect(deprecated, reason = "ring, as for the listeners (security/tls.rs)")]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    let trust = match (
        get("ssl.truststore.location"),
        get("ssl.ca.location"),
        get("ssl.truststore.certificates"),
    ) {
        (Some(p), _, _) => read_pem("ssl.truststore.location", p)?,
        (None, Some(p), _) => read_pem("ssl.ca.location", p)?,
        (None, None, Some(inline)) => inline.as_bytes().to_vec(),
        (None, None, None) => bail!(
            "TLS needs the cluster's CA: set ssl.truststore.location (or ssl.ca.location) to a PEM file"
        ),
    };
    for cert in CertificateDer::pem_slice_iter(&trust) {
        let cert = cert.map_err(|e| anyhow!("malformed CA certificate: {e}"))?;
        roots.add(cert).context("a CA certificate is not usable")?;
    }
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS set-up")?
        .with_root_certificates(roots);
    let identity = match (
        get("ssl.keystore.location"),
        get("ssl.certificate.location"),
        get("ssl.key.location"),
    ) {
        (Some(p), _, _) => {
            let pem = read_pem("ssl.keystore.location", p)?;
            Some((pem.clone(), pem))
        }
        (None, Some(c), Some(k)) => {
            Some((read_pem("ssl.certificate.location", c)?, read_pem("ssl.key.location", k)?))
        }
        (None, Some(_), None) | (None, None, Some(_)) => {
            bail!("set both ssl.certificate.location and ssl.key.location, or neither")
        }
        (None, None, None) => None,
    };
    match identity {
        None => Ok(builder.with_no_client_auth()),
        Some((chain_pem, key_pem)) => {
            let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&chain_pem)
                .collect::<Result<_, _>>()
                .map_err(|e| anyhow!("malformed client certificate: {e}"))?;
            let key = crate::security::tls::private_key(&key_pem, get("ssl.key.password"))
                .context("the client key (ssl.keystore.location or ssl.key.location)")?;
            builder
                .with_client_auth_cert(chain, key)
                .context("the client key does not fit its certificate")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(text: &str) -> Vec<(String, String)> {
        crate::config::server::parse_properties(text).expect("parses")
    }

    #[test]
    fn kafka_client_properties_are_read_both_ways() {
        let s = ClientSecurity::from_pairs(&pairs(
            "security.protocol=SASL_PLAINTEXT\nsasl.mechanism=SCRAM-SHA-512\n\
             sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username=\"alice\" password=\"s3cret\";\n",
        ))
        .expect("ok");
        let login = s.sasl.expect("sasl");
        assert_eq!(
            (login.username.as_str(), login.scram()),
            ("alice", Some(ScramMechanism::Sha512))
        );
        assert!(!format!("{login:?}").contains("s3cret"));
        let s = ClientSecurity::from_pairs(&pairs(
            "security.protocol=SASL_PLAINTEXT\nsasl.mechanism=PLAIN\nsasl.username=bob\nsasl.password=pw\n",
        ))
        .expect("ok");
        assert_eq!(s.sasl.expect("sasl").username, "bob");
        let e = ClientSecurity::from_pairs(&pairs("security.protocol=SSL\n")).expect_err("no CA");
        assert!(e.to_string().contains("ssl.truststore.location"));
        let e =
            ClientSecurity::from_pairs(&pairs("security.protocol=SASL_SSL2\n")).expect_err("bad");
        assert!(e.to_string().contains("SASL_SSL"));
        let e = ClientSecurity::from_pairs(&pairs(
            "security.protocol=SASL_PLAINTEXT\nsasl.mechanism=GSSAPI\nsasl.username=a\nsasl.password=hunter2\n",
        ))
        .expect_err("gssapi");
        assert!(!format!("{e:#}").contains("hunter2"));
    }
}
