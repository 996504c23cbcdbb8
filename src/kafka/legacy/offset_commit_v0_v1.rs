//! OffsetCommit v0 and v1 (Sarama 1.2x sends v1 when `Offsets.Retention` is 0), decoded into
//! v2 (the response layout is v2's, unchanged until v3 added `throttle_time_ms`):
//! ```text
//! v0: group_id string, [topic string, [partition i32, offset i64, metadata string]]
//! v1: group_id string, generation_id i32, member_id string,
//!     [topic string, [partition i32, offset i64, commit_timestamp i64, metadata string]]
//! ```
//! v0 has no generation: it commits as a standalone consumer (generation -1, no member), as
//! Kafka stores it. v1's per-partition commit timestamp is ignored (Kafka 3 ignores it too and
//! stamps the commit itself).

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::{GroupId, OffsetCommitRequest, TopicName};
use kafka_protocol::protocol::{Encodable, StrBytes};

use super::Reader;
use crate::broker::Broker;
use crate::kafka::handlers::offset_commit;
use crate::kafka::response::Body;
use crate::kafka::router::RequestContext;

pub(super) fn decode(body: Bytes, version: i16) -> Result<OffsetCommitRequest, String> {
    let mut r = Reader(body);
    let mut req = OffsetCommitRequest::default();
    req.group_id = GroupId(StrBytes::from_string(r.string()?));
    if version >= 1 {
        req.generation_id_or_member_epoch = r.i32()?;
        req.member_id = StrBytes::from_string(r.string()?);
    } else {
        req.generation_id_or_member_epoch = -1;
    }
    req.retention_time_ms = -1;
    for _ in 0..r.array_len(6)? {
        let mut t = OffsetCommitRequestTopic::default();
        t.name = TopicName(StrBytes::from_string(r.string()?));
        for _ in 0..r.array_len(14)? {
            let mut p = OffsetCommitRequestPartition::default();
            p.partition_index = r.i32()?;
            p.committed_offset = r.i64()?;
            if version >= 1 {
                let _commit_timestamp = r.i64()?;
            }
            p.committed_leader_epoch = -1;
            p.committed_metadata = Some(StrBytes::from_string(r.string()?));
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
    let req = decode(raw, version)?;
    let resp =
        offset_commit::handle(broker, ctx, 2, req).await.ok_or("OffsetCommit gave no answer")?;
    let mut out = BytesMut::new();
    resp.encode(&mut out, 2).map_err(|e| format!("cannot encode the response: {e}"))?;
    let mut b = Body::default();
    b.push_bytes(out.freeze());
    Ok(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BufMut;

    fn string(b: &mut BytesMut, s: &str) {
        b.put_i16(s.len() as i16);
        b.put_slice(s.as_bytes());
    }

    #[test]
    fn v0_and_v1_commits_decode_and_truncations_are_errors() {
        for version in [0, 1] {
            let mut b = BytesMut::new();
            string(&mut b, "g");
            if version == 1 {
                b.put_i32(4);
                string(&mut b, "m-1");
            }
            b.put_i32(1);
            string(&mut b, "t");
            b.put_i32(1);
            b.put_i32(2);
            b.put_i64(42);
            if version == 1 {
                b.put_i64(-1);
            }
            string(&mut b, "meta");
            let req = decode(b.clone().freeze(), version).expect("decodes");
            assert_eq!(req.group_id.0.as_str(), "g");
            let expected_generation = if version == 1 { 4 } else { -1 };
            assert_eq!(req.generation_id_or_member_epoch, expected_generation);
            let p = &req.topics[0].partitions[0];
            assert_eq!((p.partition_index, p.committed_offset), (2, 42));
            assert_eq!(p.committed_metadata.as_ref().map(|m| m.as_str()), Some("meta"));
            for cut in 0..b.len() {
                assert!(decode(b.clone().freeze().slice(..cut), version).is_err());
            }
        }
    }
}
