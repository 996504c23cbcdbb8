//! The broker's side of transaction markers: the transaction coordinator's [`MarkerSender`]
//! (each partition's marker goes to its leader: in process when that is this broker, over the
//! inter-broker gRPC otherwise) and the replication room's [`MarkerObserver`] (a marker
//! committed on `__consumer_offsets` reaches the group coordinator), and KIP-890's
//! verification: a partition leader asks the producer's coordinator, in process or over gRPC,
//! whether a partition is in the producer's open transaction.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::future::BoxFuture;
use tonic::transport::Channel;

use crate::config::group::OFFSETS_TOPIC;
use crate::config::txn::TRANSACTION_STATE_TOPIC;
use crate::coordinator::partition_for;
use crate::error_code::ErrorCode;
use crate::group::GroupCoordinator;
use crate::metadata::MetadataLog;
use crate::replica::ReplicaManager;
use crate::replication::markers::{MarkerObserver, TxnVerifier, write_markers};
use crate::replication::pb::replication_client::ReplicationClient;
use crate::replication::pb::{
    MarkerPartition, MarkerResult, TxnMarker, VerifyTxnRequest, VerifyTxnResponse,
    WriteTxnMarkersRequest,
};
use crate::replication::service::REPLICATION_MESSAGE_BYTES_MAX;
use crate::txn::TransactionCoordinator;
use crate::txn::{MarkerRequest, MarkerSender, PartitionCode};
use crate::types::NodeId;

/// How long one WriteTxnMarkers call to another broker may take (its markers wait up to 30 s
/// for their ISR).
const MARKER_RPC_TIMEOUT: Duration = Duration::from_secs(35);

/// Hands committed offsets-topic markers to the group coordinator.
pub(super) struct GroupMarkers(pub(super) Arc<GroupCoordinator>);

impl MarkerObserver for GroupMarkers {
    fn marker_committed(&self, topic: &str, partition: i32, producer_id: i64, commit: bool) {
        if topic == OFFSETS_TOPIC {
            self.0.complete_txn(partition, producer_id, commit);
        }
    }
}

/// Answers verification for the ids this broker coordinates.
pub(super) struct LocalVerifier(pub(super) Arc<TransactionCoordinator>);

impl TxnVerifier for LocalVerifier {
    fn verify(&self, r: &VerifyTxnRequest) -> VerifyTxnResponse {
        let parts: Vec<(String, i32)> =
            r.partitions.iter().map(|p| (p.topic.clone(), p.partition)).collect();
        let epoch = i16::try_from(r.producer_epoch).unwrap_or(-1);
        match self.0.verify_partitions(&r.transactional_id, r.producer_id, epoch, &parts) {
            Ok(rows) => VerifyTxnResponse {
                error_code: 0,
                results: rows
                    .into_iter()
                    .map(|((topic, partition), code)| MarkerResult {
                        producer_id: r.producer_id,
                        topic,
                        partition,
                        error_code: i32::from(code.code()),
                    })
                    .collect(),
            },
            Err(code) => VerifyTxnResponse { error_code: i32::from(code.code()), results: vec![] },
        }
    }
}

/// How long a verification call to another broker may take.
const VERIFY_RPC_TIMEOUT: Duration = Duration::from_secs(5);

/// Sends markers to partition leaders and verification questions to coordinators.
pub(super) struct BrokerMarkers {
    pub(super) node_id: NodeId,
    pub(super) replicas: Arc<ReplicaManager>,
    pub(super) metadata: Arc<dyn MetadataLog>,
    pub(super) observer: Arc<dyn MarkerObserver>,
    /// Dials the peers' CONTROLLER listeners.
    pub(super) dialer: crate::raft::network::Dialer,
    /// One channel per peer, rebuilt when its address changes.
    pub(super) clients: Mutex<HashMap<NodeId, (String, ReplicationClient<Channel>)>>,
    /// This broker's own coordinator's answers.
    pub(super) local: LocalVerifier,
}

impl BrokerMarkers {
    fn client(&self, node: NodeId, addr: &str) -> Option<ReplicationClient<Channel>> {
        let mut clients = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        if clients.get(&node).is_none_or(|(a, _)| a != addr) {
            let ch = self.dialer.channel(addr).ok()?;
            let c = ReplicationClient::new(ch)
                .max_decoding_message_size(REPLICATION_MESSAGE_BYTES_MAX)
                .max_encoding_message_size(REPLICATION_MESSAGE_BYTES_MAX);
            clients.insert(node, (addr.to_string(), c));
        }
        clients.get(&node).map(|(_, c)| c.clone())
    }
}

impl BrokerMarkers {
    /// KIP-890: asks the coordinator of `request.transactional_id` which of its partitions are
    /// in the producer's open transaction. `Err` is a code for the whole request.
    pub(super) async fn verify(&self, request: VerifyTxnRequest) -> VerifyTxnResponse {
        let unavailable = || VerifyTxnResponse {
            error_code: i32::from(ErrorCode::CoordinatorNotAvailable.code()),
            results: vec![],
        };
        let image = self.metadata.image();
        let Some(t) = image.topic(TRANSACTION_STATE_TOPIC) else { return unavailable() };
        let p = partition_for(&request.transactional_id, t.partitions.len() as i32);
        let Some(leader) = t.partitions.get(p as usize).and_then(|p| p.leader) else {
            return unavailable();
        };
        if leader == self.node_id {
            return self.local.verify(&request);
        }
        let addr = image.brokers.get(&leader).map(|b| b.replication_addr.clone());
        let Some(mut c) = addr.filter(|a| !a.is_empty()).and_then(|a| self.client(leader, &a))
        else {
            return unavailable();
        };
        let mut r = tonic::Request::new(request);
        r.set_timeout(VERIFY_RPC_TIMEOUT);
        match c.verify_txn(r).await {
            Ok(resp) => resp.into_inner(),
            Err(e) => {
                tracing::debug!(%leader, error = %e, "VerifyTxn failed");
                unavailable()
            }
        }
    }
}

/// The coordinator's marker sender, set once the [`BrokerMarkers`] exist (they refer to each
/// other; the broker holds the strong reference, so no cycle outlives it).
pub(super) struct LateMarkers(pub(super) Arc<std::sync::OnceLock<std::sync::Weak<BrokerMarkers>>>);

impl MarkerSender for LateMarkers {
    fn send(&self, request: MarkerRequest) -> BoxFuture<'static, Vec<PartitionCode>> {
        match self.0.get().and_then(std::sync::Weak::upgrade) {
            Some(peers) => peers.send(request),
            None => Box::pin(async move {
                let code = ErrorCode::CoordinatorNotAvailable;
                request.partitions.into_iter().map(|p| (p, code)).collect()
            }),
        }
    }
}

impl MarkerSender for Arc<BrokerMarkers> {
    fn send(&self, request: MarkerRequest) -> BoxFuture<'static, Vec<PartitionCode>> {
        let this = self.clone();
        Box::pin(async move { this.send_now(request).await })
    }
}

impl BrokerMarkers {
    async fn send_now(self: Arc<Self>, request: MarkerRequest) -> Vec<PartitionCode> {
        let image = self.metadata.image();
        let mut by_leader: BTreeMap<NodeId, Vec<(String, i32)>> = BTreeMap::new();
        let mut failed = Vec::new();
        for (topic, partition) in &request.partitions {
            // A deleted topic needs no marker.
            let Some(t) = image.topic(topic) else { continue };
            match t.partitions.get(*partition as usize).and_then(|p| p.leader) {
                Some(leader) => {
                    by_leader.entry(leader).or_default().push((topic.clone(), *partition))
                }
                None => failed.push(((topic.clone(), *partition), ErrorCode::LeaderNotAvailable)),
            }
        }
        let mut calls = Vec::new();
        for (leader, partitions) in by_leader {
            let marker = TxnMarker {
                producer_id: request.producer_id,
                producer_epoch: i32::from(request.producer_epoch),
                commit: request.commit,
                coordinator_epoch: request.coordinator_epoch,
                partitions: partitions
                    .iter()
                    .map(|(t, p)| MarkerPartition { topic: t.clone(), partition: *p })
                    .collect(),
            };
            let req = WriteTxnMarkersRequest { markers: vec![marker] };
            let addr = image.brokers.get(&leader).map(|b| b.replication_addr.clone());
            let this = self.clone();
            calls.push(async move {
                let resp = if leader == this.node_id {
                    Ok(write_markers(&this.replicas, this.observer.as_ref(), req).await)
                } else {
                    match addr.filter(|a| !a.is_empty()).and_then(|a| this.client(leader, &a)) {
                        Some(mut c) => {
                            let mut r = tonic::Request::new(req);
                            r.set_timeout(MARKER_RPC_TIMEOUT);
                            c.write_txn_markers(r).await.map(|r| r.into_inner()).map_err(|e| {
                                tracing::debug!(%leader, error = %e, "WriteTxnMarkers failed");
                            })
                        }
                        None => Err(()),
                    }
                };
                match resp {
                    Ok(resp) => resp
                        .results
                        .into_iter()
                        .filter_map(|r| {
                            let code = marker_code(r.error_code);
                            let retry = !matches!(
                                code,
                                ErrorCode::None
                                    // A newer epoch wrote to the partition: this marker is stale.
                                    | ErrorCode::InvalidProducerEpoch
                            );
                            retry.then_some(((r.topic, r.partition), code))
                        })
                        .collect::<Vec<_>>(),
                    Err(()) => partitions
                        .into_iter()
                        .map(|p| (p, ErrorCode::CoordinatorNotAvailable))
                        .collect(),
                }
            });
        }
        for f in futures_util::future::join_all(calls).await {
            failed.extend(f);
        }
        failed
    }
}

/// The codes a marker write answers with (see `replication::markers`).
fn marker_code(code: i32) -> ErrorCode {
    match code {
        0 => ErrorCode::None,
        3 => ErrorCode::UnknownTopicOrPartition,
        6 => ErrorCode::NotLeaderOrFollower,
        7 => ErrorCode::RequestTimedOut,
        19 => ErrorCode::NotEnoughReplicas,
        42 => ErrorCode::InvalidRequest,
        47 => ErrorCode::InvalidProducerEpoch,
        56 => ErrorCode::KafkaStorageError,
        _ => ErrorCode::UnknownServerError,
    }
}
