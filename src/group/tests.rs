//! The coordinator on a real `__consumer_offsets` replica (one node, ISR of one): what it
//! writes, and in which order.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use uuid::Uuid;

use super::GroupCoordinator;
use super::member::{JoinRequest, SyncRequest};
use super::records::{OffsetValue, RecordKey};
use crate::config::broker::BrokerConfig;
use crate::config::group::{GroupConfig, OFFSETS_TOPIC};
use crate::error_code::ErrorCode;
use crate::metadata::StaticMetadata;
use crate::metadata::commands::{MetadataCommand, apply};
use crate::metadata::image::MetadataImage;
use crate::replica::ReplicaManager;
use crate::types::NodeId;

/// A coordinator that leads the one partition of `__consumer_offsets`, loaded.
async fn coordinator(dir: &std::path::Path) -> Arc<GroupCoordinator> {
    let mut img = MetadataImage::default();
    apply(
        &mut img,
        &MetadataCommand::CreateTopic {
            name: OFFSETS_TOPIC.into(),
            id: Uuid::from_u128(7),
            assignments: vec![vec![NodeId(1)]],
            configs: Default::default(),
        },
    );
    apply(
        &mut img,
        &MetadataCommand::ChangePartition {
            topic: OFFSETS_TOPIC.into(),
            partition: 0,
            leader: Some(NodeId(1)),
            isr: vec![NodeId(1)],
        },
    );
    let broker = BrokerConfig::dev(dir.to_path_buf(), "127.0.0.1:9092".parse().expect("addr"));
    let replicas = Arc::new(ReplicaManager::new(NodeId(1), dir.to_path_buf()));
    replicas.reconcile(&img, &broker).expect("reconcile");
    let groups = GroupCoordinator::new(GroupConfig::dev(), replicas, StaticMetadata::new(img));
    groups.on_metadata();
    for _ in 0..500 {
        if groups.list().0 == ErrorCode::None {
            return groups;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the offsets partition never loaded");
}

fn join_request(member_id: &str) -> JoinRequest {
    JoinRequest {
        member_id: member_id.into(),
        group_instance_id: None,
        client_id: "c".into(),
        client_host: "/127.0.0.1".into(),
        session_timeout_ms: 10_000,
        rebalance_timeout_ms: 10_000,
        protocol_type: "consumer".into(),
        protocols: vec![("range".into(), Bytes::from_static(b"m"))],
        require_known_member_id: false,
    }
}

/// One member joins `group` and, as its leader, syncs an assignment: (member id, generation).
async fn join_and_sync(
    groups: &GroupCoordinator,
    group: &str,
    request: JoinRequest,
) -> (String, i32) {
    let joined = groups.join(group, request).await;
    assert_eq!(joined.error, ErrorCode::None);
    let member = joined.member_id.clone();
    let sync = SyncRequest {
        generation: joined.generation,
        member_id: member.clone(),
        assignments: vec![(member.clone(), Bytes::from_static(b"a"))],
        ..Default::default()
    };
    assert_eq!(groups.sync(group, sync).await.error, ErrorCode::None);
    (member, joined.generation)
}

/// A member leaving empties the group, whose new state is stored without anyone waiting for
/// it; a commit decided right after must land after it in the log. (The store used to be
/// appended from a spawned task, so a later commit could overtake it, and a reload would then
/// replay the group's records out of the order they were decided in.)
#[tokio::test]
async fn a_fire_and_forget_group_store_precedes_every_later_write_of_the_group() {
    let dir = tempfile::tempdir().expect("tmp");
    let groups = coordinator(dir.path()).await;
    let ticker = {
        let groups = groups.clone();
        tokio::spawn(async move {
            loop {
                groups.tick();
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
    };
    let (member, _) = join_and_sync(&groups, "g", join_request("")).await;
    ticker.abort();

    let codes = groups.leave("g", &[(member, None)]).expect("leave");
    assert_eq!(codes, vec![ErrorCode::None]);
    let offset = OffsetValue {
        offset: 42,
        leader_epoch: -1,
        metadata: String::new(),
        commit_timestamp_ms: 0,
    };
    let committed =
        groups.commit_offsets("g", -1, "", None, vec![("t".into(), 0, Some(offset))]).await;
    assert_eq!(committed, Ok(()));

    let records = groups.offsets.read_all(0).expect("read");
    let kinds: Vec<&'static str> = records
        .iter()
        .map(|r| match RecordKey::decode(r.key.clone()).expect("our key") {
            RecordKey::Group { .. } => "group",
            RecordKey::Offset { .. } => "offset",
        })
        .collect();
    // Sync stored the assignment, leaving stored the empty group, then the commit.
    assert_eq!(kinds, vec!["group", "group", "offset"], "{records:?}");
    let fetched = groups.fetch_offsets("g", &None).expect("fetch");
    assert_eq!(fetched.len(), 1);
    assert_eq!(fetched[0].2.as_ref().map(|v| v.offset), Some(42));
}

/// KIP-211 expiry: a standalone consumer's offsets expire `offsets.retention.minutes` after
/// their commit, with tombstones for them and for the group left without offsets; a consumer
/// group's offsets expire that long after it became empty, not while it is active.
#[tokio::test]
async fn committed_offsets_expire_with_tombstones_after_offsets_retention_minutes() {
    let dir = tempfile::tempdir().expect("tmp");
    let groups = coordinator(dir.path()).await;
    let retention_ms = groups.config().offsets_retention_minutes * 60_000;
    let value = |offset: i64| OffsetValue {
        offset,
        leader_epoch: -1,
        metadata: String::new(),
        commit_timestamp_ms: crate::clock::now_ms(),
    };
    let commit = groups.commit_offsets("solo", -1, "", None, vec![("t".into(), 0, Some(value(7)))]);
    assert_eq!(commit.await, Ok(()));
    let now = crate::clock::now_ms();
    assert_eq!(groups.expire_offsets(now + retention_ms / 2).await, 0, "too young");
    assert_eq!(groups.expire_offsets(now + retention_ms + 1_000).await, 1);
    assert!(groups.fetch_offsets("solo", &None).expect("fetch").is_empty());
    let records = groups.offsets.read_all(0).expect("read");
    let tail: Vec<(bool, bool)> = records
        .iter()
        .rev()
        .take(2)
        .map(|r| {
            let group_key = matches!(RecordKey::decode(r.key.clone()), Ok(RecordKey::Group { .. }));
            (group_key, r.value.is_none())
        })
        .collect();
    assert_eq!(tail, vec![(true, true), (false, true)], "offset tombstone, then the group's");

    // A stable group subscribed to the topic: its offsets stay while it is not empty,
    // however old. (Subscription v0: version, topics ["t"], null user data.)
    let subscription = Bytes::from_static(&[0, 0, 0, 0, 0, 1, 0, 1, b't', 0xff, 0xff, 0xff, 0xff]);
    let mut request = join_request("");
    request.protocols = vec![("range".into(), subscription)];
    let (member, generation) = join_and_sync(&groups, "active", request).await;
    let committed = groups
        .commit_offsets("active", generation, &member, None, vec![("t".into(), 0, Some(value(9)))])
        .await;
    assert_eq!(committed, Ok(()));
    assert_eq!(groups.expire_offsets(now + 10 * retention_ms).await, 0);
    assert_eq!(groups.fetch_offsets("active", &None).expect("fetch").len(), 1);
}
