//! Every group request that writes to `__consumer_offsets`, each one async method the handler
//! calls: decide under the state lock and append the records there (so one group's records
//! reach the log in the order they were decided), wait for the ISR without the lock, then apply
//! the outcome. A record is applied only once committed; an offset record applied late never
//! overwrites a later one (they carry their log offsets).

use std::time::Duration;

use bytes::Bytes;

use super::classic::{Group, GroupState, JoinReply, SyncReply};
use super::member::{JoinOutcome, JoinRequest, SyncOutcome, SyncRequest};
use super::records::{OffsetValue, RecordKey};
use super::{GroupCoordinator, State};
use crate::clock::now_ms;
use crate::coordinator::{PendingWrite, Placement, WriteError};
use crate::error_code::ErrorCode;
use crate::log::AppendError;

/// How long past its rebalance timeout a JoinGroup may wait (the group's timer answers it
/// first; this only bounds a request whose group vanished without answering).
const JOIN_WAIT_GRACE: Duration = Duration::from_secs(5);
/// The longest a SyncGroup waits for the leader's assignment; the group's sync deadline (its
/// rebalance timeout) normally answers first.
const SYNC_WAIT_MAX: Duration = Duration::from_secs(30 * 60);

/// A committed offset to write: (topic, partition, value; `None` deletes it).
pub(crate) type OffsetEntry = (String, i32, Option<OffsetValue>);

/// How a failed write to `__consumer_offsets` is answered (Kafka's mapping in its group
/// metadata manager).
pub(super) fn write_error(e: &WriteError) -> ErrorCode {
    match e {
        // The coordinator moved with the partition's leadership; the write's fate is unknown.
        WriteError::NotLeader | WriteError::Append(AppendError::Io(_)) => ErrorCode::NotCoordinator,
        // Kafka answers a commit the replicas did not confirm (or cannot) with this.
        WriteError::NotEnoughReplicas { .. } | WriteError::TimedOut => {
            ErrorCode::CoordinatorNotAvailable
        }
        WriteError::Append(AppendError::MessageTooLarge { .. }) => {
            ErrorCode::InvalidCommitOffsetSize
        }
        WriteError::Append(_) | WriteError::Encode(_) => ErrorCode::UnknownServerError,
    }
}

fn group_record(group: &str, value: Option<Bytes>) -> (Bytes, Option<Bytes>) {
    (RecordKey::Group { group: group.to_string() }.encode(), value)
}

pub(super) fn offset_records(group: &str, entries: &[OffsetEntry]) -> Vec<(Bytes, Option<Bytes>)> {
    entries
        .iter()
        .map(|(topic, partition, value)| {
            let key = RecordKey::Offset {
                group: group.into(),
                topic: topic.clone(),
                partition: *partition,
            };
            (key.encode(), value.as_ref().map(OffsetValue::encode))
        })
        .collect()
}

impl GroupCoordinator {
    /// Stores whatever the last step left to persist (appended now, so it precedes every later
    /// write of the group; committed in the background), and forgets blank groups.
    pub(super) fn settle(&self, st: &mut State, group: &str, at: Placement) {
        let Some(g) = st.groups.get_mut(group) else { return };
        if let Some(value) = g.take_persist() {
            let record = group_record(group, Some(value.encode()));
            let written = self.offsets.append(at, vec![record]);
            let group = group.to_string();
            tokio::spawn(async move {
                let committed = match written {
                    Ok(pending) => pending.committed().await.map(|_| ()),
                    Err(e) => Err(e),
                };
                if let Err(e) = committed {
                    tracing::warn!(%group, error = %e, "storing the group's membership failed");
                }
            });
        }
        if g.is_blank() {
            st.groups.remove(group);
        }
    }

    /// JoinGroup: enters the group's next generation; answers once the rebalance completes
    /// (every member rejoined, or the rebalance timeout passed).
    pub(crate) async fn join(&self, group: &str, req: JoinRequest) -> JoinOutcome {
        let member_id = req.member_id.clone();
        let wait = Duration::from_millis(req.rebalance_timeout_ms.max(0) as u64) + JOIN_WAIT_GRACE;
        let reply = {
            let mut st = self.lock();
            let at = match st.placement(group) {
                Ok(at) => at,
                Err(code) => return JoinOutcome::error(code, &member_id),
            };
            let now = now_ms();
            let g = st
                .groups
                .entry(group.to_string())
                .or_insert_with(|| Group::new(group, &self.config, now));
            let reply = g.join(req, &self.config, now);
            self.settle(&mut st, group, at);
            reply
        };
        match reply {
            JoinReply::Now(o) => o,
            JoinReply::Wait(rx) => match tokio::time::timeout(wait, rx).await {
                Ok(Ok(o)) => o,
                Ok(Err(_)) => JoinOutcome::error(ErrorCode::NotCoordinator, &member_id),
                Err(_) => JoinOutcome::error(ErrorCode::RebalanceInProgress, &member_id),
            },
        }
    }

    /// SyncGroup: members collect their assignment. The leader's assignment is stored
    /// (acks=all) before any member is answered, so a new coordinator knows it.
    pub(crate) async fn sync(&self, group: &str, req: SyncRequest) -> SyncOutcome {
        let (reply, pending) = {
            let mut st = self.lock();
            let at = match st.placement(group) {
                Ok(at) => at,
                Err(code) => return SyncOutcome::error(code),
            };
            let Some(g) = st.groups.get_mut(group) else {
                return SyncOutcome::error(ErrorCode::UnknownMemberId);
            };
            match g.sync(req, now_ms()) {
                SyncReply::Store { wait, generation, value } => {
                    let record = group_record(group, Some(value.encode()));
                    (
                        SyncReply::Wait(wait),
                        Some((generation, self.offsets.append(at, vec![record]))),
                    )
                }
                other => (other, None),
            }
        };
        if let Some((generation, written)) = pending {
            let stored = match written {
                Ok(p) => p.committed().await.map(|_| ()),
                Err(e) => Err(e),
            };
            let stored = stored.map_err(|e| write_error(&e));
            if let Some(g) = self.lock().groups.get_mut(group) {
                g.complete_sync(generation, stored, now_ms());
            }
        }
        let wait = match reply {
            SyncReply::Now(o) => return o,
            SyncReply::Wait(rx) => rx,
            SyncReply::Store { wait, .. } => wait,
        };
        match tokio::time::timeout(SYNC_WAIT_MAX, wait).await {
            Ok(Ok(o)) => o,
            Ok(Err(_)) => SyncOutcome::error(ErrorCode::NotCoordinator),
            Err(_) => SyncOutcome::error(ErrorCode::RebalanceInProgress),
        }
    }

    /// LeaveGroup: one error per (member id, instance id).
    pub(crate) fn leave(
        &self,
        group: &str,
        members: &[(String, Option<String>)],
    ) -> Result<Vec<ErrorCode>, ErrorCode> {
        let mut st = self.lock();
        let at = st.placement(group)?;
        let Some(g) = st.groups.get_mut(group) else {
            return Ok(vec![ErrorCode::UnknownMemberId; members.len()]);
        };
        let now = now_ms();
        let codes = members.iter().map(|(m, i)| g.leave(m, i.as_deref(), now)).collect();
        self.settle(&mut st, group, at);
        Ok(codes)
    }

    /// OffsetCommit: checks the member and generation (creating the group for a standalone
    /// consumer's first commit), stores the offsets and applies them once committed.
    pub(crate) async fn commit_offsets(
        &self,
        group: &str,
        generation: i32,
        member_id: &str,
        instance: Option<&str>,
        entries: Vec<OffsetEntry>,
    ) -> Result<(), ErrorCode> {
        let pending = {
            let mut st = self.lock();
            let at = st.placement(group)?;
            let now = now_ms();
            match st.groups.get_mut(group) {
                Some(g) => g.validate_commit(generation, member_id, instance, now)?,
                None if generation < 0 => {
                    st.groups.insert(group.to_string(), Group::new(group, &self.config, now));
                }
                None => return Err(ErrorCode::IllegalGeneration),
            }
            self.offsets.append(at, offset_records(group, &entries))
        };
        self.apply_when_committed(group, &entries, pending).await
    }

    /// Waits for `pending` and applies `entries` (the i-th record sits at base + i).
    async fn apply_when_committed(
        &self,
        group: &str,
        entries: &[OffsetEntry],
        pending: Result<PendingWrite, WriteError>,
    ) -> Result<(), ErrorCode> {
        let base =
            pending.map_err(|e| write_error(&e))?.committed().await.map_err(|e| write_error(&e))?;
        let mut st = self.lock();
        let now = now_ms();
        let g = st
            .groups
            .entry(group.to_string())
            .or_insert_with(|| Group::new(group, &self.config, now));
        for (i, (topic, partition, value)) in entries.iter().enumerate() {
            g.apply_offset(topic, *partition, value.clone(), base + i as i64);
        }
        if g.is_blank() {
            st.groups.remove(group);
        }
        Ok(())
    }

    /// DeleteGroups: removes an empty group with its committed offsets by writing tombstones.
    /// The group is Dead while they are written, so nobody joins it meanwhile.
    pub(crate) async fn delete_group(&self, group: &str) -> ErrorCode {
        let pending = {
            let mut st = self.lock();
            let at = match st.placement(group) {
                Ok(at) => at,
                Err(code) => return code,
            };
            let Some(g) = st.groups.get_mut(group) else { return ErrorCode::GroupIdNotFound };
            match g.state {
                GroupState::Empty => g.state = GroupState::Dead,
                GroupState::Dead => return ErrorCode::CoordinatorNotAvailable,
                _ => return ErrorCode::NonEmptyGroup,
            }
            let mut tombstones: Vec<(Bytes, Option<Bytes>)> = g
                .offsets
                .keys()
                .map(|(t, p)| {
                    let key =
                        RecordKey::Offset { group: group.into(), topic: t.clone(), partition: *p };
                    (key.encode(), None)
                })
                .collect();
            tombstones.push(group_record(group, None));
            self.offsets.append(at, tombstones)
        };
        let stored = match pending {
            Ok(p) => p.committed().await.map(|_| ()),
            Err(e) => Err(e),
        };
        let mut st = self.lock();
        match st.groups.get_mut(group) {
            Some(g) if g.state == GroupState::Dead && stored.is_ok() => {
                st.groups.remove(group);
            }
            Some(g) if g.state == GroupState::Dead => g.state = GroupState::Empty,
            _ => {}
        }
        stored.err().map_or(ErrorCode::None, |e| write_error(&e))
    }

    /// OffsetDelete: removes a group's committed offsets for `partitions` (topic, partition,
    /// whether it exists). Per partition: UNKNOWN_TOPIC_OR_PARTITION, or
    /// GROUP_SUBSCRIBED_TO_TOPIC for topics an active consumer group subscribes to; for the
    /// whole group NON_EMPTY_GROUP when an active group's subscriptions cannot be read.
    pub(crate) async fn delete_offsets(
        &self,
        group: &str,
        partitions: &[(String, i32, bool)],
    ) -> Result<Vec<ErrorCode>, ErrorCode> {
        let (codes, entries, pending) = {
            let st = self.lock();
            let at = st.placement(group)?;
            let g = st.groups.get(group).ok_or(ErrorCode::GroupIdNotFound)?;
            let subscribed = match g.state {
                GroupState::Empty | GroupState::Dead => None,
                _ => Some(g.subscribed_topics().ok_or(ErrorCode::NonEmptyGroup)?),
            };
            let mut entries: Vec<OffsetEntry> = Vec::new();
            let codes: Vec<ErrorCode> = partitions
                .iter()
                .map(|(topic, partition, exists)| {
                    if !exists {
                        ErrorCode::UnknownTopicOrPartition
                    } else if subscribed.as_ref().is_some_and(|s| s.contains(topic)) {
                        ErrorCode::GroupSubscribedToTopic
                    } else {
                        entries.push((topic.clone(), *partition, None));
                        ErrorCode::None
                    }
                })
                .collect();
            if entries.is_empty() {
                return Ok(codes);
            }
            let pending = self.offsets.append(at, offset_records(group, &entries));
            (codes, entries, pending)
        };
        self.apply_when_committed(group, &entries, pending).await?;
        Ok(codes)
    }

    /// Kafka's offset expiration (KIP-211), every `offsets.retention.check.interval.ms`:
    /// * a group with members' protocol that has been Empty for `offsets.retention.minutes`
    ///   loses all its offsets;
    /// * a Stable consumer group loses the offsets of topics it no longer subscribes to, once
    ///   committed that long ago;
    /// * a standalone consumer's offsets (no protocol) expire that long after their commit.
    ///
    /// Expired offsets get tombstones; a group left empty and without offsets gets one too, so
    /// the compacted `__consumer_offsets` forgets it. Returns how many offsets expired.
    pub(crate) async fn expire_offsets(&self, now_ms: i64) -> usize {
        let retention_ms = self.config.offsets_retention_minutes.saturating_mul(60_000);
        let mut writes = Vec::new();
        {
            let st = self.lock();
            let ids: Vec<String> = st.groups.keys().cloned().collect();
            for id in ids {
                let Ok(at) = st.placement(&id) else { continue };
                let Some(g) = st.groups.get(&id) else { continue };
                let old = |ms: i64| now_ms.saturating_sub(ms) >= retention_ms;
                let expired: Vec<(String, i32)> = match (g.protocol_type.is_some(), g.state) {
                    (true, GroupState::Empty) if old(g.state_since_ms) => {
                        g.offsets.keys().cloned().collect()
                    }
                    (false, GroupState::Empty) => g
                        .offsets
                        .iter()
                        .filter(|(_, c)| old(c.value.commit_timestamp_ms))
                        .map(|(k, _)| k.clone())
                        .collect(),
                    (true, GroupState::Stable) => {
                        let Some(subscribed) = g.subscribed_topics() else { continue };
                        g.offsets
                            .iter()
                            .filter(|((t, _), c)| {
                                !subscribed.contains(t) && old(c.value.commit_timestamp_ms)
                            })
                            .map(|(k, _)| k.clone())
                            .collect()
                    }
                    _ => Vec::new(),
                };
                if expired.is_empty() {
                    continue;
                }
                let entries: Vec<OffsetEntry> =
                    expired.into_iter().map(|(t, p)| (t, p, None)).collect();
                let mut records = offset_records(&id, &entries);
                if g.state == GroupState::Empty && entries.len() == g.offsets.len() {
                    records.push(group_record(&id, None));
                }
                writes.push((id.clone(), entries, self.offsets.append(at, records)));
            }
        }
        let mut expired = 0;
        for (group, entries, pending) in writes {
            match self.apply_when_committed(&group, &entries, pending).await {
                Ok(()) => expired += entries.len(),
                Err(code) => {
                    tracing::warn!(%group, ?code, "writing expired offsets' tombstones failed")
                }
            }
        }
        if expired > 0 {
            tracing::info!(offsets = expired, "expired committed offsets");
        }
        expired
    }
}
