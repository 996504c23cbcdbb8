//! Partition storage, synchronous and single-owner (no async runtime inside).
//!
//! The ladder, bottom up: [`batch`] (the v2 record-batch header view) → [`index`] (sparse offset
//! and time indexes) → [`segment`] (one `.log` file with its indexes) → [`partition_log`] (the
//! ordered segments of one replica, with [`producer_state`] and [`epoch_cache`]).
//!
//! On-disk layout of one replica, `<data-dir>/<topic>-<partition>/`:
//! ```text
//! 00000000000000000000.log        record batches exactly as stored (v2)
//! 00000000000000000000.index      (relative offset u32, position u32) every index.interval.bytes
//! 00000000000000000000.timeindex  (timestamp i64, relative offset u32) when max timestamp grows
//! 00000000000000000000.txnindex   transactions aborted by markers in the segment (Kafka's format)
//! leader-epoch-checkpoint         epoch → start offset (Kafka's text format)
//! producer-state[.prev]           producer snapshots (JSON: sequences, open transactions) valid
//!                                 up to an offset; the previous one is kept for crash recovery
//! partition.metadata              the topic id this replica belongs to
//! cleaner-checkpoint              compacted logs: the cleaner's position (see cleaner/swap.rs)
//! ```
//!
//! Compaction ([`cleaner`], over [`records`]) rewrites segments below the active one without
//! changing any offset: a compacted log's segments may end before the next one starts.

pub(crate) mod batch;
pub(crate) mod cleaner;
pub(crate) mod config;
pub(crate) mod control;
pub(crate) mod epoch_cache;
pub(crate) mod index;
pub(crate) mod message_set;
pub(crate) mod partition_log;
pub(crate) mod producer_state;
pub(crate) mod records;
pub(crate) mod recovery;
pub(crate) mod segment;
pub(crate) mod slice;
pub(crate) mod txn_index;

pub(crate) use config::LogConfig;
pub(crate) use partition_log::{
    AppendError, AppendOutcome, Cleanable, CommitOutcome, PartitionLog, ReadError,
};
pub(crate) use slice::FileSlice;
