//! The broker's static configuration. Keys are Kafka's (`num.partitions`, `log.retention.ms`,
//! ...); `set` applies one `key=value` override. Every limit has a unit in its name.

use std::net::SocketAddr;
use std::path::PathBuf;

use super::{ConfigError, invalid};
use crate::types::NodeId;

/// Kafka's default `message.max.bytes`: 1 MiB plus record-batch overhead.
pub const MESSAGE_MAX_BYTES_DEFAULT: i64 = 1_048_588;
/// Kafka's default `socket.request.max.bytes`: the largest request frame accepted (100 MiB).
pub const SOCKET_REQUEST_MAX_BYTES_DEFAULT: i64 = 104_857_600;
const WEEK_MS: i64 = 7 * 24 * 3600 * 1000;

/// KIP-392's selector: consumers with a `client.rack` read from an in-sync replica in that rack.
pub const RACK_AWARE_SELECTOR: &str = "org.apache.kafka.common.replica.RackAwareReplicaSelector";
/// Kafka's other built-in selector: every consumer reads from the leader (the default).
pub const LEADER_SELECTOR: &str = "org.apache.kafka.common.replica.LeaderSelector";

/// A Kafka listener besides the first: where it binds and what it advertises.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KafkaListener {
    pub name: String,
    pub bind: SocketAddr,
    pub advertised_host: String,
    pub advertised_port: u16,
}

/// `process.roles`: what a node does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcessRoles {
    /// Serves Kafka clients and hosts partition replicas.
    pub broker: bool,
    /// Votes in the metadata quorum (and may become the active controller).
    pub controller: bool,
}

/// How a node is configured. Defaults are Kafka's unless the field doc says otherwise.
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    /// `node.id`.
    pub node_id: NodeId,
    /// `process.roles`.
    pub process_roles: ProcessRoles,
    /// `controller.quorum.voters`: node id → host:port of its controller listener.
    pub voters: std::collections::BTreeMap<NodeId, String>,
    /// The controller (raft + controller RPC) listener's bind address.
    pub controller_listener: SocketAddr,
    /// host:port other nodes use to reach this node's controller listener.
    pub controller_advertised: String,
    /// `auto.leader.rebalance.enable`: the controller moves leaderships back to preferred
    /// replicas.
    pub auto_leader_rebalance_enable: bool,
    /// `leader.imbalance.check.interval.seconds`.
    pub leader_imbalance_check_interval_seconds: i64,
    /// `replica.lag.time.max.ms`: a follower that has not caught up this long leaves the ISR.
    pub replica_lag_time_max_ms: i64,
    /// `broker.rack`: placement spreads a partition's replicas over racks, and (with
    /// `replica.selector.class`) consumers in the same rack read from this broker (KIP-392).
    pub rack: Option<String>,
    /// `replica.selector.class`: whether a leader points consumers at a replica in their rack.
    pub rack_aware_reads: bool,
    /// `cluster.id`: optional; when unset the quorum picks one at bootstrap.
    pub cluster_id: Option<String>,
    /// `broker.session.timeout.ms`: a broker silent this long is fenced.
    pub broker_session_timeout_ms: i64,
    /// `broker.heartbeat.interval.ms`.
    pub broker_heartbeat_interval_ms: i64,
    /// `log.dirs` (one directory): partition replicas, metadata, `meta.properties`.
    pub data_dir: PathBuf,
    /// The Kafka listener's bind address.
    pub listener: SocketAddr,
    /// The host and port clients are told to connect to (`advertised.listeners`).
    pub advertised_host: String,
    pub advertised_port: u16,
    /// The name of that first Kafka listener (`listeners`), e.g. `PLAINTEXT`.
    pub listener_name: String,
    /// Further Kafka listeners, e.g. an EXTERNAL one for clients outside a container network.
    pub extra_listeners: Vec<KafkaListener>,
    /// Each Kafka listener's security (`listener.security.protocol.map`, `ssl.*`, `sasl.*`),
    /// by listener name; a listener missing here is PLAINTEXT.
    pub listener_security: std::collections::BTreeMap<String, crate::security::ListenerSecurity>,
    /// `authorizer.class.name` = StandardAuthorizer, `super.users` and
    /// `allow.everyone.if.no.acl.found`; `None`: no authorizer, every request is allowed.
    pub authorizer: Option<crate::security::authorizer::Authorizer>,
    /// `super.users` and `allow.everyone.if.no.acl.found` as set, kept for when the
    /// authorizer is enabled by a later key.
    pub authorizer_settings: crate::security::authorizer::Authorizer,
    /// The CONTROLLER listener's TLS when it is mapped to `SSL`; `None`: PLAINTEXT.
    pub controller_tls: Option<crate::security::PeerTls>,
    /// The `ssl.*`, `sasl.*` and `listener.name.*` keys as set, for DescribeConfigs (which
    /// never shows a sensitive one's value).
    pub security_props: crate::security::props::SecurityProps,
    /// `samsa server --add-scram`: SCRAM credentials the cluster is created with.
    pub bootstrap_scram: Vec<crate::security::sasl::scram::BootstrapCredential>,
    /// `num.partitions`: partitions of an auto-created topic or of CreateTopics with -1.
    pub num_partitions: i32,
    /// `default.replication.factor`.
    pub default_replication_factor: i16,
    /// `auto.create.topics.enable`.
    pub auto_create_topics_enable: bool,
    /// `message.max.bytes`: largest record batch (topic override: `max.message.bytes`).
    pub message_max_bytes: i64,
    /// `socket.request.max.bytes`: largest request frame; larger ones close the connection.
    pub socket_request_max_bytes: i64,
    /// `log.segment.bytes`.
    pub log_segment_bytes: i64,
    /// `log.roll.ms`.
    pub log_roll_ms: i64,
    /// `log.retention.ms` (-1: keep forever).
    pub log_retention_ms: i64,
    /// `log.retention.bytes` (-1: no size limit).
    pub log_retention_bytes: i64,
    /// `log.retention.check.interval.ms`.
    pub log_retention_check_interval_ms: i64,
    /// `log.flush.interval.messages`: fsync after this many unflushed records.
    pub log_flush_interval_messages: i64,
    /// `log.flush.interval.ms`: fsync data older than this. samsa's default is 1000 ms, not
    /// Kafka's "never": a single node has no replicas to lean on (see README, "Durability").
    pub log_flush_interval_ms: i64,
    /// `log.flush.scheduler.interval.ms`: how often the flusher looks for due partitions.
    pub log_flush_scheduler_interval_ms: i64,
    /// `log.index.interval.bytes`.
    pub log_index_interval_bytes: i64,
    /// `log.message.timestamp.type`.
    pub log_message_timestamp_type: String,
    /// `compression.type`: the codec topics store (`producer`: as each batch came).
    pub compression_type: String,
    /// `log.message.timestamp.before.max.ms` / `after.max.ms` (KIP-937; unbounded by default).
    pub log_message_timestamp_before_max_ms: i64,
    pub log_message_timestamp_after_max_ms: i64,
    /// `min.insync.replicas`.
    pub min_insync_replicas: i64,
    /// `producer.id.expiration.ms`: idempotent-producer state is forgotten after this idle time.
    pub producer_id_expiration_ms: i64,
    /// `unclean.leader.election.enable`.
    pub unclean_leader_election_enable: bool,
    /// `leader.replication.throttled.rate`: bytes per second this broker sends to followers
    /// (not in the ISR) of the partitions `leader.replication.throttled.replicas` names.
    pub leader_replication_throttled_rate: i64,
    /// `follower.replication.throttled.rate`: bytes per second this broker fetches for the
    /// replicas `follower.replication.throttled.replicas` names (while they are not in the ISR).
    pub follower_replication_throttled_rate: i64,
    /// `replication.quota.window.num` and `replication.quota.window.size.seconds`: the samples
    /// the replication throttles measure their rate over.
    pub replication_quota_window_num: i64,
    pub replication_quota_window_size_seconds: i64,
    /// `quota.window.num` and `quota.window.size.seconds`: the same for client quotas.
    pub quota_window_num: i64,
    pub quota_window_size_seconds: i64,
    /// `admin.listener` (samsa's own key): where `/healthz`, `/readyz` and `/metrics` are
    /// served over HTTP, as `host:port`; none when unset.
    pub admin_listener: Option<SocketAddr>,
    /// `admin.listener.security.protocol`: PLAINTEXT, or SSL with the `listener.name.admin.ssl.*`
    /// keys (see `admin::auth`).
    pub admin_listener_security_protocol: crate::security::SecurityProtocol,
    /// `admin.listener.auth.token.file`: the bearer token every admin endpoint but `/healthz`
    /// requires, when set.
    pub admin_listener_auth_token_file: Option<PathBuf>,
    /// `group.*` and `offsets.*`: the consumer-group coordinator.
    pub group: super::group::GroupConfig,
    /// `log.cleaner.*` and `log.cleanup.policy`.
    pub cleaner: super::cleaner::CleanerConfig,
    /// `transaction.*`: the transaction coordinator.
    pub txn: super::txn::TxnConfig,
    /// The keys set explicitly (file, `SAMSA_*` variables, `--override`): DescribeConfigs
    /// reports them as STATIC_BROKER_CONFIG, the rest as DEFAULT_CONFIG.
    pub explicit: std::collections::BTreeSet<String>,
}

impl BrokerConfig {
    /// The embedded defaults of `samsa dev`: node 1, data in `data_dir`, listening on `listener`.
    pub fn dev(data_dir: PathBuf, listener: SocketAddr) -> Self {
        let controller_listener = SocketAddr::new(listener.ip(), 0);
        BrokerConfig {
            node_id: NodeId(1),
            process_roles: ProcessRoles { broker: true, controller: true },
            voters: std::collections::BTreeMap::new(),
            controller_listener,
            controller_advertised: controller_listener.to_string(),
            replica_lag_time_max_ms: 30_000,
            auto_leader_rebalance_enable: true,
            leader_imbalance_check_interval_seconds: 300,
            rack: None,
            rack_aware_reads: false,
            cluster_id: None,
            broker_session_timeout_ms: 9000,
            broker_heartbeat_interval_ms: 2000,
            data_dir,
            advertised_host: listener.ip().to_string(),
            advertised_port: listener.port(),
            listener_name: "PLAINTEXT".into(),
            extra_listeners: Vec::new(),
            listener_security: Default::default(),
            security_props: Default::default(),
            controller_tls: None,
            bootstrap_scram: Vec::new(),
            authorizer: None,
            authorizer_settings: Default::default(),
            listener,
            num_partitions: 1,
            default_replication_factor: 1,
            auto_create_topics_enable: true,
            message_max_bytes: MESSAGE_MAX_BYTES_DEFAULT,
            socket_request_max_bytes: SOCKET_REQUEST_MAX_BYTES_DEFAULT,
            log_segment_bytes: 1 << 30,
            log_roll_ms: WEEK_MS,
            log_retention_ms: WEEK_MS,
            log_retention_bytes: -1,
            log_retention_check_interval_ms: 300_000,
            log_flush_interval_messages: i64::MAX,
            log_flush_interval_ms: 1000,
            log_flush_scheduler_interval_ms: 200,
            log_index_interval_bytes: 4096,
            log_message_timestamp_type: "CreateTime".into(),
            compression_type: "producer".into(),
            log_message_timestamp_before_max_ms: i64::MAX,
            log_message_timestamp_after_max_ms: i64::MAX,
            min_insync_replicas: 1,
            producer_id_expiration_ms: 86_400_000,
            unclean_leader_election_enable: false,
            leader_replication_throttled_rate: i64::MAX,
            follower_replication_throttled_rate: i64::MAX,
            replication_quota_window_num: 11,
            replication_quota_window_size_seconds: 1,
            quota_window_num: 11,
            quota_window_size_seconds: 1,
            admin_listener: None,
            admin_listener_security_protocol: crate::security::SecurityProtocol::Plaintext,
            admin_listener_auth_token_file: None,
            group: super::group::GroupConfig::dev(),
            cleaner: super::cleaner::CleanerConfig::default(),
            txn: super::txn::TxnConfig::default(),
            explicit: Default::default(),
        }
    }

    /// How listener `name` secures its connections (PLAINTEXT unless configured otherwise).
    pub fn security_of(&self, name: &str) -> crate::security::ListenerSecurity {
        self.listener_security
            .get(name)
            .cloned()
            .unwrap_or_else(crate::security::ListenerSecurity::plaintext)
    }

    /// Applies one `key=value` override with Kafka's key names.
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), ConfigError> {
        self.set_value(key, value)?;
        self.explicit.insert(key.to_string());
        Ok(())
    }

    /// Applies a dynamic config from the metadata log (`config::dynamic`): the value changes,
    /// the key is not recorded as set statically.
    pub fn set_dynamic(&mut self, key: &str, value: &str) -> Result<(), ConfigError> {
        self.set_value(key, value)
    }

    fn set_value(&mut self, key: &str, value: &str) -> Result<(), ConfigError> {
        let ranged = |min: i64, max: i64| parse_ranged(key, value, min, max);
        let long = |min: i64| ranged(min, i64::MAX);
        let int = |min: i64| ranged(min, i64::from(i32::MAX));
        let boolean = || parse_bool(key, value);
        match key {
            "node.id" => self.node_id = NodeId(int(0)? as i32),
            "process.roles" => self.process_roles = parse_roles(value)?,
            "controller.quorum.voters" => self.voters = parse_voters(value)?,
            "auto.leader.rebalance.enable" => self.auto_leader_rebalance_enable = boolean()?,
            "leader.imbalance.check.interval.seconds" => {
                self.leader_imbalance_check_interval_seconds = long(1)?
            }
            "replica.lag.time.max.ms" => self.replica_lag_time_max_ms = long(100)?,
            "authorizer.class.name" => {
                self.authorizer = match value.trim() {
                    "" => None,
                    crate::security::authorizer::STANDARD_AUTHORIZER => {
                        Some(self.authorizer_settings.clone())
                    }
                    _ => {
                        return Err(invalid(
                            key,
                            value,
                            "samsa's authorizer is KRaft's org.apache.kafka.metadata.authorizer.StandardAuthorizer (ACLs in the metadata log); ZooKeeper's AclAuthorizer and custom classes are not available",
                        ));
                    }
                }
            }
            "super.users" => {
                self.authorizer_settings.super_users =
                    crate::security::authorizer::Authorizer::parse_super_users(value);
                if let Some(a) = &mut self.authorizer {
                    a.super_users = self.authorizer_settings.super_users.clone();
                }
            }
            "allow.everyone.if.no.acl.found" => {
                self.authorizer_settings.allow_if_no_acl = boolean()?;
                if let Some(a) = &mut self.authorizer {
                    a.allow_if_no_acl = self.authorizer_settings.allow_if_no_acl;
                }
            }
            "broker.rack" => self.rack = Some(value.trim().to_string()).filter(|s| !s.is_empty()),
            "replica.selector.class" => {
                self.rack_aware_reads = match value.trim() {
                    "" | LEADER_SELECTOR => false,
                    RACK_AWARE_SELECTOR => true,
                    _ => {
                        return Err(invalid(
                            key,
                            value,
                            "samsa knows org.apache.kafka.common.replica.RackAwareReplicaSelector \
                             (consumers read from a replica in their client.rack) and \
                             org.apache.kafka.common.replica.LeaderSelector (the default)",
                        ));
                    }
                }
            }
            "cluster.id" => {
                self.cluster_id = Some(value.trim().to_string()).filter(|s| !s.is_empty())
            }
            "broker.session.timeout.ms" => self.broker_session_timeout_ms = long(100)?,
            "broker.heartbeat.interval.ms" => self.broker_heartbeat_interval_ms = long(10)?,
            "log.dirs" | "log.dir" => self.data_dir = PathBuf::from(value),
            "num.partitions" => self.num_partitions = int(1)? as i32,
            "default.replication.factor" => {
                self.default_replication_factor = ranged(1, i64::from(i16::MAX))? as i16
            }
            "auto.create.topics.enable" => self.auto_create_topics_enable = boolean()?,
            "message.max.bytes" => self.message_max_bytes = int(0)?,
            "socket.request.max.bytes" => self.socket_request_max_bytes = int(1024)?,
            "log.segment.bytes" => self.log_segment_bytes = int(1024)?,
            "log.roll.ms" => self.log_roll_ms = long(1)?,
            "log.retention.ms" => self.log_retention_ms = long(-1)?,
            "log.retention.bytes" => self.log_retention_bytes = long(-1)?,
            "log.retention.check.interval.ms" => self.log_retention_check_interval_ms = long(1)?,
            "log.flush.interval.messages" => self.log_flush_interval_messages = long(1)?,
            "log.flush.interval.ms" => self.log_flush_interval_ms = long(0)?,
            "log.flush.scheduler.interval.ms" => self.log_flush_scheduler_interval_ms = long(1)?,
            "log.index.interval.bytes" => self.log_index_interval_bytes = int(0)?,
            "compression.type" => match value {
                "producer" | "uncompressed" | "gzip" | "snappy" | "lz4" | "zstd" => {
                    self.compression_type = value.into()
                }
                _ => {
                    return Err(invalid(
                        key,
                        value,
                        "must be producer, uncompressed, gzip, snappy, lz4 or zstd",
                    ));
                }
            },
            "log.message.timestamp.type" => match value {
                "CreateTime" | "LogAppendTime" => self.log_message_timestamp_type = value.into(),
                _ => return Err(invalid(key, value, "must be CreateTime or LogAppendTime")),
            },
            "min.insync.replicas" => self.min_insync_replicas = int(1)?,
            "log.message.timestamp.before.max.ms" => {
                self.log_message_timestamp_before_max_ms = long(0)?
            }
            "log.message.timestamp.after.max.ms" => {
                self.log_message_timestamp_after_max_ms = long(0)?
            }
            "producer.id.expiration.ms" => self.producer_id_expiration_ms = long(1)?,
            "unclean.leader.election.enable" => self.unclean_leader_election_enable = boolean()?,
            "leader.replication.throttled.rate" => {
                self.leader_replication_throttled_rate = long(0)?
            }
            "follower.replication.throttled.rate" => {
                self.follower_replication_throttled_rate = long(0)?
            }
            "replication.quota.window.num" => self.replication_quota_window_num = int(1)?,
            "replication.quota.window.size.seconds" => {
                self.replication_quota_window_size_seconds = int(1)?
            }
            "quota.window.num" => self.quota_window_num = int(1)?,
            "quota.window.size.seconds" => self.quota_window_size_seconds = int(1)?,
            "admin.listener.security.protocol" => {
                self.admin_listener_security_protocol =
                    crate::security::SecurityProtocol::parse(value.trim())
                        .ok_or_else(|| invalid(key, value, "must be PLAINTEXT or SSL"))?
            }
            "admin.listener.auth.token.file" => {
                self.admin_listener_auth_token_file = match value.trim() {
                    "" => None,
                    v => Some(PathBuf::from(v)),
                }
            }
            "admin.listener" => {
                self.admin_listener = match value.trim() {
                    "" => None,
                    v => Some(parse_host_port(v).ok_or_else(|| {
                        invalid(key, value, "expected host:port, e.g. 0.0.0.0:9644")
                    })?),
                }
            }
            _ => match self
                .group
                .set(key, value)
                .or_else(|| self.cleaner.set(key, value))
                .or_else(|| self.txn.set(key, value))
            {
                Some(result) => result?,
                None => return Err(ConfigError::UnknownKey(key.into())),
            },
        }
        Ok(())
    }

    /// Applies `key=value` strings in order.
    pub fn apply_overrides<'a>(
        &mut self,
        overrides: impl IntoIterator<Item = &'a str>,
    ) -> Result<(), ConfigError> {
        for kv in overrides {
            let (k, v) = kv.split_once('=').ok_or_else(|| invalid(kv, "", "expected key=value"))?;
            self.set(k.trim(), v.trim())?;
        }
        Ok(())
    }

    /// The value of a topic-level key's broker default, as a string (for DescribeConfigs).
    pub fn topic_default(&self, topic_key: &str) -> Option<String> {
        Some(match topic_key {
            "cleanup.policy" => self.cleaner.cleanup_policy.to_string(),
            "min.cleanable.dirty.ratio" => {
                super::cleaner::format_f64(self.cleaner.min_cleanable_ratio)
            }
            "min.compaction.lag.ms" => self.cleaner.min_compaction_lag_ms.to_string(),
            "max.compaction.lag.ms" => self.cleaner.max_compaction_lag_ms.to_string(),
            "delete.retention.ms" => self.cleaner.delete_retention_ms.to_string(),
            "compression.type" => self.compression_type.clone(),
            "retention.ms" => self.log_retention_ms.to_string(),
            "retention.bytes" => self.log_retention_bytes.to_string(),
            "segment.bytes" => self.log_segment_bytes.to_string(),
            "segment.ms" => self.log_roll_ms.to_string(),
            "max.message.bytes" => self.message_max_bytes.to_string(),
            "min.insync.replicas" => self.min_insync_replicas.to_string(),
            "message.timestamp.type" => self.log_message_timestamp_type.clone(),
            "flush.messages" => self.log_flush_interval_messages.to_string(),
            "flush.ms" => self.log_flush_interval_ms.to_string(),
            "index.interval.bytes" => self.log_index_interval_bytes.to_string(),
            "unclean.leader.election.enable" => self.unclean_leader_election_enable.to_string(),
            // Kafka's defaults for the keys samsa accepts but does not act on (see topic.rs).
            "compression.gzip.level" => "-1".into(),
            "compression.lz4.level" => "9".into(),
            "compression.zstd.level" => "3".into(),
            "file.delete.delay.ms" => "60000".into(),
            "follower.replication.throttled.replicas" => String::new(),
            "leader.replication.throttled.replicas" => String::new(),
            "local.retention.bytes" => "-2".into(),
            "local.retention.ms" => "-2".into(),
            "message.downconversion.enable" => "true".into(),
            "message.format.version" => "3.0-IV1".into(),
            "message.timestamp.after.max.ms" => self.log_message_timestamp_after_max_ms.to_string(),
            "message.timestamp.before.max.ms" => {
                self.log_message_timestamp_before_max_ms.to_string()
            }
            "message.timestamp.difference.max.ms" => i64::MAX.to_string(),
            "preallocate" => "false".into(),
            "remote.log.copy.disable" => "false".into(),
            "remote.log.delete.on.disable" => "false".into(),
            "remote.storage.enable" => "false".into(),
            "segment.index.bytes" => "10485760".into(),
            "segment.jitter.ms" => "0".into(),
            _ => return None,
        })
    }

    /// The broker-level key a topic key defaults from (the "synonym" in DescribeConfigs).
    pub fn broker_synonym(topic_key: &str) -> Option<&'static str> {
        Some(match topic_key {
            "retention.ms" => "log.retention.ms",
            "retention.bytes" => "log.retention.bytes",
            "segment.bytes" => "log.segment.bytes",
            "segment.ms" => "log.roll.ms",
            "max.message.bytes" => "message.max.bytes",
            "min.insync.replicas" => "min.insync.replicas",
            "message.timestamp.type" => "log.message.timestamp.type",
            "flush.messages" => "log.flush.interval.messages",
            "flush.ms" => "log.flush.interval.ms",
            "index.interval.bytes" => "log.index.interval.bytes",
            "unclean.leader.election.enable" => "unclean.leader.election.enable",
            "cleanup.policy" => "log.cleanup.policy",
            "compression.gzip.level" => "compression.gzip.level",
            "compression.lz4.level" => "compression.lz4.level",
            "compression.zstd.level" => "compression.zstd.level",
            "file.delete.delay.ms" => "log.segment.delete.delay.ms",
            "local.retention.bytes" => "log.local.retention.bytes",
            "local.retention.ms" => "log.local.retention.ms",
            "message.downconversion.enable" => "log.message.downconversion.enable",
            "message.format.version" => "log.message.format.version",
            "message.timestamp.after.max.ms" => "log.message.timestamp.after.max.ms",
            "message.timestamp.before.max.ms" => "log.message.timestamp.before.max.ms",
            "message.timestamp.difference.max.ms" => "log.message.timestamp.difference.max.ms",
            "preallocate" => "log.preallocate",
            "segment.index.bytes" => "log.index.size.max.bytes",
            "segment.jitter.ms" => "log.roll.jitter.ms",
            "min.cleanable.dirty.ratio" => "log.cleaner.min.cleanable.ratio",
            "min.compaction.lag.ms" => "log.cleaner.min.compaction.lag.ms",
            "max.compaction.lag.ms" => "log.cleaner.max.compaction.lag.ms",
            "delete.retention.ms" => "log.cleaner.delete.retention.ms",
            "compression.type" => "compression.type",
            _ => return None,
        })
    }

    /// Broker settings shown by DescribeConfigs for a BROKER resource.
    pub fn describe(&self) -> Vec<(&'static str, String)> {
        let mut all = vec![
            ("node.id", self.node_id.0.to_string()),
            ("broker.rack", self.rack.clone().unwrap_or_default()),
            (
                "replica.selector.class",
                if self.rack_aware_reads { RACK_AWARE_SELECTOR } else { "" }.to_string(),
            ),
            ("log.dirs", self.data_dir.display().to_string()),
            ("num.partitions", self.num_partitions.to_string()),
            ("default.replication.factor", self.default_replication_factor.to_string()),
            ("auto.create.topics.enable", self.auto_create_topics_enable.to_string()),
            ("message.max.bytes", self.message_max_bytes.to_string()),
            ("socket.request.max.bytes", self.socket_request_max_bytes.to_string()),
            ("log.segment.bytes", self.log_segment_bytes.to_string()),
            ("log.roll.ms", self.log_roll_ms.to_string()),
            ("log.retention.ms", self.log_retention_ms.to_string()),
            ("log.retention.bytes", self.log_retention_bytes.to_string()),
            ("log.retention.check.interval.ms", self.log_retention_check_interval_ms.to_string()),
            ("log.flush.interval.messages", self.log_flush_interval_messages.to_string()),
            ("log.flush.interval.ms", self.log_flush_interval_ms.to_string()),
            ("log.index.interval.bytes", self.log_index_interval_bytes.to_string()),
            ("log.message.timestamp.type", self.log_message_timestamp_type.clone()),
            ("compression.type", self.compression_type.clone()),
            (
                "log.message.timestamp.before.max.ms",
                self.log_message_timestamp_before_max_ms.to_string(),
            ),
            (
                "log.message.timestamp.after.max.ms",
                self.log_message_timestamp_after_max_ms.to_string(),
            ),
            ("min.insync.replicas", self.min_insync_replicas.to_string()),
            ("producer.id.expiration.ms", self.producer_id_expiration_ms.to_string()),
            ("unclean.leader.election.enable", self.unclean_leader_election_enable.to_string()),
            (
                "leader.replication.throttled.rate",
                self.leader_replication_throttled_rate.to_string(),
            ),
            (
                "follower.replication.throttled.rate",
                self.follower_replication_throttled_rate.to_string(),
            ),
            ("replication.quota.window.num", self.replication_quota_window_num.to_string()),
            (
                "replication.quota.window.size.seconds",
                self.replication_quota_window_size_seconds.to_string(),
            ),
            ("quota.window.num", self.quota_window_num.to_string()),
            ("quota.window.size.seconds", self.quota_window_size_seconds.to_string()),
        ];
        all.extend(self.group.describe());
        all.extend(self.txn.describe());
        all.extend(self.cleaner.describe());
        all
    }
}

/// Resolves `host:port` (an empty host or `0.0.0.0` binds every interface).
fn parse_host_port(v: &str) -> Option<SocketAddr> {
    use std::net::ToSocketAddrs;
    let (host, port) = v.rsplit_once(':')?;
    let port: u16 = port.parse().ok()?;
    let host = if host.is_empty() {
        "0.0.0.0"
    } else {
        host.trim_start_matches('[').trim_end_matches(']')
    };
    (host, port).to_socket_addrs().ok()?.next()
}

/// Parses `process.roles`: `broker`, `controller` or both, comma separated.
pub fn parse_roles(value: &str) -> Result<ProcessRoles, ConfigError> {
    let mut roles = ProcessRoles { broker: false, controller: false };
    for r in value.split(',').map(str::trim).filter(|r| !r.is_empty()) {
        match r {
            "broker" => roles.broker = true,
            "controller" => roles.controller = true,
            _ => return Err(invalid("process.roles", value, "roles are broker and controller")),
        }
    }
    if !roles.broker && !roles.controller {
        return Err(invalid("process.roles", value, "give broker, controller or both"));
    }
    Ok(roles)
}

/// Parses `controller.quorum.voters`: `id@host:port,...`.
pub fn parse_voters(
    value: &str,
) -> Result<std::collections::BTreeMap<NodeId, String>, ConfigError> {
    let key = "controller.quorum.voters";
    let mut voters = std::collections::BTreeMap::new();
    for v in value.split(',').map(str::trim).filter(|v| !v.is_empty()) {
        let (id, addr) = v
            .split_once('@')
            .ok_or_else(|| invalid(key, value, "expected id@host:port entries"))?;
        let id: i32 =
            id.parse().map_err(|_| invalid(key, value, format!("'{id}' is not a node id")))?;
        let (host, port) = addr
            .rsplit_once(':')
            .ok_or_else(|| invalid(key, value, format!("'{addr}' has no port")))?;
        if host.is_empty() || port.parse::<u16>().is_err() {
            return Err(invalid(key, value, format!("'{addr}' is not host:port")));
        }
        if voters.insert(NodeId(id), addr.to_string()).is_some() {
            return Err(invalid(key, value, format!("node {id} is listed twice")));
        }
    }
    Ok(voters)
}

/// An integer setting within `[min, max]`. Out-of-range values are refused with the range,
/// never clamped.
fn parse_ranged(key: &str, value: &str, min: i64, max: i64) -> Result<i64, ConfigError> {
    let v: i64 = value.trim().parse().map_err(|_| invalid(key, value, "not an integer"))?;
    if v < min || v > max {
        let range = if max == i64::MAX {
            format!("must be at least {min}")
        } else {
            format!("must be between {min} and {max}")
        };
        return Err(invalid(key, value, range));
    }
    Ok(v)
}

fn parse_bool(key: &str, value: &str) -> Result<bool, ConfigError> {
    match value.trim() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(invalid(key, value, "must be true or false")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_use_kafka_names_and_refuse_bad_values() {
        let mut c = BrokerConfig::dev("d".into(), "127.0.0.1:9092".parse().expect("addr"));
        c.apply_overrides(["num.partitions=3", "log.retention.ms = -1"]).expect("ok");
        assert_eq!(c.num_partitions, 3);
        assert_eq!(c.log_retention_ms, -1);
        assert!(matches!(c.set("num.partitions", "0"), Err(ConfigError::InvalidValue { .. })));
        // Out of range is refused with the range, not clamped.
        let too_big = c.set("node.id", "3000000000").expect_err("beyond an int");
        assert!(too_big.to_string().contains("between 0 and 2147483647"), "{too_big}");
        assert!(c.set("default.replication.factor", "40000").is_err());
        assert!(matches!(c.set("no.such.key", "1"), Err(ConfigError::UnknownKey(_))));
        assert!(c.apply_overrides(["novalue"]).is_err());
    }

    #[test]
    fn roles_and_voters_parse_kafka_syntax() {
        assert_eq!(
            parse_roles("broker,controller"),
            Ok(ProcessRoles { broker: true, controller: true })
        );
        assert!(parse_roles("").is_err());
        assert!(parse_roles("broker,zookeeper").is_err());
        let v = parse_voters("1@a:9093, 2@b:9093").expect("ok");
        assert_eq!(v.get(&NodeId(2)).map(String::as_str), Some("b:9093"));
        assert!(parse_voters("1@a:9093,1@b:9093").is_err());
        assert!(parse_voters("1@a").is_err());
        assert!(parse_voters("x@a:1").is_err());
    }
}
