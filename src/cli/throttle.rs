//! Replication throttles for a reassignment, set and cleared the way kafka-reassign-partitions
//! does (KIP-73): every broker a move touches gets `leader.replication.throttled.rate` and
//! `follower.replication.throttled.rate`; each moving partition's current replicas are listed in
//! its topic's `leader.replication.throttled.replicas` and its new replicas in
//! `follower.replication.throttled.replicas`. Only replicas outside the ISR are slowed, so the
//! throttle bounds the catch-up copy and nothing else; it stays until cleared.

use std::collections::{BTreeMap, BTreeSet};

use super::admin::{OP_APPEND, OP_DELETE, OP_SET, RESOURCE_BROKER, RESOURCE_TOPIC, alter_configs};
use crate::client::KafkaClient;

const LEADER_RATE: &str = "leader.replication.throttled.rate";
const FOLLOWER_RATE: &str = "follower.replication.throttled.rate";
const LEADER_REPLICAS: &str = "leader.replication.throttled.replicas";
const FOLLOWER_REPLICAS: &str = "follower.replication.throttled.replicas";

/// One partition's move: its replicas now and its target replicas.
#[derive(Debug, Clone)]
pub(super) struct Move {
    pub topic: String,
    pub partition: i32,
    pub from: Vec<i32>,
    pub to: Vec<i32>,
}

/// Per topic, the `partition:broker` items of the leader and follower throttled-replica lists.
fn replica_lists(moves: &[Move]) -> BTreeMap<String, (Vec<String>, Vec<String>)> {
    let mut lists: BTreeMap<String, (Vec<String>, Vec<String>)> = BTreeMap::new();
    for m in moves {
        let (leaders, followers) = lists.entry(m.topic.clone()).or_default();
        leaders.extend(m.from.iter().map(|b| format!("{}:{b}", m.partition)));
        followers.extend(
            m.to.iter().filter(|b| !m.from.contains(b)).map(|b| format!("{}:{b}", m.partition)),
        );
    }
    lists
}

/// Throttles the replication `moves` need to `rate` bytes per second.
pub(super) async fn set(client: &mut KafkaClient, moves: &[Move], rate: u64) -> anyhow::Result<()> {
    let brokers: BTreeSet<i32> =
        moves.iter().flat_map(|m| m.from.iter().chain(&m.to)).copied().collect();
    for b in &brokers {
        let changes = [
            (LEADER_RATE.to_string(), OP_SET, Some(rate.to_string())),
            (FOLLOWER_RATE.to_string(), OP_SET, Some(rate.to_string())),
        ];
        alter_configs(client, RESOURCE_BROKER, &b.to_string(), &changes).await?;
    }
    for (topic, (leaders, followers)) in replica_lists(moves) {
        let mut changes = Vec::new();
        if !leaders.is_empty() {
            changes.push((LEADER_REPLICAS.to_string(), OP_APPEND, Some(leaders.join(","))));
        }
        if !followers.is_empty() {
            changes.push((FOLLOWER_REPLICAS.to_string(), OP_APPEND, Some(followers.join(","))));
        }
        if !changes.is_empty() {
            alter_configs(client, RESOURCE_TOPIC, &topic, &changes).await?;
        }
    }
    let list: Vec<String> = brokers.iter().map(i32::to_string).collect();
    println!("The inter-broker throttle limit was set to {rate} B/s on brokers {}", list.join(","));
    Ok(())
}

/// Removes the throttle rates from `brokers` and the throttled-replica lists from `topics`.
pub(super) async fn clear(
    client: &mut KafkaClient,
    brokers: &BTreeSet<i32>,
    topics: &BTreeSet<String>,
) -> anyhow::Result<()> {
    for b in brokers {
        let changes = [
            (LEADER_RATE.to_string(), OP_DELETE, None),
            (FOLLOWER_RATE.to_string(), OP_DELETE, None),
        ];
        alter_configs(client, RESOURCE_BROKER, &b.to_string(), &changes).await?;
    }
    let list: Vec<String> = brokers.iter().map(i32::to_string).collect();
    println!("Clearing broker-level throttles on brokers {}", list.join(","));
    for t in topics {
        let changes = [
            (LEADER_REPLICAS.to_string(), OP_DELETE, None),
            (FOLLOWER_REPLICAS.to_string(), OP_DELETE, None),
        ];
        alter_configs(client, RESOURCE_TOPIC, t, &changes).await?;
        println!("Clearing topic-level throttles on topic {t}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn current_replicas_are_leader_throttled_and_new_ones_follower_throttled() {
        let moves = [
            Move { topic: "t".into(), partition: 0, from: vec![1, 2, 3], to: vec![4, 2, 3] },
            Move { topic: "t".into(), partition: 1, from: vec![2, 3], to: vec![3, 4] },
        ];
        let lists = replica_lists(&moves);
        assert_eq!(lists["t"].0, vec!["0:1", "0:2", "0:3", "1:2", "1:3"]);
        assert_eq!(lists["t"].1, vec!["0:4", "1:4"]);
    }
}
