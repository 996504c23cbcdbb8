//! Transactions through the partition log: the last stable offset, the aborted-transaction
//! index across a crash and a clean restart, truncation that reopens a transaction, and the
//! cleaner (bounded by the LSO, dropping aborted records, keeping markers).

use bytes::Bytes;
use kafka_protocol::records::{Compression, RecordBatchDecoder};

use super::*;
use crate::client::records::{encode_records, new_record};
use crate::config::topic::CleanupPolicy;
use crate::log::cleaner::{OffsetMap, clean};
use crate::log::control::{ControlRecord, Marker};

/// A transactional batch of `n` keyed records of producer `pid` (epoch 0) from `seq`.
fn txn_batch(pid: i64, seq: i32, n: usize, key: &str) -> Vec<u8> {
    let recs: Vec<_> = (0..n)
        .map(|i| {
            let mut r = new_record(
                i,
                Some(Bytes::from(key.to_string())),
                Some(Bytes::from(format!("{key}-{pid}-{i}"))),
                1_000,
                Some(crate::client::records::ProducerIds {
                    producer_id: pid,
                    producer_epoch: 0,
                    base_sequence: seq,
                }),
            );
            r.transactional = true;
            r
        })
        .collect();
    encode_records(&recs, Compression::None).expect("encode").to_vec()
}

fn marker(log: &mut PartitionLog, pid: i64, commit: bool) -> Offset {
    let rec = ControlRecord {
        marker: if commit { Marker::Commit } else { Marker::Abort },
        coordinator_epoch: 0,
    };
    log.append_marker(ProducerId(pid), ProducerEpoch(0), rec, LeaderEpoch(0), 1_000)
        .expect("marker")
        .base_offset
}

fn config() -> LogConfig {
    LogConfig { segment_bytes: 600, index_interval_bytes: 64, ..LogConfig::for_tests() }
}

/// Two interleaved transactions, one aborted: (log, abort marker offset).
fn two_transactions(log: &mut PartitionLog) -> Offset {
    log.append_as_leader(&txn_batch(1, 0, 2, "a"), LeaderEpoch(0), 1_000).expect("t1"); // 0-1
    log.append_as_leader(&txn_batch(2, 0, 2, "b"), LeaderEpoch(0), 1_000).expect("t2"); // 2-3
    assert_eq!(log.first_unstable_offset(), Some(Offset(0)));
    let abort = marker(log, 1, false); // 4
    assert_eq!(log.first_unstable_offset(), Some(Offset(2)));
    marker(log, 2, true); // 5
    assert_eq!(log.first_unstable_offset(), None);
    abort
}

#[test]
fn an_abort_is_indexed_and_answers_reads_after_a_crash_and_after_a_clean_restart() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut log = PartitionLog::open(dir.path(), config()).expect("open").0;
    let abort = two_transactions(&mut log);
    let expected = vec![AbortedTxn {
        producer_id: ProducerId(1),
        first_offset: Offset(0),
        last_offset: abort,
        last_stable_offset: Offset(2),
    }];
    assert_eq!(log.aborted_txns(Offset(0), Offset(6)), expected);
    assert_eq!(log.aborted_txns(Offset(5), Offset(6)), vec![], "the abort lies before the read");
    // A crash: no clean shutdown, nothing flushed; recovery replays and re-derives the index.
    drop(log);
    for f in std::fs::read_dir(dir.path()).expect("dir") {
        let p = f.expect("entry").path();
        if p.extension().is_some_and(|e| e == "txnindex") {
            std::fs::remove_file(p).expect("rm"); // as if the index had not reached the disk
        }
    }
    let mut log = PartitionLog::open(dir.path(), config()).expect("reopen").0;
    assert_eq!(log.aborted_txns(Offset(0), Offset(6)), expected, "rebuilt by recovery");
    assert_eq!(log.first_unstable_offset(), None);
    // An open transaction survives a clean restart through the producer snapshot.
    log.append_as_leader(&txn_batch(3, 0, 1, "c"), LeaderEpoch(0), 1_000).expect("t3");
    log.close_cleanly().expect("close");
    drop(log);
    let log = PartitionLog::open(dir.path(), config()).expect("reopen").0;
    assert_eq!(log.first_unstable_offset(), Some(Offset(6)));
    assert_eq!(log.aborted_txns(Offset(0), Offset(7)), expected);
}

#[test]
fn truncating_away_a_marker_reopens_its_transaction_and_drops_its_index_entry() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut log = PartitionLog::open(dir.path(), config()).expect("open").0;
    let abort = two_transactions(&mut log);
    log.truncate_to(abort).expect("truncate");
    assert_eq!(log.first_unstable_offset(), Some(Offset(0)), "both transactions are open again");
    assert_eq!(log.aborted_txns(Offset(0), Offset(10)), vec![]);
    // The follower then copies the leader's marker: closed again, indexed again.
    marker(&mut log, 1, false);
    assert_eq!(log.first_unstable_offset(), Some(Offset(2)));
    assert_eq!(log.aborted_txns(Offset(0), Offset(10)).len(), 1);
}

#[test]
fn a_client_may_not_write_control_batches() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut log = PartitionLog::open(dir.path(), config()).expect("open").0;
    let rec = ControlRecord { marker: Marker::Commit, coordinator_epoch: 0 };
    let bytes = crate::log::control::encode_marker(1, 0, rec, 0);
    let refused = log.append_as_leader(&bytes, LeaderEpoch(0), 0);
    assert!(
        matches!(refused, Err(AppendError::Batch(BatchError::InvalidRecord(_)))),
        "{refused:?}"
    );
}

fn values(log: &PartitionLog) -> Vec<(i64, bool, Option<Bytes>)> {
    let mut bytes = log.read(Offset(0), log.log_end_offset(), usize::MAX, true).expect("read");
    let sets = RecordBatchDecoder::decode_all(&mut bytes).expect("decodes");
    sets.into_iter().flat_map(|s| s.records).map(|r| (r.offset, r.control, r.value)).collect()
}

#[test]
fn the_cleaner_stops_at_the_lso_drops_aborted_records_and_keeps_markers_in_retention() {
    let dir = tempfile::tempdir().expect("tmp");
    let cfg = LogConfig {
        cleanup_policy: CleanupPolicy { delete: false, compact: true },
        min_cleanable_ratio: 0.0,
        delete_retention_ms: i64::MAX,
        ..config()
    };
    let mut log = PartitionLog::open(dir.path(), cfg).expect("open").0;
    two_transactions(&mut log);
    // Key "a" was aborted, "b" committed; a later open transaction rewrites "b".
    log.roll().expect("roll");
    log.append_as_leader(&txn_batch(3, 0, 1, "b"), LeaderEpoch(0), 1_000).expect("open txn");
    for _ in 0..6 {
        log.roll().expect("roll");
        let b = crate::log::records::tests::keyed_batch(
            &[(Some("z"), Some("z"))],
            Compression::None,
            -1,
        );
        log.append_as_leader(&b, LeaderEpoch(0), 1_000).expect("filler");
    }
    log.flush().expect("flush");
    let mut map = OffsetMap::with_memory(1 << 20);
    let plan = log.plan_clean(log.log_end_offset(), 10_000).expect("a plan");
    assert!(
        plan.segments.iter().all(|s| s.end <= Offset(6)),
        "nothing from the open transaction's first offset (6) on is cleaned"
    );
    let cleaned = clean(&plan, &mut map, &mut |_| {}).expect("clean").expect("dirty");
    log.commit_clean(&plan, cleaned).expect("commit");
    let after = values(&log);
    assert!(
        after.iter().all(|(_, _, v)| v.as_deref() != Some(b"a-1-0".as_slice())),
        "aborted gone"
    );
    assert!(
        after.iter().any(|(_, _, v)| v.as_deref() == Some(b"b-2-1".as_slice())),
        "committed b kept"
    );
    assert_eq!(after.iter().filter(|(_, control, _)| *control).count(), 2, "both markers kept");
    assert_eq!(log.aborted_txns(Offset(0), Offset(6)).len(), 1, "the abort stays indexed");
    assert_eq!(log.first_unstable_offset(), Some(Offset(6)));
}
