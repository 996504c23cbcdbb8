//! The log cleaner room (above the replica layer, beside `replication/` and `group/`): its
//! threads (`log.cleaner.threads`). Each repeatedly takes the hosted
//! compacted log that needs it most — one with a record past `max.compaction.lag.ms` first,
//! then the highest dirty ratio at or above its `min.cleanable.dirty.ratio` — and runs one round
//! on it (see `log::cleaner`), holding that log's lock only to plan and to swap. Every replica
//! cleans its own log, leaders and followers alike, as in Kafka.
//!
//! Invariants: a log is cleaned by one thread at a time; a thread sleeps
//! `log.cleaner.backoff.ms` when no log is due, and stops at shutdown (checked between rounds
//! and while sleeping; a round in progress finishes or is discarded at its swap, since a log
//! closed for shutdown refuses the swap). A log whose round fails is left alone for
//! [`UNCLEANABLE_RETRY`] (Kafka's "uncleanable partitions").

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::watch;

use crate::clock::now_ms;
use crate::config::cleaner::CleanerConfig;
use crate::log::CommitOutcome;
use crate::log::cleaner::OffsetMap;
use crate::replica::ReplicaManager;
use crate::types::TopicPartition;

/// How long a log whose cleaning failed is skipped before it is tried again.
pub(crate) const UNCLEANABLE_RETRY: Duration = Duration::from_secs(600);
/// How often a sleeping cleaner thread checks for shutdown.
const STOP_CHECK: Duration = Duration::from_millis(100);

/// What the cleaner threads did, for `/metrics` (`samsa_log_cleaner_*`).
#[derive(Debug, Default)]
pub(crate) struct CleanerStats {
    pub(crate) bytes_read: AtomicU64,
    pub(crate) bytes_written: AtomicU64,
    pub(crate) rounds: AtomicU64,
    /// Of the last finished round, in microseconds.
    pub(crate) last_run_duration_us: AtomicU64,
    /// The largest dirty ratio over the compacted logs at the last scan, in millionths.
    pub(crate) max_dirty_ratio_ppm: AtomicU64,
    /// Logs whose last round failed, with when.
    uncleanable: Mutex<BTreeMap<TopicPartition, Instant>>,
    /// Logs a thread is cleaning now.
    busy: Mutex<BTreeSet<TopicPartition>>,
}

impl CleanerStats {
    /// How many logs are marked uncleanable now.
    pub(crate) fn uncleanable_partitions(&self) -> usize {
        let mut marked = self.uncleanable.lock().unwrap_or_else(|p| p.into_inner());
        marked.retain(|_, at| at.elapsed() < UNCLEANABLE_RETRY);
        marked.len()
    }
}

/// Starts the cleaner threads; they run until `stop` turns true.
pub(crate) fn spawn(
    replicas: Arc<ReplicaManager>,
    config: CleanerConfig,
    stats: Arc<CleanerStats>,
    stop: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let memory = config.dedupe_buffer_bytes / config.threads.max(1) as u64;
    for i in 0..config.threads.max(1) {
        let (replicas, config, stats, stop) =
            (replicas.clone(), config.clone(), stats.clone(), stop.clone());
        std::thread::Builder::new()
            .name(format!("log-cleaner-{i}"))
            .spawn(move || run(&replicas, &config, &stats, &stop, memory))?;
    }
    Ok(())
}

fn stopped(stop: &watch::Receiver<bool>) -> bool {
    *stop.borrow() || stop.has_changed().is_err()
}

fn run(
    replicas: &ReplicaManager,
    config: &CleanerConfig,
    stats: &CleanerStats,
    stop: &watch::Receiver<bool>,
    memory_bytes: u64,
) {
    let mut map = OffsetMap::with_memory(memory_bytes);
    let backoff = Duration::from_millis(config.backoff_ms.max(0) as u64);
    while !stopped(stop) {
        if !clean_dirtiest(replicas, config, stats, &mut map, stop) {
            let until = Instant::now() + backoff;
            while Instant::now() < until && !stopped(stop) {
                std::thread::sleep(STOP_CHECK.min(until.saturating_duration_since(Instant::now())));
            }
        }
    }
}

/// Cleans the log that needs it most; `false` when none is due.
fn clean_dirtiest(
    replicas: &ReplicaManager,
    config: &CleanerConfig,
    stats: &CleanerStats,
    map: &mut OffsetMap,
    stop: &watch::Receiver<bool>,
) -> bool {
    let now = now_ms();
    let mut best = None;
    let mut max_ratio = 0.0f64;
    // Copies of the skip sets: no stats lock is held while the logs' locks are taken.
    let busy = stats.busy.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let uncleanable: BTreeSet<TopicPartition> = {
        let marked = stats.uncleanable.lock().unwrap_or_else(|p| p.into_inner());
        marked
            .iter()
            .filter(|(_, at)| at.elapsed() < UNCLEANABLE_RETRY)
            .map(|(tp, _)| tp.clone())
            .collect()
    };
    for part in replicas.all() {
        let Some(c) = part.cleanable(now) else { continue };
        max_ratio = max_ratio.max(c.dirty_ratio);
        let skip = busy.contains(&part.tp) || uncleanable.contains(&part.tp);
        if skip || !c.due(part.min_cleanable_ratio()) {
            continue;
        }
        let rank = (c.overdue, c.dirty_ratio);
        if best.as_ref().is_none_or(|(r, _): &((bool, f64), _)| rank > *r) {
            best = Some((rank, part));
        }
    }
    stats.max_dirty_ratio_ppm.store((max_ratio * 1e6) as u64, Ordering::Relaxed);
    let Some((_, part)) = best else { return false };
    // Claimed under the lock: another thread may have picked the same log meanwhile.
    if !stats.busy.lock().unwrap_or_else(|p| p.into_inner()).insert(part.tp.clone()) {
        return true;
    }
    let started = Instant::now();
    let mut throttle = Throttle::new(config.io_max_bytes_per_second, stop.clone());
    let result = part.clean_round(map, &mut |n| throttle.read(n), now);
    map.clear();
    stats.busy.lock().unwrap_or_else(|p| p.into_inner()).remove(&part.tp);
    match result {
        Ok(Some(round)) => {
            stats.rounds.fetch_add(1, Ordering::Relaxed);
            stats.bytes_read.fetch_add(round.stats.bytes_read, Ordering::Relaxed);
            stats.bytes_written.fetch_add(round.stats.bytes_written, Ordering::Relaxed);
            let took = started.elapsed();
            stats.last_run_duration_us.store(took.as_micros() as u64, Ordering::Relaxed);
            let swapped = matches!(round.outcome, CommitOutcome::Swapped { .. });
            tracing::info!(partition = %part.tp, read_bytes = round.stats.bytes_read,
                written_bytes = round.stats.bytes_written, records = round.stats.records_read,
                retained = round.stats.records_retained, keys = round.stats.map_entries,
                cleaned_to = %round.first_dirty, swapped, took_ms = took.as_millis() as u64,
                "log cleaned");
        }
        Ok(None) => {}
        Err(e) => {
            tracing::error!(partition = %part.tp, error = %e,
                "cleaning failed; the log is left uncleaned for a while");
            stats
                .uncleanable
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(part.tp.clone(), Instant::now());
        }
    }
    true
}

/// `log.cleaner.io.max.bytes.per.second`: sleeps when reads run ahead of the rate (measured
/// over windows of about a second, as Kafka's `Throttler` does).
struct Throttle {
    bytes_per_second: f64,
    window_start: Instant,
    window_bytes: u64,
    stop: watch::Receiver<bool>,
}

impl Throttle {
    const WINDOW: Duration = Duration::from_secs(1);

    fn new(bytes_per_second: f64, stop: watch::Receiver<bool>) -> Self {
        Throttle { bytes_per_second, window_start: Instant::now(), window_bytes: 0, stop }
    }

    fn read(&mut self, bytes: u64) {
        if self.bytes_per_second >= f64::MAX || self.bytes_per_second <= 0.0 {
            return;
        }
        self.window_bytes += bytes;
        let due = Duration::from_secs_f64(self.window_bytes as f64 / self.bytes_per_second);
        let elapsed = self.window_start.elapsed();
        if due > elapsed && !stopped(&self.stop) {
            std::thread::sleep((due - elapsed).min(Duration::from_secs(10)));
        }
        if self.window_start.elapsed() >= Self::WINDOW {
            self.window_start = Instant::now();
            self.window_bytes = 0;
        }
    }
}
