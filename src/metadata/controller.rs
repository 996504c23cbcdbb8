//! The active controller's front door: takes admin requests, decides them against the current
//! image (pure functions in `decide`), commits the commands and answers once they are applied.
//! Decisions are serialized by one lock so two requests never decide against the same image.

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio::sync::Mutex;
use uuid::Uuid;

use super::commands::MetadataCommand;
use super::decide::{self, TopicDefaults, TopicSpec};
use super::{MetadataError, MetadataLog};
use crate::kafka::error_code::{ApiError, ErrorCode};
use crate::types::NodeId;

/// Producer ids handed to a broker per allocation (Kafka's block size).
pub const PRODUCER_ID_BLOCK_SIZE: i64 = 1000;

/// Serializes decide-and-commit against the metadata log.
pub struct Controller {
    log: Arc<dyn MetadataLog>,
    defaults: TopicDefaults,
    decide_lock: Mutex<()>,
}

fn storage_error(e: MetadataError) -> ApiError {
    match e {
        MetadataError::NotController => ApiError::new(ErrorCode::NotController, e.to_string()),
        MetadataError::Io(_) => ApiError::new(ErrorCode::UnknownServerError, e.to_string()),
    }
}

impl Controller {
    pub fn new(log: Arc<dyn MetadataLog>, defaults: TopicDefaults) -> Self {
        Controller { log, defaults, decide_lock: Mutex::new(()) }
    }

    pub fn log(&self) -> &Arc<dyn MetadataLog> {
        &self.log
    }

    async fn run(
        &self,
        decide: impl FnOnce(&super::image::MetadataImage) -> Result<Vec<MetadataCommand>, ApiError>,
        validate_only: bool,
    ) -> Result<(), ApiError> {
        let _guard = self.decide_lock.lock().await;
        let image = self.log.image();
        let commands = decide(&image)?;
        if validate_only || commands.is_empty() {
            return Ok(());
        }
        self.log.commit(commands).await.map_err(storage_error)
    }

    /// Commits commands decided elsewhere (bootstrap, broker registration).
    pub async fn commit(&self, commands: Vec<MetadataCommand>) -> Result<(), ApiError> {
        self.run(|_| Ok(commands), false).await
    }

    /// Creates a topic; returns its id.
    pub async fn create_topic(
        &self,
        spec: &TopicSpec,
        validate_only: bool,
    ) -> Result<Uuid, ApiError> {
        let id = Uuid::new_v4();
        let start = rand::random::<u32>() as usize;
        self.run(|img| decide::create_topic(img, spec, self.defaults, id, start), validate_only)
            .await?;
        Ok(id)
    }

    pub async fn delete_topic(&self, name: &str) -> Result<(), ApiError> {
        self.run(|img| decide::delete_topic(img, name), false).await
    }

    pub async fn create_partitions(
        &self,
        topic: &str,
        count: i32,
        assignments: Option<Vec<Vec<NodeId>>>,
        validate_only: bool,
    ) -> Result<(), ApiError> {
        let start = rand::random::<u32>() as usize;
        self.run(
            |img| decide::create_partitions(img, topic, count, assignments, start),
            validate_only,
        )
        .await
    }

    /// Replaces a topic's overrides with what `edit` makes of the current ones.
    pub async fn alter_topic_configs(
        &self,
        topic: &str,
        edit: impl FnOnce(&BTreeMap<String, String>) -> Result<BTreeMap<String, String>, ApiError>,
        validate_only: bool,
    ) -> Result<(), ApiError> {
        self.run(
            |img| {
                let current = img.topic(topic).map(|t| t.configs.clone()).ok_or_else(|| {
                    ApiError::new(
                        ErrorCode::UnknownTopicOrPartition,
                        format!("Topic '{topic}' does not exist."),
                    )
                })?;
                decide::set_topic_configs(img, topic, edit(&current)?)
            },
            validate_only,
        )
        .await
    }

    /// Allocates a block of producer ids for `broker`; returns (first, count).
    pub async fn allocate_producer_ids(&self, broker: NodeId) -> Result<(i64, i64), ApiError> {
        let cmd = MetadataCommand::AllocateProducerIds { broker, count: PRODUCER_ID_BLOCK_SIZE };
        let _guard = self.decide_lock.lock().await;
        self.log.commit(vec![cmd]).await.map_err(storage_error)?;
        let block = self.log.image().producer_id_blocks.get(&broker).copied().ok_or_else(|| {
            ApiError::new(ErrorCode::UnknownServerError, "producer id block missing after commit")
        })?;
        Ok((block.first, block.count))
    }
}
