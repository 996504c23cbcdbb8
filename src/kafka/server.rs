//! The Kafka listener: accepts connections on an already-bound socket and runs one task per
//! connection until the shutdown future resolves. On shutdown it stops accepting, lets each
//! connection answer the requests it has already read, and waits (bounded) for them to finish.
//!
//! Requests on one connection are handled one at a time, in order, as Kafka does; pipelined
//! requests are read ahead and their responses written in one batch. Fetched records are sent
//! from the segment files with `sendfile` (see `response.rs`).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt, Interest};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;

use super::closed::{self, ClientInfo};
use super::frame::take_frame;
use super::response::{Body, Chunk};
use super::router::{self, Outcome};
use crate::broker::Broker;
use crate::log::FileSlice;

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
                    connections.spawn(async move {
                        if let Err(e) = handle_connection(stream, peer, name, broker, stop).await {
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

async fn handle_connection(
    mut stream: TcpStream,
    peer: std::net::SocketAddr,
    listener: Arc<str>,
    broker: Arc<Broker>,
    mut stop: watch::Receiver<bool>,
) -> Result<(), ConnectionError> {
    let max_frame = broker.config.socket_request_max_bytes;
    let mut inbuf = BytesMut::with_capacity(READ_CHUNK_BYTES);
    let mut out = ResponseWriter::default();
    let mut client = ClientInfo::default();
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
            client.observe(&frame);
            match router::handle(&broker, peer, &listener, frame.freeze()).await {
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
    async fn write(&mut self, stream: &mut TcpStream, response: Body) -> std::io::Result<()> {
        for chunk in response.into_chunks() {
            match chunk {
                Chunk::Bytes(b) if b.len() < GATHER_MAX_BYTES => self.pending.extend_from_slice(&b),
                Chunk::Bytes(b) => {
                    self.flush(stream).await?;
                    stream.write_all(&b).await?;
                }
                Chunk::File(slice) => {
                    self.flush(stream).await?;
                    send_file(stream, &slice).await?;
                }
            }
        }
        Ok(())
    }

    async fn flush(&mut self, stream: &mut TcpStream) -> std::io::Result<()> {
        if !self.pending.is_empty() {
            stream.write_all(&self.pending).await?;
            self.pending.clear();
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
