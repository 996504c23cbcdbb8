//! Rebuilding groups from `__consumer_offsets` at load: records in log order, the last value of
//! each key wins, a tombstone deletes it. Undecodable records are skipped with a warning.
//! Offsets committed in a transaction (TxnOffsetCommit) wait for their producer's marker: a
//! COMMIT applies them (at the marker's place in the order, as Kafka's loader does), an ABORT
//! drops them; those still waiting at the end are returned as pending.

use std::collections::HashMap;

use super::classic::Group;
use super::records::{GroupValue, OffsetValue, RecordKey};
use crate::config::group::GroupConfig;
use crate::coordinator::StoredRecord;

/// An offset committed in a transaction that has not ended: (group, topic, partition, value,
/// its record's offset).
pub(crate) type PendingTxnOffset = (String, String, i32, OffsetValue, i64);

/// The groups `stored` (one partition's records, in log order) describe, and the offsets of
/// transactions still open, by producer id.
pub(crate) fn replay(
    stored: Vec<StoredRecord>,
    config: &GroupConfig,
    now_ms: i64,
) -> (HashMap<String, Group>, HashMap<i64, Vec<PendingTxnOffset>>) {
    let mut groups: HashMap<String, Group> = HashMap::new();
    let mut pending: HashMap<i64, Vec<PendingTxnOffset>> = HashMap::new();
    for s in stored {
        if let Some(commit) = s.marker {
            for (id, topic, partition, value, offset) in
                pending.remove(&s.producer_id).into_iter().flatten()
            {
                if commit {
                    groups
                        .entry(id.clone())
                        .or_insert_with(|| Group::new(&id, config, now_ms))
                        .apply_offset(&topic, partition, Some(value), offset);
                }
            }
            continue;
        }
        let key = match RecordKey::decode(s.key) {
            Ok(key) => key,
            Err(e) => {
                tracing::warn!(offset = s.offset, error = %e, "skipping a record of unknown format");
                continue;
            }
        };
        let id = key.group().to_string();
        match key {
            RecordKey::Offset { topic, partition, .. } => {
                let value = match s.value.map(OffsetValue::decode).transpose() {
                    Ok(v) => v,
                    Err(e) => {
                        tracing::warn!(group = %id, error = %e, "skipping an unreadable offset record");
                        continue;
                    }
                };
                if s.producer_id >= 0 {
                    if let Some(value) = value {
                        pending
                            .entry(s.producer_id)
                            .or_default()
                            .push((id, topic, partition, value, s.offset));
                    }
                    continue;
                }
                groups
                    .entry(id.clone())
                    .or_insert_with(|| Group::new(&id, config, now_ms))
                    .apply_offset(&topic, partition, value, s.offset);
            }
            RecordKey::Group { .. } => match s.value.map(GroupValue::decode).transpose() {
                Ok(Some(v)) => {
                    let offsets = groups.remove(&id).map(|g| g.offsets).unwrap_or_default();
                    let mut g = Group::from_value(&id, v, config, now_ms);
                    g.offsets = offsets;
                    groups.insert(id, g);
                }
                Ok(None) => {
                    groups.remove(&id);
                }
                Err(e) => {
                    tracing::warn!(group = %id, error = %e, "skipping an unreadable group record")
                }
            },
        }
    }
    groups.retain(|_, g| !g.is_blank());
    (groups, pending)
}
