//! ISR changes, leader side. Proposals go to the active controller as AlterPartition, carrying
//! the leader epoch and partition epoch they were decided under; the controller refuses stale
//! ones (FENCED_LEADER_EPOCH, or a changed partition epoch), so an isolated or deposed leader
//! cannot change the ISR.

use std::sync::Arc;

use futures_util::future::BoxFuture;

use crate::error_code::ApiError;
use crate::replica::Partition;
use crate::types::{LeaderEpoch, NodeId};

/// Whether an ISR change adds a follower that caught up or drops followers that lag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IsrChangeKind {
    Expand,
    Shrink,
}

/// An AlterPartition proposal, decided under `leader_epoch` and `partition_epoch`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct IsrChange {
    pub(crate) topic: String,
    pub(crate) partition: i32,
    pub(crate) leader: NodeId,
    pub(crate) leader_epoch: LeaderEpoch,
    pub(crate) partition_epoch: i32,
    pub(crate) isr: Vec<NodeId>,
    pub(crate) kind: IsrChangeKind,
}

/// Sends ISR changes to the active controller (the broker implements it).
pub(crate) trait IsrProposer: Send + Sync {
    /// Resolves once the controller committed the change, or refused it.
    fn alter_partition(&self, change: IsrChange) -> BoxFuture<'static, Result<(), ApiError>>;
}

/// Sends an ISR change for `part` to the controller in the background. The partition allows
/// the next proposal once this one is answered: by new metadata, or here on refusal.
pub(crate) fn propose(proposer: &Arc<dyn IsrProposer>, part: &Arc<Partition>, isr: Vec<NodeId>) {
    let st = part.snapshot();
    let Some(leader) = st.leader else {
        part.clear_isr_change();
        return;
    };
    let kind = if isr.len() > st.isr.len() { IsrChangeKind::Expand } else { IsrChangeKind::Shrink };
    let change = IsrChange {
        topic: part.tp.topic.clone(),
        partition: part.tp.partition.0,
        leader,
        leader_epoch: st.leader_epoch,
        partition_epoch: st.partition_epoch,
        isr: isr.clone(),
        kind,
    };
    let sent = proposer.alter_partition(change);
    let part = part.clone();
    tokio::spawn(async move {
        match sent.await {
            Ok(()) => tracing::info!(partition = %part.tp, isr = ?isr, "ISR changed"),
            Err(e) => {
                tracing::info!(partition = %part.tp, isr = ?isr, error = %e, "ISR change refused");
                part.clear_isr_change();
            }
        }
    });
}
