//! The controller's gRPC service: runs forwarded requests on this node if it is the active
//! controller (NOT_CONTROLLER otherwise, so the sender retries elsewhere).

use std::sync::Arc;

use tonic::{Request, Response, Status};

use super::{Controller, ControllerRequest};
use crate::raft::pb::Payload;
use crate::raft::pb::controller_server;

pub(crate) struct ControllerService {
    controller: Arc<Controller>,
}

impl ControllerService {
    pub(crate) fn new(controller: Arc<Controller>) -> Self {
        ControllerService { controller }
    }
}

#[tonic::async_trait]
impl controller_server::Controller for ControllerService {
    async fn execute(&self, req: Request<Payload>) -> Result<Response<Payload>, Status> {
        let request: ControllerRequest =
            serde_json::from_slice(&req.into_inner().json).map_err(|e| {
                Status::invalid_argument(format!("undecodable controller request: {e}"))
            })?;
        let result = self.controller.execute(request).await;
        let json = serde_json::to_vec(&result).map_err(|e| Status::internal(e.to_string()))?;
        Ok(Response::new(Payload { json }))
    }
}
