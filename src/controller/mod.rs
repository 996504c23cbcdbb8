//! The active controller (the raft leader): takes [`ControllerRequest`]s, decides them against
//! the current image with the pure functions in `metadata::decide`, commits the resulting
//! commands through the metadata log and replies with the raft index, so the caller can wait
//! until its own image has applied the change. Decisions are serialized by one lock so two
//! requests never decide against the same image.
//!
//! Any broker reaches it through [`client::ControllerClient`]: locally on the leader, over gRPC
//! ([`service`]) elsewhere.

pub mod client;
pub(crate) mod service;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;
use uuid::Uuid;

use crate::error_code::{ApiError, ErrorCode};
use crate::metadata::commands::MetadataCommand;
use crate::metadata::decide::{self, ConfigOp, TopicDefaults, TopicSpec};
use crate::metadata::elect::{self, ElectionType};
use crate::metadata::image::{BrokerRegistration, MetadataImage};
use crate::metadata::quotas::{self, QuotaAlteration};
use crate::metadata::reassign;
use crate::metadata::scram::{self, ScramAlteration, ScramResult};
use crate::metadata::{MetadataError, MetadataLog};
use crate::security::acl::{AclBinding, AclFilter};
use crate::security::sasl::scram::BootstrapCredential;
use crate::types::NodeId;

/// Producer ids handed to a broker per allocation (Kafka's block size).
pub const PRODUCER_ID_BLOCK_SIZE: i64 = 1000;

/// Everything a broker may ask of the active controller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ControllerRequest {
    CreateTopic {
        spec: TopicSpec,
        validate_only: bool,
    },
    DeleteTopic {
        name: String,
    },
    CreatePartitions {
        topic: String,
        count: i32,
        assignments: Option<Vec<Vec<NodeId>>>,
        validate_only: bool,
    },
    /// AlterConfigs: the topic's overrides become exactly `configs`.
    ReplaceTopicConfigs {
        topic: String,
        configs: BTreeMap<String, String>,
        validate_only: bool,
    },
    /// IncrementalAlterConfigs.
    AlterTopicConfigs {
        topic: String,
        ops: Vec<ConfigOp>,
        validate_only: bool,
    },
    /// AlterConfigs on a BROKER resource ("" = the cluster default): its dynamic configs
    /// become exactly `configs`.
    ReplaceBrokerConfigs {
        resource: String,
        configs: BTreeMap<String, String>,
        validate_only: bool,
    },
    /// IncrementalAlterConfigs on a BROKER resource.
    AlterBrokerConfigs {
        resource: String,
        ops: Vec<ConfigOp>,
        validate_only: bool,
    },
    /// AddRaftVoter (KIP-853): a membership change of the quorum, not a metadata command.
    AddVoter {
        id: NodeId,
        directory: Uuid,
        addr: String,
    },
    /// RemoveRaftVoter (KIP-853).
    RemoveVoter {
        id: NodeId,
        directory: Uuid,
    },
    /// A voter of `controller.quorum.voters` records its directory id at its first start.
    RecordVoterDirectory {
        id: NodeId,
        directory: Uuid,
    },
    /// AlterClientQuotas.
    AlterClientQuotas {
        alterations: Vec<QuotaAlteration>,
        validate_only: bool,
    },
    AllocateProducerIds {
        broker: NodeId,
    },
    /// A broker (re-)registers; `raft_addr` is where an observer follows the metadata log.
    RegisterBroker {
        registration: BrokerRegistration,
        raft_addr: String,
        observer: bool,
        cluster_id: Option<String>,
    },
    /// A broker is alive (KIP-631). `shutting_down` asks for a controlled shutdown: the broker
    /// is fenced and its leaderships move before it exits.
    BrokerHeartbeat {
        broker: NodeId,
        incarnation: Uuid,
        shutting_down: bool,
    },
    /// Fences a broker now (session expiry, or an operator).
    FenceBroker {
        broker: NodeId,
    },
    /// Moves leaderships back to preferred replicas (auto.leader.rebalance.enable).
    PreferredLeaderElection,
    /// A partition leader changes its ISR (KIP-497), fenced by the epochs it decided under.
    AlterPartition {
        topic: String,
        partition: i32,
        leader: NodeId,
        leader_epoch: crate::types::LeaderEpoch,
        partition_epoch: i32,
        isr: Vec<NodeId>,
    },
    /// AlterPartitionReassignments: per partition, the target replicas, or `None` to cancel.
    AlterReassignments {
        partitions: Vec<(String, i32, Option<Vec<NodeId>>)>,
    },
    /// ElectLeaders, for the named partitions or (`None`) every partition.
    ElectLeaders {
        kind: ElectionType,
        partitions: Option<Vec<(String, i32)>>,
    },
    /// AlterUserScramCredentials.
    AlterScramCredentials {
        alterations: Vec<ScramAlteration>,
    },
    /// CreateAcls: each binding validated, stored once.
    CreateAcls {
        bindings: Vec<AclBinding>,
    },
    /// DeleteAcls: every binding each filter matches is removed.
    DeleteAcls {
        filters: Vec<AclFilter>,
    },
}

/// One partition's outcome: topic, index, and the error if it was refused.
pub type PartitionResult = (String, i32, Option<ApiError>);

/// The controller's answer to a request that succeeded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ControllerReply {
    Done,
    TopicCreated {
        id: Uuid,
    },
    ProducerIds {
        first: i64,
        count: i64,
    },
    Registered {
        epoch: i64,
    },
    Heartbeat {
        fenced: bool,
    },
    /// One result per user of an AlterScramCredentials.
    ScramAltered {
        results: Vec<ScramResult>,
    },
    /// Per binding of a CreateAcls: `None` if stored, else why it is invalid.
    AclsCreated {
        results: Vec<Option<String>>,
    },
    /// Per partition of an AlterReassignments or ElectLeaders: `None` if it was carried out.
    PartitionResults {
        results: Vec<PartitionResult>,
    },
    /// Per entry of an AlterClientQuotas: `None` if it was applied.
    QuotaResults {
        results: Vec<Option<ApiError>>,
    },
    /// Per filter of a DeleteAcls: the bindings it removed.
    AclsDeleted {
        matched: Vec<Vec<AclBinding>>,
    },
}

/// A reply and the raft index that carried it (0 when nothing was committed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Executed {
    pub reply: ControllerReply,
    pub index: u64,
}

/// When the active controller last heard from each broker. Soft state: a new controller starts
/// every clock afresh, so no broker is fenced for the election's gap.
#[derive(Debug, Default)]
struct Sessions {
    term: Option<u64>,
    last_seen: HashMap<NodeId, std::time::Instant>,
}

/// The decide-and-commit half of the controller; runs on the raft leader.
pub struct Controller {
    node_id: NodeId,
    log: Arc<dyn MetadataLog>,
    defaults: TopicDefaults,
    session_timeout: Duration,
    decide_lock: Mutex<()>,
    sessions: std::sync::Mutex<Sessions>,
    /// SCRAM credentials written when this controller creates the cluster (`--add-scram`).
    bootstrap_scram: Vec<BootstrapCredential>,
}

pub(crate) fn not_controller() -> ApiError {
    ApiError::new(ErrorCode::NotController, "this node is not the active controller")
}

fn log_error(e: MetadataError) -> ApiError {
    match e {
        MetadataError::NotController => not_controller(),
        other => ApiError::new(ErrorCode::RequestTimedOut, other.to_string()),
    }
}

impl Controller {
    pub fn new(
        node_id: NodeId,
        log: Arc<dyn MetadataLog>,
        defaults: TopicDefaults,
        session_timeout: Duration,
    ) -> Self {
        Controller {
            node_id,
            log,
            defaults,
            session_timeout,
            decide_lock: Mutex::new(()),
            sessions: std::sync::Mutex::new(Sessions::default()),
            bootstrap_scram: Vec::new(),
        }
    }

    /// Credentials to write if this controller creates the cluster.
    pub fn with_bootstrap_scram(mut self, credentials: Vec<BootstrapCredential>) -> Self {
        self.bootstrap_scram = credentials;
        self
    }

    fn is_active(&self) -> bool {
        self.log.leader().is_some_and(|l| l.id == self.node_id)
    }

    fn sessions(&self) -> std::sync::MutexGuard<'_, Sessions> {
        self.sessions.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Notes a heartbeat; resets every clock when this node's term as controller is new.
    fn saw(&self, broker: Option<NodeId>) {
        let term = self.log.quorum().term;
        let mut s = self.sessions();
        if s.term != Some(term) {
            s.term = Some(term);
            s.last_seen.clear();
        }
        if let Some(b) = broker {
            s.last_seen.insert(b, std::time::Instant::now());
        }
    }

    /// Brokers whose session expired: unfenced in the image and silent for longer than
    /// `broker.session.timeout.ms` (a broker never heard from this term starts its clock now).
    pub fn expired_sessions(&self) -> Vec<NodeId> {
        if !self.is_active() {
            return Vec::new();
        }
        self.saw(None);
        let image = self.log.image();
        let now = std::time::Instant::now();
        let mut s = self.sessions();
        image
            .live_brokers()
            .map(|b| b.id)
            .filter(|id| {
                let seen = *s.last_seen.entry(*id).or_insert(now);
                now.duration_since(seen) > self.session_timeout
            })
            .collect()
    }

    /// Decides and commits `request`. Fails with NOT_CONTROLLER when this node is not the leader.
    pub async fn execute(&self, request: ControllerRequest) -> Result<Executed, ApiError> {
        if !self.is_active() {
            return Err(not_controller());
        }
        if let ControllerRequest::BrokerHeartbeat { broker, .. } = &request {
            self.saw(Some(*broker));
        }
        // Quorum membership changes are raft's own, not metadata commands.
        match &request {
            ControllerRequest::AddVoter { id, directory, addr } => {
                self.log.add_voter(*id, *directory, addr.clone()).await?;
                return Ok(Executed { reply: ControllerReply::Done, index: 0 });
            }
            ControllerRequest::RemoveVoter { id, directory } => {
                self.log.remove_voter(*id, *directory).await?;
                return Ok(Executed { reply: ControllerReply::Done, index: 0 });
            }
            ControllerRequest::RecordVoterDirectory { id, directory } => {
                self.log.record_voter_directory(*id, *directory).await?;
                return Ok(Executed { reply: ControllerReply::Done, index: 0 });
            }
            _ => {}
        }
        let _guard = self.decide_lock.lock().await;
        let image = self.log.image();
        let (commands, reply, validate_only) = self.decide(&image, &request)?;
        if let ControllerRequest::RegisterBroker {
            registration, raft_addr, observer: true, ..
        } = &request
        {
            self.log.add_observer(registration.id, raft_addr.clone()).await.map_err(log_error)?;
        }
        if validate_only || commands.is_empty() {
            return Ok(Executed { reply, index: 0 });
        }
        let index = self.log.commit(commands).await.map_err(log_error)?;
        let reply = match request {
            ControllerRequest::AllocateProducerIds { broker } => {
                let block =
                    self.log.image().producer_id_blocks.get(&broker).copied().ok_or_else(|| {
                        ApiError::new(
                            ErrorCode::UnknownServerError,
                            "producer id block missing after commit",
                        )
                    })?;
                ControllerReply::ProducerIds { first: block.first, count: block.count }
            }
            _ => reply,
        };
        Ok(Executed { reply, index })
    }

    /// The commands for a request, the reply, and whether it is validation only.
    fn decide(
        &self,
        image: &MetadataImage,
        request: &ControllerRequest,
    ) -> Result<(Vec<MetadataCommand>, ControllerReply, bool), ApiError> {
        use ControllerRequest as R;
        Ok(match request {
            R::CreateTopic { spec, validate_only } => {
                let id = Uuid::new_v4();
                let start = rand::random::<u32>() as usize;
                let cmds = decide::create_topic(image, spec, self.defaults, id, start)?;
                (cmds, ControllerReply::TopicCreated { id }, *validate_only)
            }
            R::DeleteTopic { name } => {
                (decide::delete_topic(image, name)?, ControllerReply::Done, false)
            }
            R::CreatePartitions { topic, count, assignments, validate_only } => {
                let start = rand::random::<u32>() as usize;
                let cmds =
                    decide::create_partitions(image, topic, *count, assignments.clone(), start)?;
                (cmds, ControllerReply::Done, *validate_only)
            }
            R::ReplaceTopicConfigs { topic, configs, validate_only } => (
                decide::set_topic_configs(image, topic, configs.clone())?,
                ControllerReply::Done,
                *validate_only,
            ),
            R::AlterTopicConfigs { topic, ops, validate_only } => {
                (alter_topic_configs(image, topic, ops)?, ControllerReply::Done, *validate_only)
            }
            R::ReplaceBrokerConfigs { resource, configs, validate_only } => (
                decide::set_broker_configs(resource, configs.clone())?,
                ControllerReply::Done,
                *validate_only,
            ),
            R::AlterBrokerConfigs { resource, ops, validate_only } => {
                let entity = crate::config::dynamic::entity(resource)
                    .map_err(|e| ApiError::new(ErrorCode::InvalidRequest, e.to_string()))?;
                let current = image.broker_configs.get(&entity).cloned().unwrap_or_default();
                let next = decide::apply_broker_config_ops(&current, ops)?;
                (decide::set_broker_configs(resource, next)?, ControllerReply::Done, *validate_only)
            }
            R::AddVoter { .. } | R::RemoveVoter { .. } | R::RecordVoterDirectory { .. } => {
                // Carried out by `execute` before deciding: membership is raft's.
                (Vec::new(), ControllerReply::Done, false)
            }
            R::AlterClientQuotas { alterations, validate_only } => {
                let (cmds, results) = quotas::alter(&image.client_quotas, alterations);
                (cmds, ControllerReply::QuotaResults { results }, *validate_only)
            }
            R::AllocateProducerIds { broker } => (
                vec![MetadataCommand::AllocateProducerIds {
                    broker: *broker,
                    count: PRODUCER_ID_BLOCK_SIZE,
                }],
                ControllerReply::Done,
                false,
            ),
            R::BrokerHeartbeat { broker, incarnation, shutting_down } => (
                heartbeat(image, *broker, *incarnation, *shutting_down)?,
                ControllerReply::Heartbeat { fenced: *shutting_down },
                false,
            ),
            R::FenceBroker { broker } => {
                (decide::fence_broker(image, *broker), ControllerReply::Done, false)
            }
            R::PreferredLeaderElection => {
                (decide::preferred_leaders(image), ControllerReply::Done, false)
            }
            R::AlterPartition { topic, partition, leader, leader_epoch, partition_epoch, isr } => {
                let cmds = decide::alter_partition(
                    image,
                    topic,
                    *partition,
                    *leader,
                    *leader_epoch,
                    *partition_epoch,
                    isr,
                )?;
                (cmds, ControllerReply::Done, false)
            }
            R::RegisterBroker { registration, cluster_id, .. } => {
                let fresh = crate::types::new_cluster_id();
                let (mut cmds, epoch) =
                    decide::register_broker(image, registration, cluster_id.as_deref(), &fresh)?;
                if cmds.iter().any(|c| matches!(c, MetadataCommand::InitCluster { .. })) {
                    cmds.extend(self.bootstrap_scram.iter().map(|b| {
                        MetadataCommand::UpsertScramCredential {
                            user: b.user.clone(),
                            mechanism: b.mechanism,
                            credential: b.credential.clone(),
                        }
                    }));
                }
                (cmds, ControllerReply::Registered { epoch }, false)
            }
            R::CreateAcls { bindings } => {
                let mut acls = Vec::new();
                let mut results = Vec::new();
                for b in bindings {
                    match b.validate() {
                        Ok(()) => {
                            let exists = image.acls.values().any(|a| a == b)
                                || acls.iter().any(|(_, a): &(Uuid, AclBinding)| a == b);
                            if !exists {
                                acls.push((Uuid::new_v4(), b.clone()));
                            }
                            results.push(None);
                        }
                        Err(why) => results.push(Some(why.to_string())),
                    }
                }
                let cmds = if acls.is_empty() {
                    Vec::new()
                } else {
                    vec![MetadataCommand::CreateAcls { acls }]
                };
                (cmds, ControllerReply::AclsCreated { results }, false)
            }
            R::DeleteAcls { filters } => {
                let mut ids = Vec::new();
                let mut matched = Vec::new();
                for f in filters {
                    let mine: Vec<(Uuid, AclBinding)> = image
                        .acls
                        .iter()
                        .filter(|(_, a)| f.matches(a))
                        .map(|(id, a)| (*id, a.clone()))
                        .collect();
                    ids.extend(
                        mine.iter()
                            .map(|(id, _)| *id)
                            .filter(|id| !ids.contains(id))
                            .collect::<Vec<_>>(),
                    );
                    matched.push(mine.into_iter().map(|(_, a)| a).collect());
                }
                let cmds = if ids.is_empty() {
                    Vec::new()
                } else {
                    vec![MetadataCommand::DeleteAcls { ids }]
                };
                (cmds, ControllerReply::AclsDeleted { matched }, false)
            }
            R::AlterReassignments { partitions } => {
                let mut cmds = Vec::new();
                let mut results = Vec::new();
                for (topic, index, target) in partitions {
                    let error = match reassign::alter(image, topic, *index, target.as_deref()) {
                        Ok(mine) => {
                            cmds.extend(mine);
                            None
                        }
                        Err(e) => Some(e),
                    };
                    results.push((topic.clone(), *index, error));
                }
                (cmds, ControllerReply::PartitionResults { results }, false)
            }
            R::ElectLeaders { kind, partitions } => {
                let (cmds, results) = elect_leaders(image, *kind, partitions.as_deref());
                (cmds, ControllerReply::PartitionResults { results }, false)
            }
            R::AlterScramCredentials { alterations } => {
                let (cmds, results) = scram::alter_credentials(image, alterations);
                (cmds, ControllerReply::ScramAltered { results }, false)
            }
        })
    }
}

/// Elections for the named partitions, or for every partition (then, as Kafka does, the
/// partitions that already have the wanted leader are left out of the results).
fn elect_leaders(
    image: &MetadataImage,
    kind: ElectionType,
    partitions: Option<&[(String, i32)]>,
) -> (Vec<MetadataCommand>, Vec<PartitionResult>) {
    let all: Vec<(String, i32)>;
    let wanted = match partitions {
        Some(p) => p,
        None => {
            all = image
                .topics
                .values()
                .flat_map(|t| (0..t.partitions.len() as i32).map(|i| (t.name.clone(), i)))
                .collect();
            &all
        }
    };
    let mut cmds = Vec::new();
    let mut results = Vec::new();
    for (topic, index) in wanted {
        match elect::elect_leader(image, topic, *index, kind) {
            Ok(cmd) => {
                cmds.push(cmd);
                results.push((topic.clone(), *index, None));
            }
            Err(e) if partitions.is_none() && e.code == ErrorCode::ElectionNotNeeded => {}
            Err(e) => results.push((topic.clone(), *index, Some(e))),
        }
    }
    (cmds, results)
}

/// IncrementalAlterConfigs on a topic: the ops applied to its current configs.
fn alter_topic_configs(
    image: &MetadataImage,
    topic: &str,
    ops: &[ConfigOp],
) -> Result<Vec<MetadataCommand>, ApiError> {
    let current = image.topic(topic).map(|t| t.configs.clone()).ok_or_else(|| {
        ApiError::new(
            ErrorCode::UnknownTopicOrPartition,
            format!("Topic '{topic}' does not exist."),
        )
    })?;
    let next = decide::apply_config_ops(&current, ops)?;
    decide::set_topic_configs(image, topic, next)
}

/// A heartbeat from a registered incarnation: a shutting-down broker is fenced (its
/// leaderships move), a fenced one that is alive again is unfenced.
fn heartbeat(
    image: &MetadataImage,
    broker: NodeId,
    incarnation: Uuid,
    shutting_down: bool,
) -> Result<Vec<MetadataCommand>, ApiError> {
    let reg =
        image.brokers.get(&broker).filter(|b| b.incarnation == incarnation).ok_or_else(|| {
            ApiError::new(
                ErrorCode::BrokerIdNotRegistered,
                format!("broker {broker} must register (again)"),
            )
        })?;
    Ok(if shutting_down {
        decide::fence_broker(image, broker)
    } else if reg.fenced {
        decide::unfence_broker(image, broker)
    } else {
        Vec::new()
    })
}
