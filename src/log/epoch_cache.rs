//! The leader-epoch cache (KIP-101): for each leader epoch, the first offset written in it.
//! Persisted as `leader-epoch-checkpoint` in Kafka's text format (version, count, then
//! `epoch start_offset` lines). Followers use it to find where their log diverges from a new
//! leader's; OffsetForLeaderEpoch answers from it.
//!
//! Invariant: epochs and start offsets both strictly increase along the list. Not thread-safe.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::types::{LeaderEpoch, Offset};

const CHECKPOINT_VERSION: u32 = 0;

#[derive(Debug)]
pub(crate) struct LeaderEpochCache {
    path: PathBuf,
    entries: Vec<(LeaderEpoch, Offset)>,
}

impl LeaderEpochCache {
    /// Loads the checkpoint at `path`; a missing or damaged file gives an empty cache (recovery
    /// then rebuilds it from the batches' partition leader epochs).
    pub(crate) fn open(path: &Path) -> Self {
        let entries = fs::read_to_string(path).ok().and_then(|s| parse(&s)).unwrap_or_default();
        LeaderEpochCache { path: path.to_path_buf(), entries }
    }

    pub(crate) fn entries(&self) -> &[(LeaderEpoch, Offset)] {
        &self.entries
    }

    pub(crate) fn latest_epoch(&self) -> Option<LeaderEpoch> {
        self.entries.last().map(|e| e.0)
    }

    /// Notes that `epoch` starts at `start_offset`, if it is newer than the latest epoch.
    /// Returns whether the cache changed.
    pub(crate) fn assign(&mut self, epoch: LeaderEpoch, start_offset: Offset) -> bool {
        match self.entries.last() {
            Some((last, _)) if *last >= epoch => false,
            _ => {
                self.entries.push((epoch, start_offset));
                true
            }
        }
    }

    /// The end offset of `epoch`: the start of the next larger epoch, or `log_end_offset` for the
    /// latest. Returns the largest epoch ≤ the requested one with its end offset, or `None` when
    /// the requested epoch is older than every entry (Kafka answers UNDEFINED then).
    pub(crate) fn end_offset_for(
        &self,
        epoch: LeaderEpoch,
        log_end_offset: Offset,
    ) -> Option<(LeaderEpoch, Offset)> {
        let i = self.entries.partition_point(|(e, _)| *e <= epoch);
        if i == 0 {
            return None;
        }
        let found = self.entries[i - 1].0;
        let end = self.entries.get(i).map_or(log_end_offset, |(_, start)| *start);
        Some((found, end))
    }

    /// Drops entries that start at or after `offset` (log truncated to `offset`).
    pub(crate) fn truncate_from_end(&mut self, offset: Offset) -> bool {
        let before = self.entries.len();
        self.entries.retain(|(_, start)| *start < offset);
        before != self.entries.len()
    }

    /// Clamps the history below the new log start offset.
    pub(crate) fn truncate_from_start(&mut self, log_start_offset: Offset) -> bool {
        let keep_from = self.entries.partition_point(|(_, s)| *s <= log_start_offset);
        if keep_from <= 1 {
            return false;
        }
        let (epoch, _) = self.entries[keep_from - 1];
        self.entries.drain(..keep_from);
        self.entries.insert(0, (epoch, log_start_offset));
        true
    }

    /// Writes the checkpoint atomically.
    pub(crate) fn persist(&self) -> io::Result<()> {
        let mut s = format!("{CHECKPOINT_VERSION}\n{}\n", self.entries.len());
        for (e, o) in &self.entries {
            s.push_str(&format!("{} {}\n", e.0, o.0));
        }
        crate::fsutil::write_atomically(&self.path, s.as_bytes())
    }
}

fn parse(s: &str) -> Option<Vec<(LeaderEpoch, Offset)>> {
    let mut lines = s.lines();
    if lines.next()?.trim().parse::<u32>().ok()? != CHECKPOINT_VERSION {
        return None;
    }
    let count: usize = lines.next()?.trim().parse().ok()?;
    let mut out = Vec::with_capacity(count.min(1024));
    for line in lines.take(count) {
        let mut parts = line.split_whitespace();
        let e = parts.next()?.parse().ok()?;
        let o = parts.next()?.parse().ok()?;
        out.push((LeaderEpoch(e), Offset(o)));
    }
    (out.len() == count).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn end_offsets_follow_kip_101() {
        let dir = tempfile::tempdir().expect("tmp");
        let mut c = LeaderEpochCache::open(&dir.path().join("leader-epoch-checkpoint"));
        assert!(c.assign(LeaderEpoch(0), Offset(0)));
        assert!(c.assign(LeaderEpoch(2), Offset(10)));
        assert!(!c.assign(LeaderEpoch(1), Offset(12)));
        assert_eq!(
            c.end_offset_for(LeaderEpoch(0), Offset(20)),
            Some((LeaderEpoch(0), Offset(10)))
        );
        assert_eq!(
            c.end_offset_for(LeaderEpoch(1), Offset(20)),
            Some((LeaderEpoch(0), Offset(10)))
        );
        assert_eq!(
            c.end_offset_for(LeaderEpoch(2), Offset(20)),
            Some((LeaderEpoch(2), Offset(20)))
        );
        c.persist().expect("persist");
        let again = LeaderEpochCache::open(&dir.path().join("leader-epoch-checkpoint"));
        assert_eq!(again.entries(), c.entries());
    }

    #[test]
    fn truncation_from_both_ends() {
        let dir = tempfile::tempdir().expect("tmp");
        let mut c = LeaderEpochCache::open(&dir.path().join("x"));
        c.assign(LeaderEpoch(0), Offset(0));
        c.assign(LeaderEpoch(1), Offset(5));
        c.assign(LeaderEpoch(3), Offset(9));
        c.truncate_from_end(Offset(9));
        assert_eq!(c.latest_epoch(), Some(LeaderEpoch(1)));
        c.truncate_from_start(Offset(7));
        assert_eq!(c.entries(), &[(LeaderEpoch(1), Offset(7))]);
    }

    #[test]
    fn a_damaged_checkpoint_reads_as_empty() {
        let dir = tempfile::tempdir().expect("tmp");
        let p = dir.path().join("leader-epoch-checkpoint");
        fs::write(&p, "0\n3\n1 2\n").expect("write");
        assert!(LeaderEpochCache::open(&p).entries().is_empty());
    }
}
