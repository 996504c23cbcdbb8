//! Offsets committed inside a transaction (TxnOffsetCommit, KIP-98 and KIP-447): written to the
//! group's `__consumer_offsets` partition as a transactional batch of the producer, held
//! pending until the transaction coordinator's marker lands on that partition: a COMMIT makes
//! them the group's committed offsets, an ABORT drops them. While any is pending for a
//! partition, OffsetFetch with `require_stable` answers UNSTABLE_OFFSET_COMMIT for it.

use super::records::partition_for;
use super::replay::PendingTxnOffset;
use super::writes::{OffsetEntry, offset_records, write_error};
use super::{GroupCoordinator, classic::Group};
use crate::clock::now_ms;
use crate::error_code::ErrorCode;

/// Who commits: the producer, and (KIP-447) the consumer-group member it consumes as.
#[derive(Debug, Clone)]
pub(crate) struct TxnCommitter {
    pub(crate) producer_id: i64,
    pub(crate) producer_epoch: i16,
    /// -1 and "" from clients before KIP-447: no member check.
    pub(crate) generation: i32,
    pub(crate) member_id: String,
    pub(crate) group_instance_id: Option<String>,
}

impl GroupCoordinator {
    /// TxnOffsetCommit: writes the offsets as part of the producer's transaction; they count
    /// once its COMMIT marker is written ([`GroupCoordinator::complete_txn`]).
    pub(crate) async fn commit_txn_offsets(
        &self,
        group: &str,
        who: &TxnCommitter,
        entries: Vec<OffsetEntry>,
    ) -> Result<(), ErrorCode> {
        let pending = {
            let mut st = self.lock();
            let at = st.placement(group)?;
            let now = now_ms();
            let checked = !(who.member_id.is_empty() && who.generation < 0);
            match st.groups.get_mut(group) {
                Some(g) if checked => g.validate_commit(
                    who.generation,
                    &who.member_id,
                    who.group_instance_id.as_deref(),
                    now,
                )?,
                Some(_) => {}
                None if checked => return Err(ErrorCode::IllegalGeneration),
                None => {
                    st.groups.insert(group.to_string(), Group::new(group, &self.config, now));
                }
            }
            self.offsets.append_transactional(
                at,
                offset_records(group, &entries),
                (who.producer_id, who.producer_epoch),
            )
        };
        let base =
            pending.map_err(|e| write_error(&e))?.committed().await.map_err(|e| write_error(&e))?;
        let mut st = self.lock();
        let list = st.pending_txn.entry(who.producer_id).or_default();
        for (i, (topic, partition, value)) in entries.into_iter().enumerate() {
            if let Some(value) = value {
                list.push((group.to_string(), topic, partition, value, base + i as i64));
            }
        }
        Ok(())
    }

    /// A marker for `producer_id` was committed on `partition` of `__consumer_offsets`: its
    /// pending offsets there become committed (COMMIT) or are dropped (ABORT).
    pub(crate) fn complete_txn(&self, partition: i32, producer_id: i64, commit: bool) {
        let mut st = self.lock();
        let count = st.shards.partition_count();
        let Some(list) = st.pending_txn.remove(&producer_id) else { return };
        let (done, rest): (Vec<PendingTxnOffset>, Vec<PendingTxnOffset>) =
            list.into_iter().partition(|(g, ..)| partition_for(g, count) == partition);
        if !rest.is_empty() {
            st.pending_txn.insert(producer_id, rest);
        }
        if !commit {
            return;
        }
        let now = now_ms();
        for (group, topic, p, value, offset) in done {
            st.groups
                .entry(group.clone())
                .or_insert_with(|| Group::new(&group, &self.config, now))
                .apply_offset(&topic, p, Some(value), offset);
        }
    }

    /// Whether a transaction that has not ended holds an offset of `group` for the partition.
    pub(crate) fn has_pending_txn_offset(&self, group: &str, topic: &str, partition: i32) -> bool {
        self.lock()
            .pending_txn
            .values()
            .flatten()
            .any(|(g, t, p, ..)| g == group && t == topic && *p == partition)
    }
}
