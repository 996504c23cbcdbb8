//! The partition leader's side of transaction markers (Kafka's WriteTxnMarkers): appends a
//! COMMIT or ABORT control batch with acks=all and answers once the in-sync replicas have it.
//! Served over the inter-broker gRPC ([`super::service`]) and called in process when the
//! coordinator leads the partition itself. A marker committed on `__consumer_offsets` is told
//! to the [`MarkerObserver`] (the group coordinator applies or drops the transaction's offsets).
//! KIP-890's verification question travels the same way ([`TxnVerifier`]).

use std::time::Duration;

use super::pb::{
    MarkerResult, TxnMarker, VerifyTxnRequest, VerifyTxnResponse, WriteTxnMarkersRequest,
    WriteTxnMarkersResponse,
};
use crate::clock::now_ms;
use crate::error_code::ErrorCode;
use crate::log::control::{ControlRecord, Marker};
use crate::log::{AppendError, producer_state::ProducerError};
use crate::replica::{CommitWait, LeaderAppendError, ReplicaManager};
use crate::types::{ProducerEpoch, ProducerId};

/// How long a marker waits for the in-sync replicas (Kafka uses `request.timeout.ms`).
const MARKER_COMMIT_TIMEOUT: Duration = Duration::from_secs(30);
/// Most markers one request may carry (a bound on the work one call does).
pub(crate) const MARKERS_PER_REQUEST_MAX: usize = 10_000;

/// The transaction coordinator's answer to KIP-890's question (implemented by the broker over
/// the coordinator room): per partition, whether it is in the producer's open transaction.
pub(crate) trait TxnVerifier: Send + Sync {
    fn verify(&self, request: &VerifyTxnRequest) -> VerifyTxnResponse;
}

/// Told of every marker committed on a partition this node leads.
pub(crate) trait MarkerObserver: Send + Sync {
    fn marker_committed(&self, topic: &str, partition: i32, producer_id: i64, commit: bool);
}

/// Writes every marker of `request` to the partitions this node leads.
pub(crate) async fn write_markers(
    replicas: &ReplicaManager,
    observer: &dyn MarkerObserver,
    request: WriteTxnMarkersRequest,
) -> WriteTxnMarkersResponse {
    let mut results = Vec::new();
    for (i, marker) in request.markers.into_iter().enumerate() {
        for p in &marker.partitions {
            let code = if i >= MARKERS_PER_REQUEST_MAX {
                ErrorCode::InvalidRequest
            } else {
                write_one(replicas, observer, &marker, &p.topic, p.partition).await
            };
            results.push(MarkerResult {
                producer_id: marker.producer_id,
                topic: p.topic.clone(),
                partition: p.partition,
                error_code: i32::from(code.code()),
            });
        }
    }
    WriteTxnMarkersResponse { results }
}

async fn write_one(
    replicas: &ReplicaManager,
    observer: &dyn MarkerObserver,
    marker: &TxnMarker,
    topic: &str,
    partition: i32,
) -> ErrorCode {
    let Some(part) = replicas.get(topic, partition) else {
        return ErrorCode::UnknownTopicOrPartition;
    };
    let Ok(epoch) = i16::try_from(marker.producer_epoch) else {
        return ErrorCode::InvalidRequest;
    };
    let rec = ControlRecord {
        marker: if marker.commit { Marker::Commit } else { Marker::Abort },
        coordinator_epoch: marker.coordinator_epoch,
    };
    let appended = match part.append_marker(
        ProducerId(marker.producer_id),
        ProducerEpoch(epoch),
        rec,
        now_ms(),
    ) {
        Ok(a) => a,
        Err(LeaderAppendError::NotLeader) => return ErrorCode::NotLeaderOrFollower,
        Err(LeaderAppendError::NotEnoughReplicas { .. }) => return ErrorCode::NotEnoughReplicas,
        Err(LeaderAppendError::Append(AppendError::Producer(
            ProducerError::InvalidProducerEpoch { .. },
        ))) => return ErrorCode::InvalidProducerEpoch,
        Err(LeaderAppendError::Append(e)) => {
            tracing::error!(partition = %part.tp, error = %e, "cannot write a transaction marker");
            return ErrorCode::KafkaStorageError;
        }
    };
    if let Some(flush) = appended.flush
        && let Err(e) = flush.wait().await
    {
        tracing::error!(partition = %part.tp, error = %e, "flushing a transaction marker failed");
        return ErrorCode::KafkaStorageError;
    }
    let target = appended.outcome.last_offset.0 + 1;
    let deadline = tokio::time::Instant::now() + MARKER_COMMIT_TIMEOUT;
    match part.wait_for_commit(target, appended.epoch, deadline).await {
        Ok(()) => {
            observer.marker_committed(topic, partition, marker.producer_id, marker.commit);
            ErrorCode::None
        }
        Err(CommitWait::NotLeader) => ErrorCode::NotLeaderOrFollower,
        Err(CommitWait::TimedOut) => ErrorCode::RequestTimedOut,
    }
}
