//! Leader side of replication: answers follower fetches (long poll), records follower progress,
//! advances the high watermark and asks for ISR expansion when a follower catches up.

use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use tokio::time::Instant;
use tonic::{Request, Response, Status};

use super::pb::replication_server::Replication;
use super::pb::{DivergingEpoch, FetchRequest, FetchResponse, PartitionData};
use crate::broker::{Broker, now_ms};
use crate::kafka::error_code::ErrorCode;
use crate::log::ReadError;
use crate::types::{LeaderEpoch, NodeId, Offset};

/// Longest a follower fetch waits for data.
pub const FOLLOWER_FETCH_WAIT_MAX: Duration = Duration::from_secs(1);
/// Largest replication message (a batch may be up to message.max.bytes, plus slack).
pub const REPLICATION_MESSAGE_BYTES_MAX: usize = 64 * 1024 * 1024;

/// The gRPC service; the broker is attached once it exists (the listener starts first).
pub struct ReplicationService {
    broker: Arc<OnceLock<Weak<Broker>>>,
}

impl ReplicationService {
    pub fn new(broker: Arc<OnceLock<Weak<Broker>>>) -> Self {
        ReplicationService { broker }
    }
}

#[tonic::async_trait]
impl Replication for ReplicationService {
    async fn fetch(&self, req: Request<FetchRequest>) -> Result<Response<FetchResponse>, Status> {
        let broker = self
            .broker
            .get()
            .and_then(Weak::upgrade)
            .ok_or_else(|| Status::unavailable("broker starting"))?;
        let req = req.into_inner();
        let wait =
            Duration::from_millis(req.max_wait_ms.max(0) as u64).min(FOLLOWER_FETCH_WAIT_MAX);
        let deadline = Instant::now() + wait;
        loop {
            let notified = broker.data_appended.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let (resp, bytes, urgent) = read_all(&broker, &req);
            if bytes > 0 || urgent || Instant::now() >= deadline {
                return Ok(Response::new(resp));
            }
            tokio::select! {
                _ = &mut notified => {}
                _ = tokio::time::sleep_until(deadline) => {}
            }
        }
    }
}

/// One pass over the requested partitions: the response, bytes carried, and whether anything
/// needs the follower's attention now (an error or a divergence).
fn read_all(broker: &Arc<Broker>, req: &FetchRequest) -> (FetchResponse, usize, bool) {
    let follower = NodeId(req.replica_id);
    let mut budget = req.max_bytes.max(0) as usize;
    let mut out = FetchResponse::default();
    let mut urgent = false;
    for fp in &req.partitions {
        let mut pd = PartitionData {
            topic: fp.topic.clone(),
            partition: fp.partition,
            high_watermark: -1,
            log_start_offset: -1,
            log_end_offset: -1,
            ..Default::default()
        };
        match read_partition(broker, follower, fp, budget, &mut pd) {
            Ok(()) => {
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
    broker: &Arc<Broker>,
    follower: NodeId,
    fp: &super::pb::FetchPartition,
    budget: usize,
    pd: &mut PartitionData,
) -> Result<(), ErrorCode> {
    let part =
        broker.replicas.get(&fp.topic, fp.partition).ok_or(ErrorCode::UnknownTopicOrPartition)?;
    if !part.is_leader() {
        return Err(ErrorCode::NotLeaderOrFollower);
    }
    let epoch = part.leader_epoch();
    if fp.current_leader_epoch < epoch.0 {
        return Err(ErrorCode::FencedLeaderEpoch);
    }
    if fp.current_leader_epoch > epoch.0 {
        return Err(ErrorCode::UnknownLeaderEpoch);
    }
    let log = part.log();
    let (start, leo) = (log.log_start_offset(), log.log_end_offset());
    pd.log_start_offset = start.0;
    pd.log_end_offset = leo.0;
    // KIP-320: does the follower's last epoch end where the follower thinks it does?
    if fp.last_fetched_epoch >= 0 && fp.fetch_offset > start.0 {
        let diverged = match log.end_offset_for_epoch(LeaderEpoch(fp.last_fetched_epoch)) {
            Some((e, end)) if e.0 == fp.last_fetched_epoch && end.0 >= fp.fetch_offset => None,
            Some((e, end)) => Some((e.0, end.0.min(fp.fetch_offset))),
            None => Some((-1, start.0)),
        };
        if let Some((epoch, end_offset)) = diverged {
            pd.diverging = Some(DivergingEpoch { epoch, end_offset });
            pd.high_watermark = part.high_watermark().0;
            return Ok(());
        }
    }
    if fp.fetch_offset > leo.0 {
        // Ahead of the leader in the same epoch: only possible after the leader lost data.
        pd.diverging = Some(DivergingEpoch {
            epoch: log.latest_epoch().map_or(-1, |e| e.0),
            end_offset: leo.0,
        });
        pd.high_watermark = part.high_watermark().0;
        return Ok(());
    }
    let records = match log.read(Offset(fp.fetch_offset), leo, budget, true) {
        Ok(r) => r,
        Err(ReadError::OffsetOutOfRange { .. }) => return Err(ErrorCode::OffsetOutOfRange),
        Err(ReadError::Io(e)) => {
            tracing::error!(partition = %part.tp, error = %e, "replication read failed");
            return Err(ErrorCode::KafkaStorageError);
        }
    };
    drop(log);
    pd.records = records;
    if let Some(isr) = part.record_follower_fetch(follower, fp.fetch_offset, leo, now_ms()) {
        super::isr::propose(broker, &part, isr);
    }
    pd.high_watermark = part.advance_high_watermark(leo).0;
    Ok(())
}
