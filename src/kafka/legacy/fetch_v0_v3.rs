//! Fetch v0–3 (Sarama and kafka-go with old versions, Burrow's era of clients, kcat with
//! `broker.version.fallback=0.9.0`): answered by the ordinary Fetch handler at v4 with
//! `read_uncommitted` (isolation arrived in v4), then each partition's batches are down-converted
//! to the message format the version reads: magic 0 for v0–1, magic 1 for v2–3. The log is not
//! changed; conversion costs a read of the records into memory and a re-encode per fetch (no
//! `sendfile`), which the `samsa bench`-style script `scripts/bench-downconvert.sh` measures.
//! A partition whose data is zstd-compressed answers UNSUPPORTED_COMPRESSION_TYPE, and one whose
//! topic sets `message.downconversion.enable=false` UNSUPPORTED_VERSION, as Kafka.
//!
//! Request: `replica_id max_wait_ms min_bytes [max_bytes (v3)] [topic [partition fetch_offset
//! partition_max_bytes]]`. Response: `[throttle_time_ms (v1+)] [topic [partition error_code
//! high_watermark records]]`.

use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::{BrokerId, FetchRequest, TopicName};
use kafka_protocol::protocol::StrBytes;

use super::Reader;
use crate::broker::Broker;
use crate::error_code::ErrorCode;
use crate::kafka::handlers::fetch;
use crate::kafka::response::Body;
use crate::kafka::router::RequestContext;
use crate::log::message_set::{self, DownConvertError};

/// The modern version the request is answered at.
const ANSWERED_AT: i16 = 4;

/// The message format a Fetch version reads.
fn magic_for(version: i16) -> i8 {
    if version >= 2 { 1 } else { 0 }
}

pub(super) async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    version: i16,
    raw: Bytes,
) -> Result<Option<Body>, String> {
    let request = decode(version, raw)?;
    let offsets: Vec<Vec<(i64, i32)>> = request
        .topics
        .iter()
        .map(|t| t.partitions.iter().map(|p| (p.fetch_offset, p.partition_max_bytes)).collect())
        .collect();
    let reply =
        fetch::handle(broker, ctx, ANSWERED_AT, request).await.ok_or("Fetch gave no answer")?;
    let magic = magic_for(version);
    let mut out = BytesMut::new();
    if version >= 1 {
        out.put_i32(reply.response.throttle_time_ms);
    }
    out.put_i32(reply.response.responses.len() as i32);
    let mut converted = 0usize;
    for ((t, slices), offsets) in reply.response.responses.iter().zip(reply.records).zip(offsets) {
        let name = t.topic.0.as_bytes();
        out.put_i16(name.len() as i16);
        out.put_slice(name);
        out.put_i32(t.partitions.len() as i32);
        for ((p, slice), (fetch_offset, max_bytes)) in t.partitions.iter().zip(slices).zip(offsets)
        {
            let mut error_code = p.error_code;
            let mut records = Vec::new();
            let allowed = broker
                .replicas
                .get(&t.topic.0, p.partition_index)
                .is_none_or(|part| part.down_conversion_enabled());
            if error_code == 0 && !allowed {
                error_code = ErrorCode::UnsupportedVersion.code();
            } else if error_code == 0 && !slice.is_empty() {
                let mut stored = BytesMut::with_capacity(slice.len());
                match slice.read_into(&mut stored) {
                    Err(e) => {
                        tracing::error!(error = %e, "reading records to down-convert failed");
                        error_code = ErrorCode::KafkaStorageError.code();
                    }
                    Ok(()) => {
                        let limit = max_bytes.max(0) as usize;
                        match message_set::down_convert(&stored, magic, fetch_offset, limit) {
                            Ok((set, n)) => {
                                records = set;
                                converted += n;
                            }
                            Err(DownConvertError::Zstd(_)) => {
                                error_code = ErrorCode::UnsupportedCompressionType.code();
                            }
                            Err(DownConvertError::Format(e)) => {
                                tracing::error!(topic = %t.topic.0, partition = p.partition_index,
                                    error = %e, "down-converting stored batches failed");
                                error_code = ErrorCode::CorruptMessage.code();
                            }
                        }
                    }
                }
            }
            out.put_i32(p.partition_index);
            out.put_i16(error_code);
            out.put_i64(p.high_watermark);
            let len = i32::try_from(records.len()).map_err(|_| "fetch answer too large")?;
            out.put_i32(len);
            out.put_slice(&records);
        }
    }
    broker.metrics.add_fetch_conversions(converted);
    let mut body = Body::default();
    body.push_bytes(out.freeze());
    Ok(Some(body))
}

fn decode(version: i16, raw: Bytes) -> Result<FetchRequest, String> {
    let mut r = Reader(raw);
    let mut request = FetchRequest::default();
    request.replica_id = BrokerId(r.i32()?);
    request.max_wait_ms = r.i32()?;
    request.min_bytes = r.i32()?;
    request.max_bytes = if version >= 3 { r.i32()? } else { i32::MAX };
    request.isolation_level = 0;
    let topics = r.array_len(2 + 4)?;
    for _ in 0..topics {
        let mut topic = FetchTopic::default();
        topic.topic = TopicName(StrBytes::from_string(r.string()?));
        let partitions = r.array_len(4 + 8 + 4)?;
        for _ in 0..partitions {
            let mut p = FetchPartition::default();
            p.partition = r.i32()?;
            p.fetch_offset = r.i64()?;
            p.partition_max_bytes = r.i32()?;
            topic.partitions.push(p);
        }
        request.topics.push(topic);
    }
    if !r.0.is_empty() {
        return Err(format!("{} bytes after a Fetch v{version} request", r.0.len()));
    }
    Ok(request)
}
