//! The data plane: partition replication between brokers, follower-driven as in Kafka.
//!
//! * [`service`] (leader): serves follower fetches over gRPC (`proto/replication.proto`). A
//!   follower's fetch offset acknowledges everything before it; the leader records it, raises
//!   the high watermark to the minimum log end offset of the ISR, and detects a diverging log
//!   from the follower's last fetched epoch (KIP-320).
//! * [`fetcher`] (follower): one task per leader broker fetches every partition this node
//!   follows from it, truncates on divergence, appends batches verbatim and adopts the HW.
//! * [`isr`] (leader): shrinks the ISR of followers that lag `replica.lag.time.max.ms` and
//!   expands it with followers that caught up, always through AlterPartition to the active
//!   controller, fenced by leader epoch and partition epoch, so an isolated leader can never
//!   shrink the ISR to itself.
//!
//! # Dependencies
//! This room sees the replica layer, the metadata image and what [`ReplicationContext`] hands
//! it; `broker/` builds the context and implements [`isr::IsrProposer`]. It never imports the
//! broker.
//!
//! # Invariants
//! * Fetcher tasks end on shutdown, when this node follows nothing on their leader any more,
//!   or when the [`Replication`] that owns them is dropped.
//! * A fetch answer is applied only under the log lock, by the replica layer, while this
//!   replica still follows the answering leader in the epoch it asked in.
//! * At most one AlterPartition per partition is in flight.

pub(crate) mod fetcher;
pub(crate) mod isr;
pub(crate) mod markers;
pub(crate) mod service;

use std::collections::HashSet;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::watch;

use self::isr::IsrProposer;
use crate::metadata::MetadataLog;
use crate::replica::ReplicaManager;
use crate::types::NodeId;

/// Generated from `proto/replication.proto`.
#[allow(unreachable_pub, clippy::all)]
pub mod pb {
    tonic::include_proto!("samsa.replication.v1");
}

/// What replication needs from the node it runs on.
pub(crate) struct ReplicationContext {
    pub(crate) node_id: NodeId,
    pub(crate) replicas: Arc<ReplicaManager>,
    /// Where the leaders' replication addresses are.
    pub(crate) metadata: Arc<dyn MetadataLog>,
    /// Sends ISR changes to the active controller.
    pub(crate) isr: Arc<dyn IsrProposer>,
    /// Turns true when the node shuts down.
    pub(crate) shutdown: watch::Receiver<bool>,
    /// `replica.lag.time.max.ms`.
    pub(crate) replica_lag_time_max_ms: i64,
    /// The replication throttles (KIP-73) on both ends.
    pub(crate) throttle: Arc<crate::quota::replication::ReplicationThrottle>,
    /// Told of transaction markers committed here (the group coordinator's offsets).
    pub(crate) markers: Arc<dyn markers::MarkerObserver>,
    /// Answers other leaders' KIP-890 verification for the ids coordinated here.
    pub(crate) txn_verifier: Arc<dyn markers::TxnVerifier>,
    /// Dials the leaders' CONTROLLER listeners.
    pub(crate) dialer: crate::raft::network::Dialer,
}

/// Replication on one node: the follower fetchers it runs and the ISR checks it makes as a
/// leader. The leader side's gRPC service is [`service::ReplicationService`].
pub(crate) struct Replication {
    ctx: Arc<ReplicationContext>,
    /// The leaders this node runs fetcher tasks for.
    fetching_from: Mutex<HashSet<NodeId>>,
}

impl Replication {
    pub(crate) fn new(ctx: Arc<ReplicationContext>) -> Arc<Self> {
        Arc::new(Replication { ctx, fetching_from: Mutex::default() })
    }

    pub(crate) fn context(&self) -> &Arc<ReplicationContext> {
        &self.ctx
    }

    fn fetching_from(&self) -> MutexGuard<'_, HashSet<NodeId>> {
        self.fetching_from.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Leader: drops followers that stopped catching up from the ISR of every partition it leads.
    pub(crate) fn shrink_isrs(&self, now_ms: i64) {
        for part in self.ctx.replicas.all() {
            if let Some(isr) = part.shrink_candidates(now_ms, self.ctx.replica_lag_time_max_ms) {
                tracing::warn!(partition = %part.tp, isr = ?isr, "followers lag; shrinking the ISR");
                isr::propose(&self.ctx.isr, &part, isr);
            }
        }
    }
}
