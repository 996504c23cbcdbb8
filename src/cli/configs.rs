//! `samsa configs`, like kafka-configs.sh: describe and alter the dynamic configs of brokers
//! (one broker, or the cluster-wide default with `--entity-default`), topic overrides, and
//! client quotas of users, client ids and a user's client id.
//!
//! Broker and topic changes go through IncrementalAlterConfigs; quotas through
//! AlterClientQuotas and DescribeClientQuotas.

use anyhow::{Context, bail};
use clap::Args;
use kafka_protocol::messages::alter_client_quotas_request::{EntityData, EntryData, OpData};
use kafka_protocol::messages::describe_client_quotas_request::ComponentData;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::{
    AlterClientQuotasRequest, DescribeClientQuotasRequest, DescribeConfigsRequest,
    DescribeConfigsResponse,
};
use kafka_protocol::protocol::StrBytes;

use super::ClientArgs;
use super::admin::{OP_DELETE, OP_SET, RESOURCE_BROKER, RESOURCE_TOPIC, alter_configs};
use super::topic::error_name;
use crate::client::KafkaClient;
use crate::client::cluster::ClusterClient;

#[derive(Debug, Args)]
pub struct ConfigsArgs {
    /// Show the entity's configs (dynamic ones; with --all, every config of a broker).
    #[arg(long, conflicts_with = "alter")]
    pub describe: bool,
    /// Change the entity's configs with --add-config and --delete-config.
    #[arg(long)]
    pub alter: bool,
    /// brokers, topics, users or clients; `--entity-type users --entity-type clients` names a
    /// user's client id.
    #[arg(long = "entity-type", required = true)]
    pub entity_types: Vec<String>,
    /// The entity's name, one per --entity-type, in order.
    #[arg(long = "entity-name")]
    pub entity_names: Vec<String>,
    /// The default entity for the --entity-type given no --entity-name: the cluster-wide broker
    /// default, the default user or the default client id.
    #[arg(long)]
    pub entity_default: bool,
    /// Configs to set, `k1=v1,k2=[a,b]` (a list value in brackets), repeatable.
    #[arg(long)]
    pub add_config: Vec<String>,
    /// Config keys to remove, comma separated, repeatable.
    #[arg(long, value_delimiter = ',')]
    pub delete_config: Vec<String>,
    /// With --describe on a broker: every config, not only the dynamic ones.
    #[arg(long)]
    pub all: bool,
    #[command(flatten)]
    pub client: ClientArgs,
}

/// One entity part: its type and its name (`None`: the default).
type Part = (EntityType, Option<String>);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EntityType {
    Brokers,
    Topics,
    Users,
    Clients,
}

impl EntityType {
    fn parse(s: &str) -> anyhow::Result<Self> {
        Ok(match s {
            "brokers" | "broker" => EntityType::Brokers,
            "topics" | "topic" => EntityType::Topics,
            "users" | "user" => EntityType::Users,
            "clients" | "client" | "client-id" => EntityType::Clients,
            other => {
                bail!("unknown --entity-type '{other}': use brokers, topics, users or clients")
            }
        })
    }

    /// The entity type as client quotas name it.
    fn quota_type(self) -> &'static str {
        match self {
            EntityType::Users => "user",
            _ => "client-id",
        }
    }
}

/// Pairs entity types with names in order; the types past the last name are the default with
/// `--entity-default`, every entity of the type otherwise (describe only).
fn parts(a: &ConfigsArgs) -> anyhow::Result<Vec<(EntityType, Option<Option<String>>)>> {
    let types: Vec<EntityType> =
        a.entity_types.iter().map(|t| EntityType::parse(t)).collect::<anyhow::Result<_>>()?;
    if a.entity_names.len() > types.len() {
        bail!("more --entity-name than --entity-type");
    }
    let mut names = a.entity_names.iter();
    Ok(types
        .into_iter()
        .map(|t| match names.next() {
            Some(n) => (t, Some(Some(n.clone()))),
            None if a.entity_default => (t, Some(None)),
            None => (t, None),
        })
        .collect())
}

/// Splits `k1=v1,k2=[a,b]` at the commas outside brackets.
fn split_configs(items: &[String]) -> anyhow::Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    for item in items {
        let mut depth = 0i32;
        let mut start = 0;
        let mut pieces = Vec::new();
        for (i, c) in item.char_indices() {
            match c {
                '[' => depth += 1,
                ']' => depth -= 1,
                ',' if depth == 0 => {
                    pieces.push(&item[start..i]);
                    start = i + 1;
                }
                _ => {}
            }
        }
        pieces.push(&item[start..]);
        for p in pieces.into_iter().map(str::trim).filter(|p| !p.is_empty()) {
            let (k, v) = p
                .split_once('=')
                .with_context(|| format!("'{p}' is not key=value (--add-config k1=v1,k2=[a,b])"))?;
            let v = v.trim().trim_start_matches('[').trim_end_matches(']');
            out.push((k.trim().to_string(), v.to_string()));
        }
    }
    Ok(out)
}

pub(super) async fn run(a: ConfigsArgs) -> anyhow::Result<()> {
    if a.describe == a.alter {
        bail!("give exactly one of --describe and --alter");
    }
    let parts = parts(&a)?;
    let kinds: Vec<EntityType> = parts.iter().map(|(t, _)| *t).collect();
    match kinds.as_slice() {
        [EntityType::Brokers] | [EntityType::Topics] => {
            let (kind, name) = parts[0].clone();
            if a.alter {
                let name = match name {
                    Some(n) => n,
                    None => {
                        bail!("--alter needs --entity-name (or, for brokers, --entity-default)")
                    }
                };
                alter_resource(&a, kind, name.as_deref().unwrap_or("")).await
            } else {
                describe_resource(&a, kind, name).await
            }
        }
        [EntityType::Users]
        | [EntityType::Clients]
        | [EntityType::Users, EntityType::Clients]
        | [EntityType::Clients, EntityType::Users] => {
            if a.alter {
                let mut entity: Vec<Part> = Vec::new();
                for (t, n) in parts {
                    let Some(n) = n else {
                        bail!(
                            "--alter on quotas needs an --entity-name or --entity-default per --entity-type"
                        );
                    };
                    entity.push((t, n));
                }
                alter_quotas(&a, &entity).await
            } else {
                describe_quotas(&a, &parts).await
            }
        }
        _ => bail!(
            "unsupported --entity-type combination: give brokers, topics, users, clients, or users and clients"
        ),
    }
}

async fn alter_resource(a: &ConfigsArgs, kind: EntityType, name: &str) -> anyhow::Result<()> {
    if kind == EntityType::Topics && name.is_empty() {
        bail!("topics have no default entity: name the topic with --entity-name");
    }
    let mut changes: Vec<(String, i8, Option<String>)> =
        split_configs(&a.add_config)?.into_iter().map(|(k, v)| (k, OP_SET, Some(v))).collect();
    changes.extend(a.delete_config.iter().map(|k| (k.trim().to_string(), OP_DELETE, None)));
    if changes.is_empty() {
        bail!("nothing to change: give --add-config or --delete-config");
    }
    let mut client = KafkaClient::connect(&a.client.bootstrap_server).await?;
    let resource_type = if kind == EntityType::Brokers { RESOURCE_BROKER } else { RESOURCE_TOPIC };
    alter_configs(&mut client, resource_type, name, &changes).await?;
    match (kind, name) {
        (EntityType::Brokers, "") => {
            println!("Completed updating default config for brokers in the cluster.")
        }
        (EntityType::Brokers, n) => println!("Completed updating config for broker {n}."),
        (_, n) => println!("Completed updating config for topic {n}."),
    }
    Ok(())
}

const SOURCES: [&str; 9] = [
    "UNKNOWN",
    "TOPIC_CONFIG",
    "DYNAMIC_BROKER_CONFIG",
    "DYNAMIC_DEFAULT_BROKER_CONFIG",
    "STATIC_BROKER_CONFIG",
    "DEFAULT_CONFIG",
    "DYNAMIC_BROKER_LOGGER_CONFIG",
    "CLIENT_METRICS_CONFIG",
    "GROUP_CONFIG",
];

fn source_name(s: i8) -> &'static str {
    SOURCES.get(s.max(0) as usize).copied().unwrap_or("UNKNOWN")
}

async fn describe_configs(
    client: &mut KafkaClient,
    resource_type: i8,
    name: &str,
) -> anyhow::Result<DescribeConfigsResponse> {
    let mut res = DescribeConfigsResource::default();
    res.resource_type = resource_type;
    res.resource_name = StrBytes::from_string(name.to_string());
    res.configuration_keys = None;
    let mut req = DescribeConfigsRequest::default();
    req.resources = vec![res];
    req.include_synonyms = true;
    let version = client.version::<DescribeConfigsRequest>(4)?;
    let resp = client.send(&req, version).await?;
    if let Some(r) = resp.results.first()
        && r.error_code != 0
    {
        bail!(
            "cannot describe the configs of '{name}': {}{}",
            error_name(r.error_code),
            r.error_message.as_ref().map_or(String::new(), |m| format!(": {m}"))
        );
    }
    Ok(resp)
}

fn print_configs(resp: &DescribeConfigsResponse, keep: impl Fn(i8) -> bool) {
    for r in &resp.results {
        for c in r.configs.iter().filter(|c| keep(c.config_source)) {
            let value = if c.is_sensitive {
                "null".to_string()
            } else {
                c.value.as_ref().map_or("null".into(), |v| v.to_string())
            };
            let synonyms: Vec<String> = c
                .synonyms
                .iter()
                .map(|s| {
                    let v = if c.is_sensitive {
                        "null".to_string()
                    } else {
                        s.value.as_ref().map_or("null".into(), |v| v.to_string())
                    };
                    format!("{}:{}={v}", source_name(s.source), s.name)
                })
                .collect();
            println!(
                "  {}={value} sensitive={} synonyms={{{}}}",
                c.name,
                c.is_sensitive,
                synonyms.join(", ")
            );
        }
    }
}

async fn describe_resource(
    a: &ConfigsArgs,
    kind: EntityType,
    name: Option<Option<String>>,
) -> anyhow::Result<()> {
    let mut cluster = ClusterClient::connect(&a.client.bootstrap_server).await?;
    let md = cluster.refresh(None).await?;
    if kind == EntityType::Topics {
        let topics: Vec<String> = match name {
            Some(Some(n)) => vec![n],
            Some(None) => bail!("topics have no default entity: name the topic with --entity-name"),
            None => {
                md.topics.iter().filter_map(|t| t.name.as_ref().map(|n| n.to_string())).collect()
            }
        };
        for t in topics {
            let resp = describe_configs(cluster.any(), RESOURCE_TOPIC, &t).await?;
            println!("Dynamic configs for topic {t} are:");
            print_configs(&resp, |s| s == 1 || a.all);
        }
        return Ok(());
    }
    let ids: Vec<i32> = match &name {
        Some(Some(n)) => vec![n.parse().with_context(|| format!("broker '{n}' is not a node id"))?],
        Some(None) => Vec::new(),
        None => md.brokers.iter().map(|b| b.node_id.0).collect(),
    };
    for id in ids {
        let resp =
            describe_configs(cluster.broker(id).await?, RESOURCE_BROKER, &id.to_string()).await?;
        if a.all {
            println!("All configs for broker {id} are:");
            print_configs(&resp, |_| true);
        } else {
            println!("Dynamic configs for broker {id} are:");
            print_configs(&resp, |s| s == 2 || s == 3);
        }
    }
    if name.as_ref().is_none_or(Option::is_none) {
        let resp = describe_configs(cluster.any(), RESOURCE_BROKER, "").await?;
        println!("Default configs for brokers in the cluster are:");
        print_configs(&resp, |_| true);
    }
    Ok(())
}

fn entity_words(parts: &[(String, Option<String>)]) -> String {
    parts
        .iter()
        .map(|(t, n)| {
            let what = if t == "user" { "user-principal" } else { "client-id" };
            match n {
                Some(n) => format!("{what} '{n}'"),
                None => format!("the default {what}"),
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// A quota value as kafka-configs prints it (a double: `1048576.0`).
fn quota_value(v: f64) -> String {
    if v.fract() == 0.0 { format!("{v:.1}") } else { v.to_string() }
}

async fn alter_quotas(a: &ConfigsArgs, entity: &[Part]) -> anyhow::Result<()> {
    let mut entry = EntryData::default();
    for (t, n) in entity {
        let mut d = EntityData::default();
        d.entity_type = StrBytes::from_static_str(t.quota_type());
        d.entity_name = n.clone().map(StrBytes::from_string);
        entry.entity.push(d);
    }
    for (k, v) in split_configs(&a.add_config)? {
        let value: f64 =
            v.parse().with_context(|| format!("quota {k}={v}: the value must be a number"))?;
        let mut op = OpData::default();
        op.key = StrBytes::from_string(k);
        op.value = value;
        entry.ops.push(op);
    }
    for k in &a.delete_config {
        let mut op = OpData::default();
        op.key = StrBytes::from_string(k.trim().to_string());
        op.remove = true;
        entry.ops.push(op);
    }
    if entry.ops.is_empty() {
        bail!("nothing to change: give --add-config or --delete-config");
    }
    let mut client = KafkaClient::connect(&a.client.bootstrap_server).await?;
    let mut req = AlterClientQuotasRequest::default();
    req.entries = vec![entry];
    let version = client.version::<AlterClientQuotasRequest>(1)?;
    let resp = client.send(&req, version).await?;
    let words = entity_words(
        &entity.iter().map(|(t, n)| (t.quota_type().to_string(), n.clone())).collect::<Vec<_>>(),
    );
    for e in &resp.entries {
        if e.error_code != 0 {
            bail!(
                "cannot alter the quotas of {words}: {}{}",
                error_name(e.error_code),
                e.error_message.as_ref().map_or(String::new(), |m| format!(": {m}"))
            );
        }
    }
    println!("Completed updating config for {words}.");
    Ok(())
}

async fn describe_quotas(
    a: &ConfigsArgs,
    parts: &[(EntityType, Option<Option<String>>)],
) -> anyhow::Result<()> {
    let mut req = DescribeClientQuotasRequest::default();
    req.strict = true;
    for (t, n) in parts {
        let mut c = ComponentData::default();
        c.entity_type = StrBytes::from_static_str(t.quota_type());
        match n {
            Some(Some(name)) => {
                c.match_type = 0;
                c._match = Some(StrBytes::from_string(name.clone()));
            }
            Some(None) => c.match_type = 1,
            None => c.match_type = 2,
        }
        req.components.push(c);
    }
    let mut client = KafkaClient::connect(&a.client.bootstrap_server).await?;
    let version = client.version::<DescribeClientQuotasRequest>(1)?;
    let resp = client.send(&req, version).await?;
    if resp.error_code != 0 {
        bail!(
            "cannot describe quotas: {}{}",
            error_name(resp.error_code),
            resp.error_message.as_ref().map_or(String::new(), |m| format!(": {m}"))
        );
    }
    for e in resp.entries.unwrap_or_default() {
        let entity: Vec<(String, Option<String>)> = e
            .entity
            .iter()
            .map(|p| (p.entity_type.to_string(), p.entity_name.as_ref().map(|n| n.to_string())))
            .collect();
        let values: Vec<String> =
            e.values.iter().map(|v| format!("{}={}", v.key, quota_value(v.value))).collect();
        println!("Quota configs for {} are {}", entity_words(&entity), values.join(", "));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_config_splits_outside_brackets() {
        let got = split_configs(&[
            "log.retention.ms=1000, leader.replication.throttled.replicas=[0:1,1:2]".to_string(),
        ])
        .expect("parse");
        assert_eq!(
            got,
            vec![
                ("log.retention.ms".to_string(), "1000".to_string()),
                ("leader.replication.throttled.replicas".to_string(), "0:1,1:2".to_string()),
            ]
        );
        assert!(split_configs(&["novalue".to_string()]).is_err());
        assert_eq!(quota_value(1048576.0), "1048576.0");
    }
}
