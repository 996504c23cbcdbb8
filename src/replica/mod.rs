//! The replica layer: the partition replicas this node hosts, between the storage below
//! ([`crate::log`]) and the rooms that use replicas above (`replication/`, `group/`, the
//! coordinators on internal topics, `kafka/` through `broker/`).
//!
//! * [`partition`]: one replica — its `PartitionLog`, leader/follower state, high watermark,
//!   commit waits, and every operation that must see leadership and the log together.
//! * [`manager`]: every hosted replica, and the reconciler that turns a metadata image into
//!   local replicas (open, lead, follow, delete).
//! * [`divergence`]: KIP-320 on a leader's log.
//!
//! # Invariants
//! * **High watermark only grows on a leader** ([`Partition::advance_high_watermark`] raises
//!   it to the smallest log end offset of the ISR, never lowers it). A follower copies its
//!   leader's, bounded by its own log end; a truncation may lower it there.
//! * **Epoch fencing.** A leader append reads leadership and epoch in one reading under the log
//!   lock and stamps that epoch; an acks=all write is acknowledged only by the leadership that
//!   appended it ([`Partition::wait_for_commit`]); a follower applies a fetch answer only while it
//!   still follows that leader in the epoch it asked in ([`Partition::apply_as_follower`]).
//! * **The log lock stays here.** No guard leaves this module (tests aside), and none is held
//!   across an `.await`. Leadership changes and appends take the log lock, so checks made under
//!   it cannot race them.
//! * **No fsync under the log lock on the write path.** The flusher and `flush.messages`
//!   writers take a flush job out of the log (second file handles) and fsync on a blocking
//!   thread while appends go on; a writer waiting for its flush waits on that thread, not on a
//!   tokio worker. A segment roll fsyncs nothing either: the next flush job syncs what it
//!   rolled.
//! * **Wake-ups are per partition.** An append publishes the partition's log end offset and high
//!   watermark on its own watch channels; only fetches waiting on that partition wake.
//! * This layer never imports the broker, the network or the coordinators.

pub(crate) mod divergence;
pub(crate) mod manager;
pub(crate) mod partition;

pub(crate) use manager::{Missing, ReconcileFailures, ReplicaManager};
pub(crate) use partition::{
    Acks, CommitWait, FollowerApplied, Isolation, LeaderAppend, LeaderAppendError, LeaderData,
    Partition, PendingFlush,
};

use tokio::sync::watch;

/// Waits until any of `watches` changes (since it was last seen) or `deadline` passes. With
/// no watches it waits for the deadline. Call `borrow_and_update` on each before reading what
/// it guards, so a change between the read and this wait is not missed.
pub(crate) async fn wait_for_any_change(
    watches: &mut [watch::Receiver<i64>],
    deadline: tokio::time::Instant,
) {
    if watches.is_empty() {
        tokio::time::sleep_until(deadline).await;
        return;
    }
    let changes =
        futures_util::future::select_all(watches.iter_mut().map(|w| Box::pin(w.changed())));
    let _ = tokio::time::timeout_at(deadline, changes).await;
}

#[cfg(test)]
mod tests;
