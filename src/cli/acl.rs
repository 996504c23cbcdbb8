//! `samsa acl add|list|remove`, with `kafka-acls.sh`'s flags: `--allow-principal` /
//! `--deny-principal` with `--allow-host` / `--deny-host`, `--operation`, the resources
//! `--topic`, `--group`, `--transactional-id`, `--cluster` and `--resource-pattern-type`, and
//! the `--producer` / `--consumer` shortcuts (Kafka's expansions: a producer may WRITE,
//! DESCRIBE and CREATE its topics, WRITE and DESCRIBE its transactional ids, and with
//! `--idempotent` IDEMPOTENT_WRITE the cluster; a consumer may READ and DESCRIBE its topics and
//! READ its groups).
//!
//! Invariant: `remove` without a principal removes every ACL of the named resources, as
//! Kafka's; without any resource it refuses rather than remove every ACL of the cluster.

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use kafka_protocol::messages::create_acls_request::AclCreation;
use kafka_protocol::messages::delete_acls_request::DeleteAclsFilter;
use kafka_protocol::messages::{CreateAclsRequest, DeleteAclsRequest, DescribeAclsRequest};
use kafka_protocol::protocol::StrBytes;

use super::ClientArgs;
use super::topic::error_name;
use crate::client::KafkaClient;
use crate::security::acl::{
    AclBinding, CLUSTER_NAME, Operation, PatternType, Permission, ResourceType, WILDCARD,
};

#[derive(Debug, Subcommand)]
pub enum AclCommand {
    /// Add ACLs (every principal × host × operation × resource named).
    Add(AddArgs),
    /// List ACLs, of the named resources or all.
    List(ListArgs),
    /// Remove ACLs of the named resources (all of them unless principals are named).
    Remove(AddArgs),
}

/// The resources a command names.
#[derive(Debug, Args, Clone)]
pub struct Resources {
    #[arg(long = "topic")]
    pub topics: Vec<String>,
    #[arg(long = "group")]
    pub groups: Vec<String>,
    #[arg(long = "transactional-id")]
    pub transactional_ids: Vec<String>,
    /// The cluster resource (kafka-cluster).
    #[arg(long)]
    pub cluster: bool,
    /// literal (default) or prefixed; for list and remove also any or match.
    #[arg(long, default_value = "literal")]
    pub resource_pattern_type: String,
}

#[derive(Debug, Args)]
pub struct AddArgs {
    #[command(flatten)]
    pub resources: Resources,
    /// A principal to allow, `User:alice` or `User:*`. Repeatable.
    #[arg(long = "allow-principal")]
    pub allow_principals: Vec<String>,
    /// A principal to deny. Repeatable.
    #[arg(long = "deny-principal")]
    pub deny_principals: Vec<String>,
    /// Hosts (IP addresses) the allow ACLs apply to; `*` when none is given.
    #[arg(long = "allow-host")]
    pub allow_hosts: Vec<String>,
    /// Hosts the deny ACLs apply to; `*` when none is given.
    #[arg(long = "deny-host")]
    pub deny_hosts: Vec<String>,
    /// Read, Write, Create, Delete, Alter, Describe, ClusterAction, DescribeConfigs,
    /// AlterConfigs, IdempotentWrite or All. Repeatable; All when none is given.
    #[arg(long = "operation")]
    pub operations: Vec<String>,
    /// Producer shortcut: WRITE, DESCRIBE, CREATE on the topics (and the transactional ids).
    #[arg(long)]
    pub producer: bool,
    /// With --producer: IDEMPOTENT_WRITE on the cluster.
    #[arg(long)]
    pub idempotent: bool,
    /// Consumer shortcut: READ, DESCRIBE on the topics, READ on the groups.
    #[arg(long)]
    pub consumer: bool,
    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    #[command(flatten)]
    pub resources: Resources,
    /// Only the ACLs of this principal.
    #[arg(long)]
    pub principal: Option<String>,
    #[command(flatten)]
    pub client: ClientArgs,
}

pub(super) async fn run(cmd: AclCommand) -> anyhow::Result<()> {
    match cmd {
        AclCommand::Add(a) => add(&a).await,
        AclCommand::List(a) => list(&a).await,
        AclCommand::Remove(a) => remove(&a).await,
    }
}

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

fn pattern_type(r: &Resources, concrete: bool) -> anyhow::Result<PatternType> {
    let p = PatternType::parse(&r.resource_pattern_type).with_context(|| {
        format!(
            "--resource-pattern-type {}: use literal, prefixed, any or match",
            r.resource_pattern_type
        )
    })?;
    if concrete && !matches!(p, PatternType::Literal | PatternType::Prefixed) {
        bail!("--resource-pattern-type {}: ACLs are added as literal or prefixed", p.name());
    }
    Ok(p)
}

/// (type, name) of every resource named.
fn resources(r: &Resources) -> Vec<(ResourceType, String)> {
    let mut out = Vec::new();
    out.extend(r.topics.iter().map(|t| (ResourceType::Topic, t.clone())));
    out.extend(r.groups.iter().map(|g| (ResourceType::Group, g.clone())));
    out.extend(r.transactional_ids.iter().map(|t| (ResourceType::TransactionalId, t.clone())));
    if r.cluster {
        out.push((ResourceType::Cluster, CLUSTER_NAME.to_string()));
    }
    out
}

fn operations(names: &[String]) -> anyhow::Result<Vec<Operation>> {
    if names.is_empty() {
        return Ok(vec![Operation::All]);
    }
    names
        .iter()
        .map(|n| {
            Operation::parse(n).with_context(|| {
                format!("--operation {n}: use Read, Write, Create, Delete, Alter, Describe, ClusterAction, DescribeConfigs, AlterConfigs, IdempotentWrite or All")
            })
        })
        .collect()
}

fn check_principal(p: &str) -> anyhow::Result<()> {
    match p.split_once(':') {
        Some((kind, name)) if !kind.is_empty() && !name.is_empty() => Ok(()),
        _ => bail!("principal '{p}': write it as Type:name, such as User:alice or User:*"),
    }
}

/// The (resource, operation) pairs an add or remove covers, shortcuts expanded.
fn grants(a: &AddArgs) -> anyhow::Result<Vec<((ResourceType, String), Operation)>> {
    let named = resources(&a.resources);
    if !a.producer && !a.consumer {
        let ops = operations(&a.operations)?;
        return Ok(named.iter().flat_map(|r| ops.iter().map(move |op| (r.clone(), *op))).collect());
    }
    if !a.operations.is_empty() {
        bail!("--operation cannot be combined with --producer or --consumer");
    }
    if a.resources.topics.is_empty() {
        bail!("--producer and --consumer need at least one --topic");
    }
    if a.consumer && a.resources.groups.is_empty() {
        bail!("--consumer needs --group");
    }
    let mut out = Vec::new();
    for (rt, name) in named {
        let ops: &[Operation] = match (rt, a.producer, a.consumer) {
            (ResourceType::Topic, true, true) => {
                &[Operation::Write, Operation::Describe, Operation::Create, Operation::Read]
            }
            (ResourceType::Topic, true, false) => {
                &[Operation::Write, Operation::Describe, Operation::Create]
            }
            (ResourceType::Topic, false, _) => &[Operation::Read, Operation::Describe],
            (ResourceType::TransactionalId, true, _) => &[Operation::Write, Operation::Describe],
            (ResourceType::Group, _, true) => &[Operation::Read],
            _ => &[],
        };
        out.extend(ops.iter().map(|op| ((rt, name.clone()), *op)));
    }
    if a.producer && a.idempotent {
        out.push(((ResourceType::Cluster, CLUSTER_NAME.to_string()), Operation::IdempotentWrite));
    }
    Ok(out)
}

/// (principal, host, permission) of every ACL an add names.
fn principals(a: &AddArgs) -> anyhow::Result<Vec<(String, String, Permission)>> {
    let hosts = |h: &[String]| if h.is_empty() { vec![WILDCARD.to_string()] } else { h.to_vec() };
    let mut out = Vec::new();
    for (who, hs, perm) in [
        (&a.allow_principals, hosts(&a.allow_hosts), Permission::Allow),
        (&a.deny_principals, hosts(&a.deny_hosts), Permission::Deny),
    ] {
        for p in who {
            check_principal(p)?;
            out.extend(hs.iter().map(|h| (p.clone(), h.clone(), perm)));
        }
    }
    Ok(out)
}

async fn add(a: &AddArgs) -> anyhow::Result<()> {
    let pattern = pattern_type(&a.resources, true)?;
    let grants = grants(a)?;
    if grants.is_empty() {
        bail!("name a resource: --topic, --group, --transactional-id or --cluster");
    }
    let who = principals(a)?;
    if who.is_empty() {
        bail!("name who: --allow-principal or --deny-principal");
    }
    let mut bindings = Vec::new();
    for ((rt, name), op) in &grants {
        for (principal, host, perm) in &who {
            bindings.push(AclBinding {
                resource_type: *rt,
                resource_name: name.clone(),
                pattern_type: pattern,
                principal: principal.clone(),
                host: host.clone(),
                operation: *op,
                permission: *perm,
            });
        }
    }
    let mut req = CreateAclsRequest::default();
    for b in &bindings {
        let mut c = AclCreation::default();
        c.resource_type = b.resource_type.wire();
        c.resource_name = s(&b.resource_name);
        c.resource_pattern_type = b.pattern_type.wire();
        c.principal = s(&b.principal);
        c.host = s(&b.host);
        c.operation = b.operation.wire();
        c.permission_type = b.permission.wire();
        req.creations.push(c);
    }
    let mut conn = KafkaClient::connect(&a.client.bootstrap_server).await?;
    let version = conn.version::<CreateAclsRequest>(3)?;
    let resp = conn.send(&req, version).await.context("CreateAcls failed")?;
    let mut failed = 0;
    for (b, r) in bindings.iter().zip(resp.results) {
        if r.error_code != 0 {
            failed += 1;
            let detail = r.error_message.map(|m| format!(": {m}")).unwrap_or_default();
            eprintln!("cannot add {}: {}{detail}", describe_binding(b), error_name(r.error_code));
        } else {
            outln!("Added {}", describe_binding(b));
        }
    }
    if failed > 0 {
        bail!("{failed} of {} ACLs were not added", bindings.len());
    }
    Ok(())
}

fn describe_binding(b: &AclBinding) -> String {
    format!(
        "ResourcePattern(resourceType={}, name={}, patternType={}): (principal={}, host={}, operation={}, permissionType={})",
        b.resource_type.name(),
        b.resource_name,
        b.pattern_type.name(),
        b.principal,
        b.host,
        b.operation.name(),
        b.permission.name()
    )
}

async fn list(a: &ListArgs) -> anyhow::Result<()> {
    if let Some(p) = &a.principal {
        check_principal(p)?;
    }
    let named = resources(&a.resources);
    let pattern = pattern_type(&a.resources, false)?;
    // No resource named: every ACL.
    let filters: Vec<(ResourceType, Option<String>, PatternType)> = if named.is_empty() {
        vec![(ResourceType::Any, None, PatternType::Any)]
    } else {
        named.into_iter().map(|(rt, n)| (rt, Some(n), pattern)).collect()
    };
    let mut conn = KafkaClient::connect(&a.client.bootstrap_server).await?;
    let version = conn.version::<DescribeAclsRequest>(3)?;
    let mut printed = 0;
    for (rt, name, pt) in filters {
        let mut req = DescribeAclsRequest::default();
        req.resource_type_filter = rt.wire();
        req.resource_name_filter = name.as_deref().map(s);
        req.pattern_type_filter = pt.wire();
        req.principal_filter = a.principal.as_deref().map(s);
        req.host_filter = None;
        req.operation = Operation::Any.wire();
        req.permission_type = Permission::Any.wire();
        let resp = conn.send(&req, version).await.context("DescribeAcls failed")?;
        if resp.error_code != 0 {
            let detail = resp.error_message.map(|m| format!(": {m}")).unwrap_or_default();
            bail!("cannot list ACLs: {}{detail}", error_name(resp.error_code));
        }
        for r in resp.resources {
            let rt = ResourceType::from_wire(r.resource_type).map_or("UNKNOWN", |t| t.name());
            let pt = PatternType::from_wire(r.pattern_type).map_or("UNKNOWN", |p| p.name());
            outln!(
                "Current ACLs for resource `ResourcePattern(resourceType={rt}, name={}, patternType={pt})`:",
                r.resource_name.as_str()
            );
            for acl in r.acls {
                let op = Operation::from_wire(acl.operation).map_or("UNKNOWN", |o| o.name());
                let perm =
                    Permission::from_wire(acl.permission_type).map_or("UNKNOWN", |p| p.name());
                outln!(
                    " \t(principal={}, host={}, operation={op}, permissionType={perm})",
                    acl.principal.as_str(),
                    acl.host.as_str()
                );
                printed += 1;
            }
            outln!();
        }
    }
    if printed == 0 {
        outln!("No ACLs found.");
    }
    Ok(())
}

async fn remove(a: &AddArgs) -> anyhow::Result<()> {
    let pattern = pattern_type(&a.resources, false)?;
    if resources(&a.resources).is_empty() {
        bail!(
            "name the resources whose ACLs to remove: --topic, --group, --transactional-id or --cluster"
        );
    }
    let who = principals(a)?;
    let mut filters = Vec::new();
    let base = |rt: ResourceType, name: &str| {
        let mut f = DeleteAclsFilter::default();
        f.resource_type_filter = rt.wire();
        f.resource_name_filter = Some(s(name));
        f.pattern_type_filter = pattern.wire();
        // The message's defaults are empty strings, which match nothing: unset means any.
        f.principal_filter = None;
        f.host_filter = None;
        f.operation = Operation::Any.wire();
        f.permission_type = Permission::Any.wire();
        f
    };
    if who.is_empty() {
        if !a.operations.is_empty() || a.producer || a.consumer {
            bail!(
                "name the principals whose ACLs to remove (--allow-principal / --deny-principal)"
            );
        }
        for (rt, name) in resources(&a.resources) {
            filters.push(base(rt, &name));
        }
    } else {
        for ((rt, name), op) in grants(a)? {
            for (principal, host, perm) in &who {
                let mut f = base(rt, &name);
                f.principal_filter = Some(s(principal));
                f.host_filter = Some(s(host));
                f.operation = op.wire();
                f.permission_type = perm.wire();
                filters.push(f);
            }
        }
    }
    let mut req = DeleteAclsRequest::default();
    req.filters = filters;
    let mut conn = KafkaClient::connect(&a.client.bootstrap_server).await?;
    let version = conn.version::<DeleteAclsRequest>(3)?;
    let resp = conn.send(&req, version).await.context("DeleteAcls failed")?;
    let mut removed = 0;
    for r in resp.filter_results {
        if r.error_code != 0 {
            let detail = r.error_message.map(|m| format!(": {m}")).unwrap_or_default();
            bail!("cannot remove ACLs: {}{detail}", error_name(r.error_code));
        }
        for m in r.matching_acls {
            let b = AclBinding {
                resource_type: ResourceType::from_wire(m.resource_type)
                    .unwrap_or(ResourceType::Any),
                resource_name: m.resource_name.to_string(),
                pattern_type: PatternType::from_wire(m.pattern_type).unwrap_or(PatternType::Any),
                principal: m.principal.to_string(),
                host: m.host.to_string(),
                operation: Operation::from_wire(m.operation).unwrap_or(Operation::Any),
                permission: Permission::from_wire(m.permission_type).unwrap_or(Permission::Any),
            };
            if m.error_code != 0 {
                eprintln!("cannot remove {}: {}", describe_binding(&b), error_name(m.error_code));
            } else {
                outln!("Removed {}", describe_binding(&b));
                removed += 1;
            }
        }
    }
    if removed == 0 {
        outln!("No ACLs matched.");
    }
    Ok(())
}
