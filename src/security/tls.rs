//! A listener's TLS server set-up from Kafka's `ssl.*` keys, with rustls on the ring provider.
//!
//! Key store: `ssl.keystore.type=PEM` (samsa's default; Kafka's JKS and PKCS12 are refused with
//! the command that converts them), either `ssl.keystore.location` (one PEM file with the
//! private key and the certificate chain) or `ssl.keystore.certificate.chain` +
//! `ssl.keystore.key` (PEM text in the value). An `ENCRYPTED PRIVATE KEY` (PKCS#8, PBES2) is
//! opened with `ssl.key.password`. Trust store: `ssl.truststore.location` or
//! `ssl.truststore.certificates`, PEM certificates. `ssl.client.auth` is `none`, `requested` or
//! `required`; `ssl.enabled.protocols` picks TLSv1.2 / TLSv1.3; `ssl.cipher.suites` narrows the
//! suites by their IANA names.
//!
//! Invariant: errors name the key and the file, never the key material or a password.

use std::sync::Arc;

use anyhow::{Context, bail};
use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig, SupportedProtocolVersion};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use super::props::SecurityProps;

/// `ssl.client.auth`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    None,
    Requested,
    Required,
}

const JKS_HINT: &str = "samsa reads PEM key stores: convert with `keytool -importkeystore -srckeystore server.keystore.jks -destkeystore server.p12 -deststoretype PKCS12` and then `openssl pkcs12 -in server.p12 -nodes -out server.pem`, and set ssl.keystore.type=PEM, ssl.keystore.location=server.pem";

/// Builds the TLS server configuration of `listener`.
pub fn server_config(listener: &str, props: &SecurityProps) -> anyhow::Result<ServerConfig> {
    let get = |key: &str| props.get(listener, key);
    let in_listener = || format!("listener {listener}");
    check_store_type(get("ssl.keystore.type"), "ssl.keystore.type")?;
    check_store_type(get("ssl.truststore.type"), "ssl.truststore.type")?;
    let (chain, key) = key_store(listener, props).with_context(in_listener)?;
    let client_auth = match get("ssl.client.auth").map(str::to_lowercase).as_deref() {
        None | Some("none") => ClientAuth::None,
        Some("requested") => ClientAuth::Requested,
        Some("required") => ClientAuth::Required,
        Some(other) => {
            bail!(
                "ssl.client.auth={other} for listener {listener}: use none, requested or required"
            )
        }
    };
    let provider = Arc::new(provider(get("ssl.cipher.suites")).with_context(in_listener)?);
    let versions = protocols(get("ssl.enabled.protocols")).with_context(in_listener)?;
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&versions)
        .with_context(|| format!("ssl.enabled.protocols and ssl.cipher.suites of listener {listener} leave nothing in common"))?;
    let builder = match client_auth {
        ClientAuth::None => builder.with_no_client_auth(),
        ClientAuth::Requested | ClientAuth::Required => {
            let roots = trust_store(listener, props)?.with_context(|| {
                format!("ssl.client.auth={client_auth:?} for listener {listener} needs a trust store: set ssl.truststore.location (PEM CA certificates)")
            })?;
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            let verifier = if client_auth == ClientAuth::Requested {
                verifier.allow_unauthenticated()
            } else {
                verifier
            };
            builder.with_client_cert_verifier(verifier.build().with_context(|| {
                format!("cannot verify client certificates on listener {listener}")
            })?)
        }
    };
    builder.with_single_cert(chain, key).with_context(|| {
        format!(
            "the key store of listener {listener}: the private key does not fit the certificate"
        )
    })
}

fn check_store_type(value: Option<&str>, key: &str) -> anyhow::Result<()> {
    match value.map(str::to_uppercase).as_deref() {
        None | Some("PEM") => Ok(()),
        Some("JKS") | Some("PKCS12") => bail!("{key}={}: {JKS_HINT}", value.unwrap_or_default()),
        Some(other) => bail!("{key}={other} is not a key store type samsa reads (PEM)"),
    }
}

/// The certificate chain and private key: inline values, or one PEM file.
fn key_store(
    listener: &str,
    props: &SecurityProps,
) -> anyhow::Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)> {
    let password = props.get(listener, "ssl.key.password");
    let inline_chain = props.get(listener, "ssl.keystore.certificate.chain");
    let inline_key = props.get(listener, "ssl.keystore.key");
    let (chain_pem, key_pem, source) = match (inline_chain, inline_key) {
        (Some(c), Some(k)) => {
            (c.as_bytes().to_vec(), k.as_bytes().to_vec(), "ssl.keystore.key".to_string())
        }
        (Some(_), None) | (None, Some(_)) => {
            bail!("set both ssl.keystore.certificate.chain and ssl.keystore.key, or neither")
        }
        (None, None) => {
            let path = props.get(listener, "ssl.keystore.location").context(
                "a TLS listener needs a key store: set ssl.keystore.location (a PEM file with the private key and certificate chain)",
            )?;
            let bytes = std::fs::read(path)
                .with_context(|| format!("cannot read ssl.keystore.location {path}"))?;
            (bytes.clone(), bytes, format!("ssl.keystore.location {path}"))
        }
    };
    let chain = certificates(&chain_pem)
        .with_context(|| format!("no certificate in the key store ({source})"))?;
    let key = private_key(&key_pem, password).with_context(|| format!("in {source}"))?;
    Ok((chain, key))
}

fn certificates(pem: &[u8]) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<_, _>>()
        .map_err(|e| anyhow::anyhow!("malformed PEM certificate: {e}"))?;
    if certs.is_empty() {
        bail!("no -----BEGIN CERTIFICATE----- block found");
    }
    Ok(certs)
}

const ENCRYPTED_BEGIN: &str = "-----BEGIN ENCRYPTED PRIVATE KEY-----";
const ENCRYPTED_END: &str = "-----END ENCRYPTED PRIVATE KEY-----";

/// The private key in `pem`: PKCS#8, PKCS#1 (RSA) or SEC1 (EC), or an encrypted PKCS#8 key
/// opened with `password` (the listeners' and the tools' key stores alike).
pub(crate) fn private_key(
    pem: &[u8],
    password: Option<&str>,
) -> anyhow::Result<PrivateKeyDer<'static>> {
    let text = String::from_utf8_lossy(pem);
    if let Some(start) = text.find(ENCRYPTED_BEGIN) {
        let end = text[start..].find(ENCRYPTED_END).context("unterminated encrypted key block")?
            + start
            + ENCRYPTED_END.len();
        let password = password
            .context("the private key is encrypted: set ssl.key.password to its password")?;
        let (_, der) = pkcs8::der::pem::decode_vec(text[start..end].as_bytes())
            .map_err(|e| anyhow::anyhow!("malformed encrypted private key: {e}"))?;
        let info = pkcs8::EncryptedPrivateKeyInfoOwned::try_from(der.as_slice())
            .map_err(|e| anyhow::anyhow!("malformed encrypted private key: {e}"))?;
        let plain = info.decrypt(password).map_err(|_| {
            anyhow::anyhow!("cannot decrypt the private key: is ssl.key.password right? (PBES2 keys, as `openssl pkcs8 -topk8 -v2 aes-256-cbc` writes, are supported)")
        })?;
        return Ok(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(plain.as_bytes().to_vec())));
    }
    if text.contains("Proc-Type: 4,ENCRYPTED") {
        bail!(
            "the private key uses OpenSSL's legacy PEM encryption: convert it with `openssl pkcs8 -topk8 -v2 aes-256-cbc -in key.pem -out key.p8.pem`"
        );
    }
    PrivateKeyDer::from_pem_slice(pem).map_err(|_| {
        anyhow::anyhow!("no private key found (expected a PRIVATE KEY, RSA PRIVATE KEY, EC PRIVATE KEY or ENCRYPTED PRIVATE KEY block)")
    })
}

/// The TLS client set-up a node dials `listener` of another node with (the CONTROLLER
/// listener: raft, replication, controller calls): the listener's trust store checks the
/// peer's certificate against the host it dials, and the listener's own key store is the
/// client certificate, so `ssl.client.auth=required` makes the listener mutual TLS.
pub fn peer_client_config(
    listener: &str,
    props: &SecurityProps,
) -> anyhow::Result<rustls::ClientConfig> {
    let get = |key: &str| props.get(listener, key);
    let in_listener = || format!("listener {listener}");
    let (chain, key) = key_store(listener, props).with_context(in_listener)?;
    let roots = trust_store(listener, props)?.with_context(|| {
        format!("listener {listener} is dialled by the other nodes, which check its certificate: set ssl.truststore.location (PEM CA certificates)")
    })?;
    let provider = Arc::new(provider(get("ssl.cipher.suites")).with_context(in_listener)?);
    let versions = protocols(get("ssl.enabled.protocols")).with_context(in_listener)?;
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&versions)
        .with_context(|| format!("ssl.enabled.protocols and ssl.cipher.suites of listener {listener} leave nothing in common"))?
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)
        .with_context(|| format!("the key store of listener {listener}: the private key does not fit the certificate"))?;
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(config)
}

/// The trust store, if one is configured.
pub fn trust_store(listener: &str, props: &SecurityProps) -> anyhow::Result<Option<RootCertStore>> {
    let (pem, source) = match (
        props.get(listener, "ssl.truststore.certificates"),
        props.get(listener, "ssl.truststore.location"),
    ) {
        (Some(inline), _) => {
            (inline.as_bytes().to_vec(), "ssl.truststore.certificates".to_string())
        }
        (None, Some(path)) => (
            std::fs::read(path)
                .with_context(|| format!("cannot read ssl.truststore.location {path}"))?,
            format!("ssl.truststore.location {path}"),
        ),
        (None, None) => return Ok(None),
    };
    let mut roots = RootCertStore::empty();
    for cert in certificates(&pem).with_context(|| format!("in {source}"))? {
        roots.add(cert).with_context(|| format!("a certificate in {source} is not a usable CA"))?;
    }
    Ok(Some(roots))
}

/// `ssl.enabled.protocols` (Kafka's default: TLSv1.2,TLSv1.3). Older versions are skipped
/// with a warning: rustls does not speak them.
fn protocols(value: Option<&str>) -> anyhow::Result<Vec<&'static SupportedProtocolVersion>> {
    let Some(list) = value else {
        return Ok(vec![&rustls::version::TLS13, &rustls::version::TLS12]);
    };
    let mut out = Vec::new();
    for p in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match p {
            "TLSv1.3" => out.push(&rustls::version::TLS13),
            "TLSv1.2" => out.push(&rustls::version::TLS12),
            "TLSv1" | "TLSv1.1" | "SSLv3" => {
                tracing::warn!(
                    protocol = p,
                    "ssl.enabled.protocols: {p} is not served (TLS 1.2 and 1.3 are)"
                )
            }
            other => bail!("ssl.enabled.protocols: unknown protocol {other} (TLSv1.2, TLSv1.3)"),
        }
    }
    if out.is_empty() {
        bail!(
            "ssl.enabled.protocols={list} leaves no protocol samsa serves: include TLSv1.2 or TLSv1.3"
        );
    }
    Ok(out)
}

/// The ring provider, its cipher suites narrowed to `ssl.cipher.suites` when set.
fn provider(suites: Option<&str>) -> anyhow::Result<CryptoProvider> {
    // ring, as DESIGN.md chose: it builds into the static musl binary with no C toolchain
    // beyond cc; rustls 0.23.48 deprecates it only for lacking post-quantum key exchange.
    #[expect(deprecated, reason = "ring has no post-quantum key exchange; accepted, see above")]
    let mut provider = rustls::crypto::ring::default_provider();
    let Some(list) = suites else { return Ok(provider) };
    let wanted: Vec<&str> = list.split(',').map(str::trim).filter(|s| !s.is_empty()).collect();
    let name_of = |s: &rustls::SupportedCipherSuite| {
        s.suite().as_str().map(|n| n.replacen("TLS13_", "TLS_", 1)).unwrap_or_default()
    };
    for w in &wanted {
        if !provider.cipher_suites.iter().any(|s| name_of(s) == *w) {
            let known: Vec<String> = provider.cipher_suites.iter().map(name_of).collect();
            bail!("ssl.cipher.suites: {w} is not a suite samsa serves ({})", known.join(", "));
        }
    }
    provider.cipher_suites.retain(|s| wanted.contains(&name_of(s).as_str()));
    Ok(provider)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_types_protocols_and_suites_are_checked() {
        assert!(check_store_type(Some("PEM"), "k").is_ok());
        let e = check_store_type(Some("JKS"), "ssl.keystore.type").expect_err("jks").to_string();
        assert!(e.contains("keytool") && e.contains("openssl"), "{e}");
        assert_eq!(protocols(Some("TLSv1.3")).expect("ok").len(), 1);
        assert!(protocols(Some("TLSv1.1")).is_err());
        assert!(protocols(Some("TLSv9")).is_err());
        let p = provider(Some("TLS_AES_256_GCM_SHA384,TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"))
            .expect("known suites");
        assert_eq!(p.cipher_suites.len(), 2);
        assert!(provider(Some("TLS_RSA_WITH_RC4_128_MD5")).is_err());
    }

    #[test]
    fn a_missing_password_for_an_encrypted_key_is_named() {
        let pem = format!("{ENCRYPTED_BEGIN}\nMAA=\n{ENCRYPTED_END}\n");
        let e = private_key(pem.as_bytes(), None).expect_err("no password").to_string();
        assert!(e.contains("ssl.key.password"), "{e}");
    }
}
