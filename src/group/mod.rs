//! The consumer-group coordinator (Kafka's classic group protocol). Groups and their committed
//! offsets live in the internal topic `__consumer_offsets`; the coordinator of a group is the
//! leader of the partition its id hashes to, and only that broker answers for the group. The
//! loading, unloading and write-then-apply machinery is the shared [`crate::coordinator`]
//! piece; this room holds the group state machine and its record formats.
//!
//! # Layout
//! * [`records`]: the topic's key and value formats (Kafka's) and the group → partition hash.
//! * [`member`], [`classic`]: the group state machine, synchronous and clock-driven.
//! * [`writes`]: every request that writes (join, sync, leave, commit, delete): decide under
//!   the state lock, append there, wait for the ISR without it, then apply.
//! * [`replay`]: rebuilding a partition's groups from its records at load.
//! * [`consumer_protocol`]: reading subscriptions and assignments inside member metadata.
//!
//! # Invariants
//! * A partition's groups are served only while this broker leads it, at the leader epoch they
//!   were loaded in; before the load finishes requests get COORDINATOR_LOAD_IN_PROGRESS, after
//!   a leadership change NOT_COORDINATOR (the groups are dropped, waiters answered).
//! * A commit or an assignment is applied in memory only after the ISR has its record, so what
//!   a coordinator answers is what its successor loads. Records of one group are appended in
//!   the order they were decided (under the state lock), fire-and-forget ones included.
//! * The state lock is never held across an `.await`.
//! * This room never imports the broker: it gets the replica layer and the metadata log.

pub(crate) mod classic;
pub(crate) mod consumer_protocol;
pub(crate) mod member;
pub(crate) mod records;
pub(crate) mod replay;
pub(crate) mod txn_offsets;
pub(crate) mod writes;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::records::Compression;

use self::classic::{Group, GroupState};
use self::records::{OffsetValue, partition_for};
use crate::clock::now_ms;
use crate::config::group::{GroupConfig, OFFSETS_TOPIC};
use crate::coordinator::{InternalTopic, Placement, Shards};
use crate::error_code::ErrorCode;
use crate::metadata::MetadataLog;
use crate::metadata::decide::TopicSpec;
use crate::replica::ReplicaManager;

#[derive(Debug, Default)]
struct State {
    /// The offsets partitions this broker coordinates.
    shards: Shards,
    groups: HashMap<String, Group>,
    /// Offsets of transactions that have not ended, by producer id (see [`txn_offsets`]).
    pending_txn: HashMap<i64, Vec<replay::PendingTxnOffset>>,
}

impl State {
    fn placement(&self, group: &str) -> Result<Placement, ErrorCode> {
        let count = self.shards.partition_count();
        if count == 0 {
            return Err(ErrorCode::NotCoordinator);
        }
        self.shards.placement(partition_for(group, count))
    }
}

/// A listed group (ListGroups).
#[derive(Debug, Clone)]
pub(crate) struct GroupListing {
    pub(crate) group_id: String,
    pub(crate) protocol_type: String,
    pub(crate) state: GroupState,
}

/// A described member (DescribeGroups).
#[derive(Debug, Clone)]
pub(crate) struct MemberDescription {
    pub(crate) member_id: String,
    pub(crate) group_instance_id: Option<String>,
    pub(crate) client_id: String,
    pub(crate) client_host: String,
    pub(crate) metadata: Bytes,
    pub(crate) assignment: Bytes,
}

/// A described group.
#[derive(Debug, Clone)]
pub(crate) struct GroupDescription {
    pub(crate) state: GroupState,
    pub(crate) protocol_type: String,
    pub(crate) protocol: String,
    pub(crate) members: Vec<MemberDescription>,
}

/// Offsets asked for: every committed one, or these partitions per topic.
pub(crate) type OffsetFilter = Option<Vec<(String, Vec<i32>)>>;

/// The coordinator of the groups whose partitions this broker leads.
pub(crate) struct GroupCoordinator {
    config: GroupConfig,
    /// `__consumer_offsets` on this node.
    offsets: Arc<InternalTopic>,
    /// The offsets topic's partition count comes from here.
    metadata: Arc<dyn MetadataLog>,
    state: Mutex<State>,
}

impl GroupCoordinator {
    pub(crate) fn new(
        config: GroupConfig,
        replicas: Arc<ReplicaManager>,
        metadata: Arc<dyn MetadataLog>,
    ) -> Arc<Self> {
        let timeout = Duration::from_millis(config.offsets_commit_timeout_ms.max(0) as u64);
        let compression = match config.offsets_topic_compression_codec {
            1 => Compression::Gzip,
            2 => Compression::Snappy,
            3 => Compression::Lz4,
            4 => Compression::Zstd,
            _ => Compression::None,
        };
        let offsets = Arc::new(InternalTopic::new(OFFSETS_TOPIC, replicas, timeout, compression));
        Arc::new(GroupCoordinator { config, offsets, metadata, state: Mutex::default() })
    }

    pub(crate) fn config(&self) -> &GroupConfig {
        &self.config
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Heartbeat.
    pub(crate) fn heartbeat(
        &self,
        group: &str,
        generation: i32,
        member_id: &str,
        instance: Option<&str>,
    ) -> ErrorCode {
        let mut st = self.lock();
        if let Err(code) = st.placement(group) {
            return code;
        }
        match st.groups.get_mut(group) {
            Some(g) => g.heartbeat(generation, member_id, instance, now_ms()),
            None => ErrorCode::UnknownMemberId,
        }
    }

    /// OffsetFetch: (topic, partition, committed offset if any).
    pub(crate) fn fetch_offsets(
        &self,
        group: &str,
        filter: &OffsetFilter,
    ) -> Result<Vec<(String, i32, Option<OffsetValue>)>, ErrorCode> {
        let st = self.lock();
        st.placement(group)?;
        let offsets = st.groups.get(group).map(|g| &g.offsets);
        Ok(match filter {
            None => offsets
                .into_iter()
                .flatten()
                .map(|((t, p), c)| (t.clone(), *p, Some(c.value.clone())))
                .collect(),
            Some(topics) => topics
                .iter()
                .flat_map(|(t, ps)| ps.iter().map(move |p| (t, *p)))
                .map(|(t, p)| {
                    let c = offsets.and_then(|o| o.get(&(t.clone(), p)));
                    (t.clone(), p, c.map(|c| c.value.clone()))
                })
                .collect(),
        })
    }

    /// Every committed offset of the groups coordinated here: (group, topic, partition, offset).
    pub(crate) fn committed_offsets(&self) -> Vec<(String, String, i32, i64)> {
        let st = self.lock();
        st.groups
            .values()
            .flat_map(|g| {
                g.offsets.iter().map(|((t, p), c)| (g.id.clone(), t.clone(), *p, c.value.offset))
            })
            .collect()
    }

    /// ListGroups: the groups of every loaded partition, and LOAD_IN_PROGRESS while any loads.
    pub(crate) fn list(&self) -> (ErrorCode, Vec<GroupListing>) {
        let st = self.lock();
        let loading = st.shards.loading();
        let groups = st
            .groups
            .values()
            .map(|g| GroupListing {
                group_id: g.id.clone(),
                protocol_type: g.protocol_type.clone().unwrap_or_default(),
                state: g.state,
            })
            .collect();
        (if loading { ErrorCode::CoordinatorLoadInProgress } else { ErrorCode::None }, groups)
    }

    /// DescribeGroups: `None` for a group that does not exist. Member metadata and assignments
    /// are shown only while the group is Stable, as Kafka does.
    pub(crate) fn describe(&self, group: &str) -> Result<Option<GroupDescription>, ErrorCode> {
        let st = self.lock();
        st.placement(group)?;
        let Some(g) = st.groups.get(group) else { return Ok(None) };
        let protocol = g.protocol.clone().unwrap_or_default();
        let stable = g.state == GroupState::Stable;
        Ok(Some(GroupDescription {
            state: g.state,
            protocol_type: g.protocol_type.clone().unwrap_or_default(),
            protocol: protocol.clone(),
            members: g
                .members
                .iter()
                .map(|m| MemberDescription {
                    member_id: m.id.clone(),
                    group_instance_id: m.group_instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    metadata: if stable { m.metadata(&protocol) } else { Bytes::new() },
                    assignment: if stable { m.assignment.clone() } else { Bytes::new() },
                })
                .collect(),
        }))
    }

    /// Runs timers: session expiry, rebalance and sync deadlines.
    pub(crate) fn tick(&self) {
        let mut st = self.lock();
        let now = now_ms();
        let ids: Vec<String> = st.groups.keys().cloned().collect();
        for id in ids {
            let Ok(at) = st.placement(&id) else { continue };
            if let Some(g) = st.groups.get_mut(&id) {
                g.tick(now);
            }
            self.settle(&mut st, &id, at);
        }
    }

    /// Follows leadership of `__consumer_offsets`: loads the groups of partitions this broker
    /// now leads, drops those of partitions it no longer leads.
    pub(crate) fn on_metadata(self: &Arc<Self>) {
        let image = self.metadata.image();
        let count = image.topic(OFFSETS_TOPIC).map_or(0, |t| t.partitions.len() as i32);
        let led = self.offsets.led_partitions(count);
        let mut st = self.lock();
        let change = st.shards.follow(count, &led);
        for p in change.lost {
            st.groups.retain(|id, _| partition_for(id, count.max(1)) != p);
            for list in st.pending_txn.values_mut() {
                list.retain(|(g, ..)| partition_for(g, count.max(1)) != p);
            }
            st.pending_txn.retain(|_, l| !l.is_empty());
            tracing::info!(
                partition = p,
                "no longer the group coordinator for this offsets partition"
            );
        }
        drop(st);
        for at in change.gained {
            let coordinator = self.clone();
            self.offsets.load(at, move |records, elapsed| {
                let n = records.len();
                let (groups, pending) = replay::replay(records, &coordinator.config, now_ms());
                let count = groups.len();
                if coordinator.install(at, groups, pending) && n > 0 {
                    tracing::info!(partition = at.partition, epoch = %at.epoch, groups = count,
                        records = n, elapsed_ms = elapsed.as_millis() as u64,
                        "loaded groups; now their coordinator");
                }
            });
        }
    }

    fn install(
        &self,
        at: Placement,
        groups: HashMap<String, Group>,
        pending: HashMap<i64, Vec<replay::PendingTxnOffset>>,
    ) -> bool {
        let mut st = self.lock();
        if !st.shards.finish_load(at) {
            return false;
        }
        st.groups.extend(groups);
        for (pid, list) in pending {
            st.pending_txn.entry(pid).or_default().extend(list);
        }
        true
    }

    /// Drops every group (shutdown): waiting requests are answered NOT_COORDINATOR.
    pub(crate) fn unload_all(&self) {
        let mut st = self.lock();
        st.shards.clear();
        st.groups.clear();
        st.pending_txn.clear();
    }

    /// `__consumer_offsets` as it is created on first use: `offsets.topic.num.partitions`
    /// partitions, `offsets.topic.replication.factor` capped by the live brokers, compacted
    /// (never deleted by retention; the cleaner keeps the last record of each key, so a
    /// coordinator's load follows the live state, not the history).
    pub(crate) fn offsets_topic_spec(&self, live_brokers: usize) -> TopicSpec {
        let rf = (self.config.offsets_topic_replication_factor as usize).min(live_brokers.max(1));
        TopicSpec {
            name: OFFSETS_TOPIC.to_string(),
            num_partitions: self.config.offsets_topic_num_partitions,
            replication_factor: rf as i16,
            assignments: Default::default(),
            configs: [
                ("cleanup.policy".to_string(), "compact".to_string()),
                ("retention.ms".to_string(), "-1".to_string()),
                ("retention.bytes".to_string(), "-1".to_string()),
                ("segment.bytes".to_string(), self.config.offsets_topic_segment_bytes.to_string()),
            ]
            .into_iter()
            .collect(),
        }
    }
}

#[cfg(test)]
mod tests;
