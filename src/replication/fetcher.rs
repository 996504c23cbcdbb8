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
/// How long a fetch may take beyond the leader's long-poll wait before it is abandoned and
/// sent again (a request lost in a network cut must not hold replication up for long).
const FETCH_SLACK: Duration = Duration::from_secs(3);
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
        // Each partition's leader epoch as the request was built: the answer only counts for a
        // partition still following this leader in that epoch.
        let epochs: Vec<i32> = request.partitions.iter().map(|p| p.current_leader_epoch).collect();
        let mut req = tonic::Request::new(request);
        req.set_timeout(Duration::from_millis(FETCH_WAIT_MS as u64) + FETCH_SLACK);
        match c.fetch(req).await {
            Ok(resp) => {
                let applied = apply_response(leader, &parts, &epochs, resp.into_inner());
                if applied.appended {
                    broker.data_appended.notify_waiters();
                }
                if !applied.keep_going {
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

/// What applying one fetch answer did.
struct Applied {
    /// Some partition took the answer (waiters on new data may proceed).
    appended: bool,
    /// False when the fetcher should back off: every partition failed, or a divergence could
    /// not be resolved.
    keep_going: bool,
}

/// Applies a fetch answer from `leader` to `parts`, each asked for in leader epoch `epochs[i]`.
fn apply_response(
    leader: NodeId,
    parts: &[Arc<Partition>],
    epochs: &[i32],
    resp: super::pb::FetchResponse,
) -> Applied {
    let mut any_ok = false;
    let mut stuck = false;
    for pd in resp.partitions {
        let Some((part, epoch)) = parts
            .iter()
            .zip(epochs)
            .find(|(p, _)| p.tp.topic == pd.topic && p.tp.partition.0 == pd.partition)
        else {
            continue;
        };
        if pd.error_code != 0 {
            tracing::debug!(partition = %part.tp, code = pd.error_code, "leader refused the fetch");
            continue;
        }
        let mut log = part.log();
        // Checked under the log lock, which a new leadership takes to record its epoch: an answer
        // that arrives after this replica stopped following `leader` in `epoch` (it became
        // leader, or follows someone else now) is stale and must not touch the log. Applying it
        // would put the deposed leader's records after the new leader's epoch start.
        if part.is_leader() || part.leader() != Some(leader) || part.leader_epoch().0 != *epoch {
            tracing::info!(partition = %part.tp, %leader, epoch = *epoch,
                "ignoring a fetch answer from before a leadership change");
            continue;
        }
        any_ok = true;
        let result = if let Some(d) = &pd.diverging {
            tracing::warn!(partition = %part.tp, epoch = d.epoch, end_offset = d.end_offset,
                log_end_offset = %log.log_end_offset(), "log diverges from the leader; truncating");
            let before = (log.log_end_offset(), log.latest_epoch());
            let truncated = log.truncate_to(Offset(d.end_offset)).map_err(|e| e.to_string());
            if truncated.is_ok() && (log.log_end_offset(), log.latest_epoch()) == before {
                // Nothing changed, so the next fetch gets the same answer: back off rather than
                // spin (a bug if it happens; the log says which partition).
                tracing::error!(partition = %part.tp, "truncation changed nothing; backing off");
                stuck = true;
            }
            truncated
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
    Applied { appended: any_ok, keep_going: !stuck && (any_ok || parts.is_empty()) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::replica_manager::ReplicaManager;
    use crate::client::records::encode_batch;
    use crate::config::broker::BrokerConfig;
    use crate::metadata::commands::{MetadataCommand, apply};
    use crate::metadata::image::MetadataImage;
    use crate::types::LeaderEpoch;
    use kafka_protocol::records::Compression;

    fn led_by(img: &mut MetadataImage, leader: i32) {
        apply(
            img,
            &MetadataCommand::ChangePartition {
                topic: "t".into(),
                partition: 0,
                leader: Some(NodeId(leader)),
                isr: vec![NodeId(1), NodeId(2)],
            },
        );
    }

    /// Found by the chaos suite: a follower's fetch was answered by a leader that had been
    /// frozen (SIGSTOP) meanwhile; the answer arrived after the follower had become leader in a
    /// newer epoch, and was appended: the deposed leader's records after the new epoch's start.
    #[test]
    fn an_answer_from_before_a_leadership_change_is_ignored() {
        let dir = tempfile::tempdir().expect("tmp");
        let config =
            BrokerConfig::dev(dir.path().to_path_buf(), "127.0.0.1:9092".parse().expect("addr"));
        let rm = ReplicaManager::new(NodeId(1), dir.path().to_path_buf());
        let mut img = MetadataImage::default();
        apply(
            &mut img,
            &MetadataCommand::CreateTopic {
                name: "t".into(),
                id: uuid::Uuid::from_u128(1),
                assignments: vec![vec![NodeId(2), NodeId(1)]],
                configs: Default::default(),
            },
        );
        led_by(&mut img, 2);
        rm.reconcile(&img, &config).expect("follower of 2");
        let part = rm.get("t", 0).expect("replica");
        let asked_in = part.leader_epoch().0;
        let recs = vec![(None, Some(bytes::Bytes::from_static(b"old leader's")))];
        let mut batch = encode_batch(&recs, 0, Compression::None).expect("batch").to_vec();
        crate::log::batch::assign_offset(&mut batch, Offset(0), LeaderEpoch(asked_in));
        let answer = || super::super::pb::FetchResponse {
            partitions: vec![super::super::pb::PartitionData {
                topic: "t".into(),
                partition: 0,
                high_watermark: 0,
                log_end_offset: 1,
                records: batch.clone().into(),
                ..Default::default()
            }],
        };
        // Node 2 is deposed while the answer is in flight; this node leads a newer epoch.
        led_by(&mut img, 1);
        rm.reconcile(&img, &config).expect("leader now");
        assert!(part.is_leader());
        let applied = apply_response(NodeId(2), std::slice::from_ref(&part), &[asked_in], answer());
        assert!(!applied.appended);
        assert_eq!(part.log().log_end_offset(), Offset(0), "the stale answer left the log alone");
        // Following node 2 again, in a newer epoch than the answer was asked in: still stale.
        led_by(&mut img, 2);
        rm.reconcile(&img, &config).expect("follower again");
        apply_response(NodeId(2), std::slice::from_ref(&part), &[asked_in], answer());
        assert_eq!(part.log().log_end_offset(), Offset(0));
        // An answer to a request of the current epoch is applied.
        let current = part.leader_epoch().0;
        let applied = apply_response(NodeId(2), std::slice::from_ref(&part), &[current], answer());
        assert!(applied.appended);
        assert_eq!(part.log().log_end_offset(), Offset(1));
    }
}
