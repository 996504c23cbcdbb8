//! ISR changes, leader side. Proposals go to the active controller as AlterPartition, carrying
//! the leader epoch and partition epoch they were decided under; the controller refuses stale
//! ones (FENCED_LEADER_EPOCH, or a changed partition epoch), so an isolated or deposed leader
//! cannot change the ISR.

use std::sync::{Arc, Weak};
use std::time::Duration;

use crate::broker::replica_manager::Partition;
use crate::broker::{Broker, now_ms};
use crate::controller::ControllerRequest;
use crate::types::NodeId;

/// How often leaders look for lagging followers.
pub const ISR_CHECK_INTERVAL: Duration = Duration::from_millis(500);

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
    let (broker, part) = (Arc::downgrade(broker), part.clone());
    tokio::spawn(async move {
        let Some(broker) = broker.upgrade() else { return };
        match broker.controller.execute(request).await {
            Ok(_) => tracing::info!(partition = %part.tp, isr = ?isr, "ISR changed"),
            Err(e) => {
                tracing::info!(partition = %part.tp, isr = ?isr, error = %e, "ISR change refused");
                part.clear_isr_change();
            }
        }
    });
}

/// Periodically drops followers that stopped catching up from the ISR of partitions this node
/// leads.
pub async fn shrink_loop(weak: Weak<Broker>) {
    let mut stop = match weak.upgrade() {
        Some(b) => b.shutdown_signal(),
        None => return,
    };
    loop {
        tokio::select! {
            _ = tokio::time::sleep(ISR_CHECK_INTERVAL) => {}
            _ = stop.changed() => break,
        }
        let Some(broker) = weak.upgrade() else { break };
        let lag_max_ms = broker.config.replica_lag_time_max_ms;
        for part in broker.replicas.all() {
            if let Some(isr) = part.shrink_candidates(now_ms(), lag_max_ms) {
                tracing::warn!(partition = %part.tp, isr = ?isr, "followers lag; shrinking the ISR");
                propose(&broker, &part, isr);
            }
        }
    }
}
