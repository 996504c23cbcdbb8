//! KIP-320 on the leader's log: where a follower must truncate to when its log differs.

use crate::log::PartitionLog;
use crate::types::LeaderEpoch;

/// KIP-320, on the leader's log: where a follower whose last batch has `last_fetched_epoch`
/// and whose log ends at `fetch_offset` must truncate to, if its log differs from the leader's.
/// `None` when the follower's log is a prefix of the leader's.
pub(crate) fn divergence(
    log: &PartitionLog,
    last_fetched_epoch: i32,
    fetch_offset: i64,
) -> Option<(i32, i64)> {
    let (start, leo) = (log.log_start_offset(), log.log_end_offset());
    if last_fetched_epoch >= 0 && fetch_offset > start.0 {
        match log.end_offset_for_epoch(LeaderEpoch(last_fetched_epoch)) {
            Some((e, end)) if e.0 == last_fetched_epoch && end.0 >= fetch_offset => {}
            Some((e, end)) => return Some((e.0, end.0.min(fetch_offset))),
            None => return Some((-1, start.0)),
        }
    }
    // Ahead of the leader: only possible when the leader's log lost data.
    (fetch_offset > leo.0).then(|| (log.latest_epoch().map_or(-1, |e| e.0), leo.0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::records::{encode_records, new_record};
    use crate::log::LogConfig;
    use crate::types::Offset;
    use bytes::Bytes;
    use kafka_protocol::records::Compression;

    fn batch(n: usize, tag: &str) -> Bytes {
        let recs: Vec<_> = (0..n)
            .map(|i| new_record(i, None, Some(Bytes::from(format!("{tag}{i}"))), 0, None))
            .collect();
        encode_records(&recs, Compression::None).expect("encode")
    }

    /// Raft §5.3 / KIP-101 scenario: the old leader B took writes in epoch 0 that never reached
    /// A; A became leader in epoch 1 and wrote its own. B must drop its extra records and end up
    /// byte-identical to A.
    #[test]
    fn a_diverged_follower_truncates_to_the_leaders_epoch_boundary_and_converges() {
        let (ad, bd) = (tempfile::tempdir().expect("tmp"), tempfile::tempdir().expect("tmp"));
        let mut a = PartitionLog::open(ad.path(), LogConfig::for_tests()).expect("open").0;
        let mut b = PartitionLog::open(bd.path(), LogConfig::for_tests()).expect("open").0;
        for _ in 0..5 {
            b.append_as_leader(&batch(2, "both"), LeaderEpoch(0), 0).expect("append");
        }
        let shared = b.read(Offset(0), Offset(10), 1 << 20, true).expect("read");
        a.append_as_follower(&shared, 0).expect("replicate");
        b.append_as_leader(&batch(5, "lost"), LeaderEpoch(0), 0).expect("unreplicated"); // 10..15
        a.append_as_leader(&batch(3, "new"), LeaderEpoch(1), 0).expect("new leader"); // 10..13
        // B fetches at its end, 15, with last epoch 0; A's epoch 0 ended at 10.
        assert_eq!(divergence(&a, 0, 15), Some((0, 10)));
        b.truncate_to(Offset(10)).expect("truncate");
        assert_eq!(divergence(&a, 0, 10), None, "B is now a prefix of A");
        let rest = a.read(Offset(10), a.log_end_offset(), 1 << 20, true).expect("read");
        b.append_as_follower(&rest, 0).expect("catch up");
        let end = a.log_end_offset();
        assert_eq!(b.log_end_offset(), end);
        assert_eq!(
            a.read(Offset(0), end, 1 << 20, true).expect("a"),
            b.read(Offset(0), end, 1 << 20, true).expect("b"),
            "identical records at identical offsets"
        );
        assert_eq!(b.end_offset_for_epoch(LeaderEpoch(0)), Some((LeaderEpoch(0), Offset(10))));
        assert_eq!(divergence(&a, 1, 99), Some((1, 13)), "ahead of the leader in its epoch");
    }

    /// Found by the chaos suite: B led epoch 1 without appending anything (its epoch cache ends
    /// with an empty epoch 1 at its log end), then A led epoch 2. A never knew epoch 1, so it
    /// answers "epoch 0 ends at your log end"; truncating to the log end must drop B's empty
    /// epoch 1, or B asks again with last epoch 1 and loops forever outside the ISR.
    #[test]
    fn an_empty_epoch_at_the_followers_log_end_is_dropped_and_fetching_goes_on() {
        let (ad, bd) = (tempfile::tempdir().expect("tmp"), tempfile::tempdir().expect("tmp"));
        let mut a = PartitionLog::open(ad.path(), LogConfig::for_tests()).expect("open").0;
        let mut b = PartitionLog::open(bd.path(), LogConfig::for_tests()).expect("open").0;
        b.append_as_leader(&batch(4, "e0"), LeaderEpoch(0), 0).expect("append");
        let shared = b.read(Offset(0), Offset(4), 1 << 20, true).expect("read");
        a.append_as_follower(&shared, 0).expect("replicate");
        b.start_leader_epoch(LeaderEpoch(1)).expect("b leads epoch 1, writes nothing");
        a.start_leader_epoch(LeaderEpoch(2)).expect("a leads epoch 2");
        a.append_as_leader(&batch(2, "e2"), LeaderEpoch(2), 0).expect("append");
        let last = b.latest_epoch().map_or(-1, |e| e.0);
        assert_eq!(last, 1);
        let (epoch, end) = divergence(&a, last, b.log_end_offset().0).expect("diverges");
        assert_eq!((epoch, end), (0, 4));
        b.truncate_to(Offset(end)).expect("truncate");
        let last = b.latest_epoch().map_or(-1, |e| e.0);
        assert_eq!(last, 0, "the empty epoch is gone");
        assert_eq!(divergence(&a, last, b.log_end_offset().0), None, "B is a prefix of A again");
        let rest = a.read(Offset(4), a.log_end_offset(), 1 << 20, true).expect("read");
        b.append_as_follower(&rest, 0).expect("catch up");
        assert_eq!(b.log_end_offset(), a.log_end_offset());
    }
}
