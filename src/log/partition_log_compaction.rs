//! The log's side of compaction (see `cleaner/`): how much of it is cleanable, the plan a
//! cleaning round works from, and the swap that ends a round — the two steps that need the log
//! lock. Everything between them runs without it.

use std::io;

use super::{Cleanable, CommitOutcome, PartitionLog};
use crate::log::cleaner::swap::{self, SwapGroup};
use crate::log::cleaner::{CleanPlan, Cleaned, SegmentRef};
use crate::log::segment::LogSegment;
use crate::types::Offset;

impl PartitionLog {
    /// The cleaner's view of a compacted log now; `None` for a log that is not compacted or is
    /// closed. Nothing at or above the first uncleanable offset is cleaned: the active segment,
    /// the first segment reaching `high_watermark` or the recovery point (only durable,
    /// committed data is rewritten), the first one reaching the first unstable offset (the
    /// cleaner never passes the last stable offset), or the first one younger than
    /// `min.compaction.lag.ms`.
    pub(crate) fn cleanable(&self, high_watermark: Offset, now_ms: i64) -> Option<Cleanable> {
        if !self.config.cleanup_policy.compact || self.closed {
            return None;
        }
        let bounds = self.segment_bounds();
        let min_lag = self.config.min_compaction_lag_ms;
        let mut first_uncleanable = self.active_ref().base_offset();
        let unstable = self.first_unstable_offset().unwrap_or(Offset(i64::MAX));
        for (seg, end) in &bounds {
            let young = seg.max_timestamp_ms() >= 0
                && now_ms.saturating_sub(seg.max_timestamp_ms()) < min_lag;
            if *end > high_watermark || *end > self.recovery_point || *end > unstable || young {
                first_uncleanable = seg.base_offset();
                break;
            }
        }
        let first_dirty = Offset(self.cleaner.first_dirty).max(self.log_start_offset());
        let (mut clean_bytes, mut dirty_bytes) = (0u64, 0u64);
        let mut first_dirty_segment = None;
        for (seg, end) in bounds.iter().filter(|(s, _)| s.base_offset() < first_uncleanable) {
            if *end <= first_dirty {
                clean_bytes += seg.size_bytes();
            } else {
                dirty_bytes += seg.size_bytes();
                first_dirty_segment.get_or_insert(*seg);
            }
        }
        let total = clean_bytes + dirty_bytes;
        let dirty_ratio = if total == 0 { 0.0 } else { dirty_bytes as f64 / total as f64 };
        // KIP-354: a record older than max.compaction.lag.ms forces a round. The first batch's
        // timestamp stands for the segment's earliest (Kafka reads the same).
        let max_lag = self.config.max_compaction_lag_ms;
        let overdue = max_lag < i64::MAX
            && first_dirty_segment
                .and_then(|seg| seg.first_batch_timestamp_ms().ok().flatten())
                .is_some_and(|ts| ts >= 0 && now_ms.saturating_sub(ts) > max_lag);
        Some(Cleanable {
            first_dirty,
            first_uncleanable,
            clean_bytes,
            dirty_bytes,
            dirty_ratio,
            overdue,
        })
    }

    /// Every segment but the active one, with the offset where the next one starts.
    fn segment_bounds(&self) -> Vec<(&LogSegment, Offset)> {
        let segs: Vec<&LogSegment> = self.segments.values().collect();
        segs.windows(2).map(|w| (w[0], w[1].base_offset())).collect()
    }

    /// The plan of a cleaning round over everything below the first uncleanable offset, or
    /// `None` when nothing is dirty.
    pub(crate) fn plan_clean(&self, high_watermark: Offset, now_ms: i64) -> Option<CleanPlan> {
        let c = self.cleanable(high_watermark, now_ms)?;
        if c.dirty_bytes == 0 {
            return None;
        }
        let segments = self
            .segment_bounds()
            .into_iter()
            .filter(|(seg, _)| seg.base_offset() < c.first_uncleanable)
            .map(|(seg, end)| SegmentRef {
                base: seg.base_offset(),
                end,
                file: seg.file().clone(),
                size_bytes: seg.size_bytes(),
            })
            .collect();
        let mut checkpoint = self.cleaner.clone();
        checkpoint.first_dirty = c.first_dirty.0;
        Some(CleanPlan {
            dir: self.dir.clone(),
            segments,
            checkpoint,
            producer_last_offsets: self.producers.last_batch_offsets(),
            // From every segment: a transaction below the plan's end may be aborted by a
            // marker past it.
            aborted: self
                .segments
                .values()
                .flat_map(|seg| seg.aborted_txns())
                .filter(|t| t.first_offset < c.first_uncleanable)
                .copied()
                .collect(),
            delete_retention_ms: self.config.delete_retention_ms,
            segment_bytes: self.config.segment_bytes,
            index_interval_bytes: self.config.index_interval_bytes,
            now_ms,
            truncations: self.truncations,
        })
    }

    /// Swaps a finished round in, unless the log changed under it: a truncation since the plan,
    /// or a segment it replaces gone (retention) or replaced. Blocking (fsyncs): the swap must
    /// be durable before the log serves the new segments. Readers holding slices of the old
    /// segments go on reading them through their handles.
    pub(crate) fn commit_clean(
        &mut self,
        plan: &CleanPlan,
        cleaned: Cleaned,
    ) -> io::Result<CommitOutcome> {
        let intact = plan.truncations == self.truncations
            && !self.closed
            && cleaned.groups.iter().flat_map(|g| &g.replaced).all(|(base, file)| {
                self.segments.get(base).is_some_and(|seg| std::sync::Arc::ptr_eq(seg.file(), file))
            });
        if !intact {
            swap::remove_cleaned_files(&self.dir)?;
            return Ok(CommitOutcome::Discarded);
        }
        let checkpoint = plan.checkpoint.advanced(
            cleaned.first_dirty,
            plan.now_ms,
            self.config.delete_retention_ms,
        );
        let groups: Vec<SwapGroup> = cleaned.groups.iter().map(|g| g.swap).collect();
        // The gaps the swap leaves are trusted at the next start below the recovery point (and
        // the checkpoint): make sure the stored one covers them.
        self.checkpoint_recovery_point()?;
        swap::commit(&self.dir, &groups, &checkpoint)?;
        for g in &groups {
            let doomed: Vec<Offset> =
                self.segments.range(Offset(g.base)..Offset(g.end)).map(|(b, _)| *b).collect();
            for b in doomed {
                self.segments.remove(&b);
            }
            let base = Offset(g.base);
            let interval = self.config.index_interval_bytes;
            let seg = match LogSegment::open_trusted(&self.dir, base, interval)? {
                Some(seg) => seg,
                None => LogSegment::open_and_recover(&self.dir, base, interval)?.0,
            };
            self.segments.insert(base, seg);
        }
        self.cleaner = checkpoint;
        Ok(CommitOutcome::Swapped { groups: groups.len() })
    }

    /// Where the cleaner stands: the first offset not yet cleaned.
    pub(crate) fn cleaner_position(&self) -> Offset {
        Offset(self.cleaner.first_dirty)
    }
}
