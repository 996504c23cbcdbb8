//! The raft gRPC service: decodes openraft's requests, hands them to the local raft, and sends
//! back the JSON of `Result<response, RaftError>` so remote errors reach the caller intact.

use serde::Serialize;
use serde::de::DeserializeOwned;
use tonic::{Request, Response, Status};

use super::MetadataRaft;
use super::pb::Payload;
use super::pb::raft_server::Raft;

/// Serves openraft's RPCs for the local raft node.
pub(crate) struct RaftService {
    raft: MetadataRaft,
}

impl RaftService {
    pub(crate) fn new(raft: MetadataRaft) -> Self {
        RaftService { raft }
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
        reply(&self.raft.vote(decode(req)?).await)
    }

    async fn install_snapshot(&self, req: Request<Payload>) -> Result<Response<Payload>, Status> {
        reply(&self.raft.install_snapshot(decode(req)?).await)
    }
}
