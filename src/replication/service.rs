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
use super::pb::{DivergingEpoch, FetchPartition, FetchRequest, FetchResponse, PartitionData};
use crate::clock::now_ms;
use crate::error_code::ErrorCode;
use crate::log::ReadError;
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
    for fp in &req.partitions {
        let mut pd = PartitionData {
            topic: fp.topic.clone(),
            partition: fp.partition,
            high_watermark: -1,
            log_start_offset: -1,
            log_end_offset: -1,
            ..Default::default()
        };
        match read_partition(ctx, follower, fp, budget, &mut pd) {
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
    let read = part
        .read_for_follower(follower, fp.fetch_offset, fp.last_fetched_epoch, budget, now_ms())
        .map_err(|e| match e {
            ReadError::OffsetOutOfRange { .. } => ErrorCode::OffsetOutOfRange,
            ReadError::Io(e) => {
                tracing::error!(partition = %part.tp, error = %e, "replication read failed");
                ErrorCode::KafkaStorageError
            }
        })?;
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
