//! Replication with real `samsa server` processes: RF=3, min.insync.replicas=2, idempotent
//! acks=all producers through leader SIGKILLs, a SIGSTOPped follower, and two brokers down.

use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::{
    CreateTopicsRequest, InitProducerIdRequest, MetadataRequest, MetadataResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::Compression;
use samsa::client::KafkaClient;
use samsa::client::records::{ProducerIds, encode_records, new_record, produce_request};
use samsa_cluster::LocalCluster;

mod common;
use common::wire::{eventually, read_partition};

const BIN: &str = env!("CARGO_BIN_EXE_samsa");
const TOPIC: &str = "replicated";

fn name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.into()))
}

async fn metadata(bootstrap: &str) -> Option<MetadataResponse> {
    let mut c = KafkaClient::connect(bootstrap).await.ok()?;
    let mut req = MetadataRequest::default();
    req.topics = None;
    c.send(&req, 12).await.ok()
}

/// (leader id, leader address, ISR) of partition 0, if it has a leader.
async fn leader(bootstrap: &str) -> Option<(i32, String, Vec<i32>)> {
    let md = metadata(bootstrap).await?;
    let t = md.topics.iter().find(|t| t.name.as_ref().map(|n| n.0.as_str()) == Some(TOPIC))?;
    let p = t.partitions.first()?;
    let b = md.brokers.iter().find(|b| b.node_id == p.leader_id)?;
    Some((
        p.leader_id.0,
        format!("{}:{}", b.host, b.port),
        p.isr_nodes.iter().map(|n| n.0).collect(),
    ))
}

async fn create_topic(bootstrap: &str) {
    create_topic_on(bootstrap, None).await
}

/// Creates the topic, with one partition on `replicas` (leader first) when given.
async fn create_topic_on(bootstrap: &str, replicas: Option<[i32; 3]>) {
    let mut c = KafkaClient::connect(bootstrap).await.expect("connect");
    let mut t = CreatableTopic::default();
    t.name = name(TOPIC);
    t.num_partitions = 1;
    t.replication_factor = 3;
    if let Some(r) = replicas {
        use kafka_protocol::messages::create_topics_request::CreatableReplicaAssignment;
        let mut a = CreatableReplicaAssignment::default();
        a.partition_index = 0;
        a.broker_ids = r.iter().map(|b| kafka_protocol::messages::BrokerId(*b)).collect();
        t.assignments = vec![a];
        t.num_partitions = -1;
        t.replication_factor = -1;
    }
    let mut cfg = CreatableTopicConfig::default();
    cfg.name = StrBytes::from_static_str("min.insync.replicas");
    cfg.value = Some(StrBytes::from_static_str("2"));
    t.configs = vec![cfg];
    let mut req = CreateTopicsRequest::default();
    req.topics = vec![t];
    assert_eq!(c.send(&req, 7).await.expect("create").topics[0].error_code, 0);
}

/// An idempotent acks=all producer that follows leadership and retries a batch (same sequence)
/// until it is acknowledged, as a real client does.
struct Producer {
    bootstrap: String,
    pid: i64,
    seq: i32,
    acked: Vec<String>,
}

impl Producer {
    async fn new(bootstrap: &str) -> Producer {
        let mut c = KafkaClient::connect(bootstrap).await.expect("connect");
        let pid = c.send(&InitProducerIdRequest::default(), 4).await.expect("pid").producer_id.0;
        Producer { bootstrap: bootstrap.to_string(), pid, seq: 0, acked: Vec::new() }
    }

    /// One attempt: the error code (0 on success).
    async fn try_send(&self, values: &[String]) -> Option<i16> {
        let (_, addr, _) = leader(&self.bootstrap).await?;
        let ids = ProducerIds { producer_id: self.pid, producer_epoch: 0, base_sequence: self.seq };
        let recs: Vec<_> = values
            .iter()
            .enumerate()
            .map(|(i, v)| new_record(i, None, Some(Bytes::from(v.clone())), 0, Some(ids)))
            .collect();
        let batch = encode_records(&recs, Compression::None).ok()?;
        let mut c = KafkaClient::connect(&addr).await.ok()?;
        let mut req = produce_request(TOPIC, 0, batch, -1);
        req.timeout_ms = 3000;
        let resp =
            tokio::time::timeout(Duration::from_secs(10), c.send(&req, 9)).await.ok()?.ok()?;
        Some(resp.responses[0].partition_responses[0].error_code)
    }

    /// Sends `n` records as one batch, retrying for up to 60 s.
    async fn send(&mut self, tag: &str, n: usize) {
        let values: Vec<String> = (0..n).map(|i| format!("{tag}-{i}")).collect();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if self.try_send(&values).await == Some(0) {
                self.seq += n as i32;
                self.acked.extend(values);
                return;
            }
            assert!(Instant::now() < deadline, "batch {tag} never acknowledged");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Every record of partition 0, read from its leader up to the high watermark.
async fn read_all(bootstrap: &str) -> Vec<(i64, String)> {
    let (_, addr, _) = eventually(Duration::from_secs(30), || leader(bootstrap)).await;
    read_partition(&addr, TOPIC).await
}

fn segment_bytes(c: &LocalCluster, node: i32) -> Vec<u8> {
    let dir = c.data_dir(node).join(format!("{TOPIC}-0"));
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("replica dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .collect();
    files.sort();
    files.iter().flat_map(|f| std::fs::read(f).expect("segment")).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn acknowledged_writes_survive_repeated_leader_kills_exactly_once_on_every_replica() {
    let fast = [
        "broker.session.timeout.ms=2000",
        "broker.heartbeat.interval.ms=300",
        "replica.lag.time.max.ms=3000",
    ];
    let mut c = LocalCluster::start(BIN.as_ref(), 3, 0, &fast).expect("cluster");
    let all = c.bootstrap();
    create_topic(&all).await;
    let mut p = Producer::new(&all).await;
    for round in 0..3 {
        for b in 0..10 {
            p.send(&format!("r{round}b{b}"), 5).await;
        }
        let (victim, _, _) = eventually(Duration::from_secs(30), || leader(&all)).await;
        c.node_mut(victim).expect("leader").kill().expect("sigkill");
        // Writes go on through the failover (the producer retries until a new leader acks).
        for b in 10..20 {
            p.send(&format!("r{round}b{b}"), 5).await;
        }
        c.node_mut(victim).expect("node").spawn().expect("spawn");
        c.node_mut(victim).expect("node").wait_ready().expect("ready");
    }
    // All three back in the ISR, then every replica holds the same bytes.
    eventually(Duration::from_secs(30), || async {
        leader(&all).await.filter(|(_, _, isr)| isr.len() == 3)
    })
    .await;
    let read = read_all(&all).await;
    let values: Vec<String> = read.iter().map(|(_, v)| v.clone()).collect();
    assert_eq!(values, p.acked, "every acknowledged record, once, in order");
    let offsets: Vec<i64> = read.iter().map(|(o, _)| *o).collect();
    assert_eq!(offsets, (0..p.acked.len() as i64).collect::<Vec<_>>(), "dense offsets");
    let copies = eventually(Duration::from_secs(20), || async {
        let copies: Vec<Vec<u8>> = (1..=3).map(|n| segment_bytes(&c, n)).collect();
        (copies[0] == copies[1] && copies[1] == copies[2]).then_some(copies)
    })
    .await;
    assert!(!copies[0].is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn with_two_of_three_down_acks_all_is_refused_and_recovers_without_loss() {
    // Three voters plus brokers 4 and 5; the partition lives on 1, 4 and 5, so losing two of its
    // replicas keeps the metadata quorum (and the controller that shrinks the ISR) alive.
    let fast = [
        "broker.session.timeout.ms=2000",
        "broker.heartbeat.interval.ms=300",
        "replica.lag.time.max.ms=3000",
    ];
    let mut c = LocalCluster::start(BIN.as_ref(), 3, 2, &fast).expect("cluster");
    let all = c.bootstrap();
    create_topic_on(&all, Some([1, 4, 5])).await;
    let mut p = Producer::new(&all).await;
    for b in 0..5 {
        p.send(&format!("before{b}"), 3).await;
    }
    let followers = [4, 5];
    for f in &followers {
        c.node_mut(*f).expect("follower").kill().expect("sigkill");
    }
    // Once the controller fences them the ISR is the leader alone: below min.insync.replicas.
    // The probe is the producer's next batch, retried as is (as a client retries): attempts
    // before the ISR shrank may have been appended and timed out; the later retry then
    // deduplicates against them instead of writing twice.
    let next: Vec<String> = (0..3).map(|i| format!("after-{i}")).collect();
    let code = eventually(Duration::from_secs(20), || async {
        let code = p.try_send(&next).await?;
        (code == 19).then_some(code)
    })
    .await;
    assert_eq!(code, 19, "NOT_ENOUGH_REPLICAS");
    for f in &followers {
        c.node_mut(*f).expect("follower").spawn().expect("spawn");
    }
    for f in &followers {
        c.node_mut(*f).expect("follower").wait_ready().expect("ready");
    }
    p.send("after", 3).await; // the same batch: values after-0..2 at the same sequence
    let values: Vec<String> = read_all(&c.bootstrap()).await.into_iter().map(|(_, v)| v).collect();
    assert_eq!(values, p.acked, "nothing acknowledged was lost, nothing refused was written");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_paused_follower_leaves_the_isr_writes_continue_and_it_rejoins_after_resume() {
    // Sessions long enough that the pause is seen as lag, not as a dead broker.
    let slow = [
        "broker.session.timeout.ms=30000",
        "broker.heartbeat.interval.ms=1000",
        "replica.lag.time.max.ms=1500",
    ];
    let c = LocalCluster::start(BIN.as_ref(), 3, 0, &slow).expect("cluster");
    let everyone = c.bootstrap();
    create_topic(&everyone).await;
    let (lead, _, _) = eventually(Duration::from_secs(30), || leader(&everyone)).await;
    let paused = [1, 2, 3].into_iter().find(|n| *n != lead).expect("a follower");
    // Clients talk to the nodes that are not frozen (a frozen node still accepts connections).
    let all: String = c
        .nodes
        .iter()
        .filter(|(id, _)| **id != paused)
        .map(|(_, n)| n.bootstrap())
        .collect::<Vec<_>>()
        .join(",");
    let mut p = Producer::new(&all).await;
    p.send("warm", 3).await;
    c.nodes.get(&paused).expect("node").pause().expect("sigstop");
    let started = Instant::now();
    let isr = eventually(Duration::from_secs(20), || async {
        leader(&all).await.map(|(_, _, isr)| isr).filter(|isr| !isr.contains(&paused))
    })
    .await;
    eprintln!("ISR shrank to {isr:?} {:?} after SIGSTOP", started.elapsed());
    for b in 0..5 {
        p.send(&format!("during{b}"), 3).await; // acks=all with two in-sync replicas
    }
    c.nodes.get(&paused).expect("node").resume().expect("sigcont");
    eventually(Duration::from_secs(20), || async {
        leader(&all).await.filter(|(_, _, isr)| isr.contains(&paused))
    })
    .await;
    let values: Vec<String> = read_all(&all).await.into_iter().map(|(_, v)| v).collect();
    assert_eq!(values, p.acked);
}
