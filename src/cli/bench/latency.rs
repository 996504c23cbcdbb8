//! Open-loop latency benchmarks: records are due on a fixed schedule (`--rate`) whether or not
//! earlier ones were answered, batched like a real client (`--linger-ms`, `--batch-bytes`, at
//! most `--in-flight` requests per connection), and each record's latency is counted from the
//! moment it was due. A slow broker therefore shows as queueing in the numbers instead of
//! slowing the load down (no coordinated omission).
//!
//! * `bench produce --rate N`: due → acknowledgement.
//! * `bench e2e --rate N`: due → a consumer (long-polling every partition's leader) receives it.
//!   Each value starts with its due time in microseconds, read back by the consumer.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use bytes::{BufMut, Bytes, BytesMut};
use clap::Args;
use hdrhistogram::Histogram;
use kafka_protocol::messages::{FetchRequest, ProduceRequest};
use kafka_protocol::records::Compression;

use super::{ProduceBench, ensure_topic, histogram};
use crate::cli::ClientArgs;
use crate::cli::admin::{list_offset, partition_count};
use crate::cli::produce::parse_acks;
use crate::cli::topic::error_name;
use crate::client::KafkaClient;
use crate::client::cluster::ClusterClient;
use crate::client::records::{
    decode_records, encode_batch, fetch_request, parse_compression, produce_request,
};

/// How often the send schedule is looked at while nothing is answered: tokio's timer
/// granularity (1 ms), so a record may wait up to this long beyond `--linger-ms`.
const SCHEDULE_TICK: Duration = Duration::from_millis(1);
/// How long the e2e consumer keeps reading after the producers stopped, for the last records.
const DRAIN_WAIT: Duration = Duration::from_secs(2);

/// Microseconds since the Unix epoch.
fn now_us() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_micros() as i64)
}

/// One leader's share of an open-loop run.
struct OpenLoopJob {
    addr: String,
    partitions: Vec<i32>,
    /// Records per second for this connection.
    rate: f64,
    load: Load,
}

/// A record set on the wire: its records' due times (µs since the epoch).
struct InFlight {
    due_us: Vec<i64>,
}

/// What one connection measured: records acknowledged, latency due → ack, and records that
/// were due but not sent before the end (the broker could not keep up).
struct OpenLoopResult {
    acked: u64,
    latency_us: Histogram<u64>,
    unsent: u64,
}

/// A record value: the due time (8 bytes, µs) then filler up to `size`.
fn value(due_us: i64, size: usize) -> Bytes {
    let mut v = BytesMut::with_capacity(size.max(8));
    v.put_i64(due_us);
    v.resize(size.max(8), b'x');
    v.freeze()
}

/// One connection's sending side: encodes and sends batches, counts acknowledgements.
struct Sender {
    client: KafkaClient,
    version: i16,
    job: OpenLoopJob,
    /// Batches by record count, encoded once, when values need not carry their due time.
    encoded: std::collections::HashMap<usize, Bytes>,
    in_flight: VecDeque<InFlight>,
    next_partition: usize,
    hist: Histogram<u64>,
    acked: u64,
}

impl Sender {
    fn batch(&mut self, due: &[i64]) -> anyhow::Result<Bytes> {
        let (size, compression) = (self.job.load.record_size, self.job.load.compression);
        let encode = |stamps: &[i64]| {
            let recs: Vec<_> = stamps.iter().map(|d| (None, Some(value(*d, size)))).collect();
            encode_batch(&recs, crate::clock::now_ms(), compression)
        };
        if self.job.load.stamp_values {
            return encode(due);
        }
        if let Some(b) = self.encoded.get(&due.len()) {
            return Ok(b.clone());
        }
        let b = encode(due)?;
        self.encoded.insert(due.len(), b.clone());
        Ok(b)
    }

    async fn send(&mut self, due: Vec<i64>) -> anyhow::Result<()> {
        let batch = self.batch(&due)?;
        let partition = self.job.partitions[self.next_partition % self.job.partitions.len()];
        self.next_partition += 1;
        let req = produce_request(&self.job.load.topic, partition, batch, self.job.load.acks);
        self.client.queue(&req, self.version)?;
        self.client.flush().await?;
        if self.job.load.acks == 0 {
            self.acknowledged(&due)?;
        } else {
            self.in_flight.push_back(InFlight { due_us: due });
        }
        Ok(())
    }

    fn acknowledged(&mut self, due: &[i64]) -> anyhow::Result<()> {
        let now = now_us();
        for d in due {
            self.hist.record((now - d).max(1) as u64)?;
        }
        self.acked += due.len() as u64;
        Ok(())
    }

    /// Waits for the oldest request's answer, or `SCHEDULE_TICK`, whichever comes first.
    async fn receive_or_tick(&mut self) -> anyhow::Result<()> {
        let tick = tokio::time::sleep(SCHEDULE_TICK);
        if self.in_flight.is_empty() {
            tick.await;
            return Ok(());
        }
        tokio::select! {
            // Cancel-safe: a partly read response stays in the client's buffer.
            received = self.client.receive::<ProduceRequest>(self.version) => {
                let (_, resp) = received?;
                let sent = self.in_flight.pop_front().context("response without request")?;
                for p in resp.responses.iter().flat_map(|t| &t.partition_responses) {
                    if p.error_code != 0 {
                        bail!("produce failed: {}", error_name(p.error_code));
                    }
                }
                self.acknowledged(&sent.due_us)
            }
            () = tick => Ok(()),
        }
    }
}

/// Runs one connection's schedule: records fall due at `rate`, wait at most `linger` (or
/// until `batch_bytes`) to be sent, and are acknowledged in order.
async fn run_open_loop(job: OpenLoopJob) -> anyhow::Result<OpenLoopResult> {
    let client = KafkaClient::connect(&job.addr).await?;
    let version = client.version::<ProduceRequest>(9)?;
    let per_batch = (job.load.batch_bytes / job.load.record_size.max(1)).max(1);
    let interval_us = (1e6 / job.rate.max(1e-3)).max(0.001);
    let total = (job.rate * job.load.duration.as_secs_f64()) as u64;
    let (linger_us, duration) = (job.load.linger.as_micros() as i64, job.load.duration);
    let mut s = Sender {
        client,
        version,
        in_flight: VecDeque::new(),
        encoded: Default::default(),
        next_partition: 0,
        hist: histogram()?,
        acked: 0,
        job,
    };
    let (start, start_us) = (Instant::now(), now_us());
    let mut scheduled = 0u64;
    let mut pending: Vec<i64> = Vec::new();
    loop {
        // Every record due by now joins the pending batch.
        let elapsed_us = start.elapsed().as_secs_f64() * 1e6;
        while scheduled < total && (scheduled as f64) * interval_us <= elapsed_us {
            pending.push(start_us + ((scheduled as f64) * interval_us) as i64);
            scheduled += 1;
        }
        let ready = pending.len() >= per_batch
            || pending.first().is_some_and(|d| now_us() - d >= linger_us)
            || (scheduled == total && !pending.is_empty());
        if ready && s.in_flight.len() < s.job.load.in_flight {
            let n = pending.len().min(per_batch);
            s.send(pending.drain(..n).collect()).await?;
            continue;
        }
        if scheduled == total && pending.is_empty() && s.in_flight.is_empty() {
            break;
        }
        if start.elapsed() > duration + DRAIN_WAIT * 4 {
            break; // the broker stopped answering; report what was measured
        }
        s.receive_or_tick().await?;
    }
    Ok(OpenLoopResult { acked: s.acked, latency_us: s.hist, unsent: total - s.acked })
}

/// The e2e consumer of one leader: long-polls `partitions` from `from` (their end at the
/// start) and records due → received for every record, until `stop` and then `DRAIN_WAIT`
/// without data.
async fn consume_latency(
    addr: String,
    topic: String,
    mut offsets: Vec<(i32, i64)>,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<(u64, Histogram<u64>)> {
    let mut client = KafkaClient::connect(&addr).await?;
    let version = client.version::<FetchRequest>(12)?;
    let mut hist = histogram()?;
    let mut received = 0u64;
    let mut idle_since: Option<Instant> = None;
    loop {
        if stop.load(Ordering::Relaxed) && idle_since.is_some_and(|t| t.elapsed() > DRAIN_WAIT) {
            break;
        }
        let req = fetch_request(&topic, &offsets, 100, 4 * 1024 * 1024);
        let resp = client.send(&req, version).await?;
        let now = now_us();
        let mut got = 0u64;
        for p in resp.responses.into_iter().flat_map(|t| t.partitions) {
            if p.error_code != 0 {
                bail!("fetch failed: {}", error_name(p.error_code));
            }
            let records = decode_records(p.records.unwrap_or_default())?;
            let Some(slot) = offsets.iter_mut().find(|(x, _)| *x == p.partition_index) else {
                continue;
            };
            for r in records {
                if r.offset < slot.1 {
                    continue;
                }
                slot.1 = r.offset + 1;
                let due =
                    r.value.as_ref().filter(|v| v.len() >= 8).map(|v| {
                        i64::from_be_bytes([v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7]])
                    });
                if let Some(due) = due {
                    hist.record((now - due).max(1) as u64)?;
                    got += 1;
                }
            }
        }
        received += got;
        match (got, stop.load(Ordering::Relaxed)) {
            (0, true) => {
                idle_since.get_or_insert_with(Instant::now);
            }
            _ => idle_since = None,
        }
    }
    Ok((received, hist))
}

#[derive(Debug, Args)]
pub struct E2eBench {
    #[arg(long, default_value = "samsa-bench-e2e")]
    pub topic: String,
    /// Records per second to offer.
    #[arg(long, default_value_t = 10_000.0)]
    pub rate: f64,
    /// How long to offer load.
    #[arg(long, default_value_t = 30)]
    pub duration_s: u64,
    /// Value size in bytes (at least 8: the due time).
    #[arg(long, default_value_t = 100)]
    pub record_size: usize,
    /// 0, 1 or all.
    #[arg(long, default_value = "all")]
    pub acks: String,
    /// Partitions to create the topic with if it does not exist.
    #[arg(long, default_value_t = 1)]
    pub partitions: i32,
    /// Replication factor to create the topic with if it does not exist (-1: broker default).
    #[arg(long, default_value_t = -1, allow_negative_numbers = true)]
    pub replication_factor: i16,
    /// How long a record may wait for its batch to fill (like `linger.ms`).
    #[arg(long, default_value_t = 1)]
    pub linger_ms: u64,
    /// Bytes of record values per batch (like `batch.size`).
    #[arg(long, default_value_t = 256 * 1024)]
    pub batch_bytes: usize,
    /// Requests in flight per connection.
    #[arg(long, default_value_t = 5)]
    pub in_flight: usize,
    #[command(flatten)]
    pub client: ClientArgs,
}

/// What an open-loop load looks like, for both benchmarks.
#[derive(Debug, Clone)]
struct Load {
    topic: String,
    /// Records per second in all.
    rate: f64,
    duration: Duration,
    record_size: usize,
    linger: Duration,
    batch_bytes: usize,
    in_flight: usize,
    acks: i16,
    compression: Compression,
    /// Values start with their due time (the e2e consumer reads it); otherwise batches are
    /// encoded once per size and reused, so the generator keeps up with high rates.
    stamp_values: bool,
}

/// One open-loop job per partition leader, the rate split by partition count.
fn jobs(cluster: &ClusterClient, load: &Load, partitions: i32) -> anyhow::Result<Vec<OpenLoopJob>> {
    let mut by_leader: BTreeMap<i32, Vec<i32>> = BTreeMap::new();
    for p in 0..partitions {
        let leader = cluster
            .leader_of(&load.topic, p)
            .with_context(|| format!("{}-{p} has no leader", load.topic))?;
        by_leader.entry(leader).or_default().push(p);
    }
    by_leader
        .into_iter()
        .map(|(leader, parts)| {
            Ok(OpenLoopJob {
                addr: cluster.broker_addr(leader)?,
                rate: load.rate * parts.len() as f64 / partitions.max(1) as f64,
                partitions: parts,
                load: load.clone(),
            })
        })
        .collect()
}

/// Runs every job at once; merges what they measured.
async fn run_jobs(jobs: Vec<OpenLoopJob>) -> anyhow::Result<OpenLoopResult> {
    let mut set = tokio::task::JoinSet::new();
    for job in jobs {
        set.spawn(run_open_loop(job));
    }
    let mut all = OpenLoopResult { acked: 0, latency_us: histogram()?, unsent: 0 };
    while let Some(joined) = set.join_next().await {
        let r = joined.context("benchmark task failed")??;
        all.acked += r.acked;
        all.unsent += r.unsent;
        all.latency_us.add(&r.latency_us).context("merging histograms")?;
    }
    Ok(all)
}

fn percentiles(h: &Histogram<u64>) -> String {
    let q = |p: f64| h.value_at_quantile(p) as f64 / 1000.0;
    format!(
        "p50 {:.2} p99 {:.2} p999 {:.2} max {:.2}",
        q(0.5),
        q(0.99),
        q(0.999),
        h.max() as f64 / 1000.0
    )
}

/// `bench produce --rate N`: offers N records/s for `--duration-s`, reports due → ack.
pub(super) async fn produce_at_rate(b: ProduceBench) -> anyhow::Result<()> {
    let rate = b.rate.unwrap_or(1.0);
    let acks = parse_acks(&b.acks)?;
    let mut cluster = ClusterClient::connect(&b.client.bootstrap_server).await?;
    ensure_topic(cluster.any(), &b.topic, b.partitions, b.replication_factor).await?;
    let partitions = partition_count(&mut cluster, &b.topic).await?;
    let load = Load {
        topic: b.topic.clone(),
        rate,
        duration: Duration::from_secs(b.duration_s),
        record_size: b.record_size.max(8),
        linger: Duration::from_millis(b.linger_ms),
        batch_bytes: b.batch_bytes,
        in_flight: b.in_flight,
        acks,
        compression: parse_compression(&b.compression)?,
        stamp_values: false,
    };
    let started = Instant::now();
    let r = run_jobs(jobs(&cluster, &load, partitions)?).await?;
    let secs = started.elapsed().as_secs_f64().max(1e-9);
    outln!(
        "produce open loop acks={} record_size={} partitions={partitions} linger_ms={}: offered {rate:.0} records/s, acknowledged {} in {secs:.1} s ({:.0} records/s), unsent {}; latency ms {}",
        b.acks,
        load.record_size,
        b.linger_ms,
        r.acked,
        r.acked as f64 / secs,
        r.unsent,
        percentiles(&r.latency_us)
    );
    Ok(())
}

/// `bench e2e`: producers offer `--rate` records/s; consumers long-poll every leader from the
/// current end; reports due → received.
pub(super) async fn e2e(b: E2eBench) -> anyhow::Result<()> {
    let acks = parse_acks(&b.acks)?;
    let mut cluster = ClusterClient::connect(&b.client.bootstrap_server).await?;
    ensure_topic(cluster.any(), &b.topic, b.partitions, b.replication_factor).await?;
    let partitions = partition_count(&mut cluster, &b.topic).await?;
    let mut by_leader: BTreeMap<i32, Vec<(i32, i64)>> = BTreeMap::new();
    for p in 0..partitions {
        let leader_id = cluster.leader_of(&b.topic, p).context("no leader")?;
        let leader = cluster.leader(&b.topic, p).await?;
        let end = list_offset(leader, &b.topic, p, -1).await?;
        by_leader.entry(leader_id).or_default().push((p, end));
    }
    let stop = Arc::new(AtomicBool::new(false));
    let mut consumers = tokio::task::JoinSet::new();
    for (leader, offsets) in by_leader {
        let addr = cluster.broker_addr(leader)?;
        consumers.spawn(consume_latency(addr, b.topic.clone(), offsets, stop.clone()));
    }
    let load = Load {
        topic: b.topic.clone(),
        rate: b.rate,
        duration: Duration::from_secs(b.duration_s),
        record_size: b.record_size.max(8),
        linger: Duration::from_millis(b.linger_ms),
        batch_bytes: b.batch_bytes,
        in_flight: b.in_flight,
        acks,
        compression: Compression::None,
        stamp_values: true,
    };
    let produced = run_jobs(jobs(&cluster, &load, partitions)?).await;
    stop.store(true, Ordering::Relaxed);
    let produced = produced?;
    let (mut received, mut hist) = (0u64, histogram()?);
    while let Some(joined) = consumers.join_next().await {
        let (n, h) = joined.context("consumer task failed")??;
        received += n;
        hist.add(&h).context("merging histograms")?;
    }
    outln!(
        "e2e acks={} record_size={} partitions={partitions}: offered {:.0} records/s, produced {}, received {received}; produce latency ms {}; end-to-end latency ms {}",
        b.acks,
        load.record_size,
        b.rate,
        produced.acked,
        percentiles(&produced.latency_us),
        percentiles(&hist)
    );
    Ok(())
}
