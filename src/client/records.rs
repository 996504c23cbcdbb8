//! Building Produce requests and reading Fetch responses for the tools, with kafka-protocol's
//! record-batch encoder and decoder (the same code path a Rust client would use).

use anyhow::{Context, bail};
use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{BrokerId, FetchRequest, ProduceRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};

/// Parses a codec name as Kafka's `compression.type` spells it.
pub fn parse_compression(s: &str) -> anyhow::Result<Compression> {
    Ok(match s {
        "none" => Compression::None,
        "gzip" => Compression::Gzip,
        "snappy" => Compression::Snappy,
        "lz4" => Compression::Lz4,
        "zstd" => Compression::Zstd,
        _ => bail!("unknown compression '{s}': use none, gzip, snappy, lz4 or zstd"),
    })
}

/// An idempotent producer's identity and the sequence of a batch's first record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerIds {
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
}

/// The `index`-th record of a batch. kafka-protocol's encoder keeps records in one batch while
/// (offset - sequence) is constant, so records without a producer get sequence `index - 1` (the
/// batch's base sequence is then -1, "no idempotence").
pub fn new_record(
    index: usize,
    key: Option<Bytes>,
    value: Option<Bytes>,
    timestamp_ms: i64,
    producer: Option<ProducerIds>,
) -> Record {
    let (producer_id, producer_epoch, sequence) = match producer {
        Some(p) => (p.producer_id, p.producer_epoch, p.base_sequence + index as i32),
        None => (-1, -1, index as i32 - 1),
    };
    Record {
        transactional: false,
        control: false,
        delete_horizon: false,
        partition_leader_epoch: -1,
        producer_id,
        producer_epoch,
        timestamp_type: TimestampType::Creation,
        offset: index as i64,
        sequence,
        timestamp: timestamp_ms,
        key,
        value,
        headers: Default::default(),
    }
}

/// Encodes records made by [`new_record`] as one v2 batch.
pub fn encode_records(records: &[Record], compression: Compression) -> anyhow::Result<Bytes> {
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        records.iter(),
        &RecordEncodeOptions { version: 2, compression },
    )
    .context("cannot encode record batch")?;
    Ok(buf.freeze())
}

/// Encodes (key, value) pairs as one v2 batch without a producer id.
pub fn encode_batch(
    records: &[(Option<Bytes>, Option<Bytes>)],
    timestamp_ms: i64,
    compression: Compression,
) -> anyhow::Result<Bytes> {
    let recs: Vec<Record> = records
        .iter()
        .enumerate()
        .map(|(i, (k, v))| new_record(i, k.clone(), v.clone(), timestamp_ms, None))
        .collect();
    encode_records(&recs, compression)
}

/// A Produce request carrying one batch for one partition.
pub fn produce_request(topic: &str, partition: i32, batch: Bytes, acks: i16) -> ProduceRequest {
    let mut p = PartitionProduceData::default();
    p.index = partition;
    p.records = Some(batch);
    let mut t = TopicProduceData::default();
    t.name = TopicName(StrBytes::from_string(topic.to_string()));
    t.partition_data = vec![p];
    let mut req = ProduceRequest::default();
    req.acks = acks;
    req.timeout_ms = 30_000;
    req.topic_data = vec![t];
    req
}

/// A Fetch request for several partitions of one topic at the given offsets.
pub fn fetch_request(
    topic: &str,
    offsets: &[(i32, i64)],
    max_wait_ms: i32,
    partition_max_bytes: i32,
) -> FetchRequest {
    let mut t = FetchTopic::default();
    t.topic = TopicName(StrBytes::from_string(topic.to_string()));
    t.partitions = offsets
        .iter()
        .map(|(p, o)| {
            let mut f = FetchPartition::default();
            f.partition = *p;
            f.fetch_offset = *o;
            f.partition_max_bytes = partition_max_bytes;
            f.current_leader_epoch = -1;
            f.log_start_offset = -1;
            f
        })
        .collect();
    let mut req = FetchRequest::default();
    req.replica_id = BrokerId(-1);
    req.max_wait_ms = max_wait_ms;
    req.min_bytes = 1;
    req.max_bytes = 64 * 1024 * 1024;
    req.session_epoch = -1;
    req.topics = vec![t];
    req
}

/// Decodes every record in a fetched record set (compressed batches included).
pub fn decode_records(mut bytes: Bytes) -> anyhow::Result<Vec<Record>> {
    let mut out = Vec::new();
    if bytes.is_empty() {
        return Ok(out);
    }
    for set in
        RecordBatchDecoder::decode_all(&mut bytes).context("cannot decode fetched records")?
    {
        out.extend(set.records.into_iter().filter(|r| !r.control));
    }
    Ok(out)
}
