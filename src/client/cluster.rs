//! Leader-aware access for the tools: one metadata view, one connection per broker, and each
//! partition's requests sent to its leader (like every Kafka client). `--bootstrap-server` may
//! list several brokers; the first reachable one answers the metadata.

use std::collections::{BTreeMap, HashMap};

use anyhow::{Context, bail};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{MetadataRequest, MetadataResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

use super::KafkaClient;

/// Metadata plus connections to brokers by id.
pub struct ClusterClient {
    bootstrap: KafkaClient,
    brokers: BTreeMap<i32, String>,
    conns: HashMap<i32, KafkaClient>,
    /// (topic, partition) → leader id (-1: none).
    leaders: HashMap<(String, i32), i32>,
}

impl ClusterClient {
    /// Connects to the first reachable address of a comma-separated list.
    pub async fn connect(bootstrap: &str) -> anyhow::Result<Self> {
        let bootstrap = KafkaClient::connect(bootstrap).await?;
        Ok(ClusterClient {
            bootstrap,
            brokers: BTreeMap::new(),
            conns: HashMap::new(),
            leaders: HashMap::new(),
        })
    }

    /// The connection to the bootstrap broker (for requests any broker answers).
    pub fn any(&mut self) -> &mut KafkaClient {
        &mut self.bootstrap
    }

    /// Refreshes metadata for `topics` (all when `None`), without auto-creating.
    pub async fn refresh(&mut self, topics: Option<&[String]>) -> anyhow::Result<MetadataResponse> {
        let version = self.bootstrap.version::<MetadataRequest>(12)?;
        let mut req = MetadataRequest::default();
        req.topics = topics.map(|ts| {
            ts.iter()
                .map(|t| {
                    let mut m = MetadataRequestTopic::default();
                    m.name = Some(TopicName(StrBytes::from_string(t.clone())));
                    m
                })
                .collect()
        });
        req.allow_auto_topic_creation = false;
        let md = self.bootstrap.send(&req, version).await.context("Metadata request failed")?;
        self.brokers =
            md.brokers.iter().map(|b| (b.node_id.0, format!("{}:{}", b.host, b.port))).collect();
        for t in &md.topics {
            let Some(name) = &t.name else { continue };
            for p in &t.partitions {
                self.leaders.insert((name.0.to_string(), p.partition_index), p.leader_id.0);
            }
        }
        Ok(md)
    }

    /// The leader of a partition, from the last refresh.
    pub fn leader_of(&self, topic: &str, partition: i32) -> Option<i32> {
        self.leaders.get(&(topic.to_string(), partition)).copied().filter(|l| *l >= 0)
    }

    /// The address of broker `id`.
    pub fn broker_addr(&self, id: i32) -> anyhow::Result<String> {
        self.brokers
            .get(&id)
            .cloned()
            .with_context(|| format!("broker {id} is not in the cluster metadata"))
    }

    /// A connection to broker `id`.
    pub async fn broker(&mut self, id: i32) -> anyhow::Result<&mut KafkaClient> {
        if !self.conns.contains_key(&id) {
            let addr = self
                .brokers
                .get(&id)
                .with_context(|| format!("broker {id} is not in the cluster metadata"))?;
            let client = KafkaClient::connect(addr).await?;
            self.conns.insert(id, client);
        }
        self.conns.get_mut(&id).context("connection vanished")
    }

    /// A connection to the leader of `topic`-`partition`.
    pub async fn leader(
        &mut self,
        topic: &str,
        partition: i32,
    ) -> anyhow::Result<&mut KafkaClient> {
        let Some(id) = self.leader_of(topic, partition) else {
            bail!("partition {topic}-{partition} has no leader right now; retry shortly");
        };
        self.broker(id).await
    }
}
