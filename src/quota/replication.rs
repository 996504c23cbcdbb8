//! Replication throttles (KIP-73), as Kafka applies them during a reassignment: a broker's
//! `leader.replication.throttled.rate` bounds the bytes it sends to followers, and its
//! `follower.replication.throttled.rate` the bytes it fetches, for the replicas a topic names in
//! `leader.replication.throttled.replicas` / `follower.replication.throttled.replicas`
//! (`partition:broker` pairs, or `*` for every replica). Only replicas outside the ISR are
//! throttled, so a throttle slows a reassignment's catch-up but never an in-sync follower, and
//! never `acks=all` producers.
//!
//! Invariants: the rates are read from the image on every check (dynamic broker configs over
//! the static ones), so a change applies at once; a broker without a throttle rate set (Kafka's
//! default, `Long.MAX_VALUE`) never throttles; a throttled read is held back, never failed.

use std::sync::Mutex;

use super::rate::SampledRate;
use crate::config::dynamic;
use crate::metadata::image::MetadataImage;
use crate::types::NodeId;

/// Which end of replication a throttle bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Side {
    /// Bytes this broker serves to followers.
    Leader,
    /// Bytes this broker fetches as a follower.
    Follower,
}

impl Side {
    fn rate_key(self) -> &'static str {
        match self {
            Side::Leader => "leader.replication.throttled.rate",
            Side::Follower => "follower.replication.throttled.rate",
        }
    }

    fn replicas_key(self) -> &'static str {
        match self {
            Side::Leader => "leader.replication.throttled.replicas",
            Side::Follower => "follower.replication.throttled.replicas",
        }
    }
}

/// Whether a `*.replication.throttled.replicas` value names `partition` on `broker`.
pub(crate) fn names_replica(value: &str, partition: i32, broker: NodeId) -> bool {
    let value = value.trim();
    value == "*"
        || value.split(',').map(str::trim).any(|item| {
            item.split_once(':').is_some_and(|(p, b)| {
                p.trim().parse::<i32>() == Ok(partition) && b.trim().parse::<i32>() == Ok(broker.0)
            })
        })
}

/// One node's replication throttles and the rates they measure.
#[derive(Debug)]
pub(crate) struct ReplicationThrottle {
    node: NodeId,
    /// The static `leader/follower.replication.throttled.rate` (i64::MAX: none).
    static_leader_rate: i64,
    static_follower_rate: i64,
    window_ms: i64,
    leader: Mutex<SampledRate>,
    follower: Mutex<SampledRate>,
}

impl ReplicationThrottle {
    pub(crate) fn new(node: NodeId, config: &crate::config::broker::BrokerConfig) -> Self {
        let window_ms = config.replication_quota_window_size_seconds.max(1) * 1000;
        let samples = config.replication_quota_window_num.max(1) as usize;
        ReplicationThrottle {
            node,
            static_leader_rate: config.leader_replication_throttled_rate,
            static_follower_rate: config.follower_replication_throttled_rate,
            window_ms,
            leader: Mutex::new(SampledRate::new(window_ms, samples)),
            follower: Mutex::new(SampledRate::new(window_ms, samples)),
        }
    }

    fn meter(&self, side: Side) -> std::sync::MutexGuard<'_, SampledRate> {
        match side {
            Side::Leader => &self.leader,
            Side::Follower => &self.follower,
        }
        .lock()
        .unwrap_or_else(|p| p.into_inner())
    }

    /// The bound in bytes per second on `side`, if one is set.
    fn bound(&self, image: &MetadataImage, side: Side) -> Option<f64> {
        let fallback = match side {
            Side::Leader => self.static_leader_rate,
            Side::Follower => self.static_follower_rate,
        };
        let rate = dynamic::number(image, self.node, side.rate_key(), fallback);
        (rate < i64::MAX).then_some(rate.max(0) as f64)
    }

    /// The bound that applies to replica `follower` of `topic`-`partition` on `side`: set only
    /// when a rate is set, the topic names the replica (`partition:<this node>`) and the
    /// follower is not in the ISR.
    pub(crate) fn applies(
        &self,
        image: &MetadataImage,
        side: Side,
        topic: &str,
        partition: i32,
        follower: NodeId,
    ) -> Option<f64> {
        let t = image.topic(topic)?;
        let listed = t.configs.get(side.replicas_key())?;
        if !names_replica(listed, partition, self.node) {
            return None;
        }
        let p = t.partitions.get(usize::try_from(partition).ok()?)?;
        if p.isr.contains(&follower) {
            return None;
        }
        self.bound(image, side)
    }

    /// Whether `side` is over `bound` now: throttled replicas are then held back.
    pub(crate) fn exceeded(&self, side: Side, bound: f64, now_ms: i64) -> bool {
        self.meter(side).rate(now_ms) > bound
    }

    /// Counts `bytes` of throttled replication on `side`.
    pub(crate) fn record(&self, side: Side, bytes: usize, now_ms: i64) {
        if bytes > 0 {
            self.meter(side).record(bytes as f64, now_ms);
        }
    }

    /// The most one read of a throttled replica carries: one quota window's worth, so a single
    /// large fetch does not overshoot the rate for the whole window.
    pub(crate) fn read_budget(&self, bound: f64) -> usize {
        (bound * self.window_ms as f64 / 1000.0).clamp(1.0, i32::MAX as f64) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::broker::BrokerConfig;
    use crate::metadata::commands::{MetadataCommand, apply};

    #[test]
    fn replica_lists_name_partition_broker_pairs_or_every_replica() {
        assert!(names_replica("*", 7, NodeId(3)));
        assert!(names_replica("0:1, 1:3", 1, NodeId(3)));
        assert!(!names_replica("0:1,1:3", 0, NodeId(3)));
        assert!(!names_replica("", 0, NodeId(3)));
    }

    #[test]
    fn only_listed_out_of_sync_replicas_are_throttled_and_only_with_a_rate() {
        let mut img = crate::metadata::test_image(4, &[1, 2, 3]);
        let base = BrokerConfig::dev("d".into(), "127.0.0.1:9092".parse().expect("addr"));
        let t = ReplicationThrottle::new(NodeId(1), &base);
        let set_topic = MetadataCommand::SetTopicConfigs {
            topic: "t".into(),
            configs: [("leader.replication.throttled.replicas".to_string(), "0:1".to_string())]
                .into(),
        };
        apply(&mut img, &set_topic);
        assert_eq!(t.applies(&img, Side::Leader, "t", 0, NodeId(4)), None, "no rate set");
        let rate = MetadataCommand::SetBrokerConfigs {
            entity: "1".into(),
            configs: [("leader.replication.throttled.rate".to_string(), "1000".to_string())].into(),
        };
        apply(&mut img, &rate);
        assert_eq!(t.applies(&img, Side::Leader, "t", 0, NodeId(4)), Some(1000.0));
        assert_eq!(t.applies(&img, Side::Leader, "t", 0, NodeId(2)), None, "in the ISR");
        assert_eq!(t.applies(&img, Side::Follower, "t", 0, NodeId(4)), None, "not listed");
        assert!(!t.exceeded(Side::Leader, 1000.0, 0));
        t.record(Side::Leader, 50_000, 0);
        assert!(t.exceeded(Side::Leader, 1000.0, 10));
        assert!(!t.exceeded(Side::Follower, 1000.0, 10));
        assert_eq!(t.read_budget(1000.0), 1000);
    }
}
