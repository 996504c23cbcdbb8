//! DescribeLogDirs (key 35): this broker's log directory (samsa has one, `log.dirs`), with the
//! size and offset lag (log end − high watermark) of every replica it hosts, or of the asked
//! topics' partitions, and from v4 the directory's total and usable bytes (statvfs).
//!
//! From v2 a compacted replica's entry also carries its cleaner's position and dirty ratio in a
//! tagged field other clients skip (`kafka::extensions`); `samsa topic describe` shows them.

use std::sync::Arc;

use kafka_protocol::messages::describe_log_dirs_response::{
    DescribeLogDirsPartition, DescribeLogDirsResult, DescribeLogDirsTopic,
};
use kafka_protocol::messages::{DescribeLogDirsRequest, DescribeLogDirsResponse, TopicName};

use super::sb;
use crate::broker::Broker;
use crate::clock::now_ms;
use crate::error_code::ErrorCode;
use crate::kafka::extensions;
use crate::kafka::handlers::Authz;
use crate::kafka::router::{RequestContext, Versions};
use crate::security::acl::Operation;

pub(crate) const VERSIONS: Versions = Versions::new(1, 4);

pub(crate) async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    version: i16,
    request: DescribeLogDirsRequest,
) -> Option<DescribeLogDirsResponse> {
    if !Authz::new(broker, ctx).allows_cluster(Operation::Describe) {
        let mut r = DescribeLogDirsResponse::default();
        r.error_code = ErrorCode::ClusterAuthorizationFailed.code();
        return Some(r);
    }
    let broker = broker.clone();
    let dir = broker.config.data_dir.clone();
    let topics = tokio::task::spawn_blocking(move || {
        let wanted = |topic: &str, p: i32| match &request.topics {
            None => true,
            Some(ts) => ts.iter().any(|t| t.topic.0.as_str() == topic && t.partitions.contains(&p)),
        };
        let now = now_ms();
        let mut by_topic: std::collections::BTreeMap<String, Vec<DescribeLogDirsPartition>> =
            Default::default();
        for part in broker.replicas.all() {
            if !wanted(&part.tp.topic, part.tp.partition.0) {
                continue;
            }
            let offsets = part.offsets();
            let mut d = DescribeLogDirsPartition::default();
            d.partition_index = part.tp.partition.0;
            d.partition_size = part.log_size_bytes() as i64;
            // Kafka's `getLogEndOffsetLag`: how far this replica's log end trails the high
            // watermark it knows (0 on a leader, whose log end is never below it).
            d.offset_lag = (offsets.high_watermark.0 - offsets.log_end_offset.0).max(0);
            if version >= 2
                && let Some(c) = part.cleanable(now)
            {
                let tag = extensions::encode_cleaner_tag(c.first_dirty.0, c.dirty_ratio);
                d.unknown_tagged_fields.insert(extensions::CLEANER_TAG, tag);
            }
            by_topic.entry(part.tp.topic.clone()).or_default().push(d);
        }
        by_topic
    })
    .await
    .ok()?;
    let mut result = DescribeLogDirsResult::default();
    result.log_dir = sb(dir.display().to_string());
    result.topics = topics
        .into_iter()
        .map(|(name, mut partitions)| {
            partitions.sort_by_key(|p| p.partition_index);
            let mut t = DescribeLogDirsTopic::default();
            t.name = TopicName(sb(name));
            t.partitions = partitions;
            t
        })
        .collect();
    if version >= 4 {
        match rustix::fs::statvfs(&dir) {
            Ok(s) => {
                result.total_bytes = (s.f_blocks.saturating_mul(s.f_frsize)) as i64;
                result.usable_bytes = (s.f_bavail.saturating_mul(s.f_frsize)) as i64;
            }
            Err(_) => {
                result.total_bytes = -1;
                result.usable_bytes = -1;
            }
        }
    }
    let mut r = DescribeLogDirsResponse::default();
    r.error_code = ErrorCode::None.code();
    r.results = vec![result];
    Some(r)
}
