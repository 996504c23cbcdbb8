//! The coordinator's two timers: transactions open longer than their `transaction.timeout.ms`
//! are aborted with the producer's epoch bumped, so the producer that left them is fenced
//! (every `transaction.abort.timed.out.transaction.cleanup.interval.ms`, Kafka's
//! `abortTimedOutTransactions`); ids with no transaction for `transactional.id.expiration.ms`
//! are forgotten with a tombstone (every
//! `transaction.remove.expired.transaction.cleanup.interval.ms`).

use std::sync::Arc;

use super::{TransactionCoordinator, metadata};
use crate::clock::now_ms;

impl TransactionCoordinator {
    /// The ids coordinated here, not being written, for which `pick` holds.
    fn ids_where(&self, pick: impl Fn(&super::records::TxnValue) -> bool) -> Vec<String> {
        let st = self.lock();
        st.txns
            .iter()
            .filter(|(id, v)| !st.writing.contains(*id) && st.placement(id).is_ok() && pick(v))
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// Aborts every transaction open past its timeout, fencing its producer.
    pub(crate) async fn abort_timed_out(self: &Arc<Self>) {
        let now = now_ms();
        for id in self.ids_where(|v| metadata::abort_if_timed_out(v, now).is_some()) {
            let aborted = self
                .transition(&id, |cur| {
                    Ok(cur.and_then(|v| metadata::abort_if_timed_out(v, now_ms())))
                })
                .await;
            if let Ok(Some(v)) = aborted {
                tracing::info!(transactional_id = %id, producer_id = v.producer_id,
                    epoch = v.producer_epoch, "aborting a transaction open past its timeout");
                self.spawn_markers(id);
            }
        }
    }

    /// Forgets every id idle past `transactional.id.expiration.ms` (a tombstone in its
    /// partition, so a successor does not load it either).
    pub(crate) async fn expire_ids(&self) {
        let now = now_ms();
        let expiration = self.config.id_expiration_ms;
        for id in self.ids_where(|v| metadata::expired(v, now, expiration)) {
            let pending = {
                let mut st = self.lock();
                let Ok(at) = st.placement(&id) else { continue };
                let still = !st.writing.contains(&id)
                    && st.txns.get(&id).is_some_and(|v| metadata::expired(v, now, expiration));
                if !still {
                    continue;
                }
                self.begin_write(&mut st, &id, at, None).map(|p| (at, p))
            };
            if let Ok((at, p)) = pending
                && self.finish_write(&id, at, p, None).await.is_ok()
            {
                tracing::info!(transactional_id = %id, "transactional id expired");
            }
        }
    }
}
