//! samsa-cluster: the harness that runs samsa clusters, hurts them and judges what happened.
//!
//! # Layout
//!
//! ```text
//!  process.rs   samsa nodes as local processes (loopback, or one network namespace each)
//!  netns.rs     the namespaces, bridge and iptables cuts behind process partitions
//!  docker.rs    samsa nodes as containers of the samsa image (docker CLI)
//!  target.rs    what a fault needs of either: kill, stop, start, pause, isolate, heal
//!  schedule.rs  the seeded fault schedule
//!  workload.rs  the workload processes (workload/chaos_worker.py: confluent-kafka)
//!  probe.rs     the runner's Kafka-protocol view: leaders, controller, offsets, final read
//!  history.rs   the recorded history (JSON lines)
//!  checker.rs   invariants over a history (pure); txn_check.rs its transactional part
//!  availability.rs  recovery times per fault (pure)
//!  chaos.rs     the runner: cluster + workload + schedule → history → report
//!  watch.rs     the runner's observer (leaders, controller) and committed-offsets sampler
//!  verify.rs    the end of a run: final read, replica comparison, topic list
//!  summary.rs   the table at the end
//! ```
//!
//! Tests use [`LocalCluster`] and [`Node`] directly; `scripts/chaos.sh` runs the
//! `samsa-chaos` binary.

pub mod availability;
pub mod chaos;
pub mod checker;
pub mod docker;
pub mod history;
pub mod netns;
pub mod probe;
pub mod process;
pub mod schedule;
pub mod summary;
pub mod target;
mod txn_check;
pub mod verify;
pub mod watch;
pub mod workload;

pub use process::{LocalCluster, Network, Node, Ports, READY_TIMEOUT, STOP_TIMEOUT, free_port};
