//! Legacy versions whose layout is a modern version's, or differs only by a field at an end:
//!
//! | request | decoded as | response |
//! |---|---|---|
//! | OffsetFetch v0 | v1 (identical; v0 read ZooKeeper in Kafka < 0.8.2, storage was all it changed) | v1 |
//! | CreateTopics v1 | v2 (identical) | v2 without its leading `throttle_time_ms` |
//! | CreateTopics v0 | v2 with `validate_only = false` appended | `[name, error_code]` |
//! | DeleteTopics v0 | v1 (identical) | v1 without its leading `throttle_time_ms` |
//! | DescribeLogDirs v0 | v1 (identical; v1 only changed quota throttling) | v1 |

use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{
    CreateTopicsRequest, DeleteTopicsRequest, DescribeLogDirsRequest, OffsetFetchRequest,
};
use kafka_protocol::protocol::{Decodable, Encodable};

use crate::broker::Broker;
use crate::kafka::handlers::{create_topics, delete_topics, describe_log_dirs, offset_fetch};
use crate::kafka::response::Body;
use crate::kafka::router::RequestContext;

fn decode<T: Decodable>(mut body: Bytes, version: i16, what: &str) -> Result<T, String> {
    T::decode(&mut body, version).map_err(|e| format!("undecodable {what}: {e}"))
}

fn encode<T: Encodable>(response: &T, version: i16) -> Result<BytesMut, String> {
    let mut out = BytesMut::new();
    response.encode(&mut out, version).map_err(|e| format!("cannot encode the response: {e}"))?;
    Ok(out)
}

fn body(bytes: impl Into<Bytes>) -> Body {
    let mut b = Body::default();
    b.push_bytes(bytes.into());
    b
}

pub(super) async fn offset_fetch_v0(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    raw: Bytes,
) -> Result<Body, String> {
    let req: OffsetFetchRequest = decode(raw, 1, "OffsetFetch v0 request")?;
    let resp =
        offset_fetch::handle(broker, ctx, 1, req).await.ok_or("OffsetFetch gave no answer")?;
    Ok(body(encode(&resp, 1)?.freeze()))
}

pub(super) async fn create_topics_v0_v1(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    version: i16,
    raw: Bytes,
) -> Result<Body, String> {
    let raw = if version == 0 {
        let mut b = BytesMut::from(&raw[..]);
        b.put_u8(0); // validate_only = false
        b.freeze()
    } else {
        raw
    };
    let req: CreateTopicsRequest = decode(raw, 2, "CreateTopics v0/v1 request")?;
    let resp =
        create_topics::handle(broker, ctx, 2, req).await.ok_or("CreateTopics gave no answer")?;
    if version == 1 {
        let v2 = encode(&resp, 2)?;
        return Ok(body(v2.freeze().slice(4..)));
    }
    let mut out = BytesMut::new();
    out.put_i32(resp.topics.len() as i32);
    for t in &resp.topics {
        let name = t.name.0.as_bytes();
        out.put_i16(name.len() as i16);
        out.put_slice(name);
        out.put_i16(t.error_code);
    }
    Ok(body(out.freeze()))
}

pub(super) async fn delete_topics_v0(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    raw: Bytes,
) -> Result<Body, String> {
    let req: DeleteTopicsRequest = decode(raw, 1, "DeleteTopics v0 request")?;
    let resp =
        delete_topics::handle(broker, ctx, 1, req).await.ok_or("DeleteTopics gave no answer")?;
    let v1 = encode(&resp, 1)?;
    Ok(body(v1.freeze().slice(4..)))
}

pub(super) async fn describe_log_dirs_v0(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    raw: Bytes,
) -> Result<Body, String> {
    let req: DescribeLogDirsRequest = decode(raw, 1, "DescribeLogDirs v0 request")?;
    let resp = describe_log_dirs::handle(broker, ctx, 1, req)
        .await
        .ok_or("DescribeLogDirs gave no answer")?;
    Ok(body(encode(&resp, 1)?.freeze()))
}
