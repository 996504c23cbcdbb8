//! How the admin listener is secured (samsa's own keys; Kafka has no such listener):
//! * `admin.listener.security.protocol=SSL` serves it over TLS with the `listener.name.admin.ssl.*`
//!   keys (else the node-wide `ssl.*`), exactly as a Kafka listener named `admin` reads them,
//!   `ssl.client.auth` included;
//! * `admin.listener.auth.token.file=PATH` requires `Authorization: Bearer <token>` (the file's
//!   content, surrounding white space trimmed) on every endpoint but `/healthz`, which a
//!   liveness probe must reach without credentials.
//!
//! Invariants: the token is compared in constant time and never formatted anywhere (`Debug`
//! prints `[hidden]`); a refusal is 401 with `WWW-Authenticate: Bearer` and says nothing of the
//! token; every TLS handshake is bounded by [`ADMIN_TLS_HANDSHAKE_TIMEOUT`].

use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;

use crate::security::SecurityProtocol;
use crate::security::props::SecurityProps;

/// The listener name the admin listener's TLS keys are read under (`listener.name.admin.`).
pub const ADMIN_LISTENER_NAME: &str = "admin";
/// How long a client has to complete the TLS handshake.
pub const ADMIN_TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest token file read; a bearer token is a line, not a document.
const TOKEN_FILE_BYTES_MAX: u64 = 4096;

/// A bearer token. Never shown.
#[derive(Clone)]
pub struct AdminToken(Arc<[u8]>);

impl fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AdminToken([hidden])")
    }
}

impl AdminToken {
    /// Reads the token from `path` (its content, trimmed). The error names the file, never
    /// its content.
    pub fn from_file(path: &Path) -> anyhow::Result<Self> {
        use std::io::Read as _;
        let file = std::fs::File::open(path).with_context(|| {
            format!("cannot read admin.listener.auth.token.file {}", path.display())
        })?;
        let mut raw = Vec::new();
        file.take(TOKEN_FILE_BYTES_MAX + 1).read_to_end(&mut raw).with_context(|| {
            format!("cannot read admin.listener.auth.token.file {}", path.display())
        })?;
        if raw.len() as u64 > TOKEN_FILE_BYTES_MAX {
            bail!(
                "admin.listener.auth.token.file {} is over {TOKEN_FILE_BYTES_MAX} bytes: it must hold only the token",
                path.display()
            );
        }
        let token = String::from_utf8(raw).map_err(|_| {
            anyhow::anyhow!("admin.listener.auth.token.file {} is not UTF-8 text", path.display())
        })?;
        let token = token.trim();
        if token.is_empty() || token.chars().any(|c| c.is_whitespace() || c.is_control()) {
            bail!(
                "admin.listener.auth.token.file {} must hold one token without spaces (e.g. `openssl rand -hex 32 > {}`)",
                path.display(),
                path.display()
            );
        }
        Ok(AdminToken(token.as_bytes().into()))
    }

    /// The token itself, for a client that sends it (`samsa health`); never log it.
    pub fn expose(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or_default()
    }

    /// Whether an `Authorization` header value presents this token.
    fn admits(&self, authorization: Option<&[u8]>) -> bool {
        let Some(presented) = authorization.and_then(|v| strip_bearer(v)) else { return false };
        presented.ct_eq(&self.0).into()
    }
}

/// The credentials of `Bearer <credentials>` (the scheme is case-insensitive, RFC 6750).
fn strip_bearer(value: &[u8]) -> Option<&[u8]> {
    let scheme = value.get(..7)?;
    scheme.eq_ignore_ascii_case(b"bearer ").then(|| value[7..].trim_ascii())
}

/// The admin listener's security, from the node's keys.
#[derive(Debug, Clone, Default)]
pub struct AdminSecurity {
    pub tls: Option<Arc<rustls::ServerConfig>>,
    pub token: Option<AdminToken>,
}

impl AdminSecurity {
    pub fn build(
        protocol: SecurityProtocol,
        token_file: Option<&Path>,
        props: &SecurityProps,
    ) -> anyhow::Result<Self> {
        let tls = match protocol {
            SecurityProtocol::Plaintext => None,
            SecurityProtocol::Ssl => {
                let mut config = crate::security::tls::server_config(ADMIN_LISTENER_NAME, props)
                    .context("admin.listener.security.protocol=SSL")?;
                config.alpn_protocols = vec![b"http/1.1".to_vec()];
                Some(Arc::new(config))
            }
            other => bail!(
                "admin.listener.security.protocol={}: the admin listener speaks HTTP, so PLAINTEXT or SSL (use admin.listener.auth.token.file to require a bearer token)",
                other.name()
            ),
        };
        let token = token_file.map(AdminToken::from_file).transpose()?;
        Ok(AdminSecurity { tls, token })
    }
}

/// Middleware: lets a request through only with the bearer token (when one is configured).
pub(super) async fn require_token(
    State(token): State<Option<AdminToken>>,
    request: Request,
    next: Next,
) -> Response {
    let Some(token) = token else { return next.run(request).await };
    let presented = request.headers().get(header::AUTHORIZATION).map(|v| v.as_bytes());
    if token.admits(presented) {
        return next.run(request).await;
    }
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, "Bearer realm=\"samsa\"")],
        "unauthorized: send Authorization: Bearer <the token in admin.listener.auth.token.file>\n",
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_is_read_trimmed_compared_whole_and_never_shown() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("token");
        std::fs::write(&path, "s3cr3t-token\n").expect("write");
        let token = AdminToken::from_file(&path).expect("token");
        assert!(token.admits(Some(b"Bearer s3cr3t-token")));
        assert!(token.admits(Some(b"bearer s3cr3t-token")));
        assert!(!token.admits(Some(b"Bearer s3cr3t")), "a prefix is not the token");
        assert!(!token.admits(Some(b"Bearer s3cr3t-token-and-more")));
        assert!(!token.admits(Some(b"Basic s3cr3t-token")));
        assert!(!token.admits(Some(b"Bearer")));
        assert!(!token.admits(None));
        assert!(!format!("{token:?}").contains("s3cr3t"));
        std::fs::write(&path, "two words").expect("write");
        let e = AdminToken::from_file(&path).expect_err("spaces");
        assert!(!format!("{e:#}").contains("words"), "{e:#}");
        std::fs::write(&path, "  \n").expect("write");
        assert!(AdminToken::from_file(&path).is_err(), "empty");
        let e = AdminToken::from_file(&dir.path().join("missing")).expect_err("missing");
        assert!(format!("{e:#}").contains("admin.listener.auth.token.file"), "{e:#}");
    }
}
