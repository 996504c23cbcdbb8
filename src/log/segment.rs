//! One segment: a `.log` file of whole v2 record batches starting at `base_offset`, with its
//! sparse `.index` and `.timeindex` (see `index.rs`).
//!
//! Invariants: the file holds only whole, CRC-valid batches with strictly increasing offsets
//! (recovery truncates anything else); every index entry points at the start of a batch inside
//! the file. Synchronous and not thread-safe: owned by one `PartitionLog`.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::{Bytes, BytesMut};

use super::batch::{self, BATCH_HEADER_BYTES, BatchHeader, LOG_OVERHEAD_BYTES};
use super::index::{OffsetEntry, OffsetIndex, TimeEntry, TimeIndex};
use super::slice::FileSlice;
use super::txn_index::{AbortedTxn, TxnIndex};
use crate::types::Offset;

/// Largest segment file samsa writes: index positions are u32, as in Kafka.
pub(crate) const SEGMENT_BYTES_MAX: u64 = i32::MAX as u64;

/// The file name of a segment's part, `<20-digit base offset>.<ext>`, as Kafka names it.
pub(crate) fn file_name(base_offset: Offset, ext: &str) -> String {
    format!("{:020}.{ext}", base_offset.0)
}

/// Where a batch lies in a segment file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BatchPosition {
    pub header: BatchHeader,
    pub position: u64,
}

/// What a recovery scan found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct RecoveryReport {
    pub valid_batches: u64,
    pub valid_bytes: u64,
    /// Bytes cut off the end because they were torn, corrupt or out of order.
    pub truncated_bytes: u64,
}

/// Second handles on a segment's files (data and both indexes): fsyncing them needs no access
/// to the segment, so a flush can run while appends go on.
#[derive(Debug)]
pub(crate) struct SyncHandles(Vec<File>);

impl SyncHandles {
    /// fsyncs everything written through the segment before the handles were taken.
    pub(crate) fn sync(&self) -> io::Result<()> {
        for f in &self.0 {
            f.sync_data()?;
        }
        Ok(())
    }
}

/// One segment of a partition log.
#[derive(Debug)]
pub(crate) struct LogSegment {
    base_offset: Offset,
    log_path: PathBuf,
    /// Shared with the slices of reads in flight, which outlive the log lock.
    file: Arc<File>,
    /// Bytes of whole batches in the file; appends go here.
    size_bytes: u64,
    offset_index: OffsetIndex,
    time_index: TimeIndex,
    /// The transactions aborted by markers in this segment (`.txnindex`).
    txn_index: TxnIndex,
    /// Data appended since the last offset-index entry, to space entries `index_interval_bytes`.
    bytes_since_index_entry: u64,
    index_interval_bytes: u64,
    /// The offset after the last batch; `base_offset` when empty.
    next_offset: Offset,
    /// Largest batch max-timestamp seen, and the last offset of that batch (for ListOffsets -3).
    max_timestamp_ms: i64,
    offset_of_max_timestamp: Offset,
    /// Appends since the last fsync (for `flush.messages`).
    unflushed_messages: u64,
}

impl LogSegment {
    /// Creates a new, empty segment in `dir`.
    pub(crate) fn create(
        dir: &Path,
        base_offset: Offset,
        index_interval_bytes: u64,
    ) -> io::Result<Self> {
        let log_path = dir.join(file_name(base_offset, "log"));
        let file = OpenOptions::new().read(true).write(true).create_new(true).open(&log_path)?;
        drop(file);
        Self::open_unchecked(dir, base_offset, index_interval_bytes)
    }

    /// Opens a segment and recovers it: every batch is validated, a torn or corrupt tail is cut,
    /// and both indexes are rebuilt.
    pub(crate) fn open_and_recover(
        dir: &Path,
        base_offset: Offset,
        index_interval_bytes: u64,
    ) -> io::Result<(Self, RecoveryReport)> {
        let mut seg = Self::open_unchecked(dir, base_offset, index_interval_bytes)?;
        let report = seg.recover()?;
        Ok((seg, report))
    }

    /// Opens a segment whose data is known durable and whole (it lies below the recovery
    /// point, or the log was shut down cleanly) without validating its batches: the indexes are
    /// loaded as stored once they pass a sanity check, and only the batch headers from the last
    /// offset-index entry to the end of the file are read, to find where the segment ends.
    /// `None` when the indexes or those headers do not hold up: the caller recovers the segment
    /// instead.
    pub(crate) fn open_trusted(
        dir: &Path,
        base_offset: Offset,
        index_interval_bytes: u64,
    ) -> io::Result<Option<Self>> {
        let mut seg = Self::open_unchecked(dir, base_offset, index_interval_bytes)?;
        if !seg.indexes_are_sane() {
            return Ok(None);
        }
        let Some(last) = seg.offset_index.entries().last().copied() else {
            // Every batch written gets the first index entry: no entry means no data.
            return Ok(seg.is_empty().then_some(seg));
        };
        let mut position = u64::from(last.position);
        let mut expected = Offset(base_offset.0 + i64::from(last.relative_offset));
        if let Some(t) = seg.time_index.entries().last() {
            seg.max_timestamp_ms = t.timestamp_ms;
            seg.offset_of_max_timestamp = Offset(base_offset.0 + i64::from(t.relative_offset));
        }
        while position < seg.size_bytes {
            let Some(h) = seg.header_at(position)? else { return Ok(None) };
            let fits = position + h.size_bytes as u64 <= seg.size_bytes;
            let in_order = if position == u64::from(last.position) {
                h.base_offset == expected
            } else {
                h.base_offset >= expected
            };
            if !fits || !in_order || h.size_bytes < BATCH_HEADER_BYTES {
                return Ok(None);
            }
            if h.max_timestamp_ms > seg.max_timestamp_ms {
                seg.max_timestamp_ms = h.max_timestamp_ms;
                seg.offset_of_max_timestamp = h.last_offset();
            }
            expected = h.next_offset();
            position += h.size_bytes as u64;
        }
        seg.next_offset = expected;
        seg.bytes_since_index_entry = seg.size_bytes - u64::from(last.position);
        Ok(Some(seg))
    }

    /// Kafka's index sanity check: offset entries strictly increase in offset and position and
    /// point inside the file; time entries never go back.
    fn indexes_are_sane(&self) -> bool {
        let offsets = self.offset_index.entries();
        let offsets_ok = offsets
            .windows(2)
            .all(|w| w[0].relative_offset < w[1].relative_offset && w[0].position < w[1].position)
            && offsets.iter().all(|e| u64::from(e.position) < self.size_bytes);
        let times = self.time_index.entries();
        let times_ok = times.windows(2).all(|w| {
            w[0].timestamp_ms <= w[1].timestamp_ms && w[0].relative_offset <= w[1].relative_offset
        });
        offsets_ok && times_ok
    }

    fn open_unchecked(
        dir: &Path,
        base_offset: Offset,
        index_interval_bytes: u64,
    ) -> io::Result<Self> {
        let path = |ext: &str| dir.join(file_name(base_offset, ext));
        let paths = [path("log"), path("index"), path("timeindex"), path("txnindex")];
        Self::open_paths(paths, base_offset, index_interval_bytes)
    }

    /// Creates an empty segment under the log cleaner's `.cleaned` names (see `cleaner/swap.rs`):
    /// written and fsynced beside the originals, renamed into place by the swap.
    pub(crate) fn create_cleaned(
        dir: &Path,
        base_offset: Offset,
        index_interval_bytes: u64,
    ) -> io::Result<Self> {
        let path = |ext: &str| super::cleaner::swap::cleaned_path(dir, base_offset, ext);
        let paths = [path("log"), path("index"), path("timeindex"), path("txnindex")];
        for p in &paths {
            match fs::remove_file(p) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
        drop(OpenOptions::new().read(true).write(true).create_new(true).open(&paths[0])?);
        // Always there, even empty, so that the swap's rename replaces the original's index.
        drop(OpenOptions::new().read(true).write(true).create_new(true).open(&paths[3])?);
        Self::open_paths(paths, base_offset, index_interval_bytes)
    }

    fn open_paths(
        [log_path, index_path, time_index_path, txn_index_path]: [PathBuf; 4],
        base_offset: Offset,
        index_interval_bytes: u64,
    ) -> io::Result<Self> {
        let file = OpenOptions::new().read(true).write(true).open(&log_path)?;
        let size_bytes = file.metadata()?.len();
        let file = Arc::new(file);
        let offset_index = OffsetIndex::open(&index_path)?;
        let time_index = TimeIndex::open(&time_index_path)?;
        let txn_index = TxnIndex::open(&txn_index_path)?;
        Ok(LogSegment {
            base_offset,
            log_path,
            file,
            size_bytes,
            offset_index,
            time_index,
            txn_index,
            bytes_since_index_entry: 0,
            index_interval_bytes: index_interval_bytes.max(1),
            next_offset: base_offset,
            max_timestamp_ms: -1,
            offset_of_max_timestamp: base_offset,
            unflushed_messages: 0,
        })
    }

    pub(crate) fn base_offset(&self) -> Offset {
        self.base_offset
    }
    /// The open data file (shared with reads in flight and the log cleaner's plans).
    pub(crate) fn file(&self) -> &Arc<File> {
        &self.file
    }
    pub(crate) fn next_offset(&self) -> Offset {
        self.next_offset
    }
    pub(crate) fn size_bytes(&self) -> u64 {
        self.size_bytes
    }
    pub(crate) fn is_empty(&self) -> bool {
        self.size_bytes == 0
    }
    pub(crate) fn max_timestamp_ms(&self) -> i64 {
        self.max_timestamp_ms
    }
    pub(crate) fn offset_of_max_timestamp(&self) -> Offset {
        self.offset_of_max_timestamp
    }
    pub(crate) fn unflushed_messages(&self) -> u64 {
        self.unflushed_messages
    }
    /// The transactions aborted by markers in this segment.
    pub(crate) fn aborted_txns(&self) -> &[AbortedTxn] {
        self.txn_index.entries()
    }

    /// Records a transaction aborted by the marker at `entry.last_offset`, which this segment
    /// holds; a marker already indexed (recovery replaying it) is skipped.
    pub(crate) fn index_aborted_txn(&mut self, entry: AbortedTxn) -> io::Result<()> {
        if self.txn_index.last_marker().is_some_and(|m| m >= entry.last_offset) {
            return Ok(());
        }
        self.txn_index.append(entry)
    }

    /// Counts `n` appends of the segment this one was rolled from as unflushed here.
    pub(crate) fn carry_unflushed_messages(&mut self, n: u64) {
        self.unflushed_messages += n;
    }

    fn relative(&self, offset: Offset) -> u32 {
        let rel = offset.0 - self.base_offset.0;
        assert!(
            (0..=i64::from(u32::MAX)).contains(&rel),
            "offset {offset} outside the segment based at {}",
            self.base_offset
        );
        rel as u32
    }

    /// Appends one batch whose offsets were already assigned. The caller checks that the batch
    /// follows `next_offset` and that the segment has room.
    pub(crate) fn append(&mut self, batch: &[u8], header: &BatchHeader) -> io::Result<()> {
        assert!(
            header.base_offset >= self.next_offset,
            "offsets must grow: batch at {} after segment end {}",
            header.base_offset,
            self.next_offset
        );
        let position = self.size_bytes;
        self.file.write_all_at(batch, position)?;
        self.size_bytes += batch.len() as u64;
        self.unflushed_messages += u64::from(header.records_count.max(0) as u32);
        self.index_batch(header, position)
    }

    /// Updates the in-memory state and the indexes for a batch now at `position`.
    fn index_batch(&mut self, header: &BatchHeader, position: u64) -> io::Result<()> {
        if self.offset_index.entries().is_empty()
            || self.bytes_since_index_entry >= self.index_interval_bytes
        {
            let entry = OffsetEntry {
                relative_offset: self.relative(header.base_offset),
                position: position as u32,
            };
            self.offset_index.append(entry)?;
            self.bytes_since_index_entry = 0;
        }
        self.bytes_since_index_entry += header.size_bytes as u64;
        if header.max_timestamp_ms > self.max_timestamp_ms {
            self.max_timestamp_ms = header.max_timestamp_ms;
            self.offset_of_max_timestamp = header.last_offset();
            let entry = TimeEntry {
                timestamp_ms: header.max_timestamp_ms,
                relative_offset: self.relative(header.last_offset()),
            };
            self.time_index.append(entry)?;
        }
        self.next_offset = header.next_offset();
        Ok(())
    }

    /// Validates every batch from the start, cuts the file after the last good one and rebuilds
    /// the indexes. Never panics on what it reads.
    pub(crate) fn recover(&mut self) -> io::Result<RecoveryReport> {
        self.offset_index.clear()?;
        self.time_index.clear()?;
        self.bytes_since_index_entry = 0;
        self.next_offset = self.base_offset;
        self.max_timestamp_ms = -1;
        self.offset_of_max_timestamp = self.base_offset;
        let report = self.scan_and_cut(0, self.base_offset)?;
        self.txn_index.truncate_from(self.next_offset)?;
        Ok(report)
    }

    /// Opens a segment that holds the recovery point and recovers only what lies past it:
    /// batches below `trusted_below` (fsynced, written whole) are walked by header, from the
    /// last stored index entry before them, and only the rest is CRC-validated; a torn tail is
    /// cut. Falls back to a full recovery when the stored indexes fail their sanity check.
    pub(crate) fn open_recovering_tail(
        dir: &Path,
        base_offset: Offset,
        index_interval_bytes: u64,
        trusted_below: Offset,
    ) -> io::Result<(Self, RecoveryReport)> {
        let mut seg = Self::open_unchecked(dir, base_offset, index_interval_bytes)?;
        let below = |rel: u32| base_offset.0 + i64::from(rel) < trusted_below.0;
        let resume = seg.offset_index.entries().iter().rposition(|e| below(e.relative_offset));
        let Some(k) = resume.filter(|_| seg.indexes_are_sane()) else {
            let report = seg.recover()?;
            return Ok((seg, report));
        };
        let from = seg.offset_index.entries()[k];
        // Entries from `from` on are rebuilt by the scan; time entries before its batch stay.
        seg.offset_index.truncate_entries(k)?;
        let times = seg.time_index.entries();
        let keep = times.iter().take_while(|t| t.relative_offset < from.relative_offset).count();
        if let Some(t) = times[..keep].last() {
            seg.max_timestamp_ms = t.timestamp_ms;
            seg.offset_of_max_timestamp = Offset(base_offset.0 + i64::from(t.relative_offset));
        }
        seg.time_index.truncate_entries(keep)?;
        seg.next_offset = Offset(base_offset.0 + i64::from(from.relative_offset));
        // The batch at `from` gets its index entry again.
        seg.bytes_since_index_entry = seg.index_interval_bytes;
        let report = seg.scan_and_cut(u64::from(from.position), trusted_below)?;
        Ok((seg, report))
    }

    /// Indexes every batch from `position` to the first damage and cuts the file there. Batches
    /// that start below `trusted_below` are read by header only; the rest are CRC-validated.
    fn scan_and_cut(
        &mut self,
        mut position: u64,
        trusted_below: Offset,
    ) -> io::Result<RecoveryReport> {
        let file_len = self.file.metadata()?.len();
        self.size_bytes = file_len;
        let mut report = RecoveryReport::default();
        let mut buf = Vec::new();
        loop {
            let trusted = self.next_offset < trusted_below;
            let header = if trusted {
                self.header_at(position)?
                    .filter(|h| position + h.size_bytes as u64 <= file_len)
                    .filter(|h| h.size_bytes >= BATCH_HEADER_BYTES)
            } else {
                self.read_valid_batch_at(position, file_len, &mut buf)?
            };
            let Some(header) = header else { break };
            if header.base_offset < self.next_offset {
                break; // out-of-order offsets: treat the rest as corrupt
            }
            self.index_batch(&header, position)?;
            position += header.size_bytes as u64;
            if !trusted {
                report.valid_batches += 1;
            }
        }
        report.valid_bytes = position;
        report.truncated_bytes = file_len - position;
        if position < file_len {
            self.file.set_len(position)?;
            self.file.sync_all()?;
        }
        self.size_bytes = position;
        self.unflushed_messages = 0;
        Ok(report)
    }

    /// Reads and CRC-checks the batch at `position`; `None` at the end or at any damage.
    fn read_valid_batch_at(
        &self,
        position: u64,
        file_len: u64,
        buf: &mut Vec<u8>,
    ) -> io::Result<Option<BatchHeader>> {
        if position + BATCH_HEADER_BYTES as u64 > file_len {
            return Ok(None);
        }
        let mut prefix = [0u8; LOG_OVERHEAD_BYTES];
        self.file.read_exact_at(&mut prefix, position)?;
        let size = match batch::peek_size(&prefix) {
            Some(Ok(size)) => size,
            _ => return Ok(None),
        };
        if position + size as u64 > file_len || size as u64 > SEGMENT_BYTES_MAX {
            return Ok(None);
        }
        buf.resize(size, 0);
        self.file.read_exact_at(buf, position)?;
        Ok(batch::validate(buf).ok())
    }

    /// The base timestamp of the segment's first batch (`None` when empty).
    pub(crate) fn first_batch_timestamp_ms(&self) -> io::Result<Option<i64>> {
        Ok(self.header_at(0)?.map(|h| h.base_timestamp_ms))
    }

    /// Reads the header of the batch at `position` (no CRC check: the file was recovered).
    fn header_at(&self, position: u64) -> io::Result<Option<BatchHeader>> {
        if position + BATCH_HEADER_BYTES as u64 > self.size_bytes {
            return Ok(None);
        }
        let mut raw = [0u8; BATCH_HEADER_BYTES];
        self.file.read_exact_at(&mut raw, position)?;
        Ok(batch::parse_header(&raw).ok())
    }

    /// Finds the batch that holds `offset`, or the first batch after it.
    pub(crate) fn find_batch(&self, offset: Offset) -> io::Result<Option<BatchPosition>> {
        let start = if offset <= self.base_offset {
            0
        } else {
            let rel = (offset.0 - self.base_offset.0).min(i64::from(u32::MAX)) as u32;
            self.offset_index.floor(rel).map_or(0, |e| u64::from(e.position))
        };
        self.scan_from(start, |h| h.last_offset() >= offset)
    }

    /// Finds the first batch whose max timestamp is ≥ `timestamp_ms`.
    pub(crate) fn find_batch_by_timestamp(
        &self,
        timestamp_ms: i64,
    ) -> io::Result<Option<BatchPosition>> {
        if self.max_timestamp_ms < timestamp_ms {
            return Ok(None);
        }
        let start = match self.time_index.floor_below(timestamp_ms) {
            Some(e) => {
                self.offset_index.floor(e.relative_offset).map_or(0, |o| u64::from(o.position))
            }
            None => 0,
        };
        self.scan_from(start, |h| h.max_timestamp_ms >= timestamp_ms)
    }

    fn scan_from(
        &self,
        mut position: u64,
        found: impl Fn(&BatchHeader) -> bool,
    ) -> io::Result<Option<BatchPosition>> {
        while let Some(header) = self.header_at(position)? {
            if found(&header) {
                return Ok(Some(BatchPosition { header, position }));
            }
            position += header.size_bytes as u64;
        }
        Ok(None)
    }

    /// Locates whole batches starting with the one at `from`, up to `max_bytes`, stopping before
    /// any batch that starts at or after `end_offset`. With `at_least_one_batch`, the first batch
    /// is included even when it is larger than `max_bytes` (KIP-74), so consumers always
    /// progress. Reads only batch headers: the offset index jumps to the last indexed batch that
    /// must be included, and headers are walked from there (at most about
    /// `index.interval.bytes` of batches).
    pub(crate) fn slice(
        &self,
        from: BatchPosition,
        end_offset: Offset,
        max_bytes: usize,
        at_least_one_batch: bool,
    ) -> io::Result<FileSlice> {
        if from.header.base_offset >= end_offset || from.position >= self.size_bytes {
            return Ok(FileSlice::default());
        }
        let limit = from.position.saturating_add(max_bytes as u64).min(self.size_bytes);
        let first_end = from.position + from.header.size_bytes as u64;
        if first_end > limit {
            let whole = at_least_one_batch && first_end <= self.size_bytes;
            let len = if whole { from.header.size_bytes } else { 0 };
            return Ok(FileSlice::new(self.file.clone(), from.position, len));
        }
        // Every indexed batch that starts at or before `limit` below `end_offset` ends at or
        // before the next one's start, so all batches before the last such entry are included.
        let rel_end = (end_offset.0 - self.base_offset.0).clamp(0, i64::from(u32::MAX)) as u32;
        let entries = self.offset_index.entries();
        let indexed = entries
            .partition_point(|e| u64::from(e.position) <= limit && e.relative_offset < rel_end);
        let mut end = first_end;
        if let Some(e) = indexed.checked_sub(1).map(|i| entries[i]) {
            end = end.max(u64::from(e.position));
        }
        while let Some(h) = self.header_at(end)? {
            if h.base_offset >= end_offset || end + h.size_bytes as u64 > limit {
                break;
            }
            end += h.size_bytes as u64;
        }
        Ok(FileSlice::new(self.file.clone(), from.position, (end - from.position) as usize))
    }

    /// Reads exactly the batch at `at` (for record-level searches).
    pub(crate) fn read_batch(&self, at: &BatchPosition) -> io::Result<Bytes> {
        let mut buf = BytesMut::zeroed(at.header.size_bytes);
        self.file.read_exact_at(&mut buf, at.position)?;
        Ok(buf.freeze())
    }

    /// Removes every batch at or after `offset` (used by followers truncating by leader epoch).
    pub(crate) fn truncate_to(&mut self, offset: Offset) -> io::Result<()> {
        let Some(at) = self.find_batch(offset)? else { return Ok(()) };
        let cut = if at.header.base_offset >= offset {
            at.position
        } else {
            at.position + at.header.size_bytes as u64
        };
        self.file.set_len(cut)?;
        self.txn_index.truncate_from(offset)?;
        self.recover().map(|_| ())
    }

    /// Handles to fsync what was appended so far without this segment; from now on those
    /// appends no longer count as unflushed (a failed sync is the caller's to report).
    pub(crate) fn sync_handles(&mut self) -> io::Result<SyncHandles> {
        let mut handles = SyncHandles(vec![
            self.file.try_clone()?,
            self.offset_index.clone_file()?,
            self.time_index.clone_file()?,
        ]);
        handles.0.extend(self.txn_index.take_unsynced()?);
        self.unflushed_messages = 0;
        Ok(handles)
    }

    /// Makes appended data and indexes durable (fsync).
    pub(crate) fn flush(&mut self) -> io::Result<()> {
        self.file.sync_data()?;
        self.offset_index.sync()?;
        self.time_index.sync()?;
        if let Some(f) = self.txn_index.take_unsynced()? {
            f.sync_data()?;
        }
        self.unflushed_messages = 0;
        Ok(())
    }

    /// Deletes the segment's files.
    pub(crate) fn delete(self) -> io::Result<()> {
        let paths = [
            self.log_path.clone(),
            self.offset_index.path().into(),
            self.time_index.path().into(),
            self.txn_index.path().into(),
        ];
        drop(self);
        for p in paths {
            match fs::remove_file(&p) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
        Ok(())
    }

    #[cfg(test)]
    pub(crate) fn log_path(&self) -> &Path {
        &self.log_path
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::batch::tests::encode_batch;
    use crate::types::LeaderEpoch;
    use kafka_protocol::records::Compression;
    use std::io::Write;

    fn append_n(seg: &mut LogSegment, batches: usize, per_batch: usize) {
        for _ in 0..batches {
            let mut b =
                encode_batch(per_batch, 1000 + seg.next_offset().0, None, Compression::None);
            batch::assign_offset(&mut b, seg.next_offset(), LeaderEpoch(0));
            let h = batch::validate(&b).expect("valid");
            seg.append(&b, &h).expect("append");
        }
    }

    fn read(seg: &LogSegment, at: BatchPosition, end: Offset, max: usize, one: bool) -> Bytes {
        seg.slice(at, end, max, one).and_then(|s| s.to_bytes()).expect("read")
    }

    #[test]
    fn slices_match_a_walk_over_every_header_whatever_the_index_spacing() {
        for interval in [1, 200, 1 << 20] {
            let dir = tempfile::tempdir().expect("tmp");
            let mut seg = LogSegment::create(dir.path(), Offset(0), interval).expect("create");
            for n in 1..=30 {
                append_n(&mut seg, 1, n % 4 + 1);
            }
            let mut all = Vec::new();
            let mut pos = 0;
            while let Some(h) = seg.header_at(pos).expect("io") {
                all.push(BatchPosition { header: h, position: pos });
                pos += h.size_bytes as u64;
            }
            for (i, from) in all.iter().enumerate() {
                for end in [from.header.base_offset.0, from.header.base_offset.0 + 3, 40, 1000] {
                    for max in [0, 50, 300, 1000, 1 << 20] {
                        for one in [false, true] {
                            let mut want = 0usize;
                            for b in &all[i..] {
                                let fits = want + b.header.size_bytes <= max || (one && want == 0);
                                if b.header.base_offset.0 >= end || !fits {
                                    break;
                                }
                                want += b.header.size_bytes;
                            }
                            let got = seg.slice(*from, Offset(end), max, one).expect("slice");
                            assert_eq!(
                                got.len(),
                                want,
                                "interval {interval} batch {i} end {end} max {max} {one}"
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn appended_batches_are_found_by_offset_and_read_back_whole() {
        let dir = tempfile::tempdir().expect("tmp");
        let mut seg = LogSegment::create(dir.path(), Offset(100), 64).expect("create");
        append_n(&mut seg, 20, 3);
        assert_eq!(seg.next_offset(), Offset(160));
        let at = seg.find_batch(Offset(131)).expect("io").expect("found");
        assert_eq!(at.header.base_offset, Offset(130));
        let bytes = read(&seg, at, Offset(160), 1 << 20, false);
        let first = batch::validate(&bytes).expect("whole batch");
        assert_eq!(first.base_offset, Offset(130));
        // The end offset cuts whole batches.
        let bytes = read(&seg, at, Offset(136), 1 << 20, false);
        assert_eq!(batch::split_client_batches(&bytes).map(|v| v.len()), Ok(2));
        // max_bytes smaller than a batch: nothing, unless one batch is required.
        assert!(read(&seg, at, Offset(160), 10, false).is_empty());
        assert_eq!(read(&seg, at, Offset(160), 10, true).len(), at.header.size_bytes);
    }

    #[test]
    fn time_lookup_finds_the_first_batch_at_or_after_a_timestamp() {
        let dir = tempfile::tempdir().expect("tmp");
        let mut seg = LogSegment::create(dir.path(), Offset(0), 1).expect("create");
        append_n(&mut seg, 10, 2); // batch k holds ts 1000+2k, 1001+2k
        let at = seg.find_batch_by_timestamp(1007).expect("io").expect("found");
        assert_eq!(at.header.base_offset, Offset(6));
        assert!(seg.find_batch_by_timestamp(5000).expect("io").is_none());
        assert_eq!(seg.offset_of_max_timestamp(), Offset(19));
    }

    #[test]
    fn recovery_truncates_a_torn_tail_and_rebuilds_indexes() {
        let dir = tempfile::tempdir().expect("tmp");
        let mut seg = LogSegment::create(dir.path(), Offset(0), 32).expect("create");
        append_n(&mut seg, 5, 2);
        let good = seg.size_bytes();
        let path = seg.log_path().to_path_buf();
        drop(seg);
        // Half a batch at the end, as a crash mid-write leaves it.
        let torn = encode_batch(4, 0, None, Compression::None);
        let mut f = OpenOptions::new().append(true).open(&path).expect("open");
        f.write_all(&torn[..torn.len() / 2]).expect("torn");
        drop(f);
        // And a deleted index.
        fs::remove_file(dir.path().join(file_name(Offset(0), "index"))).expect("rm");
        let (seg, report) =
            LogSegment::open_and_recover(dir.path(), Offset(0), 32).expect("recover");
        assert_eq!(report.valid_batches, 5);
        assert_eq!(report.truncated_bytes, (torn.len() / 2) as u64);
        assert_eq!(seg.size_bytes(), good);
        assert_eq!(seg.next_offset(), Offset(10));
        assert!(seg.find_batch(Offset(7)).expect("io").is_some());
    }

    #[test]
    fn recovery_cuts_at_the_first_corrupt_batch() {
        let dir = tempfile::tempdir().expect("tmp");
        let mut seg = LogSegment::create(dir.path(), Offset(0), 32).expect("create");
        append_n(&mut seg, 6, 1);
        let path = seg.log_path().to_path_buf();
        let third = seg.find_batch(Offset(3)).expect("io").expect("found").position;
        drop(seg);
        let f = OpenOptions::new().write(true).open(&path).expect("open");
        f.write_all_at(&[0xde, 0xad], third + 70).expect("corrupt");
        drop(f);
        let (seg, report) =
            LogSegment::open_and_recover(dir.path(), Offset(0), 32).expect("recover");
        assert_eq!(report.valid_batches, 3);
        assert_eq!(seg.next_offset(), Offset(3));
    }

    #[test]
    fn truncate_to_removes_batches_from_an_offset() {
        let dir = tempfile::tempdir().expect("tmp");
        let mut seg = LogSegment::create(dir.path(), Offset(0), 32).expect("create");
        append_n(&mut seg, 5, 2);
        seg.truncate_to(Offset(4)).expect("truncate");
        assert_eq!(seg.next_offset(), Offset(4));
        append_n(&mut seg, 1, 2);
        assert_eq!(seg.next_offset(), Offset(6));
    }
}
