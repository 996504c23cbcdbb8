//! Quotas on the data plane: client quotas (produce and fetch byte rates, request time) and
//! the replication throttles a reassignment's catch-up traffic runs under. Both measure usage
//! with [`rate::SampledRate`], Kafka's sampled-window rate, and read their bounds from the
//! metadata image (client quotas, dynamic broker configs, topic configs), so a change made
//! through the controller applies on every broker at its next metadata update.
//!
//! # Dependencies
//! This room sees the metadata image and the config keys; the Kafka handlers and the
//! replication room call it. It never blocks: it only answers how long to wait.

pub(crate) mod client;
pub(crate) mod rate;
pub(crate) mod replication;
