//! Produce v0–2 (Sarama with `config.Version` below 0.11, kafka-go 0.2, kcat with
//! `broker.version.fallback=0.9.0`): the request is v3's without `transactional_id`, and each
//! partition carries a magic 0/1 message set. Each set is up-converted into one v2 batch
//! (`log::message_set`) and appended by the ordinary Produce handler, so offsets, timestamps
//! (`message.timestamp.type`), `compression.type`, `max.message.bytes` and acks behave as for a
//! modern producer. A set that cannot be read is refused for its partition alone, with Kafka's
//! code: CORRUPT_MESSAGE for a bad CRC or truncation, UNSUPPORTED_COMPRESSION_TYPE for zstd,
//! INVALID_RECORD for a v2 batch or a malformed wrapper.
//!
//! Response: v0 `[name [index error_code base_offset]]`; v1 adds `throttle_time_ms` at the end;
//! v2 adds `log_append_time_ms` after each `base_offset`.

use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse};
use kafka_protocol::protocol::Decodable;

use crate::broker::Broker;
use crate::error_code::ErrorCode;
use crate::kafka::handlers::produce;
use crate::kafka::response::Body;
use crate::kafka::router::Reply;
use crate::kafka::router::RequestContext;
use crate::log::message_set::{self, MessageSetError};

/// The modern version the request is answered at (v3: v2's fields plus `transactional_id`).
const ANSWERED_AT: i16 = 3;

pub(super) async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    version: i16,
    raw: Bytes,
) -> Result<Option<Body>, String> {
    let mut v3 = BytesMut::with_capacity(raw.len() + 2);
    v3.put_i16(-1); // transactional_id: null
    v3.extend_from_slice(&raw);
    let mut request = ProduceRequest::decode(&mut v3.freeze(), ANSWERED_AT)
        .map_err(|e| format!("undecodable Produce v{version} request: {e}"))?;
    let mut refused = produce::Refused::new();
    let mut converted = 0usize;
    for topic in &mut request.topic_data {
        for pd in &mut topic.partition_data {
            let Some(records) = pd.records.take() else { continue };
            match up_convert(&records) {
                Ok((batch, n)) => {
                    converted += n;
                    pd.records = Some(Bytes::from(batch));
                }
                Err((code, why)) => {
                    refused.insert((topic.name.0.to_string(), pd.index), (code, why));
                    pd.records = Some(Bytes::new());
                }
            }
        }
    }
    broker.metrics.add_produce_conversions(converted);
    match produce::handle_refusing(broker, ctx, ANSWERED_AT, request, refused).await {
        Reply::Send(response) => Ok(Some(encode(&response, version))),
        Reply::Nothing => Ok(None),
        Reply::Close(why) => Err(why),
    }
}

/// One partition's message set as a v2 batch and its record count, or its refusal.
fn up_convert(records: &[u8]) -> Result<(Vec<u8>, usize), (ErrorCode, String)> {
    if message_set::magic_of(records) == Some(2) {
        return Err((
            ErrorCode::InvalidRecord,
            "Produce requests below v3 may only carry message format v0 or v1".into(),
        ));
    }
    let set = message_set::parse(records).map_err(|e| (refusal_code(&e), e.to_string()))?;
    let n = set.records.len();
    let batch = message_set::to_batch(&set).map_err(|e| (refusal_code(&e), e.to_string()))?;
    Ok((batch, n))
}

fn refusal_code(e: &MessageSetError) -> ErrorCode {
    match e {
        MessageSetError::Crc { .. }
        | MessageSetError::Truncated(_)
        | MessageSetError::Empty
        | MessageSetError::Records(_) => ErrorCode::CorruptMessage,
        MessageSetError::UnsupportedCodec(4) => ErrorCode::UnsupportedCompressionType,
        MessageSetError::UnsupportedCodec(_) => ErrorCode::CorruptMessage,
        MessageSetError::Magic(_)
        | MessageSetError::MixedMagic(..)
        | MessageSetError::NestedCompression
        | MessageSetError::InnerMagic { .. }
        | MessageSetError::EmptyWrapper
        | MessageSetError::TooLarge => ErrorCode::InvalidRecord,
    }
}

fn encode(response: &ProduceResponse, version: i16) -> Body {
    let mut out = BytesMut::new();
    out.put_i32(response.responses.len() as i32);
    for t in &response.responses {
        let name = t.name.0.as_bytes();
        out.put_i16(name.len() as i16);
        out.put_slice(name);
        out.put_i32(t.partition_responses.len() as i32);
        for p in &t.partition_responses {
            out.put_i32(p.index);
            out.put_i16(p.error_code);
            out.put_i64(p.base_offset);
            if version >= 2 {
                out.put_i64(p.log_append_time_ms);
            }
        }
    }
    if version >= 1 {
        out.put_i32(response.throttle_time_ms);
    }
    let mut body = Body::default();
    body.push_bytes(out.freeze());
    body
}
