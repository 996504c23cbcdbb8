//! samsa: a Kafka-compatible event streaming platform, built the KRaft way.
//!
//! # Layout
//!
//! The data plane, bottom up; each room imports only the rooms below it:
//!
//! ```text
//!  Kafka clients ──wire protocol──▶ kafka/        frames, the router, one handler per API
//!  orchestrators ──HTTP───────────▶ admin/        /healthz, /readyz, /metrics
//!  operators ─────────────────────▶ cli/ client/  the tools and their small Kafka client
//!                                   broker/       composition root: start/shutdown, tasks
//!                                   replication/  fetchers, fetch service, ISR changes
//!                                   group/        the consumer-group coordinator
//!                                   txn/          the transaction coordinator
//!                                   cleaner/      the log cleaner's threads (compacted topics)
//!                                   coordinator/  shared machinery of internal-topic coordinators
//!                                   replica/      partitions, HW, commit waits, the reconciler
//!                                   log/          partition storage: segments + indexes on disk
//! ```
//!
//! * [`log`](crate::log) is synchronous and owns the files; it never sees the network.
//! * The replica layer is the only room that holds a log lock; `replication/` and `group/` get
//!   it through small context structs, never through the broker.
//! * [`metadata`] holds the cluster's metadata as a log of commands applied by a pure function,
//!   behind the [`metadata::MetadataLog`] trait; `raft/` implements it on openraft + sled, and
//!   [`controller`] (the raft leader) decides every change. `samsa dev` is a one-voter quorum.
//! * [`kafka`] turns bytes into requests and responses; handlers call into [`broker`].
//! * [`broker`] builds every room in order, implements the traits they declare, and runs the
//!   background tasks (reconciler, flusher, retention, ISR checks, group timers, the cleaner).

pub mod admin;
pub mod broker;
pub(crate) mod cleaner;
pub mod cli;
pub mod client;
pub(crate) mod clock;
pub mod config;
pub mod controller;
pub(crate) mod coordinator;
pub mod error_code;
pub(crate) mod fsutil;
pub(crate) mod group;
pub mod kafka;
pub(crate) mod log;
pub mod metadata;
pub(crate) mod quota;
pub(crate) mod raft;
pub(crate) mod replica;
pub(crate) mod replication;
pub mod security;
pub(crate) mod txn;
pub mod types;
