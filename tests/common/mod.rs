//! An in-process broker on an ephemeral loopback port, for integration tests.
#![allow(dead_code, unreachable_pub)]

pub mod wire;

use std::net::SocketAddr;
use std::sync::Arc;

use samsa::broker::Broker;
use samsa::config::broker::BrokerConfig;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

pub struct TestBroker {
    pub addr: SocketAddr,
    pub broker: Arc<Broker>,
    pub dir: Dir,
    stop: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<()>>,
}

/// The test's data directory: owned (deleted at the end) or borrowed from an earlier broker.
pub enum Dir {
    Owned(tempfile::TempDir),
    Kept(std::path::PathBuf),
}

impl Dir {
    pub fn path(&self) -> &std::path::Path {
        match self {
            Dir::Owned(t) => t.path(),
            Dir::Kept(p) => p,
        }
    }
}

impl TestBroker {
    pub async fn start(overrides: &[&str]) -> TestBroker {
        let dir = tempfile::tempdir().expect("tempdir");
        Self::start_with(Dir::Owned(dir), 0, overrides).await
    }

    /// Starts a broker on an existing directory (a restart), on `port`.
    pub async fn start_in(dir: &std::path::Path, port: u16, overrides: &[&str]) -> TestBroker {
        Self::start_with(Dir::Kept(dir.to_path_buf()), port, overrides).await
    }

    async fn start_with(dir: Dir, port: u16, overrides: &[&str]) -> TestBroker {
        let listener = TcpListener::bind(("127.0.0.1", port)).await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let mut config = BrokerConfig::dev(dir.path().join("data"), addr);
        config.apply_overrides(overrides.iter().copied()).expect("overrides");
        let controller = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        config.controller_advertised = controller.local_addr().expect("addr").to_string();
        let broker = Broker::start(config, controller).await.expect("broker starts");
        let (tx, rx) = oneshot::channel();
        let b = broker.clone();
        let server = tokio::spawn(async move {
            samsa::kafka::server::serve(listener, b, async {
                let _ = rx.await;
            })
            .await
        });
        TestBroker { addr, broker, dir, stop: Some(tx), server: Some(server) }
    }

    pub fn bootstrap(&self) -> String {
        self.addr.to_string()
    }

    /// Stops the broker but leaves its directory for a restart (the caller then owns cleanup
    /// through the restarted broker's `Dir::Kept`; the temp dir is leaked on purpose).
    pub async fn stop_keep_data(mut self) {
        if let Dir::Owned(t) = std::mem::replace(&mut self.dir, Dir::Kept(Default::default())) {
            let _ = t.keep();
        }
        self.stop_inner().await;
    }

    pub async fn stop(mut self) {
        self.stop_inner().await;
    }

    async fn stop_inner(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(s) = self.server.take() {
            let _ = s.await;
        }
        self.broker.shutdown().await;
    }
}
