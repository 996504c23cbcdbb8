//! `samsa transactions list|describe|abort` and `samsa producers describe`, like Kafka's
//! `kafka-transactions.sh`: ListTransactions goes to every broker, DescribeTransactions to the
//! id's coordinator (FindCoordinator key type 1), DescribeProducers to partition leaders, and
//! `abort` writes an ABORT marker for a hanging transaction (found with `producers describe`)
//! through WriteTxnMarkers to the partition's leader.

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use kafka_protocol::messages::describe_producers_request::TopicRequest;
use kafka_protocol::messages::write_txn_markers_request::{
    WritableTxnMarker, WritableTxnMarkerTopic,
};
use kafka_protocol::messages::{
    DescribeProducersRequest, DescribeTransactionsRequest, ListTransactionsRequest, ProducerId,
    TransactionalId, WriteTxnMarkersRequest,
};
use kafka_protocol::protocol::StrBytes;

use super::ClientArgs;
use super::admin::{name, partition_count};
use super::topic::error_name;
use crate::client::KafkaClient;
use crate::client::cluster::ClusterClient;

#[derive(Debug, Subcommand)]
pub enum TransactionsCommand {
    /// List the transactional ids every broker coordinates, with their state.
    List(ClientArgs),
    /// Show a transactional id's producer, epoch, state, timeout and partitions.
    Describe(DescribeArgs),
    /// Abort a hanging transaction on one partition (see `samsa producers describe`).
    Abort(AbortArgs),
}

#[derive(Debug, Subcommand)]
pub enum ProducersCommand {
    /// Show the producers a topic's partition leaders know, with their open transactions.
    Describe(ProducersArgs),
}

#[derive(Debug, Args)]
pub struct DescribeArgs {
    pub transactional_id: String,
    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Debug, Args)]
pub struct AbortArgs {
    #[arg(long)]
    pub topic: String,
    #[arg(long)]
    pub partition: i32,
    /// The first offset of the open transaction to abort (CurrentTransactionStartOffset).
    #[arg(long)]
    pub start_offset: i64,
    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Debug, Args)]
pub struct ProducersArgs {
    pub topic: String,
    /// Only this partition (default: all).
    #[arg(long)]
    pub partition: Option<i32>,
    #[command(flatten)]
    pub client: ClientArgs,
}

pub(super) async fn run(cmd: TransactionsCommand) -> anyhow::Result<()> {
    match cmd {
        TransactionsCommand::List(c) => list(&c.bootstrap_server).await,
        TransactionsCommand::Describe(a) => describe(&a).await,
        TransactionsCommand::Abort(a) => abort(&a).await,
    }
}

pub(super) async fn run_producers(cmd: ProducersCommand) -> anyhow::Result<()> {
    match cmd {
        ProducersCommand::Describe(a) => describe_producers(&a).await,
    }
}

async fn list(bootstrap: &str) -> anyhow::Result<()> {
    let mut cluster = ClusterClient::connect(bootstrap).await?;
    let md = cluster.refresh(Some(&[])).await?;
    let mut rows = Vec::new();
    for b in &md.brokers {
        let client = cluster.broker(b.node_id.0).await?;
        let version = client.version::<ListTransactionsRequest>(1)?;
        let resp = client.send(&ListTransactionsRequest::default(), version).await?;
        if resp.error_code != 0 {
            eprintln!("broker {}: {}", b.node_id.0, error_name(resp.error_code));
        }
        for t in resp.transaction_states {
            rows.push((
                t.transactional_id.0.to_string(),
                b.node_id.0,
                t.producer_id.0,
                t.transaction_state.to_string(),
            ));
        }
    }
    rows.sort();
    outln!(
        "{:<40} {:<12} {:<12} {}",
        "TransactionalId",
        "Coordinator",
        "ProducerId",
        "TransactionState"
    );
    for (id, node, pid, state) in rows {
        outln!("{id:<40} {node:<12} {pid:<12} {state}");
    }
    Ok(())
}

/// The broker coordinating `id`.
async fn coordinator<'a>(
    cluster: &'a mut ClusterClient,
    id: &str,
) -> anyhow::Result<(i32, &'a mut KafkaClient)> {
    match super::admin::find_coordinator(cluster, id, 1).await? {
        Ok(node) => Ok((node, cluster.broker(node).await?)),
        Err(last) => bail!("no transaction coordinator for '{id}': {last}"),
    }
}

async fn describe(a: &DescribeArgs) -> anyhow::Result<()> {
    let mut cluster = ClusterClient::connect(&a.client.bootstrap_server).await?;
    let (node, client) = coordinator(&mut cluster, &a.transactional_id).await?;
    let mut req = DescribeTransactionsRequest::default();
    req.transactional_ids =
        vec![TransactionalId(StrBytes::from_string(a.transactional_id.clone()))];
    let resp = client.send(&req, 0).await.context("DescribeTransactions failed")?;
    let Some(s) = resp.transaction_states.into_iter().next() else { bail!("empty answer") };
    if s.error_code != 0 {
        bail!("cannot describe '{}': {}", a.transactional_id, error_name(s.error_code));
    }
    let now = crate::clock::now_ms();
    let duration = if s.transaction_start_time_ms >= 0 {
        (now - s.transaction_start_time_ms).to_string()
    } else {
        "None".to_string()
    };
    let partitions: Vec<String> = s
        .topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(move |p| format!("{}-{p}", t.topic.0)))
        .collect();
    outln!(
        "{:<12} {:<30} {:<12} {:<14} {:<18} {:<22} {:<30} {:<22} {}",
        "CoordinatorId",
        "TransactionalId",
        "ProducerId",
        "ProducerEpoch",
        "TransactionState",
        "TransactionTimeoutMs",
        "CurrentTransactionStartTimeMs",
        "TransactionDurationMs",
        "TopicPartitions"
    );
    outln!(
        "{:<12} {:<30} {:<12} {:<14} {:<18} {:<22} {:<30} {:<22} {}",
        node,
        a.transactional_id,
        s.producer_id.0,
        s.producer_epoch,
        s.transaction_state.to_string(),
        s.transaction_timeout_ms,
        s.transaction_start_time_ms,
        duration,
        partitions.join(",")
    );
    Ok(())
}

/// One producer a partition leader knows: (partition, state).
type ProducerRow = (i32, kafka_protocol::messages::describe_producers_response::ProducerState);

async fn producers_of(
    cluster: &mut ClusterClient,
    topic: &str,
    partitions: &[i32],
) -> anyhow::Result<Vec<ProducerRow>> {
    let mut rows = Vec::new();
    for &p in partitions {
        let client = cluster.leader(topic, p).await?;
        let mut t = TopicRequest::default();
        t.name = name(topic);
        t.partition_indexes = vec![p];
        let mut req = DescribeProducersRequest::default();
        req.topics = vec![t];
        let resp = client.send(&req, 0).await.context("DescribeProducers failed")?;
        for rp in resp.topics.into_iter().flat_map(|t| t.partitions) {
            if rp.error_code != 0 {
                bail!("{topic}-{}: {}", rp.partition_index, error_name(rp.error_code));
            }
            rows.extend(rp.active_producers.into_iter().map(|s| (rp.partition_index, s)));
        }
    }
    Ok(rows)
}

async fn describe_producers(a: &ProducersArgs) -> anyhow::Result<()> {
    let mut cluster = ClusterClient::connect(&a.client.bootstrap_server).await?;
    let count = partition_count(&mut cluster, &a.topic).await?;
    let partitions: Vec<i32> = match a.partition {
        Some(p) if p < 0 || p >= count => bail!("{} has partitions 0..{}", a.topic, count - 1),
        Some(p) => vec![p],
        None => (0..count).collect(),
    };
    let rows = producers_of(&mut cluster, &a.topic, &partitions).await?;
    outln!(
        "{:<10} {:<12} {:<14} {:<14} {:<18} {:<22} {}",
        "Partition",
        "ProducerId",
        "ProducerEpoch",
        "LastSequence",
        "LastTimestamp",
        "CoordinatorEpoch",
        "CurrentTransactionStartOffset"
    );
    for (p, s) in rows {
        outln!(
            "{:<10} {:<12} {:<14} {:<14} {:<18} {:<22} {}",
            p,
            s.producer_id.0,
            s.producer_epoch,
            s.last_sequence,
            s.last_timestamp,
            s.coordinator_epoch,
            s.current_txn_start_offset
        );
    }
    Ok(())
}

async fn abort(a: &AbortArgs) -> anyhow::Result<()> {
    let mut cluster = ClusterClient::connect(&a.client.bootstrap_server).await?;
    partition_count(&mut cluster, &a.topic).await?;
    let rows = producers_of(&mut cluster, &a.topic, &[a.partition]).await?;
    let Some((_, s)) = rows.into_iter().find(|(_, s)| s.current_txn_start_offset == a.start_offset)
    else {
        bail!(
            "no open transaction starts at offset {} of {}-{}; see `samsa producers describe {}`",
            a.start_offset,
            a.topic,
            a.partition,
            a.topic
        );
    };
    let mut topic = WritableTxnMarkerTopic::default();
    topic.name = name(&a.topic);
    topic.partition_indexes = vec![a.partition];
    let mut marker = WritableTxnMarker::default();
    marker.producer_id = ProducerId(s.producer_id.0);
    marker.producer_epoch = i16::try_from(s.producer_epoch).unwrap_or(i16::MAX);
    marker.transaction_result = false;
    marker.coordinator_epoch = s.coordinator_epoch;
    marker.topics = vec![topic];
    let mut req = WriteTxnMarkersRequest::default();
    req.markers = vec![marker];
    let client = cluster.leader(&a.topic, a.partition).await?;
    let resp = client.send(&req, 1).await.context("WriteTxnMarkers failed")?;
    for r in resp.markers.iter().flat_map(|m| &m.topics).flat_map(|t| &t.partitions) {
        if r.error_code != 0 {
            bail!("the abort marker was refused: {}", error_name(r.error_code));
        }
    }
    outln!(
        "Aborted the transaction of producer {} (epoch {}) starting at offset {} of {}-{}",
        s.producer_id.0,
        s.producer_epoch,
        a.start_offset,
        a.topic,
        a.partition
    );
    Ok(())
}
