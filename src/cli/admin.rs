//! Requests the client tools share: metadata and offset lookups.

use anyhow::{Context, bail};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{
    BrokerId, FindCoordinatorRequest, ListOffsetsRequest, MetadataRequest, MetadataResponse,
    TopicName,
};
use kafka_protocol::protocol::StrBytes;

use crate::client::KafkaClient;
use crate::client::cluster::ClusterClient;

/// The node coordinating `key` (key type 0: a group, 1: a transactional id), retrying while
/// the coordinator loads or moves (up to 10 s); `Err` carries the last error's name.
pub(super) async fn find_coordinator(
    cluster: &mut ClusterClient,
    key: &str,
    key_type: i8,
) -> anyhow::Result<Result<i32, String>> {
    cluster.refresh(Some(&[])).await?;
    let mut last = String::new();
    for _ in 0..50 {
        let client = cluster.any();
        let version = client.version::<FindCoordinatorRequest>(3)?;
        let mut req = FindCoordinatorRequest::default();
        req.key = StrBytes::from_string(key.to_string());
        req.key_type = key_type;
        let resp = client.send(&req, version).await?;
        if resp.error_code == 0 {
            return Ok(Ok(resp.node_id.0));
        }
        last = super::topic::error_name(resp.error_code);
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    Ok(Err(last))
}

pub(super) fn name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_string()))
}

/// Metadata for `topics` (all when `None`), without auto-creating anything.
pub(super) async fn metadata(
    client: &mut KafkaClient,
    topics: Option<&[String]>,
) -> anyhow::Result<MetadataResponse> {
    let version = client.version::<MetadataRequest>(12)?;
    let mut req = MetadataRequest::default();
    req.topics = topics.map(|ts| {
        ts.iter()
            .map(|t| {
                let mut m = MetadataRequestTopic::default();
                m.name = Some(name(t));
                m
            })
            .collect()
    });
    req.allow_auto_topic_creation = false;
    client.send(&req, version).await.context("Metadata request failed")
}

/// The number of partitions of `topic` (refreshing the cluster's view of its leaders), failing
/// clearly if it does not exist.
pub(super) async fn partition_count(
    cluster: &mut ClusterClient,
    topic: &str,
) -> anyhow::Result<i32> {
    let md = cluster.refresh(Some(&[topic.to_string()])).await?;
    let t = md.topics.first().context("empty Metadata response")?;
    match t.error_code {
        0 => Ok(t.partitions.len() as i32),
        code if code == crate::error_code::ErrorCode::TopicAuthorizationFailed.code() => bail!(
            "not authorized to access topic '{topic}' ({}); an admin can allow it with `samsa acl add --allow-principal User:NAME --producer|--consumer --topic {topic}`",
            super::topic::error_name(t.error_code)
        ),
        code => bail!(
            "topic '{topic}' is not available ({}); create it with `samsa topic create {topic}`",
            super::topic::error_name(code)
        ),
    }
}

/// ListOffsets for one partition at `timestamp` (-1 latest, -2 earliest).
pub(super) async fn list_offset(
    client: &mut KafkaClient,
    topic: &str,
    partition: i32,
    timestamp: i64,
) -> anyhow::Result<i64> {
    list_offset_as(client, topic, partition, timestamp, -1).await
}

/// ListOffsets as `replica_id` (-2: Kafka's debugging id, for which latest is the log end
/// offset instead of the high watermark).
pub(super) async fn list_offset_as(
    client: &mut KafkaClient,
    topic: &str,
    partition: i32,
    timestamp: i64,
    replica_id: i32,
) -> anyhow::Result<i64> {
    let version = client.version::<ListOffsetsRequest>(8)?;
    let mut p = ListOffsetsPartition::default();
    p.partition_index = partition;
    p.timestamp = timestamp;
    let mut t = ListOffsetsTopic::default();
    t.name = name(topic);
    t.partitions = vec![p];
    let mut req = ListOffsetsRequest::default();
    req.replica_id = BrokerId(replica_id);
    req.topics = vec![t];
    let resp = client.send(&req, version).await?;
    let p = resp
        .topics
        .first()
        .and_then(|t| t.partitions.first())
        .context("empty ListOffsets response")?;
    if p.error_code != 0 {
        bail!("ListOffsets for {topic}-{partition} failed with error {}", p.error_code);
    }
    Ok(p.offset)
}

/// IncrementalAlterConfigs operations, as Kafka numbers them.
pub(super) const OP_SET: i8 = 0;
pub(super) const OP_DELETE: i8 = 1;
pub(super) const OP_APPEND: i8 = 2;

/// Config resource types.
pub(super) const RESOURCE_TOPIC: i8 = 2;
pub(super) const RESOURCE_BROKER: i8 = 4;

/// One config change: key, operation, value.
pub(super) type ConfigChange = (String, i8, Option<String>);

/// Applies `changes` to one config resource with IncrementalAlterConfigs; fails naming the
/// resource and Kafka's error.
pub(super) async fn alter_configs(
    client: &mut KafkaClient,
    resource_type: i8,
    resource_name: &str,
    changes: &[ConfigChange],
) -> anyhow::Result<()> {
    use kafka_protocol::messages::IncrementalAlterConfigsRequest;
    use kafka_protocol::messages::incremental_alter_configs_request::{
        AlterConfigsResource, AlterableConfig,
    };
    let mut res = AlterConfigsResource::default();
    res.resource_type = resource_type;
    res.resource_name = StrBytes::from_string(resource_name.to_string());
    for (key, op, value) in changes {
        let mut c = AlterableConfig::default();
        c.name = StrBytes::from_string(key.clone());
        c.config_operation = *op;
        c.value = value.clone().map(StrBytes::from_string);
        res.configs.push(c);
    }
    let mut req = IncrementalAlterConfigsRequest::default();
    req.resources = vec![res];
    let version = client.version::<IncrementalAlterConfigsRequest>(1)?;
    let resp = client.send(&req, version).await?;
    let r = resp.responses.first().context("empty IncrementalAlterConfigs response")?;
    if r.error_code != 0 {
        let what = match (resource_type, resource_name) {
            (RESOURCE_BROKER, "") => "the cluster-wide broker default".to_string(),
            (RESOURCE_BROKER, n) => format!("broker {n}"),
            (_, n) => format!("topic '{n}'"),
        };
        bail!(
            "cannot alter the configs of {what}: {}{}",
            super::topic::error_name(r.error_code),
            r.error_message.as_ref().map_or(String::new(), |m| format!(": {m}"))
        );
    }
    Ok(())
}
