//! Cluster metadata, KRaft-style: every change is a [`commands::MetadataCommand`] committed to a
//! metadata log and replayed by the pure [`commands::apply`] into a [`image::MetadataImage`].
//!
//! [`MetadataLog`] is the seam between the control plane and everything else; the openraft
//! quorum (`crate::raft::metadata_log`) implements it. Brokers read the image; only the active
//! controller (`crate::controller`) proposes commands, after deciding them with the pure
//! functions in [`decide`].

pub mod commands;
pub mod decide;
pub mod elect;
pub mod image;
pub mod quotas;
pub mod reassign;
pub mod scram;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use thiserror::Error;
use tokio::sync::watch;

use self::commands::MetadataCommand;
use self::image::MetadataImage;
use crate::types::NodeId;

/// Why commands could not be committed.
#[derive(Debug, Error)]
pub enum MetadataError {
    #[error("this node is not the active controller")]
    NotController,
    #[error("metadata log error: {0}")]
    Log(String),
    #[error("timed out waiting for metadata index {index} to be applied")]
    Timeout { index: u64 },
}

/// A boxed future, so the trait can be used as `dyn MetadataLog`.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The active controller as this node sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControllerInfo {
    pub id: NodeId,
    /// host:port of its controller (gRPC) listener.
    pub addr: String,
}

/// One quorum member's replication state, for DescribeQuorum and `samsa cluster status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuorumMember {
    pub id: NodeId,
    pub addr: String,
    /// The voter's data directory id (KIP-853), once recorded.
    pub directory_id: Option<uuid::Uuid>,
    /// The last raft index known replicated to it (only known on the leader), else -1.
    pub matched_index: i64,
}

/// The quorum's state as this node sees it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct QuorumStatus {
    pub leader: Option<NodeId>,
    pub term: u64,
    /// "Leader", "Follower", "Candidate" or "Learner".
    pub state: String,
    pub commit_index: u64,
    pub applied_index: u64,
    /// The last raft log index this node holds (applied or not).
    pub last_log_index: u64,
    /// Raft log entries up to here were purged after a snapshot (0: none yet).
    pub purged_index: u64,
    /// The index the latest snapshot covers (0: none yet).
    pub snapshot_index: u64,
    pub voters: Vec<QuorumMember>,
    pub observers: Vec<QuorumMember>,
}

/// A replicated log of metadata commands and the image they produce.
pub trait MetadataLog: Send + Sync + 'static {
    /// Durably commits `commands` in order (active controller only) and applies them locally;
    /// returns the raft index of the entry.
    fn commit(&self, commands: Vec<MetadataCommand>) -> BoxFuture<'_, Result<u64, MetadataError>>;
    /// Resolves once the local image includes raft index `index` (bounded wait).
    fn wait_applied(&self, index: u64) -> BoxFuture<'_, Result<(), MetadataError>>;
    /// The current image.
    fn image(&self) -> Arc<MetadataImage>;
    /// A receiver that sees every new image.
    fn subscribe(&self) -> watch::Receiver<Arc<MetadataImage>>;
    /// The active controller, if one is known.
    fn leader(&self) -> Option<ControllerInfo>;
    /// Adds a broker-only node as a non-voting member (active controller only).
    fn add_observer(&self, id: NodeId, addr: String) -> BoxFuture<'_, Result<(), MetadataError>>;
    /// Voters, observers, term and indexes.
    fn quorum(&self) -> QuorumStatus;
    /// AddRaftVoter (KIP-853, active controller only): `id` with data directory `directory`,
    /// reached at `addr`, joins as a learner, catches up, then becomes a voter.
    fn add_voter(
        &self,
        id: NodeId,
        directory: uuid::Uuid,
        addr: String,
    ) -> BoxFuture<'_, Result<(), crate::error_code::ApiError>>;
    /// RemoveRaftVoter (active controller only): the voter `id` whose directory is `directory`
    /// leaves the voter set.
    fn remove_voter(
        &self,
        id: NodeId,
        directory: uuid::Uuid,
    ) -> BoxFuture<'_, Result<(), crate::error_code::ApiError>>;
    /// Records the directory id of voter `id` where none is recorded yet (the voters of
    /// `controller.quorum.voters`, at their first start); refuses another directory.
    fn record_voter_directory(
        &self,
        id: NodeId,
        directory: uuid::Uuid,
    ) -> BoxFuture<'_, Result<(), crate::error_code::ApiError>>;
}

/// A metadata log that only serves a fixed image, for tests of the rooms that read metadata.
#[cfg(test)]
pub(crate) struct StaticMetadata(pub(crate) watch::Sender<Arc<MetadataImage>>);

#[cfg(test)]
impl StaticMetadata {
    pub(crate) fn new(image: MetadataImage) -> Arc<Self> {
        Arc::new(StaticMetadata(watch::channel(Arc::new(image)).0))
    }
}

#[cfg(test)]
impl MetadataLog for StaticMetadata {
    fn commit(&self, _: Vec<MetadataCommand>) -> BoxFuture<'_, Result<u64, MetadataError>> {
        Box::pin(async { Err(MetadataError::NotController) })
    }
    fn wait_applied(&self, _: u64) -> BoxFuture<'_, Result<(), MetadataError>> {
        Box::pin(async { Ok(()) })
    }
    fn image(&self) -> Arc<MetadataImage> {
        self.0.borrow().clone()
    }
    fn subscribe(&self) -> watch::Receiver<Arc<MetadataImage>> {
        self.0.subscribe()
    }
    fn leader(&self) -> Option<ControllerInfo> {
        None
    }
    fn add_observer(&self, _: NodeId, _: String) -> BoxFuture<'_, Result<(), MetadataError>> {
        Box::pin(async { Err(MetadataError::NotController) })
    }
    fn quorum(&self) -> QuorumStatus {
        QuorumStatus::default()
    }
    fn add_voter(
        &self,
        _: NodeId,
        _: uuid::Uuid,
        _: String,
    ) -> BoxFuture<'_, Result<(), crate::error_code::ApiError>> {
        Box::pin(async { Err(crate::controller::not_controller()) })
    }
    fn remove_voter(
        &self,
        _: NodeId,
        _: uuid::Uuid,
    ) -> BoxFuture<'_, Result<(), crate::error_code::ApiError>> {
        Box::pin(async { Err(crate::controller::not_controller()) })
    }
    fn record_voter_directory(
        &self,
        _: NodeId,
        _: uuid::Uuid,
    ) -> BoxFuture<'_, Result<(), crate::error_code::ApiError>> {
        Box::pin(async { Err(crate::controller::not_controller()) })
    }
}

/// Test support: an image with `brokers` live brokers (ids 1..=brokers) and topic `t` with one
/// partition on `replicas` (the first leads).
#[cfg(test)]
pub(crate) fn test_image(brokers: i32, replicas: &[i32]) -> image::MetadataImage {
    use commands::{MetadataCommand, apply};
    let mut img = image::MetadataImage::default();
    for id in 1..=brokers {
        let id = crate::types::NodeId(id);
        let reg = image::BrokerRegistration {
            id,
            host: "h".into(),
            port: 9092,
            rack: None,
            epoch: 0,
            fenced: false,
            incarnation: uuid::Uuid::nil(),
            replication_addr: String::new(),
            endpoints: Default::default(),
        };
        apply(&mut img, &MetadataCommand::RegisterBroker(reg));
        apply(&mut img, &MetadataCommand::UnfenceBroker { id });
    }
    let create = MetadataCommand::CreateTopic {
        name: "t".into(),
        id: uuid::Uuid::from_u128(1),
        assignments: vec![replicas.iter().map(|r| crate::types::NodeId(*r)).collect()],
        configs: Default::default(),
    };
    apply(&mut img, &create);
    img
}
