//! The metadata quorum's log stays small: past the snapshot threshold, a snapshot is built and
//! the raft log before it purged. (Replaying snapshot + tail after a restart is exercised by the
//! conformance suite's restart cases; an in-process restart here was flaky because a task of the
//! stopped broker can still hold the store, see the closing note.)

mod common;

use std::time::{Duration, Instant};

use common::TestBroker;
use samsa::controller::ControllerRequest;
use samsa::types::NodeId;

#[tokio::test(flavor = "multi_thread")]
async fn snapshots_and_purge_bound_the_raft_log() {
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
    let image = b.broker.metadata.image();
    assert_eq!(image.next_producer_id, 1300 * 1000, "every committed entry was applied once");
    b.stop().await;
}
