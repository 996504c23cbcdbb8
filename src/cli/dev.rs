//! `samsa dev` (one node, embedded defaults) and `samsa server` (a cluster member configured
//! with Kafka's keys): both bind their listeners, start the node and stop it gracefully on
//! Ctrl-C or SIGTERM.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use tokio::net::TcpListener;

use super::DevArgs;
use crate::broker::Broker;
use crate::config::broker::BrokerConfig;
use crate::kafka::server;

#[derive(Debug, Args)]
pub struct ServerArgs {
    /// A properties file with Kafka's keys (node.id, process.roles, controller.quorum.voters,
    /// listeners, advertised.listeners, log.dirs, ...).
    pub config: Option<PathBuf>,
    /// A setting with Kafka's name, overriding the file and SAMSA_* variables. Repeatable.
    #[arg(long = "override", value_name = "KEY=VALUE")]
    pub overrides: Vec<String>,
    /// A SCRAM user the cluster is created with, as `kafka-storage format --add-scram`:
    /// `SCRAM-SHA-256=[name=admin,password=admin-secret]` (optionally `iterations=8192`).
    /// Written once, by the controller that creates the cluster; later changes go through
    /// `samsa user` / AlterUserScramCredentials. Repeatable.
    #[arg(
        long = "add-scram",
        value_name = "MECHANISM=[name=..,password=..]",
        env = "SAMSA_ADD_SCRAM",
        value_delimiter = ';'
    )]
    pub add_scram: Vec<String>,
}

pub(super) async fn dev(args: DevArgs) -> anyhow::Result<()> {
    let addr: SocketAddr = format!("{}:{}", args.host, args.port)
        .parse()
        .with_context(|| format!("'{}:{}' is not a valid listen address", args.host, args.port))?;
    let mut config = BrokerConfig::dev(args.data_dir, addr);
    config
        .apply_overrides(args.overrides.iter().map(String::as_str))
        .context("invalid --override")?;
    run_node(config, "samsa dev").await
}

pub(super) async fn server(args: ServerArgs) -> anyhow::Result<()> {
    let mut config =
        crate::config::server::load(args.config.as_deref(), std::env::vars(), &args.overrides)?;
    for (i, arg) in args.add_scram.iter().enumerate() {
        let credential = crate::security::sasl::scram::BootstrapCredential::parse(arg)
            .map_err(|e| anyhow::anyhow!("--add-scram #{}: {e}", i + 1))?;
        config.bootstrap_scram.push(credential);
    }
    run_node(config, "samsa server").await
}

/// Every listener a node binds before it starts (so a port in use fails at once, with a
/// message).
struct Listeners {
    kafka: Option<TcpListener>,
    /// Named extra Kafka listeners (`INTERNAL`, `EXTERNAL`, ...).
    extra: Vec<(String, TcpListener)>,
    controller: TcpListener,
    admin: Option<TcpListener>,
}

/// Binds the node's listeners, and advertises the ports actually bound where 0 was asked for.
async fn bind_listeners(config: &mut BrokerConfig) -> anyhow::Result<Listeners> {
    let kafka = if config.process_roles.broker {
        let l = TcpListener::bind(config.listener).await.with_context(|| {
            format!("cannot listen on {}: is Kafka or another samsa already running there? Pick another port", config.listener)
        })?;
        let bound = l.local_addr()?;
        if config.advertised_port == 0 || config.advertised_port == config.listener.port() {
            config.advertised_port = bound.port();
        }
        config.listener = bound;
        Some(l)
    } else {
        None
    };
    let mut extra = Vec::new();
    for l in &mut config.extra_listeners {
        let bound = TcpListener::bind(l.bind).await.with_context(|| {
            format!(
                "cannot listen on {} (listener {}): is another process using that port?",
                l.bind, l.name
            )
        })?;
        let addr = bound.local_addr()?;
        if l.advertised_port == 0 || l.advertised_port == l.bind.port() {
            l.advertised_port = addr.port();
        }
        l.bind = addr;
        extra.push((l.name.clone(), bound));
    }
    let controller = TcpListener::bind(config.controller_listener).await.with_context(|| {
        format!("cannot listen on {} (controller listener)", config.controller_listener)
    })?;
    if config.controller_listener.port() == 0 {
        // A lone node on an ephemeral port: advertise what was bound.
        config.controller_advertised = controller.local_addr()?.to_string();
    }
    let admin = match config.admin_listener {
        Some(addr) => Some(TcpListener::bind(addr).await.with_context(|| {
            format!("cannot listen on {addr} (admin.listener): is another samsa using that port?")
        })?),
        None => None,
    };
    Ok(Listeners { kafka, extra, controller, admin })
}

async fn run_node(mut config: BrokerConfig, what: &str) -> anyhow::Result<()> {
    let listeners = bind_listeners(&mut config).await?;
    let data_dir = config.data_dir.clone();
    let admin_security = crate::admin::auth::AdminSecurity::build(
        config.admin_listener_security_protocol,
        config.admin_listener_auth_token_file.as_deref(),
        &config.security_props,
    )?;
    let admin_scheme = if admin_security.tls.is_some() { "https" } else { "http" };
    let broker = Broker::start(config, listeners.controller).await?;
    let admin_addr = listeners.admin.as_ref().and_then(|l| l.local_addr().ok());
    if let Some(listener) = listeners.admin {
        let mut stop = broker.shutdown_signal();
        tokio::spawn(crate::admin::serve(listener, broker.clone(), admin_security, async move {
            let _ = stop.wait_for(|s| *s).await;
        }));
    }
    let cluster_id = broker.metadata.image().cluster_id.clone().unwrap_or_default();
    let kafka_addr = listeners
        .kafka
        .as_ref()
        .and_then(|l| l.local_addr().ok())
        .map_or("none".to_string(), |a| a.to_string());
    let admin_note = admin_addr.map_or(String::new(), |a| format!(", admin {admin_scheme}://{a}"));
    outln!(
        "{what} ready: Kafka listener {kafka_addr}, node {}, cluster {cluster_id}, data in {}{admin_note}",
        broker.config.node_id,
        data_dir.display()
    );
    let extra_servers: Vec<_> = listeners
        .extra
        .into_iter()
        .map(|(name, listener)| {
            tokio::spawn(server::serve_named(
                listener,
                std::sync::Arc::from(name.as_str()),
                broker.clone(),
                shutdown_signal(),
            ))
        })
        .collect();
    match listeners.kafka {
        Some(listener) => server::serve(listener, broker.clone(), shutdown_signal()).await,
        None => shutdown_signal().await,
    }
    for s in extra_servers {
        let _ = s.await;
    }
    broker.shutdown().await;
    outln!("{what} stopped: logs flushed and closed");
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
