//! Follower side of replication: one task per leader broker fetches every partition this node
//! follows from it, in one long-polling request. For each partition it truncates when the
//! leader reports a diverging epoch (so a follower never keeps records the leader lacks),
//! appends the leader's batches verbatim, and adopts the leader's high watermark.
//! A task ends when this node follows nothing on that leader any more.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use tonic::transport::Channel;

use super::pb::replication_client::ReplicationClient;
use super::pb::{FetchPartition, FetchRequest};
use super::service::REPLICATION_MESSAGE_BYTES_MAX;
use crate::broker::replica_manager::Partition;
use crate::broker::{Broker, now_ms};
use crate::types::{NodeId, Offset};

/// How long the leader may hold a follower fetch waiting for data.
pub const FETCH_WAIT_MS: i32 = 500;
/// Bytes per follower fetch (`replica.fetch.response.max.bytes`-like).
pub const FETCH_BYTES_MAX: i32 = 16 * 1024 * 1024;
/// Pause after a failed fetch (leader down, moving, unreachable).
const RETRY_PAUSE: Duration = Duration::from_millis(100);

/// The leaders this node currently runs fetcher tasks for.
#[derive(Debug, Default)]
pub struct Fetchers {
    running: Mutex<HashSet<NodeId>>,
}

impl Fetchers {
    fn running(&self) -> std::sync::MutexGuard<'_, HashSet<NodeId>> {
        self.running.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Starts a fetcher for every leader this node follows a partition of (after a metadata change).
pub fn ensure_fetchers(broker: &Arc<Broker>) {
    let leaders: HashSet<NodeId> = broker
        .replicas
        .all()
        .iter()
        .filter(|p| !p.is_leader())
        .filter_map(|p| p.leader())
        .filter(|l| *l != broker.config.node_id)
        .collect();
    tracing::debug!(partitions = broker.replicas.all().len(), leaders = ?leaders, "ensuring replica fetchers");
    for leader in leaders {
        if broker.fetchers.running().insert(leader) {
            tokio::spawn(fetch_loop(Arc::downgrade(broker), leader));
        }
    }
}

fn followed(broker: &Broker, leader: NodeId) -> Vec<Arc<Partition>> {
    broker
        .replicas
        .all()
        .into_iter()
        .filter(|p| p.leader() == Some(leader) && !p.is_leader())
        .collect()
}

async fn fetch_loop(weak: Weak<Broker>, leader: NodeId) {
    tracing::info!(leader = %leader, "replica fetcher started");
    let mut client: Option<(String, ReplicationClient<Channel>)> = None;
    loop {
        let Some(broker) = weak.upgrade() else { return };
        if *broker.shutdown_signal().borrow() {
            broker.fetchers.running().remove(&leader);
            return;
        }
        let parts = followed(&broker, leader);
        if parts.is_empty() {
            tracing::info!(leader = %leader, "replica fetcher stopped: nothing to follow");
            broker.fetchers.running().remove(&leader);
            // A partition may have been added between the check and the removal.
            if !followed(&broker, leader).is_empty() && broker.fetchers.running().insert(leader) {
                continue;
            }
            return;
        }
        let addr = broker.metadata.image().brokers.get(&leader).map(|b| b.replication_addr.clone());
        let Some(addr) = addr.filter(|a| !a.is_empty()) else {
            drop(broker);
            tokio::time::sleep(RETRY_PAUSE).await;
            continue;
        };
        if client.as_ref().is_none_or(|(a, _)| *a != addr) {
            client = crate::raft::network::channel(&addr).ok().map(|ch| {
                let c = ReplicationClient::new(ch)
                    .max_decoding_message_size(REPLICATION_MESSAGE_BYTES_MAX)
                    .max_encoding_message_size(REPLICATION_MESSAGE_BYTES_MAX);
                (addr.clone(), c)
            });
        }
        let Some((_, c)) = client.as_mut() else {
            drop(broker);
            tokio::time::sleep(RETRY_PAUSE).await;
            continue;
        };
        let request = build_request(broker.config.node_id, &parts);
        let mut req = tonic::Request::new(request);
        req.set_timeout(Duration::from_millis(FETCH_WAIT_MS as u64) + Duration::from_secs(5));
        match c.fetch(req).await {
            Ok(resp) => {
                if !apply_response(&broker, &parts, resp.into_inner()) {
                    drop(broker);
                    tokio::time::sleep(RETRY_PAUSE).await;
                }
            }
            Err(status) => {
                tracing::debug!(leader = %leader, error = %status, "follower fetch failed");
                drop(broker);
                tokio::time::sleep(RETRY_PAUSE).await;
            }
        }
    }
}

fn build_request(replica_id: NodeId, parts: &[Arc<Partition>]) -> FetchRequest {
    let partitions = parts
        .iter()
        .map(|p| {
            let log = p.log();
            FetchPartition {
                topic: p.tp.topic.clone(),
                partition: p.tp.partition.0,
                fetch_offset: log.log_end_offset().0,
                last_fetched_epoch: log.latest_epoch().map_or(-1, |e| e.0),
                current_leader_epoch: p.leader_epoch().0,
            }
        })
        .collect();
    FetchRequest {
        replica_id: replica_id.0,
        max_wait_ms: FETCH_WAIT_MS,
        max_bytes: FETCH_BYTES_MAX,
        partitions,
    }
}

/// Applies a fetch response; returns false when every partition failed (then back off).
fn apply_response(
    broker: &Broker,
    parts: &[Arc<Partition>],
    resp: super::pb::FetchResponse,
) -> bool {
    let mut any_ok = false;
    for pd in resp.partitions {
        let Some(part) =
            parts.iter().find(|p| p.tp.topic == pd.topic && p.tp.partition.0 == pd.partition)
        else {
            continue;
        };
        if pd.error_code != 0 {
            tracing::debug!(partition = %part.tp, code = pd.error_code, "leader refused the fetch");
            continue;
        }
        any_ok = true;
        let mut log = part.log();
        let result = if let Some(d) = &pd.diverging {
            tracing::warn!(partition = %part.tp, epoch = d.epoch, end_offset = d.end_offset,
                log_end_offset = %log.log_end_offset(), "log diverges from the leader; truncating");
            log.truncate_to(Offset(d.end_offset)).map_err(|e| e.to_string())
        } else if !pd.records.is_empty() {
            log.append_as_follower(&pd.records, now_ms()).map(|_| ()).map_err(|e| e.to_string())
        } else {
            Ok(())
        };
        if let Err(e) = result {
            tracing::error!(partition = %part.tp, error = %e, "applying replicated data failed");
        }
        let leo = log.log_end_offset();
        drop(log);
        part.set_follower_high_watermark(pd.high_watermark, leo);
    }
    if any_ok {
        broker.data_appended.notify_waiters();
    }
    any_ok || parts.is_empty()
}
