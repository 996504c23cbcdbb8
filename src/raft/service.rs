//! The raft gRPC service: decodes openraft's requests, hands them to the local raft, and sends
//! back the JSON of `Result<response, RaftError>` so remote errors reach the caller intact.

use serde::Serialize;
use serde::de::DeserializeOwned;
use tonic::{Request, Response, Status};

use std::sync::Arc;

use super::MetadataRaft;
use super::admission::{Admission, PeerStatus};
use super::pb::Payload;
use super::pb::raft_server::Raft;

/// Serves openraft's RPCs for the local raft node.
pub(crate) struct RaftService {
    raft: MetadataRaft,
    admission: Arc<Admission>,
}

impl RaftService {
    pub(crate) fn new(raft: MetadataRaft, admission: Arc<Admission>) -> Self {
        RaftService { raft, admission }
    }
}

fn decode<T: DeserializeOwned>(req: Request<Payload>) -> Result<T, Status> {
    serde_json::from_slice(&req.into_inner().json)
        .map_err(|e| Status::invalid_argument(format!("undecodable raft request: {e}")))
}

fn reply<T: Serialize>(value: &T) -> Result<Response<Payload>, Status> {
    serde_json::to_vec(value)
        .map(|json| Response::new(Payload { json }))
        .map_err(|e| Status::internal(format!("cannot encode raft response: {e}")))
}

#[tonic::async_trait]
impl Raft for RaftService {
    async fn append_entries(&self, req: Request<Payload>) -> Result<Response<Payload>, Status> {
        reply(&self.raft.append_entries(decode(req)?).await)
    }

    async fn vote(&self, req: Request<Payload>) -> Result<Response<Payload>, Status> {
        // KIP-853: a node that is not an admitted voter (a wiped disk under an old voter's id)
        // never votes: it may have voted in this term before it lost its state.
        if !self.admission.allows_votes() {
            return Err(Status::failed_precondition(
                "not an admitted metadata voter: this node's directory is not the voter's",
            ));
        }
        reply(&self.raft.vote(decode(req)?).await)
    }

    async fn status(&self, _req: Request<Payload>) -> Result<Response<Payload>, Status> {
        // Entries past the initial membership (index 0) exist only once a leader was elected:
        // then this is an existing quorum.
        let m = self.raft.metrics().borrow().clone();
        let initialized = m.last_log_index.is_some_and(|i| i >= 1) || m.snapshot.is_some();
        reply(&PeerStatus { initialized })
    }

    async fn install_snapshot(&self, req: Request<Payload>) -> Result<Response<Payload>, Status> {
        reply(&self.raft.install_snapshot(decode(req)?).await)
    }
}
