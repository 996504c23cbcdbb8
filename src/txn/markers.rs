//! Ending a transaction: once its Prepare state is stored, a marker (COMMIT or ABORT) is written
//! to every partition of the transaction, by each partition's leader; once all are committed
//! the Complete state is stored. Markers are retried until written or until this broker stops
//! coordinating the id (its successor loads the Prepare state and finishes the round), with a
//! backoff between rounds; a partition whose topic was deleted needs no marker.

use std::time::Duration;

use futures_util::future::BoxFuture;

use super::TransactionCoordinator;
use super::metadata;
use crate::error_code::ErrorCode;

/// The first pause before markers that failed are sent again, doubled up to the maximum.
const MARKER_RETRY_BACKOFF: Duration = Duration::from_millis(50);
const MARKER_RETRY_BACKOFF_MAX: Duration = Duration::from_secs(2);
/// Rounds between warnings while markers keep failing.
const MARKER_WARN_EVERY: u32 = 20;

/// One transaction end to write to some partitions.
#[derive(Debug, Clone)]
pub(crate) struct MarkerRequest {
    pub(crate) producer_id: i64,
    pub(crate) producer_epoch: i16,
    pub(crate) commit: bool,
    /// The coordinator's leader epoch of the transaction's `__transaction_state` partition.
    pub(crate) coordinator_epoch: i32,
    pub(crate) partitions: Vec<(String, i32)>,
}

/// Delivers markers to the partitions' leaders (this broker or others); implemented by the
/// broker.
pub(crate) trait MarkerSender: Send + Sync {
    /// Writes the markers and waits for their commit; returns the partitions that must be
    /// tried again, with why.
    fn send(&self, request: MarkerRequest) -> BoxFuture<'static, Vec<super::PartitionCode>>;
}

impl TransactionCoordinator {
    /// Finishes `id`'s Prepare state in the background.
    pub(crate) fn spawn_markers(self: &std::sync::Arc<Self>, id: String) {
        let coordinator = self.clone();
        tokio::spawn(async move { coordinator.finish_txn(id).await });
    }

    async fn finish_txn(self: std::sync::Arc<Self>, id: String) {
        let mut backoff = MARKER_RETRY_BACKOFF;
        let mut rounds = 0u32;
        loop {
            let (at, v) = {
                let st = self.lock();
                let Ok(at) = st.placement(&id) else { return };
                match st.txns.get(&id) {
                    Some(v) if v.state.is_preparing() => (at, v.clone()),
                    _ => return,
                }
            };
            let mut remaining: Vec<(String, i32)> = v.partitions.iter().cloned().collect();
            while !remaining.is_empty() {
                if self.placement(&id) != Ok(at) {
                    return;
                }
                let request = MarkerRequest {
                    producer_id: v.producer_id,
                    producer_epoch: v.producer_epoch,
                    commit: v.state == metadata::TxnState::PrepareCommit,
                    coordinator_epoch: at.epoch.0,
                    partitions: remaining.clone(),
                };
                let failed = self.markers.send(request).await;
                rounds += 1;
                if !failed.is_empty() && rounds.is_multiple_of(MARKER_WARN_EVERY) {
                    tracing::warn!(transactional_id = %id, failed = ?failed,
                        "transaction markers still cannot be written; retrying");
                }
                remaining = failed.into_iter().map(|(p, _)| p).collect();
                if !remaining.is_empty() {
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MARKER_RETRY_BACKOFF_MAX);
                }
            }
            let epoch = v.producer_epoch;
            let done = self
                .transition(&id, |cur| {
                    Ok(cur
                        .filter(|c| c.state.is_preparing() && c.producer_epoch == epoch)
                        .and_then(|c| metadata::complete(c, crate::clock::now_ms())))
                })
                .await;
            match done {
                Ok(_) | Err(ErrorCode::NotCoordinator) => return,
                Err(code) => {
                    tracing::debug!(transactional_id = %id, error = code.name(),
                        "storing a completed transaction failed; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MARKER_RETRY_BACKOFF_MAX);
                }
            }
        }
    }
}
