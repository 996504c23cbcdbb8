//! Integration tests against a broker started in-process on an ephemeral port: bad input gets a
//! Kafka error code or a closed connection that harms no other client; long polls wake on data.

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use common::TestBroker;
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::{
    CreateTopicsRequest, FetchRequest, InitProducerIdRequest, ListOffsetsRequest, MetadataRequest,
    ProduceRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::Compression;
use samsa::client::KafkaClient;
use samsa::client::records::{
    ProducerIds, encode_batch, encode_records, fetch_request, new_record, produce_request,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn create_topic(
    c: &mut KafkaClient,
    name: &str,
    partitions: i32,
    configs: &[(&str, &str)],
) -> i16 {
    let mut t = CreatableTopic::default();
    t.name = TopicName(StrBytes::from_string(name.into()));
    t.num_partitions = partitions;
    t.replication_factor = 1;
    for (k, v) in configs {
        let mut cfg = CreatableTopicConfig::default();
        cfg.name = StrBytes::from_string(k.to_string());
        cfg.value = Some(StrBytes::from_string(v.to_string()));
        t.configs.push(cfg);
    }
    let mut req = CreateTopicsRequest::default();
    req.topics = vec![t];
    let resp = c.send(&req, 7).await.expect("create topics");
    resp.topics[0].error_code
}

fn batch(n: usize) -> Bytes {
    let recs: Vec<_> = (0..n).map(|i| (None, Some(Bytes::from(format!("v{i}"))))).collect();
    encode_batch(&recs, 1000, Compression::None).expect("encode")
}

fn idempotent_batch(pid: i64, seq: i32, n: usize) -> Bytes {
    let producer = ProducerIds { producer_id: pid, producer_epoch: 0, base_sequence: seq };
    let records: Vec<_> =
        (0..n).map(|i| new_record(i, None, Some(Bytes::from("x")), 0, Some(producer))).collect();
    encode_records(&records, Compression::None).expect("encode")
}

async fn produce(
    c: &mut KafkaClient,
    topic: &str,
    partition: i32,
    records: Bytes,
    acks: i16,
) -> (i16, i64) {
    let resp = c.send(&produce_request(topic, partition, records, acks), 9).await.expect("produce");
    let p = &resp.responses[0].partition_responses[0];
    (p.error_code, p.base_offset)
}

async fn latest(c: &mut KafkaClient, topic: &str) -> i64 {
    use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
    let mut p = ListOffsetsPartition::default();
    p.timestamp = -1;
    let mut t = ListOffsetsTopic::default();
    t.name = TopicName(StrBytes::from_string(topic.into()));
    t.partitions = vec![p];
    let mut req = ListOffsetsRequest::default();
    req.topics = vec![t];
    c.send(&req, 7).await.expect("list offsets").topics[0].partitions[0].offset
}

/// Sends raw bytes and reports whether the broker closed the connection (read returns 0).
async fn closed_after(addr: &str, bytes: &[u8]) -> bool {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    s.write_all(bytes).await.expect("write");
    let mut buf = [0u8; 64];
    matches!(
        tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf)).await,
        Ok(Ok(0)) | Ok(Err(_))
    )
}

#[tokio::test]
async fn bad_frames_close_only_their_connection() {
    let b = TestBroker::start(&[]).await;
    let addr = b.bootstrap();
    let mut healthy = KafkaClient::connect(&addr).await.expect("connect");
    // Larger than socket.request.max.bytes.
    assert!(closed_after(&addr, &(200 * 1024 * 1024i32).to_be_bytes()).await);
    // Unknown API key 9999.
    let mut unknown = vec![0, 0, 0, 10];
    unknown.extend_from_slice(&[0x27, 0x0f, 0, 0, 0, 0, 0, 1, 0, 0]);
    assert!(closed_after(&addr, &unknown).await);
    // A Produce v9 header followed by garbage.
    let mut garbage = vec![0, 0, 0, 20, 0, 0, 0, 9, 0, 0, 0, 7];
    garbage.extend_from_slice(&[0xff; 12]);
    assert!(closed_after(&addr, &garbage).await);
    // A supported API at a version we do not serve (Produce v1).
    let mut old = vec![0, 0, 0, 10, 0, 0, 0, 1, 0, 0, 0, 1, 0xff, 0xff];
    old.truncate(14);
    assert!(closed_after(&addr, &old).await);
    // The other client is unharmed.
    let resp = healthy.send(&MetadataRequest::default(), 12).await.expect("metadata still works");
    assert_eq!(resp.brokers.len(), 1);
    b.stop().await;
}

#[tokio::test]
async fn unsupported_api_versions_version_answers_error_35_in_the_v0_layout() {
    let b = TestBroker::start(&[]).await;
    let mut s = TcpStream::connect(b.bootstrap()).await.expect("connect");
    // ApiVersions (18) v99, correlation 42, client id null.
    s.write_all(&[0, 0, 0, 10, 0, 18, 0, 99, 0, 0, 0, 42, 0xff, 0xff]).await.expect("write");
    let mut len = [0u8; 4];
    s.read_exact(&mut len).await.expect("len");
    let mut body = vec![0u8; i32::from_be_bytes(len) as usize];
    s.read_exact(&mut body).await.expect("body");
    assert_eq!(&body[0..4], &42i32.to_be_bytes(), "correlation id");
    assert_eq!(&body[4..6], &35i16.to_be_bytes(), "UNSUPPORTED_VERSION");
    let keys = i32::from_be_bytes([body[6], body[7], body[8], body[9]]);
    assert!(keys >= 10, "the full key list follows, got {keys}");
    b.stop().await;
}

#[tokio::test]
async fn bad_records_get_kafka_error_codes_and_nothing_is_written() {
    let b = TestBroker::start(&[]).await;
    let mut c = KafkaClient::connect(&b.bootstrap()).await.expect("connect");
    assert_eq!(create_topic(&mut c, "small", 1, &[("max.message.bytes", "1024")]).await, 0);
    let mut corrupt = batch(3).to_vec();
    let last = corrupt.len() - 1;
    corrupt[last] ^= 0xff;
    assert_eq!(produce(&mut c, "small", 0, corrupt.into(), 1).await.0, 2, "CORRUPT_MESSAGE");
    assert_eq!(produce(&mut c, "small", 0, batch(500), 1).await.0, 10, "MESSAGE_TOO_LARGE");
    assert_eq!(produce(&mut c, "small", 0, Bytes::from_static(b"junk"), 1).await.0, 2);
    assert_eq!(produce(&mut c, "small", 7, batch(1), 1).await.0, 3, "UNKNOWN_TOPIC_OR_PARTITION");
    assert_eq!(produce(&mut c, "nope", 0, batch(1), 1).await.0, 3);
    assert_eq!(produce(&mut c, "small", 0, batch(1), 5).await.0, 21, "INVALID_REQUIRED_ACKS");
    assert_eq!(latest(&mut c, "small").await, 0, "nothing was appended");
    assert_eq!(create_topic(&mut c, "bad/name", 1, &[]).await, 17, "INVALID_TOPIC_EXCEPTION");
    assert_eq!(create_topic(&mut c, "zero", 0, &[]).await, 37, "INVALID_PARTITIONS");
    assert_eq!(
        create_topic(&mut c, "cmp", 1, &[("cleanup.policy", "shred")]).await,
        40,
        "INVALID_CONFIG"
    );
    // A compacted topic refuses records without a key, as Kafka does.
    assert_eq!(create_topic(&mut c, "cmp", 1, &[("cleanup.policy", "compact")]).await, 0);
    assert_eq!(produce(&mut c, "cmp", 0, batch(2), 1).await.0, 87, "INVALID_RECORD");
    // KIP-467 (Produce v8+): the record that made the batch invalid, by index, with the reason.
    let resp = c.send(&produce_request("cmp", 0, batch(2), 1), 9).await.expect("produce");
    let p = &resp.responses[0].partition_responses[0];
    assert_eq!(p.record_errors.len(), 1);
    assert_eq!(p.record_errors[0].batch_index, 0);
    let why = p.record_errors[0].batch_index_error_message.as_ref().map(|m| m.to_string());
    assert!(why.is_some_and(|m| m.contains("without a key")), "{:?}", p.record_errors);
    assert_eq!(latest(&mut c, "cmp").await, 0, "nothing was appended");
    assert_eq!(create_topic(&mut c, "small", 1, &[]).await, 36, "TOPIC_ALREADY_EXISTS");
    b.stop().await;
}

#[tokio::test]
async fn idempotent_sequences_dedupe_retries_and_refuse_gaps() {
    let b = TestBroker::start(&[]).await;
    let mut c = KafkaClient::connect(&b.bootstrap()).await.expect("connect");
    assert_eq!(create_topic(&mut c, "idem", 1, &[]).await, 0);
    let pid = c.send(&InitProducerIdRequest::default(), 4).await.expect("init pid").producer_id.0;
    assert!(pid >= 0);
    assert_eq!(produce(&mut c, "idem", 0, idempotent_batch(pid, 0, 3), -1).await, (0, 0));
    assert_eq!(produce(&mut c, "idem", 0, idempotent_batch(pid, 3, 2), -1).await, (0, 3));
    // A retry of the first batch is answered with its original offset and not appended again.
    assert_eq!(produce(&mut c, "idem", 0, idempotent_batch(pid, 0, 3), -1).await, (0, 0));
    // A gap is OUT_OF_ORDER_SEQUENCE_NUMBER.
    assert_eq!(produce(&mut c, "idem", 0, idempotent_batch(pid, 9, 1), -1).await.0, 45);
    assert_eq!(latest(&mut c, "idem").await, 5);
    let next = c.send(&InitProducerIdRequest::default(), 4).await.expect("init pid").producer_id.0;
    assert_ne!(next, pid, "producer ids are never reused");
    b.stop().await;
}

#[tokio::test]
async fn a_long_poll_fetch_wakes_when_data_arrives() {
    let b = TestBroker::start(&[]).await;
    let mut c = KafkaClient::connect(&b.bootstrap()).await.expect("connect");
    assert_eq!(create_topic(&mut c, "poll", 1, &[]).await, 0);
    let addr = b.bootstrap();
    let producer = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let mut p = KafkaClient::connect(&addr).await.expect("connect");
        produce(&mut p, "poll", 0, batch(2), 1).await
    });
    let start = Instant::now();
    let resp = c.send(&fetch_request("poll", &[(0, 0)], 10_000, 1 << 20), 12).await.expect("fetch");
    let waited = start.elapsed();
    assert_eq!(producer.await.expect("join").0, 0);
    let records = resp.responses[0].partitions[0].records.clone().unwrap_or_default();
    assert!(!records.is_empty(), "the fetch returned the new batch");
    assert!(waited >= Duration::from_millis(250), "it waited for data ({waited:?})");
    assert!(waited < Duration::from_secs(5), "it woke on the append, not the timeout ({waited:?})");
    // max_wait 0 with no data answers at once with an empty, non-null record set.
    let resp = c.send(&fetch_request("poll", &[(0, 2)], 0, 1 << 20), 12).await.expect("fetch");
    assert_eq!(resp.responses[0].partitions[0].records.as_ref().map(|r| r.len()), Some(0));
    // Beyond the log end: OFFSET_OUT_OF_RANGE.
    let resp = c.send(&fetch_request("poll", &[(0, 99)], 0, 1 << 20), 12).await.expect("fetch");
    assert_eq!(resp.responses[0].partitions[0].error_code, 1);
    b.stop().await;
}

#[tokio::test]
async fn fetch_limits_bound_bytes_per_partition_and_per_request() {
    let b = TestBroker::start(&[]).await;
    let mut c = KafkaClient::connect(&b.bootstrap()).await.expect("connect");
    assert_eq!(create_topic(&mut c, "many", 3, &[]).await, 0);
    for p in 0..3 {
        for _ in 0..20 {
            assert_eq!(produce(&mut c, "many", p, batch(10), 1).await.0, 0);
        }
    }
    let one = batch(10).len();
    let mut req: FetchRequest =
        fetch_request("many", &[(0, 0), (1, 0), (2, 0)], 0, (one * 3) as i32);
    let resp = c.send(&req, 12).await.expect("fetch");
    for p in &resp.responses[0].partitions {
        assert_eq!(
            p.records.as_ref().map(|r| r.len()),
            Some(one * 3),
            "3 whole batches per partition"
        );
        assert_eq!(p.high_watermark, 200);
    }
    req.max_bytes = (one * 4) as i32;
    let resp = c.send(&req, 12).await.expect("fetch");
    let total: usize = resp.responses[0]
        .partitions
        .iter()
        .map(|p| p.records.as_ref().map_or(0, |r| r.len()))
        .sum();
    assert!(total <= one * 4, "max_bytes bounds the whole response");
    // A partition limit smaller than one batch still returns one batch to the first partition (KIP-74).
    let resp = c.send(&fetch_request("many", &[(0, 0)], 0, 10), 12).await.expect("fetch");
    assert_eq!(resp.responses[0].partitions[0].records.as_ref().map(|r| r.len()), Some(one));
    b.stop().await;
}

#[tokio::test]
async fn acks_zero_gets_no_response_and_the_next_request_is_answered() {
    let b = TestBroker::start(&[]).await;
    let mut c = KafkaClient::connect(&b.bootstrap()).await.expect("connect");
    assert_eq!(create_topic(&mut c, "fire", 1, &[]).await, 0);
    let v = 9;
    c.queue(&produce_request("fire", 0, batch(5), 0), v).expect("queue");
    let id = c.queue(&MetadataRequest::default(), 12).expect("queue");
    c.flush().await.expect("flush");
    let (got, _) = c.receive::<MetadataRequest>(12).await.expect("metadata answer comes first");
    assert_eq!(got, id);
    assert_eq!(latest(&mut c, "fire").await, 5);
    // A failing acks=0 produce closes the connection, as Kafka does, so the producer notices.
    c.queue(&produce_request("no-such-topic", 0, batch(1), 0), v).expect("queue");
    c.flush().await.expect("flush");
    let next = c.send(&MetadataRequest::default(), 12).await;
    assert!(next.is_err(), "the connection was closed");
    let _ = ProduceRequest::default();
    b.stop().await;
}
