//! The real binary as a process (via samsa-cluster): acknowledged writes survive SIGKILL, SIGTERM
//! is a clean exit, and a corrupted tail is cut at restart while everything before it is served.

use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::records::Compression;
use samsa::client::KafkaClient;
use samsa::client::records::{encode_batch, produce_request};
use samsa_cluster::{Node, free_port};

mod common;
use common::wire::read_partition;

const BIN: &str = env!("CARGO_BIN_EXE_samsa");

async fn produce_n(addr: &str, topic: &str, batches: usize) -> Vec<String> {
    let mut c = KafkaClient::connect(addr).await.expect("connect");
    // Metadata auto-creates the topic.
    let mut md = kafka_protocol::messages::MetadataRequest::default();
    let mut t = kafka_protocol::messages::metadata_request::MetadataRequestTopic::default();
    t.name = Some(kafka_protocol::messages::TopicName(
        kafka_protocol::protocol::StrBytes::from_string(topic.into()),
    ));
    md.topics = Some(vec![t]);
    md.allow_auto_topic_creation = true;
    c.send(&md, 12).await.expect("metadata");
    let mut values = Vec::new();
    for b in 0..batches {
        let recs: Vec<_> = (0..10).map(|i| format!("b{b}-r{i}")).collect();
        values.extend(recs.iter().cloned());
        let pairs: Vec<_> = recs.into_iter().map(|v| (None, Some(Bytes::from(v)))).collect();
        let batch = encode_batch(&pairs, 0, Compression::None).expect("encode");
        let resp = c.send(&produce_request(topic, 0, batch, 1), 9).await.expect("produce");
        assert_eq!(resp.responses[0].partition_responses[0].error_code, 0);
    }
    values
}

async fn read_all(addr: &str, topic: &str) -> Vec<String> {
    read_partition(addr, topic).await.into_iter().map(|(_, v)| v).collect()
}

#[tokio::test]
async fn acknowledged_writes_survive_sigkill_and_sigterm_is_clean() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut node = Node::start(BIN.as_ref(), &dir.path().join("d"), free_port().expect("port"))
        .expect("start");
    eprintln!("samsa dev ready after {:?}", node.last_startup);
    let addr = node.bootstrap();
    let written = produce_n(&addr, "durable", 50).await;
    node.kill().expect("sigkill");
    node.restart().expect("restart");
    assert_eq!(read_all(&addr, "durable").await, written, "every acknowledged record, in order");
    let status = node.terminate().expect("sigterm");
    assert!(status.success(), "SIGTERM is a clean exit, got {status:?}");
}

#[tokio::test]
async fn a_corrupted_segment_tail_is_cut_and_the_rest_is_served() {
    let dir = tempfile::tempdir().expect("tmp");
    let data = dir.path().join("d");
    let mut node = Node::start(BIN.as_ref(), &data, free_port().expect("port")).expect("start");
    let addr = node.bootstrap();
    let written = produce_n(&addr, "damaged", 20).await;
    node.kill().expect("sigkill");
    // Flip a byte inside the last batch and append half a batch of garbage.
    let log = data.join("damaged-0").join("00000000000000000000.log");
    let mut bytes = std::fs::read(&log).expect("read segment");
    let n = bytes.len();
    bytes[n - 5] ^= 0xff;
    bytes.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 7, 7]);
    std::fs::write(&log, &bytes).expect("write segment");
    node.restart().expect("restart");
    let read = read_all(&addr, "damaged").await;
    assert_eq!(read, written[..written.len() - 10], "all batches before the damaged one");
    // The partition takes writes again, continuing at the repaired end.
    let more = produce_n(&addr, "damaged", 1).await;
    tokio::time::sleep(Duration::from_millis(10)).await;
    let after = read_all(&addr, "damaged").await;
    assert_eq!(after.len(), read.len() + more.len());
}
