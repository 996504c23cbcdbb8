//! The controller's decisions, pure (KRaft's "decide, then replay"): each function checks a
//! request against the current image and returns the commands that carry it out, or the Kafka
//! error the client gets. Nothing here does I/O; the caller commits the commands.

use std::collections::BTreeMap;

use uuid::Uuid;

use super::commands::MetadataCommand;
use super::image::{BrokerRegistration, MetadataImage};
use crate::config::topic as topic_config;
use crate::config::topic::ConfigType;
use crate::error_code::{ApiError, ErrorCode};
use crate::types::{LeaderEpoch, NodeId};

/// Kafka's limit on topic name length.
pub const TOPIC_NAME_LEN_MAX: usize = 249;
/// Upper bound on partitions per topic: a typo like 1000000 must not create a million logs.
pub const PARTITIONS_PER_TOPIC_MAX: i32 = 10_000;

/// Checks a topic name by Kafka's rules: 1–249 of `[a-zA-Z0-9._-]`, not `.` or `..`.
pub fn validate_topic_name(name: &str) -> Result<(), ApiError> {
    let err = |why: &str| {
        Err(ApiError::new(
            ErrorCode::InvalidTopicException,
            format!("Topic name '{name}' is illegal: {why}"),
        ))
    };
    if name.is_empty() {
        return err("it is empty");
    }
    if name == "." || name == ".." {
        return err("'.' and '..' are not allowed");
    }
    if name.len() > TOPIC_NAME_LEN_MAX {
        return err("it is longer than 249 characters");
    }
    if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '_' || c == '-') {
        return err("it contains a character other than ASCII alphanumerics, '.', '_' and '-'");
    }
    Ok(())
}

/// What a CreateTopics entry asks for; -1 means "the broker default", as in Kafka.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TopicSpec {
    pub name: String,
    pub num_partitions: i32,
    pub replication_factor: i16,
    /// Manual assignment: partition index → replicas. Empty for automatic placement.
    pub assignments: BTreeMap<i32, Vec<NodeId>>,
    pub configs: BTreeMap<String, String>,
}

/// Cluster-wide defaults for new topics.
#[derive(Debug, Clone, Copy)]
pub struct TopicDefaults {
    pub num_partitions: i32,
    pub replication_factor: i16,
}

/// Places `partitions` × `replication_factor` replicas round-robin over `brokers`, starting at
/// `start` and shifting followers as Kafka's assignor does, so leaders spread evenly.
pub fn place_replicas(
    brokers: &[NodeId],
    first_partition: i32,
    partitions: i32,
    replication_factor: i16,
    start: usize,
) -> Vec<Vec<NodeId>> {
    let n = brokers.len();
    if n == 0 {
        return Vec::new();
    }
    (first_partition..first_partition + partitions)
        .map(|p| {
            let lead = (start + p as usize) % n;
            (0..replication_factor as usize).map(|r| brokers[(lead + r) % n]).collect()
        })
        .collect()
}

/// Live brokers in placement order. With racks set, brokers are alternated across racks
/// (rack a's first, rack b's first, ..., rack a's second, ...), as Kafka's rack-aware assignor
/// does, so consecutive replicas of a partition sit on different racks whenever RF ≤ racks.
fn live_broker_ids(image: &MetadataImage) -> Vec<NodeId> {
    let live: Vec<_> = image.live_brokers().collect();
    if live.iter().all(|b| b.rack.is_none()) {
        return live.iter().map(|b| b.id).collect();
    }
    let mut by_rack: BTreeMap<String, Vec<NodeId>> = BTreeMap::new();
    for b in &live {
        by_rack.entry(b.rack.clone().unwrap_or_default()).or_default().push(b.id);
    }
    let longest = by_rack.values().map(Vec::len).max().unwrap_or(0);
    (0..longest).flat_map(|i| by_rack.values().filter_map(move |ids| ids.get(i).copied())).collect()
}

fn config_error(e: crate::config::ConfigError) -> ApiError {
    ApiError::new(ErrorCode::InvalidConfig, e.to_string())
}

fn check_assignment(image: &MetadataImage, replicas: &[NodeId]) -> Result<(), ApiError> {
    let mut seen = replicas.to_vec();
    seen.sort();
    seen.dedup();
    if replicas.is_empty() || seen.len() != replicas.len() {
        return Err(ApiError::new(
            ErrorCode::InvalidReplicaAssignment,
            "a partition's replicas must be a non-empty list of distinct broker ids",
        ));
    }
    if let Some(unknown) = replicas.iter().find(|r| !image.brokers.contains_key(r)) {
        return Err(ApiError::new(
            ErrorCode::InvalidReplicaAssignment,
            format!("broker {unknown} in the replica assignment is not registered"),
        ));
    }
    Ok(())
}

/// Decides a topic creation. `start` spreads leaders between topics (the caller picks it).
pub fn create_topic(
    image: &MetadataImage,
    spec: &TopicSpec,
    defaults: TopicDefaults,
    id: Uuid,
    start: usize,
) -> Result<Vec<MetadataCommand>, ApiError> {
    validate_topic_name(&spec.name)?;
    if image.topics.contains_key(&spec.name) {
        return Err(ApiError::new(
            ErrorCode::TopicAlreadyExists,
            format!("Topic '{}' already exists.", spec.name),
        ));
    }
    topic_config::validate_all(&spec.configs).map_err(config_error)?;
    let assignments = if spec.assignments.is_empty() {
        let partitions =
            if spec.num_partitions == -1 { defaults.num_partitions } else { spec.num_partitions };
        let rf = if spec.replication_factor == -1 {
            defaults.replication_factor
        } else {
            spec.replication_factor
        };
        if !(1..=PARTITIONS_PER_TOPIC_MAX).contains(&partitions) {
            return Err(ApiError::new(
                ErrorCode::InvalidPartitions,
                format!(
                    "Number of partitions must be between 1 and {PARTITIONS_PER_TOPIC_MAX}, got {partitions}."
                ),
            ));
        }
        let live = live_broker_ids(image);
        if rf < 1 || rf as usize > live.len() {
            return Err(ApiError::new(
                ErrorCode::InvalidReplicationFactor,
                format!("Replication factor: {rf} larger than available brokers: {}.", live.len()),
            ));
        }
        place_replicas(&live, 0, partitions, rf, start)
    } else {
        if spec.num_partitions != -1 || spec.replication_factor != -1 {
            return Err(ApiError::new(
                ErrorCode::InvalidRequest,
                "numPartitions and replicationFactor must be -1 when a manual assignment is given",
            ));
        }
        let expected: Vec<i32> = (0..spec.assignments.len() as i32).collect();
        if spec.assignments.keys().copied().collect::<Vec<_>>() != expected {
            return Err(ApiError::new(
                ErrorCode::InvalidReplicaAssignment,
                "partition indexes in the assignment must be 0..n-1",
            ));
        }
        for replicas in spec.assignments.values() {
            check_assignment(image, replicas)?;
        }
        spec.assignments.values().cloned().collect()
    };
    Ok(vec![MetadataCommand::CreateTopic {
        name: spec.name.clone(),
        id,
        assignments,
        configs: spec.configs.clone(),
    }])
}

/// Decides growing a topic to `count` partitions.
pub fn create_partitions(
    image: &MetadataImage,
    topic: &str,
    count: i32,
    assignments: Option<Vec<Vec<NodeId>>>,
    start: usize,
) -> Result<Vec<MetadataCommand>, ApiError> {
    let t = image.topic(topic).ok_or_else(|| {
        ApiError::new(
            ErrorCode::UnknownTopicOrPartition,
            format!("Topic '{topic}' does not exist."),
        )
    })?;
    let current = t.partitions.len() as i32;
    if count <= current {
        return Err(ApiError::new(
            ErrorCode::InvalidPartitions,
            format!(
                "Topic currently has {current} partitions, which is higher than or equal to the requested {count}."
            ),
        ));
    }
    if count > PARTITIONS_PER_TOPIC_MAX {
        return Err(ApiError::new(
            ErrorCode::InvalidPartitions,
            format!("Number of partitions must be at most {PARTITIONS_PER_TOPIC_MAX}."),
        ));
    }
    let rf = t.partitions.first().map_or(1, |p| p.replicas.len()) as i16;
    let new = match assignments {
        Some(a) => {
            if a.len() as i32 != count - current {
                return Err(ApiError::new(
                    ErrorCode::InvalidReplicaAssignment,
                    format!("{} assignments given for {} new partitions", a.len(), count - current),
                ));
            }
            for replicas in &a {
                check_assignment(image, replicas)?;
            }
            a
        }
        None => {
            let live = live_broker_ids(image);
            if (rf as usize) > live.len() {
                return Err(ApiError::new(
                    ErrorCode::InvalidReplicationFactor,
                    format!(
                        "Replication factor {rf} is larger than the {} live brokers.",
                        live.len()
                    ),
                ));
            }
            place_replicas(&live, current, count - current, rf, start)
        }
    };
    Ok(vec![MetadataCommand::CreatePartitions { topic: topic.into(), assignments: new }])
}

/// Decides a topic deletion.
pub fn delete_topic(image: &MetadataImage, name: &str) -> Result<Vec<MetadataCommand>, ApiError> {
    let t = image.topic(name).ok_or_else(|| {
        ApiError::new(ErrorCode::UnknownTopicOrPartition, format!("Topic '{name}' does not exist."))
    })?;
    Ok(vec![MetadataCommand::DeleteTopic { name: t.name.clone(), id: t.id }])
}

/// Decides replacing a topic's config overrides with `configs`.
pub fn set_topic_configs(
    image: &MetadataImage,
    topic: &str,
    configs: BTreeMap<String, String>,
) -> Result<Vec<MetadataCommand>, ApiError> {
    if image.topic(topic).is_none() {
        return Err(ApiError::new(
            ErrorCode::UnknownTopicOrPartition,
            format!("Topic '{topic}' does not exist."),
        ));
    }
    topic_config::validate_all(&configs).map_err(config_error)?;
    Ok(vec![MetadataCommand::SetTopicConfigs { topic: topic.into(), configs }])
}

/// Decides replacing one broker resource's dynamic configs: `resource` is "" (the cluster
/// default) or a node id, every key must be dynamic (`config::dynamic`) and its value valid.
pub fn set_broker_configs(
    resource: &str,
    configs: BTreeMap<String, String>,
) -> Result<Vec<MetadataCommand>, ApiError> {
    use crate::config::dynamic::{self, DynamicConfigError};
    let entity = dynamic::entity(resource)
        .map_err(|e| ApiError::new(ErrorCode::InvalidRequest, e.to_string()))?;
    dynamic::validate_all(&configs).map_err(|e| {
        let code = match e {
            DynamicConfigError::BadResourceName(_) => ErrorCode::InvalidRequest,
            _ => ErrorCode::InvalidConfig,
        };
        ApiError::new(code, e.to_string())
    })?;
    Ok(vec![MetadataCommand::SetBrokerConfigs { entity, configs }])
}

/// One IncrementalAlterConfigs operation (KIP-339).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ConfigOp {
    pub key: String,
    /// 0 SET, 1 DELETE, 2 APPEND, 3 SUBTRACT.
    pub op: i8,
    pub value: Option<String>,
}

const OP_SET: i8 = 0;
const OP_DELETE: i8 = 1;
const OP_APPEND: i8 = 2;
const OP_SUBTRACT: i8 = 3;

/// Applies IncrementalAlterConfigs operations to a topic's overrides; APPEND and SUBTRACT work
/// on list-typed keys only, starting from the override (a missing override is an empty list,
/// so APPEND to an unset `cleanup.policy` gives just the appended items).
pub fn apply_config_ops(
    current: &BTreeMap<String, String>,
    ops: &[ConfigOp],
) -> Result<BTreeMap<String, String>, ApiError> {
    apply_ops(current, ops, |key| topic_config::definition(key).map(|d| d.config_type), "topic")
}

/// The same on a broker resource's dynamic configs (`config::dynamic`); a key that is not
/// dynamic is refused later, by validation, with the reason.
pub fn apply_broker_config_ops(
    current: &BTreeMap<String, String>,
    ops: &[ConfigOp],
) -> Result<BTreeMap<String, String>, ApiError> {
    let kind = |key: &str| {
        Some(crate::config::dynamic::definition(key).map_or(ConfigType::String, |d| d.config_type))
    };
    apply_ops(current, ops, kind, "broker")
}

fn apply_ops(
    current: &BTreeMap<String, String>,
    ops: &[ConfigOp],
    kind_of: impl Fn(&str) -> Option<ConfigType>,
    resource: &str,
) -> Result<BTreeMap<String, String>, ApiError> {
    let invalid = |m: String| ApiError::new(ErrorCode::InvalidConfig, m);
    let mut seen = std::collections::HashSet::new();
    let mut next = current.clone();
    for op in ops {
        let key = op.key.clone();
        if !seen.insert(key.clone()) {
            return Err(ApiError::new(
                ErrorCode::InvalidRequest,
                format!("'{key}' appears more than once"),
            ));
        }
        let kind =
            kind_of(&key).ok_or_else(|| invalid(format!("unknown {resource} config '{key}'")))?;
        match op.op {
            OP_SET => {
                let v = op
                    .value
                    .clone()
                    .ok_or_else(|| invalid(format!("SET of '{key}' needs a value")))?;
                next.insert(key, v);
            }
            OP_DELETE => {
                next.remove(&key);
            }
            OP_APPEND | OP_SUBTRACT => {
                if kind != ConfigType::List {
                    return Err(invalid(format!(
                        "'{key}' is not a list; APPEND and SUBTRACT need a list config"
                    )));
                }
                let v =
                    op.value.clone().ok_or_else(|| invalid(format!("'{key}' needs a value")))?;
                let base = next.get(&key).cloned().unwrap_or_default();
                let mut items: Vec<String> = base
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .collect();
                for item in v.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                    if op.op == OP_APPEND {
                        if !items.iter().any(|i| i == item) {
                            items.push(item.to_string());
                        }
                    } else {
                        items.retain(|i| i != item);
                    }
                }
                next.insert(key, items.join(","));
            }
            other => {
                return Err(ApiError::new(
                    ErrorCode::InvalidRequest,
                    format!("unknown config operation {other}"),
                ));
            }
        }
    }
    Ok(next)
}

/// Decides a broker registration: bootstraps the cluster id on the first one, refuses a node
/// of another cluster and a second live process claiming a registered node id (KIP-631 rules);
/// returns the commands and the broker's new epoch.
///
/// `requested` is the cluster id the node's data directory (or `cluster.id`) names, if any;
/// `fresh` is used when the cluster has none yet and the node names none.
pub fn register_broker(
    image: &MetadataImage,
    registration: &BrokerRegistration,
    requested: Option<&str>,
    fresh: &str,
) -> Result<(Vec<MetadataCommand>, i64), ApiError> {
    let mut cmds = Vec::new();
    match (&image.cluster_id, requested) {
        (None, _) => cmds.push(MetadataCommand::InitCluster {
            cluster_id: requested.unwrap_or(fresh).to_string(),
        }),
        (Some(existing), Some(cluster_id)) if existing != cluster_id => {
            return Err(ApiError::new(
                ErrorCode::InconsistentClusterId,
                format!(
                    "node {} belongs to cluster {cluster_id}, but this cluster is {existing}",
                    registration.id
                ),
            ));
        }
        (Some(_), _) => {}
    }
    let epoch = match image.brokers.get(&registration.id) {
        Some(b) if b.incarnation == registration.incarnation => return Ok((cmds, b.epoch)),
        Some(b) if !b.fenced && (b.host != registration.host || b.port != registration.port) => {
            return Err(ApiError::new(
                ErrorCode::DuplicateBrokerRegistration,
                format!(
                    "node.id {} is already registered by a live broker at {}:{}; every node needs its own node.id",
                    registration.id, b.host, b.port
                ),
            ));
        }
        Some(b) => {
            // A new incarnation: the broker restarted. Unless it shut down cleanly (already
            // fenced, its leaderships moved) it may have lost writes it never flushed, so, as
            // Kafka does after an unclean shutdown, it leaves every ISR that has others in it and
            // leads nothing until it has caught up and been re-admitted. Without this it would
            // lead again at the same leader epoch, and followers would truncate to whatever its
            // log still holds.
            cmds.extend(fence_broker(image, registration.id));
            b.epoch + 1
        }
        None => 0,
    };
    cmds.push(MetadataCommand::RegisterBroker(BrokerRegistration {
        epoch,
        fenced: false,
        ..registration.clone()
    }));
    Ok((cmds, epoch))
}

/// Fences `id` and moves every leadership it holds to another live ISR member (replica order:
/// the preferred replica first); it leaves the ISR of every partition where others remain, so
/// a fenced broker never counts towards min.insync.replicas. A partition with no other live ISR
/// member goes offline (no leader) rather than electing outside the ISR.
pub fn fence_broker(image: &MetadataImage, id: NodeId) -> Vec<MetadataCommand> {
    let Some(b) = image.brokers.get(&id) else { return Vec::new() };
    let mut cmds = Vec::new();
    if !b.fenced {
        cmds.push(MetadataCommand::FenceBroker { id });
    }
    let live = |n: &NodeId| *n != id && image.brokers.get(n).is_some_and(|b| !b.fenced);
    for t in image.topics.values() {
        for (i, p) in t.partitions.iter().enumerate() {
            let in_isr = p.isr.contains(&id);
            if p.leader != Some(id) && !in_isr {
                continue;
            }
            let isr: Vec<NodeId> = if in_isr && p.isr.len() > 1 {
                p.isr.iter().copied().filter(|r| *r != id).collect()
            } else {
                p.isr.clone()
            };
            let mut isr = isr;
            let mut leader = if p.leader == Some(id) || p.leader.is_none() {
                p.replicas.iter().copied().find(|r| isr.contains(r) && live(r))
            } else {
                p.leader
            };
            if leader.is_none() && unclean_allowed(image, t) {
                // Availability over consistency, by the topic's explicit choice: may lose data.
                leader = p.replicas.iter().copied().find(|r| live(r));
                if let Some(l) = leader {
                    isr = vec![l];
                }
            }
            if leader != p.leader || isr != p.isr {
                cmds.push(MetadataCommand::ChangePartition {
                    topic: t.name.clone(),
                    partition: i as i32,
                    leader,
                    isr,
                });
            }
        }
    }
    cmds
}

/// Decides an AlterPartition: the request must come from the current leader in the current
/// leader epoch and partition epoch (else FENCED_LEADER_EPOCH / INVALID_UPDATE_VERSION); the new
/// ISR must contain the leader, only replicas, and (for members added) only live brokers.
pub fn alter_partition(
    image: &MetadataImage,
    topic: &str,
    partition: i32,
    leader: NodeId,
    leader_epoch: LeaderEpoch,
    partition_epoch: i32,
    isr: &[NodeId],
) -> Result<Vec<MetadataCommand>, ApiError> {
    let p = image
        .topic(topic)
        .and_then(|t| t.partitions.get(partition.max(0) as usize))
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::UnknownTopicOrPartition,
                format!("{topic}-{partition} does not exist"),
            )
        })?;
    if p.leader != Some(leader) || p.leader_epoch != leader_epoch {
        return Err(ApiError::new(
            ErrorCode::FencedLeaderEpoch,
            format!(
                "{topic}-{partition}: leader {leader} epoch {leader_epoch} is not current (leader {:?} epoch {})",
                p.leader, p.leader_epoch
            ),
        ));
    }
    if p.partition_epoch != partition_epoch {
        return Err(ApiError::new(
            ErrorCode::InvalidUpdateVersion,
            format!(
                "{topic}-{partition}: partition epoch {partition_epoch} is stale (now {})",
                p.partition_epoch
            ),
        ));
    }
    let live = |n: &NodeId| image.brokers.get(n).is_some_and(|b| !b.fenced);
    let valid = isr.contains(&leader)
        && isr.iter().all(|r| p.replicas.contains(r))
        && isr.iter().filter(|r| !p.isr.contains(r)).all(live);
    if !valid {
        return Err(ApiError::new(
            ErrorCode::InvalidRequest,
            format!("{topic}-{partition}: ISR {isr:?} is not acceptable"),
        ));
    }
    if isr == p.isr.as_slice() {
        return Ok(Vec::new());
    }
    Ok(vec![super::reassign::isr_change(image, topic, partition, p, leader, isr)])
}

/// Whether a topic allows `unclean.leader.election.enable`: its override, else the cluster's
/// dynamic default (the controller decides for every broker, so a per-broker value does not
/// apply here).
fn unclean_allowed(image: &MetadataImage, t: &super::image::TopicImage) -> bool {
    const KEY: &str = "unclean.leader.election.enable";
    t.configs
        .get(KEY)
        .or_else(|| image.broker_configs.get(crate::config::dynamic::CLUSTER_DEFAULT)?.get(KEY))
        .is_some_and(|v| v == "true")
}

/// Unfences `id` and gives it the partitions that have no leader and list it in their ISR (or,
/// for topics that allow unclean election, any leaderless partition it is a replica of).
pub fn unfence_broker(image: &MetadataImage, id: NodeId) -> Vec<MetadataCommand> {
    if !image.brokers.get(&id).is_some_and(|b| b.fenced) {
        return Vec::new();
    }
    let mut cmds = vec![MetadataCommand::UnfenceBroker { id }];
    for t in image.topics.values() {
        for (i, p) in t.partitions.iter().enumerate() {
            if p.leader.is_some() || !p.replicas.contains(&id) {
                continue;
            }
            let isr = if p.isr.contains(&id) {
                p.isr.clone()
            } else if unclean_allowed(image, t) {
                vec![id]
            } else {
                continue;
            };
            cmds.push(MetadataCommand::ChangePartition {
                topic: t.name.clone(),
                partition: i as i32,
                leader: Some(id),
                isr,
            });
        }
    }
    cmds
}

/// Preferred-leader election (`auto.leader.rebalance.enable`): gives each partition back to
/// its first replica when that broker is live, in the ISR and not leading it.
pub fn preferred_leaders(image: &MetadataImage) -> Vec<MetadataCommand> {
    let live = |n: &NodeId| image.brokers.get(n).is_some_and(|b| !b.fenced);
    let mut cmds = Vec::new();
    for t in image.topics.values() {
        for (i, p) in t.partitions.iter().enumerate() {
            let Some(preferred) = p.replicas.first().copied() else { continue };
            if p.leader != Some(preferred) && live(&preferred) && p.isr.contains(&preferred) {
                cmds.push(MetadataCommand::ChangePartition {
                    topic: t.name.clone(),
                    partition: i as i32,
                    leader: Some(preferred),
                    isr: p.isr.clone(),
                });
            }
        }
    }
    cmds
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::commands::apply;
    use crate::metadata::image::BrokerRegistration;

    fn image_with_brokers(n: i32) -> MetadataImage {
        let mut img = MetadataImage::default();
        for id in 1..=n {
            apply(
                &mut img,
                &MetadataCommand::RegisterBroker(BrokerRegistration {
                    id: NodeId(id),
                    host: "h".into(),
                    port: 9092,
                    rack: None,
                    epoch: 0,
                    fenced: false,
                    incarnation: uuid::Uuid::nil(),
                    replication_addr: String::new(),
                    endpoints: Default::default(),
                }),
            );
            apply(&mut img, &MetadataCommand::UnfenceBroker { id: NodeId(id) });
        }
        img
    }

    const DEFAULTS: TopicDefaults = TopicDefaults { num_partitions: 1, replication_factor: 1 };

    fn spec(name: &str, p: i32, rf: i16) -> TopicSpec {
        TopicSpec {
            name: name.into(),
            num_partitions: p,
            replication_factor: rf,
            ..Default::default()
        }
    }

    #[test]
    fn creation_places_leaders_evenly_and_emits_one_command() {
        let img = image_with_brokers(3);
        let cmds =
            create_topic(&img, &spec("t", 6, 2), DEFAULTS, Uuid::from_u128(1), 0).expect("ok");
        let [MetadataCommand::CreateTopic { assignments, .. }] = cmds.as_slice() else {
            panic!("one CreateTopic expected, got {cmds:?}")
        };
        let leaders: Vec<i32> = assignments.iter().map(|r| r[0].0).collect();
        assert_eq!(leaders, vec![1, 2, 3, 1, 2, 3]);
        assert!(assignments.iter().all(|r| r.len() == 2 && r[0] != r[1]));
    }

    #[test]
    fn defaults_apply_for_minus_one() {
        let img = image_with_brokers(1);
        let cmds = create_topic(
            &img,
            &spec("t", -1, -1),
            TopicDefaults { num_partitions: 4, replication_factor: 1 },
            Uuid::nil(),
            0,
        )
        .expect("ok");
        assert!(
            matches!(&cmds[0], MetadataCommand::CreateTopic { assignments, .. } if assignments.len() == 4)
        );
    }

    #[test]
    fn bad_requests_get_kafka_error_codes() {
        let mut img = image_with_brokers(1);
        let code = |r: Result<Vec<MetadataCommand>, ApiError>| r.expect_err("refused").code;
        assert_eq!(
            code(create_topic(&img, &spec("bad name", 1, 1), DEFAULTS, Uuid::nil(), 0)),
            ErrorCode::InvalidTopicException
        );
        assert_eq!(
            code(create_topic(&img, &spec("t", 0, 1), DEFAULTS, Uuid::nil(), 0)),
            ErrorCode::InvalidPartitions
        );
        assert_eq!(
            code(create_topic(&img, &spec("t", 1, 3), DEFAULTS, Uuid::nil(), 0)),
            ErrorCode::InvalidReplicationFactor
        );
        let mut s = spec("t", 1, 1);
        s.configs.insert("cleanup.policy".into(), "shred".into());
        assert_eq!(
            code(create_topic(&img, &s, DEFAULTS, Uuid::nil(), 0)),
            ErrorCode::InvalidConfig
        );
        for c in create_topic(&img, &spec("t", 2, 1), DEFAULTS, Uuid::from_u128(5), 0).expect("ok")
        {
            apply(&mut img, &c);
        }
        assert_eq!(
            code(create_topic(&img, &spec("t", 1, 1), DEFAULTS, Uuid::nil(), 0)),
            ErrorCode::TopicAlreadyExists
        );
        assert_eq!(code(create_partitions(&img, "t", 2, None, 0)), ErrorCode::InvalidPartitions);
        assert_eq!(
            code(create_partitions(&img, "nope", 3, None, 0)),
            ErrorCode::UnknownTopicOrPartition
        );
        assert_eq!(code(delete_topic(&img, "nope")), ErrorCode::UnknownTopicOrPartition);
        assert!(create_partitions(&img, "t", 5, None, 0).is_ok());
    }

    #[test]
    fn with_racks_set_every_partition_spans_distinct_racks() {
        let mut img = image_with_brokers(6);
        for (id, b) in img.brokers.iter_mut() {
            b.rack = Some(format!("rack-{}", id.0 % 3));
        }
        let cmds =
            create_topic(&img, &spec("r", 12, 3), DEFAULTS, Uuid::from_u128(3), 0).expect("ok");
        let [MetadataCommand::CreateTopic { assignments, .. }] = cmds.as_slice() else {
            panic!("{cmds:?}")
        };
        for replicas in assignments {
            let mut racks: Vec<i32> = replicas.iter().map(|r| r.0 % 3).collect();
            racks.sort();
            racks.dedup();
            assert_eq!(racks.len(), 3, "replicas {replicas:?} share a rack");
        }
        let mut leaders: Vec<i32> = assignments.iter().map(|r| r[0].0).collect();
        leaders.sort();
        assert_eq!(
            leaders,
            vec![1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6],
            "leaders still spread evenly"
        );
    }

    fn unfenced(n: i32) -> MetadataImage {
        image_with_brokers(n)
    }

    #[test]
    fn fencing_moves_leadership_within_the_isr_and_bumps_the_leader_epoch() {
        let mut img = unfenced(3);
        for c in create_topic(&img, &spec("t", 3, 2), DEFAULTS, Uuid::from_u128(1), 0).expect("ok")
        {
            apply(&mut img, &c);
        }
        let before = img.topics["t"].partitions.clone();
        for c in fence_broker(&img, NodeId(1)) {
            apply(&mut img, &c);
        }
        assert!(img.brokers[&NodeId(1)].fenced);
        for (p, old) in img.topics["t"].partitions.iter().zip(&before) {
            assert_ne!(p.leader, Some(NodeId(1)), "a fenced broker leads nothing");
            assert!(!p.isr.contains(&NodeId(1)), "and leaves every ISR with others in it");
            if old.leader == Some(NodeId(1)) {
                assert_eq!(p.leader_epoch.0, old.leader_epoch.0 + 1, "new leader, new epoch");
                assert!(p.leader.is_some_and(|l| old.isr.contains(&l)), "elected from the ISR");
            } else {
                assert_eq!(p.leader_epoch, old.leader_epoch, "leader unchanged, epoch unchanged");
            }
        }
    }

    #[test]
    fn a_broker_restarted_before_its_session_expired_loses_its_leaderships_and_isr_seats() {
        let mut img = unfenced(3);
        for c in create_topic(&img, &spec("t", 3, 3), DEFAULTS, Uuid::from_u128(3), 0).expect("ok")
        {
            apply(&mut img, &c);
        }
        let before = img.topics["t"].partitions.clone();
        assert!(before.iter().any(|p| p.leader == Some(NodeId(1))));
        // SIGKILL and restart within the session: the same node registers a new incarnation.
        let mut again = img.brokers[&NodeId(1)].clone();
        again.incarnation = Uuid::from_u128(77);
        let (cmds, epoch) = register_broker(&img, &again, None, "x").expect("registered");
        assert_eq!(epoch, img.brokers[&NodeId(1)].epoch + 1);
        for c in &cmds {
            apply(&mut img, c);
        }
        assert!(img.brokers[&NodeId(1)].fenced, "registers fenced");
        for (p, old) in img.topics["t"].partitions.iter().zip(&before) {
            assert!(
                !p.isr.contains(&NodeId(1)),
                "it may have lost unflushed writes: out of the ISR"
            );
            assert_ne!(p.leader, Some(NodeId(1)));
            if old.leader == Some(NodeId(1)) {
                assert_eq!(p.leader_epoch.0, old.leader_epoch.0 + 1, "a new leader, a new epoch");
            }
        }
        // The same incarnation registering again (a retried request) changes nothing.
        let (cmds, _) = register_broker(&img, &again, None, "x").expect("registered");
        assert!(cmds.is_empty());
    }

    #[test]
    fn a_single_replica_partition_goes_offline_and_returns_with_its_broker() {
        let mut img = unfenced(2);
        let mut s = spec("solo", 2, 1);
        s.assignments.clear();
        for c in create_topic(&img, &s, DEFAULTS, Uuid::from_u128(2), 0).expect("ok") {
            apply(&mut img, &c);
        }
        let on_1 = img.topics["solo"]
            .partitions
            .iter()
            .position(|p| p.leader == Some(NodeId(1)))
            .expect("one on 1");
        for c in fence_broker(&img, NodeId(1)) {
            apply(&mut img, &c);
        }
        let p = &img.topics["solo"].partitions[on_1];
        assert_eq!(p.leader, None, "no election outside the ISR");
        assert_eq!(p.leader_epoch.0, 1);
        // Re-registration keeps it fenced until its heartbeat unfences it.
        let reg = img.brokers[&NodeId(1)].clone();
        apply(&mut img, &MetadataCommand::RegisterBroker(reg));
        assert!(img.brokers[&NodeId(1)].fenced);
        for c in unfence_broker(&img, NodeId(1)) {
            apply(&mut img, &c);
        }
        let p = &img.topics["solo"].partitions[on_1];
        assert_eq!(p.leader, Some(NodeId(1)));
        assert_eq!(p.leader_epoch.0, 2, "leader epochs only grow");
        assert!(unfence_broker(&img, NodeId(1)).is_empty(), "unfencing twice is a no-op");
    }

    #[test]
    fn unclean_election_only_when_the_topic_allows_it_and_preferred_leaders_return() {
        let mut img = image_with_brokers(3);
        let mut s = spec("u", 1, 1);
        s.assignments.insert(0, vec![NodeId(1), NodeId(2)]);
        s.num_partitions = -1;
        s.replication_factor = -1;
        s.configs.insert("unclean.leader.election.enable".into(), "true".into());
        for c in create_topic(&img, &s, DEFAULTS, Uuid::from_u128(9), 0).expect("ok") {
            apply(&mut img, &c);
        }
        // ISR shrinks to {1} (2 lagged), then 1 dies: 2 is out of sync but the topic allows it.
        apply(
            &mut img,
            &MetadataCommand::ChangePartition {
                topic: "u".into(),
                partition: 0,
                leader: Some(NodeId(1)),
                isr: vec![NodeId(1)],
            },
        );
        for c in fence_broker(&img, NodeId(1)) {
            apply(&mut img, &c);
        }
        let p = &img.topics["u"].partitions[0];
        assert_eq!((p.leader, p.isr.clone()), (Some(NodeId(2)), vec![NodeId(2)]), "unclean leader");
        // Broker 1 returns, catches up into the ISR, and is preferred again.
        for c in unfence_broker(&img, NodeId(1)) {
            apply(&mut img, &c);
        }
        apply(
            &mut img,
            &MetadataCommand::ChangePartition {
                topic: "u".into(),
                partition: 0,
                leader: Some(NodeId(2)),
                isr: vec![NodeId(2), NodeId(1)],
            },
        );
        let before = img.topics["u"].partitions[0].leader_epoch;
        for c in preferred_leaders(&img) {
            apply(&mut img, &c);
        }
        let p = &img.topics["u"].partitions[0];
        assert_eq!(p.leader, Some(NodeId(1)), "back to the preferred replica");
        assert!(p.leader_epoch > before);
        assert!(preferred_leaders(&img).is_empty(), "balanced: nothing to do");
        // Without the opt-in the same loss leaves the partition offline.
        let mut clean = image_with_brokers(2);
        let mut s2 = spec("c", -1, -1);
        s2.assignments.insert(0, vec![NodeId(1), NodeId(2)]);
        for c in create_topic(&clean, &s2, DEFAULTS, Uuid::from_u128(10), 0).expect("ok") {
            apply(&mut clean, &c);
        }
        apply(
            &mut clean,
            &MetadataCommand::ChangePartition {
                topic: "c".into(),
                partition: 0,
                leader: Some(NodeId(1)),
                isr: vec![NodeId(1)],
            },
        );
        for c in fence_broker(&clean, NodeId(1)) {
            apply(&mut clean, &c);
        }
        assert_eq!(clean.topics["c"].partitions[0].leader, None);
    }

    #[test]
    fn topic_names_follow_kafka_rules() {
        assert!(validate_topic_name("orders.v1_eu-west").is_ok());
        for bad in ["", ".", "..", "a/b", "ä", &"x".repeat(250)] {
            assert!(validate_topic_name(bad).is_err(), "{bad:?} must be refused");
        }
    }
}
