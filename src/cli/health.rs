//! `samsa health`: asks a node's admin listener whether it is ready (or, with `--live`, alive)
//! and exits 0 or 1. Container images built `FROM scratch` have no shell or curl, so their
//! healthcheck runs this.

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
}

pub(super) async fn run(a: HealthArgs) -> anyhow::Result<()> {
    let path = if a.live { "/healthz" } else { "/readyz" };
    let (status, body) = tokio::time::timeout(HEALTH_TIMEOUT, get(&a.admin, path))
        .await
        .with_context(|| format!("no answer from {} within {HEALTH_TIMEOUT:?}", a.admin))??;
    outln!("{}", body.trim_end());
    if status != 200 {
        bail!("{}{path} answered {status}", a.admin);
    }
    Ok(())
}

async fn get(addr: &str, path: &str) -> anyhow::Result<(u16, String)> {
    let mut stream = TcpStream::connect(addr).await.with_context(|| {
        format!("cannot connect to {addr}; is admin.listener set on that node?")
    })?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await?;
    let mut raw = Vec::new();
    (&mut stream).take(RESPONSE_BYTES_MAX).read_to_end(&mut raw).await?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text.split_once("\r\n\r\n").context("not an HTTP response")?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .context("no HTTP status in the response")?;
    Ok((status, body.to_string()))
}
