//! `samsa dev`: one node with embedded defaults, graceful on Ctrl-C and SIGTERM.

use std::net::SocketAddr;

use anyhow::Context;
use tokio::net::TcpListener;

use super::DevArgs;
use crate::broker::Broker;
use crate::config::broker::BrokerConfig;
use crate::kafka::server;

pub(super) async fn run(args: DevArgs) -> anyhow::Result<()> {
    let addr: SocketAddr = format!("{}:{}", args.host, args.port)
        .parse()
        .with_context(|| format!("'{}:{}' is not a valid listen address", args.host, args.port))?;
    let listener = TcpListener::bind(addr).await.with_context(|| {
        format!("cannot listen on {addr}: is Kafka or another samsa already running there? Pick another --port")
    })?;
    let bound = listener.local_addr()?;
    let mut config = BrokerConfig::dev(args.data_dir, bound);
    config
        .apply_overrides(args.overrides.iter().map(String::as_str))
        .context("invalid --override")?;
    // The metadata quorum's (internal) listener: an ephemeral loopback port for a lone node.
    let controller_listener = TcpListener::bind(config.controller_listener)
        .await
        .with_context(|| format!("cannot listen on {}", config.controller_listener))?;
    config.controller_advertised = controller_listener.local_addr()?.to_string();
    let data_dir = config.data_dir.clone();
    let broker = Broker::start(config, controller_listener).await?;
    let cluster_id = broker.metadata.image().cluster_id.clone().unwrap_or_default();
    println!(
        "samsa dev ready: Kafka listener {bound}, node {}, cluster {cluster_id}, data in {}",
        broker.config.node_id,
        data_dir.display()
    );
    server::serve(listener, broker.clone(), shutdown_signal()).await;
    broker.shutdown().await;
    println!("samsa dev stopped: logs flushed and closed");
    Ok(())
}

/// Resolves on Ctrl-C or SIGTERM.
pub(super) async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
