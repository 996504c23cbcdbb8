//! `samsa produce TOPIC`: one record per stdin line, optionally `KEY<sep>VALUE`, batched per
//! partition. Keyed records go where Kafka's default partitioner would send them.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::bail;
use bytes::Bytes;
use clap::Args;
use kafka_protocol::messages::ProduceRequest;
use tokio::io::{AsyncBufReadExt, BufReader};

use super::ClientArgs;
use super::admin::partition_count;
use super::topic::error_name;
use crate::client::cluster::ClusterClient;
use crate::client::partitioner::partition_for_key;
use crate::client::records::{encode_batch, parse_compression, produce_request};
use crate::clock::now_ms;

/// Records waiting to be sent, by partition: (key, value).
type Pending = BTreeMap<i32, Vec<(Option<Bytes>, Option<Bytes>)>>;

/// Records per batch before it is sent.
const BATCH_RECORDS_MAX: usize = 1000;
/// How long an incomplete batch waits for more lines (interactive typing).
const LINGER: Duration = Duration::from_millis(20);
/// How long a batch is retried while its partition is not served yet (a topic just created,
/// a leader moving or killed and not yet replaced), as a Kafka producer retries within
/// `delivery.timeout.ms`.
const RETRY_WAIT_MAX: Duration = Duration::from_secs(30);
/// Pause between retries; metadata is refreshed before each.
const RETRY_PAUSE: Duration = Duration::from_millis(100);
/// Errors that mean the broker wrote nothing, so a retry cannot duplicate records:
/// UNKNOWN_TOPIC_OR_PARTITION (3), LEADER_NOT_AVAILABLE (5), NOT_LEADER_OR_FOLLOWER (6),
/// NOT_ENOUGH_REPLICAS (19). (So is a leader that cannot be connected to: nothing was sent.)
const RETRY_WITHOUT_DUPLICATES: [i16; 4] = [3, 5, 6, 19];

#[derive(Debug, Args)]
pub struct ProduceArgs {
    pub topic: String,
    /// Split each line at this separator into key and value.
    #[arg(long)]
    pub key_separator: Option<String>,
    /// Send every record to this partition.
    #[arg(long)]
    pub partition: Option<i32>,
    /// 0, 1 or all (-1).
    #[arg(long, default_value = "all")]
    pub acks: String,
    /// none, gzip, snappy, lz4 or zstd.
    #[arg(long, default_value = "none")]
    pub compression: String,
    #[command(flatten)]
    pub client: ClientArgs,
}

pub(super) fn parse_acks(s: &str) -> anyhow::Result<i16> {
    Ok(match s {
        "all" | "-1" => -1,
        "0" => 0,
        "1" => 1,
        _ => bail!("--acks must be 0, 1 or all"),
    })
}

pub(super) async fn run(a: ProduceArgs) -> anyhow::Result<()> {
    let acks = parse_acks(&a.acks)?;
    let compression = parse_compression(&a.compression)?;
    let mut client = ClusterClient::connect(&a.client.bootstrap_server).await?;
    let partitions = partition_count(&mut client, &a.topic).await?;
    if let Some(p) = a.partition
        && (p < 0 || p >= partitions)
    {
        bail!("partition {p} does not exist: topic '{}' has {partitions} partitions", a.topic);
    }
    let version = client.any().version::<ProduceRequest>(9)?;
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    let mut pending: Pending = BTreeMap::new();
    let mut round_robin = 0i32;
    let mut sent = 0usize;
    loop {
        let next = match tokio::time::timeout(LINGER, lines.next_line()).await {
            Ok(line) => line?,
            Err(_) => {
                sent += send_all(&mut client, &a.topic, &mut pending, acks, compression, version)
                    .await?;
                continue;
            }
        };
        let Some(line) = next else { break };
        let (key, value) = match &a.key_separator {
            Some(sep) => match line.split_once(sep.as_str()) {
                Some((k, v)) => (Some(Bytes::from(k.to_string())), Bytes::from(v.to_string())),
                None => (None, Bytes::from(line)),
            },
            None => (None, Bytes::from(line)),
        };
        let partition = match (a.partition, &key) {
            (Some(p), _) => p,
            (None, Some(k)) => partition_for_key(k, partitions),
            (None, None) => round_robin,
        };
        let batch = pending.entry(partition).or_default();
        batch.push((key, Some(value)));
        if batch.len() >= BATCH_RECORDS_MAX {
            round_robin = (round_robin + 1) % partitions;
            sent +=
                send_all(&mut client, &a.topic, &mut pending, acks, compression, version).await?;
        }
    }
    sent += send_all(&mut client, &a.topic, &mut pending, acks, compression, version).await?;
    eprintln!("Produced {sent} records to topic {}.", a.topic);
    Ok(())
}

async fn send_all(
    cluster: &mut ClusterClient,
    topic: &str,
    pending: &mut Pending,
    acks: i16,
    compression: kafka_protocol::records::Compression,
    version: i16,
) -> anyhow::Result<usize> {
    let mut sent = 0;
    for (partition, records) in std::mem::take(pending) {
        if records.is_empty() {
            continue;
        }
        let batch = encode_batch(&records, now_ms(), compression)?;
        let req = produce_request(topic, partition, batch, acks);
        let deadline = tokio::time::Instant::now() + RETRY_WAIT_MAX;
        loop {
            let client = match cluster.leader(topic, partition).await {
                Ok(client) => client,
                Err(_) if tokio::time::Instant::now() < deadline => {
                    // The leader is unreachable (killed, say): wait for the next one.
                    tokio::time::sleep(RETRY_PAUSE).await;
                    let _ = cluster.refresh(Some(&[topic.to_string()])).await;
                    continue;
                }
                Err(e) => return Err(e),
            };
            if acks == 0 {
                client.queue(&req, version)?;
                client.flush().await?;
                break;
            }
            let resp = client.send(&req, version).await?;
            let failed = resp
                .responses
                .iter()
                .flat_map(|t| &t.partition_responses)
                .find(|p| p.error_code != 0)
                .map(|p| (p.error_code, p.error_message.as_ref().map(|m| m.to_string())));
            match failed {
                None => break,
                Some((code, _))
                    if RETRY_WITHOUT_DUPLICATES.contains(&code)
                        && tokio::time::Instant::now() < deadline =>
                {
                    tokio::time::sleep(RETRY_PAUSE).await;
                    cluster.refresh(Some(&[topic.to_string()])).await?;
                }
                Some((code, message)) => bail!(
                    "producing to {topic}-{partition} failed: {}{}",
                    error_name(code),
                    message.map_or(String::new(), |m| format!(": {m}"))
                ),
            }
        }
        sent += records.len();
    }
    Ok(sent)
}
