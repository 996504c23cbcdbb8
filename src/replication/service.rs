//! Leader side of replication: answers follower fetches (long poll), records follower progress,
//! advances the high watermark and asks for ISR expansion when a follower catches up. A fetch
//! with nothing to send waits on the log end offsets of the partitions it asked for, so only
//! appends to those partitions wake it.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;
use tonic::{Request, Response, Status};

use super::ReplicationContext;
use super::pb::replication_server::Replication as ReplicationRpc;
use super::pb::{
    DivergingEpoch, FetchPartition, FetchRequest, FetchResponse, PartitionData, VerifyTxnRequest,
    VerifyTxnResponse, WriteTxnMarkersRequest, WriteTxnMarkersResponse,
};
use crate::clock::now_ms;
use crate::error_code::ErrorCode;
use crate::log::ReadError;
use crate::quota::replication::Side;
use crate::types::NodeId;

/// Longest a follower fetch waits for data.
pub(crate) const FOLLOWER_FETCH_WAIT_MAX: Duration = Duration::from_secs(1);
/// Largest replication message (a batch may be up to message.max.bytes, plus slack).
pub(crate) const REPLICATION_MESSAGE_BYTES_MAX: usize = 64 * 1024 * 1024;

/// The gRPC service. It serves from the moment the listener starts: before this node hosts a
/// replica, fetches are answered UNKNOWN_TOPIC_OR_PARTITION and the follower retries.
pub(crate) struct ReplicationService {
    ctx: Arc<ReplicationContext>,
}

impl ReplicationService {
    pub(crate) fn new(ctx: Arc<ReplicationContext>) -> Self {
        ReplicationService { ctx }
    }
}

#[tonic::async_trait]
impl ReplicationRpc for ReplicationService {
    async fn write_txn_markers(
        &self,
        req: Request<WriteTxnMarkersRequest>,
    ) -> Result<Response<WriteTxnMarkersResponse>, Status> {
        let resp = super::markers::write_markers(
            &self.ctx.replicas,
            self.ctx.markers.as_ref(),
            req.into_inner(),
        )
        .await;
        Ok(Response::new(resp))
    }

    async fn verify_txn(
        &self,
        req: Request<VerifyTxnRequest>,
    ) -> Result<Response<VerifyTxnResponse>, Status> {
        Ok(Response::new(self.ctx.txn_verifier.verify(req.get_ref())))
    }

    async fn fetch(&self, req: Request<FetchRequest>) -> Result<Response<FetchResponse>, Status> {
        let req = req.into_inner();
        let wait =
            Duration::from_millis(req.max_wait_ms.max(0) as u64).min(FOLLOWER_FETCH_WAIT_MAX);
        let deadline = Instant::now() + wait;
        // Subscribed only once a read comes up empty, then read again before waiting: an
        // append between the first read and the subscription is not missed.
        let mut log_ends: Option<Vec<tokio::sync::watch::Receiver<i64>>> = None;
        loop {
            for w in log_ends.iter_mut().flatten() {
                w.borrow_and_update();
            }
            let (resp, bytes, urgent) = read_all(&self.ctx, &req);
            if bytes > 0 || urgent || Instant::now() >= deadline {
                return Ok(Response::new(resp));
            }
            let Some(ws) = log_ends.as_mut() else {
                log_ends = Some(
                    req.partitions
                        .iter()
                        .filter_map(|fp| self.ctx.replicas.get(&fp.topic, fp.partition))
                        .map(|p| p.subscribe_log_end())
                        .collect(),
                );
                continue;
            };
            crate::replica::wait_for_any_change(ws, deadline).await;
        }
    }
}

/// One pass over the requested partitions: the response, bytes carried, and whether anything
/// needs the follower's attention now (an error or a divergence).
fn read_all(ctx: &ReplicationContext, req: &FetchRequest) -> (FetchResponse, usize, bool) {
    let follower = NodeId(req.replica_id);
    let mut budget = req.max_bytes.max(0) as usize;
    let mut out = FetchResponse::default();
    let mut urgent = false;
    let image = ctx.metadata.image();
    let now = now_ms();
    for fp in &req.partitions {
        // KIP-73: a throttled replica (listed, out of the ISR, a rate set) gets no records
        // while this leader's throttled traffic is over the rate, and at most one window's
        // worth at a time; its fetch still counts as progress.
        let throttle =
            ctx.throttle.applies(&image, Side::Leader, &fp.topic, fp.partition, follower);
        let held = throttle.is_some_and(|bound| ctx.throttle.exceeded(Side::Leader, bound, now));
        let limit = match throttle {
            Some(_) if held => 1,
            Some(bound) => budget.min(ctx.throttle.read_budget(bound)),
            None => budget,
        };
        let mut pd = PartitionData {
            topic: fp.topic.clone(),
            partition: fp.partition,
            high_watermark: -1,
            log_start_offset: -1,
            log_end_offset: -1,
            ..Default::default()
        };
        match read_partition(ctx, follower, fp, limit, &mut pd) {
            Ok(()) => {
                if held {
                    pd.records = Default::default();
                } else if throttle.is_some() {
                    ctx.throttle.record(Side::Leader, pd.records.len(), now);
                }
                budget = budget.saturating_sub(pd.records.len());
                urgent |= pd.diverging.is_some();
            }
            Err(code) => {
                pd.error_code = i32::from(code.code());
                urgent = true;
            }
        }
        out.partitions.push(pd);
    }
    let bytes = out.partitions.iter().map(|p| p.records.len()).sum();
    (out, bytes, urgent)
}

fn read_partition(
    ctx: &ReplicationContext,
    follower: NodeId,
    fp: &FetchPartition,
    budget: usize,
    pd: &mut PartitionData,
) -> Result<(), ErrorCode> {
    let part = ctx
        .replicas
        .lookup(&fp.topic, fp.partition)
        .map_err(|m| m.code(ErrorCode::UnknownTopicOrPartition))?;
    let epoch = part.epoch_if_leader().ok_or(ErrorCode::NotLeaderOrFollower)?;
    if fp.current_leader_epoch < epoch.0 {
        return Err(ErrorCode::FencedLeaderEpoch);
    }
    if fp.current_leader_epoch > epoch.0 {
        return Err(ErrorCode::UnknownLeaderEpoch);
    }
    let read = match part.read_for_follower(
        follower,
        fp.fetch_offset,
        fp.last_fetched_epoch,
        budget,
        now_ms(),
    ) {
        Ok(read) => read,
        Err(ReadError::OffsetOutOfRange { log_start, log_end, .. }) => {
            // The follower needs the leader's bounds to restart at its log start.
            pd.log_start_offset = log_start.0;
            pd.log_end_offset = log_end.0;
            pd.high_watermark = part.high_watermark().0;
            return Err(ErrorCode::OffsetOutOfRange);
        }
        Err(ReadError::Io(e)) => {
            tracing::error!(partition = %part.tp, error = %e, "replication read failed");
            return Err(ErrorCode::KafkaStorageError);
        }
    };
    part.record_follower_log_start(follower, fp.log_start_offset);
    pd.log_start_offset = read.log_start_offset.0;
    pd.log_end_offset = read.log_end_offset.0;
    pd.high_watermark = read.high_watermark.0;
    pd.diverging = read.diverging.map(|(epoch, end_offset)| DivergingEpoch { epoch, end_offset });
    pd.records = read.records;
    if let Some(isr) = read.isr_expansion {
        super::isr::propose(&ctx.isr, &part, isr);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use futures_util::future::BoxFuture;
    use kafka_protocol::records::Compression;

    use super::*;
    use crate::client::records::encode_batch;
    use crate::config::broker::BrokerConfig;
    use crate::error_code::ApiError;
    use crate::metadata::StaticMetadata;
    use crate::metadata::commands::{MetadataCommand, apply};
    use crate::metadata::image::MetadataImage;
    use crate::replica::{Acks, ReplicaManager};
    use crate::replication::isr::{IsrChange, IsrProposer};

    struct NoIsrChanges;
    impl IsrProposer for NoIsrChanges {
        fn alter_partition(&self, _: IsrChange) -> BoxFuture<'static, Result<(), ApiError>> {
            Box::pin(async { Ok(()) })
        }
    }

    /// Coordinates nothing.
    struct NoTxns;
    impl crate::replication::markers::TxnVerifier for NoTxns {
        fn verify(&self, _: &VerifyTxnRequest) -> VerifyTxnResponse {
            VerifyTxnResponse { error_code: 16, results: Vec::new() }
        }
    }

    /// Records the markers it is told of.
    #[derive(Default)]
    struct SeenMarkers(std::sync::Mutex<Vec<(String, i32, i64, bool)>>);
    impl crate::replication::markers::MarkerObserver for SeenMarkers {
        fn marker_committed(&self, topic: &str, partition: i32, producer_id: i64, commit: bool) {
            self.0.lock().expect("lock").push((topic.to_string(), partition, producer_id, commit));
        }
    }

    fn single_replica_leader(dir: &std::path::Path) -> Arc<ReplicaManager> {
        let config = BrokerConfig::dev(dir.to_path_buf(), "127.0.0.1:9092".parse().expect("addr"));
        let mut img = MetadataImage::default();
        let create = MetadataCommand::CreateTopic {
            name: "t".into(),
            id: uuid::Uuid::from_u128(1),
            assignments: vec![vec![NodeId(1)]],
            configs: Default::default(),
        };
        apply(&mut img, &create);
        let rm = Arc::new(ReplicaManager::new(NodeId(1), dir.to_path_buf()));
        rm.reconcile(&img, &config).expect("leader of t-0");
        rm
    }

    /// A transactional batch holds the last stable offset back until the coordinator's marker
    /// is written through the service; a marker from an older producer epoch is refused.
    #[tokio::test]
    async fn a_marker_written_over_the_service_closes_the_transaction_and_an_old_epoch_is_fenced() {
        let dir = tempfile::tempdir().expect("tmp");
        let rm = single_replica_leader(dir.path());
        let part = rm.get("t", 0).expect("replica");
        let mut rec = crate::client::records::new_record(0, None, Some("v".into()), 0, None);
        rec.transactional = true;
        rec.producer_id = 42;
        rec.producer_epoch = 3;
        rec.sequence = 0;
        let batch = crate::client::records::encode_records(&[rec], Compression::None).expect("enc");
        part.append_as_leader(&batch, Acks::All, now_ms()).expect("append");
        let offsets = part.offsets();
        assert_eq!((offsets.high_watermark.0, offsets.last_stable_offset.0), (1, 0));
        let seen = Arc::new(SeenMarkers::default());
        let (_stop, shutdown) = tokio::sync::watch::channel(false);
        let service = ReplicationService::new(Arc::new(ReplicationContext {
            node_id: NodeId(1),
            replicas: rm.clone(),
            metadata: StaticMetadata::new(MetadataImage::default()),
            isr: Arc::new(NoIsrChanges),
            shutdown,
            replica_lag_time_max_ms: 30_000,
            throttle: Arc::new(crate::quota::replication::ReplicationThrottle::new(
                NodeId(1),
                &BrokerConfig::dev("d".into(), "127.0.0.1:9092".parse().expect("addr")),
            )),
            markers: seen.clone(),
            txn_verifier: Arc::new(NoTxns),
            dialer: Default::default(),
        }));
        let marker = |epoch: i32, commit: bool| WriteTxnMarkersRequest {
            markers: vec![crate::replication::pb::TxnMarker {
                producer_id: 42,
                producer_epoch: epoch,
                commit,
                coordinator_epoch: 0,
                partitions: vec![crate::replication::pb::MarkerPartition {
                    topic: "t".into(),
                    partition: 0,
                }],
            }],
        };
        let stale = service.write_txn_markers(Request::new(marker(2, false))).await.expect("rpc");
        assert_eq!(stale.get_ref().results[0].error_code, 47, "INVALID_PRODUCER_EPOCH");
        let ok = service.write_txn_markers(Request::new(marker(3, true))).await.expect("rpc");
        assert_eq!(ok.get_ref().results[0].error_code, 0);
        let offsets = part.offsets();
        assert_eq!((offsets.high_watermark.0, offsets.last_stable_offset.0), (2, 2));
        assert_eq!(*seen.0.lock().expect("lock"), vec![("t".to_string(), 0, 42, true)]);
    }

    /// The tight loop of the replication path: a follower's long poll returns when the leader
    /// appends, not at its max wait, and the follower's next fetch (its acknowledgement) raises
    /// the high watermark before that fetch is answered, with no timer in between.
    #[tokio::test]
    async fn a_follower_fetch_returns_on_append_and_the_next_one_raises_the_high_watermark() {
        let dir = tempfile::tempdir().expect("tmp");
        let config =
            BrokerConfig::dev(dir.path().to_path_buf(), "127.0.0.1:9092".parse().expect("addr"));
        let mut img = MetadataImage::default();
        let create = MetadataCommand::CreateTopic {
            name: "t".into(),
            id: uuid::Uuid::from_u128(1),
            assignments: vec![vec![NodeId(1), NodeId(2)]],
            configs: Default::default(),
        };
        apply(&mut img, &create);
        let rm = Arc::new(ReplicaManager::new(NodeId(1), dir.path().to_path_buf()));
        rm.reconcile(&img, &config).expect("leader of t-0");
        let part = rm.get("t", 0).expect("replica");
        assert!(part.is_leader());
        let (_stop, shutdown) = tokio::sync::watch::channel(false);
        let service = ReplicationService::new(Arc::new(ReplicationContext {
            node_id: NodeId(1),
            replicas: rm.clone(),
            metadata: StaticMetadata::new(img),
            isr: Arc::new(NoIsrChanges),
            shutdown,
            replica_lag_time_max_ms: 30_000,
            throttle: Arc::new(crate::quota::replication::ReplicationThrottle::new(
                NodeId(1),
                &BrokerConfig::dev("d".into(), "127.0.0.1:9092".parse().expect("addr")),
            )),
            markers: Arc::new(SeenMarkers::default()),
            txn_verifier: Arc::new(NoTxns),
            dialer: Default::default(),
        }));
        let epoch = part.leader_epoch().0;
        let fetch = |fetch_offset: i64, last_fetched_epoch: i32, max_wait_ms: i32| FetchRequest {
            replica_id: 2,
            max_wait_ms,
            max_bytes: 1 << 20,
            partitions: vec![FetchPartition {
                topic: "t".into(),
                partition: 0,
                fetch_offset,
                last_fetched_epoch,
                current_leader_epoch: epoch,
                log_start_offset: 0,
            }],
        };
        let writer = part.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let recs = vec![(None, Some(bytes::Bytes::from_static(b"v")))];
            let batch = encode_batch(&recs, 0, Compression::None).expect("batch");
            writer.append_as_leader(&batch, Acks::All, now_ms()).expect("append");
        });
        let started = Instant::now();
        let answer = service.fetch(Request::new(fetch(0, -1, 1000))).await.expect("fetch");
        let waited = started.elapsed();
        assert!(!answer.get_ref().partitions[0].records.is_empty(), "the append was sent");
        assert!(waited < Duration::from_millis(900), "woke on the append ({waited:?})");
        assert_eq!(part.high_watermark().0, 0, "not acknowledged by the follower yet");
        let answer = service.fetch(Request::new(fetch(1, epoch, 0))).await.expect("fetch");
        assert_eq!(part.high_watermark().0, 1, "the follower's fetch at 1 acknowledged offset 0");
        assert_eq!(answer.get_ref().partitions[0].high_watermark, 1, "and it learns so at once");
    }
}
