//! ListOffsets v0: request `replica_id i32, [topic string, [partition i32, timestamp i64,
//! max_num_offsets i32]]`; response `[topic string, [partition i32, error_code i16, [offset
//! i64]]]`. Answered through the v1 handler: the offset array holds the one offset it finds
//! (none when it finds none or `max_num_offsets` is 0).

use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::{BrokerId, ListOffsetsRequest, TopicName};
use kafka_protocol::protocol::StrBytes;

use super::Reader;
use crate::broker::Broker;
use crate::kafka::handlers::list_offsets;
use crate::kafka::response::Body;
use crate::kafka::router::RequestContext;

/// The request, decoded: the v1 request and each partition's `max_num_offsets`.
pub(super) fn decode(body: Bytes) -> Result<(ListOffsetsRequest, Vec<Vec<i32>>), String> {
    let mut r = Reader(body);
    let mut req = ListOffsetsRequest::default();
    req.replica_id = BrokerId(r.i32()?);
    let mut limits = Vec::new();
    for _ in 0..r.array_len(6)? {
        let mut t = ListOffsetsTopic::default();
        t.name = TopicName(StrBytes::from_string(r.string()?));
        let mut topic_limits = Vec::new();
        for _ in 0..r.array_len(16)? {
            let mut p = ListOffsetsPartition::default();
            p.partition_index = r.i32()?;
            p.timestamp = r.i64()?;
            p.current_leader_epoch = -1;
            topic_limits.push(r.i32()?);
            t.partitions.push(p);
        }
        req.topics.push(t);
        limits.push(topic_limits);
    }
    Ok((req, limits))
}

pub(super) async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    body: Bytes,
) -> Result<Body, String> {
    let (req, limits) = decode(body)?;
    let resp = list_offsets::handle(broker, ctx, 1, req)
        .await
        .ok_or_else(|| "ListOffsets gave no answer".to_string())?;
    let mut out = BytesMut::new();
    out.put_i32(resp.topics.len() as i32);
    for (t, topic_limits) in resp.topics.iter().zip(limits.iter()) {
        let name = t.name.0.as_bytes();
        out.put_i16(name.len() as i16);
        out.put_slice(name);
        out.put_i32(t.partitions.len() as i32);
        for (p, limit) in t.partitions.iter().zip(topic_limits.iter()) {
            out.put_i32(p.partition_index);
            out.put_i16(p.error_code);
            let found = p.error_code == 0 && p.offset >= 0 && *limit > 0;
            out.put_i32(i32::from(found));
            if found {
                out.put_i64(p.offset);
            }
        }
    }
    let mut b = Body::default();
    b.push_bytes(out.freeze());
    Ok(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_v0_request_decodes_and_garbage_is_an_error() {
        let mut b = BytesMut::new();
        b.put_i32(-1);
        b.put_i32(1);
        b.put_i16(5);
        b.put_slice(b"burro");
        b.put_i32(1);
        b.put_i32(3);
        b.put_i64(-1);
        b.put_i32(1);
        let (req, limits) = decode(b.clone().freeze()).expect("decodes");
        assert_eq!(req.topics[0].name.0.as_str(), "burro");
        assert_eq!(req.topics[0].partitions[0].partition_index, 3);
        assert_eq!(req.topics[0].partitions[0].timestamp, -1);
        assert_eq!(limits, vec![vec![1]]);
        for cut in 0..b.len() {
            assert!(decode(b.clone().freeze().slice(..cut)).is_err(), "cut at {cut}");
        }
        let mut huge = BytesMut::new();
        huge.put_i32(-1);
        huge.put_i32(i32::MAX);
        assert!(decode(huge.freeze()).is_err(), "a huge count is refused before allocating");
    }
}
