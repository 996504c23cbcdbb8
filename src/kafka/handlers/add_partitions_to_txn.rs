//! AddPartitionsToTxn (key 24): adds partitions to a producer's transaction at its
//! coordinator. v0–3 come from producers (one transaction); v4+ (KIP-890) batch transactions
//! and may be `verify_only`, the check a partition leader makes that a transactional produce
//! belongs to an open transaction. Before v2, PRODUCER_FENCED is INVALID_PRODUCER_EPOCH.
//! A partition of an unknown topic fails the whole request with UNKNOWN_TOPIC_OR_PARTITION
//! for it and OPERATION_NOT_ATTEMPTED (55) for the rest, as Kafka answers.
//!
//! Authorization, as Kafka's: v0–3 need WRITE on the transactional id (else
//! TRANSACTIONAL_ID_AUTHORIZATION_FAILED for every partition) and WRITE on each topic (an
//! internal topic never passes); a refused topic fails the transaction the way an unknown one
//! does. v4+ come from brokers and need CLUSTER_ACTION on the cluster.

use std::sync::Arc;

use kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
use kafka_protocol::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnResult, AddPartitionsToTxnTopicResult,
};
use kafka_protocol::messages::{AddPartitionsToTxnRequest, AddPartitionsToTxnResponse};

use super::topic_name;
use crate::broker::Broker;
use crate::config::group::OFFSETS_TOPIC;
use crate::config::txn::TRANSACTION_STATE_TOPIC;
use crate::error_code::ErrorCode;
use crate::kafka::handlers::Authz;
use crate::kafka::router::{RequestContext, Versions};
use crate::security::acl::{Operation, ResourceType};

pub(crate) const VERSIONS: Versions = Versions::new(0, 5);

/// KIP-588: the first version whose clients understand PRODUCER_FENCED.
const FENCED_SINCE: i16 = 2;
/// Kafka's OPERATION_NOT_ATTEMPTED: the other partitions of a request refused as a whole.
const OPERATION_NOT_ATTEMPTED: i16 = 55;

pub(crate) async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    version: i16,
    request: AddPartitionsToTxnRequest,
) -> Option<AddPartitionsToTxnResponse> {
    let mut r = AddPartitionsToTxnResponse::default();
    let authz = Authz::new(broker, ctx);
    if version <= 3 {
        let id = request.v3_and_below_transactional_id.0.to_string();
        let results = add(
            broker,
            Some(&authz),
            &id,
            request.v3_and_below_producer_id.0,
            request.v3_and_below_producer_epoch,
            &request.v3_and_below_topics,
            false,
            version,
        )
        .await;
        r.results_by_topic_v3_and_below = results;
        return Some(r);
    }
    if !authz.allows_cluster(Operation::ClusterAction) {
        r.error_code = ErrorCode::ClusterAuthorizationFailed.code();
        return Some(r);
    }
    for txn in &request.transactions {
        let id = txn.transactional_id.0.to_string();
        let topic_results = add(
            broker,
            None,
            &id,
            txn.producer_id.0,
            txn.producer_epoch,
            &txn.topics,
            txn.verify_only,
            version,
        )
        .await;
        let mut res = AddPartitionsToTxnResult::default();
        res.transactional_id = txn.transactional_id.clone();
        res.topic_results = topic_results;
        r.results_by_transaction.push(res);
    }
    Some(r)
}

/// One transaction's partitions; `client` is the request's authorization when it came from a
/// client (v0–3), which must be allowed to write to the transactional id and each topic.
#[expect(clippy::too_many_arguments, reason = "one transaction of either request layout")]
async fn add(
    broker: &Arc<Broker>,
    client: Option<&Authz<'_>>,
    id: &str,
    producer_id: i64,
    epoch: i16,
    topics: &[AddPartitionsToTxnTopic],
    verify_only: bool,
    version: i16,
) -> Vec<AddPartitionsToTxnTopicResult> {
    let partitions: Vec<(String, i32)> = topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(move |p| (t.name.0.to_string(), *p)))
        .collect();
    if let Some(authz) = client
        && !authz.allows(Operation::Write, ResourceType::TransactionalId, id)
    {
        let code = ErrorCode::TransactionalIdAuthorizationFailed.code();
        return group_by_topic(partitions.into_iter().map(|tp| (tp, code)));
    }
    let writable = |topic: &str| {
        client.is_none_or(|authz| {
            topic != OFFSETS_TOPIC
                && topic != TRANSACTION_STATE_TOPIC
                && authz.allows_topic(Operation::Write, topic)
        })
    };
    let image = broker.metadata.image();
    let refusal = |(t, p): &(String, i32)| {
        if !writable(t) {
            Some(ErrorCode::TopicAuthorizationFailed.code())
        } else if image.topic(t).is_none_or(|tp| *p < 0 || *p as usize >= tp.partitions.len()) {
            Some(ErrorCode::UnknownTopicOrPartition.code())
        } else {
            None
        }
    };
    let refused: Vec<Option<i16>> = partitions.iter().map(refusal).collect();
    let codes: Vec<((String, i32), i16)> = if refused.iter().any(Option::is_some) {
        partitions
            .iter()
            .zip(&refused)
            .map(|(tp, code)| (tp.clone(), code.unwrap_or(OPERATION_NOT_ATTEMPTED)))
            .collect()
    } else if verify_only {
        match broker.txns.verify_partitions(id, producer_id, epoch, &partitions) {
            Ok(rows) => rows.into_iter().map(|(tp, c)| (tp, c.code())).collect(),
            Err(c) => partitions.iter().map(|tp| (tp.clone(), c.code())).collect(),
        }
    } else {
        let code = match broker.txns.add_partitions(id, producer_id, epoch, &partitions).await {
            Ok(()) => ErrorCode::None,
            Err(c) => c.fenced_for(version, FENCED_SINCE),
        };
        partitions.iter().map(|tp| (tp.clone(), code.code())).collect()
    };
    group_by_topic(codes.into_iter())
}

/// Partition results grouped by topic, in the order the topics first appear.
fn group_by_topic(
    codes: impl Iterator<Item = ((String, i32), i16)>,
) -> Vec<AddPartitionsToTxnTopicResult> {
    let mut out: Vec<AddPartitionsToTxnTopicResult> = Vec::new();
    for ((topic, partition), code) in codes {
        let mut pr = AddPartitionsToTxnPartitionResult::default();
        pr.partition_index = partition;
        pr.partition_error_code = code;
        match out.iter_mut().find(|t| t.name.0.as_str() == topic) {
            Some(t) => t.results_by_partition.push(pr),
            None => {
                let mut t = AddPartitionsToTxnTopicResult::default();
                t.name = topic_name(&topic);
                t.results_by_partition.push(pr);
                out.push(t);
            }
        }
    }
    out
}
