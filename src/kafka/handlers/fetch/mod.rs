//! Fetch (key 1): reads whole batches below the high watermark (`read_committed`: below the last
//! stable offset, with the aborted transactions in range) from each requested partition,
//! bounded by the request's `max_bytes` and each partition's `partition_max_bytes`, and long-polls
//! (up to `max_wait_ms`) until `min_bytes` are available. Waiting costs no polling: the handler
//! sleeps on the high watermarks of the partitions it asked for, so only their appends wake it.
//! Topics are addressed by name up to v12 and by id from v13. Fetch sessions (KIP-227) are
//! declined with session id 0; clients then send full fetches. The first partition with data
//! returns at least one whole batch even when it is larger than the limits (KIP-74).
//!
//! A topic with `compression.type=zstd` answers Fetch below v10 with UNSUPPORTED_COMPRESSION_TYPE,
//! as Kafka (KIP-110).
//!
//! Fetch from the closest replica (KIP-392), from v11: a follower in the ISR serves consumers up
//! to the high watermark it knows (one outside the ISR answers NOT_LEADER_OR_FOLLOWER, so the
//! consumer goes back to the leader; an offset past its log, OFFSET_OUT_OF_RANGE, which clients
//! also answer by asking the leader). With `replica.selector.class=...RackAwareReplicaSelector`
//! the leader answers a consumer whose `rack_id` names another broker's rack with that in-sync
//! follower as `preferred_read_replica` and no records; every Kafka Fetch is a consumer's, since
//! followers replicate over gRPC.
//!
//! Records are located under each partition's log lock and sent after it: the answer carries
//! file slices, not copies, and [`encode`] frames them so the connection can `sendfile` them.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

pub(crate) use encode::FetchReply;
use kafka_protocol::messages::fetch_request::FetchTopic;
use kafka_protocol::messages::fetch_response::{
    AbortedTransaction, FetchableTopicResponse, PartitionData,
};
use kafka_protocol::messages::{BrokerId, FetchRequest, FetchResponse, ProducerId};
use tokio::time::Instant;

use super::{Authz, check_leader_epoch};
use crate::broker::Broker;
use crate::error_code::ErrorCode;
use crate::kafka::router::{RequestContext, Versions};
use crate::log::{FileSlice, ReadError};
use crate::quota::client::QuotaKind;
use crate::replica::Isolation;
use crate::replica::partition::ConsumerRead;
use crate::security::acl::Operation;
use crate::types::Offset;

mod encode;

pub(crate) const VERSIONS: Versions = Versions::new(4, 17);

/// The first Fetch version whose clients read zstd (KIP-110).
const ZSTD_MIN_FETCH_VERSION: i16 = 10;

/// Longest a fetch may wait, whatever the client asks: bounds how long a request holds its
/// connection (Kafka clients use 500 ms by default).
pub(crate) const FETCH_WAIT_MS_MAX: u64 = 30_000;

pub(crate) async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    version: i16,
    request: FetchRequest,
) -> Option<FetchReply> {
    let denied = unreadable_topics(broker, ctx, version, &request);
    let mut request = request;
    // consumer_byte_rate: never ask for more than the quota allows in one window (Kafka's
    // getMaxValueInQuotaWindow), or the answer is certain to be throttled.
    if let Some(most) = broker.quotas.max_fetch_bytes(&broker.metadata.image(), ctx.quota_client())
    {
        request.max_bytes = request.max_bytes.min(most.min(i32::MAX as usize) as i32);
    }
    let wait = Duration::from_millis((request.max_wait_ms.max(0) as u64).min(FETCH_WAIT_MS_MAX));
    let deadline = Instant::now() + wait;
    let min_bytes = request.min_bytes.max(0) as usize;
    let mut stop = broker.shutdown_signal();
    // Subscribed only once a read comes up short, then read again before waiting: a high
    // watermark that moved between the first read and the subscription is not missed, and a
    // fetch answered at once costs no subscriptions.
    let mut watches: Option<Vec<tokio::sync::watch::Receiver<i64>>> = None;
    loop {
        for w in watches.iter_mut().flatten() {
            w.borrow_and_update();
        }
        let (reply, bytes, errors) = read_all(broker, version, &request, &denied);
        if bytes >= min_bytes.max(1) || errors || Instant::now() >= deadline || *stop.borrow() {
            return Some(throttled(broker, ctx, reply, bytes));
        }
        let Some(ws) = watches.as_mut() else {
            watches = Some(high_watermarks(broker, version, &request));
            continue;
        };
        let waiting = std::time::Instant::now();
        tokio::select! {
            () = crate::replica::wait_for_any_change(ws, deadline) => {}
            _ = stop.changed() => {}
        }
        ctx.quota.idle(waiting.elapsed());
    }
}

/// Applies the client's quotas to a fetch answer carrying `bytes` of records, as Kafka does:
/// within them, the answer as it is; over the byte rate or the request quota, an empty answer
/// with `throttle_time_ms` (the bytes not sent are not counted) and a muted connection.
fn throttled(broker: &Broker, ctx: &RequestContext, reply: FetchReply, bytes: usize) -> FetchReply {
    let image = broker.metadata.image();
    let now = crate::clock::now_ms();
    let client = ctx.quota_client();
    let bandwidth = broker.quotas.record(&image, client, QuotaKind::Fetch, bytes as f64, now);
    let throttle = bandwidth.max(ctx.quota.owed_ms);
    if throttle <= 0 {
        return reply;
    }
    broker.quotas.unrecord(&image, client, QuotaKind::Fetch, bytes as f64, now);
    ctx.quota.throttle(throttle);
    let mut response = FetchResponse::default();
    response.throttle_time_ms = throttle.min(i64::from(i32::MAX)) as i32;
    response.session_id = reply.response.session_id;
    FetchReply { response, records: Vec::new() }
}

/// The high-watermark watch of every requested partition hosted here.
fn high_watermarks(
    broker: &Broker,
    version: i16,
    request: &FetchRequest,
) -> Vec<tokio::sync::watch::Receiver<i64>> {
    let image = broker.metadata.image();
    let mut out = Vec::new();
    for topic in &request.topics {
        let Some(name) = resolve_name(&image, version, topic) else { continue };
        for fp in &topic.partitions {
            if let Some(part) = broker.replicas.get(&name, fp.partition) {
                out.push(part.subscribe_high_watermark());
            }
        }
    }
    out
}

/// The requested topics the principal may not READ (answered TOPIC_AUTHORIZATION_FAILED).
fn unreadable_topics(
    broker: &Broker,
    ctx: &RequestContext,
    version: i16,
    request: &FetchRequest,
) -> HashSet<String> {
    let authz = Authz::new(broker, ctx);
    if !authz.enabled() {
        return HashSet::new();
    }
    let image = broker.metadata.image();
    request
        .topics
        .iter()
        .filter_map(|t| resolve_name(&image, version, t))
        .filter(|name| !authz.allows_topic(Operation::Read, name))
        .collect()
}

/// One pass over every requested partition: the answer, the bytes it carries and whether any
/// partition had an error (which answers at once, as in Kafka).
fn read_all(
    broker: &Broker,
    version: i16,
    request: &FetchRequest,
    denied: &HashSet<String>,
) -> (FetchReply, usize, bool) {
    let image = broker.metadata.image();
    let mut total = 0usize;
    let mut errors = false;
    let max_bytes = request.max_bytes.max(0) as usize;
    let mut response = FetchResponse::default();
    let mut records = Vec::with_capacity(request.topics.len());
    for topic in &request.topics {
        let name = resolve_name(&image, version, topic);
        let mut t = FetchableTopicResponse::default();
        if version >= 13 {
            t.topic_id = topic.topic_id;
        } else {
            t.topic = topic.topic.clone();
        }
        let mut topic_records = Vec::with_capacity(topic.partitions.len());
        for fp in &topic.partitions {
            let mut p = PartitionData::default();
            p.partition_index = fp.partition;
            p.high_watermark = -1;
            p.last_stable_offset = -1;
            p.log_start_offset = -1;
            p.preferred_read_replica = BrokerId(-1);
            p.aborted_transactions = Some(Vec::new());
            p.records = Some(Default::default());
            let limit =
                (fp.partition_max_bytes.max(0) as usize).min(max_bytes.saturating_sub(total));
            let mut slice = FileSlice::default();
            let isolation = Isolation::from_wire(request.isolation_level);
            let client_rack = (version >= 11).then_some(request.rack_id.as_str());
            let args =
                ReadArgs { version, limit, first_with_data: total == 0, isolation, client_rack };
            let served = match name.as_deref() {
                Some(n) if denied.contains(n) => Err(ErrorCode::TopicAuthorizationFailed),
                _ => read_partition(broker, &image, name.as_deref(), fp, &args),
            };
            match served {
                Ok(Served { read, preferred, as_follower }) => {
                    if let Some(replica) = preferred {
                        p.preferred_read_replica = BrokerId(replica.0);
                    }
                    if as_follower {
                        broker.metrics.add_follower_fetch_bytes(read.records.len());
                    }
                    total += read.records.len();
                    p.high_watermark = read.high_watermark.0;
                    p.last_stable_offset = read.last_stable_offset.0;
                    p.log_start_offset = read.log_start_offset.0;
                    if let Some(aborted) = read.aborted {
                        p.aborted_transactions = Some(
                            aborted
                                .into_iter()
                                .map(|t| {
                                    AbortedTransaction::default()
                                        .with_producer_id(ProducerId(t.producer_id.0))
                                        .with_first_offset(t.first_offset.0)
                                })
                                .collect(),
                        );
                    }
                    slice = read.records;
                }
                Err(code) => {
                    errors = true;
                    p.error_code = code.code();
                }
            }
            t.partitions.push(p);
            topic_records.push(slice);
        }
        response.responses.push(t);
        records.push(topic_records);
    }
    (FetchReply { response, records }, total, errors)
}

fn resolve_name(
    image: &crate::metadata::image::MetadataImage,
    version: i16,
    topic: &FetchTopic,
) -> Option<String> {
    if version >= 13 {
        image.topic_by_id(&topic.topic_id).map(|t| t.name.clone())
    } else {
        Some(topic.topic.0.to_string())
    }
}

/// How one partition is read, the same for every partition of a request.
struct ReadArgs<'a> {
    version: i16,
    limit: usize,
    first_with_data: bool,
    isolation: Isolation,
    /// v11+: the consumer's `client.rack` (empty when it set none).
    client_rack: Option<&'a str>,
}

/// One partition's answer.
struct Served {
    read: ConsumerRead,
    /// KIP-392: the follower the consumer should fetch from instead (no records then).
    preferred: Option<crate::types::NodeId>,
    /// Served by this broker as a follower (counted in `samsa_follower_fetch_bytes`).
    as_follower: bool,
}

fn read_partition(
    broker: &Broker,
    image: &crate::metadata::image::MetadataImage,
    topic: Option<&str>,
    fp: &kafka_protocol::messages::fetch_request::FetchPartition,
    args: &ReadArgs<'_>,
) -> Result<Served, ErrorCode> {
    let version = args.version;
    let unknown =
        if version >= 13 { ErrorCode::UnknownTopicId } else { ErrorCode::UnknownTopicOrPartition };
    let topic = topic.ok_or(unknown)?;
    let part = broker.replicas.lookup(topic, fp.partition).map_err(|m| m.code(unknown))?;
    let as_follower = !part.is_leader();
    if as_follower && (args.client_rack.is_none() || !part.in_isr()) {
        return Err(ErrorCode::NotLeaderOrFollower);
    }
    if version >= 9 {
        check_leader_epoch(fp.current_leader_epoch, part.leader_epoch())?;
    }
    // Kafka refuses a zstd topic to clients older than zstd (Fetch v10, KIP-110).
    if version < ZSTD_MIN_FETCH_VERSION && part.stores_zstd() {
        return Err(ErrorCode::UnsupportedCompressionType);
    }
    let preferred = match args.client_rack {
        Some(rack) if !as_follower && !rack.is_empty() && broker.config.rack_aware_reads => part
            .preferred_read_replica(fp.fetch_offset, |node| {
                image.brokers.get(&node).and_then(|b| b.rack.as_deref()) == Some(rack)
            }),
        _ => None,
    };
    // A consumer sent elsewhere gets the offsets and no records.
    let limit = if preferred.is_some() { 0 } else { args.limit };
    let first_with_data = args.first_with_data && preferred.is_none();
    // Reading past the high watermark but within the log is allowed for an offset equal to the
    // high watermark (empty answer); beyond the log end is out of range.
    match part.read_for_consumer(Offset(fp.fetch_offset), limit, first_with_data, args.isolation) {
        Ok(read) => Ok(Served { read, preferred, as_follower }),
        Err(ReadError::OffsetOutOfRange { .. }) => Err(ErrorCode::OffsetOutOfRange),
        Err(ReadError::Io(e)) => {
            tracing::error!(partition = %part.tp, error = %e, "read failed");
            Err(ErrorCode::KafkaStorageError)
        }
    }
}
