//! The Kafka listener: accepts connections on an already-bound socket and runs one task per
//! connection until the shutdown future resolves. On shutdown it stops accepting, lets each
//! connection answer the requests it has already read, and waits (bounded) for them to finish.
//!
//! Requests on one connection are handled one at a time, in order, as Kafka does; pipelined
//! requests are read ahead and their responses written in one batch. Fetched records are sent
//! from the segment files with `sendfile` (see `response.rs`) on plaintext connections, and
//! read and encrypted on TLS ones.
//!
//! A client over its quota (`crate::quota::client`) gets its answer at once and is then muted:
//! nothing more is read or handled from the connection until its throttle time has passed.
//!
//! A TLS listener completes the handshake (bounded by [`TLS_HANDSHAKE_TIMEOUT`]) before the first
//! request is read; a SASL listener authenticates (`authenticate.rs`) before one is routed.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, Interest};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use super::authenticate::{Authenticator, Verdict};
use super::closed::{self, ClientInfo};
use super::frame::take_frame;
use super::response::{Body, Chunk};
use super::router::{self, Outcome, Session};
use crate::broker::Broker;
use crate::log::FileSlice;
use crate::metadata::scram::ImageCredentials;
use crate::security::principal::certificate_principal;
use crate::security::sasl::scram::CredentialStore;
use crate::security::{ListenerSecurity, Principal};

/// Largest number of connections served at once; more are refused (closed) until some end.
pub const CONNECTIONS_MAX: usize = 10_000;
/// How long shutdown waits for connections to finish their in-flight requests.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// Read buffer grown per read call.
const READ_CHUNK_BYTES: usize = 64 * 1024;
/// Encoded chunks smaller than this are gathered into one write; larger ones are written as
/// they are, without a copy.
const GATHER_MAX_BYTES: usize = 64 * 1024;
/// Most bytes one `sendfile` call is asked for, so one large slice does not monopolise a worker.
const SENDFILE_CALL_MAX_BYTES: u64 = 1024 * 1024;
/// Most bytes of a file slice read into memory at once to be written through TLS.
const TLS_FILE_CHUNK_BYTES: usize = 256 * 1024;
/// How long a client has to complete the TLS handshake.
pub const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves Kafka clients on the first Kafka listener until `shutdown` resolves.
pub async fn serve(listener: TcpListener, broker: Arc<Broker>, shutdown: impl Future<Output = ()>) {
    let name: Arc<str> = Arc::from(broker.config.listener_name.as_str());
    serve_named(listener, name, broker, shutdown).await
}

/// Serves Kafka clients on `listener`, the one called `name` in `listeners`: clients are told
/// broker addresses from that listener's `advertised.listeners` entry.
pub async fn serve_named(
    listener: TcpListener,
    name: Arc<str>,
    broker: Arc<Broker>,
    shutdown: impl Future<Output = ()>,
) {
    let security = Arc::new(broker.config.security_of(&name));
    let credentials: Arc<dyn CredentialStore> = Arc::new(ImageCredentials(broker.metadata.clone()));
    let acceptor = security.tls.clone().map(TlsAcceptor::from);
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    while connections.try_join_next().is_some() {}
                    if connections.len() >= CONNECTIONS_MAX {
                        tracing::warn!(%peer, "too many connections; closing the new one");
                        continue;
                    }
                    let _ = stream.set_nodelay(true);
                    let broker = broker.clone();
                    let stop = stop_rx.clone();
                    let name = name.clone();
                    let security = security.clone();
                    let acceptor = acceptor.clone();
                    let credentials = credentials.clone();
                    connections.spawn(async move {
                        let served = match acceptor {
                            None => {
                                let auth = Authenticator::new(&security, Principal::anonymous(), credentials);
                                handle_connection(stream, peer, name, auth, broker, stop).await
                            }
                            Some(acceptor) => {
                                let conn = Incoming { stream, peer, listener: name, credentials };
                                serve_tls(acceptor, conn, &security, broker, stop).await
                            }
                        };
                        if let Err(e) = served {
                            tracing::debug!(%peer, error = %e, "connection closed");
                        }
                    });
                }
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
        }
    }
    drop(listener);
    stop_tx.send_replace(true);
    // Requests parked in a rebalance are answered NOT_COORDINATOR, so connections can finish.
    broker.groups.unload_all();
    broker.txns.unload_all();
    let drained = tokio::time::timeout(SHUTDOWN_GRACE, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            open = connections.len(),
            "closing connections still busy after the grace period"
        );
        connections.abort_all();
    }
}

/// Why a connection was closed by the broker.
#[derive(Debug, thiserror::Error)]
enum ConnectionError {
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Frame(#[from] super::frame::FrameError),
    #[error("{0}")]
    Protocol(String),
}

/// An accepted connection before TLS.
struct Incoming {
    stream: TcpStream,
    peer: std::net::SocketAddr,
    listener: Arc<str>,
    credentials: Arc<dyn CredentialStore>,
}

/// Completes the TLS handshake, finds the certificate's principal, then serves requests.
async fn serve_tls(
    acceptor: TlsAcceptor,
    conn: Incoming,
    security: &ListenerSecurity,
    broker: Arc<Broker>,
    stop: watch::Receiver<bool>,
) -> Result<(), ConnectionError> {
    let Incoming { stream, peer, listener, credentials } = conn;
    let tls = match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
        Ok(Ok(tls)) => tls,
        Ok(Err(e)) => {
            let why = format!(
                "TLS handshake failed (is the client using SSL or SASL_SSL with this listener's CA?): {e}"
            );
            closed::log_close(&peer, &ClientInfo::default(), &why);
            return Err(ConnectionError::Protocol(why));
        }
        Err(_) => {
            let why = format!("TLS handshake not completed within {TLS_HANDSHAKE_TIMEOUT:?}");
            closed::log_close(&peer, &ClientInfo::default(), &why);
            return Err(ConnectionError::Protocol(why));
        }
    };
    let cert = tls.get_ref().1.peer_certificates().and_then(|c| c.first());
    let transport = match certificate_principal(cert.map(|c| c.as_ref()), &security.principal_rules)
    {
        Ok(p) => p,
        Err(why) => {
            closed::log_close(&peer, &ClientInfo::default(), &why);
            return Err(ConnectionError::Protocol(why));
        }
    };
    let auth = Authenticator::new(security, transport, credentials);
    handle_connection(tls, peer, listener, auth, broker, stop).await
}

async fn handle_connection<S: ClientStream>(
    mut stream: S,
    peer: std::net::SocketAddr,
    listener: Arc<str>,
    mut auth: Authenticator,
    broker: Arc<Broker>,
    mut stop: watch::Receiver<bool>,
) -> Result<(), ConnectionError> {
    let max_frame = broker.config.socket_request_max_bytes;
    let mut inbuf = BytesMut::with_capacity(READ_CHUNK_BYTES);
    let mut out = ResponseWriter::default();
    let mut client = ClientInfo::default();
    let mut session: Option<Session> = None;
    loop {
        // Answer every whole request already read, then write the responses together.
        loop {
            let frame = match take_frame(&mut inbuf, max_frame) {
                Ok(Some(frame)) => frame,
                Ok(None) => break,
                Err(e) => {
                    closed::log_close(&peer, &client, &e.to_string());
                    return Err(e.into());
                }
            };
            broker.metrics.add_bytes_in(frame.len() + 4);
            if !auth.expects_raw_token() {
                client.observe(&frame);
            }
            let frame = frame.freeze();
            match auth.on_frame(&frame) {
                Verdict::Route => {}
                Verdict::Respond(response) => {
                    broker.metrics.add_bytes_out(response.len());
                    out.write(&mut stream, response).await?;
                    continue;
                }
                Verdict::Close { why, last } => {
                    closed::log_close(&peer, &client, &why);
                    if let Some(response) = last {
                        out.write(&mut stream, response).await?;
                    }
                    out.flush(&mut stream).await?;
                    return Err(ConnectionError::Protocol(why));
                }
            }
            // The session is fixed once authenticated; a request routed before that
            // (ApiVersions on a SASL listener) is served as User:ANONYMOUS.
            let pre_auth;
            let session = match (&mut session, auth.principal()) {
                (Some(s), _) => &*s,
                (slot @ None, Some(principal)) => &*slot.insert(Session {
                    peer,
                    listener: listener.clone(),
                    principal: Arc::new(principal.clone()),
                }),
                (None, None) => {
                    pre_auth = Session::anonymous(peer, listener.clone());
                    &pre_auth
                }
            };
            let (outcome, mute) = router::handle_muted(&broker, session, frame).await;
            match outcome {
                Outcome::Respond(response) => {
                    broker.metrics.add_bytes_out(response.len());
                    out.write(&mut stream, response).await?;
                }
                Outcome::NoResponse => {}
                Outcome::Close(why) => {
                    closed::log_close(&peer, &client, &why);
                    out.flush(&mut stream).await?;
                    return Err(ConnectionError::Protocol(why));
                }
            }
            if !mute.is_zero() {
                // Over a client quota: the answer goes out now, then nothing more is read or
                // handled from this client until the throttle has passed (Kafka's muting).
                out.flush(&mut stream).await?;
                tokio::select! {
                    () = tokio::time::sleep(mute) => {}
                    _ = stop.changed() => return Ok(()),
                }
            }
        }
        out.flush(&mut stream).await?;
        if *stop.borrow() {
            return Ok(());
        }
        inbuf.reserve(READ_CHUNK_BYTES);
        tokio::select! {
            n = stream.read_buf(&mut inbuf) => {
                if n? == 0 {
                    return Ok(());
                }
            }
            _ = stop.changed() => return Ok(()),
        }
    }
}

/// Writes responses in order: small chunks are gathered into one buffer (pipelined answers go
/// out in one write), large ones are written as they are, and file slices go to the socket
/// with `sendfile`, straight from the page cache.
#[derive(Default)]
struct ResponseWriter {
    pending: BytesMut,
}

impl ResponseWriter {
    async fn write<S: ClientStream>(
        &mut self,
        stream: &mut S,
        response: Body,
    ) -> std::io::Result<()> {
        for chunk in response.into_chunks() {
            match chunk {
                Chunk::Bytes(b) if b.len() < GATHER_MAX_BYTES => self.pending.extend_from_slice(&b),
                Chunk::Bytes(b) => {
                    self.flush(stream).await?;
                    stream.write_all(&b).await?;
                }
                Chunk::File(slice) => {
                    self.flush(stream).await?;
                    stream.send_file(&slice).await?;
                }
            }
        }
        Ok(())
    }

    async fn flush<S: ClientStream>(&mut self, stream: &mut S) -> std::io::Result<()> {
        if !self.pending.is_empty() {
            stream.write_all(&self.pending).await?;
            self.pending.clear();
        }
        Ok(())
    }
}

/// A client connection's byte stream: plain TCP, or TLS over it.
trait ClientStream: AsyncRead + AsyncWrite + Unpin + Send {
    /// Writes the bytes of `slice`.
    fn send_file(&mut self, slice: &FileSlice) -> impl Future<Output = std::io::Result<()>> + Send;
}

impl ClientStream for TcpStream {
    async fn send_file(&mut self, slice: &FileSlice) -> std::io::Result<()> {
        send_file(self, slice).await
    }
}

impl ClientStream for TlsStream<TcpStream> {
    /// TLS encrypts in user space: the slice is read in chunks and written through rustls.
    async fn send_file(&mut self, slice: &FileSlice) -> std::io::Result<()> {
        let mut chunk = BytesMut::new();
        for part in slice.chunks(TLS_FILE_CHUNK_BYTES) {
            chunk.clear();
            part.read_into(&mut chunk)?;
            self.write_all(&chunk).await?;
        }
        Ok(())
    }
}

/// Sends `slice` with `sendfile(2)`, waiting for the socket to be writable as needed. A file
/// that ends before the slice does is an error: the frame cannot be completed, and the
/// connection is closed (the client retries the fetch).
async fn send_file(stream: &TcpStream, slice: &FileSlice) -> std::io::Result<()> {
    let Some((file, mut position)) = slice.file_and_position() else { return Ok(()) };
    let end = position + slice.len() as u64;
    while position < end {
        stream.writable().await?;
        let want = (end - position).min(SENDFILE_CALL_MAX_BYTES) as usize;
        let sent = stream.try_io(Interest::WRITABLE, || {
            rustix::fs::sendfile(stream, file, Some(&mut position), want)
                .map_err(std::io::Error::from)
        });
        match sent {
            Ok(0) => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "segment file ended before the fetched slice",
                ));
            }
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
