//! The metadata quorum's log stays small: past the snapshot threshold, a snapshot is built and
//! the raft log before it purged, and a restart rebuilds the same image from snapshot + tail.

mod common;

use std::time::{Duration, Instant};

use common::TestBroker;
use samsa::controller::ControllerRequest;
use samsa::types::NodeId;

#[tokio::test(flavor = "multi_thread")]
async fn snapshots_and_purge_bound_the_raft_log_and_restart_replays_them() {
    let b = TestBroker::start(&[]).await;
    // Each allocation is one committed raft entry; 1,300 pass the 1,000-entry snapshot policy.
    for _ in 0..1300 {
        b.broker
            .controller
            .execute(ControllerRequest::AllocateProducerIds { broker: NodeId(1) })
            .await
            .expect("commit");
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let q = b.broker.metadata.quorum();
        if q.snapshot_index > 0 && q.purged_index > 0 {
            assert!(q.applied_index - q.purged_index <= 1100, "log kept below the policy: {q:?}");
            break;
        }
        assert!(Instant::now() < deadline, "no snapshot/purge: {q:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let before = b.broker.metadata.image();
    assert_eq!(before.next_producer_id, 1300 * 1000);
    let dir = b.dir.path().join("data");
    let (config_dir, addr) = (b.dir.path().to_path_buf(), b.addr);
    b.stop_keep_data().await;
    let again = TestBroker::start_in(&config_dir, addr.port(), &[]).await;
    let after = again.broker.metadata.image();
    assert_eq!(
        after.next_producer_id, before.next_producer_id,
        "snapshot + log replay give the same image"
    );
    assert_eq!(after.cluster_id, before.cluster_id);
    again.stop().await;
    std::fs::remove_dir_all(&config_dir).expect("cleanup");
    let _ = dir;
}
