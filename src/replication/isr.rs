//! ISR changes, leader side (the periodic shrink check runs in `broker::tasks`). Proposals go to the active controller as AlterPartition, carrying
//! the leader epoch and partition epoch they were decided under; the controller refuses stale
//! ones (FENCED_LEADER_EPOCH, or a changed partition epoch), so an isolated or deposed leader
//! cannot change the ISR.

use std::sync::Arc;

use crate::broker::Broker;
use crate::broker::replica_manager::Partition;
use crate::controller::ControllerRequest;
use crate::types::NodeId;

/// Sends an ISR change for `part` to the controller in the background.
pub fn propose(broker: &Arc<Broker>, part: &Arc<Partition>, isr: Vec<NodeId>) {
    let st = part.snapshot();
    let Some(leader) = st.leader else {
        part.clear_isr_change();
        return;
    };
    let request = ControllerRequest::AlterPartition {
        topic: part.tp.topic.clone(),
        partition: part.tp.partition.0,
        leader,
        leader_epoch: st.leader_epoch,
        partition_epoch: st.partition_epoch,
        isr: isr.clone(),
    };
    let expands = isr.len() > st.isr.len();
    let (broker, part) = (Arc::downgrade(broker), part.clone());
    tokio::spawn(async move {
        let Some(broker) = broker.upgrade() else { return };
        match broker.controller.execute(request).await {
            Ok(_) => {
                let counter =
                    if expands { &broker.metrics.isr_expands } else { &broker.metrics.isr_shrinks };
                counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                tracing::info!(partition = %part.tp, isr = ?isr, "ISR changed");
            }
            Err(e) => {
                tracing::info!(partition = %part.tp, isr = ?isr, error = %e, "ISR change refused");
                part.clear_isr_change();
            }
        }
    });
}
