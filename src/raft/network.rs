//! openraft's RPCs as tonic calls (`proto/raft.proto`). A channel is created lazily per peer
//! and tonic reconnects it after failures; every call has a deadline from openraft's
//! `RPCOption`, so a dead peer costs a timeout, never a hang.

use std::time::Duration;

use openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tonic::transport::{Channel, Endpoint};

pub(crate) use super::transport::Dialer;

use super::pb::Payload;
use super::pb::raft_client::RaftClient;
use super::{RaftNode, RaftNodeId, TypeConfig};

/// How long connecting to a peer may take.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Largest raft message accepted or sent (snapshots of a large image).
pub(crate) const RAFT_MESSAGE_BYTES_MAX: usize = 64 * 1024 * 1024;

/// How often an HTTP/2 connection to a peer is pinged, idle or not.
pub(crate) const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(1);
/// A connection whose ping goes unanswered this long is dropped and dialled again. Without it a
/// connection that lost packets during a network cut stays stuck in TCP's retransmission
/// backoff for seconds after the network heals (measured by the chaos suite: writes resumed
/// about 6 s after a 2 s partition was healed).
pub(crate) const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(2);

/// The endpoint settings of every connection to a peer at `addr` (host:port); the
/// [`Dialer`] makes it a channel, over TLS or not.
pub(crate) fn endpoint(addr: &str) -> Result<Endpoint, tonic::transport::Error> {
    Ok(Endpoint::from_shared(format!("http://{addr}"))?
        .connect_timeout(CONNECT_TIMEOUT)
        .tcp_nodelay(true)
        .http2_keep_alive_interval(KEEPALIVE_INTERVAL)
        .keep_alive_timeout(KEEPALIVE_TIMEOUT)
        .keep_alive_while_idle(true))
}

/// Creates one [`PeerConnection`] per raft peer.
#[derive(Debug, Clone, Default)]
pub(crate) struct NetworkFactory {
    pub(crate) dialer: Dialer,
}

impl RaftNetworkFactory<TypeConfig> for NetworkFactory {
    type Network = PeerConnection;

    async fn new_client(&mut self, target: RaftNodeId, node: &RaftNode) -> Self::Network {
        let client = self.dialer.channel(&node.addr).ok().map(|c| {
            RaftClient::new(c)
                .max_decoding_message_size(RAFT_MESSAGE_BYTES_MAX)
                .max_encoding_message_size(RAFT_MESSAGE_BYTES_MAX)
        });
        PeerConnection { target, addr: node.addr.clone(), client }
    }
}

/// The RPC client for one peer.
pub(crate) struct PeerConnection {
    target: RaftNodeId,
    addr: String,
    client: Option<RaftClient<Channel>>,
}

type RpcResult<T, E> = Result<T, RPCError<RaftNodeId, RaftNode, RaftError<RaftNodeId, E>>>;

fn encode<T: Serialize, E: std::error::Error>(
    value: &T,
) -> Result<Payload, RPCError<RaftNodeId, RaftNode, E>> {
    serde_json::to_vec(value)
        .map(|json| Payload { json })
        .map_err(|e| RPCError::Network(NetworkError::new(&e)))
}

impl PeerConnection {
    async fn call<Req, Resp, E>(
        &mut self,
        method: Method,
        req: &Req,
        option: &RPCOption,
    ) -> RpcResult<Resp, E>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
        E: std::error::Error + DeserializeOwned,
    {
        let Some(client) = self.client.as_mut() else {
            return Err(RPCError::Unreachable(Unreachable::new(&std::io::Error::other(format!(
                "invalid raft address {}",
                self.addr
            )))));
        };
        let mut request = tonic::Request::new(encode(req)?);
        request.set_timeout(option.hard_ttl());
        let reply = match method {
            Method::AppendEntries => client.append_entries(request).await,
            Method::Vote => client.vote(request).await,
            Method::InstallSnapshot => client.install_snapshot(request).await,
        };
        let payload = match reply {
            Ok(r) => r.into_inner(),
            Err(status) if status.code() == tonic::Code::Unavailable => {
                return Err(RPCError::Unreachable(Unreachable::new(&status)));
            }
            Err(status) => return Err(RPCError::Network(NetworkError::new(&status))),
        };
        let result: Result<Resp, RaftError<RaftNodeId, E>> = serde_json::from_slice(&payload.json)
            .map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        result.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }
}

#[derive(Debug, Clone, Copy)]
enum Method {
    AppendEntries,
    Vote,
    InstallSnapshot,
}

impl RaftNetwork<TypeConfig> for PeerConnection {
    async fn append_entries(
        &mut self,
        req: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<AppendEntriesResponse<RaftNodeId>, openraft::error::Infallible> {
        self.call(Method::AppendEntries, &req, &option).await
    }

    async fn install_snapshot(
        &mut self,
        req: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<InstallSnapshotResponse<RaftNodeId>, InstallSnapshotError> {
        self.call(Method::InstallSnapshot, &req, &option).await
    }

    async fn vote(
        &mut self,
        req: VoteRequest<RaftNodeId>,
        option: RPCOption,
    ) -> RpcResult<VoteResponse<RaftNodeId>, openraft::error::Infallible> {
        self.call(Method::Vote, &req, &option).await
    }
}
