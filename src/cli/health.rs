//! `samsa health`: asks a node's admin listener whether it is ready (or, with `--live`, alive)
//! and exits 0 or 1. Container images built `FROM scratch` have no shell or curl, so their
//! healthcheck runs this. `--cacert` speaks TLS to an `admin.listener.security.protocol=SSL`
//! listener (checking its certificate against the host name); `--token-file` sends the bearer
//! token `admin.listener.auth.token.file` requires.

use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How long the whole check may take.
const HEALTH_TIMEOUT: Duration = Duration::from_secs(3);
/// Largest response read.
const RESPONSE_BYTES_MAX: u64 = 64 * 1024;

#[derive(Debug, Args)]
pub struct HealthArgs {
    /// The node's admin listener (its `admin.listener`).
    #[arg(long, default_value = "127.0.0.1:9644")]
    pub admin: String,
    /// Check liveness (`/healthz`) instead of readiness (`/readyz`).
    #[arg(long)]
    pub live: bool,
    /// The CA (PEM) that signed the admin listener's certificate: connect over TLS.
    #[arg(long, value_name = "FILE")]
    pub cacert: Option<std::path::PathBuf>,
    /// A file holding the admin listener's bearer token (its `admin.listener.auth.token.file`).
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<std::path::PathBuf>,
}

pub(super) async fn run(a: HealthArgs) -> anyhow::Result<()> {
    let path = if a.live { "/healthz" } else { "/readyz" };
    let addr =
        a.admin.strip_prefix("https://").or(a.admin.strip_prefix("http://")).unwrap_or(&a.admin);
    let token = match &a.token_file {
        Some(f) => Some(crate::admin::auth::AdminToken::from_file(f).map_err(|e| {
            anyhow::anyhow!(
                "{}",
                format!("{e:#}").replace("admin.listener.auth.token.file", "--token-file")
            )
        })?),
        None => None,
    };
    let tls = match &a.cacert {
        Some(ca) => {
            let pairs = [
                ("security.protocol".to_string(), "SSL".to_string()),
                ("ssl.truststore.location".to_string(), ca.display().to_string()),
            ];
            let security =
                crate::client::security::ClientSecurity::from_pairs(&pairs).context("--cacert")?;
            Some(security)
        }
        None => None,
    };
    let request = Request { addr, path, token: token.as_ref(), tls: tls.as_ref() };
    let (status, body) = tokio::time::timeout(HEALTH_TIMEOUT, get(&request))
        .await
        .with_context(|| format!("no answer from {addr} within {HEALTH_TIMEOUT:?}"))??;
    outln!("{}", body.trim_end());
    if status == 401 {
        bail!("{addr}{path} answered 401: pass the admin listener's token with --token-file");
    }
    if status != 200 {
        bail!("{addr}{path} answered {status}");
    }
    Ok(())
}

struct Request<'a> {
    addr: &'a str,
    path: &'a str,
    token: Option<&'a crate::admin::auth::AdminToken>,
    tls: Option<&'a crate::client::security::ClientSecurity>,
}

async fn get(r: &Request<'_>) -> anyhow::Result<(u16, String)> {
    let stream = TcpStream::connect(r.addr).await.with_context(|| {
        format!("cannot connect to {}; is admin.listener set on that node?", r.addr)
    })?;
    let authorization =
        r.token.map_or(String::new(), |t| format!("Authorization: Bearer {}\r\n", t.expose()));
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n{authorization}\r\n",
        r.path, r.addr
    );
    let raw = match r.tls.and_then(|s| s.tls.clone().map(|c| (s, c))) {
        Some((security, config)) => {
            let name = security.server_name(r.addr)?;
            let tls = tokio_rustls::TlsConnector::from(config)
                .connect(name, stream)
                .await
                .with_context(|| format!("TLS with {} failed: is admin.listener.security.protocol=SSL there, and --cacert its CA?", r.addr))?;
            exchange(tls, &request).await?
        }
        None => exchange(stream, &request).await?,
    };
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .context("not an HTTP response (is the listener TLS? pass --cacert)")?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .context("no HTTP status in the response")?;
    Ok((status, body.to_string()))
}

async fn exchange<S>(mut stream: S, request: &str) -> anyhow::Result<Vec<u8>>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    stream.write_all(request.as_bytes()).await?;
    let mut raw = Vec::new();
    match (&mut stream).take(RESPONSE_BYTES_MAX).read_to_end(&mut raw).await {
        Ok(_) => Ok(raw),
        // A TLS peer that closed without close_notify after answering: the answer stands.
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !raw.is_empty() => Ok(raw),
        Err(e) => Err(e.into()),
    }
}
