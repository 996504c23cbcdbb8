//! `samsa topic create|list|describe|alter|delete`, like kafka-topics.

use anyhow::{Context, bail};
use clap::Args;
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::{CreateTopicsRequest, DeleteTopicsRequest, DescribeConfigsRequest};
use kafka_protocol::protocol::StrBytes;

use super::admin::{list_offset, list_offset_as, metadata, name};
use super::{ClientArgs, TopicCommand};
use crate::client::KafkaClient;
use crate::client::cluster::ClusterClient;

/// Kafka's name for an error code, for messages.
pub(crate) fn error_name(code: i16) -> String {
    kafka_protocol::ResponseError::try_from_code(code)
        .map_or_else(|| format!("error {code}"), |e| format!("{e:?} ({code})"))
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    pub topic: String,
    #[arg(long, default_value_t = -1, allow_negative_numbers = true)]
    pub partitions: i32,
    #[arg(long, default_value_t = -1, allow_negative_numbers = true)]
    pub replication_factor: i16,
    /// A topic config, e.g. `--config retention.ms=60000`. Repeatable.
    #[arg(long = "config", value_name = "KEY=VALUE")]
    pub configs: Vec<String>,
    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Debug, Args)]
pub struct DescribeArgs {
    /// Topics to describe (all when none is given).
    pub topics: Vec<String>,
    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Debug, Args)]
pub struct AlterArgs {
    pub topic: String,
    #[arg(long = "config", value_name = "KEY=VALUE")]
    pub configs: Vec<String>,
    #[arg(long = "delete-config", value_name = "KEY")]
    pub delete_configs: Vec<String>,
    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Debug, Args)]
pub struct DeleteArgs {
    pub topic: String,
    #[command(flatten)]
    pub client: ClientArgs,
}

fn split_kv(kv: &str) -> anyhow::Result<(String, String)> {
    let (k, v) = kv.split_once('=').with_context(|| format!("'{kv}' is not KEY=VALUE"))?;
    Ok((k.trim().to_string(), v.trim().to_string()))
}

pub(super) async fn run(cmd: TopicCommand) -> anyhow::Result<()> {
    match cmd {
        TopicCommand::Create(a) => create(a).await,
        TopicCommand::List(c) => list(c).await,
        TopicCommand::Describe(a) => describe(a).await,
        TopicCommand::Alter(a) => alter(a).await,
        TopicCommand::Delete(a) => delete(a).await,
        TopicCommand::Reassign(a) => super::reassign::reassign(a).await,
    }
}

async fn create(a: CreateArgs) -> anyhow::Result<()> {
    let mut client = KafkaClient::connect(&a.client.bootstrap_server).await?;
    let mut t = CreatableTopic::default();
    t.name = name(&a.topic);
    t.num_partitions = a.partitions;
    t.replication_factor = a.replication_factor;
    for kv in &a.configs {
        let (k, v) = split_kv(kv)?;
        let mut c = CreatableTopicConfig::default();
        c.name = StrBytes::from_string(k);
        c.value = Some(StrBytes::from_string(v));
        t.configs.push(c);
    }
    let mut req = CreateTopicsRequest::default();
    req.topics = vec![t];
    req.timeout_ms = 30_000;
    let version = client.version::<CreateTopicsRequest>(7)?;
    let resp = client.send(&req, version).await?;
    let r = resp.topics.first().context("empty CreateTopics response")?;
    if r.error_code != 0 {
        bail!(
            "cannot create topic '{}': {}{}",
            a.topic,
            error_name(r.error_code),
            r.error_message.as_ref().map_or(String::new(), |m| format!(": {m}"))
        );
    }
    outln!(
        "Created topic {} ({} partitions, replication factor {}).",
        a.topic,
        r.num_partitions,
        r.replication_factor
    );
    Ok(())
}

async fn list(c: ClientArgs) -> anyhow::Result<()> {
    let mut client = KafkaClient::connect(&c.bootstrap_server).await?;
    let md = metadata(&mut client, None).await?;
    let mut names: Vec<String> =
        md.topics.iter().filter_map(|t| t.name.as_ref().map(|n| n.0.to_string())).collect();
    names.sort();
    for n in names {
        outln!("{n}");
    }
    Ok(())
}

async fn describe(a: DescribeArgs) -> anyhow::Result<()> {
    let mut cluster = ClusterClient::connect(&a.client.bootstrap_server).await?;
    let filter = (!a.topics.is_empty()).then_some(a.topics.as_slice());
    let md = cluster.refresh(filter).await?;
    let mut topics = md.topics;
    topics.sort_by(|x, y| x.name.cmp(&y.name));
    for t in topics {
        let tname = t.name.as_ref().map(|n| n.0.to_string()).unwrap_or_default();
        if t.error_code != 0 {
            bail!("cannot describe topic '{tname}': {}", error_name(t.error_code));
        }
        let rf = t.partitions.first().map_or(0, |p| p.replica_nodes.len());
        let configs = topic_overrides(cluster.any(), &tname).await?;
        outln!(
            "Topic: {tname}\tTopicId: {}\tPartitionCount: {}\tReplicationFactor: {rf}\tConfigs: {configs}",
            t.topic_id,
            t.partitions.len()
        );
        let mut parts = t.partitions;
        parts.sort_by_key(|p| p.partition_index);
        for p in parts {
            let (start, hw, leo, dir) = match cluster.leader(&tname, p.partition_index).await {
                Ok(leader) => (
                    list_offset(leader, &tname, p.partition_index, -2).await.unwrap_or(-1),
                    list_offset(leader, &tname, p.partition_index, -1).await.unwrap_or(-1),
                    list_offset_as(leader, &tname, p.partition_index, -1, -2).await.unwrap_or(-1),
                    log_dir_entry(leader, &tname, p.partition_index).await.ok().flatten(),
                ),
                Err(_) => (-1, -1, -1, None),
            };
            // The leader replica's size, and for a compacted topic where its cleaner stands.
            let mut extra = String::new();
            if let Some((size, cleaner)) = dir {
                extra.push_str(&format!("\tSize: {size}"));
                if let Some((position, ratio)) = cleaner {
                    extra.push_str(&format!(
                        "\tCleanerPosition: {position}\tDirtyRatio: {ratio:.3}"
                    ));
                }
            }
            let state = if p.leader_id.0 < 0 {
                "\tOFFLINE"
            } else if p.isr_nodes.len() < p.replica_nodes.len() {
                "\tUNDER-REPLICATED"
            } else {
                ""
            };
            let ids = |v: &[kafka_protocol::messages::BrokerId]| {
                v.iter().map(|b| b.0.to_string()).collect::<Vec<_>>().join(",")
            };
            outln!(
                "\tTopic: {tname}\tPartition: {}\tLeader: {}\tLeaderEpoch: {}\tReplicas: {}\tIsr: {}\tLogStartOffset: {start}\tHighWatermark: {hw}\tLogEndOffset: {leo}{extra}{state}",
                p.partition_index,
                p.leader_id.0,
                p.leader_epoch,
                ids(&p.replica_nodes),
                ids(&p.isr_nodes)
            );
        }
    }
    Ok(())
}

/// The size of a partition's replica on the broker `client` talks to and, for a compacted topic,
/// its cleaner's position and dirty ratio (DescribeLogDirs with samsa's tagged field). `None`
/// when the broker does not host it or does not answer DescribeLogDirs v2+.
async fn log_dir_entry(
    client: &mut KafkaClient,
    topic: &str,
    partition: i32,
) -> anyhow::Result<Option<(i64, Option<(i64, f64)>)>> {
    use crate::kafka::extensions::{CLEANER_TAG, decode_cleaner_tag};
    use kafka_protocol::messages::DescribeLogDirsRequest;
    use kafka_protocol::messages::describe_log_dirs_request::DescribableLogDirTopic;
    let version = client.version::<DescribeLogDirsRequest>(4)?;
    if version < 2 {
        return Ok(None);
    }
    let mut t = DescribableLogDirTopic::default();
    t.topic = kafka_protocol::messages::TopicName(StrBytes::from_string(topic.to_string()));
    t.partitions = vec![partition];
    let mut req = DescribeLogDirsRequest::default();
    req.topics = Some(vec![t]);
    let resp = client.send(&req, version).await?;
    let found = resp
        .results
        .iter()
        .flat_map(|r| &r.topics)
        .filter(|t| t.name.0.as_str() == topic)
        .flat_map(|t| &t.partitions)
        .find(|p| p.partition_index == partition);
    Ok(found.map(|p| {
        let cleaner = p.unknown_tagged_fields.get(&CLEANER_TAG).and_then(|b| decode_cleaner_tag(b));
        (p.partition_size, cleaner)
    }))
}

/// The topic's non-default configs, as `k=v,k=v`.
async fn topic_overrides(client: &mut KafkaClient, topic: &str) -> anyhow::Result<String> {
    let mut res = DescribeConfigsResource::default();
    res.resource_type = 2;
    res.resource_name = StrBytes::from_string(topic.to_string());
    res.configuration_keys = None;
    let mut req = DescribeConfigsRequest::default();
    req.resources = vec![res];
    let version = client.version::<DescribeConfigsRequest>(4)?;
    let resp = client.send(&req, version).await?;
    let mut out = Vec::new();
    for r in resp.results {
        for c in r.configs {
            if c.config_source == 1 {
                out.push(format!(
                    "{}={}",
                    c.name,
                    c.value.map(|v| v.to_string()).unwrap_or_default()
                ));
            }
        }
    }
    Ok(out.join(","))
}

async fn alter(a: AlterArgs) -> anyhow::Result<()> {
    use super::admin::{OP_DELETE, OP_SET, RESOURCE_TOPIC, alter_configs};
    let mut client = KafkaClient::connect(&a.client.bootstrap_server).await?;
    let mut changes = Vec::new();
    for kv in &a.configs {
        let (k, v) = split_kv(kv)?;
        changes.push((k, OP_SET, Some(v)));
    }
    changes.extend(a.delete_configs.iter().map(|k| (k.clone(), OP_DELETE, None)));
    alter_configs(&mut client, RESOURCE_TOPIC, &a.topic, &changes).await?;
    outln!("Altered configs of topic {}.", a.topic);
    Ok(())
}

async fn delete(a: DeleteArgs) -> anyhow::Result<()> {
    let mut client = KafkaClient::connect(&a.client.bootstrap_server).await?;
    let version = client.version::<DeleteTopicsRequest>(6)?;
    let mut req = DeleteTopicsRequest::default();
    req.timeout_ms = 30_000;
    if version >= 6 {
        let mut s = DeleteTopicState::default();
        s.name = Some(name(&a.topic));
        req.topics = vec![s];
    } else {
        req.topic_names = vec![name(&a.topic)];
    }
    let resp = client.send(&req, version).await?;
    let r = resp.responses.first().context("empty DeleteTopics response")?;
    if r.error_code != 0 {
        bail!("cannot delete topic '{}': {}", a.topic, error_name(r.error_code));
    }
    outln!("Deleted topic {}.", a.topic);
    Ok(())
}
