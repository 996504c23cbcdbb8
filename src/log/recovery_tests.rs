//! Restart: what is trusted, what is re-validated, and that both end in the same log.

use super::*;
use crate::log::PartitionLog;
use crate::log::batch::tests::encode_batch;
use crate::types::LeaderEpoch;
use kafka_protocol::records::Compression;

fn open(dir: &Path) -> (PartitionLog, OpenReport) {
    PartitionLog::open(dir, LogConfig::for_tests()).expect("open")
}

/// Appends `n` batches of 3 records (4 KiB segments: several segments roll).
fn fill(log: &mut PartitionLog, n: i64) {
    for i in 0..n {
        let b = encode_batch(3, 1000 + i, None, Compression::None);
        log.append_as_leader(&b, LeaderEpoch(0), 1000 + i).expect("append");
    }
}

/// Every batch of the log, segment after segment.
fn everything(log: &PartitionLog) -> Vec<u8> {
    let mut out = Vec::new();
    let mut next = log.log_start_offset();
    while next < log.log_end_offset() {
        let chunk = log.read(next, log.log_end_offset(), usize::MAX, true).expect("read");
        let mut rest: &[u8] = &chunk;
        while let Ok(h) = crate::log::batch::parse_header(rest) {
            next = h.next_offset();
            rest = &rest[h.size_bytes..];
        }
        assert!(!chunk.is_empty(), "a read below the log end returns data");
        out.extend_from_slice(&chunk);
    }
    out
}

#[test]
fn after_a_clean_shutdown_nothing_is_revalidated() {
    let dir = tempfile::tempdir().expect("tmp");
    let (mut log, _) = open(dir.path());
    fill(&mut log, 100);
    let (leo, bytes) = (log.log_end_offset(), everything(&log));
    log.close_cleanly().expect("close");
    assert!(
        log.append_as_leader(&encode_batch(1, 0, None, Compression::None), LeaderEpoch(0), 0)
            .is_err(),
        "nothing is appended after the clean-shutdown marker"
    );
    drop(log);

    let (log, report) = open(dir.path());
    assert_eq!(report.segments_trusted, report.segments, "{report:?}");
    assert_eq!(report.recovered.valid_batches, 0, "no batch was re-validated");
    assert_eq!(log.log_end_offset(), leo);
    assert_eq!(everything(&log), bytes);
    assert_eq!(log.max_timestamp(leo), Some((Offset(299), 1101)), "from the time index");
    assert!(!dir.path().join(CLEAN_SHUTDOWN_FILE).exists(), "the marker is spent");
    drop(log);
    // Killed now (no clean shutdown): the recovery point still spares the flushed segments.
    let (_, report) = open(dir.path());
    assert!(report.segments_trusted >= report.segments - 1, "{report:?}");
}

#[test]
fn after_a_crash_only_what_lies_past_the_last_flush_is_revalidated() {
    let dir = tempfile::tempdir().expect("tmp");
    let (mut log, _) = open(dir.path());
    fill(&mut log, 100);
    let job = log.begin_flush().expect("handles").expect("unflushed data");
    job.run().expect("fsync");
    log.flush_done(&job);
    let flushed = log.recovery_point();
    assert_eq!(flushed, log.log_end_offset());
    log.checkpoint_recovery_point().expect("checkpoint");
    fill(&mut log, 50); // not flushed
    let (leo, bytes) = (log.log_end_offset(), everything(&log));
    drop(log); // a crash: no clean shutdown

    let (log, report) = open(dir.path());
    assert!(report.segments_trusted > 0, "segments below the recovery point are trusted");
    assert!(report.segments_trusted < report.segments, "the rest is re-validated: {report:?}");
    assert!(report.recovered.valid_batches > 0);
    assert_eq!(log.log_end_offset(), leo);
    assert_eq!(everything(&log), bytes);
    assert_eq!(log.recovery_point(), flushed, "the recovery point is where the last flush left it");
}

#[test]
fn a_damaged_index_of_a_trusted_segment_is_rebuilt_from_the_segment() {
    let dir = tempfile::tempdir().expect("tmp");
    let (mut log, _) = open(dir.path());
    fill(&mut log, 100);
    let (leo, bytes) = (log.log_end_offset(), everything(&log));
    log.close_cleanly().expect("close");
    drop(log);
    // Scramble the first segment's offset index: entries out of order.
    let index = dir.path().join(crate::log::segment::file_name(Offset(0), "index"));
    let mut raw = fs::read(&index).expect("index");
    assert!(raw.len() >= 16, "at least two entries");
    raw[..8].copy_from_slice(&[0xff; 8]);
    fs::write(&index, raw).expect("write");

    let (log, report) = open(dir.path());
    assert_eq!(report.segments_trusted, report.segments - 1, "{report:?}");
    assert_eq!(log.log_end_offset(), leo);
    assert_eq!(everything(&log), bytes);
    assert!(!log.read(Offset(0), leo, 100, true).expect("read from 0").is_empty());
}

#[test]
fn truncation_lowers_the_recovery_point_on_disk_at_once() {
    let dir = tempfile::tempdir().expect("tmp");
    let (mut log, _) = open(dir.path());
    fill(&mut log, 100);
    log.flush().expect("flush");
    log.checkpoint_recovery_point().expect("checkpoint");
    let (rp, ticket) = log.recovery_point_to_checkpoint();
    log.truncate_to(Offset(30)).expect("truncate");
    assert_eq!(log.recovery_point(), Offset(30));
    assert_eq!(read_offset_file(&dir.path().join(RECOVERY_POINT_FILE)), Some(Offset(30)));
    // A checkpoint taken before the truncation is refused when it is installed.
    write_recovery_point_candidate(dir.path(), rp).expect("candidate");
    assert!(!log.install_recovery_point(ticket).expect("install"));
    assert_eq!(read_offset_file(&dir.path().join(RECOVERY_POINT_FILE)), Some(Offset(30)));
}

/// One large segment (the common case: a partition smaller than `segment.bytes`): a crash
/// re-validates only the batches past the recovery point inside it, and a torn write there is
/// still cut.
#[test]
fn inside_the_segment_only_batches_past_the_recovery_point_are_revalidated() {
    let dir = tempfile::tempdir().expect("tmp");
    let config = LogConfig { segment_bytes: 1 << 30, ..LogConfig::for_tests() };
    let (mut log, _) = PartitionLog::open(dir.path(), config.clone()).expect("open");
    fill(&mut log, 100);
    log.flush().expect("flush");
    log.checkpoint_recovery_point().expect("checkpoint");
    fill(&mut log, 10); // not flushed
    let (leo, bytes) = (log.log_end_offset(), everything(&log));
    drop(log);
    let (log, report) = PartitionLog::open(dir.path(), config.clone()).expect("reopen");
    assert_eq!(report.segments, 1);
    assert_eq!(report.recovered.valid_batches, 10, "only the unflushed tail: {report:?}");
    assert_eq!(log.log_end_offset(), leo);
    assert_eq!(everything(&log), bytes);
    drop(log);
    // A torn last batch past the recovery point is cut as ever.
    let seg = dir.path().join(crate::log::segment::file_name(Offset(0), "log"));
    let len = fs::metadata(&seg).expect("segment").len();
    fs::OpenOptions::new().write(true).open(&seg).expect("open").set_len(len - 5).expect("tear");
    let (log, report) = PartitionLog::open(dir.path(), config).expect("reopen");
    assert_eq!(report.recovered.valid_batches, 9, "{report:?}");
    assert!(report.recovered.truncated_bytes > 0);
    assert_eq!(log.log_end_offset(), Offset(leo.0 - 3));
}
