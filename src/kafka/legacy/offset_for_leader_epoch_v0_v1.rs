//! OffsetForLeaderEpoch v0 and v1 (KIP-101/KIP-279), answered through v2:
//! ```text
//! request:     [topic string, [partition i32, leader_epoch i32]]
//! response v0: [topic string, [error_code i16, partition i32, end_offset i64]]
//! response v1: [topic string, [error_code i16, partition i32, leader_epoch i32, end_offset i64]]
//! ```
//! Neither carries `current_leader_epoch` (v2+): the request is not fenced by epoch.

use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::offset_for_leader_epoch_request::{
    OffsetForLeaderPartition, OffsetForLeaderTopic,
};
use kafka_protocol::messages::{BrokerId, OffsetForLeaderEpochRequest, TopicName};
use kafka_protocol::protocol::StrBytes;

use super::Reader;
use crate::broker::Broker;
use crate::kafka::handlers::offset_for_leader_epoch;
use crate::kafka::response::Body;
use crate::kafka::router::RequestContext;

pub(super) fn decode(body: Bytes) -> Result<OffsetForLeaderEpochRequest, String> {
    let mut r = Reader(body);
    let mut req = OffsetForLeaderEpochRequest::default();
    req.replica_id = BrokerId(-1);
    for _ in 0..r.array_len(6)? {
        let mut t = OffsetForLeaderTopic::default();
        t.topic = TopicName(StrBytes::from_string(r.string()?));
        for _ in 0..r.array_len(8)? {
            let mut p = OffsetForLeaderPartition::default();
            p.partition = r.i32()?;
            p.current_leader_epoch = -1;
            p.leader_epoch = r.i32()?;
            t.partitions.push(p);
        }
        req.topics.push(t);
    }
    Ok(req)
}

pub(super) async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    version: i16,
    raw: Bytes,
) -> Result<Body, String> {
    let req = decode(raw)?;
    let resp = offset_for_leader_epoch::handle(broker, ctx, 2, req)
        .await
        .ok_or("OffsetForLeaderEpoch gave no answer")?;
    let mut out = BytesMut::new();
    out.put_i32(resp.topics.len() as i32);
    for t in &resp.topics {
        let name = t.topic.0.as_bytes();
        out.put_i16(name.len() as i16);
        out.put_slice(name);
        out.put_i32(t.partitions.len() as i32);
        for p in &t.partitions {
            out.put_i16(p.error_code);
            out.put_i32(p.partition);
            if version >= 1 {
                out.put_i32(p.leader_epoch);
            }
            out.put_i64(p.end_offset);
        }
    }
    let mut b = Body::default();
    b.push_bytes(out.freeze());
    Ok(b)
}
