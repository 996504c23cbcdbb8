//! Moving replicas, the way Kafka's tools do it: `samsa topic reassign` applies (or verifies, or
//! cancels) a plan in kafka-reassign-partitions's JSON format; `samsa cluster rebalance` and
//! `samsa broker drain N` compute a plan (see [`super::plan`]), print it, and with `--execute`
//! submit it through AlterPartitionReassignments and show progress from
//! ListPartitionReassignments until every move completed.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Args;
use kafka_protocol::messages::alter_partition_reassignments_request::{
    ReassignablePartition, ReassignableTopic,
};
use kafka_protocol::messages::{
    AlterPartitionReassignmentsRequest, BrokerId, ListPartitionReassignmentsRequest,
    MetadataResponse,
};
use serde::{Deserialize, Serialize};

use super::ClientArgs;
use super::admin::name;
use super::plan::{self, Placement, Target};
use super::throttle;
use super::topic::error_name;
use crate::client::KafkaClient;
use crate::client::cluster::ClusterClient;
use crate::types::NodeId;

/// How often progress is polled while a plan executes.
const PROGRESS_INTERVAL: Duration = Duration::from_secs(1);

/// kafka-reassign-partitions's plan file (`version` 1).
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct PlanFile {
    pub version: i32,
    pub partitions: Vec<PlanPartition>,
}

#[derive(Debug, Serialize, Deserialize)]
pub(super) struct PlanPartition {
    pub topic: String,
    pub partition: i32,
    pub replicas: Vec<i32>,
    /// Per replica, a log directory or "any"; samsa has one log directory per broker, so only
    /// "any" (or the absence of the field) is accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_dirs: Option<Vec<String>>,
}

impl PlanFile {
    fn of(placements: &[&Placement]) -> Self {
        PlanFile {
            version: 1,
            partitions: placements
                .iter()
                .map(|p| PlanPartition {
                    topic: p.topic.clone(),
                    partition: p.partition,
                    replicas: p.replicas.iter().map(|r| r.0).collect(),
                    log_dirs: None,
                })
                .collect(),
        }
    }
}

#[derive(Debug, Args)]
pub struct ReassignArgs {
    /// The plan, in kafka-reassign-partitions's JSON format.
    #[arg(long)]
    pub reassignment_json_file: PathBuf,
    /// Report whether each partition of the plan has completed its move.
    #[arg(long, conflicts_with = "cancel")]
    pub verify: bool,
    /// Cancel the plan's ongoing moves (the partitions go back to their original replicas).
    #[arg(long)]
    pub cancel: bool,
    /// Throttle the catch-up replication of the moves to this many bytes per second (KIP-73:
    /// only replicas outside the ISR are slowed); `--verify` removes it once
    /// every move completed.
    #[arg(long, value_name = "BYTES_PER_SEC")]
    pub throttle: Option<u64>,
    /// With --verify: leave the throttles in place.
    #[arg(long)]
    pub preserve_throttles: bool,
    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Debug, Args)]
pub struct RebalanceArgs {
    /// Submit the plan and follow it to completion (without it the plan is only printed).
    #[arg(long)]
    pub execute: bool,
    /// Give up following progress after this many seconds (the moves go on).
    #[arg(long, default_value_t = 3600)]
    pub timeout_secs: u64,
    /// Throttle the catch-up replication of the moves to this many bytes per second (KIP-73:
    /// only replicas outside the ISR are slowed); removed when the moves complete.
    #[arg(long, value_name = "BYTES_PER_SEC")]
    pub throttle: Option<u64>,
    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Debug, Args)]
pub struct DrainArgs {
    /// The broker to move every replica and leadership off.
    pub broker: i32,
    /// Submit the plan and follow it to completion (without it the plan is only printed).
    #[arg(long)]
    pub execute: bool,
    /// Give up following progress after this many seconds (the moves go on).
    #[arg(long, default_value_t = 3600)]
    pub timeout_secs: u64,
    /// Throttle the catch-up replication of the moves to this many bytes per second (KIP-73:
    /// only replicas outside the ISR are slowed); removed when the moves complete.
    #[arg(long, value_name = "BYTES_PER_SEC")]
    pub throttle: Option<u64>,
    #[command(flatten)]
    pub client: ClientArgs,
}

/// The current placement of every partition, and the brokers a plan may use.
fn placement(md: &MetadataResponse) -> (Vec<Placement>, Vec<Target>) {
    let mut parts = Vec::new();
    for t in &md.topics {
        let Some(topic) = t.name.as_ref() else { continue };
        for p in &t.partitions {
            parts.push(Placement {
                topic: topic.to_string(),
                partition: p.partition_index,
                replicas: p.replica_nodes.iter().map(|r| NodeId(r.0)).collect(),
            });
        }
    }
    parts.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
    let brokers = md
        .brokers
        .iter()
        .map(|b| Target { id: NodeId(b.node_id.0), rack: b.rack.as_ref().map(|r| r.to_string()) })
        .collect();
    (parts, brokers)
}

/// Submits target replica lists (`None` cancels); fails naming every partition refused.
async fn submit(
    client: &mut KafkaClient,
    targets: &[(String, i32, Option<Vec<i32>>)],
) -> anyhow::Result<()> {
    let mut req = AlterPartitionReassignmentsRequest::default();
    req.timeout_ms = 60_000;
    for (topic, partition, replicas) in targets {
        let mut p = ReassignablePartition::default();
        p.partition_index = *partition;
        p.replicas = replicas.as_ref().map(|r| r.iter().map(|b| BrokerId(*b)).collect());
        match req.topics.iter_mut().find(|t| t.name.as_str() == topic) {
            Some(t) => t.partitions.push(p),
            None => {
                let mut t = ReassignableTopic::default();
                t.name = name(topic);
                t.partitions.push(p);
                req.topics.push(t);
            }
        }
    }
    let v = client.version::<AlterPartitionReassignmentsRequest>(0)?;
    let resp = client.send(&req, v).await.context("AlterPartitionReassignments failed")?;
    if resp.error_code != 0 {
        bail!(
            "the reassignment was refused: {}: {}",
            error_name(resp.error_code),
            resp.error_message.as_deref().unwrap_or("")
        );
    }
    let mut refused = Vec::new();
    for t in &resp.responses {
        for p in &t.partitions {
            if p.error_code != 0 {
                refused.push(format!(
                    "{}-{}: {} {}",
                    t.name.as_str(),
                    p.partition_index,
                    error_name(p.error_code),
                    p.error_message.as_deref().unwrap_or("")
                ));
            }
        }
    }
    if !refused.is_empty() {
        bail!("{} partition(s) refused:\n  {}", refused.len(), refused.join("\n  "));
    }
    Ok(())
}

/// The partitions with a reassignment in progress.
async fn ongoing(client: &mut KafkaClient) -> anyhow::Result<BTreeSet<(String, i32)>> {
    let v = client.version::<ListPartitionReassignmentsRequest>(0)?;
    let mut req = ListPartitionReassignmentsRequest::default();
    req.timeout_ms = 30_000;
    let resp = client.send(&req, v).await.context("ListPartitionReassignments failed")?;
    if resp.error_code != 0 {
        bail!("ListPartitionReassignments: {}", error_name(resp.error_code));
    }
    Ok(resp
        .topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(|p| (t.name.to_string(), p.partition_index)))
        .collect())
}

/// Polls until none of `moved` is still being reassigned, printing progress.
async fn follow(
    client: &mut KafkaClient,
    moved: &BTreeSet<(String, i32)>,
    timeout: Duration,
) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut last_left = usize::MAX;
    loop {
        let left = ongoing(client).await?.intersection(moved).count();
        if left != last_left {
            println!(
                "{} of {} partition move(s) complete ({:.0} s)",
                moved.len() - left,
                moved.len(),
                started.elapsed().as_secs_f64()
            );
            last_left = left;
        }
        if left == 0 {
            return Ok(());
        }
        if started.elapsed() > timeout {
            bail!(
                "{left} move(s) still in progress after {} s; they go on: follow them with `samsa topic reassign --verify`",
                timeout.as_secs()
            );
        }
        tokio::time::sleep(PROGRESS_INTERVAL).await;
    }
}

fn print_plan(title: &str, current: &[Placement], changed: &[&Placement]) {
    println!("{title}: {} partition(s) move", changed.len());
    for p in changed {
        let before = current
            .iter()
            .find(|c| c.topic == p.topic && c.partition == p.partition)
            .map(|c| c.replicas.clone())
            .unwrap_or_default();
        println!("  {}-{}: {:?} -> {:?}", p.topic, p.partition, ids(&before), ids(&p.replicas));
    }
}

fn ids(nodes: &[NodeId]) -> Vec<i32> {
    nodes.iter().map(|n| n.0).collect()
}

/// Prints a computed plan and, with `execute`, carries it out.
async fn apply_plan(
    cluster: &mut ClusterClient,
    title: &str,
    current: &[Placement],
    plan: &[Placement],
    execute: bool,
    timeout: Duration,
    throttle: Option<u64>,
) -> anyhow::Result<()> {
    let changed = plan::changes(current, plan);
    print_plan(title, current, &changed);
    if changed.is_empty() {
        println!("Nothing to move.");
        return Ok(());
    }
    println!(
        "Plan (kafka-reassign-partitions format):\n{}",
        serde_json::to_string(&PlanFile::of(&changed))?
    );
    if !execute {
        println!("Run again with --execute to apply it.");
        return Ok(());
    }
    let targets: Vec<(String, i32, Option<Vec<i32>>)> =
        changed.iter().map(|p| (p.topic.clone(), p.partition, Some(ids(&p.replicas)))).collect();
    let moves = moves_of(current, &targets);
    if let Some(rate) = throttle {
        throttle::set(cluster.any(), &moves, rate).await?;
    }
    submit(cluster.any(), &targets).await?;
    let moved = changed.iter().map(|p| (p.topic.clone(), p.partition)).collect();
    follow(cluster.any(), &moved, timeout).await?;
    if throttle.is_some() {
        let (brokers, topics) = touched(&moves);
        throttle::clear(cluster.any(), &brokers, &topics).await?;
    }
    println!("Done.");
    Ok(())
}

/// Computes a plan from the current placement and prints (and with `execute` applies) it.
async fn plan_and_apply(
    client: &ClientArgs,
    execute: bool,
    timeout_secs: u64,
    throttle: Option<u64>,
    make: impl FnOnce(&[Placement], &[Target]) -> anyhow::Result<(String, Vec<Placement>)>,
) -> anyhow::Result<()> {
    let mut cluster = ClusterClient::connect(&client.bootstrap_server).await?;
    let md = cluster.refresh(None).await?;
    let (current, brokers) = placement(&md);
    let (title, plan) = make(&current, &brokers)?;
    let timeout = Duration::from_secs(timeout_secs);
    apply_plan(&mut cluster, &title, &current, &plan, execute, timeout, throttle).await
}

/// The moves `targets` make from the `current` placement.
fn moves_of(
    current: &[Placement],
    targets: &[(String, i32, Option<Vec<i32>>)],
) -> Vec<throttle::Move> {
    targets
        .iter()
        .filter_map(|(topic, partition, to)| {
            let from = current.iter().find(|c| &c.topic == topic && c.partition == *partition)?;
            Some(throttle::Move {
                topic: topic.clone(),
                partition: *partition,
                from: ids(&from.replicas),
                to: to.clone()?,
            })
        })
        .collect()
}

/// The brokers and topics the moves throttle.
fn touched(moves: &[throttle::Move]) -> (BTreeSet<i32>, BTreeSet<String>) {
    let brokers = moves.iter().flat_map(|m| m.from.iter().chain(&m.to)).copied().collect();
    let topics = moves.iter().map(|m| m.topic.clone()).collect();
    (brokers, topics)
}

/// `samsa cluster rebalance`.
pub(super) async fn rebalance(a: RebalanceArgs) -> anyhow::Result<()> {
    plan_and_apply(&a.client, a.execute, a.timeout_secs, a.throttle, |current, brokers| {
        let ids: Vec<i32> = brokers.iter().map(|b| b.id.0).collect();
        Ok((format!("Balanced placement over brokers {ids:?}"), plan::rebalance(current, brokers)))
    })
    .await
}

/// `samsa broker drain N`.
pub(super) async fn drain(a: DrainArgs) -> anyhow::Result<()> {
    let id = NodeId(a.broker);
    plan_and_apply(&a.client, a.execute, a.timeout_secs, a.throttle, |current, brokers| {
        let hosts_replicas = current.iter().any(|p| p.replicas.contains(&id));
        if !brokers.iter().any(|b| b.id == id) && !hosts_replicas {
            bail!(
                "broker {id} is neither a live broker nor a replica of any partition (see `samsa cluster status`)"
            );
        }
        let plan = plan::drain(current, brokers, id)
            .map_err(|why| anyhow::anyhow!("cannot drain broker {id}: {why}"))?;
        Ok((format!("Draining broker {id}"), plan))
    })
    .await
}

/// `samsa topic reassign`.
pub(super) async fn reassign(a: ReassignArgs) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(&a.reassignment_json_file)
        .with_context(|| format!("cannot read the plan {}", a.reassignment_json_file.display()))?;
    let file: PlanFile = serde_json::from_str(&text).with_context(|| {
        format!(
            "{} is not a reassignment plan: expected {{\"version\":1,\"partitions\":[{{\"topic\":\"t\",\"partition\":0,\"replicas\":[1,2,3]}}]}}",
            a.reassignment_json_file.display()
        )
    })?;
    if file.version != 1 {
        bail!("plan version {} is not supported (only 1)", file.version);
    }
    for p in &file.partitions {
        if let Some(dirs) = &p.log_dirs
            && (dirs.len() != p.replicas.len() || dirs.iter().any(|d| d != "any"))
        {
            bail!(
                "{}-{}: log_dirs must be \"any\" for every replica (samsa brokers have one log directory each)",
                p.topic,
                p.partition
            );
        }
    }
    let mut cluster = ClusterClient::connect(&a.client.bootstrap_server).await?;
    let wanted: BTreeSet<(String, i32)> =
        file.partitions.iter().map(|p| (p.topic.clone(), p.partition)).collect();
    if a.verify {
        let md = cluster.refresh(None).await?;
        let (current, _) = placement(&md);
        let busy = ongoing(cluster.any()).await?;
        let mut all_done = true;
        for p in &file.partitions {
            let now = current.iter().find(|c| c.topic == p.topic && c.partition == p.partition);
            let status = match now {
                _ if busy.contains(&(p.topic.clone(), p.partition)) => "is still in progress",
                Some(c) if ids(&c.replicas) == p.replicas => "is completed",
                Some(_) => "is not in progress, and the replicas differ from the plan",
                None => "does not exist",
            };
            all_done &= status == "is completed";
            println!("Status of partition reassignment: {}-{} {status}.", p.topic, p.partition);
        }
        if !all_done {
            bail!("not every partition of the plan is where it says");
        }
        if !a.preserve_throttles {
            let brokers: BTreeSet<i32> = md.brokers.iter().map(|b| b.node_id.0).collect();
            let topics: BTreeSet<String> =
                file.partitions.iter().map(|p| p.topic.clone()).collect();
            throttle::clear(cluster.any(), &brokers, &topics).await?;
        }
        return Ok(());
    }
    if a.cancel {
        let busy = ongoing(cluster.any()).await?;
        let targets: Vec<(String, i32, Option<Vec<i32>>)> = wanted
            .iter()
            .filter(|w| busy.contains(*w))
            .map(|(t, p)| (t.clone(), *p, None))
            .collect();
        if targets.is_empty() {
            println!("None of the plan's partitions has a reassignment in progress.");
            return Ok(());
        }
        submit(cluster.any(), &targets).await?;
        println!("Successfully cancelled {} partition reassignment(s).", targets.len());
        return Ok(());
    }
    let md = cluster.refresh(None).await?;
    let (current, _) = placement(&md);
    let rollback: Vec<&Placement> =
        current.iter().filter(|c| wanted.contains(&(c.topic.clone(), c.partition))).collect();
    println!(
        "Current partition replica assignment\n\n{}\n\nSave this to use as the --reassignment-json-file option during rollback",
        serde_json::to_string(&PlanFile::of(&rollback))?
    );
    let targets: Vec<(String, i32, Option<Vec<i32>>)> = file
        .partitions
        .iter()
        .map(|p| (p.topic.clone(), p.partition, Some(p.replicas.clone())))
        .collect();
    if let Some(rate) = a.throttle {
        throttle::set(cluster.any(), &moves_of(&current, &targets), rate).await?;
        println!(
            "Warning: You must run --verify periodically, until the reassignment completes, to ensure the throttle is removed."
        );
    }
    submit(cluster.any(), &targets).await?;
    let names: Vec<String> = wanted.iter().map(|(t, p)| format!("{t}-{p}")).collect();
    println!("Successfully started partition reassignments for {}", names.join(","));
    Ok(())
}
