//! WriteTxnMarkers v0, answered through v1: the same fields in the non-flexible layout (v1 only
//! made the message flexible). Kafka brokers of 2.x send it; samsa's coordinators use gRPC.
//! ```text
//! request:  [producer_id i64, producer_epoch i16, transaction_result bool,
//!            [topic string, [partition i32]], coordinator_epoch i32]
//! response: [producer_id i64, [topic string, [partition i32, error_code i16]]]
//! ```

use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::write_txn_markers_request::{
    WritableTxnMarker, WritableTxnMarkerTopic,
};
use kafka_protocol::messages::{ProducerId, TopicName, WriteTxnMarkersRequest};
use kafka_protocol::protocol::StrBytes;

use super::Reader;
use crate::broker::Broker;
use crate::kafka::handlers::write_txn_markers;
use crate::kafka::response::Body;
use crate::kafka::router::RequestContext;

fn decode(body: Bytes) -> Result<WriteTxnMarkersRequest, String> {
    let mut r = Reader(body);
    let mut req = WriteTxnMarkersRequest::default();
    for _ in 0..r.array_len(8 + 2 + 1 + 4 + 4)? {
        let mut m = WritableTxnMarker::default();
        m.producer_id = ProducerId(r.i64()?);
        m.producer_epoch = r.i16()?;
        m.transaction_result = r.bool()?;
        for _ in 0..r.array_len(2 + 4)? {
            let mut t = WritableTxnMarkerTopic::default();
            t.name = TopicName(StrBytes::from_string(r.string()?));
            for _ in 0..r.array_len(4)? {
                t.partition_indexes.push(r.i32()?);
            }
            m.topics.push(t);
        }
        m.coordinator_epoch = r.i32()?;
        req.markers.push(m);
    }
    if !r.0.is_empty() {
        return Err(format!("{} bytes after a WriteTxnMarkers v0 request", r.0.len()));
    }
    Ok(req)
}

pub(super) async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    raw: Bytes,
) -> Result<Body, String> {
    let req = decode(raw)?;
    let resp = write_txn_markers::handle(broker, ctx, 1, req)
        .await
        .ok_or("WriteTxnMarkers gave no answer")?;
    let mut out = BytesMut::new();
    out.put_i32(resp.markers.len() as i32);
    for m in &resp.markers {
        out.put_i64(m.producer_id.0);
        out.put_i32(m.topics.len() as i32);
        for t in &m.topics {
            let name = t.name.0.as_bytes();
            out.put_i16(name.len() as i16);
            out.put_slice(name);
            out.put_i32(t.partitions.len() as i32);
            for p in &t.partitions {
                out.put_i32(p.partition_index);
                out.put_i16(p.error_code);
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
    fn a_v0_request_decodes_field_by_field() {
        let mut b = BytesMut::new();
        b.put_i32(1); // markers
        b.put_i64(42);
        b.put_i16(3);
        b.put_u8(1); // commit
        b.put_i32(1); // topics
        b.put_i16(1);
        b.put_slice(b"t");
        b.put_i32(2);
        b.put_i32(0);
        b.put_i32(5);
        b.put_i32(7); // coordinator epoch
        let req = decode(b.freeze()).expect("decodes");
        let m = &req.markers[0];
        assert_eq!((m.producer_id.0, m.producer_epoch, m.transaction_result), (42, 3, true));
        assert_eq!(m.topics[0].partition_indexes, vec![0, 5]);
        assert_eq!(m.coordinator_epoch, 7);
        assert!(decode(Bytes::from_static(&[0, 0, 0, 1, 0])).is_err(), "truncated");
    }
}
