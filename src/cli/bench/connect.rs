//! `samsa bench connect`: the connection set-up rate. Each connection is what a client does
//! before its first request: TCP connect, the TLS handshake and SASL authentication when
//! `--command-config` asks for them (SCRAM's two round trips and the client's PBKDF2 included),
//! and ApiVersions; then it is closed. `--concurrency` tasks open connections in a loop until
//! `--connections` have been set up; a failed set-up ends the run with its error.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::Args;
use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressStyle};

use super::histogram;
use crate::cli::ClientArgs;
use crate::client::KafkaClient;
use crate::client::security;

#[derive(Debug, Args)]
pub struct ConnectBench {
    /// Connections to set up (each is closed once set up).
    #[arg(long, default_value_t = 2000)]
    pub connections: u64,
    /// Connections being set up at once.
    #[arg(long, default_value_t = 8)]
    pub concurrency: usize,
    #[command(flatten)]
    pub client: ClientArgs,
}

pub(super) async fn run(b: ConnectBench) -> anyhow::Result<()> {
    let how = match security::installed() {
        None => "PLAINTEXT".to_string(),
        Some(s) => match &s.sasl {
            Some(login) => format!("{} {}", s.protocol.name(), login.mechanism),
            None => s.protocol.name().to_string(),
        },
    };
    let bar = ProgressBar::new(b.connections);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} connections {per_sec} eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..b.concurrency.max(1) {
        let (next, bar, addr, total) =
            (next.clone(), bar.clone(), b.client.bootstrap_server.clone(), b.connections);
        tasks.spawn(async move {
            let mut set_up_us = histogram()?;
            while next.fetch_add(1, Ordering::Relaxed) < total {
                let t0 = Instant::now();
                drop(KafkaClient::connect(&addr).await?);
                set_up_us.saturating_record(t0.elapsed().as_micros() as u64);
                bar.inc(1);
            }
            anyhow::Ok(set_up_us)
        });
    }
    let mut set_up_us: Histogram<u64> = histogram()?;
    while let Some(done) = tasks.join_next().await {
        set_up_us.add(done??)?;
    }
    let elapsed = started.elapsed();
    bar.finish_and_clear();
    print(&how, b.concurrency.max(1), &set_up_us, elapsed)
}

fn print(
    how: &str,
    concurrency: usize,
    set_up_us: &Histogram<u64>,
    elapsed: Duration,
) -> anyhow::Result<()> {
    let secs = elapsed.as_secs_f64().max(1e-9);
    let q = |p: f64| set_up_us.value_at_quantile(p) as f64 / 1000.0;
    outln!(
        "connect {how} concurrency={concurrency}: {} connections in {secs:.2} s: {:.0} connections/s; set-up ms p50 {:.2} p99 {:.2} max {:.2}",
        set_up_us.len(),
        set_up_us.len() as f64 / secs,
        q(0.5),
        q(0.99),
        set_up_us.max() as f64 / 1000.0
    );
    Ok(())
}
