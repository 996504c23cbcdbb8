//! The cleaner through the log it cleans: a model of keyed writes checked against the cleaned
//! log (property test), tombstone expiry, idempotent producers' last batches, reopening, and a
//! follower copying a cleaned leader.

use std::collections::HashMap;

use bytes::Bytes;
use kafka_protocol::records::{Compression, RecordBatchDecoder};
use proptest::prelude::*;

use super::*;
use crate::config::topic::CleanupPolicy;
use crate::log::records::tests::keyed_batch;
use crate::log::{AppendError, CommitOutcome, LogConfig, PartitionLog};
use crate::types::LeaderEpoch;

fn compacted_config(segment_bytes: u64) -> LogConfig {
    LogConfig {
        segment_bytes,
        cleanup_policy: CleanupPolicy { delete: false, compact: true },
        min_cleanable_ratio: 0.0,
        delete_retention_ms: i64::MAX,
        index_interval_bytes: 64,
        ..LogConfig::for_tests()
    }
}

/// (offset, key, value) of every record from `from`, in log order, as a consumer sees them.
type Rec = (i64, Option<Bytes>, Option<Bytes>);

fn records_of(log: &PartitionLog, from: Offset) -> Vec<Rec> {
    let mut out = Vec::new();
    let mut at = from;
    loop {
        let mut bytes = log.read(at, log.log_end_offset(), usize::MAX, true).expect("read");
        if bytes.is_empty() {
            return out;
        }
        let mut rest = bytes.clone();
        while !rest.is_empty() {
            let h = crate::log::batch::validate(&rest).expect("valid batch");
            at = h.next_offset();
            let _ = rest.split_to(h.size_bytes);
        }
        let sets = RecordBatchDecoder::decode_all(&mut bytes).expect("decodes");
        // A batch is read whole; a client skips the records before its fetch offset.
        let records = sets.into_iter().flat_map(|s| s.records).filter(|r| r.offset >= from.0);
        out.extend(records.map(|r| (r.offset, r.key, r.value)));
    }
}

/// Cleans until nothing is dirty (several rounds when the map is small); returns the rounds.
fn clean_fully(log: &mut PartitionLog, map_bytes: u64, now_ms: i64) -> usize {
    let mut map = OffsetMap::with_memory(map_bytes);
    let mut rounds = 0;
    for _ in 0..100 {
        let leo = log.log_end_offset();
        let Some(plan) = log.plan_clean(leo, now_ms) else { break };
        let Some(cleaned) = clean(&plan, &mut map, &mut |_| {}).expect("clean") else { break };
        let before = log.cleaner_position();
        let outcome = log.commit_clean(&plan, cleaned).expect("commit");
        assert_ne!(outcome, CommitOutcome::Discarded);
        rounds += 1;
        if log.cleaner_position() == before {
            break;
        }
    }
    rounds
}

fn write(log: &mut PartitionLog, entries: &[(Option<&str>, Option<&str>)], now_ms: i64) {
    let b = keyed_batch(entries, Compression::None, -1);
    log.append_as_leader(&b, LeaderEpoch(1), now_ms).expect("append");
}

/// Checks the cleaned log against the writes: offsets increase, every record is an original
/// one, each key's latest record is there, and nothing at or past `untouched_from` changed.
fn check_against(original: &[Rec], cleaned: &[Rec], untouched_from: i64) {
    assert!(cleaned.windows(2).all(|w| w[0].0 < w[1].0), "offsets strictly increase");
    let by_offset: HashMap<i64, &Rec> = original.iter().map(|r| (r.0, r)).collect();
    for r in cleaned {
        assert_eq!(by_offset.get(&r.0), Some(&r), "record at {} is an original one", r.0);
    }
    let mut latest: HashMap<&Option<Bytes>, &Rec> = HashMap::new();
    for r in original {
        latest.insert(&r.1, r);
    }
    for r in latest.values() {
        assert!(cleaned.contains(r), "the latest record of key {:?} survives", r.1);
    }
    let tail = |v: &[Rec]| v.iter().filter(|r| r.0 >= untouched_from).cloned().collect::<Vec<_>>();
    assert_eq!(tail(original), tail(cleaned), "the uncleanable tail is untouched");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Random keyed writes and tombstones: the cleaned log read from any offset is the model's
    /// latest-per-key view below the cleaner's position plus the untouched tail, with a map big
    /// enough for one round and with one that needs many.
    #[test]
    fn a_cleaned_log_reads_as_the_latest_value_of_every_key(
        writes in proptest::collection::vec((0u8..12, proptest::option::weighted(0.8, 0u16..1000)), 1..300),
        batch_len in 1usize..6,
        small_map in any::<bool>(),
    ) {
        let dir = tempfile::tempdir().expect("tmp");
        let mut log = PartitionLog::open(dir.path(), compacted_config(600)).expect("open").0;
        let names: Vec<String> = (0..12).map(|k| format!("key-{k}")).collect();
        let values: Vec<(usize, Option<String>)> =
            writes.iter().map(|(k, v)| (*k as usize, v.map(|v| format!("value-{v}")))).collect();
        for chunk in values.chunks(batch_len) {
            let entries: Vec<(Option<&str>, Option<&str>)> =
                chunk.iter().map(|(k, v)| (Some(names[*k].as_str()), v.as_deref())).collect();
            write(&mut log, &entries, 1_000);
        }
        let original = records_of(&log, Offset(0));
        log.flush().expect("flush");
        let active_base = log.active_base_offset();
        // 24 bytes per slot, a third kept free for growth: a map of 7 keys needs several rounds.
        let map_bytes = if small_map { 24 * 12 } else { 1 << 20 };
        clean_fully(&mut log, map_bytes, 2_000);
        let cleaned = records_of(&log, Offset(0));
        check_against(&original, &cleaned, active_base.0);
        // Below the cleaner's position each key appears once.
        let position = log.cleaner_position().0;
        prop_assert!(active_base.0 == 0 || position > 0, "something was cleaned");
        let mut seen = std::collections::HashSet::new();
        for r in cleaned.iter().filter(|r| r.0 < position) {
            prop_assert!(seen.insert(r.1.clone()), "key {:?} twice below {}", r.1, position);
        }
        // Any starting offset reads the suffix of the same view.
        for from in [0, 1, original.len() as i64 / 2, position] {
            let suffix: Vec<Rec> = cleaned.iter().filter(|r| r.0 >= from).cloned().collect();
            prop_assert_eq!(records_of(&log, Offset(from)), suffix);
        }
        // Reopened without a clean shutdown: the same records, every segment intact.
        let end = log.log_end_offset();
        drop(log);
        let (log, report) = PartitionLog::open(dir.path(), compacted_config(600)).expect("reopen");
        prop_assert_eq!(report.recovered.truncated_bytes, 0);
        prop_assert_eq!(report.segments_dropped, 0);
        prop_assert_eq!(log.log_end_offset(), end);
        prop_assert_eq!(records_of(&log, Offset(0)), cleaned);
    }
}

#[test]
fn tombstones_stay_for_delete_retention_after_their_first_cleaning_then_go() {
    let dir = tempfile::tempdir().expect("tmp");
    let config = LogConfig { delete_retention_ms: 10_000, ..compacted_config(300) };
    let mut log = PartitionLog::open(dir.path(), config).expect("open").0;
    for i in 0..20 {
        let v = format!("v{i}");
        write(&mut log, &[(Some("a"), Some(&v)), (Some("b"), Some(&v))], 0);
    }
    write(&mut log, &[(Some("a"), None)], 0);
    for i in 0..20 {
        write(&mut log, &[(Some("c"), Some(&format!("c{i}")))], 0);
    }
    log.flush().expect("flush");
    clean_fully(&mut log, 1 << 20, 10_000);
    let keys = |log: &PartitionLog| -> Vec<(Option<Bytes>, bool)> {
        records_of(log, Offset(0)).into_iter().map(|r| (r.1, r.2.is_none())).collect()
    };
    let key = |k: &str| Some(Bytes::copy_from_slice(k.as_bytes()));
    assert!(keys(&log).contains(&(key("a"), true)), "the tombstone is kept at first");
    assert!(
        !keys(&log).contains(&(key("a"), false)),
        "it deleted the key's values: {:?}",
        records_of(&log, Offset(0))
    );
    // More writes make the log dirty again; 10 s after its first cleaning the tombstone goes.
    for i in 0..20 {
        write(&mut log, &[(Some("c"), Some(&format!("again{i}")))], 0);
    }
    log.flush().expect("flush");
    clean_fully(&mut log, 1 << 20, 15_000);
    assert!(keys(&log).contains(&(key("a"), true)), "kept within delete.retention.ms");
    for i in 0..20 {
        write(&mut log, &[(Some("c"), Some(&format!("more{i}")))], 0);
    }
    log.flush().expect("flush");
    clean_fully(&mut log, 1 << 20, 22_000);
    assert!(!keys(&log).iter().any(|(k, _)| *k == key("a")), "the tombstone expired");
    assert!(keys(&log).contains(&(key("b"), false)), "other keys stay");
}

#[test]
fn an_idempotent_producers_last_batch_survives_as_an_empty_batch() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut log = PartitionLog::open(dir.path(), compacted_config(300)).expect("open").0;
    let b = keyed_batch(&[(Some("a"), Some("from-7"))], Compression::None, 7);
    log.append_as_leader(&b, LeaderEpoch(1), 0).expect("append");
    for i in 0..30 {
        write(&mut log, &[(Some("a"), Some(&format!("v{i}")))], 0);
    }
    log.flush().expect("flush");
    clean_fully(&mut log, 1 << 20, 1_000);
    let mut bytes = log.read(Offset(0), log.log_end_offset(), usize::MAX, true).expect("read");
    let mut found = None;
    while !bytes.is_empty() {
        let h = crate::log::batch::validate(&bytes).expect("valid batch");
        if h.producer_id.0 == 7 {
            found = Some(h);
        }
        let _ = bytes.split_to(h.size_bytes);
    }
    let h = found.expect("producer 7's batch kept");
    assert_eq!((h.records_count, h.base_offset, h.last_sequence()), (0, Offset(0), 0));
    // A retry of that batch is still recognised after a restart that rebuilds producer state
    // from the cleaned log.
    let _ = std::fs::remove_file(dir.path().join("producer-state"));
    drop(log);
    let mut log = PartitionLog::open(dir.path(), compacted_config(300)).expect("reopen").0;
    assert!(log.append_as_leader(&b, LeaderEpoch(1), 0).expect("retry").duplicate);
}

#[test]
fn keyless_records_are_refused_on_a_compacted_log_and_nothing_is_written() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut log = PartitionLog::open(dir.path(), compacted_config(4096)).expect("open").0;
    let b = keyed_batch(&[(Some("a"), Some("1")), (None, Some("2"))], Compression::Gzip, -1);
    assert!(matches!(
        log.append_as_leader(&b, LeaderEpoch(1), 0),
        Err(AppendError::KeylessRecord { record_index: 1 })
    ));
    assert_eq!(log.log_end_offset(), Offset(0));
}

#[test]
fn a_follower_copies_a_cleaned_leader_gaps_and_all() {
    let (ld, fd) = (tempfile::tempdir().expect("tmp"), tempfile::tempdir().expect("tmp"));
    let mut leader = PartitionLog::open(ld.path(), compacted_config(300)).expect("open").0;
    for i in 0..40 {
        write(&mut leader, &[(Some(["a", "b", "c"][i % 3]), Some(&format!("v{i}")))], 0);
    }
    leader.flush().expect("flush");
    clean_fully(&mut leader, 1 << 20, 1_000);
    let mut follower = PartitionLog::open(fd.path(), compacted_config(300)).expect("open").0;
    let mut from = Offset(0);
    while from < leader.log_end_offset() {
        let bytes = leader.read(from, leader.log_end_offset(), 500, true).expect("read");
        from = follower.append_as_follower(&bytes, 0).expect("replicate");
    }
    assert_eq!(follower.log_end_offset(), leader.log_end_offset());
    assert_eq!(records_of(&follower, Offset(0)), records_of(&leader, Offset(0)));
}

#[test]
fn a_round_that_straddles_a_truncation_is_discarded() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut log = PartitionLog::open(dir.path(), compacted_config(300)).expect("open").0;
    for i in 0..40 {
        write(&mut log, &[(Some("a"), Some(&format!("v{i}")))], 0);
    }
    log.flush().expect("flush");
    let before = records_of(&log, Offset(0));
    let plan = log.plan_clean(log.log_end_offset(), 1_000).expect("plan");
    let cleaned = clean(&plan, &mut OffsetMap::with_memory(1 << 20), &mut |_| {})
        .expect("clean")
        .expect("dirty");
    log.truncate_to(Offset(35)).expect("truncate");
    assert_eq!(log.commit_clean(&plan, cleaned).expect("commit"), CommitOutcome::Discarded);
    let after: Vec<Rec> = before.into_iter().filter(|r| r.0 < 35).collect();
    assert_eq!(records_of(&log, Offset(0)), after);
    assert!(
        std::fs::read_dir(dir.path()).expect("ls").all(|e| !e
            .expect("entry")
            .file_name()
            .to_string_lossy()
            .ends_with(".cleaned")),
        "the discarded round's files are gone"
    );
}

#[test]
fn a_record_past_max_compaction_lag_makes_the_log_due_whatever_its_ratio() {
    let dir = tempfile::tempdir().expect("tmp");
    let config = LogConfig {
        min_cleanable_ratio: 1.0,
        max_compaction_lag_ms: 5_000,
        ..compacted_config(300)
    };
    assert_eq!(config.roll_ms(), 5_000, "the active segment rolls at the lag too (KIP-354)");
    let mut log = PartitionLog::open(dir.path(), config).expect("open").0;
    for i in 0..10 {
        write(&mut log, &[(Some("a"), Some(&format!("v{i}")))], 0);
    }
    log.flush().expect("flush");
    let leo = log.log_end_offset();
    // Records are stamped 1000 + i: at 3 s nothing is overdue, at 10 s the first dirty batch is.
    // (A ratio threshold of 2 is never reached: only overdue makes the log due.)
    let early = log.cleanable(leo, 3_000).expect("compacted");
    assert!(!early.overdue && !early.due(2.0), "{early:?}");
    let late = log.cleanable(leo, 10_000).expect("compacted");
    assert!(late.overdue && late.due(2.0), "{late:?}");
}

#[test]
fn create_time_records_outside_the_kip_937_bounds_are_refused() {
    let dir = tempfile::tempdir().expect("tmp");
    let config = LogConfig {
        timestamp_before_max_ms: 500,
        timestamp_after_max_ms: 100,
        cleanup_policy: CleanupPolicy { delete: true, compact: false },
        ..LogConfig::for_tests()
    };
    let mut log = PartitionLog::open(dir.path(), config).expect("open").0;
    // Records stamped 1000 and 1001.
    let b = keyed_batch(&[(Some("a"), Some("1")), (Some("b"), Some("2"))], Compression::Zstd, -1);
    assert!(matches!(
        log.append_as_leader(&b, LeaderEpoch(1), 1_600),
        Err(AppendError::InvalidTimestamp { record_index: 0, timestamp_ms: 1_000, .. })
    ));
    assert!(matches!(
        log.append_as_leader(&b, LeaderEpoch(1), 900),
        Err(AppendError::InvalidTimestamp { record_index: 1, timestamp_ms: 1_001, .. })
    ));
    assert_eq!(log.log_end_offset(), Offset(0), "nothing written");
    assert!(log.append_as_leader(&b, LeaderEpoch(1), 1_200).is_ok());
}
