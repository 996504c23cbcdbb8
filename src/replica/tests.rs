//! Tests of the replica layer: reconciliation, commit waits, leader appends.

use std::fs;
use std::sync::Arc;

use super::*;
use crate::config::broker::BrokerConfig;
use crate::error_code::ErrorCode;
use crate::metadata::image::MetadataImage;
use crate::types::{LeaderEpoch, NodeId, Offset, TopicPartition};
use uuid::Uuid;

use crate::client::records::encode_batch;
use crate::metadata::commands::{MetadataCommand, apply};
use kafka_protocol::records::Compression;

/// A fresh data directory and the dev broker settings on it.
fn node_dir() -> (tempfile::TempDir, BrokerConfig) {
    let dir = tempfile::tempdir().expect("tmp");
    let broker =
        BrokerConfig::dev(dir.path().to_path_buf(), "127.0.0.1:9092".parse().expect("addr"));
    (dir, broker)
}

fn image(leader: i32) -> MetadataImage {
    replicated(&[1, 2], leader, &[1, 2])
}

/// t-0 on `replicas`, led by `leader` with `isr`.
fn replicated(replicas: &[i32], leader: i32, isr: &[i32]) -> MetadataImage {
    let nodes = |ids: &[i32]| ids.iter().map(|n| NodeId(*n)).collect::<Vec<_>>();
    let mut img = MetadataImage::default();
    apply(
        &mut img,
        &MetadataCommand::CreateTopic {
            name: "t".into(),
            id: Uuid::from_u128(1),
            assignments: vec![nodes(replicas)],
            configs: Default::default(),
        },
    );
    apply(
        &mut img,
        &MetadataCommand::ChangePartition {
            topic: "t".into(),
            partition: 0,
            leader: Some(NodeId(leader)),
            isr: nodes(isr),
        },
    );
    img
}

/// Moves the leadership of t-0 to `leader` (a new leader epoch), ISR both brokers.
fn move_leader(img: &mut MetadataImage, leader: i32) {
    let other = if leader == 1 { 2 } else { 1 };
    apply(
        img,
        &MetadataCommand::ChangePartition {
            topic: "t".into(),
            partition: 0,
            leader: Some(NodeId(leader)),
            isr: vec![NodeId(leader), NodeId(other)],
        },
    );
}

#[test]
fn the_high_watermark_survives_a_restart_bounded_by_the_log() {
    let (dir, broker) = node_dir();
    {
        let rm = ReplicaManager::new(NodeId(1), dir.path().to_path_buf());
        rm.reconcile(&image(2), &broker).expect("reconcile");
        let part = rm.get("t", 0).expect("replica");
        let recs = vec![(None, Some(bytes::Bytes::from_static(b"v"))); 10];
        let batch = encode_batch(&recs, 0, Compression::None).expect("batch");
        {
            let mut log = part.log();
            let mut copy = batch.to_vec();
            crate::log::batch::assign_offset(&mut copy, Offset(0), LeaderEpoch(1));
            log.append_as_follower(&copy, 0).expect("append");
        }
        part.set_follower_high_watermark(7, Offset(10));
        rm.close_all();
    }
    let rm = ReplicaManager::new(NodeId(1), dir.path().to_path_buf());
    rm.reconcile(&image(2), &broker).expect("reconcile");
    assert_eq!(rm.get("t", 0).expect("replica").high_watermark(), Offset(7));
}

/// A full disk or an unreadable directory fails one replica, not the reconciliation: the
/// others are opened and led, the failed one answers KAFKA_STORAGE_ERROR, and a later
/// reconciliation with the same metadata opens it once the cause is gone.
#[test]
fn a_replica_that_cannot_be_opened_is_offline_and_the_others_are_served() {
    let (dir, broker) = node_dir();
    let mut img = image(1);
    apply(
        &mut img,
        &MetadataCommand::CreateTopic {
            name: "u".into(),
            id: Uuid::from_u128(2),
            assignments: vec![vec![NodeId(1)], vec![NodeId(1)]],
            configs: Default::default(),
        },
    );
    for partition in 0..2 {
        apply(
            &mut img,
            &MetadataCommand::ChangePartition {
                topic: "u".into(),
                partition,
                leader: Some(NodeId(1)),
                isr: vec![NodeId(1)],
            },
        );
    }
    // A file where u-0's directory belongs: creating the directory fails.
    let blocker = dir.path().join(TopicPartition::new("u", 0).dir_name());
    fs::write(&blocker, b"not a directory").expect("blocker");
    let rm = ReplicaManager::new(NodeId(1), dir.path().to_path_buf());

    let failures = rm.reconcile(&img, &broker).expect_err("u-0 cannot be opened");
    assert_eq!(failures.0.len(), 1, "{failures}");
    assert_eq!(failures.0[0].0, "u-0");
    assert!(rm.get("t", 0).expect("t-0").is_leader());
    assert!(rm.get("u", 1).expect("u-1").is_leader());
    let missing = rm.lookup("u", 0).expect_err("u-0 is offline");
    assert!(matches!(missing, Missing::Offline(_)), "{missing:?}");
    assert_eq!(missing.code(ErrorCode::UnknownTopicOrPartition), ErrorCode::KafkaStorageError);
    let unknown = rm.lookup("nope", 0).expect_err("not hosted");
    assert_eq!(unknown, Missing::NotHosted);
    assert_eq!(
        unknown.code(ErrorCode::UnknownTopicOrPartition),
        ErrorCode::UnknownTopicOrPartition
    );
    assert!(rm.has_offline());

    fs::remove_file(&blocker).expect("unblock");
    rm.reconcile(&img, &broker).expect("u-0 opens now");
    assert!(rm.lookup("u", 0).expect("u-0").is_leader());
    assert!(!rm.has_offline());
}

/// Found by the chaos suite (see [`Partition::wait_for_commit`]): a write waiting for its
/// commit is not acknowledged by the high watermark this replica copies as a follower.
#[tokio::test]
async fn a_write_waiting_for_its_commit_fails_when_leadership_moves() {
    let (dir, broker) = node_dir();
    let rm = ReplicaManager::new(NodeId(1), dir.path().to_path_buf());
    rm.reconcile(&image(1), &broker).expect("leader");
    let part = rm.get("t", 0).expect("replica");
    let epoch = part.leader_epoch();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    let waiter = {
        let part = part.clone();
        tokio::spawn(async move { part.wait_for_commit(5, epoch, deadline).await })
    };
    tokio::task::yield_now().await;
    // Deposed; as a follower it adopts the new leader's HW, which passes the target.
    let mut img = image(1);
    move_leader(&mut img, 2);
    rm.reconcile(&img, &broker).expect("follower");
    part.set_follower_high_watermark(10, Offset(10));
    let old_epoch = epoch;
    let outcome = tokio::time::timeout(std::time::Duration::from_secs(5), waiter)
        .await
        .expect("woken")
        .expect("joined");
    assert_eq!(outcome, Err(CommitWait::NotLeader));

    // Leading again (a later epoch): the leader's own HW acknowledges its own writes.
    move_leader(&mut img, 1);
    rm.reconcile(&img, &broker).expect("leader again");
    let epoch = part.leader_epoch();
    assert!(epoch > old_epoch, "a later epoch");
    part.set_follower_high_watermark(0, Offset(0));
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_millis(300);
    assert_eq!(part.wait_for_commit(1, epoch, deadline).await, Err(CommitWait::TimedOut));
    {
        let recs = vec![(None, Some(bytes::Bytes::from_static(b"v")))];
        let batch = encode_batch(&recs, 0, Compression::None).expect("batch");
        part.log().append_as_leader(&batch, epoch, 0).expect("append");
    }
    part.advance_high_watermark(Offset(1));
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(1);
    // ISR [1, 2]: node 2 must confirm first.
    assert_eq!(part.wait_for_commit(1, epoch, deadline).await, Err(CommitWait::TimedOut));
    part.record_follower_fetch(NodeId(2), 1, Offset(1), Offset(0), 0);
    part.advance_high_watermark(Offset(1));
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(1);
    assert_eq!(part.wait_for_commit(1, epoch, deadline).await, Ok(()));
}

/// Writes race leadership changes; every record must carry an epoch this replica led in
/// (a record stamped with another leader's epoch is a divergence no epoch check sees).
#[test]
fn appends_racing_leadership_changes_carry_the_epoch_of_their_range() {
    let (dir, broker) = node_dir();
    let rm = Arc::new(ReplicaManager::new(NodeId(1), dir.path().to_path_buf()));
    let mut img = image(1);
    rm.reconcile(&img, &broker).expect("leader");
    let part = rm.get("t", 0).expect("replica");
    let mut led = std::collections::HashSet::from([part.leader_epoch().0]);
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (part, stop) = (part.clone(), stop.clone());
        std::thread::spawn(move || {
            let recs = vec![(None, Some(bytes::Bytes::from_static(b"v")))];
            let batch = encode_batch(&recs, 0, Compression::None).expect("batch");
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let _ = part.append_as_leader(&batch, Acks::Leader, 0);
            }
        })
    };
    for round in 0..200 {
        let leader = if round % 2 == 0 { 2 } else { 1 };
        move_leader(&mut img, leader);
        rm.reconcile(&img, &broker).expect("reconcile");
        if leader == 1 {
            led.insert(part.leader_epoch().0);
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    writer.join().expect("writer");
    let log = part.log();
    let bytes = log.read(Offset(0), log.log_end_offset(), usize::MAX, true).expect("read");
    let mut at = 0usize;
    while at + 61 <= bytes.len() {
        let base = i64::from_be_bytes(bytes[at..at + 8].try_into().expect("8"));
        let len = i32::from_be_bytes(bytes[at + 8..at + 12].try_into().expect("4")) as usize;
        let stamped = i32::from_be_bytes(bytes[at + 12..at + 16].try_into().expect("4"));
        assert!(led.contains(&stamped), "record at {base} carries epoch {stamped}, led by 2");
        let (covering, _) = log.epochs_covering(Offset(base)).expect("an epoch");
        assert_eq!(stamped, covering.0, "record at {base} outside its epoch's range");
        at += 12 + len;
    }
}

/// Appends wake only what waits on their own partition: consumer long polls wait on the high
/// watermark, follower long polls on the log end offset.
#[test]
fn an_append_changes_only_its_own_partitions_watches() {
    let (dir, broker) = node_dir();
    let img = with_topic_u(&[]);
    let rm = ReplicaManager::new(NodeId(1), dir.path().to_path_buf());
    rm.reconcile(&img, &broker).expect("reconcile");
    let (t, u) = (rm.get("t", 0).expect("t-0"), rm.get("u", 0).expect("u-0"));
    let (mut t_end, mut t_hw) = (t.subscribe_log_end(), t.subscribe_high_watermark());
    let (mut u_end, mut u_hw) = (u.subscribe_log_end(), u.subscribe_high_watermark());
    for w in [&mut t_end, &mut t_hw, &mut u_end, &mut u_hw] {
        w.borrow_and_update();
    }
    let recs = vec![(None, Some(bytes::Bytes::from_static(b"v")))];
    let batch = encode_batch(&recs, 0, Compression::None).expect("batch");
    u.append_as_leader(&batch, Acks::Leader, 0).expect("append");
    assert!(u_end.has_changed().expect("open"), "u's followers are woken");
    assert!(u_hw.has_changed().expect("open"), "u's consumers are woken (ISR of one)");
    assert!(!t_end.has_changed().expect("open"), "t's followers sleep on");
    assert!(!t_hw.has_changed().expect("open"), "t's consumers sleep on");
    // t's ISR is [1, 2]: its own append wakes its followers, and its consumers only once
    // node 2 has the record.
    t.append_as_leader(&batch, Acks::Leader, 0).expect("append");
    assert!(t_end.has_changed().expect("open"));
    assert!(!t_hw.has_changed().expect("open"));
}

/// Topic u (led here alone, with `configs`) beside t-0 of [`image`] (led here, ISR [1, 2]).
fn with_topic_u(configs: &[(&str, &str)]) -> MetadataImage {
    let mut img = image(1);
    apply(
        &mut img,
        &MetadataCommand::CreateTopic {
            name: "u".into(),
            id: Uuid::from_u128(2),
            assignments: vec![vec![NodeId(1)]],
            configs: configs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        },
    );
    apply(
        &mut img,
        &MetadataCommand::ChangePartition {
            topic: "u".into(),
            partition: 0,
            leader: Some(NodeId(1)),
            isr: vec![NodeId(1)],
        },
    );
    img
}

/// The flusher takes its fsync out of the log: while a flush job of u-0 is outstanding, u-0
/// and t-0 still take appends (a job that held the log lock would deadlock this thread), and
/// what arrives meanwhile is left for the next flush.
#[test]
fn appends_go_on_while_a_flush_of_their_partition_is_in_progress() {
    let (dir, broker) = node_dir();
    let rm = ReplicaManager::new(NodeId(1), dir.path().to_path_buf());
    rm.reconcile(&with_topic_u(&[]), &broker).expect("reconcile");
    let (t, u) = (rm.get("t", 0).expect("t-0"), rm.get("u", 0).expect("u-0"));
    let recs = vec![(None, Some(bytes::Bytes::from_static(b"v")))];
    let batch = encode_batch(&recs, 0, Compression::None).expect("batch");
    u.append_as_leader(&batch, Acks::Leader, 0).expect("append");
    let job = u.begin_flush().expect("unflushed data to flush");
    u.append_as_leader(&batch, Acks::Leader, 0).expect("append during the flush");
    t.append_as_leader(&batch, Acks::Leader, 0).expect("another partition's append");
    job.run().expect("fsync");
    assert!(u.log().flush_due(i64::MAX), "the append made during the flush is still unflushed");
    u.flush_if_due(i64::MAX).expect("flush");
    assert!(!u.log().flush_due(i64::MAX));
}

/// `flush.messages=1`: every append hands its writer an fsync to wait for (off the log lock,
/// on a blocking thread); a topic without it hands none.
#[tokio::test]
async fn flush_messages_makes_the_writer_wait_for_its_own_fsync() {
    let (dir, broker) = node_dir();
    let rm = ReplicaManager::new(NodeId(1), dir.path().to_path_buf());
    rm.reconcile(&with_topic_u(&[("flush.messages", "1")]), &broker).expect("reconcile");
    let (t, u) = (rm.get("t", 0).expect("t-0"), rm.get("u", 0).expect("u-0"));
    let recs = vec![(None, Some(bytes::Bytes::from_static(b"v")))];
    let batch = encode_batch(&recs, 0, Compression::None).expect("batch");
    let appended = u.append_as_leader(&batch, Acks::Leader, 0).expect("append");
    let flush = appended.flush.expect("flush.messages=1 asks for an fsync");
    assert!(t.append_as_leader(&batch, Acks::Leader, 0).expect("append").flush.is_none());
    flush.wait().await.expect("fsync");
    assert!(!u.log().flush_due(i64::MAX), "nothing left unflushed");
}

/// KIP-392: the leader names an in-sync follower of the consumer's rack that has the offset;
/// never itself, never a replica behind the offset, and as a follower it names none.
#[test]
fn the_preferred_read_replica_is_an_in_sync_follower_in_the_consumers_rack() {
    let (dir, broker) = node_dir();
    let rm = ReplicaManager::new(NodeId(1), dir.path().to_path_buf());
    rm.reconcile(&image(1), &broker).expect("leader");
    let part = rm.get("t", 0).expect("replica");
    let rack_b = |n: NodeId| n == NodeId(2);
    // Node 2 has not fetched yet: its progress is unknown, so the leader serves.
    assert_eq!(part.preferred_read_replica(0, rack_b), None);
    part.record_follower_fetch(NodeId(2), 5, Offset(5), Offset(0), 0);
    assert_eq!(part.preferred_read_replica(5, rack_b), Some(NodeId(2)));
    assert_eq!(part.preferred_read_replica(6, rack_b), None, "node 2 does not have offset 6");
    assert_eq!(part.preferred_read_replica(5, |n| n == NodeId(1)), None, "the leader's rack");
    assert_eq!(part.preferred_read_replica(5, |_| false), None, "no replica in that rack");
    let mut img = image(1);
    move_leader(&mut img, 2);
    rm.reconcile(&img, &broker).expect("follower");
    assert_eq!(part.preferred_read_replica(0, |_| true), None, "only a leader names one");
    assert!(part.in_isr());
}

/// t-0 on replicas 1, 2 and 3, led by `leader` with `isr`.
fn three_replicas(leader: i32, isr: &[i32]) -> MetadataImage {
    replicated(&[1, 2, 3], leader, isr)
}

fn records(n: usize) -> bytes::Bytes {
    let recs: Vec<_> = (0..n).map(|_| (None, Some(bytes::Bytes::from_static(b"v")))).collect();
    encode_batch(&recs, 0, Compression::None).expect("batch")
}

/// Kafka's maximal ISR: once the leader proposes adding a follower, the controller may commit
/// it and elect that follower before the leader hears back, so until the answer the high
/// watermark waits for the follower too. Counting only the old ISR acknowledged records the
/// newly added member lacked.
#[test]
fn the_high_watermark_counts_a_member_an_expansion_in_flight_adds() {
    let (dir, broker) = node_dir();
    let rm = ReplicaManager::new(NodeId(1), dir.path().to_path_buf());
    rm.reconcile(&three_replicas(1, &[1, 3]), &broker).expect("leader");
    let part = rm.get("t", 0).expect("replica");
    let epoch = part.leader_epoch().0;
    part.append_as_leader(&records(5), Acks::All, 0).expect("append");
    part.read_for_follower(NodeId(3), 5, epoch, 1 << 20, 0).expect("3 fetches");
    assert_eq!(part.high_watermark(), Offset(5));
    let joined = part.read_for_follower(NodeId(2), 5, epoch, 1 << 20, 0).expect("2 fetches");
    assert_eq!(joined.isr_expansion, Some(vec![NodeId(1), NodeId(3), NodeId(2)]));
    part.append_as_leader(&records(5), Acks::All, 0).expect("append");
    let read = part.read_for_follower(NodeId(3), 10, epoch, 1 << 20, 0).expect("3 fetches");
    assert_eq!(read.high_watermark, Offset(5), "node 2 may already be in the ISR: wait for it");
    let read = part.read_for_follower(NodeId(2), 10, epoch, 1 << 20, 0).expect("2 fetches");
    assert_eq!(read.high_watermark, Offset(10));
    // Refused (or answered by metadata): the old ISR alone counts again.
    part.clear_isr_change();
    part.append_as_leader(&records(1), Acks::All, 0).expect("append");
    let read = part.read_for_follower(NodeId(3), 11, epoch, 1 << 20, 0).expect("3 fetches");
    assert_eq!(read.high_watermark, Offset(11));
}

/// Kafka's `isFollowerInSync`: a follower rejoins the ISR only once it reached the offset this
/// leadership began at, not merely the high watermark. A new leader's HW can lag what the old
/// leader acknowledged; a follower admitted at that HW could be elected next and lose those
/// records.
#[test]
fn a_follower_rejoins_the_isr_only_past_the_start_of_the_leaders_epoch() {
    let (dir, broker) = node_dir();
    let rm = ReplicaManager::new(NodeId(1), dir.path().to_path_buf());
    let mut img = three_replicas(2, &[1, 2]);
    rm.reconcile(&img, &broker).expect("follower of 2");
    let part = rm.get("t", 0).expect("replica");
    let old_epoch = part.leader_epoch();
    part.log().append_as_leader(&records(10), old_epoch, 0).expect("replicated from 2");
    part.set_follower_high_watermark(5, Offset(10));
    // Node 2 fails: node 1 leads from offset 10 with the HW it had copied, 5.
    apply(
        &mut img,
        &MetadataCommand::ChangePartition {
            topic: "t".into(),
            partition: 0,
            leader: Some(NodeId(1)),
            isr: vec![NodeId(1)],
        },
    );
    rm.reconcile(&img, &broker).expect("leader");
    assert!(part.is_leader());
    let read = part.read_for_follower(NodeId(3), 7, old_epoch.0, 1 << 20, 0).expect("fetch");
    assert_eq!(read.diverging, None, "node 3's log is a prefix of the leader's");
    assert_eq!(read.isr_expansion, None, "offset 7 is past the HW but before the epoch start");
    let read = part.read_for_follower(NodeId(3), 10, old_epoch.0, 1 << 20, 0).expect("fetch");
    assert_eq!(read.isr_expansion, Some(vec![NodeId(1), NodeId(3)]));
}
