//! The metadata quorum on openraft (storage-v2), KRaft-style: controllers vote; broker-only
//! nodes follow as learners ("observers"). The raft leader is the active controller.
//!
//! * [`log_store`]: the raft log and vote in sled, durable (flushed) before openraft is told.
//! * [`state_machine`]: applies committed [`CommandBatch`]es to the metadata image with the pure
//!   `metadata::commands::apply`; snapshots the image into sled.
//! * [`network`] / [`service`]: openraft's RPCs over tonic (`proto/raft.proto`).
//!
//! Invariant: every metadata change goes through the raft log (DESIGN invariant 4); nothing here
//! decides anything, it only orders and replays.

// openraft's StorageError is large and is the error type its traits require.
#![allow(clippy::result_large_err)]

/// Generated from `proto/raft.proto`.
#[allow(unreachable_pub, clippy::all)]
pub mod pb {
    tonic::include_proto!("samsa.raft.v1");
}

pub(crate) mod admission;
pub(crate) mod log_store;
pub(crate) mod metadata_log;
pub(crate) mod network;
pub(crate) mod service;
pub(crate) mod state_machine;
pub(crate) mod transport;

use std::fmt;
use std::io::Cursor;

use serde::{Deserialize, Serialize};

use crate::metadata::commands::MetadataCommand;

/// A raft node id; equal to the Kafka `node.id`.
pub(crate) type RaftNodeId = u64;

/// Where a raft peer listens for raft and controller RPCs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct RaftNode {
    /// host:port of the internal (controller) listener.
    pub addr: String,
    /// The voter's `directory.id` (KIP-853), once recorded; `None` matches any directory (a
    /// voter from `controller.quorum.voters` before its first start registered it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub directory_id: Option<uuid::Uuid>,
}

impl fmt::Display for RaftNode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.addr)
    }
}

/// One raft entry's payload: commands committed and applied together.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct CommandBatch {
    pub commands: Vec<MetadataCommand>,
}

openraft::declare_raft_types!(
    /// samsa's openraft type configuration.
    pub(crate) TypeConfig:
        D = CommandBatch,
        R = (),
        NodeId = RaftNodeId,
        Node = RaftNode,
        SnapshotData = Cursor<Vec<u8>>,
);

/// The raft handle.
pub(crate) type MetadataRaft = openraft::Raft<TypeConfig>;

pub(crate) fn key(index: u64) -> [u8; 8] {
    index.to_be_bytes()
}
