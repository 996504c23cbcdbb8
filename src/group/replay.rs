//! Rebuilding groups from `__consumer_offsets` at load: records in log order, the last value of
//! each key wins, a tombstone deletes it. Undecodable records are skipped with a warning.

use std::collections::HashMap;

use super::classic::Group;
use super::records::{GroupValue, OffsetValue, RecordKey};
use crate::config::group::GroupConfig;
use crate::coordinator::StoredRecord;

/// The groups `stored` (one partition's records, in log order) describe.
pub(crate) fn replay(
    stored: Vec<StoredRecord>,
    config: &GroupConfig,
    now_ms: i64,
) -> HashMap<String, Group> {
    let mut groups: HashMap<String, Group> = HashMap::new();
    for s in stored {
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
    groups
}
