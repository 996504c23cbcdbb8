//! `samsa bench produce|consume`: throughput and latency against a running broker, with a
//! progress bar. Produce pipelines `--in-flight` requests on one connection and reuses one
//! pre-encoded batch per request, so the client is rarely the bottleneck; consume counts records
//! from batch headers without decompressing.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::Bytes;
use clap::{Args, Subcommand};
use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressStyle};
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::{CreateTopicsRequest, FetchRequest, ProduceRequest};

use super::ClientArgs;
use super::admin::{list_offset, metadata, name, partition_count};
use super::produce::parse_acks;
use super::topic::error_name;
use crate::client::KafkaClient;
use crate::client::cluster::ClusterClient;
use crate::client::records::{encode_batch, fetch_request, parse_compression, produce_request};
use crate::clock::now_ms;
use crate::log::batch;
use std::collections::BTreeMap;

mod clean;
mod connect;
mod latency;

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Produce N records of a given size as fast as the broker accepts them, or (with `--rate`)
    /// at a fixed rate, open loop, reporting latency percentiles.
    Produce(ProduceBench),
    /// End-to-end latency at a fixed rate, open loop: a record is due → a consumer receives it.
    E2e(latency::E2eBench),
    /// Consume a topic from the beginning as fast as possible.
    Consume(ConsumeBench),
    /// Hold idle long-poll consumers open: each connection fetches one partition at its end,
    /// with `--max-wait-ms`, and fetches again when answered. Run it beside a produce or consume
    /// benchmark to measure what waiting consumers cost the broker.
    IdleConsumers(IdleConsumersBench),
    /// The connection set-up rate: TCP, TLS and SASL as `--command-config` asks, ApiVersions.
    Connect(connect::ConnectBench),
    /// The log cleaner's throughput and peak memory on a scratch compacted log (no broker).
    Clean(clean::CleanBench),
}

#[derive(Debug, Args)]
pub struct IdleConsumersBench {
    /// A topic nobody writes to; consumer i fetches partition i modulo its partition count.
    #[arg(long, default_value = "samsa-bench-idle")]
    pub topic: String,
    /// Partitions to create the topic with if it does not exist.
    #[arg(long, default_value_t = 100)]
    pub partitions: i32,
    /// Consumers (one connection each).
    #[arg(long, default_value_t = 100)]
    pub consumers: usize,
    /// Each fetch's max_wait_ms (librdkafka's fetch.wait.max.ms default is 500).
    #[arg(long, default_value_t = 500)]
    pub max_wait_ms: i32,
    /// Stop after this many seconds.
    #[arg(long, default_value_t = 60)]
    pub duration_s: u64,
    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Debug, Args)]
pub struct ProduceBench {
    #[arg(long, default_value = "samsa-bench")]
    pub topic: String,
    #[arg(long, default_value_t = 1_000_000)]
    pub records: u64,
    /// Value size in bytes.
    #[arg(long, default_value_t = 100)]
    pub record_size: usize,
    /// 0, 1 or all.
    #[arg(long, default_value = "1")]
    pub acks: String,
    /// Partitions to create the topic with if it does not exist; records spread over all.
    #[arg(long, default_value_t = 1)]
    pub partitions: i32,
    /// Replication factor to create the topic with if it does not exist (-1: broker default).
    #[arg(long, default_value_t = -1, allow_negative_numbers = true)]
    pub replication_factor: i16,
    /// Bytes of record values per batch (like `batch.size`).
    #[arg(long, default_value_t = 256 * 1024)]
    pub batch_bytes: usize,
    /// Requests in flight on the connection (like `max.in.flight.requests.per.connection`).
    #[arg(long, default_value_t = 5)]
    pub in_flight: usize,
    /// none, gzip, snappy, lz4 or zstd.
    #[arg(long, default_value = "none")]
    pub compression: String,
    /// Records per second to offer, open loop: records fall due on schedule whether or not
    /// earlier ones were answered, and latency counts from when each was due. Without it,
    /// records go as fast as the broker takes them (throughput).
    #[arg(long)]
    pub rate: Option<f64>,
    /// How long an open-loop run offers load.
    #[arg(long, default_value_t = 30)]
    pub duration_s: u64,
    /// Open loop: how long a record may wait for its batch to fill (like `linger.ms`).
    #[arg(long, default_value_t = 1)]
    pub linger_ms: u64,
    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Debug, Args)]
pub struct ConsumeBench {
    #[arg(long, default_value = "samsa-bench")]
    pub topic: String,
    /// Stop after this many records (default: everything up to the current end).
    #[arg(long)]
    pub records: Option<u64>,
    /// Bytes per partition per fetch.
    #[arg(long, default_value_t = 4 * 1024 * 1024)]
    pub fetch_bytes: i32,
    #[command(flatten)]
    pub client: ClientArgs,
}

pub(super) async fn run(cmd: BenchCommand) -> anyhow::Result<()> {
    match cmd {
        BenchCommand::Produce(b) if b.rate.is_some() => latency::produce_at_rate(b).await,
        BenchCommand::Produce(b) => produce(b).await,
        BenchCommand::E2e(b) => latency::e2e(b).await,
        BenchCommand::Consume(b) => consume(b).await,
        BenchCommand::IdleConsumers(b) => idle_consumers(b).await,
        BenchCommand::Connect(b) => connect::run(b).await,
        BenchCommand::Clean(b) => tokio::task::spawn_blocking(move || clean::run(b)).await?,
    }
}

fn progress(total: u64) -> ProgressBar {
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} records {per_sec} eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar
}

async fn ensure_topic(
    client: &mut KafkaClient,
    topic: &str,
    partitions: i32,
    replication_factor: i16,
) -> anyhow::Result<()> {
    let md = metadata(client, Some(&[topic.to_string()])).await?;
    if md.topics.first().is_some_and(|t| t.error_code == 0) {
        return Ok(());
    }
    let mut t = CreatableTopic::default();
    t.name = name(topic);
    t.num_partitions = partitions;
    t.replication_factor = replication_factor;
    let mut req = CreateTopicsRequest::default();
    req.topics = vec![t];
    req.timeout_ms = 30_000;
    let v = client.version::<CreateTopicsRequest>(7)?;
    let resp = client.send(&req, v).await?;
    match resp.topics.first() {
        Some(r) if r.error_code == 0 || r.error_code == 36 => Ok(()),
        Some(r) => bail!("cannot create topic {topic}: {}", error_name(r.error_code)),
        None => bail!("empty CreateTopics response"),
    }
}

/// Throughput and latency summary, printed in one place for both benchmarks.
pub(super) struct Report {
    pub records: u64,
    pub bytes: u64,
    pub elapsed: Duration,
    pub latency_us: Histogram<u64>,
}

impl Report {
    pub(super) fn print(&self, what: &str) -> anyhow::Result<()> {
        let secs = self.elapsed.as_secs_f64().max(1e-9);
        let q = |p: f64| self.latency_us.value_at_quantile(p) as f64 / 1000.0;
        outln!(
            "{what}: {} records, {:.1} MB in {:.2} s: {:.0} records/s, {:.1} MB/s; latency ms p50 {:.2} p99 {:.2} p999 {:.2} max {:.2}",
            self.records,
            self.bytes as f64 / 1e6,
            secs,
            self.records as f64 / secs,
            self.bytes as f64 / 1e6 / secs,
            q(0.5),
            q(0.99),
            q(0.999),
            self.latency_us.max() as f64 / 1000.0
        );
        Ok(())
    }
}

fn histogram() -> anyhow::Result<Histogram<u64>> {
    Histogram::new_with_bounds(1, 60_000_000, 3).context("histogram bounds")
}

/// One leader's share of a produce benchmark.
struct ProduceJob {
    addr: String,
    topic: String,
    partitions: Vec<i32>,
    records: u64,
    per_batch: u64,
    full: Bytes,
    single: Bytes,
    acks: i16,
    in_flight: usize,
    bar: ProgressBar,
}

async fn produce(b: ProduceBench) -> anyhow::Result<()> {
    let acks = parse_acks(&b.acks)?;
    let compression = parse_compression(&b.compression)?;
    let mut cluster = ClusterClient::connect(&b.client.bootstrap_server).await?;
    ensure_topic(cluster.any(), &b.topic, b.partitions, b.replication_factor).await?;
    let partitions = partition_count(&mut cluster, &b.topic).await?;
    let per_batch = (b.batch_bytes / b.record_size.max(1)).clamp(1, 100_000) as u64;
    let value = Bytes::from((0..b.record_size).map(|i| b'a' + (i % 26) as u8).collect::<Vec<u8>>());
    let make = |n: u64| -> anyhow::Result<Bytes> {
        let recs = vec![(None, Some(value.clone())); n as usize];
        encode_batch(&recs, now_ms(), compression)
    };
    let (full, single) = (make(per_batch)?, make(1)?);
    // One pipelined connection per partition leader, records split by partition count.
    let mut by_leader: BTreeMap<i32, Vec<i32>> = BTreeMap::new();
    for p in 0..partitions {
        let leader = cluster
            .leader_of(&b.topic, p)
            .with_context(|| format!("{}-{p} has no leader", b.topic))?;
        by_leader.entry(leader).or_default().push(p);
    }
    let bar = progress(b.records);
    let mut jobs = tokio::task::JoinSet::new();
    let mut assigned = 0u64;
    let leaders = by_leader.len();
    for (i, (leader, parts)) in by_leader.into_iter().enumerate() {
        let share = if i + 1 == leaders {
            b.records - assigned
        } else {
            b.records * parts.len() as u64 / partitions as u64
        };
        assigned += share;
        let job = ProduceJob {
            addr: cluster.broker_addr(leader)?,
            topic: b.topic.clone(),
            partitions: parts,
            records: share,
            per_batch,
            full: full.clone(),
            single: single.clone(),
            acks,
            in_flight: b.in_flight.max(1),
            bar: bar.clone(),
        };
        jobs.spawn(produce_to_leader(job));
    }
    let start = Instant::now();
    let mut hist = histogram()?;
    let mut done = 0u64;
    while let Some(joined) = jobs.join_next().await {
        let (n, h) = joined.context("benchmark task failed")??;
        done += n;
        hist.add(&h).context("merging histograms")?;
    }
    bar.finish_and_clear();
    Report {
        records: done,
        bytes: done * b.record_size as u64,
        elapsed: start.elapsed(),
        latency_us: hist,
    }
    .print(&format!(
        "produce acks={} record_size={} partitions={partitions}",
        b.acks, b.record_size
    ))?;
    Ok(())
}

async fn produce_to_leader(job: ProduceJob) -> anyhow::Result<(u64, Histogram<u64>)> {
    let mut client = KafkaClient::connect(&job.addr).await?;
    let version = client.version::<ProduceRequest>(9)?;
    let mut hist = histogram()?;
    let mut in_flight: VecDeque<(Instant, u64)> = VecDeque::new();
    let (mut queued, mut done, mut next) = (0u64, 0u64, 0usize);
    while done < job.records {
        while queued < job.records && in_flight.len() < job.in_flight {
            let n = job.per_batch.min(job.records - queued);
            // A short last batch is sent as single records, so only two batches are encoded.
            let (batch, n) =
                if n == job.per_batch { (job.full.clone(), n) } else { (job.single.clone(), 1) };
            let partition = job.partitions[next % job.partitions.len()];
            next += 1;
            client.queue(&produce_request(&job.topic, partition, batch, job.acks), version)?;
            queued += n;
            in_flight.push_back((Instant::now(), n));
        }
        client.flush().await?;
        if job.acks == 0 {
            // No responses: count on send.
            while let Some((t, n)) = in_flight.pop_front() {
                hist.record(t.elapsed().as_micros().max(1) as u64)?;
                done += n;
                job.bar.inc(n);
            }
            continue;
        }
        let (_, resp) = client.receive::<ProduceRequest>(version).await?;
        let (t, n) = in_flight.pop_front().context("response without request")?;
        hist.record(t.elapsed().as_micros().max(1) as u64)?;
        for tr in resp.responses {
            for p in tr.partition_responses {
                if p.error_code != 0 {
                    bail!("produce failed: {}", error_name(p.error_code));
                }
            }
        }
        done += n;
        job.bar.inc(n);
    }
    Ok((done, hist))
}

async fn consume(b: ConsumeBench) -> anyhow::Result<()> {
    let mut cluster = ClusterClient::connect(&b.client.bootstrap_server).await?;
    let partitions = partition_count(&mut cluster, &b.topic).await?;
    let mut offsets = Vec::new();
    let mut end_total = 0u64;
    for p in 0..partitions {
        let leader = cluster.leader(&b.topic, p).await?;
        let start = list_offset(leader, &b.topic, p, -2).await?;
        let end = list_offset(leader, &b.topic, p, -1).await?;
        end_total += (end - start).max(0) as u64;
        offsets.push((p, start, end));
    }
    let target = b.records.unwrap_or(end_total).min(end_total);
    let version = cluster.any().version::<FetchRequest>(12)?;
    let mut leaders: Vec<i32> =
        (0..partitions).filter_map(|p| cluster.leader_of(&b.topic, p)).collect();
    leaders.sort();
    leaders.dedup();
    let bar = progress(target);
    let mut hist = histogram()?;
    let (mut records, mut bytes) = (0u64, 0u64);
    let start = Instant::now();
    while records < target {
        let mut responses = Vec::new();
        for leader in &leaders {
            let list: Vec<(i32, i64)> = offsets
                .iter()
                .filter(|(p, o, e)| o < e && cluster.leader_of(&b.topic, *p) == Some(*leader))
                .map(|(p, o, _)| (*p, *o))
                .collect();
            if list.is_empty() {
                continue;
            }
            let req = fetch_request(&b.topic, &list, 100, b.fetch_bytes);
            let t = Instant::now();
            responses.push(cluster.broker(*leader).await?.send(&req, version).await?);
            hist.record(t.elapsed().as_micros().max(1) as u64)?;
        }
        if responses.is_empty() {
            break;
        }
        for tr in responses.into_iter().flat_map(|r| r.responses) {
            for p in tr.partitions {
                if p.error_code != 0 {
                    bail!("fetch failed: {}", error_name(p.error_code));
                }
                let data = p.records.unwrap_or_default();
                bytes += data.len() as u64;
                let mut rest: &[u8] = &data;
                while let Ok(h) = batch::parse_header(rest) {
                    if h.size_bytes > rest.len() {
                        break;
                    }
                    records += h.records_count.max(0) as u64;
                    if let Some(entry) =
                        offsets.iter_mut().find(|(x, _, _)| *x == p.partition_index)
                    {
                        entry.1 = h.next_offset().0;
                    }
                    rest = &rest[h.size_bytes..];
                }
            }
        }
        bar.set_position(records.min(target));
    }
    bar.finish_and_clear();
    Report { records, bytes, elapsed: start.elapsed(), latency_us: hist }
        .print(&format!("consume partitions={partitions}"))?;
    Ok(())
}

async fn idle_consumers(b: IdleConsumersBench) -> anyhow::Result<()> {
    let mut cluster = ClusterClient::connect(&b.client.bootstrap_server).await?;
    ensure_topic(cluster.any(), &b.topic, b.partitions, -1).await?;
    let partitions = partition_count(&mut cluster, &b.topic).await?;
    let deadline = Instant::now() + Duration::from_secs(b.duration_s);
    let mut jobs = tokio::task::JoinSet::new();
    for i in 0..b.consumers {
        let p = i as i32 % partitions.max(1);
        let leader = cluster.leader(&b.topic, p).await?;
        let end = list_offset(leader, &b.topic, p, -1).await?;
        let addr = cluster.broker_addr(cluster.leader_of(&b.topic, p).context("no leader")?)?;
        let (topic, max_wait_ms) = (b.topic.clone(), b.max_wait_ms);
        jobs.spawn(async move {
            let mut client = KafkaClient::connect(&addr).await?;
            let version = client.version::<FetchRequest>(12)?;
            let mut fetches = 0u64;
            while Instant::now() < deadline {
                let req = fetch_request(&topic, &[(p, end)], max_wait_ms, 1024 * 1024);
                client.send(&req, version).await?;
                fetches += 1;
            }
            anyhow::Ok(fetches)
        });
    }
    outln!("{} idle consumers long-polling {} for {} s", b.consumers, b.topic, b.duration_s);
    let mut fetches = 0u64;
    while let Some(joined) = jobs.join_next().await {
        fetches += joined.context("consumer task failed")??;
    }
    outln!("idle consumers: {fetches} fetches answered");
    Ok(())
}
