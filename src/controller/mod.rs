//! The active controller (the raft leader): takes [`ControllerRequest`]s, decides them against
//! the current image with the pure functions in `metadata::decide`, commits the resulting
//! commands through the metadata log and replies with the raft index, so the caller can wait
//! until its own image has applied the change. Decisions are serialized by one lock so two
//! requests never decide against the same image.
//!
//! Any broker reaches it through [`client::ControllerClient`]: locally on the leader, over gRPC
//! ([`service`]) elsewhere.

pub mod client;
pub mod service;

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;
use uuid::Uuid;

use crate::kafka::error_code::{ApiError, ErrorCode};
use crate::metadata::commands::MetadataCommand;
use crate::metadata::decide::{self, ConfigOp, TopicDefaults, TopicSpec};
use crate::metadata::image::{BrokerRegistration, MetadataImage};
use crate::metadata::{MetadataError, MetadataLog};
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
}

/// The controller's answer to a request that succeeded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ControllerReply {
    Done,
    TopicCreated { id: Uuid },
    ProducerIds { first: i64, count: i64 },
    Registered { epoch: i64 },
}

/// A reply and the raft index that carried it (0 when nothing was committed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Executed {
    pub reply: ControllerReply,
    pub index: u64,
}

/// The decide-and-commit half of the controller; runs on the raft leader.
pub struct Controller {
    log: Arc<dyn MetadataLog>,
    defaults: TopicDefaults,
    decide_lock: Mutex<()>,
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
    pub fn new(log: Arc<dyn MetadataLog>, defaults: TopicDefaults) -> Self {
        Controller { log, defaults, decide_lock: Mutex::new(()) }
    }

    /// Decides and commits `request`. Fails with NOT_CONTROLLER when this node is not the leader.
    pub async fn execute(&self, request: ControllerRequest) -> Result<Executed, ApiError> {
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
                let current = image.topic(topic).map(|t| t.configs.clone()).ok_or_else(|| {
                    ApiError::new(
                        ErrorCode::UnknownTopicOrPartition,
                        format!("Topic '{topic}' does not exist."),
                    )
                })?;
                let next = decide::apply_config_ops(&current, ops)?;
                (
                    decide::set_topic_configs(image, topic, next)?,
                    ControllerReply::Done,
                    *validate_only,
                )
            }
            R::AllocateProducerIds { broker } => (
                vec![MetadataCommand::AllocateProducerIds {
                    broker: *broker,
                    count: PRODUCER_ID_BLOCK_SIZE,
                }],
                ControllerReply::Done,
                false,
            ),
            R::RegisterBroker { registration, cluster_id, .. } => {
                let fresh = crate::broker::meta_properties::new_cluster_id();
                let (cmds, epoch) =
                    decide::register_broker(image, registration, cluster_id.as_deref(), &fresh)?;
                (cmds, ControllerReply::Registered { epoch }, false)
            }
        })
    }
}
