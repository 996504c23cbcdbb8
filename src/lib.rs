//! samsa: a Kafka-compatible event streaming platform, built the KRaft way.
//!
//! # Layout
//!
//! ```text
//!  Kafka clients ──Kafka wire protocol──▶ kafka/      frames, one handler per API, the router
//!                                          broker/     composition root: replicas, flusher, retention
//!                                          metadata/   commands, pure apply, the image, the controller
//!                                          group/      consumer-group coordinator (__consumer_offsets)
//!                                          log/        partition storage: segments + indexes on disk
//!  orchestrators, Prometheus ──HTTP──────▶ admin/      /healthz, /readyz, /metrics
//!  CLI ──────────────────────────────────▶ cli/ + client/ (a small Kafka client of our own)
//! ```
//!
//! * [`log`] is synchronous and owns the files; it never sees the network.
//! * [`metadata`] holds the cluster's metadata as a log of commands applied by a pure function,
//!   behind the [`metadata::MetadataLog`] trait; [`raft`] implements it on openraft + sled, and
//!   [`controller`] (the raft leader) decides every change. `samsa dev` is a one-voter quorum.
//! * [`kafka`] turns bytes into requests and responses; handlers call into [`broker`].
//! * [`broker`] wires config → metadata → replicas → Kafka listener, and runs the background
//!   flusher and retention tasks.

pub mod admin;
pub mod broker;
pub mod cli;
pub mod client;
pub mod clock;
pub mod config;
pub mod controller;
pub(crate) mod coordinator;
pub mod error_code;
pub mod fsutil;
pub(crate) mod group;
pub mod kafka;
pub mod log;
pub mod metadata;
pub mod raft;
pub(crate) mod replica;
pub(crate) mod replication;
pub mod types;
