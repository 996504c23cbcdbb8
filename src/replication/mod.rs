//! The data plane: partition replication between brokers, follower-driven as in Kafka.
//!
//! * [`service`] (leader): serves follower fetches over gRPC (`proto/replication.proto`). A
//!   follower's fetch offset acknowledges everything before it; the leader records it, raises
//!   the high watermark to the minimum log end offset of the ISR, and detects a diverging log
//!   from the follower's last fetched epoch (KIP-320).
//! * [`fetcher`] (follower): one task per leader broker fetches every partition this node
//!   follows from it, truncates on divergence, appends batches verbatim and adopts the HW.
//! * [`isr`] (leader): shrinks the ISR of followers that lag `replica.lag.time.max.ms` and
//!   expands it with followers that caught up, always through AlterPartition to the active
//!   controller, fenced by leader epoch and partition epoch, so an isolated leader can never
//!   shrink the ISR to itself.

pub mod fetcher;
pub mod isr;
pub mod service;

/// Generated from `proto/replication.proto`.
#[allow(unreachable_pub, clippy::all)]
pub mod pb {
    tonic::include_proto!("samsa.replication.v1");
}
