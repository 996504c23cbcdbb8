//! What survives a restart, and what is re-validated: the recovery point (every record below it
//! was fsynced) and the clean-shutdown marker decide which segments open as stored and which
//! are validated batch by batch (see `PartitionLog::open`).
//!
//! Files, per partition directory:
//! ```text
//! recovery-point            the offset below which the log is durable, as text
//! recovery-point.candidate  a checkpoint being written (installed by rename under the log lock)
//! clean-shutdown            empty; present only between a clean shutdown and the next open
//! ```

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::Path;

use super::config::LogConfig;
use super::partition_log::{OpenReport, segment_base_offsets};
use super::segment::LogSegment;
use crate::types::Offset;

/// The log's recovery point (Kafka's recovery-point-offset-checkpoint, per partition): every
/// record below it was fsynced, so startup does not re-validate the segments wholly below it.
pub(super) const RECOVERY_POINT_FILE: &str = "recovery-point";
/// Written after a clean shutdown's final flush, removed at open: its presence means every
/// segment is durable and whole, and nothing is re-validated.
pub(super) const CLEAN_SHUTDOWN_FILE: &str = "clean-shutdown";
/// Where the periodic checkpoint writes a recovery point before it is installed.
pub(super) const RECOVERY_POINT_CANDIDATE_FILE: &str = "recovery-point.candidate";

/// First half of the periodic recovery-point checkpoint: writes and fsyncs the candidate file,
/// without the log's lock (see `PartitionLog::recovery_point_to_checkpoint`).
pub(crate) fn write_recovery_point_candidate(dir: &Path, recovery_point: Offset) -> io::Result<()> {
    use std::io::Write as _;
    let mut f = fs::File::create(dir.join(RECOVERY_POINT_CANDIDATE_FILE))?;
    f.write_all(recovery_point.0.to_string().as_bytes())?;
    f.sync_all()
}

/// An offset stored as text in its own file (`None`: missing or unreadable).
pub(super) fn read_offset_file(path: &Path) -> Option<Offset> {
    fs::read_to_string(path).ok()?.trim().parse().ok().map(Offset)
}

/// Opens every segment in `dir`, in offset order: trusted (see [`LogSegment::open_trusted`])
/// when the log was shut down cleanly or the segment lies wholly below `recovery_point`;
/// otherwise recovered from `recovery_point` on (see [`LogSegment::open_recovering_tail`]). A
/// segment that does not follow on from the one before (a gap the cleaner cannot have left, or
/// an overlap), and everything after a cut, is deleted.
pub(super) fn open_segments(
    dir: &Path,
    config: &LogConfig,
    clean: bool,
    recovery_point: Offset,
    gaps_trusted_below: Offset,
) -> io::Result<(BTreeMap<Offset, LogSegment>, OpenReport)> {
    // A segment may end before the next one starts only where the log cleaner removed its last
    // batches: below the cleaner checkpoint or the recovery point (the cleaner cleans only
    // durable segments), or anywhere after a clean shutdown. Elsewhere a gap means lost data.
    let follows_on = |end: Offset, next: Offset| {
        end == next || (end < next && (clean || next <= gaps_trusted_below))
    };
    let mut report = OpenReport::default();
    let mut segments = BTreeMap::new();
    let bases = segment_base_offsets(dir)?;
    let mut expected_next: Option<Offset> = None;
    let mut cut = false;
    for (i, &base) in bases.iter().enumerate() {
        let interval = config.index_interval_bytes;
        if cut || expected_next.is_some_and(|n| !follows_on(n, base)) {
            // Anything after a cut (or a gap) cannot be trusted to follow on.
            LogSegment::open_and_recover(dir, base, interval)?.0.delete()?;
            report.segments_dropped += 1;
            cut = true;
            continue;
        }
        let below_recovery_point = bases.get(i + 1).is_some_and(|next| *next <= recovery_point);
        let trusted = if clean || below_recovery_point {
            LogSegment::open_trusted(dir, base, interval)?.filter(|seg| {
                bases.get(i + 1).is_none_or(|next| follows_on(seg.next_offset(), *next))
            })
        } else {
            None
        };
        let seg = match trusted {
            Some(seg) => {
                report.segments_trusted += 1;
                seg
            }
            None => {
                // Only what lies past the recovery point is validated (all of it without one).
                let (seg, r) =
                    LogSegment::open_recovering_tail(dir, base, interval, recovery_point)?;
                report.recovered.valid_batches += r.valid_batches;
                report.recovered.valid_bytes += r.valid_bytes;
                report.recovered.truncated_bytes += r.truncated_bytes;
                cut = r.truncated_bytes > 0;
                seg
            }
        };
        expected_next = Some(seg.next_offset());
        segments.insert(base, seg);
    }
    Ok((segments, report))
}

#[cfg(test)]
#[path = "recovery_tests.rs"]
mod tests;
