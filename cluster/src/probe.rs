//! The runner's own eyes on the cluster, over the Kafka protocol (samsa's small client): who
//! leads each workload partition (leader, epoch, ISR), who is the active controller (DescribeQuorum),
//! a group's committed offsets, the final read of each partition, and the topic list.
//!
//! Every request is bounded by [`REQUEST_TIMEOUT`]: a frozen node accepts connections but never
//! answers, and must not stall the probe. Views ask every node at once and keep, per partition,
//! the answer with the highest leader epoch (on a tie, the active controller's), since a
//! restarted or cut-off node may still serve old metadata.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use anyhow::{Context, bail};
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::describe_quorum_request::{PartitionData, TopicData};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
use kafka_protocol::messages::{
    CreateTopicsRequest, DescribeAclsRequest, DescribeQuorumRequest,
    DescribeUserScramCredentialsRequest, FindCoordinatorRequest, GroupId, MetadataRequest,
    OffsetFetchRequest, TopicName,
};
use kafka_protocol::protocol::{Request, StrBytes};
use samsa::client::KafkaClient;
use samsa::client::records::{decode_records, fetch_request};
use tokio::task::JoinSet;

/// Tries an admin request (create a topic, reassign a partition) makes through the nodes.
const ADMIN_ATTEMPTS: usize = 30;
/// Pause between those tries (an election in progress).
const ADMIN_RETRY_PAUSE: Duration = Duration::from_millis(500);
/// How long one node may take to answer one.
const ADMIN_ANSWER_WAIT: Duration = Duration::from_secs(15);

/// One record of a final read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FinalRecord {
    pub offset: i64,
    /// The record's key (the compacted topic's records have one).
    pub key: Option<String>,
    pub value: String,
    /// (producer id, producer epoch) of the record's batch; None without a producer id.
    pub session: Option<(i64, i16)>,
}

/// The offset after the last whole batch in `bytes` (v2 headers: base offset at 0, length at 8,
/// last offset delta at 23).
pub(crate) fn batches_end(mut bytes: &[u8]) -> Option<i64> {
    let mut end = None;
    while bytes.len() >= 61 {
        let be = |at: usize, n: usize| {
            bytes[at..at + n].iter().fold(0i64, |a, b| a << 8 | i64::from(*b))
        };
        let base = be(0, 8);
        let len = usize::try_from(be(8, 4) as i32).ok()? + 12;
        let delta = be(23, 4) as i32;
        if len > bytes.len() {
            break;
        }
        end = Some(base + i64::from(delta) + 1);
        bytes = &bytes[len..];
    }
    end
}

/// How long one request (connect included) may take.
pub const REQUEST_TIMEOUT: Duration = Duration::from_millis(1000);
/// Largest slice of a partition one fetch of the final read asks for.
const FETCH_BYTES_MAX: i32 = 4 << 20;
/// TOPIC_ALREADY_EXISTS: a retried creation that had succeeded.
const TOPIC_ALREADY_EXISTS: i16 = 36;
const METADATA_TOPIC: &str = "__cluster_metadata";

/// One partition's leadership as a node reported it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionView {
    pub leader: i32,
    pub epoch: i32,
    pub isr: Vec<i32>,
    pub replicas: Vec<i32>,
}

/// The cluster as the probe last saw it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClusterView {
    pub partitions: BTreeMap<i32, PartitionView>,
    /// (active controller, raft term), if any node knew one.
    pub controller: Option<(i32, i64)>,
    /// Nodes that answered.
    pub answered: Vec<i32>,
}

impl ClusterView {
    /// Every partition has a leader and its whole replica set in the ISR, and a controller is
    /// known.
    pub fn healthy(&self, partitions: i32) -> bool {
        self.controller.is_some()
            && (0..partitions).all(|p| {
                self.partitions.get(&p).is_some_and(|v| {
                    v.leader >= 0 && !v.replicas.is_empty() && v.isr.len() == v.replicas.len()
                })
            })
    }

    /// What is missing for [`ClusterView::healthy`], for messages.
    pub fn unhealthy_reason(&self, partitions: i32) -> String {
        let mut out = Vec::new();
        if self.controller.is_none() {
            out.push("no active controller known".to_string());
        }
        for p in 0..partitions {
            match self.partitions.get(&p) {
                None => out.push(format!("p{p} unknown")),
                Some(v) if v.leader < 0 => out.push(format!("p{p} has no leader")),
                Some(v) if v.isr.len() != v.replicas.len() => {
                    out.push(format!("p{p} isr {:?} of replicas {:?}", v.isr, v.replicas))
                }
                Some(_) => {}
            }
        }
        if out.is_empty() { "healthy".into() } else { out.join("; ") }
    }
}

/// Connections to each node, reopened on demand.
pub struct Probe {
    nodes: Vec<(i32, String)>,
    conns: HashMap<i32, KafkaClient>,
    /// A second connection per node for DescribeQuorum, asked alongside Metadata.
    quorum_conns: HashMap<i32, KafkaClient>,
}

/// One bounded request on a connection; the connection is dropped on any failure.
async fn call<R: Request>(
    conn: &mut Option<KafkaClient>,
    addr: &str,
    req: &R,
    version_max: i16,
) -> Option<R::Response> {
    let attempt = async {
        if conn.is_none() {
            *conn = Some(KafkaClient::connect(addr).await.ok()?);
        }
        let c = conn.as_mut()?;
        let v = c.version::<R>(version_max).ok()?;
        c.send(req, v).await.ok()
    };
    match tokio::time::timeout(REQUEST_TIMEOUT, attempt).await {
        Ok(Some(r)) => Some(r),
        _ => {
            *conn = None;
            None
        }
    }
}

fn topic_name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_string()))
}

/// What one node says: its partitions of `topic`, and the quorum leader and term. The two
/// questions go out at once, each on its own connection, so a slow answer to one (a node still
/// starting) does not delay the other.
async fn node_view(
    conns: (Option<KafkaClient>, Option<KafkaClient>),
    addr: String,
    topic: String,
) -> (
    (Option<KafkaClient>, Option<KafkaClient>),
    Option<BTreeMap<i32, PartitionView>>,
    Option<(i32, i64)>,
) {
    let (mut md_conn, mut q_conn) = conns;
    let mut md = MetadataRequest::default();
    let mut t = MetadataRequestTopic::default();
    t.name = Some(topic_name(&topic));
    md.topics = Some(vec![t]);
    md.allow_auto_topic_creation = false;
    let mut q = DescribeQuorumRequest::default();
    let mut part = PartitionData::default();
    part.partition_index = 0;
    let mut td = TopicData::default();
    td.topic_name = topic_name(METADATA_TOPIC);
    td.partitions = vec![part];
    q.topics = vec![td];
    let (metadata, quorum) =
        tokio::join!(call(&mut md_conn, &addr, &md, 12), call(&mut q_conn, &addr, &q, 2));
    let partitions = metadata.map(|resp| {
        let mut out = BTreeMap::new();
        for t in resp.topics.iter().filter(|t| t.error_code == 0) {
            for p in &t.partitions {
                out.insert(
                    p.partition_index,
                    PartitionView {
                        leader: p.leader_id.0,
                        epoch: p.leader_epoch,
                        isr: p.isr_nodes.iter().map(|b| b.0).collect(),
                        replicas: p.replica_nodes.iter().map(|b| b.0).collect(),
                    },
                );
            }
        }
        out
    });
    let controller = quorum.and_then(|resp| {
        let p = resp.topics.first()?.partitions.first()?;
        (p.leader_id.0 >= 0).then_some((p.leader_id.0, i64::from(p.leader_epoch)))
    });
    ((md_conn, q_conn), partitions, controller)
}

impl Probe {
    /// `nodes`: (node id, Kafka address).
    pub fn new(nodes: Vec<(i32, String)>) -> Self {
        Probe { nodes, conns: HashMap::new(), quorum_conns: HashMap::new() }
    }

    /// Asks every node at once and merges the answers.
    pub async fn view(&mut self, topic: &str) -> ClusterView {
        let mut set = JoinSet::new();
        for (id, addr) in &self.nodes {
            let conns = (self.conns.remove(id), self.quorum_conns.remove(id));
            let (id, addr, topic) = (*id, addr.clone(), topic.to_string());
            set.spawn(async move { (id, node_view(conns, addr, topic).await) });
        }
        let mut answers = Vec::new();
        while let Some(joined) = set.join_next().await {
            let Ok((id, ((md_conn, q_conn), partitions, controller))) = joined else { continue };
            if let Some(c) = md_conn {
                self.conns.insert(id, c);
            }
            if let Some(c) = q_conn {
                self.quorum_conns.insert(id, c);
            }
            answers.push((id, partitions, controller));
        }
        let mut view = ClusterView::default();
        for (id, partitions, controller) in &answers {
            if partitions.is_some() || controller.is_some() {
                view.answered.push(*id);
            }
            if let Some(c) = controller
                && view.controller.is_none_or(|(_, term)| c.1 > term)
            {
                view.controller = Some(*c);
            }
        }
        view.answered.sort();
        let active = view.controller.map(|(id, _)| id);
        for (id, partitions, _) in &answers {
            for (p, pv) in partitions.iter().flatten() {
                let better = match view.partitions.get(p) {
                    None => true,
                    Some(cur) => {
                        pv.epoch > cur.epoch || (pv.epoch == cur.epoch && Some(*id) == active)
                    }
                };
                if better {
                    view.partitions.insert(*p, pv.clone());
                }
            }
        }
        view
    }

    fn addr(&self, id: i32) -> Option<String> {
        self.nodes.iter().find(|(n, _)| *n == id).map(|(_, a)| a.clone())
    }

    /// One request to node `id` on its kept connection.
    async fn ask<R: Request>(&mut self, id: i32, req: &R, version_max: i16) -> Option<R::Response> {
        let addr = self.addr(id)?;
        let mut conn = self.conns.remove(&id);
        let out = call(&mut conn, &addr, req, version_max).await;
        if let Some(c) = conn {
            self.conns.insert(id, c);
        }
        out
    }

    /// The group's committed offsets of `topic` (partition → next offset; absent when none),
    /// from the coordinator that node `via` names. Asking the active controller's node gives the
    /// cluster's current coordinator: a coordinator cut off from its peers still believes it is
    /// one, and answers with what it knew when it was cut off (Kafka's brokers do the same).
    pub async fn committed(
        &mut self,
        group: &str,
        topic: &str,
        partitions: i32,
        via: i32,
    ) -> Option<BTreeMap<i32, i64>> {
        let mut find = FindCoordinatorRequest::default();
        find.key = StrBytes::from_string(group.to_string());
        let r = self.ask(via, &find, 3).await?;
        let coordinator = (r.error_code == 0).then_some(r.node_id.0);
        let mut req = OffsetFetchRequest::default();
        req.group_id = GroupId(StrBytes::from_string(group.to_string()));
        let mut t = OffsetFetchRequestTopic::default();
        t.name = topic_name(topic);
        t.partition_indexes = (0..partitions).collect();
        req.topics = Some(vec![t]);
        let resp = self.ask(coordinator?, &req, 7).await?;
        if resp.error_code != 0 {
            return None;
        }
        let mut out = BTreeMap::new();
        for t in &resp.topics {
            for p in &t.partitions {
                if p.error_code != 0 {
                    return None;
                }
                if p.committed_offset >= 0 {
                    out.insert(p.partition_index, p.committed_offset);
                }
            }
        }
        Some(out)
    }

    /// Every topic (internal ones included) with its partition count.
    pub async fn topics(&mut self) -> Option<BTreeMap<String, i32>> {
        let mut md = MetadataRequest::default();
        md.topics = None;
        for (id, _) in self.nodes.clone() {
            if let Some(resp) = self.ask(id, &md, 12).await {
                return Some(
                    resp.topics
                        .iter()
                        .filter(|t| t.error_code == 0)
                        .filter_map(|t| {
                            Some((t.name.as_ref()?.0.to_string(), t.partitions.len() as i32))
                        })
                        .collect(),
                );
            }
        }
        None
    }

    /// The principals of every ACL binding node `id` serves, answered from that node's own
    /// metadata image (so asking each node shows whether the bindings reached it).
    pub async fn acl_principals(&mut self, id: i32) -> Option<std::collections::BTreeSet<String>> {
        // Kafka's ANY (1) for the resource type, pattern type, operation and permission.
        const ANY: i8 = 1;
        let mut req = DescribeAclsRequest::default();
        req.resource_type_filter = ANY;
        req.resource_name_filter = None;
        req.pattern_type_filter = ANY;
        req.principal_filter = None;
        req.host_filter = None;
        req.operation = ANY;
        req.permission_type = ANY;
        let resp = self.ask(id, &req, 1).await?;
        if resp.error_code != 0 {
            return None;
        }
        Some(
            resp.resources
                .iter()
                .flat_map(|r| r.acls.iter().map(|a| a.principal.to_string()))
                .collect(),
        )
    }

    /// Every SCRAM user with a credential, from the first node that answers.
    pub async fn scram_users(&mut self) -> Option<std::collections::BTreeSet<String>> {
        let mut req = DescribeUserScramCredentialsRequest::default();
        req.users = None;
        for (id, _) in self.nodes.clone() {
            if let Some(resp) = self.ask(id, &req, 0).await
                && resp.error_code == 0
            {
                return Some(
                    resp.results
                        .iter()
                        .filter(|u| u.error_code == 0 && !u.credential_infos.is_empty())
                        .map(|u| u.user.to_string())
                        .collect(),
                );
            }
        }
        None
    }

    /// Sends `req` to the node `attempt` picks (round robin); `None` when it cannot be reached
    /// or does not answer within [`ADMIN_ANSWER_WAIT`].
    async fn send_to_node<R: Request>(
        &mut self,
        attempt: usize,
        req: &R,
        version: i16,
    ) -> anyhow::Result<Option<R::Response>> {
        let id = self.nodes[attempt % self.nodes.len()].0;
        let addr = self.addr(id).context("node")?;
        let Ok(mut conn) = KafkaClient::connect(&addr).await else { return Ok(None) };
        let answer = tokio::time::timeout(ADMIN_ANSWER_WAIT, conn.send(req, version)).await;
        Ok(answer.ok().and_then(|r| r.ok()))
    }

    /// Creates `topic` through any node, retrying (bounded) through elections.
    pub async fn create_topic(
        &mut self,
        topic: &str,
        partitions: i32,
        replication_factor: i16,
        configs: &[(&str, &str)],
    ) -> anyhow::Result<()> {
        let mut t = CreatableTopic::default();
        t.name = topic_name(topic);
        t.num_partitions = partitions;
        t.replication_factor = replication_factor;
        t.configs = configs
            .iter()
            .map(|(k, v)| {
                let mut c = CreatableTopicConfig::default();
                c.name = StrBytes::from_string(k.to_string());
                c.value = Some(StrBytes::from_string(v.to_string()));
                c
            })
            .collect();
        let mut req = CreateTopicsRequest::default();
        req.topics = vec![t];
        req.timeout_ms = 10_000;
        let mut last = String::from("no node answered");
        for attempt in 0..ADMIN_ATTEMPTS {
            let resp = self.send_to_node(attempt, &req, 5).await?;
            match resp.as_ref().and_then(|r| r.topics.first()).map(|t| t.error_code) {
                Some(0) => return Ok(()),
                Some(TOPIC_ALREADY_EXISTS) if attempt > 0 => return Ok(()),
                Some(code) => last = format!("error code {code}"),
                None => {}
            }
            tokio::time::sleep(ADMIN_RETRY_PAUSE).await;
        }
        bail!("cannot create topic {topic}: {last}")
    }

    /// Asks (through any node, retrying through elections, bounded) for `topic`-`partition`
    /// to be moved onto `replicas` (AlterPartitionReassignments, KIP-455).
    pub async fn reassign(
        &mut self,
        topic: &str,
        partition: i32,
        replicas: &[i32],
    ) -> anyhow::Result<()> {
        use kafka_protocol::messages::alter_partition_reassignments_request::{
            ReassignablePartition, ReassignableTopic,
        };
        use kafka_protocol::messages::{AlterPartitionReassignmentsRequest, BrokerId};
        let mut p = ReassignablePartition::default();
        p.partition_index = partition;
        p.replicas = Some(replicas.iter().map(|r| BrokerId(*r)).collect());
        let mut t = ReassignableTopic::default();
        t.name = topic_name(topic);
        t.partitions = vec![p];
        let mut req = AlterPartitionReassignmentsRequest::default();
        req.topics = vec![t];
        req.timeout_ms = 10_000;
        let mut last = String::from("no node answered");
        for attempt in 0..ADMIN_ATTEMPTS {
            if let Some(r) = self.send_to_node(attempt, &req, 0).await? {
                let code = r.responses.first().and_then(|t| t.partitions.first()).map_or(
                    r.error_code,
                    |p| {
                        if r.error_code != 0 { r.error_code } else { p.error_code }
                    },
                );
                if code == 0 {
                    return Ok(());
                }
                last = format!("error code {code}");
            }
            tokio::time::sleep(ADMIN_RETRY_PAUSE).await;
        }
        bail!("cannot reassign {topic}-{partition} to {replicas:?}: {last}")
    }

    /// Every record of `topic`-`p` from its leader `leader`, up to the high watermark, and the
    /// high watermark.
    pub async fn read_partition(
        &mut self,
        topic: &str,
        p: i32,
        leader: i32,
    ) -> anyhow::Result<(Vec<FinalRecord>, i64)> {
        let addr = self.addr(leader).with_context(|| format!("no node {leader}"))?;
        let mut c = KafkaClient::connect(&addr).await?;
        let mut out = Vec::new();
        let mut offset = 0i64;
        loop {
            let req = fetch_request(topic, &[(p, offset)], 0, FETCH_BYTES_MAX);
            let resp = tokio::time::timeout(Duration::from_secs(30), c.send(&req, 12))
                .await
                .context("fetch timed out")??;
            let part = resp
                .responses
                .first()
                .and_then(|t| t.partitions.first())
                .context("empty fetch response")?;
            if part.error_code != 0 {
                bail!(
                    "fetch of {topic}-{p} at {offset} from node {leader}: error code {}",
                    part.error_code
                );
            }
            let hw = part.high_watermark;
            if offset >= hw {
                return Ok((out, hw));
            }
            let raw = part.records.clone().unwrap_or_default();
            let recs = decode_records(raw.clone())?;
            let before = offset;
            for r in recs {
                if r.offset >= offset && r.offset < hw {
                    offset = r.offset + 1;
                    let value = String::from_utf8_lossy(&r.value.unwrap_or_default()).into_owned();
                    let key = r.key.map(|k| String::from_utf8_lossy(&k).into_owned());
                    let session = (r.producer_id >= 0).then_some((r.producer_id, r.producer_epoch));
                    out.push(FinalRecord { offset: r.offset, key, value, session });
                }
            }
            // A compacted log may end in batches the cleaner emptied (an idempotent producer's
            // last one): step over them as clients do, by the batch's last offset.
            if offset == before
                && let Some(next) = batches_end(&raw).filter(|n| *n > offset)
            {
                offset = next.min(hw);
            }
            if offset == before {
                bail!(
                    "fetch of {topic}-{p} at {offset} made no progress below the high watermark {hw}"
                );
            }
        }
    }
}
