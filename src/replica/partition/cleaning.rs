//! The replica's side of log compaction: how cleanable its log is, and one cleaning round
//! (plan under the log lock, map and copy without it, swap under it again; see `log::cleaner`).
//! The round is bounded by this replica's high watermark, so only committed data is rewritten.

use super::Partition;
use crate::log::cleaner::{self, CleanError, CleanStats, OffsetMap};
use crate::log::{Cleanable, CommitOutcome};
use crate::types::Offset;

/// What one round did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct CleanRound {
    pub stats: CleanStats,
    pub outcome: CommitOutcome,
    /// The cleaner's position after the round.
    pub first_dirty: Offset,
}

impl Partition {
    /// How much of this replica's log the cleaner could take now (`None`: not compacted).
    pub(crate) fn cleanable(&self, now_ms: i64) -> Option<Cleanable> {
        let hw = self.high_watermark();
        self.lock_log().cleanable(hw, now_ms)
    }

    /// The log's `min.cleanable.dirty.ratio`.
    pub(crate) fn min_cleanable_ratio(&self) -> f64 {
        self.lock_log().config().min_cleanable_ratio
    }

    /// One cleaning round. Blocking (reads and writes segments, fsyncs): run it on a cleaner
    /// thread. `None` when nothing was dirty.
    pub(crate) fn clean_round(
        &self,
        map: &mut OffsetMap,
        throttle: &mut dyn FnMut(u64),
        now_ms: i64,
    ) -> Result<Option<CleanRound>, CleanError> {
        let hw = self.high_watermark();
        let Some(plan) = self.lock_log().plan_clean(hw, now_ms) else { return Ok(None) };
        let Some(cleaned) = cleaner::clean(&plan, map, throttle)? else { return Ok(None) };
        let (stats, first_dirty) = (cleaned.stats, cleaned.first_dirty);
        let outcome = self.lock_log().commit_clean(&plan, cleaned)?;
        Ok(Some(CleanRound { stats, outcome, first_dirty }))
    }

    /// Bytes of every segment of this replica's log.
    pub(crate) fn log_size_bytes(&self) -> u64 {
        self.lock_log().size_bytes()
    }
}
