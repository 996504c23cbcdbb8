//! `samsa cluster status`: cluster id, active controller, the metadata quorum's voters and
//! observers with their raft state and lag, brokers (alive or fenced), and every partition's
//! leader and ISR. Quorum lag is asked of the active controller, the only node that knows it.

use anyhow::Context;
use clap::{Args, Subcommand};
use kafka_protocol::messages::describe_quorum_request::{PartitionData, TopicData};
use kafka_protocol::messages::metadata_response::MetadataResponseTopic;
use kafka_protocol::messages::{
    DescribeClusterRequest, DescribeQuorumRequest, DescribeQuorumResponse,
};

use super::ClientArgs;
use super::admin::name;
use crate::client::KafkaClient;
use crate::client::cluster::ClusterClient;
use crate::kafka::handlers::describe_quorum::METADATA_TOPIC;

#[derive(Debug, Subcommand)]
pub enum ClusterCommand {
    /// Show the quorum, brokers and partition leadership.
    Status(StatusArgs),
    /// Compute a balanced placement of replicas and preferred leaders over the live brokers
    /// (few moves; racks kept apart), print it, and with `--execute` apply it.
    Rebalance(super::reassign::RebalanceArgs),
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub client: ClientArgs,
}

pub(super) async fn describe_quorum(
    client: &mut KafkaClient,
) -> anyhow::Result<DescribeQuorumResponse> {
    let mut p = PartitionData::default();
    p.partition_index = 0;
    let mut t = TopicData::default();
    t.topic_name = name(METADATA_TOPIC);
    t.partitions = vec![p];
    let mut req = DescribeQuorumRequest::default();
    req.topics = vec![t];
    let v = client.version::<DescribeQuorumRequest>(2)?;
    client.send(&req, v).await.context("DescribeQuorum failed")
}

pub(super) async fn run(cmd: ClusterCommand) -> anyhow::Result<()> {
    let a = match cmd {
        ClusterCommand::Status(a) => a,
        ClusterCommand::Rebalance(a) => return super::reassign::rebalance(a).await,
    };
    let mut cluster = ClusterClient::connect(&a.client.bootstrap_server).await?;
    let md = cluster.refresh(None).await?;
    let mut req = DescribeClusterRequest::default();
    req.include_fenced_brokers = true;
    req.endpoint_type = 1;
    let v = cluster.any().version::<DescribeClusterRequest>(2)?;
    let dc = cluster.any().send(&req, v).await.context("DescribeCluster failed")?;
    let mut quorum = describe_quorum(cluster.any()).await?;
    let leader =
        quorum.topics.first().and_then(|t| t.partitions.first()).map_or(-1, |p| p.leader_id.0);
    // Lag is only known on the active controller: ask it when it is a reachable broker.
    if leader >= 0
        && let Ok(client) = cluster.broker(leader).await
        && let Ok(q) = describe_quorum(client).await
    {
        quorum = q;
    }
    outln!("Cluster id:        {}", dc.cluster_id);
    outln!(
        "Active controller: {}",
        if leader >= 0 { leader.to_string() } else { "none (election in progress)".into() }
    );
    print_quorum(&quorum, leader)?;
    outln!("Brokers:");
    for b in &dc.brokers {
        let state = if b.is_fenced { "fenced" } else { "alive" };
        outln!("  {:<6} {:<22} {state}", b.broker_id.0, format!("{}:{}", b.host, b.port));
    }
    print_partitions(md.topics)
}

/// The voters with their log ends and lag, then the observers.
fn print_quorum(quorum: &DescribeQuorumResponse, leader: i32) -> anyhow::Result<()> {
    let Some(p) = quorum.topics.first().and_then(|t| t.partitions.first()) else { return Ok(()) };
    let hw = p.high_watermark;
    outln!("Metadata quorum:   term {}, commit index {hw}", p.leader_epoch);
    let addr = |id: i32| {
        quorum
            .nodes
            .iter()
            .find(|n| n.node_id.0 == id)
            .and_then(|n| n.listeners.first())
            .map_or(String::new(), |l| format!("{}:{}", l.host, l.port))
    };
    outln!("  {:<6} {:<9} {:<22} {:>10} {:>6}", "VOTER", "STATE", "ENDPOINT", "LOG END", "LAG");
    for r in &p.current_voters {
        let state = if r.replica_id.0 == leader { "leader" } else { "follower" };
        let (end, lag) = if r.log_end_offset >= 0 {
            (r.log_end_offset.to_string(), (hw - r.log_end_offset).max(0).to_string())
        } else {
            ("?".into(), "?".into())
        };
        outln!(
            "  {:<6} {:<9} {:<22} {:>10} {:>6}",
            r.replica_id.0,
            state,
            addr(r.replica_id.0),
            end,
            lag
        );
    }
    for r in &p.observers {
        let end = if r.log_end_offset >= 0 { r.log_end_offset.to_string() } else { "?".into() };
        outln!("  {:<6} {:<9} {:<22} {:>10}", r.replica_id.0, "observer", "", end);
    }
    Ok(())
}

/// Every partition with its leader, epoch, replicas and ISR, sorted by topic and partition.
fn print_partitions(mut topics: Vec<MetadataResponseTopic>) -> anyhow::Result<()> {
    outln!("Partitions:");
    topics.sort_by(|x, y| x.name.cmp(&y.name));
    for t in topics {
        let tname = t.name.map(|n| n.0.to_string()).unwrap_or_default();
        let mut parts = t.partitions;
        parts.sort_by_key(|p| p.partition_index);
        for p in parts {
            let ids = |v: &[kafka_protocol::messages::BrokerId]| {
                v.iter().map(|b| b.0.to_string()).collect::<Vec<_>>().join(",")
            };
            let leader = if p.leader_id.0 >= 0 { p.leader_id.0.to_string() } else { "none".into() };
            outln!(
                "  {tname}-{:<4} leader {leader:<5} epoch {:<4} replicas {:<10} isr {}",
                p.partition_index,
                p.leader_epoch,
                ids(&p.replica_nodes),
                ids(&p.isr_nodes)
            );
        }
    }
    Ok(())
}
