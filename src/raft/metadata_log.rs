//! `MetadataLog` on openraft: commits go through `client_write` on the leader (the active
//! controller); the image comes from the local state machine, which every voter and observer
//! keeps up to date by replication.

use std::sync::Arc;
use std::time::Duration;

use openraft::error::{ClientWriteError, RaftError};
use openraft::{ChangeMembers, ServerState};
use tokio::sync::watch;

use super::state_machine::StateMachineStore;
use super::{CommandBatch, MetadataRaft, RaftNode};
use crate::error_code::{ApiError, ErrorCode};
use crate::metadata::commands::MetadataCommand;
use crate::metadata::image::MetadataImage;
use crate::metadata::{
    BoxFuture, ControllerInfo, MetadataError, MetadataLog, QuorumMember, QuorumStatus,
};
use crate::types::NodeId;

/// Longest a caller waits for a committed index to be applied locally.
pub(crate) const APPLY_WAIT: Duration = Duration::from_secs(15);

/// The metadata log of a raft member (voter or observer).
pub(crate) struct RaftMetadataLog {
    raft: MetadataRaft,
    sm: StateMachineStore,
}

impl RaftMetadataLog {
    pub(crate) fn new(raft: MetadataRaft, sm: StateMachineStore) -> Self {
        RaftMetadataLog { raft, sm }
    }

    /// One membership change, its refusal as a Kafka error.
    async fn change(
        &self,
        change: ChangeMembers<u64, RaftNode>,
        retain: bool,
    ) -> Result<(), ApiError> {
        self.raft.change_membership(change, retain).await.map(|_| ()).map_err(membership_error)
    }

    fn membership(&self) -> openraft::Membership<u64, RaftNode> {
        self.raft.metrics().borrow().membership_config.membership().clone()
    }
}

/// A refused membership change as a Kafka error: NOT_CONTROLLER off the leader, otherwise
/// REQUEST_TIMED_OUT with openraft's reason (another change in progress, a learner that did
/// not catch up).
fn membership_error(e: RaftError<u64, ClientWriteError<u64, RaftNode>>) -> ApiError {
    match e {
        RaftError::APIError(ClientWriteError::ForwardToLeader(_)) => {
            crate::controller::not_controller()
        }
        other => ApiError::new(
            ErrorCode::RequestTimedOut,
            format!("the voter change did not complete: {other}"),
        ),
    }
}

fn log_error(e: impl std::fmt::Display) -> MetadataError {
    MetadataError::Log(e.to_string())
}

impl MetadataLog for RaftMetadataLog {
    fn commit(&self, commands: Vec<MetadataCommand>) -> BoxFuture<'_, Result<u64, MetadataError>> {
        Box::pin(async move {
            match self.raft.client_write(CommandBatch { commands }).await {
                Ok(resp) => Ok(resp.log_id.index),
                Err(RaftError::APIError(ClientWriteError::ForwardToLeader(_))) => {
                    Err(MetadataError::NotController)
                }
                Err(e) => Err(log_error(e)),
            }
        })
    }

    fn wait_applied(&self, index: u64) -> BoxFuture<'_, Result<(), MetadataError>> {
        Box::pin(async move {
            let mut applied = self.sm.subscribe_applied();
            let wait = applied.wait_for(|a| *a >= index);
            match tokio::time::timeout(APPLY_WAIT, wait).await {
                Ok(Ok(_)) => Ok(()),
                Ok(Err(_)) => Err(MetadataError::Log("state machine stopped".into())),
                Err(_) => Err(MetadataError::Timeout { index }),
            }
        })
    }

    fn image(&self) -> Arc<MetadataImage> {
        self.sm.image()
    }

    fn subscribe(&self) -> watch::Receiver<Arc<MetadataImage>> {
        self.sm.subscribe_image()
    }

    fn leader(&self) -> Option<ControllerInfo> {
        let m = self.raft.metrics().borrow().clone();
        let id = m.current_leader?;
        let node = m.membership_config.membership().get_node(&id)?.clone();
        Some(ControllerInfo { id: NodeId(id as i32), addr: node.addr })
    }

    fn add_observer(&self, id: NodeId, addr: String) -> BoxFuture<'_, Result<(), MetadataError>> {
        Box::pin(async move {
            let raft_id = id.0 as u64;
            let m = self.raft.metrics().borrow().clone();
            let known = m.membership_config.membership().get_node(&raft_id).map(|n| n.addr.clone());
            if known.as_deref() == Some(addr.as_str()) {
                return Ok(());
            }
            match self.raft.add_learner(raft_id, RaftNode { addr, directory_id: None }, false).await
            {
                Ok(_) => Ok(()),
                Err(RaftError::APIError(openraft::error::ClientWriteError::ForwardToLeader(_))) => {
                    Err(MetadataError::NotController)
                }
                Err(e) => Err(log_error(e)),
            }
        })
    }

    fn add_voter(
        &self,
        id: NodeId,
        directory: uuid::Uuid,
        addr: String,
    ) -> BoxFuture<'_, Result<(), ApiError>> {
        Box::pin(async move {
            let raft_id = id.0 as u64;
            let membership = self.membership();
            if membership.voter_ids().any(|v| v == raft_id) {
                return Err(ApiError::new(
                    ErrorCode::DuplicateVoter,
                    format!(
                        "node {id} is already a voter; remove it first to replace its directory"
                    ),
                ));
            }
            if addr.trim().is_empty() {
                return Err(ApiError::new(
                    ErrorCode::InvalidRequest,
                    "the new voter needs its CONTROLLER listener endpoint",
                ));
            }
            let node = RaftNode { addr, directory_id: Some(directory) };
            // As a learner first (replaced if it was one, e.g. the removed voter): it catches up
            // before it counts towards any majority.
            let mut nodes = std::collections::BTreeMap::new();
            nodes.insert(raft_id, node);
            self.change(ChangeMembers::SetNodes(nodes), true).await?;
            self.change(ChangeMembers::AddVoterIds([raft_id].into()), false).await?;
            Ok(())
        })
    }

    fn remove_voter(
        &self,
        id: NodeId,
        directory: uuid::Uuid,
    ) -> BoxFuture<'_, Result<(), ApiError>> {
        Box::pin(async move {
            let raft_id = id.0 as u64;
            let membership = self.membership();
            let voter = membership.voter_ids().any(|v| v == raft_id);
            let recorded = membership.get_node(&raft_id).and_then(|n| n.directory_id);
            if !voter || recorded.is_some_and(|d| d != directory) {
                return Err(ApiError::new(
                    ErrorCode::VoterNotFound,
                    format!(
                        "no voter {id} with directory id {} (see samsa quorum describe)",
                        crate::types::uuid_text(&directory)
                    ),
                ));
            }
            if membership.voter_ids().count() == 1 {
                return Err(ApiError::new(
                    ErrorCode::InvalidRequest,
                    "cannot remove the last voter of the metadata quorum",
                ));
            }
            self.change(ChangeMembers::RemoveVoters([raft_id].into()), false).await?;
            Ok(())
        })
    }

    fn record_voter_directory(
        &self,
        id: NodeId,
        directory: uuid::Uuid,
    ) -> BoxFuture<'_, Result<(), ApiError>> {
        Box::pin(async move {
            let raft_id = id.0 as u64;
            let membership = self.membership();
            let Some(node) = membership.get_node(&raft_id).cloned() else {
                return Err(ApiError::new(
                    ErrorCode::VoterNotFound,
                    format!("node {id} is not a quorum member"),
                ));
            };
            match node.directory_id {
                Some(d) if d == directory => Ok(()),
                Some(_) => Err(ApiError::new(
                    ErrorCode::InvalidVoterKey,
                    format!(
                        "voter {id} is recorded with another directory id: remove and add it again"
                    ),
                )),
                None => {
                    let mut nodes = std::collections::BTreeMap::new();
                    nodes.insert(raft_id, RaftNode { directory_id: Some(directory), ..node });
                    self.change(ChangeMembers::SetNodes(nodes), true).await?;
                    tracing::info!(voter = %id, directory_id = %crate::types::uuid_text(&directory), "recorded a voter's directory id");
                    Ok(())
                }
            }
        })
    }

    fn quorum(&self) -> QuorumStatus {
        let m = self.raft.metrics().borrow().clone();
        let membership = m.membership_config.membership();
        let matched = |id: u64| -> i64 {
            m.replication
                .as_ref()
                .and_then(|r| r.get(&id).cloned().flatten())
                .map_or(-1, |l| l.index as i64)
        };
        let member = |id: u64| QuorumMember {
            id: NodeId(id as i32),
            addr: membership.get_node(&id).map(|n| n.addr.clone()).unwrap_or_default(),
            directory_id: membership.get_node(&id).and_then(|n| n.directory_id),
            matched_index: if m.state == ServerState::Leader && id == m.id {
                m.last_log_index.map_or(-1, |i| i as i64)
            } else {
                matched(id)
            },
        };
        QuorumStatus {
            leader: m.current_leader.map(|l| NodeId(l as i32)),
            term: m.current_term,
            state: format!("{:?}", m.state),
            commit_index: m.last_applied.map_or(0, |l| l.index),
            applied_index: m.last_applied.map_or(0, |l| l.index),
            last_log_index: m.last_log_index.unwrap_or(0),
            purged_index: m.purged.map_or(0, |l| l.index),
            snapshot_index: m.snapshot.map_or(0, |l| l.index),
            voters: membership.voter_ids().map(member).collect(),
            observers: membership.learner_ids().map(member).collect(),
        }
    }
}
