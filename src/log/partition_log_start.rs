//! The log start offset below the first segment's base: where DeleteRecords (KIP-107) or a
//! leader's log start put it, persisted in `log-start-offset` so a restart keeps it, and the
//! follower's full restart at a leader's log start (Kafka's `truncateFullyAndStartAt`).
//!
//! Invariants: the log start offset only grows, except by a full restart; it never passes the
//! log end offset; reads below it are OFFSET_OUT_OF_RANGE; a segment wholly below it is deleted
//! (never the active one, which goes once it rolls, at the next retention pass).

use std::fs;
use std::io;

use super::{LOG_START_FILE, PartitionLog};
use crate::log::producer_state::ProducerStateManager;
use crate::log::recovery::read_offset_file;
use crate::log::segment::LogSegment;
use crate::types::Offset;

impl PartitionLog {
    /// The persisted log start offset of the log in `dir`, if any.
    pub(super) fn read_log_start(dir: &std::path::Path) -> Offset {
        read_offset_file(&dir.join(LOG_START_FILE)).unwrap_or(Offset(0))
    }

    fn persist_log_start(&self) -> io::Result<()> {
        crate::fsutil::write_atomically(
            &self.dir.join(LOG_START_FILE),
            self.start_floor.0.to_string().as_bytes(),
        )
    }

    /// Moves the log start offset up to `offset` (clamped to the log end): DeleteRecords on a
    /// leader (the caller checked `offset` against the high watermark), or a follower adopting
    /// its leader's. Deletes the segments wholly below it. Returns the log start offset.
    pub(crate) fn advance_log_start(&mut self, offset: Offset) -> io::Result<Offset> {
        let offset = offset.min(self.log_end_offset());
        if offset <= self.log_start_offset() {
            return Ok(self.log_start_offset());
        }
        self.start_floor = offset;
        self.persist_log_start()?;
        self.delete_segments_below_start()?;
        Ok(self.log_start_offset())
    }

    /// Deletes every segment but the last that lies wholly below the log start offset.
    pub(super) fn delete_segments_below_start(&mut self) -> io::Result<usize> {
        let mut deleted = 0;
        while self.segments.len() > 1 {
            let Some((&base, seg)) = self.segments.first_key_value() else { break };
            if seg.next_offset() > self.start_floor {
                break;
            }
            if let Some(seg) = self.segments.remove(&base) {
                seg.delete()?;
                deleted += 1;
            }
        }
        if self.epochs.truncate_from_start(self.log_start_offset()) {
            self.epochs.persist()?;
        }
        if deleted > 0 {
            crate::fsutil::sync_dir(&self.dir)?;
        }
        Ok(deleted)
    }

    /// A follower whose next offset lies below its leader's log start (retention or
    /// DeleteRecords removed what it lacks, e.g. a replica just added by a reassignment): drops
    /// every segment and goes on from `offset` with an empty log, as Kafka's follower does.
    pub(crate) fn truncate_fully_and_start_at(&mut self, offset: Offset) -> io::Result<()> {
        let bases: Vec<Offset> = self.segments.keys().copied().collect();
        for base in bases {
            if let Some(seg) = self.segments.remove(&base) {
                seg.delete()?;
            }
        }
        self.segments.insert(
            offset,
            LogSegment::create(&self.dir, offset, self.config.index_interval_bytes)?,
        );
        self.truncations += 1;
        self.rolled_unsynced.clear();
        self.dir_unsynced = true;
        self.active_since_ms = None;
        self.recovery_point = offset;
        self.checkpoint_recovery_point()?;
        self.start_floor = offset;
        self.persist_log_start()?;
        self.producers = ProducerStateManager::default();
        let mut changed = self.epochs.truncate_from_start(offset);
        changed |= self.epochs.truncate_from_end(offset);
        if changed {
            self.epochs.persist()?;
        }
        for stale in [super::PRODUCER_STATE_FILE, super::PRODUCER_STATE_PREV_FILE] {
            match fs::remove_file(self.dir.join(stale)) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
        crate::fsutil::sync_dir(&self.dir)
    }
}

#[cfg(test)]
mod tests {
    use kafka_protocol::records::Compression;

    use crate::log::LogConfig;
    use crate::log::PartitionLog;
    use crate::log::batch::tests::encode_batch;
    use crate::types::{LeaderEpoch, Offset};

    fn config() -> LogConfig {
        LogConfig { segment_bytes: 600, ..LogConfig::for_tests() }
    }

    fn filled(dir: &std::path::Path, batches: usize) -> PartitionLog {
        let mut log = PartitionLog::open(dir, config()).expect("open").0;
        for i in 0..batches {
            let b = encode_batch(3, 1000 + i as i64, None, Compression::None);
            log.append_as_leader(&b, LeaderEpoch(0), 1000).expect("append");
        }
        log
    }

    #[test]
    fn delete_records_moves_the_start_mid_segment_survives_a_restart_and_drops_old_segments() {
        let dir = tempfile::tempdir().expect("tmp");
        let mut log = filled(dir.path(), 40);
        let segments = log.segment_count();
        assert!(segments > 2, "the test config rolls small segments");
        let leo = log.log_end_offset();
        let mid = Offset(leo.0 / 2 + 1);
        assert_eq!(log.advance_log_start(mid).expect("delete"), mid);
        assert!(log.segment_count() < segments, "segments wholly below the start are gone");
        assert!(
            log.read(Offset(0), leo, 1 << 20, true).is_err(),
            "below the start is out of range"
        );
        assert!(log.read(mid, leo, 1 << 20, true).is_ok());
        assert_eq!(log.advance_log_start(Offset(1)).expect("lower"), mid, "it never moves back");
        assert_eq!(log.advance_log_start(Offset(leo.0 + 50)).expect("past"), leo, "clamped");
        drop(log);
        let log = PartitionLog::open(dir.path(), config()).expect("reopen").0;
        assert_eq!(log.log_start_offset(), leo, "the start survives a restart");
        assert_eq!(log.log_end_offset(), leo);
    }

    #[test]
    fn a_full_restart_empties_the_log_and_continues_at_the_leaders_start() {
        let dir = tempfile::tempdir().expect("tmp");
        let mut log = filled(dir.path(), 5);
        log.truncate_fully_and_start_at(Offset(1000)).expect("restart");
        assert_eq!((log.log_start_offset(), log.log_end_offset()), (Offset(1000), Offset(1000)));
        drop(log);
        let log = PartitionLog::open(dir.path(), config()).expect("reopen").0;
        assert_eq!((log.log_start_offset(), log.log_end_offset()), (Offset(1000), Offset(1000)));
    }
}
