//! ListOffsets (key 2): earliest (-2), latest (-1: the high watermark, or under
//! `read_committed` the last stable offset; the log end offset for debugging tools), max timestamp (-3, v7+),
//! earliest local (-4, v8+, the log start offset here), latest tiered (-5, v9+: -1, as Kafka
//! without remote storage), and by timestamp through the time index.

use std::sync::Arc;

use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};

use super::check_leader_epoch;
use crate::broker::Broker;
use crate::error_code::ErrorCode;
use crate::kafka::handlers::Authz;
use crate::kafka::router::{RequestContext, Versions};
use crate::replica::Isolation;
use crate::security::acl::Operation;

/// Who asks, which decides what "latest" means.
#[derive(Debug, Clone, Copy)]
enum Reader {
    /// A tool with Kafka's debugging replica id: the log end offset.
    Debug,
    Consumer(Isolation),
}

pub(crate) const VERSIONS: Versions = Versions::new(1, 9);

/// Kafka's replica id for tools: LATEST then means the log end offset, not the high watermark.
const DEBUGGING_REPLICA_ID: i32 = -2;
const LATEST: i64 = -1;
const EARLIEST: i64 = -2;
const MAX_TIMESTAMP: i64 = -3;
const EARLIEST_LOCAL: i64 = -4;
/// v9 (KIP-1005): the highest offset in remote storage; with no remote tier, Kafka answers -1.
const LATEST_TIERED: i64 = -5;

pub(crate) async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    version: i16,
    request: ListOffsetsRequest,
) -> Option<ListOffsetsResponse> {
    let mut r = ListOffsetsResponse::default();
    let reader = if request.replica_id.0 == DEBUGGING_REPLICA_ID {
        Reader::Debug
    } else {
        Reader::Consumer(Isolation::from_wire(request.isolation_level))
    };
    let authz = Authz::new(broker, ctx);
    for topic in request.topics {
        let name = topic.name.0.to_string();
        let allowed = authz.allows_topic(Operation::Describe, &name);
        let mut t = ListOffsetsTopicResponse::default();
        t.name = topic.name.clone();
        for lp in topic.partitions {
            let mut p = ListOffsetsPartitionResponse::default();
            p.partition_index = lp.partition_index;
            p.timestamp = -1;
            p.offset = -1;
            if !allowed {
                p.error_code = ErrorCode::TopicAuthorizationFailed.code();
                t.partitions.push(p);
                continue;
            }
            match lookup(
                broker,
                &name,
                lp.partition_index,
                lp.current_leader_epoch,
                lp.timestamp,
                version,
                reader,
            ) {
                Ok((offset, timestamp, epoch)) => {
                    p.offset = offset;
                    p.timestamp = timestamp;
                    if version >= 4 {
                        p.leader_epoch = epoch;
                    }
                }
                Err(code) => p.error_code = code.code(),
            }
            t.partitions.push(p);
        }
        r.topics.push(t);
    }
    Some(r)
}

fn lookup(
    broker: &Broker,
    topic: &str,
    partition: i32,
    current_leader_epoch: i32,
    timestamp: i64,
    version: i16,
    reader: Reader,
) -> Result<(i64, i64, i32), ErrorCode> {
    let part = broker
        .replicas
        .lookup(topic, partition)
        .map_err(|m| m.code(ErrorCode::UnknownTopicOrPartition))?;
    if !part.is_leader() {
        return Err(ErrorCode::NotLeaderOrFollower);
    }
    if version >= 4 {
        check_leader_epoch(current_leader_epoch, part.leader_epoch())?;
    }
    let epoch = part.leader_epoch().0;
    let storage = |e: std::io::Error| {
        tracing::error!(partition = %part.tp, error = %e, "offset lookup failed");
        ErrorCode::KafkaStorageError
    };
    let offsets = part.offsets();
    Ok(match timestamp {
        LATEST => match reader {
            Reader::Debug => (offsets.log_end_offset.0, -1, epoch),
            Reader::Consumer(Isolation::ReadUncommitted) => (offsets.high_watermark.0, -1, epoch),
            Reader::Consumer(Isolation::ReadCommitted) => (offsets.last_stable_offset.0, -1, epoch),
        },
        EARLIEST | EARLIEST_LOCAL => (offsets.log_start_offset.0, -1, epoch),
        LATEST_TIERED => (-1, -1, -1),
        MAX_TIMESTAMP => part.max_timestamp().map_or((-1, -1, -1), |(o, ts)| (o.0, ts, epoch)),
        t if t >= 0 => part
            .offset_for_timestamp(t)
            .map_err(storage)?
            .map_or((-1, -1, -1), |(o, ts)| (o.0, ts, epoch)),
        _ => return Err(ErrorCode::InvalidRequest),
    })
}
