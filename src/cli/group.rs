//! `samsa group list|describe|delete|reset-offsets`, like kafka-consumer-groups. Group requests go
//! to the group's coordinator (found with FindCoordinator); ListGroups goes to every broker.
//! `reset-offsets` only prints the plan unless `--execute` is given, and refuses while the group
//! has members, as Kafka's tool does.

use std::collections::BTreeMap;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::{
    DeleteGroupsRequest, DescribeGroupsRequest, GroupId, ListGroupsRequest, OffsetCommitRequest,
    OffsetFetchRequest,
};
use kafka_protocol::protocol::StrBytes;

use super::ClientArgs;
use super::admin::{list_offset, name, partition_count};
use super::topic::error_name;
use crate::client::KafkaClient;
use crate::client::cluster::ClusterClient;
use crate::group::consumer_protocol::assigned_partitions;

#[derive(Debug, Subcommand)]
pub enum GroupCommand {
    /// List the consumer groups of every broker.
    List(ClientArgs),
    /// Show a group's state, members, and per partition the committed offset, log end offset
    /// and lag.
    Describe(GroupArgs),
    /// Delete empty groups and their committed offsets.
    Delete(DeleteArgs),
    /// Move an inactive group's committed offsets (a dry run unless --execute).
    ResetOffsets(ResetArgs),
}

#[derive(Debug, Args)]
pub struct GroupArgs {
    pub group: String,
    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Debug, Args)]
pub struct DeleteArgs {
    #[arg(required = true)]
    pub groups: Vec<String>,
    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("scope").required(true).args(["topic", "all_topics"])))]
#[command(group(clap::ArgGroup::new("target").required(true)
    .args(["to_earliest", "to_latest", "to_offset", "to_datetime"])))]
pub struct ResetArgs {
    pub group: String,
    /// A topic, optionally with partitions: `orders` or `orders:0,2`. Repeatable.
    #[arg(long)]
    pub topic: Vec<String>,
    /// Every topic the group has committed offsets for.
    #[arg(long)]
    pub all_topics: bool,
    #[arg(long)]
    pub to_earliest: bool,
    #[arg(long)]
    pub to_latest: bool,
    /// An absolute offset (clamped to the partition's earliest..latest).
    #[arg(long)]
    pub to_offset: Option<i64>,
    /// The first offset at or after a time: `2026-11-22T05:00:00.000` (UTC), with an offset
    /// (`2026-11-22T05:00:00.000+01:00`), or epoch ms.
    #[arg(long)]
    pub to_datetime: Option<String>,
    /// Apply the plan (without it, only print it).
    #[arg(long)]
    pub execute: bool,
    #[command(flatten)]
    pub client: ClientArgs,
}

pub(super) async fn run(cmd: GroupCommand) -> anyhow::Result<()> {
    match cmd {
        GroupCommand::List(c) => list(c).await,
        GroupCommand::Describe(a) => describe(a).await,
        GroupCommand::Delete(a) => delete(a).await,
        GroupCommand::ResetOffsets(a) => reset(a).await,
    }
}

fn group_id(s: &str) -> GroupId {
    GroupId(StrBytes::from_string(s.to_string()))
}

/// A connection to the group's coordinator (retrying while it loads or moves).
async fn coordinator<'a>(
    cluster: &'a mut ClusterClient,
    group: &str,
) -> anyhow::Result<&'a mut KafkaClient> {
    match super::admin::find_coordinator(cluster, group, 0).await? {
        Ok(id) => cluster.broker(id).await,
        Err(last) => bail!(
            "no coordinator for group '{group}': {last}; is the cluster healthy? (`samsa cluster status`)"
        ),
    }
}

async fn list(c: ClientArgs) -> anyhow::Result<()> {
    let mut cluster = ClusterClient::connect(&c.bootstrap_server).await?;
    let md = cluster.refresh(Some(&[])).await?;
    let mut groups = BTreeMap::new();
    for b in &md.brokers {
        let client = cluster.broker(b.node_id.0).await?;
        let version = client.version::<ListGroupsRequest>(4)?;
        let resp = client.send(&ListGroupsRequest::default(), version).await?;
        if resp.error_code != 0 {
            eprintln!(
                "broker {}: {} (its list may be incomplete)",
                b.node_id.0,
                error_name(resp.error_code)
            );
        }
        for g in resp.groups {
            groups.insert(
                g.group_id.0.to_string(),
                (g.group_state.to_string(), g.protocol_type.to_string()),
            );
        }
    }
    outln!("{:<40} {:<20} PROTOCOL-TYPE", "GROUP", "STATE");
    for (g, (state, ptype)) in groups {
        outln!("{g:<40} {state:<20} {ptype}");
    }
    Ok(())
}

/// Committed offsets of a group: (topic, partition) → offset.
async fn committed(
    client: &mut KafkaClient,
    group: &str,
) -> anyhow::Result<BTreeMap<(String, i32), i64>> {
    let version = client.version::<OffsetFetchRequest>(7)?;
    let mut req = OffsetFetchRequest::default();
    req.group_id = group_id(group);
    req.topics = None;
    let resp = client.send(&req, version).await?;
    if resp.error_code != 0 {
        bail!("cannot read the offsets of group '{group}': {}", error_name(resp.error_code));
    }
    let mut out = BTreeMap::new();
    for t in resp.topics {
        for p in t.partitions {
            if p.committed_offset >= 0 {
                out.insert((t.name.0.to_string(), p.partition_index), p.committed_offset);
            }
        }
    }
    Ok(out)
}

/// The group's state and members: (state, protocol, [(member, host, client, assignment)]).
type Members = Vec<(String, String, String, Vec<(String, Vec<i32>)>)>;

async fn describe_group(
    client: &mut KafkaClient,
    group: &str,
) -> anyhow::Result<(String, String, Members)> {
    let version = client.version::<DescribeGroupsRequest>(5)?;
    let mut req = DescribeGroupsRequest::default();
    req.groups = vec![group_id(group)];
    let resp = client.send(&req, version).await?;
    let g = resp.groups.into_iter().next().context("empty DescribeGroups response")?;
    if g.error_code != 0 {
        bail!("cannot describe group '{group}': {}", error_name(g.error_code));
    }
    let members = g
        .members
        .into_iter()
        .map(|m| {
            (
                m.member_id.to_string(),
                m.client_host.to_string(),
                m.client_id.to_string(),
                assigned_partitions(&m.member_assignment),
            )
        })
        .collect();
    Ok((g.group_state.to_string(), g.protocol_data.to_string(), members))
}

async fn describe(a: GroupArgs) -> anyhow::Result<()> {
    let mut cluster = ClusterClient::connect(&a.client.bootstrap_server).await?;
    let coord = coordinator(&mut cluster, &a.group).await?;
    let coord_addr = coord.addr().to_string();
    let (state, protocol, members) = describe_group(coord, &a.group).await?;
    let offsets = committed(coord, &a.group).await?;
    if state == "Dead" && offsets.is_empty() {
        bail!("consumer group '{}' does not exist", a.group);
    }
    outln!(
        "Group '{}' is {state} with {} member(s), protocol '{protocol}', coordinator {coord_addr}.",
        a.group,
        members.len()
    );
    // Every partition with a committed offset or an owner.
    let mut rows: BTreeMap<(String, i32), (Option<i64>, Option<usize>)> = BTreeMap::new();
    for (tp, o) in &offsets {
        rows.entry(tp.clone()).or_default().0 = Some(*o);
    }
    for (i, (_, _, _, assignment)) in members.iter().enumerate() {
        for (t, ps) in assignment {
            for p in ps {
                rows.entry((t.clone(), *p)).or_default().1 = Some(i);
            }
        }
    }
    outln!(
        "\n{:<24} {:<24} {:>9} {:>14} {:>14} {:>8}  {:<44} {:<16} CLIENT-ID",
        "GROUP",
        "TOPIC",
        "PARTITION",
        "CURRENT-OFFSET",
        "LOG-END-OFFSET",
        "LAG",
        "CONSUMER-ID",
        "HOST"
    );
    let mut topics_refreshed = std::collections::HashSet::new();
    for ((t, p), (offset, owner)) in rows {
        if topics_refreshed.insert(t.clone()) {
            let _ = partition_count(&mut cluster, &t).await;
        }
        let end = match cluster.leader(&t, p).await {
            Ok(leader) => list_offset(leader, &t, p, -1).await.ok(),
            Err(_) => None,
        };
        let show = |v: Option<i64>| v.map_or("-".to_string(), |v| v.to_string());
        let lag = match (offset, end) {
            (Some(o), Some(e)) => Some((e - o).max(0)),
            _ => None,
        };
        let (member, host, client) = owner
            .map(|i| (members[i].0.as_str(), members[i].1.as_str(), members[i].2.as_str()))
            .unwrap_or(("-", "-", "-"));
        outln!(
            "{:<24} {t:<24} {p:>9} {:>14} {:>14} {:>8}  {member:<44} {host:<16} {client}",
            a.group,
            show(offset),
            show(end),
            show(lag)
        );
    }
    let idle: Vec<&str> = members.iter().filter(|m| m.3.is_empty()).map(|m| m.0.as_str()).collect();
    for m in idle {
        outln!("{:<24} {:<24} {:>9} {:>14} {:>14} {:>8}  {m}", a.group, "-", "-", "-", "-", "-");
    }
    Ok(())
}

async fn delete(a: DeleteArgs) -> anyhow::Result<()> {
    let mut cluster = ClusterClient::connect(&a.client.bootstrap_server).await?;
    let mut failed = Vec::new();
    for g in &a.groups {
        let coord = coordinator(&mut cluster, g).await?;
        let version = coord.version::<DeleteGroupsRequest>(2)?;
        let mut req = DeleteGroupsRequest::default();
        req.groups_names = vec![group_id(g)];
        let resp = coord.send(&req, version).await?;
        let code = resp.results.first().map_or(-1, |r| r.error_code);
        match code {
            0 => outln!("Deleted consumer group '{g}'."),
            68 => failed.push(format!("'{g}' still has members: stop its consumers first")),
            69 => failed.push(format!("'{g}' does not exist")),
            _ => failed.push(format!("'{g}': {}", error_name(code))),
        }
    }
    if !failed.is_empty() {
        bail!("could not delete group(s): {}", failed.join("; "));
    }
    Ok(())
}

/// Parses a time for `--to-datetime`: RFC 3339 with an offset (`2026-11-22T05:00:00.250Z`,
/// `...+01:00`), a civil time without one (`2026-11-22T05:00:00.000`, read as UTC), or epoch
/// milliseconds.
fn parse_datetime(s: &str) -> anyhow::Result<i64> {
    if let Ok(ms) = s.parse::<i64>() {
        return Ok(ms);
    }
    if let Ok(ts) = s.parse::<jiff::Timestamp>() {
        return Ok(ts.as_millisecond());
    }
    let bad = || {
        anyhow::anyhow!(
            "cannot read '{s}' as a time: use 2026-11-22T05:00:00.000 (UTC), \
             2026-11-22T05:00:00.000+01:00, or epoch milliseconds"
        )
    };
    let civil: jiff::civil::DateTime = s.parse().map_err(|_| bad())?;
    let zoned = civil.to_zoned(jiff::tz::TimeZone::UTC).map_err(|_| bad())?;
    Ok(zoned.timestamp().as_millisecond())
}

async fn reset(a: ResetArgs) -> anyhow::Result<()> {
    let mut cluster = ClusterClient::connect(&a.client.bootstrap_server).await?;
    let coord = coordinator(&mut cluster, &a.group).await?;
    let (state, _, _) = describe_group(coord, &a.group).await?;
    if !matches!(state.as_str(), "Empty" | "Dead") {
        bail!(
            "offsets can only be reset while group '{}' is inactive, but it is {state}; stop its consumers first",
            a.group
        );
    }
    let current = committed(coord, &a.group).await?;
    let targets = reset_targets(&mut cluster, &a, current.keys().cloned()).await?;
    let plan = reset_plan(&mut cluster, &a, targets).await?;
    outln!("{:<24} {:<24} {:>9} {:>14}", "GROUP", "TOPIC", "PARTITION", "NEW-OFFSET");
    for (t, p, o) in &plan {
        outln!("{:<24} {t:<24} {p:>9} {o:>14}", a.group);
    }
    if !a.execute {
        outln!("\nDry run: nothing changed. Add --execute to apply.");
        return Ok(());
    }
    let coord = coordinator(&mut cluster, &a.group).await?;
    commit_plan(coord, &a.group, &plan).await?;
    outln!("\nReset the offsets of group '{}'.", a.group);
    Ok(())
}

/// The partitions a reset covers: every committed one with `--all-topics`, plus each
/// `--topic T` (all its partitions) or `--topic T:0,2`.
async fn reset_targets(
    cluster: &mut ClusterClient,
    a: &ResetArgs,
    committed: impl Iterator<Item = (String, i32)>,
) -> anyhow::Result<Vec<(String, i32)>> {
    let mut targets: Vec<(String, i32)> = Vec::new();
    if a.all_topics {
        targets.extend(committed);
    }
    for spec in &a.topic {
        let (t, parts) = spec.split_once(':').map_or((spec.as_str(), None), |(t, p)| (t, Some(p)));
        match parts {
            Some(ps) => {
                for p in ps.split(',') {
                    let p =
                        p.trim().parse().with_context(|| format!("bad partition in '{spec}'"))?;
                    targets.push((t.to_string(), p));
                }
            }
            None => {
                let n = partition_count(cluster, t).await?;
                targets.extend((0..n).map(|p| (t.to_string(), p)));
            }
        }
    }
    if targets.is_empty() {
        bail!(
            "nothing to reset: group '{}' has no committed offsets; name topics with --topic",
            a.group
        );
    }
    Ok(targets)
}

/// The new offset of each target, from its leader's earliest and latest offsets.
async fn reset_plan(
    cluster: &mut ClusterClient,
    a: &ResetArgs,
    targets: Vec<(String, i32)>,
) -> anyhow::Result<Vec<(String, i32, i64)>> {
    let datetime = a.to_datetime.as_deref().map(parse_datetime).transpose()?;
    let mut plan = Vec::new();
    for (t, p) in targets {
        partition_count(cluster, &t).await?;
        let leader = cluster.leader(&t, p).await?;
        let earliest = list_offset(leader, &t, p, -2).await?;
        let latest = list_offset(leader, &t, p, -1).await?;
        let offset = if a.to_earliest {
            earliest
        } else if a.to_latest {
            latest
        } else if let Some(o) = a.to_offset {
            o.clamp(earliest, latest)
        } else {
            let at = list_offset(leader, &t, p, datetime.unwrap_or(-1)).await?;
            if at < 0 { latest } else { at }
        };
        plan.push((t, p, offset));
    }
    Ok(plan)
}

/// Commits `plan` for `group` as a standalone consumer (generation -1).
async fn commit_plan(
    coord: &mut KafkaClient,
    group: &str,
    plan: &[(String, i32, i64)],
) -> anyhow::Result<()> {
    let version = coord.version::<OffsetCommitRequest>(8)?;
    let mut req = OffsetCommitRequest::default();
    req.group_id = group_id(group);
    req.generation_id_or_member_epoch = -1;
    req.retention_time_ms = -1;
    let mut by_topic: BTreeMap<&str, Vec<OffsetCommitRequestPartition>> = BTreeMap::new();
    for (t, p, o) in plan {
        let mut rp = OffsetCommitRequestPartition::default();
        rp.partition_index = *p;
        rp.committed_offset = *o;
        rp.committed_leader_epoch = -1;
        rp.committed_metadata = Some(StrBytes::from_static_str(""));
        by_topic.entry(t).or_default().push(rp);
    }
    req.topics = by_topic
        .into_iter()
        .map(|(t, ps)| {
            let mut rt = OffsetCommitRequestTopic::default();
            rt.name = name(t);
            rt.partitions = ps;
            rt
        })
        .collect();
    let resp = coord.send(&req, version).await?;
    for t in resp.topics {
        for p in t.partitions {
            if p.error_code != 0 {
                bail!(
                    "resetting {}-{} failed: {}",
                    t.name.0,
                    p.partition_index,
                    error_name(p.error_code)
                );
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datetimes_are_read_as_utc() {
        assert_eq!(parse_datetime("1970-01-01T00:00:00").expect("epoch"), 0);
        assert_eq!(parse_datetime("2026-11-22T05:00:00.250Z").expect("t"), 1_795_323_600_250);
        assert_eq!(parse_datetime("1795323600250").expect("ms"), 1_795_323_600_250);
        assert!(parse_datetime("yesterday").is_err());
        assert!(parse_datetime("2026-13-01T00:00:00").is_err());
        assert_eq!(
            parse_datetime("2026-11-22T06:00:00.250+01:00").expect("offset"),
            1_795_323_600_250
        );
    }
}
