//! Multi-node tests on loopback with real `samsa server` processes (via samsa-cluster): the
//! quorum bootstraps, survives restarts of every node and the loss of the active controller,
//! takes broker-only observers, fences silent brokers and refuses misconfigurations.

use std::time::{Duration, Instant};

use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::describe_quorum_request::{PartitionData, TopicData};
use kafka_protocol::messages::{
    CreateTopicsRequest, DescribeQuorumRequest, MetadataRequest, MetadataResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use samsa::client::KafkaClient;
use samsa_cluster::{LocalCluster, free_port};

mod common;
use common::wire::eventually;

const BIN: &str = env!("CARGO_BIN_EXE_samsa");
/// Short sessions so fencing tests take seconds.
const FAST: &[&str] = &["broker.session.timeout.ms=2000", "broker.heartbeat.interval.ms=300"];

fn name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.into()))
}

async fn metadata(addr: &str) -> MetadataResponse {
    let mut c = KafkaClient::connect(addr).await.expect("connect");
    let mut req = MetadataRequest::default();
    req.topics = None; // all topics
    c.send(&req, 12).await.expect("metadata")
}

async fn create_topic(addr: &str, topic: &str, partitions: i32, rf: i16) -> i16 {
    let mut c = KafkaClient::connect(addr).await.expect("connect");
    let mut t = CreatableTopic::default();
    t.name = name(topic);
    t.num_partitions = partitions;
    t.replication_factor = rf;
    let mut req = CreateTopicsRequest::default();
    req.topics = vec![t];
    req.timeout_ms = 30_000;
    c.send(&req, 7).await.expect("create topics").topics[0].error_code
}

/// (leader, term) of the metadata quorum as `addr` sees it.
async fn quorum(addr: &str) -> (i32, i32, Vec<i32>, Vec<i32>) {
    let mut c = KafkaClient::connect(addr).await.expect("connect");
    let mut p = PartitionData::default();
    p.partition_index = 0;
    let mut t = TopicData::default();
    t.topic_name = name("__cluster_metadata");
    t.partitions = vec![p];
    let mut req = DescribeQuorumRequest::default();
    req.topics = vec![t];
    let r = c.send(&req, 2).await.expect("describe quorum");
    let p = &r.topics[0].partitions[0];
    (
        p.leader_id.0,
        p.leader_epoch,
        p.current_voters.iter().map(|v| v.replica_id.0).collect(),
        p.observers.iter().map(|v| v.replica_id.0).collect(),
    )
}

fn broker_ids(md: &MetadataResponse) -> Vec<i32> {
    let mut ids: Vec<i32> = md.brokers.iter().map(|b| b.node_id.0).collect();
    ids.sort();
    ids
}

#[tokio::test(flavor = "multi_thread")]
async fn three_nodes_bootstrap_one_quorum_and_admin_works_from_any_broker() {
    let c = LocalCluster::start(BIN.as_ref(), 3, 0, FAST).expect("cluster");
    let addrs: Vec<String> = c.nodes.values().map(|n| n.bootstrap()).collect();
    let (leader, _, voters, _) = quorum(&addrs[0]).await;
    assert_eq!(voters, vec![1, 2, 3]);
    let mut cluster_ids = Vec::new();
    for a in &addrs {
        // A node is ready once it registered; the others' registrations reach its metadata
        // image within a heartbeat or two.
        let mut md = metadata(a).await;
        let deadline = Instant::now() + Duration::from_secs(10);
        while broker_ids(&md) != vec![1, 2, 3] && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
            md = metadata(a).await;
        }
        assert_eq!(broker_ids(&md), vec![1, 2, 3], "every broker lists every live broker");
        assert_eq!(md.controller_id.0, leader, "and names the active controller");
        cluster_ids.push(md.cluster_id.clone());
    }
    assert!(cluster_ids.windows(2).all(|w| w[0] == w[1]), "one cluster id: {cluster_ids:?}");
    // CreateTopics on a broker that is not the controller is forwarded and visible at once.
    let follower = c
        .nodes
        .iter()
        .find(|(id, _)| **id != leader)
        .map(|(_, n)| n.bootstrap())
        .expect("a follower");
    assert_eq!(create_topic(&follower, "spread", 6, 1).await, 0);
    let md = metadata(&follower).await;
    let t = md
        .topics
        .iter()
        .find(|t| t.name.as_ref().map(|n| n.0.as_str()) == Some("spread"))
        .expect("topic");
    let mut leaders: Vec<i32> = t.partitions.iter().map(|p| p.leader_id.0).collect();
    leaders.sort();
    assert_eq!(leaders, vec![1, 1, 2, 2, 3, 3], "leaders spread evenly over live brokers");
    assert_eq!(create_topic(&follower, "too-wide", 1, 4).await, 38, "INVALID_REPLICATION_FACTOR");
}

#[tokio::test(flavor = "multi_thread")]
async fn every_node_restarted_keeps_the_metadata() {
    let mut c = LocalCluster::start(BIN.as_ref(), 3, 0, FAST).expect("cluster");
    let a = c.bootstrap();
    assert_eq!(create_topic(&a, "kept", 3, 3).await, 0);
    let before = metadata(&a).await;
    for id in [1, 2, 3] {
        let status = c.node_mut(id).expect("node").terminate().expect("stop");
        assert!(status.success());
    }
    c.start_stopped().expect("all back");
    // Each node is ready once its own heartbeat unfenced it; the node answering Metadata may
    // apply the last unfencing a moment later.
    let boot = c.bootstrap();
    let after = eventually(Duration::from_secs(10), || {
        let boot = boot.clone();
        async move {
            let md = metadata(&boot).await;
            (broker_ids(&md) == vec![1, 2, 3]).then_some(md)
        }
    })
    .await;
    assert_eq!(after.cluster_id, before.cluster_id);
    let t = after
        .topics
        .iter()
        .find(|t| t.name.as_ref().map(|n| n.0.as_str()) == Some("kept"))
        .expect("topic kept");
    assert_eq!(t.partitions.len(), 3);
    let old = before.topics.iter().find(|t| t.name == t.name).expect("old").topic_id;
    assert_eq!(t.topic_id, old, "same topic id");
}

#[tokio::test(flavor = "multi_thread")]
async fn killing_the_active_controller_elects_another_and_admin_requests_succeed() {
    let mut c = LocalCluster::start(BIN.as_ref(), 3, 0, FAST).expect("cluster");
    let (leader, term, _, _) = quorum(&c.bootstrap()).await;
    c.node_mut(leader).expect("leader").kill().expect("sigkill");
    let survivor = c.bootstrap();
    let started = Instant::now();
    assert_eq!(create_topic(&survivor, "after-failover", 2, 1).await, 0, "admin works again");
    let took = started.elapsed();
    let (new_leader, new_term, _, _) = quorum(&survivor).await;
    assert_ne!(new_leader, leader);
    assert!(new_term > term, "raft terms only grow ({term} -> {new_term})");
    eprintln!("controller failover: CreateTopics succeeded {took:?} after SIGKILL");
    // The old controller rejoins as a follower.
    c.node_mut(leader).expect("old").spawn().expect("spawn");
    c.node_mut(leader).expect("old").wait_ready().expect("ready");
    let (l, _, voters, _) = quorum(&c.bootstrap()).await;
    assert_eq!(l, new_leader);
    assert_eq!(voters, vec![1, 2, 3]);
}

/// (leader, leader epoch) of every partition of `topic`, from `addr`.
async fn leaderships(addr: &str, topic: &str) -> Vec<(i32, i32)> {
    let md = metadata(addr).await;
    let t = md.topics.iter().find(|t| t.name.as_ref().map(|n| n.0.as_str()) == Some(topic));
    let mut ps: Vec<(i32, i32, i32)> = t
        .map(|t| {
            t.partitions
                .iter()
                .map(|p| (p.partition_index, p.leader_id.0, p.leader_epoch))
                .collect()
        })
        .unwrap_or_default();
    ps.sort();
    ps.into_iter().map(|(_, l, e)| (l, e)).collect()
}

/// Found by the chaos suite: brokers kept forwarding heartbeats to the frozen old controller
/// and the new one, hearing nothing for a session, fenced every broker (its own included),
/// moving every leadership. Now a forwarded request gives up when its controller is deposed.
#[tokio::test(flavor = "multi_thread")]
async fn freezing_the_active_controller_fences_it_alone() {
    let c = LocalCluster::start(BIN.as_ref(), 3, 0, FAST).expect("cluster");
    let all = c.bootstrap();
    assert_eq!(create_topic(&all, "steady", 3, 3).await, 0);
    let before = eventually(Duration::from_secs(20), || async {
        let l = leaderships(&all, "steady").await;
        (l.len() == 3 && l.iter().all(|(leader, _)| *leader > 0)).then_some(l)
    })
    .await;
    let (frozen, _, _, _) = quorum(&all).await;
    let live: String = c
        .nodes
        .iter()
        .filter(|(id, _)| **id != frozen)
        .map(|(_, n)| n.bootstrap())
        .collect::<Vec<_>>()
        .join(",");
    c.nodes.get(&frozen).expect("controller").pause().expect("sigstop");
    // Three sessions long: the frozen controller is fenced, and nobody else may be.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let (new_controller, _, _, _) = quorum(&live).await;
    let during = leaderships(&live, "steady").await;
    c.nodes.get(&frozen).expect("controller").resume().expect("sigcont");
    assert_ne!(new_controller, frozen);
    for ((old_leader, old_epoch), now) in before.iter().zip(&during) {
        if *old_leader != frozen {
            assert_eq!(
                now,
                &(*old_leader, *old_epoch),
                "a live broker's leadership moved: {before:?} -> {during:?}"
            );
        } else {
            assert_ne!(now.0, frozen, "the frozen broker's leadership moved");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_broker_only_node_follows_the_metadata_log_and_serves_metadata() {
    let c = LocalCluster::start(BIN.as_ref(), 3, 1, FAST).expect("cluster");
    let observer = c.nodes.get(&4).expect("node 4").bootstrap();
    // The membership entry that adds the observer reaches it asynchronously.
    let (voters, observers) = eventually(Duration::from_secs(10), || {
        let o = observer.clone();
        async move {
            let (_, _, voters, observers) = quorum(&o).await;
            (observers == vec![4]).then_some((voters, observers))
        }
    })
    .await;
    assert_eq!(voters, vec![1, 2, 3], "the observer does not vote");
    assert_eq!(observers, vec![4]);
    assert_eq!(create_topic(&observer, "via-observer", 4, 1).await, 0);
    let md = metadata(&observer).await;
    assert_eq!(broker_ids(&md), vec![1, 2, 3, 4]);
    assert!(
        md.topics.iter().any(|t| t.name.as_ref().map(|n| n.0.as_str()) == Some("via-observer"))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_silent_broker_is_fenced_loses_its_leaderships_and_regains_them_when_back() {
    let mut c = LocalCluster::start(BIN.as_ref(), 3, 0, FAST).expect("cluster");
    let a = c.bootstrap();
    assert_eq!(create_topic(&a, "fence", 3, 1).await, 0);
    assert_eq!(create_topic(&a, "fence3", 3, 3).await, 0);
    let (controller, _, _, _) = quorum(&a).await;
    let victim = [1, 2, 3].into_iter().find(|id| *id != controller).expect("victim");
    let before = metadata(&a).await;
    let owned = |md: &MetadataResponse, topic: &str| -> Vec<(i32, i32, i32)> {
        let t = md
            .topics
            .iter()
            .find(|t| t.name.as_ref().map(|n| n.0.as_str()) == Some(topic))
            .expect("topic");
        t.partitions.iter().map(|p| (p.partition_index, p.leader_id.0, p.leader_epoch)).collect()
    };
    c.node_mut(victim).expect("victim").kill().expect("sigkill");
    let survivor = c.bootstrap();
    let md = eventually(Duration::from_secs(15), || {
        let s = survivor.clone();
        async move {
            let md = metadata(&s).await;
            (!broker_ids(&md).contains(&victim)).then_some(md)
        }
    })
    .await;
    for (p, leader, epoch) in owned(&md, "fence3") {
        let (_, old_leader, old_epoch) = owned(&before, "fence3")[p as usize];
        assert_ne!(leader, victim, "a fenced broker leads nothing");
        if old_leader == victim {
            assert!(epoch > old_epoch, "moved leadership bumps the leader epoch");
        }
    }
    for (p, leader, _) in owned(&md, "fence") {
        if owned(&before, "fence")[p as usize].1 == victim {
            assert_eq!(leader, -1, "a single-replica partition goes offline, no unclean election");
        }
    }
    c.node_mut(victim).expect("victim").spawn().expect("spawn");
    c.node_mut(victim).expect("victim").wait_ready().expect("ready");
    let md = metadata(&c.bootstrap()).await;
    assert!(broker_ids(&md).contains(&victim), "unfenced again");
    for (p, leader, epoch) in owned(&md, "fence") {
        let (_, old_leader, old_epoch) = owned(&before, "fence")[p as usize];
        if old_leader == victim {
            assert_eq!(leader, victim, "its partitions come back with it");
            assert!(epoch > old_epoch, "leader epochs never go backwards");
        }
    }
    // Controlled shutdown: SIGTERM fences the broker before it exits, well inside the 2 s
    // session timeout, so clients are redirected at once rather than after expiry.
    let started = Instant::now();
    let status = c.node_mut(victim).expect("victim").terminate().expect("sigterm");
    assert!(status.success());
    let md = metadata(&c.bootstrap()).await;
    let took = started.elapsed();
    assert!(!broker_ids(&md).contains(&victim), "fenced by the controlled shutdown");
    assert!(owned(&md, "fence").iter().all(|(_, l, _)| *l != victim), "leads nothing");
    assert!(took < Duration::from_millis(1500), "before any session expiry: {took:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn misconfigured_nodes_are_refused_with_a_clear_message() {
    let mut c = LocalCluster::start(BIN.as_ref(), 3, 0, FAST).expect("cluster");
    // A second process claiming node.id 2 (own ports and directory) while node 2 is alive.
    let mut dup = c.node_process(2, &[]).expect("process");
    let other_dir = c.dir.path().join("dup-data");
    let (kp, cp) = (free_port().expect("port"), free_port().expect("port"));
    let props = c
        .properties(2, &[])
        .expect("props")
        .replace(&c.data_dir(2).display().to_string(), &other_dir.display().to_string())
        .replace(
            &format!("PLAINTEXT://127.0.0.1:{}", c.ports[&2].kafka),
            &format!("PLAINTEXT://127.0.0.1:{kp}"),
        )
        .replace(
            &format!("CONTROLLER://127.0.0.1:{}", c.ports[&2].controller),
            &format!("CONTROLLER://127.0.0.1:{cp}"),
        );
    std::fs::write(c.dir.path().join("node2.properties"), props).expect("write");
    dup.spawn().expect("spawn");
    let err = dup.wait_ready().expect_err("refused").to_string();
    assert!(
        err.contains("DUPLICATE_BROKER_REGISTRATION") || err.contains("already registered"),
        "{err}"
    );
    std::fs::write(c.dir.path().join("node2.properties"), c.properties(2, &[]).expect("props"))
        .expect("restore");
    // Node 3 restarted with a different voter set.
    c.node_mut(3).expect("3").terminate().expect("stop");
    let mut wrong = c
        .node_process(
            3,
            &[&format!(
                "controller.quorum.voters=1@127.0.0.1:{},3@127.0.0.1:{}",
                c.ports[&1].controller, c.ports[&3].controller
            )],
        )
        .expect("process");
    wrong.spawn().expect("spawn");
    let err = wrong.wait_ready().expect_err("refused").to_string();
    assert!(err.contains("controller.quorum.voters"), "{err}");
    // Node 3's directory (and stopped ports) started as node.id=1.
    let mut swapped = c.node_process(3, &["node.id=1"]).expect("process");
    swapped.spawn().expect("spawn");
    let err = swapped.wait_ready().expect_err("refused").to_string();
    assert!(err.contains("belongs to node.id=3"), "{err}");
    // A node whose data belongs to another cluster.
    let meta = c.data_dir(3).join("meta.properties");
    let text = std::fs::read_to_string(&meta).expect("meta");
    let text: String = text
        .lines()
        .map(|l| {
            if l.starts_with("cluster.id=") {
                "cluster.id=SomeOtherClusterIdXYZ".to_string()
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(&meta, text + "\n").expect("write");
    let mut foreign = c.node_process(3, &[]).expect("process");
    foreign.spawn().expect("spawn");
    let err = foreign.wait_ready().expect_err("refused").to_string();
    assert!(err.contains("cluster"), "{err}");
}
