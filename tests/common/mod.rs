//! An in-process broker on an ephemeral loopback port, for integration tests.
#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;
use std::sync::Arc;

use samsa::broker::Broker;
use samsa::config::broker::BrokerConfig;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

pub struct TestBroker {
    pub addr: SocketAddr,
    pub broker: Arc<Broker>,
    pub dir: tempfile::TempDir,
    stop: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<()>>,
}

impl TestBroker {
    pub async fn start(overrides: &[&str]) -> TestBroker {
        let dir = tempfile::tempdir().expect("tempdir");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
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

    pub async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(s) = self.server.take() {
            let _ = s.await;
        }
        self.broker.shutdown().await;
    }
}
