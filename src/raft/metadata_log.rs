//! `MetadataLog` on openraft: commits go through `client_write` on the leader (the active
//! controller); the image comes from the local state machine, which every voter and observer
//! keeps up to date by replication.

use std::sync::Arc;
use std::time::Duration;

use openraft::ServerState;
use openraft::error::{ClientWriteError, RaftError};
use tokio::sync::watch;

use super::state_machine::StateMachineStore;
use super::{CommandBatch, MetadataRaft, RaftNode};
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
            match self.raft.add_learner(raft_id, RaftNode { addr }, false).await {
                Ok(_) => Ok(()),
                Err(RaftError::APIError(openraft::error::ClientWriteError::ForwardToLeader(_))) => {
                    Err(MetadataError::NotController)
                }
                Err(e) => Err(log_error(e)),
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
