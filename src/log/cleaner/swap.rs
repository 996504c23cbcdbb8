//! How cleaned segments replace the originals so that a crash at any instant leaves either the
//! old segments or the new ones, never a mix, and how startup finishes an interrupted swap.
//!
//! Files, per partition directory:
//! ```text
//! <base>.{log,index,timeindex,txnindex}.cleaned
//!                      a cleaned segment being written (Kafka's .cleaned); fsynced before the
//!                      swap is committed, deleted at startup when no swap names it
//! cleaner.swap         the commit point (Kafka's .swap step): JSON naming each group
//!                      [base, end) that a cleaned segment replaces, and the cleaner
//!                      checkpoint to install; written atomically (temp file, fsync, rename,
//!                      directory fsync)
//! cleaner-checkpoint   where the dirty section starts, and when each cleaned range was first
//!                      cleaned (for tombstone expiry); replaced atomically
//! ```
//! Applying a swap is idempotent, so startup redoes it whenever `cleaner.swap` exists: rename
//! every `.cleaned` file of a group over the group's first segment, delete the group's other
//! segments, install the checkpoint, fsync the directory, and only then remove `cleaner.swap`
//! (and fsync again, so a resurrected swap can never delete segments written later).

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::log::partition_log::segment_base_offsets;
use crate::log::segment::file_name;
use crate::types::Offset;

const SWAP_FILE: &str = "cleaner.swap";
const CHECKPOINT_FILE: &str = "cleaner-checkpoint";
/// The suffix of a cleaned segment's files while they are written.
pub(crate) const CLEANED_SUFFIX: &str = ".cleaned";
const SEGMENT_EXTENSIONS: [&str; 4] = ["index", "timeindex", "txnindex", "log"];

/// The cleaner's position in one log, persisted: Kafka's cleaner-offset-checkpoint entry, plus
/// when each range was first cleaned (Kafka derives that from segment modification times).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct CleanerCheckpoint {
    /// Every record below this offset has been through at least one cleaning.
    pub first_dirty: i64,
    /// `(end, first_cleaned_ms)` ascending by `end`: the records in `[previous end, end)` were
    /// first cleaned at `first_cleaned_ms`.
    pub cleaned: Vec<(i64, i64)>,
}

impl CleanerCheckpoint {
    /// The stored checkpoint; the default (nothing cleaned) when missing or unreadable: that
    /// only makes the next cleaning redo work and keeps tombstones longer.
    pub(crate) fn read(dir: &Path) -> Self {
        fs::read(dir.join(CHECKPOINT_FILE))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    fn write(&self, dir: &Path) -> io::Result<()> {
        let bytes = serde_json::to_vec(self).map_err(io::Error::other)?;
        crate::fsutil::replace_unsynced(&dir.join(CHECKPOINT_FILE), &bytes)
    }

    /// When the record at `offset` was first cleaned; `None` if it never was.
    pub(crate) fn first_cleaned_ms(&self, offset: Offset) -> Option<i64> {
        if offset.0 >= self.first_dirty {
            return None;
        }
        self.cleaned.iter().find(|(end, _)| offset.0 < *end).map(|(_, ms)| *ms)
    }

    /// After a round that cleaned up to `first_dirty` at `now_ms`; ranges first cleaned longer
    /// than `forget_after_ms` ago are merged (their tombstones have all expired), which bounds
    /// the list by the rounds within `delete.retention.ms`.
    pub(crate) fn advanced(&self, first_dirty: Offset, now_ms: i64, forget_after_ms: i64) -> Self {
        let mut next = self.clone();
        if first_dirty.0 > next.first_dirty {
            next.cleaned.push((first_dirty.0, now_ms));
            next.first_dirty = first_dirty.0;
        }
        let horizon = now_ms.saturating_sub(forget_after_ms);
        if let Some(last_expired) = next.cleaned.iter().rposition(|(_, ms)| *ms < horizon) {
            next.cleaned.drain(..last_expired);
        }
        next
    }

    /// After the log was truncated to `offset`: nothing at or above it is cleaned.
    pub(crate) fn truncated(&self, offset: Offset) -> Self {
        let mut next = self.clone();
        next.first_dirty = next.first_dirty.min(offset.0);
        let keep = next.cleaned.iter().position(|(end, _)| *end >= offset.0);
        if let Some(k) = keep {
            next.cleaned.truncate(k + 1);
            next.cleaned[k].0 = next.cleaned[k].0.min(offset.0);
        }
        next
    }

    /// Persists the checkpoint (atomically; fsynced with the directory by the caller, or not at
    /// all: an older checkpoint is always safe).
    pub(crate) fn store(&self, dir: &Path) -> io::Result<()> {
        self.write(dir)
    }
}

/// One committed replacement: the cleaned segment based at `base` takes the place of every
/// segment based in `[base, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SwapGroup {
    pub base: i64,
    pub end: i64,
}

#[derive(Debug, Serialize, Deserialize)]
struct Manifest {
    groups: Vec<SwapGroup>,
    checkpoint: CleanerCheckpoint,
}

/// The path of a cleaned segment's file with extension `ext` (before the swap).
pub(crate) fn cleaned_path(dir: &Path, base: Offset, ext: &str) -> PathBuf {
    dir.join(format!("{}{CLEANED_SUFFIX}", file_name(base, ext)))
}

/// Commits and applies a swap: the cleaned segments (already fsynced) replace their groups.
/// Blocking; several fsyncs. Returns once the swap is durable and `cleaner.swap` is gone.
pub(crate) fn commit(
    dir: &Path,
    groups: &[SwapGroup],
    checkpoint: &CleanerCheckpoint,
) -> io::Result<()> {
    let manifest = Manifest { groups: groups.to_vec(), checkpoint: checkpoint.clone() };
    let bytes = serde_json::to_vec(&manifest).map_err(io::Error::other)?;
    crate::fsutil::write_atomically(&dir.join(SWAP_FILE), &bytes)?;
    apply(dir, &manifest)
}

/// Startup: finishes a committed swap, then deletes cleaned files no swap names. Returns
/// whether a swap was finished.
pub(crate) fn recover(dir: &Path) -> io::Result<bool> {
    let path = dir.join(SWAP_FILE);
    let finished = match fs::read(&path) {
        Ok(bytes) => match serde_json::from_slice::<Manifest>(&bytes) {
            Ok(manifest) => {
                apply(dir, &manifest)?;
                true
            }
            // Written atomically, so unreadable means damaged storage: keep the originals.
            Err(e) => {
                tracing::error!(dir = %dir.display(), error = %e,
                    "unreadable cleaner.swap; keeping the uncleaned segments");
                fs::remove_file(&path)?;
                false
            }
        },
        Err(e) if e.kind() == io::ErrorKind::NotFound => false,
        Err(e) => return Err(e),
    };
    remove_cleaned_files(dir)?;
    Ok(finished)
}

/// Deletes every cleaned file in `dir` (a round that will not be swapped in; only one cleaner
/// works on a log at a time).
pub(crate) fn remove_cleaned_files(dir: &Path) -> io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_name().to_str().is_some_and(|n| n.ends_with(CLEANED_SUFFIX)) {
            fs::remove_file(entry.path())?;
        }
    }
    Ok(())
}

fn apply(dir: &Path, manifest: &Manifest) -> io::Result<()> {
    let bases = segment_base_offsets(dir)?;
    for g in &manifest.groups {
        let base = Offset(g.base);
        for ext in SEGMENT_EXTENSIONS {
            let from = cleaned_path(dir, base, ext);
            match fs::rename(&from, dir.join(file_name(base, ext))) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
        for b in bases.iter().filter(|b| b.0 > g.base && b.0 < g.end) {
            for ext in SEGMENT_EXTENSIONS {
                match fs::remove_file(dir.join(file_name(*b, ext))) {
                    Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                    _ => {}
                }
            }
        }
    }
    manifest.checkpoint.store(dir)?;
    crate::fsutil::sync_dir(dir)?;
    fs::remove_file(dir.join(SWAP_FILE))?;
    crate::fsutil::sync_dir(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_cleaned_times_follow_the_rounds_and_expired_ranges_merge() {
        let c = CleanerCheckpoint::default().advanced(Offset(100), 1_000, 10_000);
        let c = c.advanced(Offset(250), 5_000, 10_000);
        assert_eq!(c.first_cleaned_ms(Offset(99)), Some(1_000));
        assert_eq!(c.first_cleaned_ms(Offset(100)), Some(5_000));
        assert_eq!(c.first_cleaned_ms(Offset(250)), None);
        // At 20 s both ranges are past the 10 s horizon: one entry stands for both.
        let c = c.advanced(Offset(300), 20_000, 10_000);
        assert_eq!(c.cleaned, vec![(250, 5_000), (300, 20_000)]);
        assert_eq!(c.first_cleaned_ms(Offset(5)), Some(5_000));
        let t = c.truncated(Offset(120));
        assert_eq!((t.first_dirty, t.cleaned), (120, vec![(120, 5_000)]));
    }

    #[test]
    fn a_committed_swap_is_finished_at_startup_and_an_uncommitted_one_discarded() {
        let dir = tempfile::tempdir().expect("tmp");
        let d = dir.path();
        for base in [0, 10, 20, 30] {
            for ext in SEGMENT_EXTENSIONS {
                fs::write(d.join(file_name(Offset(base), ext)), format!("old {base}")).expect("w");
            }
        }
        for ext in SEGMENT_EXTENSIONS {
            fs::write(cleaned_path(d, Offset(0), ext), "new 0").expect("w");
            fs::write(cleaned_path(d, Offset(30), ext), "uncommitted").expect("w");
        }
        // A crash right after the commit point: the manifest is there, nothing applied.
        let manifest = Manifest {
            groups: vec![SwapGroup { base: 0, end: 20 }],
            checkpoint: CleanerCheckpoint { first_dirty: 20, cleaned: vec![(20, 7)] },
        };
        fs::write(d.join(SWAP_FILE), serde_json::to_vec(&manifest).expect("json")).expect("w");
        assert!(recover(d).expect("recover"));
        assert_eq!(fs::read_to_string(d.join(file_name(Offset(0), "log"))).expect("r"), "new 0");
        assert!(!d.join(file_name(Offset(10), "log")).exists());
        assert_eq!(fs::read_to_string(d.join(file_name(Offset(20), "log"))).expect("r"), "old 20");
        assert!(!cleaned_path(d, Offset(30), "log").exists(), "uncommitted files deleted");
        assert_eq!(CleanerCheckpoint::read(d).first_dirty, 20);
        // Redoing is harmless.
        fs::write(d.join(SWAP_FILE), serde_json::to_vec(&manifest).expect("json")).expect("w");
        assert!(recover(d).expect("again"));
        assert_eq!(fs::read_to_string(d.join(file_name(Offset(0), "log"))).expect("r"), "new 0");
        assert_eq!(fs::read_to_string(d.join(file_name(Offset(20), "log"))).expect("r"), "old 20");
    }
}
