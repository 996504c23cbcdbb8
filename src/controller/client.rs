//! How a broker reaches the active controller: directly when this node leads the metadata
//! quorum, over gRPC otherwise. Retries (bounded by [`CONTROLLER_WAIT`]) across elections, and
//! after a forwarded commit waits until the local image has applied it, so a client that sent
//! CreateTopics to any broker sees the topic in that broker's Metadata right after.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::{Controller, ControllerReply, ControllerRequest, Executed};
use crate::error_code::{ApiError, ErrorCode};
use crate::metadata::MetadataLog;
use crate::raft::network::Dialer;
use crate::raft::pb::Payload;
use crate::raft::pb::controller_client::ControllerClient as GrpcClient;
use crate::types::NodeId;

/// How long a request may wait for an active controller (elections take about a second).
pub const CONTROLLER_WAIT: Duration = Duration::from_secs(15);
/// Pause between attempts while no controller is reachable.
const RETRY_PAUSE: Duration = Duration::from_millis(50);

/// Routes controller requests from one broker.
pub struct ControllerClient {
    node_id: NodeId,
    local: Arc<Controller>,
    log: Arc<dyn MetadataLog>,
    /// Controller addresses of the voters (`controller.quorum.voters`), tried in turn while no
    /// leader is known, e.g. by an observer that has not joined the quorum yet.
    voters: Vec<String>,
    /// Dials the active controller's CONTROLLER listener.
    dialer: Dialer,
}

impl ControllerClient {
    pub(crate) fn new(
        node_id: NodeId,
        local: Arc<Controller>,
        log: Arc<dyn MetadataLog>,
        voters: Vec<String>,
        dialer: Dialer,
    ) -> Self {
        ControllerClient { node_id, local, log, voters, dialer }
    }

    /// Runs `request` on the active controller and waits until this node's image reflects it.
    pub async fn execute(&self, request: ControllerRequest) -> Result<ControllerReply, ApiError> {
        let deadline = Instant::now() + CONTROLLER_WAIT;
        let mut last_error =
            ApiError::new(ErrorCode::NotController, "no active controller is known");
        let mut next_voter = 0usize;
        while Instant::now() < deadline {
            let attempt = match self.log.leader() {
                None if self.voters.is_empty() => None,
                None => {
                    next_voter += 1;
                    Some(
                        forward(
                            &self.dialer,
                            &self.voters[next_voter % self.voters.len()],
                            &request,
                        )
                        .await,
                    )
                }
                Some(leader) if leader.id == self.node_id => {
                    Some(self.local.execute(request.clone()).await)
                }
                Some(leader) => {
                    Some(self.forward_while_leading(leader.id, &leader.addr, &request).await)
                }
            };
            match attempt {
                Some(Ok(executed)) => {
                    if executed.index > 0 {
                        self.log.wait_applied(executed.index).await.map_err(|e| {
                            ApiError::new(ErrorCode::RequestTimedOut, e.to_string())
                        })?;
                    }
                    return Ok(executed.reply);
                }
                Some(Err(e)) if e.code == ErrorCode::NotController => last_error = e,
                Some(Err(e)) => return Err(e),
                None => {}
            }
            tokio::time::sleep(RETRY_PAUSE).await;
        }
        Err(last_error)
    }
}

impl ControllerClient {
    /// [`forward`] to `leader`, given up as soon as this node learns of another leader: a frozen
    /// or cut-off controller never answers, and a broker whose heartbeat waited on it would be
    /// fenced by the new controller for silence (found by the chaos suite: every broker, the new
    /// controller's own included, fenced right after a controller failover).
    async fn forward_while_leading(
        &self,
        leader: NodeId,
        addr: &str,
        request: &ControllerRequest,
    ) -> Result<Executed, ApiError> {
        let deposed = async {
            loop {
                tokio::time::sleep(LEADER_RECHECK).await;
                if self.log.leader().map(|l| l.id) != Some(leader) {
                    return;
                }
            }
        };
        tokio::select! {
            reply = forward(&self.dialer, addr, request) => reply,
            () = deposed => Err(ApiError::new(
                ErrorCode::NotController,
                format!("node {leader} stopped being the active controller"),
            )),
        }
    }
}

/// How often a forwarded request checks whether its controller is still the leader.
const LEADER_RECHECK: Duration = Duration::from_millis(100);

/// Sends a request to the controller at `addr`. Transport failures read as NOT_CONTROLLER so
/// the caller retries after the next election.
async fn forward(
    dialer: &Dialer,
    addr: &str,
    request: &ControllerRequest,
) -> Result<Executed, ApiError> {
    let unreachable = |e: &dyn std::fmt::Display| {
        ApiError::new(ErrorCode::NotController, format!("controller at {addr} unreachable: {e}"))
    };
    let json = serde_json::to_vec(request)
        .map_err(|e| ApiError::new(ErrorCode::UnknownServerError, e.to_string()))?;
    let ch = dialer.channel(addr).map_err(|e| unreachable(&e))?;
    let mut client = GrpcClient::new(ch);
    let mut req = tonic::Request::new(Payload { json });
    req.set_timeout(CONTROLLER_WAIT);
    let reply = client.execute(req).await.map_err(|e| unreachable(&e))?.into_inner();
    serde_json::from_slice::<Result<Executed, ApiError>>(&reply.json).map_err(|e| {
        ApiError::new(ErrorCode::UnknownServerError, format!("bad controller reply: {e}"))
    })?
}
