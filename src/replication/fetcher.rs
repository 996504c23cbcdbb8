//! Follower side of replication: one task per leader broker fetches every partition this node
//! follows from it, in one long-polling request. For each partition the replica layer truncates
//! when the leader reports a diverging epoch (so a follower never keeps records the leader
//! lacks), appends the leader's batches verbatim, and adopts the leader's high watermark.
//! A task ends when this node follows nothing on that leader any more.

use std::collections::HashSet;
use std::sync::{Arc, Weak};
use std::time::Duration;

use tonic::transport::Channel;

use super::Replication;
use super::pb::replication_client::ReplicationClient;
use super::pb::{FetchPartition, FetchRequest};
use super::service::REPLICATION_MESSAGE_BYTES_MAX;
use crate::clock::now_ms;
use crate::error_code::ErrorCode;
use crate::quota::replication::Side;
use crate::replica::{FollowerApplied, LeaderData, Partition, PendingFlush};
use crate::types::{LeaderEpoch, NodeId};

/// How long the leader may hold a follower fetch waiting for data.
pub(crate) const FETCH_WAIT_MS: i32 = 500;
/// Bytes per follower fetch (`replica.fetch.response.max.bytes`-like).
pub(crate) const FETCH_BYTES_MAX: i32 = 16 * 1024 * 1024;
/// How long a fetch may take beyond the leader's long-poll wait before it is abandoned and
/// sent again (a request lost in a network cut must not hold replication up for long).
const FETCH_SLACK: Duration = Duration::from_secs(3);
/// Pause after a failed fetch (leader down, moving, unreachable).
const RETRY_PAUSE: Duration = Duration::from_millis(100);

impl Replication {
    /// Starts a fetcher for every leader this node follows a partition of (after a metadata
    /// change).
    pub(crate) fn ensure_fetchers(self: &Arc<Self>) {
        let local = self.ctx.node_id;
        let all = self.ctx.replicas.all();
        let leaders: HashSet<NodeId> = all
            .iter()
            .filter(|p| !p.is_leader())
            .filter_map(|p| p.leader())
            .filter(|l| *l != local)
            .collect();
        tracing::debug!(partitions = all.len(), leaders = ?leaders, "ensuring replica fetchers");
        for leader in leaders {
            if self.fetching_from().insert(leader) {
                tokio::spawn(fetch_loop(Arc::downgrade(self), leader));
            }
        }
    }

    fn followed(&self, leader: NodeId) -> Vec<Arc<Partition>> {
        self.ctx
            .replicas
            .all()
            .into_iter()
            .filter(|p| p.leader() == Some(leader) && !p.is_leader())
            .collect()
    }

    /// Whether the fetcher for `leader` should end: shutdown, or nothing followed on it.
    fn stop_fetching(&self, leader: NodeId) -> bool {
        if *self.ctx.shutdown.borrow() {
            self.fetching_from().remove(&leader);
            return true;
        }
        if !self.followed(leader).is_empty() {
            return false;
        }
        tracing::info!(leader = %leader, "replica fetcher stopped: nothing to follow");
        self.fetching_from().remove(&leader);
        // A partition may have been added between the check and the removal.
        self.followed(leader).is_empty() || !self.fetching_from().insert(leader)
    }
}

/// A connection to one leader's replication service, rebuilt when its address changes.
type Client = Option<(String, ReplicationClient<Channel>)>;

fn connect<'a>(
    client: &'a mut Client,
    dialer: &crate::raft::network::Dialer,
    addr: &str,
) -> Option<&'a mut ReplicationClient<Channel>> {
    if client.as_ref().is_none_or(|(a, _)| a != addr) {
        *client = dialer.channel(addr).ok().map(|ch| {
            let c = ReplicationClient::new(ch)
                .max_decoding_message_size(REPLICATION_MESSAGE_BYTES_MAX)
                .max_encoding_message_size(REPLICATION_MESSAGE_BYTES_MAX);
            (addr.to_string(), c)
        });
    }
    client.as_mut().map(|(_, c)| c)
}

async fn fetch_loop(weak: Weak<Replication>, leader: NodeId) {
    tracing::info!(leader = %leader, "replica fetcher started");
    let mut client: Client = None;
    loop {
        let Some(replication) = weak.upgrade() else { return };
        if replication.stop_fetching(leader) {
            return;
        }
        let followed = replication.followed(leader);
        let ctx = replication.ctx.clone();
        drop(replication);
        let (parts, throttled) = unthrottled(&ctx, followed);
        if parts.is_empty() {
            // Every replica fetched from this leader is throttled and over the rate.
            tokio::time::sleep(RETRY_PAUSE).await;
            continue;
        }
        let addr = ctx.metadata.image().brokers.get(&leader).map(|b| b.replication_addr.clone());
        let Some(c) =
            addr.filter(|a| !a.is_empty()).and_then(|a| connect(&mut client, &ctx.dialer, &a))
        else {
            tokio::time::sleep(RETRY_PAUSE).await;
            continue;
        };
        let request = build_request(ctx.node_id, &parts);
        // Each partition's leader epoch and fetch offset as the request was built: the answer
        // only counts for a partition still following this leader in that epoch, at that offset.
        let asked: Vec<(LeaderEpoch, i64)> = request
            .partitions
            .iter()
            .map(|p| (LeaderEpoch(p.current_leader_epoch), p.fetch_offset))
            .collect();
        let mut req = tonic::Request::new(request);
        req.set_timeout(Duration::from_millis(FETCH_WAIT_MS as u64) + FETCH_SLACK);
        let keep_going = match c.fetch(req).await {
            Ok(resp) => {
                let resp = resp.into_inner();
                let throttled_bytes: usize = resp
                    .partitions
                    .iter()
                    .filter(|pd| {
                        throttled.iter().any(|(t, p)| *t == pd.topic && *p == pd.partition)
                    })
                    .map(|pd| pd.records.len())
                    .sum();
                ctx.throttle.record(Side::Follower, throttled_bytes, now_ms());
                let applied = apply_response(leader, &parts, &asked, resp);
                tracing::trace!(leader = %leader, appended = applied.appended, "fetch answer applied");
                // `flush.messages`: the next fetch acknowledges this data, so it is fsynced
                // first (on a blocking thread).
                for flush in applied.flushes {
                    if let Err(e) = flush.wait().await {
                        tracing::error!(leader = %leader, error = %e, "flushing replicated data failed");
                    }
                }
                applied.keep_going
            }
            Err(status) => {
                tracing::debug!(leader = %leader, error = %status, "follower fetch failed");
                false
            }
        };
        if !keep_going {
            tokio::time::sleep(RETRY_PAUSE).await;
        }
    }
}

/// The replicas to fetch now, and which of them are throttled (KIP-73, follower side: listed
/// in `follower.replication.throttled.replicas` for this node, out of the ISR, a rate set).
/// Throttled ones are left out while this node's throttled fetching is over the rate.
fn unthrottled(
    ctx: &super::ReplicationContext,
    followed: Vec<Arc<Partition>>,
) -> (Vec<Arc<Partition>>, Vec<(String, i32)>) {
    let image = ctx.metadata.image();
    let now = now_ms();
    let mut throttled = Vec::new();
    let parts = followed
        .into_iter()
        .filter(|p| {
            let (topic, index) = (&p.tp.topic, p.tp.partition.0);
            match ctx.throttle.applies(&image, Side::Follower, topic, index, ctx.node_id) {
                None => true,
                Some(bound) if ctx.throttle.exceeded(Side::Follower, bound, now) => false,
                Some(_) => {
                    throttled.push((topic.clone(), index));
                    true
                }
            }
        })
        .collect();
    (parts, throttled)
}

fn build_request(replica_id: NodeId, parts: &[Arc<Partition>]) -> FetchRequest {
    let partitions = parts
        .iter()
        .map(|p| {
            let at = p.fetch_position();
            FetchPartition {
                topic: p.tp.topic.clone(),
                partition: p.tp.partition.0,
                fetch_offset: at.fetch_offset.0,
                last_fetched_epoch: at.last_fetched_epoch.map_or(-1, |e| e.0),
                current_leader_epoch: at.current_leader_epoch.0,
                log_start_offset: p.offsets().log_start_offset.0,
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
    /// Some partition took the answer.
    appended: bool,
    /// fsyncs due before the next fetch (`flush.messages`).
    flushes: Vec<PendingFlush>,
    /// False when the fetcher should back off: every partition failed, or a divergence could
    /// not be resolved.
    keep_going: bool,
}

/// Applies a fetch answer from `leader` to `parts`, each asked for in leader epoch `asked[i].0`
/// from offset `asked[i].1`.
fn apply_response(
    leader: NodeId,
    parts: &[Arc<Partition>],
    asked: &[(LeaderEpoch, i64)],
    resp: super::pb::FetchResponse,
) -> Applied {
    let mut any_ok = false;
    let mut stuck = false;
    let mut flushes = Vec::new();
    for pd in resp.partitions {
        let Some((part, (epoch, fetch_offset))) = parts
            .iter()
            .zip(asked)
            .find(|(p, _)| p.tp.topic == pd.topic && p.tp.partition.0 == pd.partition)
        else {
            continue;
        };
        let below_leader_start = pd.error_code == i32::from(ErrorCode::OffsetOutOfRange.code())
            && *fetch_offset < pd.log_start_offset;
        if below_leader_start {
            // Retention or DeleteRecords removed what this replica lacks (a replica a
            // reassignment just added starts empty): go on from the leader's log start.
            if part.restart_as_follower_at(leader, *epoch, pd.log_start_offset, pd.high_watermark) {
                any_ok = true;
            }
            continue;
        }
        if pd.error_code != 0 {
            tracing::debug!(partition = %part.tp, code = pd.error_code, "leader refused the fetch");
            continue;
        }
        let data = LeaderData {
            fetch_offset: *fetch_offset,
            diverging: pd.diverging.as_ref().map(|d| (d.epoch, d.end_offset)),
            records: &pd.records,
            high_watermark: pd.high_watermark,
            log_start_offset: pd.log_start_offset,
        };
        let (applied, flush) = part.apply_as_follower(leader, *epoch, data, now_ms());
        flushes.extend(flush);
        match applied {
            FollowerApplied::Stale => {}
            FollowerApplied::Applied => any_ok = true,
            FollowerApplied::Stuck => {
                any_ok = true;
                stuck = true;
            }
        }
    }
    Applied { appended: any_ok, flushes, keep_going: !stuck && (any_ok || parts.is_empty()) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::records::encode_batch;
    use crate::config::broker::BrokerConfig;
    use crate::metadata::commands::{MetadataCommand, apply};
    use crate::metadata::image::MetadataImage;
    use crate::replica::ReplicaManager;
    use crate::types::LeaderEpoch;
    use crate::types::Offset;
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
        let applied = apply_response(
            NodeId(2),
            std::slice::from_ref(&part),
            &[(LeaderEpoch(asked_in), 0)],
            answer(),
        );
        assert!(!applied.appended);
        assert_eq!(part.offsets().log_end_offset, Offset(0), "the stale answer left the log alone");
        // Following node 2 again, in a newer epoch than the answer was asked in: still stale.
        led_by(&mut img, 2);
        rm.reconcile(&img, &config).expect("follower again");
        apply_response(
            NodeId(2),
            std::slice::from_ref(&part),
            &[(LeaderEpoch(asked_in), 0)],
            answer(),
        );
        assert_eq!(part.offsets().log_end_offset, Offset(0));
        // An answer to a request of the current epoch is applied.
        let current = part.leader_epoch().0;
        let applied = apply_response(
            NodeId(2),
            std::slice::from_ref(&part),
            &[(LeaderEpoch(current), 0)],
            answer(),
        );
        assert!(applied.appended);
        assert_eq!(part.offsets().log_end_offset, Offset(1));
        // An answer asked from offset 0 arriving when the log ends at 1 is not appended (a
        // record past the log end would leave a hole).
        let mut later = answer();
        crate::log::batch::assign_offset(&mut batch, Offset(2), LeaderEpoch(current));
        later.partitions[0].records = batch.clone().into();
        let applied = apply_response(
            NodeId(2),
            std::slice::from_ref(&part),
            &[(LeaderEpoch(current), 0)],
            later,
        );
        assert!(!applied.appended);
        assert_eq!(part.offsets().log_end_offset, Offset(1), "no hole at offset 1");
    }
}
