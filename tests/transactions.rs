//! The transaction protocol on the wire, against an in-process broker: InitProducerId with a
//! transactional id (epoch bumps, INVALID_TRANSACTION_TIMEOUT), KIP-890's refusal of a
//! transactional produce to a partition outside the open transaction, AddPartitionsToTxn then
//! the produce, EndTxn, a fenced epoch, and a retried EndTxn; offsets committed in a
//! transaction (UNSTABLE_OFFSET_COMMIT under require_stable until the marker).

mod common;

use std::time::Duration;

use common::TestBroker;
use kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
use kafka_protocol::messages::txn_offset_commit_request::{
    TxnOffsetCommitRequestPartition, TxnOffsetCommitRequestTopic,
};
use kafka_protocol::messages::{
    AddOffsetsToTxnRequest, AddPartitionsToTxnRequest, CreateTopicsRequest, EndTxnRequest,
    FindCoordinatorRequest, GroupId, InitProducerIdRequest, OffsetFetchRequest, ProducerId,
    TopicName, TransactionalId, TxnOffsetCommitRequest,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::Compression;
use samsa::client::KafkaClient;
use samsa::client::records::{ProducerIds, encode_records, new_record, produce_request};

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

async fn init(c: &mut KafkaClient, id: &str, timeout_ms: i32) -> (i16, i64, i16) {
    let mut req = InitProducerIdRequest::default();
    req.transactional_id = Some(TransactionalId(s(id)));
    req.transaction_timeout_ms = timeout_ms;
    req.producer_id = ProducerId(-1);
    req.producer_epoch = -1;
    let r = c.send(&req, 4).await.expect("init");
    (r.error_code, r.producer_id.0, r.producer_epoch)
}

/// Produces one transactional record to `topic`-0 as (pid, epoch); returns the error code.
async fn produce(
    c: &mut KafkaClient,
    id: &str,
    topic: &str,
    pid: i64,
    epoch: i16,
    seq: i32,
) -> i16 {
    let ids = ProducerIds { producer_id: pid, producer_epoch: epoch, base_sequence: seq };
    let mut r = new_record(0, None, Some(bytes::Bytes::from_static(b"v")), 0, Some(ids));
    r.transactional = true;
    let batch = encode_records(&[r], Compression::None).expect("encode");
    let mut req = produce_request(topic, 0, batch, -1);
    req.transactional_id = Some(TransactionalId(s(id)));
    let resp = c.send(&req, 9).await.expect("produce");
    resp.responses[0].partition_responses[0].error_code
}

#[tokio::test]
async fn a_transaction_on_the_wire_with_kip_890_verification_and_fencing() {
    let b = TestBroker::start(&["transaction.state.log.num.partitions=1"]).await;
    let mut c = KafkaClient::connect(&b.bootstrap()).await.expect("connect");
    create_topic(&mut c, "tv").await;
    let mut find = FindCoordinatorRequest::default();
    find.key = s("tx");
    find.key_type = 1;
    c.send(&find, 3).await.expect("find");

    assert_eq!(init(&mut c, "tx", 900_001).await.0, 50, "INVALID_TRANSACTION_TIMEOUT");
    let mut first = None;
    for _ in 0..300 {
        let (code, pid, epoch) = init(&mut c, "tx", 60_000).await;
        if code == 0 {
            first = Some((pid, epoch));
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await; // the coordinator loads
    }
    let (pid, epoch) = first.expect("a producer id within 30 s");
    assert_eq!(epoch, 0);

    // KIP-890: tv-0 was never added to the transaction.
    assert_eq!(produce(&mut c, "tx", "tv", pid, epoch, 0).await, 48, "INVALID_TXN_STATE");
    let mut topic = AddPartitionsToTxnTopic::default();
    topic.name = TopicName(s("tv"));
    topic.partitions = vec![0];
    let mut add = AddPartitionsToTxnRequest::default();
    add.v3_and_below_transactional_id = TransactionalId(s("tx"));
    add.v3_and_below_producer_id = ProducerId(pid);
    add.v3_and_below_producer_epoch = epoch;
    add.v3_and_below_topics = vec![topic];
    let added = c.send(&add, 3).await.expect("add");
    assert_eq!(
        added.results_by_topic_v3_and_below[0].results_by_partition[0].partition_error_code,
        0
    );
    assert_eq!(produce(&mut c, "tx", "tv", pid, epoch, 0).await, 0);
    assert_eq!(
        produce(&mut c, "tx", "tv", pid, epoch, 1).await,
        0,
        "the open transaction needs no new check"
    );

    let mut end = EndTxnRequest::default();
    end.transactional_id = TransactionalId(s("tx"));
    end.producer_id = ProducerId(pid);
    end.producer_epoch = epoch;
    end.committed = true;
    assert_eq!(c.send(&end, 3).await.expect("end").error_code, 0);
    let mut retried = 51;
    for _ in 0..100 {
        retried = c.send(&end, 3).await.expect("end").error_code;
        if retried != 51 {
            break; // CONCURRENT_TRANSACTIONS until the markers are written
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(retried, 0, "a retried EndTxn of a finished commit succeeds");
    // After the commit, the partition is no longer in a transaction: verification again.
    assert_eq!(produce(&mut c, "tx", "tv", pid, epoch, 2).await, 48);

    // A new instance bumps the epoch; the old epoch is fenced at the coordinator.
    let (code, pid2, epoch2) = init(&mut c, "tx", 60_000).await;
    assert_eq!((code, pid2, epoch2), (0, pid, 1));
    end.committed = false;
    assert_eq!(
        c.send(&end, 1).await.expect("end").error_code,
        47,
        "INVALID_PRODUCER_EPOCH before v2 (KIP-588)"
    );
    assert_eq!(c.send(&end, 3).await.expect("end").error_code, 90, "PRODUCER_FENCED");
    b.stop().await;
}

/// KIP-447: offsets committed in a transaction are pending (OffsetFetch with require_stable
/// answers UNSTABLE_OFFSET_COMMIT, without it they are not there yet) until the COMMIT marker
/// lands on the group's offsets partition.
#[tokio::test]
async fn transactional_offsets_are_unstable_until_the_commit_marker_then_visible() {
    let b = TestBroker::start(&[
        "transaction.state.log.num.partitions=1",
        "offsets.topic.num.partitions=1",
    ])
    .await;
    let mut c = KafkaClient::connect(&b.bootstrap()).await.expect("connect");
    create_topic(&mut c, "src").await;
    for key_type in [0, 1] {
        let mut find = FindCoordinatorRequest::default();
        find.key = s("g");
        find.key_type = key_type;
        c.send(&find, 3).await.expect("find");
    }
    let mut first = None;
    for _ in 0..300 {
        let (code, pid, epoch) = init(&mut c, "oq", 60_000).await;
        if code == 0 {
            first = Some((pid, epoch));
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (pid, epoch) = first.expect("a producer id within 30 s");
    let mut add = AddOffsetsToTxnRequest::default();
    add.transactional_id = TransactionalId(s("oq"));
    add.producer_id = ProducerId(pid);
    add.producer_epoch = epoch;
    add.group_id = GroupId(s("g"));
    assert_eq!(c.send(&add, 3).await.expect("add offsets").error_code, 0);
    let mut part = TxnOffsetCommitRequestPartition::default();
    part.partition_index = 0;
    part.committed_offset = 42;
    part.committed_leader_epoch = -1;
    let mut topic = TxnOffsetCommitRequestTopic::default();
    topic.name = TopicName(s("src"));
    topic.partitions = vec![part];
    let mut tc = TxnOffsetCommitRequest::default();
    tc.transactional_id = TransactionalId(s("oq"));
    tc.group_id = GroupId(s("g"));
    tc.producer_id = ProducerId(pid);
    tc.producer_epoch = epoch;
    tc.generation_id = -1;
    tc.topics = vec![topic.clone()];
    // Offsets of a topic that does not exist are refused, as Kafka refuses them.
    let mut unknown = tc.clone();
    unknown.topics[0].name = TopicName(s("no-such-topic"));
    let refused = c.send(&unknown, 3).await.expect("txn offset commit");
    assert_eq!(refused.topics[0].partitions[0].error_code, 3, "UNKNOWN_TOPIC_OR_PARTITION");
    let committed = c.send(&tc, 3).await.expect("txn offset commit");
    assert_eq!(committed.topics[0].partitions[0].error_code, 0);

    let fetch = |stable: bool| {
        let mut t = OffsetFetchRequestTopic::default();
        t.name = TopicName(s("src"));
        t.partition_indexes = vec![0];
        let mut r = OffsetFetchRequest::default();
        r.group_id = GroupId(s("g"));
        r.topics = Some(vec![t]);
        r.require_stable = stable;
        r
    };
    let answer = |r: kafka_protocol::messages::OffsetFetchResponse| {
        let p = &r.topics[0].partitions[0];
        (p.error_code, p.committed_offset)
    };
    assert_eq!(answer(c.send(&fetch(true), 7).await.expect("fetch")), (88, -1));
    assert_eq!(answer(c.send(&fetch(false), 7).await.expect("fetch")), (0, -1));

    let mut end = EndTxnRequest::default();
    end.transactional_id = TransactionalId(s("oq"));
    end.producer_id = ProducerId(pid);
    end.producer_epoch = epoch;
    end.committed = true;
    assert_eq!(c.send(&end, 3).await.expect("end").error_code, 0);
    let mut seen = (0, -1);
    for _ in 0..100 {
        seen = answer(c.send(&fetch(true), 7).await.expect("fetch"));
        if seen == (0, 42) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(seen, (0, 42), "visible once the marker is committed");
    b.stop().await;
}

/// Creates a one-partition topic, replication factor 1.
async fn create_topic(c: &mut KafkaClient, name: &str) {
    let mut t = CreatableTopic::default();
    t.name = TopicName(s(name));
    t.num_partitions = 1;
    t.replication_factor = 1;
    let mut ct = CreateTopicsRequest::default();
    ct.topics = vec![t];
    ct.timeout_ms = 30_000;
    assert_eq!(c.send(&ct, 7).await.expect("create").topics[0].error_code, 0);
}
