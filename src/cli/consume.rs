//! `samsa consume TOPIC`: prints record values (optionally keys) one per line, from the latest
//! offset, the beginning, or a given offset, until `--max-messages` or Ctrl-C.

use std::collections::BTreeMap;
use std::io::Write;

use anyhow::{Context, bail};
use clap::Args;
use kafka_protocol::messages::{FetchRequest, FetchResponse};

use super::ClientArgs;
use super::admin::{list_offset, partition_count};
use super::topic::error_name;
use crate::client::cluster::ClusterClient;
use crate::client::records::{decode_records, fetch_request};

/// Per-partition fetch size.
const PARTITION_FETCH_BYTES: i32 = 1024 * 1024;

#[derive(Debug, Args)]
pub struct ConsumeArgs {
    pub topic: String,
    /// Start at the earliest offset instead of the latest.
    #[arg(long)]
    pub from_beginning: bool,
    /// Consume only this partition.
    #[arg(long)]
    pub partition: Option<i32>,
    /// Start at this offset (needs --partition).
    #[arg(long, requires = "partition")]
    pub offset: Option<i64>,
    /// Exit after this many records.
    #[arg(long)]
    pub max_messages: Option<u64>,
    /// Print keys too, as KEY<separator>VALUE.
    #[arg(long)]
    pub print_key: bool,
    #[arg(long, default_value = "\t")]
    pub key_separator: String,
    /// Exit when no record arrives for this long (ms).
    #[arg(long)]
    pub timeout_ms: Option<u64>,
    #[command(flatten)]
    pub client: ClientArgs,
}

pub(super) async fn run(a: ConsumeArgs) -> anyhow::Result<()> {
    let mut cluster = ClusterClient::connect(&a.client.bootstrap_server).await?;
    let mut offsets = start_offsets(&mut cluster, &a).await?;
    let version = cluster.any().version::<FetchRequest>(12)?;
    // Fetches go to each partition's leader; with several leaders each waits less.
    let mut by_leader: BTreeMap<i32, Vec<i32>> = BTreeMap::new();
    for p in offsets.keys() {
        let leader = cluster
            .leader_of(&a.topic, *p)
            .with_context(|| format!("{}-{p} has no leader", a.topic))?;
        by_leader.entry(leader).or_default().push(*p);
    }
    let wait_ms = (500 / by_leader.len().max(1)) as i32;
    let mut printed = 0u64;
    let mut idle_since = std::time::Instant::now();
    loop {
        if a.max_messages.is_some_and(|m| printed >= m) {
            break;
        }
        if a.timeout_ms.is_some_and(|t| idle_since.elapsed().as_millis() as u64 >= t) {
            break;
        }
        let mut responses = Vec::new();
        for (leader, parts) in &by_leader {
            let list: Vec<(i32, i64)> =
                parts.iter().filter_map(|p| offsets.get(p).map(|o| (*p, *o))).collect();
            let req = fetch_request(&a.topic, &list, wait_ms, PARTITION_FETCH_BYTES);
            let client = cluster.broker(*leader).await?;
            tokio::select! {
                r = client.send(&req, version) => responses.push(r?),
                _ = tokio::signal::ctrl_c() => return Ok(()),
            }
        }
        let before = printed;
        printed = print_records(&a, responses, &mut offsets, printed)?;
        if printed > before {
            idle_since = std::time::Instant::now();
        }
    }
    eprintln!("Consumed {printed} records.");
    Ok(())
}

/// Where each chosen partition is read from: `--offset`, else the earliest (with
/// `--from-beginning`) or latest offset.
async fn start_offsets(
    cluster: &mut ClusterClient,
    a: &ConsumeArgs,
) -> anyhow::Result<BTreeMap<i32, i64>> {
    let partitions = partition_count(cluster, &a.topic).await?;
    let chosen: Vec<i32> = match a.partition {
        Some(p) if p < 0 || p >= partitions => {
            bail!("partition {p} does not exist: topic '{}' has {partitions} partitions", a.topic)
        }
        Some(p) => vec![p],
        None => (0..partitions).collect(),
    };
    let mut offsets = BTreeMap::new();
    for p in chosen {
        let start = match a.offset {
            Some(o) => o,
            None => {
                let leader = cluster.leader(&a.topic, p).await?;
                list_offset(leader, &a.topic, p, if a.from_beginning { -2 } else { -1 }).await?
            }
        };
        offsets.insert(p, start);
    }
    Ok(offsets)
}

/// Prints the fetched records past each partition's position (up to `--max-messages`) and
/// moves the positions on; returns the count printed so far.
fn print_records(
    a: &ConsumeArgs,
    responses: Vec<FetchResponse>,
    offsets: &mut BTreeMap<i32, i64>,
    mut printed: u64,
) -> anyhow::Result<u64> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    for t in responses.into_iter().flat_map(|r| r.responses) {
        for p in t.partitions {
            if p.error_code != 0 {
                bail!(
                    "fetching {}-{} failed: {}",
                    a.topic,
                    p.partition_index,
                    error_name(p.error_code)
                );
            }
            let records = decode_records(p.records.unwrap_or_default())?;
            let next = offsets.get_mut(&p.partition_index).context("unexpected partition")?;
            for r in records {
                if r.offset < *next || a.max_messages.is_some_and(|m| printed >= m) {
                    continue;
                }
                *next = r.offset + 1;
                let value = r.value.as_deref().map(String::from_utf8_lossy).unwrap_or_default();
                if a.print_key {
                    let key = r.key.as_deref().map(String::from_utf8_lossy).unwrap_or_default();
                    writeln!(out, "{key}{}{value}", a.key_separator)?;
                } else {
                    writeln!(out, "{value}")?;
                }
                printed += 1;
            }
        }
    }
    out.flush()?;
    Ok(printed)
}
