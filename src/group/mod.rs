//! The consumer-group coordinator (Kafka's classic group protocol). Groups and their committed
//! offsets live in the internal topic `__consumer_offsets`; the coordinator of a group is the
//! leader of the partition its id hashes to, and only that broker answers for the group.
//!
//! # Layout
//! * [`records`]: the topic's key and value formats (Kafka's) and the group → partition hash.
//! * [`member`], [`classic`]: the group state machine, synchronous and clock-driven.
//! * [`store`]: acks=all writes to the partition and the replay that loads it.
//! * [`consumer_protocol`]: reading subscriptions and assignments inside member metadata.
//!
//! # Invariants
//! * A partition's groups are served only while this broker leads it, at the leader epoch they
//!   were loaded in; before the load finishes requests get COORDINATOR_LOAD_IN_PROGRESS, after
//!   a leadership change NOT_COORDINATOR (the groups are dropped, waiters answered).
//! * A commit or an assignment is applied in memory only after the ISR has its record, so what
//!   a coordinator answers is what its successor loads.
//! * The state lock is never held across an `.await`.

pub mod classic;
pub mod consumer_protocol;
pub mod member;
pub mod records;
pub mod store;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;

use self::classic::{Group, GroupState, JoinReply, SyncReply};
use self::member::{JoinRequest, SyncRequest};
use self::records::{GroupValue, OffsetValue, RecordKey, partition_for};
use crate::broker::{Broker, now_ms};
use crate::config::group::{GroupConfig, OFFSETS_TOPIC};
use crate::controller::ControllerRequest;
use crate::kafka::error_code::ErrorCode;
use crate::metadata::decide::TopicSpec;
use crate::types::LeaderEpoch;

/// Where a group is coordinated: a `__consumer_offsets` partition this broker leads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placement {
    pub partition: i32,
    pub epoch: LeaderEpoch,
}

#[derive(Debug, Clone, Copy)]
struct Shard {
    epoch: LeaderEpoch,
    loaded: bool,
}

#[derive(Debug, Default)]
struct State {
    /// The offsets partitions this broker leads.
    shards: HashMap<i32, Shard>,
    /// The partition count of `__consumer_offsets` (fixed once created).
    partition_count: i32,
    groups: HashMap<String, Group>,
}

impl State {
    fn placement(&self, group: &str) -> Result<Placement, ErrorCode> {
        if self.partition_count == 0 {
            return Err(ErrorCode::NotCoordinator);
        }
        let partition = partition_for(group, self.partition_count);
        match self.shards.get(&partition) {
            None => Err(ErrorCode::NotCoordinator),
            Some(s) if !s.loaded => Err(ErrorCode::CoordinatorLoadInProgress),
            Some(s) => Ok(Placement { partition, epoch: s.epoch }),
        }
    }
}

/// A listed group (ListGroups).
#[derive(Debug, Clone)]
pub struct GroupListing {
    pub group_id: String,
    pub protocol_type: String,
    pub state: GroupState,
}

/// A described member (DescribeGroups).
#[derive(Debug, Clone)]
pub struct MemberDescription {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub metadata: Bytes,
    pub assignment: Bytes,
}

/// A described group.
#[derive(Debug, Clone)]
pub struct GroupDescription {
    pub state: GroupState,
    pub protocol_type: String,
    pub protocol: String,
    pub members: Vec<MemberDescription>,
}

/// Offsets asked for: every committed one, or these partitions per topic.
pub type OffsetFilter = Option<Vec<(String, Vec<i32>)>>;

/// The coordinator of the groups whose partitions this broker leads.
pub struct GroupCoordinator {
    config: GroupConfig,
    state: Mutex<State>,
}

impl GroupCoordinator {
    pub fn new(config: GroupConfig) -> Self {
        GroupCoordinator { config, state: Mutex::new(State::default()) }
    }

    pub fn config(&self) -> &GroupConfig {
        &self.config
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Stores whatever the last step left to persist, and forgets blank groups.
    fn settle(&self, broker: &Arc<Broker>, st: &mut State, group: &str, at: Placement) {
        let Some(g) = st.groups.get_mut(group) else { return };
        if let Some(value) = g.take_persist() {
            spawn_store_group(broker, at, group, value);
        }
        if g.is_blank() {
            st.groups.remove(group);
        }
    }

    /// JoinGroup.
    pub fn join(
        &self,
        broker: &Arc<Broker>,
        group: &str,
        req: JoinRequest,
    ) -> Result<JoinReply, ErrorCode> {
        let mut st = self.lock();
        let at = st.placement(group)?;
        let now = now_ms();
        let g = st
            .groups
            .entry(group.to_string())
            .or_insert_with(|| Group::new(group, &self.config, now));
        let reply = g.join(req, &self.config, now);
        self.settle(broker, &mut st, group, at);
        Ok(reply)
    }

    /// SyncGroup. With [`SyncReply::Store`] the caller writes the value with [`store::write`]
    /// and reports back with [`GroupCoordinator::complete_sync`].
    pub fn sync(&self, group: &str, req: SyncRequest) -> Result<(SyncReply, Placement), ErrorCode> {
        let mut st = self.lock();
        let at = st.placement(group)?;
        let g = st.groups.get_mut(group).ok_or(ErrorCode::UnknownMemberId)?;
        Ok((g.sync(req, now_ms()), at))
    }

    pub fn complete_sync(&self, group: &str, generation: i32, stored: Result<(), ErrorCode>) {
        if let Some(g) = self.lock().groups.get_mut(group) {
            g.complete_sync(generation, stored, now_ms());
        }
    }

    /// Heartbeat.
    pub fn heartbeat(
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

    /// LeaveGroup: one error per (member id, instance id).
    pub fn leave(
        &self,
        broker: &Arc<Broker>,
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
        self.settle(broker, &mut st, group, at);
        Ok(codes)
    }

    /// Checks an OffsetCommit before its records are written (creating the group for a
    /// standalone consumer's first commit).
    pub fn prepare_commit(
        &self,
        group: &str,
        generation: i32,
        member_id: &str,
        instance: Option<&str>,
    ) -> Result<Placement, ErrorCode> {
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
        Ok(at)
    }

    /// Applies written offset records (`None`: deleted); the i-th sits at `base + i`.
    pub fn apply_offsets(
        &self,
        group: &str,
        entries: &[(String, i32, Option<OffsetValue>)],
        base_log_offset: i64,
    ) {
        let mut st = self.lock();
        let now = now_ms();
        let g = st
            .groups
            .entry(group.to_string())
            .or_insert_with(|| Group::new(group, &self.config, now));
        for (i, (topic, partition, value)) in entries.iter().enumerate() {
            g.apply_offset(topic, *partition, value.clone(), base_log_offset + i as i64);
        }
        if g.is_blank() {
            st.groups.remove(group);
        }
    }

    /// OffsetFetch: (topic, partition, committed offset if any).
    pub fn fetch_offsets(
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
    pub fn committed_offsets(&self) -> Vec<(String, String, i32, i64)> {
        let st = self.lock();
        st.groups
            .values()
            .flat_map(|g| {
                g.offsets.iter().map(|((t, p), c)| (g.id.clone(), t.clone(), *p, c.value.offset))
            })
            .collect()
    }

    /// ListGroups: the groups of every loaded partition, and LOAD_IN_PROGRESS while any loads.
    pub fn list(&self) -> (ErrorCode, Vec<GroupListing>) {
        let st = self.lock();
        let loading = st.shards.values().any(|s| !s.loaded);
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
    pub fn describe(&self, group: &str) -> Result<Option<GroupDescription>, ErrorCode> {
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

    /// DeleteGroups, first half: checks the group may go and returns the tombstones to write.
    /// The group is marked Dead meanwhile, so nobody joins it while its tombstones are written.
    pub fn prepare_delete(&self, group: &str) -> Result<(Placement, Vec<Bytes>), ErrorCode> {
        let mut st = self.lock();
        let at = st.placement(group)?;
        let g = st.groups.get_mut(group).ok_or(ErrorCode::GroupIdNotFound)?;
        match g.state {
            GroupState::Empty => g.state = GroupState::Dead,
            GroupState::Dead => return Err(ErrorCode::CoordinatorNotAvailable),
            _ => return Err(ErrorCode::NonEmptyGroup),
        }
        let mut keys: Vec<Bytes> = g
            .offsets
            .keys()
            .map(|(t, p)| {
                RecordKey::Offset { group: group.into(), topic: t.clone(), partition: *p }.encode()
            })
            .collect();
        keys.push(RecordKey::Group { group: group.into() }.encode());
        Ok((at, keys))
    }

    /// DeleteGroups, second half: the tombstones were stored (the group goes) or not (it is
    /// Empty again).
    pub fn finish_delete(&self, group: &str, stored: bool) {
        let mut st = self.lock();
        match st.groups.get_mut(group) {
            Some(g) if g.state == GroupState::Dead && stored => {
                st.groups.remove(group);
            }
            Some(g) if g.state == GroupState::Dead => g.state = GroupState::Empty,
            _ => {}
        }
    }

    /// OffsetDelete, first half: the partitions whose offsets may go (GROUP_SUBSCRIBED_TO_TOPIC
    /// for topics an active consumer group subscribes to). Errors are per group.
    pub fn prepare_offset_delete(
        &self,
        group: &str,
        partitions: &[(String, i32)],
    ) -> Result<(Placement, Vec<ErrorCode>), ErrorCode> {
        let st = self.lock();
        let at = st.placement(group)?;
        let g = st.groups.get(group).ok_or(ErrorCode::GroupIdNotFound)?;
        let subscribed = match g.state {
            GroupState::Empty | GroupState::Dead => None,
            _ => Some(g.subscribed_topics().ok_or(ErrorCode::NonEmptyGroup)?),
        };
        let codes = partitions
            .iter()
            .map(|(t, _)| match &subscribed {
                Some(s) if s.contains(t) => ErrorCode::GroupSubscribedToTopic,
                _ => ErrorCode::None,
            })
            .collect();
        Ok((at, codes))
    }

    /// Runs timers: session expiry, rebalance and sync deadlines.
    pub fn tick(&self, broker: &Arc<Broker>) {
        let mut st = self.lock();
        let now = now_ms();
        let ids: Vec<String> = st.groups.keys().cloned().collect();
        for id in ids {
            let Ok(at) = st.placement(&id) else { continue };
            if let Some(g) = st.groups.get_mut(&id) {
                g.tick(now);
            }
            self.settle(broker, &mut st, &id, at);
        }
    }

    /// Follows leadership of `__consumer_offsets`: loads the groups of partitions this broker
    /// now leads, drops those of partitions it no longer leads.
    pub fn on_metadata(&self, broker: &Arc<Broker>) {
        let image = broker.metadata.image();
        let count = image.topic(OFFSETS_TOPIC).map_or(0, |t| t.partitions.len() as i32);
        let mut led = BTreeMap::new();
        for p in 0..count {
            if let Some(part) = broker.replicas.get(OFFSETS_TOPIC, p)
                && part.is_leader()
            {
                led.insert(p, part.leader_epoch());
            }
        }
        let mut st = self.lock();
        st.partition_count = count;
        let gone: Vec<i32> = st
            .shards
            .iter()
            .filter(|(p, s)| led.get(p) != Some(&s.epoch))
            .map(|(p, _)| *p)
            .collect();
        for p in gone {
            st.shards.remove(&p);
            let n = count.max(1);
            st.groups.retain(|id, _| partition_for(id, n) != p);
            tracing::info!(
                partition = p,
                "no longer the group coordinator for this offsets partition"
            );
        }
        for (p, epoch) in led {
            if st.shards.contains_key(&p) {
                continue;
            }
            st.shards.insert(p, Shard { epoch, loaded: false });
            spawn_load(broker, p, epoch);
        }
    }

    /// Drops every group (shutdown): waiting requests are answered NOT_COORDINATOR.
    pub fn unload_all(&self) {
        let mut st = self.lock();
        st.shards.clear();
        st.groups.clear();
    }

    fn install(&self, partition: i32, epoch: LeaderEpoch, groups: HashMap<String, Group>) -> bool {
        let mut st = self.lock();
        match st.shards.get_mut(&partition) {
            Some(s) if s.epoch == epoch && !s.loaded => {
                s.loaded = true;
                st.groups.extend(groups);
                true
            }
            _ => false,
        }
    }
}

fn spawn_store_group(broker: &Arc<Broker>, at: Placement, group: &str, value: GroupValue) {
    let broker = broker.clone();
    let key = RecordKey::Group { group: group.to_string() }.encode();
    let group = group.to_string();
    tokio::spawn(async move {
        if let Err(code) =
            store::write(&broker, at.partition, at.epoch, vec![(key, Some(value.encode()))]).await
        {
            tracing::warn!(%group, error = code.name(), "storing the group's membership failed");
        }
    });
}

fn spawn_load(broker: &Arc<Broker>, partition: i32, epoch: LeaderEpoch) {
    let broker = broker.clone();
    tokio::spawn(async move {
        let started = std::time::Instant::now();
        let Some(part) = broker.replicas.get(OFFSETS_TOPIC, partition) else { return };
        let read = tokio::task::spawn_blocking(move || store::read_all(&part)).await;
        let stored = match read {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                tracing::error!(partition, error = %e, "cannot load the groups of an offsets partition");
                return;
            }
            Err(e) => {
                tracing::error!(partition, error = %e, "group load panicked");
                return;
            }
        };
        let records = stored.len();
        let groups = replay(stored, &broker.groups.config, now_ms());
        let count = groups.len();
        if broker.groups.install(partition, epoch, groups) && records > 0 {
            tracing::info!(partition, %epoch, groups = count, records, elapsed_ms = started.elapsed().as_millis() as u64, "loaded groups; now their coordinator");
        }
    });
}

/// Rebuilds groups from records in log order: the last value of each key wins, a tombstone
/// deletes it.
pub fn replay(
    stored: Vec<store::Stored>,
    config: &GroupConfig,
    now_ms: i64,
) -> HashMap<String, Group> {
    let mut groups: HashMap<String, Group> = HashMap::new();
    for s in stored {
        let id = s.key.group().to_string();
        match s.key {
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
                    .apply_offset(&topic, partition, value, s.log_offset);
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

/// Creates `__consumer_offsets` if it does not exist yet: `offsets.topic.num.partitions`
/// partitions, `offsets.topic.replication.factor` capped by the live brokers, never deleted by
/// retention.
pub async fn ensure_offsets_topic(broker: &Arc<Broker>) -> Result<(), ErrorCode> {
    let image = broker.metadata.image();
    if image.topic(OFFSETS_TOPIC).is_some() {
        return Ok(());
    }
    let live = image.live_brokers().count().max(1);
    let config = &broker.groups.config;
    let rf = (config.offsets_topic_replication_factor as usize).min(live) as i16;
    let spec = TopicSpec {
        name: OFFSETS_TOPIC.to_string(),
        num_partitions: config.offsets_topic_num_partitions,
        replication_factor: rf,
        assignments: Default::default(),
        configs: [
            ("retention.ms".to_string(), "-1".to_string()),
            ("retention.bytes".to_string(), "-1".to_string()),
            ("segment.bytes".to_string(), config.offsets_topic_segment_bytes.to_string()),
        ]
        .into_iter()
        .collect(),
    };
    tracing::info!(
        partitions = spec.num_partitions,
        replication_factor = rf,
        "creating {OFFSETS_TOPIC}"
    );
    match broker
        .controller
        .execute(ControllerRequest::CreateTopic { spec, validate_only: false })
        .await
    {
        Ok(_) => {}
        Err(e) if e.code == ErrorCode::TopicAlreadyExists => {}
        Err(e) => {
            tracing::warn!(error = %e, "cannot create {OFFSETS_TOPIC}");
            return Err(ErrorCode::CoordinatorNotAvailable);
        }
    }
    crate::kafka::handlers::apply_metadata_now(broker).await;
    Ok(())
}
