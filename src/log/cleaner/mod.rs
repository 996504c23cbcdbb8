//! Kafka's log cleaner for one log (`cleanup.policy=compact`): keeps at least the last record
//! of every key, without ever changing an offset.
//!
//! A round, as in Kafka's `Cleaner.doClean`:
//! 1. **Plan** (under the log lock, [`PartitionLog::plan_clean`]): the segments from the log
//!    start to the first uncleanable offset — the active segment, the first segment reaching
//!    the high watermark or the recovery point, or the first one younger than
//!    `min.compaction.lag.ms`, whichever comes first — with their open file handles.
//! 2. **Map** (no lock, [`clean`]): key → last offset over the dirty section (from the cleaner
//!    checkpoint on), in as much of it as the [`OffsetMap`] holds, whole batches at a time.
//! 3. **Copy** (no lock): every segment below the mapped end is recopied into `.cleaned` files,
//!    neighbours merged while they fit in `segment.bytes`. A record is retained when it has a
//!    key, no later offset of its key is mapped, and it is not a tombstone first cleaned more
//!    than `delete.retention.ms` ago. The batch holding an idempotent producer's last write is
//!    kept even if emptied, so producer state can be rebuilt from the log. The cleaned segments
//!    are fsynced.
//! 4. **Swap** (under the lock, [`PartitionLog::commit_clean`]): if no segment of the plan was
//!    deleted or truncated meanwhile, `swap::commit` replaces the groups crash-safely.
//!
//! Invariants: offsets never change (a batch keeps its base and last offset; readers see gaps);
//! nothing at or above the first uncleanable offset is touched, so the high watermark, the log
//! end and everything a follower has not confirmed stay as they are; a key's latest record below
//! the mapped end is never dropped unless it is an expired tombstone. Segments below the active
//! one are immutable, and a deleted segment stays readable through its handle, so steps 2 and 3
//! need no lock.
//!
//! Transactions, as Kafka's cleaner treats them: the plan stops before the first unstable
//! offset; an aborted transaction's records are never mapped and are all removed (a producer's
//! last batch is kept empty); a marker is kept while any batch of its transaction is, and once
//! none is, until it was first cleaned more than `delete.retention.ms` ago, like a tombstone.
//! An ABORT marker kept keeps its aborted-transaction index entry in the cleaned segment.
//!
//! [`PartitionLog::plan_clean`]: super::PartitionLog::plan_clean
//! [`PartitionLog::commit_clean`]: super::PartitionLog::commit_clean

pub(crate) mod offset_map;
pub(crate) mod swap;

use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::Arc;

use thiserror::Error;

pub(crate) use self::offset_map::OffsetMap;
use self::swap::{CleanerCheckpoint, SwapGroup};
use super::batch::{self, BATCH_HEADER_BYTES, BatchHeader};
use super::control::{self, Marker};
use super::records::{self, Filtered, RecordsError};
use super::segment::LogSegment;
use super::txn_index::AbortedTxn;
use crate::types::{Offset, ProducerId};

/// Bytes read from a segment at a time (Kafka's `log.cleaner.io.buffer.size` is 512 KiB per
/// read and write buffer).
const READ_CHUNK_BYTES: usize = 1 << 20;

/// One segment of a plan, by its open handle (not its path: a swap may rename over it).
#[derive(Debug, Clone)]
pub(crate) struct SegmentRef {
    pub base: Offset,
    /// The next segment's base offset: the segment covers `[base, end)`.
    pub end: Offset,
    pub file: Arc<File>,
    pub size_bytes: u64,
}

/// What a round works from; nothing in it changes while the round runs without the lock.
#[derive(Debug)]
pub(crate) struct CleanPlan {
    pub dir: PathBuf,
    /// From the log start to the first uncleanable offset, ascending.
    pub segments: Vec<SegmentRef>,
    pub checkpoint: CleanerCheckpoint,
    /// The last offset of each idempotent producer's latest batch.
    pub producer_last_offsets: HashMap<ProducerId, Offset>,
    /// Every aborted transaction starting below the plan's end.
    pub aborted: Vec<AbortedTxn>,
    pub delete_retention_ms: i64,
    pub segment_bytes: u64,
    pub index_interval_bytes: u64,
    pub now_ms: i64,
    /// The log's truncation count when planned: a round that straddles one is discarded.
    pub truncations: u64,
}

/// One cleaned group, written and fsynced beside the originals.
#[derive(Debug)]
pub(crate) struct CleanedGroup {
    pub swap: SwapGroup,
    /// The segments it replaces, to check at commit that they are still the log's.
    pub replaced: Vec<(Offset, Arc<File>)>,
}

/// A finished copy phase, ready to be swapped in.
#[derive(Debug)]
pub(crate) struct Cleaned {
    pub groups: Vec<CleanedGroup>,
    /// Where the dirty section starts after this round.
    pub first_dirty: Offset,
    pub stats: CleanStats,
}

/// What a round read and wrote.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CleanStats {
    pub bytes_read: u64,
    pub bytes_written: u64,
    pub records_read: u64,
    pub records_retained: u64,
    pub map_entries: u64,
}

/// Why a round stopped.
#[derive(Debug, Error)]
pub(crate) enum CleanError {
    #[error("storage error: {0}")]
    Io(#[from] io::Error),
    #[error("batch at offset {offset}: {source}")]
    Records { offset: Offset, source: RecordsError },
    #[error(
        "the batch at offset {offset} has {records} records but log.cleaner.dedupe.buffer.size \
         holds {capacity} keys per cleaner thread; raise log.cleaner.dedupe.buffer.size"
    )]
    DedupeBufferTooSmall { offset: Offset, records: i32, capacity: usize },
}

/// Steps 2 and 3 of a round. `throttle` is told every read (bytes) and may sleep. `None`: the
/// plan has no dirty section.
pub(crate) fn clean(
    plan: &CleanPlan,
    map: &mut OffsetMap,
    throttle: &mut dyn FnMut(u64),
) -> Result<Option<Cleaned>, CleanError> {
    let mut stats = CleanStats::default();
    let aborted = Aborted::new(&plan.aborted);
    let Some(first_dirty) = build_map(plan, &aborted, map, throttle, &mut stats)? else {
        return Ok(None);
    };
    stats.map_entries = map.len() as u64;
    let cleanable: Vec<&SegmentRef> =
        plan.segments.iter().filter(|s| s.base < first_dirty).collect();
    let mut groups = Vec::new();
    let mut txns = TxnsSeen::default();
    for group in group_segments(&cleanable, plan.segment_bytes) {
        match copy_group(plan, &group, map, (&aborted, &mut txns), throttle, &mut stats) {
            Ok(Some(g)) => groups.push(g),
            Ok(None) => {}
            Err(e) => {
                let _ = swap::remove_cleaned_files(&plan.dir);
                return Err(e);
            }
        }
    }
    Ok(Some(Cleaned { groups, first_dirty, stats }))
}

/// Maps the dirty section; returns the offset where mapping stopped (the new first dirty
/// offset), or `None` when there is nothing dirty.
fn build_map(
    plan: &CleanPlan,
    aborted: &Aborted,
    map: &mut OffsetMap,
    throttle: &mut dyn FnMut(u64),
    stats: &mut CleanStats,
) -> Result<Option<Offset>, CleanError> {
    map.clear();
    let start = Offset(plan.checkpoint.first_dirty);
    let Some(last) = plan.segments.last() else { return Ok(None) };
    if last.end <= start {
        return Ok(None);
    }
    let mut mapped_to = start;
    for seg in plan.segments.iter().filter(|s| s.end > start) {
        let full = for_each_batch(seg, throttle, &mut stats.bytes_read, |h, bytes| {
            if h.last_offset() < start {
                return Ok(true);
            }
            if !map.has_room_for(h.records_count.max(0) as usize) {
                if mapped_to == start && map.len() == 0 {
                    return Err(CleanError::DedupeBufferTooSmall {
                        offset: h.base_offset,
                        records: h.records_count,
                        capacity: map.capacity(),
                    });
                }
                mapped_to = h.base_offset;
                return Ok(false);
            }
            if !h.is_control() && !aborted.holds(h) {
                let section = records::records_section(bytes, h)
                    .map_err(|source| CleanError::Records { offset: h.base_offset, source })?;
                records::for_each_record(&section, h, |r| {
                    if let Some(key) = r.key {
                        map.put(key, r.offset);
                    }
                })
                .map_err(|source| CleanError::Records { offset: h.base_offset, source })?;
            }
            mapped_to = h.next_offset();
            Ok(true)
        })?;
        if !full {
            return Ok(Some(mapped_to.max(start)));
        }
        mapped_to = seg.end;
    }
    Ok(Some(mapped_to))
}

/// Groups neighbouring segments whose total size fits in one segment and whose offsets fit
/// the index's 32-bit relative offsets.
fn group_segments<'a>(segments: &[&'a SegmentRef], segment_bytes: u64) -> Vec<Vec<&'a SegmentRef>> {
    let mut groups: Vec<Vec<&SegmentRef>> = Vec::new();
    for seg in segments {
        if let Some(g) = groups.last_mut() {
            let size: u64 = g.iter().map(|s| s.size_bytes).sum();
            let span = seg.end.0 - g[0].base.0;
            if size + seg.size_bytes <= segment_bytes && span <= i64::from(u32::MAX) {
                g.push(seg);
                continue;
            }
        }
        groups.push(vec![seg]);
    }
    groups
}

/// The aborted transactions of a plan, by producer: (first offset, marker offset).
struct Aborted(HashMap<ProducerId, Vec<(Offset, Offset)>>);

impl Aborted {
    fn new(entries: &[AbortedTxn]) -> Self {
        let mut by_producer: HashMap<ProducerId, Vec<(Offset, Offset)>> = HashMap::new();
        for e in entries {
            by_producer.entry(e.producer_id).or_default().push((e.first_offset, e.last_offset));
        }
        Aborted(by_producer)
    }

    /// Whether `h` is a data batch of an aborted transaction.
    fn holds(&self, h: &BatchHeader) -> bool {
        h.is_transactional()
            && !h.is_control()
            && self.0.get(&h.producer_id).is_some_and(|ranges| {
                ranges.iter().any(|(first, last)| *first <= h.base_offset && h.base_offset <= *last)
            })
    }
}

/// Per producer, whether a batch of its current transaction was written to the cleaned log
/// (then its marker must stay: replay would otherwise leave the transaction open).
#[derive(Default)]
struct TxnsSeen(HashMap<ProducerId, bool>);

/// Copies one group into a cleaned segment; `None` when nothing would change (one segment,
/// every batch retained whole), so there is nothing to swap.
fn copy_group(
    plan: &CleanPlan,
    group: &[&SegmentRef],
    map: &OffsetMap,
    (aborted, txns): (&Aborted, &mut TxnsSeen),
    throttle: &mut dyn FnMut(u64),
    stats: &mut CleanStats,
) -> Result<Option<CleanedGroup>, CleanError> {
    let base = group[0].base;
    let end = group[group.len() - 1].end;
    let mut out = LogSegment::create_cleaned(&plan.dir, base, plan.index_interval_bytes)?;
    let mut changed = group.len() > 1;
    for seg in group {
        for_each_batch(seg, throttle, &mut stats.bytes_read, |h, bytes| {
            stats.records_read += h.records_count.max(0) as u64;
            let records_error = |source| CleanError::Records { offset: h.base_offset, source };
            let keep_empty = h.has_producer_id()
                && plan.producer_last_offsets.get(&h.producer_id) == Some(&h.last_offset());
            let filtered = if h.is_control() {
                if !h.has_producer_id() {
                    Filtered::Unchanged
                } else {
                    let had_batches = txns.0.remove(&h.producer_id).unwrap_or(false);
                    let expired =
                        plan.checkpoint.first_cleaned_ms(h.base_offset).is_some_and(|ms| {
                            plan.now_ms.saturating_sub(ms) > plan.delete_retention_ms
                        });
                    if !had_batches && expired {
                        Filtered::Removed
                    } else {
                        let rec = control::control_record(bytes, h).map_err(records_error)?;
                        if rec.marker == Marker::Abort
                            && let Some(e) = plan.aborted.iter().find(|e| {
                                e.producer_id == h.producer_id && e.last_offset == h.base_offset
                            })
                        {
                            out.index_aborted_txn(*e)?;
                        }
                        Filtered::Unchanged
                    }
                }
            } else if aborted.holds(h) {
                records::filter_batch(bytes, h, keep_empty, |_| false).map_err(records_error)?
            } else {
                records::filter_batch(bytes, h, keep_empty, |r| retain(plan, map, r))
                    .map_err(records_error)?
            };
            if h.is_transactional() && !h.is_control() {
                let written = !matches!(filtered, Filtered::Removed);
                *txns.0.entry(h.producer_id).or_default() |= written;
            }
            match filtered {
                Filtered::Unchanged => {
                    stats.records_retained += h.records_count.max(0) as u64;
                    out.append(bytes, h)?;
                    stats.bytes_written += bytes.len() as u64;
                }
                Filtered::Removed => changed = true,
                Filtered::Rewritten(new) => {
                    changed = true;
                    let nh = batch::parse_header(&new)
                        .map_err(|_| io::Error::other("rebuilt batch has no valid header"))?;
                    stats.records_retained += nh.records_count.max(0) as u64;
                    out.append(&new, &nh)?;
                    stats.bytes_written += new.len() as u64;
                }
            }
            Ok(true)
        })?;
    }
    if !changed {
        drop(out);
        for ext in ["log", "index", "timeindex", "txnindex"] {
            let _ = std::fs::remove_file(swap::cleaned_path(&plan.dir, base, ext));
        }
        return Ok(None);
    }
    out.flush()?;
    Ok(Some(CleanedGroup {
        swap: SwapGroup { base: base.0, end: end.0 },
        replaced: group.iter().map(|s| (s.base, s.file.clone())).collect(),
    }))
}

/// Whether a record survives this round.
fn retain(plan: &CleanPlan, map: &OffsetMap, r: &records::RecordView<'_>) -> bool {
    // Records without a key cannot be compacted; Kafka's cleaner drops them too.
    let Some(key) = r.key else { return false };
    if map.get(key).is_some_and(|latest| r.offset < latest) {
        return false;
    }
    if r.value_is_null
        && let Some(cleaned_ms) = plan.checkpoint.first_cleaned_ms(r.offset)
        && plan.now_ms.saturating_sub(cleaned_ms) > plan.delete_retention_ms
    {
        return false;
    }
    true
}

/// Calls `f` with every whole batch of `seg` in order (header, bytes), reading in chunks;
/// stops early when `f` returns `false`. Returns whether it went through the whole segment.
fn for_each_batch(
    seg: &SegmentRef,
    throttle: &mut dyn FnMut(u64),
    bytes_read: &mut u64,
    mut f: impl FnMut(&BatchHeader, &[u8]) -> Result<bool, CleanError>,
) -> Result<bool, CleanError> {
    let mut buf: Vec<u8> = Vec::new();
    let mut buf_start = 0u64; // file position of buf[0]
    let mut position = 0u64;
    while position < seg.size_bytes {
        let at = (position - buf_start) as usize;
        let header = (buf.len() >= at + BATCH_HEADER_BYTES)
            .then(|| batch::parse_header(&buf[at..]).ok())
            .flatten();
        let need = header.map_or(BATCH_HEADER_BYTES, |h| h.size_bytes);
        if buf.len() < at + need {
            let remaining = seg.size_bytes - position;
            let len = (need.max(READ_CHUNK_BYTES) as u64).min(remaining) as usize;
            if len < need {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("segment {} ends inside a batch", seg.base),
                )
                .into());
            }
            buf.resize(len, 0);
            seg.file.read_exact_at(&mut buf, position)?;
            buf_start = position;
            *bytes_read += len as u64;
            throttle(len as u64);
            continue;
        }
        let Some(h) = header else {
            return Err(io::Error::other(format!(
                "segment {} has an unreadable batch header at position {position}",
                seg.base
            ))
            .into());
        };
        if !f(&h, &buf[at..at + h.size_bytes])? {
            return Ok(false);
        }
        position += h.size_bytes as u64;
    }
    Ok(true)
}

#[cfg(test)]
mod tests;
