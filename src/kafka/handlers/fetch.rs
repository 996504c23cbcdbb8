//! Fetch (key 1): reads whole batches below the high watermark from each requested partition,
//! bounded by the request's `max_bytes` and each partition's `partition_max_bytes`, and long-polls
//! (up to `max_wait_ms`) until `min_bytes` are available. Waiting costs no polling: the handler
//! sleeps on the broker's append notification. Topics are addressed by name up to v12 and by id
//! from v13. Fetch sessions (KIP-227) are declined with session id 0; clients then send full
//! fetches. The first partition with data returns at least one whole batch even when it is
//! larger than the limits (KIP-74).

use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::messages::fetch_request::FetchTopic;
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::{BrokerId, FetchRequest, FetchResponse};
use tokio::time::Instant;

use super::check_leader_epoch;
use crate::broker::Broker;
use crate::kafka::error_code::ErrorCode;
use crate::kafka::router::Versions;
use crate::log::ReadError;
use crate::types::Offset;

pub const VERSIONS: Versions = Versions::new(4, 16);

/// Longest a fetch may wait, whatever the client asks: bounds how long a request holds its
/// connection (Kafka clients use 500 ms by default).
pub const FETCH_WAIT_MS_MAX: u64 = 30_000;

pub async fn handle(
    broker: &Arc<Broker>,
    version: i16,
    request: FetchRequest,
) -> Option<FetchResponse> {
    let wait = Duration::from_millis((request.max_wait_ms.max(0) as u64).min(FETCH_WAIT_MS_MAX));
    let deadline = Instant::now() + wait;
    let min_bytes = request.min_bytes.max(0) as usize;
    let mut stop = broker.shutdown_signal();
    loop {
        // Register for the next append before reading, so none is missed in between.
        let notified = broker.data_appended.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let (response, bytes, errors) = read_all(broker, version, &request);
        if bytes >= min_bytes.max(1) || errors || Instant::now() >= deadline || *stop.borrow() {
            return Some(response);
        }
        tokio::select! {
            _ = &mut notified => {}
            _ = tokio::time::sleep_until(deadline) => {}
            _ = stop.changed() => {}
        }
    }
}

/// One pass over every requested partition: the response, the bytes it carries and whether any
/// partition had an error (which answers at once, as in Kafka).
fn read_all(broker: &Broker, version: i16, request: &FetchRequest) -> (FetchResponse, usize, bool) {
    let image = broker.metadata.image();
    let mut total = 0usize;
    let mut errors = false;
    let max_bytes = request.max_bytes.max(0) as usize;
    let mut response = FetchResponse::default();
    for topic in &request.topics {
        let name = resolve_name(&image, version, topic);
        let mut t = FetchableTopicResponse::default();
        if version >= 13 {
            t.topic_id = topic.topic_id;
        } else {
            t.topic = topic.topic.clone();
        }
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
            match read_partition(broker, name.as_deref(), version, fp, limit, total == 0) {
                Ok((records, hw, log_start)) => {
                    total += records.len();
                    p.high_watermark = hw.0;
                    p.last_stable_offset = hw.0;
                    p.log_start_offset = log_start.0;
                    p.records = Some(records);
                }
                Err(code) => {
                    errors = true;
                    p.error_code = code.code();
                }
            }
            t.partitions.push(p);
        }
        response.responses.push(t);
    }
    (response, total, errors)
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

fn read_partition(
    broker: &Broker,
    topic: Option<&str>,
    version: i16,
    fp: &kafka_protocol::messages::fetch_request::FetchPartition,
    limit: usize,
    first_with_data: bool,
) -> Result<(bytes::Bytes, Offset, Offset), ErrorCode> {
    let unknown =
        if version >= 13 { ErrorCode::UnknownTopicId } else { ErrorCode::UnknownTopicOrPartition };
    let topic = topic.ok_or(unknown)?;
    let part = broker.replicas.lookup(topic, fp.partition).map_err(|m| m.code(unknown))?;
    if !part.is_leader() {
        return Err(ErrorCode::NotLeaderOrFollower);
    }
    if version >= 9 {
        check_leader_epoch(fp.current_leader_epoch, part.leader_epoch())?;
    }
    let hw = part.high_watermark();
    let log = part.log();
    let log_start = log.log_start_offset();
    // Reading past the high watermark but within the log is allowed for an offset equal to the
    // high watermark (empty answer); beyond the log end is out of range.
    match log.read(Offset(fp.fetch_offset), hw, limit, first_with_data) {
        Ok(records) => Ok((records, hw, log_start)),
        Err(ReadError::OffsetOutOfRange { .. }) => Err(ErrorCode::OffsetOutOfRange),
        Err(ReadError::Io(e)) => {
            tracing::error!(partition = %part.tp, error = %e, "read failed");
            Err(ErrorCode::KafkaStorageError)
        }
    }
}
