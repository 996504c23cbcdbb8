//! The metadata image: the state every metadata command is applied to. Brokers answer Metadata
//! and route requests from their local image; the controller decides against it.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::security::acl::AclBinding;
use crate::security::sasl::scram::{ScramCredential, ScramMechanism};
use crate::types::{LeaderEpoch, NodeId};

/// A registered broker and where clients reach it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerRegistration {
    pub id: NodeId,
    pub host: String,
    pub port: u16,
    pub rack: Option<String>,
    /// Grows each time the broker registers again (after a restart).
    pub epoch: i64,
    /// A fenced broker leads no partition and is absent from Metadata responses.
    pub fenced: bool,
    /// Random per process start: tells a retried registration from a restart.
    #[serde(default)]
    pub incarnation: uuid::Uuid,
    /// host:port where followers fetch partition data from this broker (gRPC).
    #[serde(default)]
    pub replication_addr: String,
    /// Every Kafka listener's advertised address by listener name (`host`/`port` is the
    /// first one's). Clients are told the addresses of the listener they connected to.
    #[serde(default)]
    pub endpoints: BTreeMap<String, (String, u16)>,
}

impl BrokerRegistration {
    /// Where a client that connected through `listener` reaches this broker.
    pub fn endpoint(&self, listener: &str) -> (&str, u16) {
        match self.endpoints.get(listener) {
            Some((host, port)) => (host, *port),
            None => (&self.host, self.port),
        }
    }
}

/// One partition's replica placement and leadership.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionImage {
    pub replicas: Vec<NodeId>,
    pub isr: Vec<NodeId>,
    pub leader: Option<NodeId>,
    pub leader_epoch: LeaderEpoch,
    /// Grows on every change to this partition's state (AlterPartition fencing).
    pub partition_epoch: i32,
    /// Replicas an ongoing reassignment (KIP-455) is adding; they are in `replicas` already and
    /// join the ISR once caught up. Empty when no reassignment is in progress.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub adding_replicas: Vec<NodeId>,
    /// Replicas an ongoing reassignment removes once every target replica is in the ISR.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub removing_replicas: Vec<NodeId>,
}

impl PartitionImage {
    /// Whether a reassignment is in progress.
    pub fn reassigning(&self) -> bool {
        !self.adding_replicas.is_empty() || !self.removing_replicas.is_empty()
    }

    /// The replicas the partition keeps when its reassignment completes (all of them when none
    /// is in progress), in placement order: the first is the preferred leader.
    pub fn target_replicas(&self) -> Vec<NodeId> {
        self.replicas.iter().copied().filter(|r| !self.removing_replicas.contains(r)).collect()
    }
}

/// A topic: its id, partitions and config overrides.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicImage {
    pub name: String,
    pub id: Uuid,
    pub partitions: Vec<PartitionImage>,
    pub configs: BTreeMap<String, String>,
}

/// A block of producer ids handed to one broker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProducerIdBlock {
    pub first: i64,
    pub count: i64,
}

/// The whole metadata state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetadataImage {
    pub cluster_id: Option<String>,
    pub brokers: BTreeMap<NodeId, BrokerRegistration>,
    pub topics: BTreeMap<String, TopicImage>,
    #[serde(skip)]
    pub topic_names_by_id: HashMap<Uuid, String>,
    /// The next producer id no broker has been given.
    pub next_producer_id: i64,
    /// The latest block each broker was given.
    pub producer_id_blocks: BTreeMap<NodeId, ProducerIdBlock>,
    /// SCRAM credentials by user and mechanism (AlterUserScramCredentials).
    #[serde(default)]
    pub scram_credentials: BTreeMap<String, BTreeMap<ScramMechanism, ScramCredential>>,
    /// ACLs by id (CreateAcls), read by the StandardAuthorizer on every broker.
    #[serde(default)]
    pub acls: BTreeMap<Uuid, AclBinding>,
    /// Dynamic broker configs (`config::dynamic`): by resource name, "" for the cluster default
    /// or a node id.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub broker_configs: BTreeMap<String, BTreeMap<String, String>>,
    /// Client quotas (AlterClientQuotas) by entity.
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        with = "super::quotas::by_entity"
    )]
    pub client_quotas: BTreeMap<super::quotas::QuotaEntity, super::quotas::QuotaValues>,
}

impl MetadataImage {
    pub fn topic(&self, name: &str) -> Option<&TopicImage> {
        self.topics.get(name)
    }

    pub fn topic_by_id(&self, id: &Uuid) -> Option<&TopicImage> {
        self.topic_names_by_id.get(id).and_then(|n| self.topics.get(n))
    }

    /// Brokers that may lead partitions.
    pub fn live_brokers(&self) -> impl Iterator<Item = &BrokerRegistration> {
        self.brokers.values().filter(|b| !b.fenced)
    }

    /// Rebuilds the derived id index (after deserializing).
    pub fn reindex(&mut self) {
        self.topic_names_by_id = self.topics.values().map(|t| (t.id, t.name.clone())).collect();
    }
}
