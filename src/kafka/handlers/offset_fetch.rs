//! OffsetFetch (key 9): a group's committed offsets, -1 where none is committed. A null topic
//! list (v2+) asks for every committed offset; v8+ asks for several groups at once. Errors are
//! per group from v2 (top level) and per partition in v1.

use std::sync::Arc;

use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::{OffsetFetchRequest, OffsetFetchResponse};

use super::{sb, topic_name};
use crate::broker::Broker;
use crate::error_code::ErrorCode;
use crate::group::OffsetFilter;
use crate::group::records::OffsetValue;
use crate::kafka::handlers::Authz;
use crate::kafka::router::{RequestContext, Versions};
use crate::security::acl::Operation;

pub(crate) const VERSIONS: Versions = Versions::new(1, 9);

/// Fills a response partition (the two partition types differ only by name).
macro_rules! fill {
    ($rp:ident, $p:ident, $v:ident, $e:ident) => {{
        $rp.partition_index = $p;
        $rp.committed_offset = $v.as_ref().map_or(-1, |v| v.offset);
        $rp.committed_leader_epoch = $v.as_ref().map_or(-1, |v| v.leader_epoch);
        $rp.metadata = Some(sb($v.map(|v| v.metadata).unwrap_or_default()));
        $rp.error_code = $e.code();
    }};
}

/// One partition's answer: (partition, offset if committed, error).
type Row = (i32, Option<OffsetValue>, ErrorCode);

pub(crate) async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    version: i16,
    request: OffsetFetchRequest,
) -> Option<OffsetFetchResponse> {
    let mut r = OffsetFetchResponse::default();
    let authz = Authz::new(broker, ctx);
    let fetch = |group: &str, filter: &OffsetFilter, stable: bool| {
        fetch_authorized(broker, &authz, group, filter, stable)
    };
    if version >= 8 {
        for g in &request.groups {
            let filter: OffsetFilter = g.topics.as_ref().map(|ts| {
                ts.iter().map(|t| (t.name.0.to_string(), t.partition_indexes.clone())).collect()
            });
            let (code, topics) = fetch(&g.group_id.0, &filter, request.require_stable);
            let mut rg = OffsetFetchResponseGroup::default();
            rg.group_id = g.group_id.clone();
            rg.error_code = code.code();
            rg.topics = topics
                .into_iter()
                .map(|(name, rows)| {
                    let mut t = OffsetFetchResponseTopics::default();
                    t.name = topic_name(&name);
                    t.partitions = rows
                        .into_iter()
                        .map(|(p, v, e)| {
                            let mut rp = OffsetFetchResponsePartitions::default();
                            fill!(rp, p, v, e);
                            rp
                        })
                        .collect();
                    t
                })
                .collect();
            r.groups.push(rg);
        }
        return Some(r);
    }
    let filter: OffsetFilter = request
        .topics
        .as_ref()
        .map(|ts| ts.iter().map(|t| (t.name.0.to_string(), t.partition_indexes.clone())).collect());
    let stable = version >= 7 && request.require_stable;
    let (code, topics) = fetch(&request.group_id.0, &filter, stable);
    if version >= 2 {
        r.error_code = code.code();
    }
    r.topics = topics
        .into_iter()
        .map(|(name, rows)| {
            let mut t = OffsetFetchResponseTopic::default();
            t.name = topic_name(&name);
            t.partitions = rows
                .into_iter()
                .map(|(p, v, e)| {
                    let mut rp = OffsetFetchResponsePartition::default();
                    // v1 has no group-level error: every partition carries it.
                    let e = if version < 2 && code != ErrorCode::None { code } else { e };
                    fill!(rp, p, v, e);
                    rp
                })
                .collect();
            t
        })
        .collect();
    Some(r)
}

/// [`fetch`] as the principal may see it: GROUP_AUTHORIZATION_FAILED without DESCRIBE on the
/// group; topics without DESCRIBE are left out when all were asked for, and answered
/// TOPIC_AUTHORIZATION_FAILED when named (Kafka's behaviour).
fn fetch_authorized(
    broker: &Broker,
    authz: &Authz<'_>,
    group: &str,
    filter: &OffsetFilter,
    require_stable: bool,
) -> (ErrorCode, Vec<(String, Vec<Row>)>) {
    if !authz.allows_group(Operation::Describe, group) {
        return (ErrorCode::GroupAuthorizationFailed, Vec::new());
    }
    let (code, topics) = fetch(broker, group, filter, require_stable);
    let topics = topics
        .into_iter()
        .filter_map(|(name, rows)| {
            if authz.allows_topic(Operation::Describe, &name) {
                return Some((name, rows));
            }
            filter.as_ref()?;
            let denied =
                rows.into_iter().map(|(p, _, _)| (p, None, ErrorCode::TopicAuthorizationFailed));
            Some((name, denied.collect()))
        })
        .collect();
    (code, topics)
}

/// A group's offsets grouped by topic, with the group-level error. With `require_stable`
/// (KIP-447), a partition with an offset in a transaction not yet ended answers
/// UNSTABLE_OFFSET_COMMIT (the consumer retries until the marker lands).
fn fetch(
    broker: &Broker,
    group: &str,
    filter: &OffsetFilter,
    require_stable: bool,
) -> (ErrorCode, Vec<(String, Vec<Row>)>) {
    match broker.groups.fetch_offsets(group, filter) {
        Ok(rows) => {
            let mut topics: Vec<(String, Vec<Row>)> = Vec::new();
            for (t, p, v) in rows {
                let unstable = require_stable && broker.groups.has_pending_txn_offset(group, &t, p);
                let (v, e) = if unstable {
                    (None, ErrorCode::UnstableOffsetCommit)
                } else {
                    (v, ErrorCode::None)
                };
                match topics.iter_mut().find(|(name, _)| *name == t) {
                    Some((_, rows)) => rows.push((p, v, e)),
                    None => topics.push((t, vec![(p, v, e)])),
                }
            }
            (ErrorCode::None, topics)
        }
        Err(code) => {
            // Requested partitions still get a row (v1 reports the error there).
            let topics = filter
                .iter()
                .flatten()
                .map(|(t, ps)| {
                    (t.clone(), ps.iter().map(|p| (*p, None, ErrorCode::None)).collect())
                })
                .collect();
            (code, topics)
        }
    }
}
