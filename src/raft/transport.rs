//! How nodes reach each other's CONTROLLER listener (raft, controller calls, replication,
//! transaction markers): plain TCP, or TLS when the listener is mapped to `SSL`.
//!
//! With TLS the dialling node checks the peer's certificate against the host it dials (the
//! listener's trust store) and presents the listener's own key store as its client
//! certificate; the listener refuses a handshake without a trusted client certificate when it
//! sets `ssl.client.auth=required`, so only nodes holding a certificate from the cluster's CA
//! take part in the quorum. With an authorizer, a peer's certificate principal (through
//! `ssl.principal.mapping.rules`) must also be allowed CLUSTER_ACTION on the cluster, as
//! Kafka requires of the principals on its controller and inter-broker listeners (put the
//! nodes' principals in `super.users`).
//!
//! Invariants: every handshake is bounded by [`PEER_TLS_HANDSHAKE_TIMEOUT`], one slow or
//! failed handshake never holds up the accept loop, and a failure is logged with the peer's
//! address and the reason only.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio_rustls::{TlsAcceptor, TlsConnector};
use tonic::transport::Channel;

use crate::security::principal::certificate_principal;
use crate::security::{PeerTls, Principal};
use tonic::transport::server::{Connected, TcpConnectInfo};

/// How long a TLS handshake with a peer may take, either way.
pub(crate) const PEER_TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Accepted connections waiting for the gRPC server to take them.
const ACCEPTED_BACKLOG: usize = 64;

/// Dials the other nodes: creates the lazily connecting channels every peer client uses.
#[derive(Clone, Default)]
pub(crate) struct Dialer {
    tls: Option<TlsConnector>,
}

impl std::fmt::Debug for Dialer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dialer").field("tls", &self.tls.is_some()).finish()
    }
}

impl Dialer {
    /// Plain TCP.
    pub(crate) fn plaintext() -> Self {
        Dialer { tls: None }
    }

    /// TLS with `config` (its client certificate and the CA that signs the peers).
    pub(crate) fn tls(config: Arc<rustls::ClientConfig>) -> Self {
        Dialer { tls: Some(TlsConnector::from(config)) }
    }

    /// A lazily connecting channel to `addr` (host:port), reconnected by tonic after failures.
    pub(crate) fn channel(&self, addr: &str) -> Result<Channel, tonic::transport::Error> {
        let endpoint = super::network::endpoint(addr)?;
        let Some(tls) = self.tls.clone() else {
            return Ok(endpoint.connect_lazy());
        };
        Ok(endpoint.connect_with_connector_lazy(tower::service_fn(
            move |uri: tonic::codegen::http::Uri| {
                let tls = tls.clone();
                async move { dial_tls(&tls, &uri).await.map(hyper_util::rt::TokioIo::new) }
            },
        )))
    }
}

async fn dial_tls(
    tls: &TlsConnector,
    uri: &tonic::codegen::http::Uri,
) -> io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
    let host = uri.host().ok_or_else(|| io::Error::other("peer address without a host"))?;
    let port = uri.port_u16().ok_or_else(|| io::Error::other("peer address without a port"))?;
    let host = host.trim_matches(['[', ']']);
    let name = rustls::pki_types::ServerName::try_from(host.to_string()).map_err(|_| {
        io::Error::other(format!("'{host}' is not a name a certificate can be checked against"))
    })?;
    let connect = async {
        let tcp = TcpStream::connect((host, port)).await?;
        tcp.set_nodelay(true)?;
        tls.connect(name, tcp).await
    };
    tokio::time::timeout(PEER_TLS_HANDSHAKE_TIMEOUT, connect).await.map_err(|_| {
        io::Error::new(io::ErrorKind::TimedOut, "TLS handshake with the peer timed out")
    })?
}

/// One accepted TLS connection, as tonic's server takes it.
pub(crate) struct TlsConn(tokio_rustls::server::TlsStream<TcpStream>);

impl Connected for TlsConn {
    type ConnectInfo = TcpConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.0.get_ref().0.connect_info()
    }
}

impl AsyncRead for TlsConn {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for TlsConn {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.0.is_write_vectored()
    }
}

/// Decides whether a peer principal, connecting from an IP address, may use the listener.
pub(crate) type Admission = Arc<dyn Fn(&Principal, &str) -> bool + Send + Sync>;

/// The TLS connections accepted on `listener` until `stop`, each handshake run on its own
/// task; a connection whose principal `admit` refuses is closed.
pub(crate) fn tls_incoming(
    listener: TcpListener,
    tls: &PeerTls,
    admit: Admission,
    mut stop: watch::Receiver<bool>,
) -> impl futures_util::Stream<Item = io::Result<TlsConn>> + Send + 'static {
    let acceptor = TlsAcceptor::from(tls.server.clone());
    let rules = tls.principal_rules.clone();
    let (tx, rx) = mpsc::channel::<TlsConn>(ACCEPTED_BACKLOG);
    tokio::spawn(async move {
        let stopped = async move {
            let _ = stop.wait_for(|s| *s).await;
        };
        tokio::pin!(stopped);
        loop {
            let (tcp, peer) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        tracing::warn!(error = %e, "controller listener: accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
                () = &mut stopped => return,
                () = tx.closed() => return,
            };
            let _ = tcp.set_nodelay(true);
            let (acceptor, tx, rules, admit) =
                (acceptor.clone(), tx.clone(), rules.clone(), admit.clone());
            tokio::spawn(async move {
                match tokio::time::timeout(PEER_TLS_HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                    Ok(Ok(tls)) => match certificate_principal(
                        tls.get_ref()
                            .1
                            .peer_certificates()
                            .and_then(|c| c.first())
                            .map(|c| c.as_ref()),
                        &rules,
                    ) {
                        Ok(p) if admit(&p, &peer.ip().to_string()) => {
                            let _ = tx.send(TlsConn(tls)).await;
                        }
                        Ok(p) => tracing::warn!(
                            peer = %peer,
                            principal = %p,
                            "controller listener: principal refused, it is not allowed CLUSTER_ACTION on the cluster (add it to super.users)"
                        ),
                        Err(why) => {
                            tracing::warn!(peer = %peer, "controller listener: {why}")
                        }
                    },
                    Ok(Err(e)) => {
                        tracing::warn!(peer = %peer, error = %e, "controller listener: TLS handshake refused")
                    }
                    Err(_) => {
                        tracing::warn!(peer = %peer, "controller listener: TLS handshake timed out")
                    }
                }
            });
        }
    });
    futures_util::stream::unfold(
        rx,
        |mut rx| async move { rx.recv().await.map(|conn| (Ok(conn), rx)) },
    )
}
