//! `samsa bench clean`: the log cleaner's throughput and memory, without a broker. Writes a
//! compacted log of `--mib` MiB of keyed records (`--keys` distinct keys, written round-robin)
//! into a scratch directory with the broker's storage code, then cleans it to the end with the
//! broker's cleaner, as a cleaner thread would, and reports MB/s read and written and the
//! process's peak resident memory while cleaning (Linux's VmHWM, reset before the first round).

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use bytes::Bytes;
use clap::Args;
use kafka_protocol::records::Compression;

use crate::client::records::encode_batch;
use crate::clock::now_ms;
use crate::config::topic::CleanupPolicy;
use crate::log::cleaner::{self, OffsetMap};
use crate::log::{LogConfig, PartitionLog};
use crate::types::LeaderEpoch;

/// Records per written batch.
const BATCH_RECORDS: u64 = 100;

#[derive(Debug, Args)]
pub struct CleanBench {
    /// MiB of keyed records to write, then clean.
    #[arg(long, default_value_t = 1024)]
    pub mib: u64,
    /// Distinct keys, written round-robin (each key is rewritten every `keys` records).
    #[arg(long, default_value_t = 10_000)]
    pub keys: u64,
    /// Value size in bytes.
    #[arg(long, default_value_t = 100)]
    pub value_size: usize,
    /// The key → offset map's memory (`log.cleaner.dedupe.buffer.size` of one thread), MiB.
    #[arg(long, default_value_t = 128)]
    pub dedupe_buffer_mib: u64,
    /// `segment.bytes` of the log.
    #[arg(long, default_value_t = 64 * 1024 * 1024)]
    pub segment_bytes: u64,
    /// Scratch directory (created, and removed afterwards); default under the system temp dir.
    #[arg(long)]
    pub dir: Option<PathBuf>,
}

/// Peak resident memory of this process so far, in KiB (VmHWM), and a reset of it.
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}
fn reset_peak_rss() {
    // "5" resets the peak RSS (Documentation/filesystems/proc.rst, clear_refs).
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

pub(super) fn run(b: CleanBench) -> anyhow::Result<()> {
    let dir = b.dir.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!("samsa-bench-clean-{}", uuid::Uuid::new_v4()))
    });
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let result = bench(&b, &dir);
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn bench(b: &CleanBench, dir: &std::path::Path) -> anyhow::Result<()> {
    let config = LogConfig {
        segment_bytes: b.segment_bytes,
        segment_ms: i64::MAX,
        retention_ms: -1,
        retention_bytes: -1,
        max_message_bytes: 16 << 20,
        index_interval_bytes: 4096,
        flush_messages: u64::MAX,
        flush_ms: i64::MAX,
        timestamp_type: crate::log::config::TimestampType::CreateTime,
        min_insync_replicas: 1,
        cleanup_policy: CleanupPolicy { delete: false, compact: true },
        min_cleanable_ratio: 0.0,
        min_compaction_lag_ms: 0,
        max_compaction_lag_ms: i64::MAX,
        delete_retention_ms: 86_400_000,
        timestamp_before_max_ms: i64::MAX,
        timestamp_after_max_ms: i64::MAX,
        compression: None,
        compression_level: None,
        down_conversion: true,
    };
    let (mut log, _) = PartitionLog::open(dir, config)?;
    let target = b.mib * 1024 * 1024;
    let value = Bytes::from(vec![b'v'; b.value_size]);
    let started = Instant::now();
    let ts = now_ms();
    let mut n = 0u64;
    while log.size_bytes() < target {
        let pairs: Vec<(Option<Bytes>, Option<Bytes>)> = (n..n + BATCH_RECORDS)
            .map(|i| (Some(Bytes::from(format!("key-{:012}", i % b.keys))), Some(value.clone())))
            .collect();
        let batch = encode_batch(&pairs, ts, Compression::None)?;
        log.append_as_leader(&batch, LeaderEpoch(0), ts)?;
        n += BATCH_RECORDS;
    }
    log.roll()?;
    log.flush()?;
    let written = log.size_bytes();
    println!(
        "wrote {n} records ({:.1} MiB, {} keys) in {:.1} s",
        written as f64 / 1048576.0,
        b.keys,
        started.elapsed().as_secs_f64()
    );
    let mut map = OffsetMap::with_memory(b.dedupe_buffer_mib * 1024 * 1024);
    let (mut read, mut wrote, mut rounds) = (0u64, 0u64, 0u32);
    let rss_before = peak_rss_kib();
    reset_peak_rss();
    let started = Instant::now();
    let leo = log.log_end_offset();
    let mut previous = log.cleaner_position();
    loop {
        let Some(plan) = log.plan_clean(leo, now_ms()) else { break };
        let Some(cleaned) = cleaner::clean(&plan, &mut map, &mut |_| {})? else { break };
        let position = cleaned.first_dirty;
        read += cleaned.stats.bytes_read;
        wrote += cleaned.stats.bytes_written;
        rounds += 1;
        log.commit_clean(&plan, cleaned)?;
        println!("round {rounds}: cleaned to offset {position} of {leo}");
        if position >= leo || position <= previous {
            break;
        }
        previous = position;
    }
    let took = started.elapsed().as_secs_f64();
    let peak = peak_rss_kib();
    println!(
        "cleaned {:.1} MiB in {rounds} rounds, {took:.2} s: read {:.0} MB/s, wrote {:.1} MiB; log now {:.1} MiB ({} map entries max per round, capacity {})",
        written as f64 / 1048576.0,
        read as f64 / 1e6 / took.max(1e-9),
        wrote as f64 / 1048576.0,
        log.size_bytes() as f64 / 1048576.0,
        b.keys.min(map.capacity() as u64),
        map.capacity()
    );
    match (rss_before, peak) {
        (Some(before), Some(peak)) => println!(
            "peak resident memory while cleaning: {:.1} MiB (before: {:.1} MiB)",
            peak as f64 / 1024.0,
            before as f64 / 1024.0
        ),
        _ => println!("peak resident memory: unavailable (no /proc/self/status)"),
    }
    Ok(())
}
