//! Sparse segment indexes, as Kafka keeps them beside each segment file.
//!
//! * `.index`: entries of (relative offset u32, file position u32), one per
//!   `index.interval.bytes` of log data. Answers "where does the batch holding offset O start?".
//! * `.timeindex`: entries of (timestamp i64, relative offset u32), appended only when the
//!   segment's max timestamp grows. Answers "which is the first offset with timestamp ≥ T?".
//!
//! Both are kept in memory as a sorted `Vec` and appended to their file; the file is only read at
//! startup. An index is a hint, never the truth: recovery rebuilds it from the segment, and a
//! lookup only narrows where the segment scan starts. Not thread-safe: owned by one segment.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

/// One fixed-size entry of an index file.
pub(crate) trait IndexEntry: Copy {
    /// Encoded size in bytes.
    const SIZE: usize;
    fn encode(&self, out: &mut Vec<u8>);
    fn decode(bytes: &[u8]) -> Self;
}

/// An `.index` entry: where the batch holding `relative_offset` starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OffsetEntry {
    pub relative_offset: u32,
    pub position: u32,
}

/// A `.timeindex` entry: the segment's max timestamp reached `timestamp_ms` at `relative_offset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TimeEntry {
    pub timestamp_ms: i64,
    pub relative_offset: u32,
}

impl IndexEntry for OffsetEntry {
    const SIZE: usize = 8;
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.relative_offset.to_be_bytes());
        out.extend_from_slice(&self.position.to_be_bytes());
    }
    fn decode(b: &[u8]) -> Self {
        OffsetEntry {
            relative_offset: u32::from_be_bytes([b[0], b[1], b[2], b[3]]),
            position: u32::from_be_bytes([b[4], b[5], b[6], b[7]]),
        }
    }
}

impl IndexEntry for TimeEntry {
    const SIZE: usize = 12;
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.timestamp_ms.to_be_bytes());
        out.extend_from_slice(&self.relative_offset.to_be_bytes());
    }
    fn decode(b: &[u8]) -> Self {
        let mut ts = [0u8; 8];
        ts.copy_from_slice(&b[0..8]);
        TimeEntry {
            timestamp_ms: i64::from_be_bytes(ts),
            relative_offset: u32::from_be_bytes([b[8], b[9], b[10], b[11]]),
        }
    }
}

/// A sparse index file plus its in-memory copy.
#[derive(Debug)]
pub(crate) struct SparseIndex<E: IndexEntry> {
    path: PathBuf,
    file: File,
    entries: Vec<E>,
    scratch: Vec<u8>,
}

impl<E: IndexEntry> SparseIndex<E> {
    /// Opens (or creates) the index at `path`, loading whole entries and dropping a torn tail.
    pub(crate) fn open(path: &Path) -> io::Result<Self> {
        let mut file = OpenOptions::new().read(true).append(true).create(true).open(path)?;
        let mut raw = Vec::new();
        file.read_to_end(&mut raw)?;
        let whole = raw.len() - raw.len() % E::SIZE;
        if whole != raw.len() {
            file.set_len(whole as u64)?;
        }
        let entries = raw[..whole].chunks_exact(E::SIZE).map(E::decode).collect();
        Ok(SparseIndex { path: path.to_path_buf(), file, entries, scratch: Vec::new() })
    }

    pub(crate) fn entries(&self) -> &[E] {
        &self.entries
    }

    /// Appends an entry; the caller keeps entries sorted.
    pub(crate) fn append(&mut self, entry: E) -> io::Result<()> {
        self.scratch.clear();
        entry.encode(&mut self.scratch);
        self.file.write_all(&self.scratch)?;
        self.entries.push(entry);
        Ok(())
    }

    /// Keeps only the first `n` entries.
    pub(crate) fn truncate_entries(&mut self, n: usize) -> io::Result<()> {
        if n < self.entries.len() {
            self.entries.truncate(n);
            self.file.set_len((n * E::SIZE) as u64)?;
        }
        Ok(())
    }

    /// Drops every entry (before a rebuild).
    pub(crate) fn clear(&mut self) -> io::Result<()> {
        self.truncate_entries(0)
    }

    pub(crate) fn sync(&self) -> io::Result<()> {
        self.file.sync_data()
    }

    /// A second handle on the index file, to fsync it without the owner's lock.
    pub(crate) fn clone_file(&self) -> io::Result<File> {
        self.file.try_clone()
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

impl SparseIndex<OffsetEntry> {
    /// The last entry at or before `relative_offset`: where a scan for it may start.
    pub(crate) fn floor(&self, relative_offset: u32) -> Option<OffsetEntry> {
        let i = self.entries.partition_point(|e| e.relative_offset <= relative_offset);
        i.checked_sub(1).map(|i| self.entries[i])
    }
}

impl SparseIndex<TimeEntry> {
    /// The last entry whose timestamp is below `timestamp_ms`: a scan for the first record with
    /// timestamp ≥ `timestamp_ms` may start at its offset.
    pub(crate) fn floor_below(&self, timestamp_ms: i64) -> Option<TimeEntry> {
        let i = self.entries.partition_point(|e| e.timestamp_ms < timestamp_ms);
        i.checked_sub(1).map(|i| self.entries[i])
    }
}

/// The offset index of a segment.
pub(crate) type OffsetIndex = SparseIndex<OffsetEntry>;
/// The time index of a segment.
pub(crate) type TimeIndex = SparseIndex<TimeEntry>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floor_finds_the_last_entry_at_or_before() {
        let dir = tempfile::tempdir().expect("tmp");
        let mut idx = OffsetIndex::open(&dir.path().join("0.index")).expect("open");
        for (o, p) in [(0, 0), (10, 4096), (20, 8192)] {
            idx.append(OffsetEntry { relative_offset: o, position: p }).expect("append");
        }
        assert_eq!(idx.floor(0).map(|e| e.position), Some(0));
        assert_eq!(idx.floor(15).map(|e| e.position), Some(4096));
        assert_eq!(idx.floor(20).map(|e| e.position), Some(8192));
        assert_eq!(idx.floor(1000).map(|e| e.position), Some(8192));
    }

    #[test]
    fn reopening_loads_entries_and_drops_a_torn_tail() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("0.timeindex");
        {
            let mut idx = TimeIndex::open(&path).expect("open");
            idx.append(TimeEntry { timestamp_ms: 5, relative_offset: 1 }).expect("a");
            idx.append(TimeEntry { timestamp_ms: 9, relative_offset: 4 }).expect("b");
        }
        // A torn write: half an entry at the end.
        let mut f = OpenOptions::new().append(true).open(&path).expect("open raw");
        f.write_all(&[1, 2, 3, 4, 5]).expect("torn");
        drop(f);
        let idx = TimeIndex::open(&path).expect("reopen");
        assert_eq!(idx.entries().len(), 2);
        assert_eq!(std::fs::metadata(&path).expect("meta").len(), 24);
        assert_eq!(idx.floor_below(9).map(|e| e.relative_offset), Some(1));
        assert_eq!(idx.floor_below(5), None);
        assert_eq!(idx.floor_below(100).map(|e| e.relative_offset), Some(4));
    }

    #[test]
    fn truncation_shrinks_file_and_memory() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("0.index");
        let mut idx = OffsetIndex::open(&path).expect("open");
        for o in 0..5 {
            idx.append(OffsetEntry { relative_offset: o, position: o * 100 }).expect("append");
        }
        idx.truncate_entries(2).expect("truncate");
        assert_eq!(idx.entries().len(), 2);
        assert_eq!(std::fs::metadata(&path).expect("meta").len(), 16);
    }
}
