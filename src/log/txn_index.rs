//! A segment's aborted-transaction index (`.txnindex`), in Kafka's on-disk format: one 34-byte
//! entry per transaction aborted by an ABORT marker stored in the segment, in marker order.
//!
//! ```text
//! version i16 (0) | producerId i64 | firstOffset i64 | lastOffset i64 | lastStableOffset i64
//! ```
//! `firstOffset` is the transaction's first record, `lastOffset` its ABORT marker, and
//! `lastStableOffset` the partition's last stable offset once the transaction completed (a
//! reader that collected entries up to it has seen every abort below that offset; Kafka's
//! `TxnIndexSearchResult.isComplete`).
//!
//! Read_committed fetches answer `aborted_transactions` from these entries; the consumer drops a
//! producer's records from `firstOffset` up to its ABORT marker. The index is kept in memory; the
//! file is created on the first entry and only appended to, except by truncation (which rewrites
//! it shorter). Invariant: entries are in increasing `last_offset` order and lie in their
//! segment. Not thread-safe: owned by one segment.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::types::{Offset, ProducerId};

/// Encoded size of one entry, in bytes (Kafka's `AbortedTxn.TOTAL_SIZE`).
pub(crate) const ENTRY_BYTES: usize = 34;
/// The entry format version Kafka writes.
const ENTRY_VERSION: i16 = 0;

/// One aborted transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AbortedTxn {
    pub producer_id: ProducerId,
    pub first_offset: Offset,
    /// The offset of the ABORT marker.
    pub last_offset: Offset,
    pub last_stable_offset: Offset,
}

impl AbortedTxn {
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&ENTRY_VERSION.to_be_bytes());
        out.extend_from_slice(&self.producer_id.0.to_be_bytes());
        out.extend_from_slice(&self.first_offset.0.to_be_bytes());
        out.extend_from_slice(&self.last_offset.0.to_be_bytes());
        out.extend_from_slice(&self.last_stable_offset.0.to_be_bytes());
    }

    fn decode(b: &[u8]) -> Option<Self> {
        let i64_at = |at: usize| {
            let mut a = [0u8; 8];
            a.copy_from_slice(b.get(at..at + 8)?);
            Some(i64::from_be_bytes(a))
        };
        if i16::from_be_bytes([*b.first()?, *b.get(1)?]) != ENTRY_VERSION {
            return None;
        }
        Some(AbortedTxn {
            producer_id: ProducerId(i64_at(2)?),
            first_offset: Offset(i64_at(10)?),
            last_offset: Offset(i64_at(18)?),
            last_stable_offset: Offset(i64_at(26)?),
        })
    }
}

/// The aborted transactions whose markers lie in one segment.
#[derive(Debug)]
pub(crate) struct TxnIndex {
    path: PathBuf,
    entries: Vec<AbortedTxn>,
    /// Entries were written since the last [`TxnIndex::take_unsynced`].
    unsynced: bool,
}

impl TxnIndex {
    /// Loads the index at `path` (absent: empty). A torn tail, an unknown version or entries out
    /// of order end the load there; recovery re-derives what follows from the log.
    pub(crate) fn open(path: &Path) -> io::Result<Self> {
        let bytes = match fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(e),
        };
        let mut entries: Vec<AbortedTxn> = Vec::with_capacity(bytes.len() / ENTRY_BYTES);
        for chunk in bytes.chunks_exact(ENTRY_BYTES) {
            let Some(e) = AbortedTxn::decode(chunk) else { break };
            if entries.last().is_some_and(|l| l.last_offset >= e.last_offset) {
                break;
            }
            entries.push(e);
        }
        let mut index = TxnIndex { path: path.to_path_buf(), entries, unsynced: false };
        if bytes.len() != index.entries.len() * ENTRY_BYTES {
            index.rewrite()?;
        }
        Ok(index)
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn entries(&self) -> &[AbortedTxn] {
        &self.entries
    }

    /// The marker offset of the last entry, if any.
    pub(crate) fn last_marker(&self) -> Option<Offset> {
        self.entries.last().map(|e| e.last_offset)
    }

    /// Appends an entry; its marker must come after every entry's (asserted: an index out of
    /// order would hide aborts from readers).
    pub(crate) fn append(&mut self, entry: AbortedTxn) -> io::Result<()> {
        assert!(
            self.last_marker().is_none_or(|l| l < entry.last_offset),
            "invariant: aborted-transaction entries are appended in marker order"
        );
        let mut buf = Vec::with_capacity(ENTRY_BYTES);
        entry.encode(&mut buf);
        let mut file = OpenOptions::new().create(true).append(true).open(&self.path)?;
        file.write_all(&buf)?;
        self.entries.push(entry);
        self.unsynced = true;
        Ok(())
    }

    /// Drops the entries whose marker is at or after `offset` (the segment was cut there).
    pub(crate) fn truncate_from(&mut self, offset: Offset) -> io::Result<()> {
        let keep = self.entries.partition_point(|e| e.last_offset < offset);
        if keep == self.entries.len() {
            return Ok(());
        }
        self.entries.truncate(keep);
        self.rewrite()
    }

    /// A handle to fsync the file with, if entries were written since the last call.
    pub(crate) fn take_unsynced(&mut self) -> io::Result<Option<fs::File>> {
        if !self.unsynced {
            return Ok(None);
        }
        self.unsynced = false;
        Ok(Some(OpenOptions::new().read(true).open(&self.path)?))
    }

    fn rewrite(&mut self) -> io::Result<()> {
        if self.entries.is_empty() {
            return match fs::remove_file(&self.path) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
                _ => Ok(()),
            };
        }
        let mut buf = Vec::with_capacity(self.entries.len() * ENTRY_BYTES);
        for e in &self.entries {
            e.encode(&mut buf);
        }
        fs::write(&self.path, &buf)?;
        self.unsynced = true;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(pid: i64, first: i64, last: i64) -> AbortedTxn {
        AbortedTxn {
            producer_id: ProducerId(pid),
            first_offset: Offset(first),
            last_offset: Offset(last),
            last_stable_offset: Offset(last + 1),
        }
    }

    #[test]
    fn entries_survive_a_reopen_in_kafkas_34_byte_format() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("00000000000000000000.txnindex");
        let mut idx = TxnIndex::open(&path).expect("open");
        assert!(!path.exists(), "created only on the first entry");
        idx.append(entry(7, 3, 9)).expect("append");
        idx.append(entry(8, 5, 12)).expect("append");
        assert_eq!(fs::metadata(&path).expect("meta").len(), 2 * ENTRY_BYTES as u64);
        let again = TxnIndex::open(&path).expect("reopen");
        assert_eq!(again.entries(), &[entry(7, 3, 9), entry(8, 5, 12)]);
    }

    #[test]
    fn a_torn_tail_is_dropped_and_truncation_cuts_by_marker_offset() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("x.txnindex");
        let mut idx = TxnIndex::open(&path).expect("open");
        for (i, m) in [4, 8, 15].into_iter().enumerate() {
            idx.append(entry(i as i64, 0, m)).expect("append");
        }
        let mut f = OpenOptions::new().append(true).open(&path).expect("open");
        f.write_all(&[0, 0, 1, 2]).expect("torn");
        let mut idx = TxnIndex::open(&path).expect("reopen");
        assert_eq!(idx.entries().len(), 3);
        assert_eq!(fs::metadata(&path).expect("meta").len(), 3 * ENTRY_BYTES as u64);
        idx.truncate_from(Offset(8)).expect("truncate");
        assert_eq!(idx.entries(), &[entry(0, 0, 4)]);
        assert_eq!(TxnIndex::open(&path).expect("reopen").entries(), &[entry(0, 0, 4)]);
        idx.truncate_from(Offset(0)).expect("truncate");
        assert!(!path.exists());
    }
}
