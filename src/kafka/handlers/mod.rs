//! One module per Kafka API (STYLE rule 1). Each declares `VERSIONS`, the range it implements,
//! and `handle(broker, version, request) -> Option<response>` (`None`: send no response).
//! The router in `kafka::router` holds the only list of them.

pub(crate) mod add_offsets_to_txn;
pub(crate) mod add_partitions_to_txn;
pub(crate) mod add_raft_voter;
pub(crate) mod alter_client_quotas;
pub(crate) mod alter_configs;
pub(crate) mod alter_partition_reassignments;
pub(crate) mod alter_user_scram_credentials;
pub(crate) mod api_versions;
pub(crate) mod create_acls;
pub(crate) mod create_partitions;
pub(crate) mod create_topics;
pub(crate) mod delete_acls;
pub(crate) mod delete_groups;
pub(crate) mod delete_records;
pub(crate) mod delete_topics;
pub(crate) mod describe_acls;
pub(crate) mod describe_client_quotas;
pub(crate) mod describe_cluster;
pub(crate) mod describe_configs;
pub(crate) mod describe_groups;
pub(crate) mod describe_log_dirs;
pub(crate) mod describe_producers;
pub(crate) mod describe_quorum;
pub(crate) mod describe_topic_partitions;
pub(crate) mod describe_transactions;
pub(crate) mod describe_user_scram_credentials;
pub(crate) mod elect_leaders;
pub(crate) mod end_txn;
pub(crate) mod fetch;
pub(crate) mod find_coordinator;
pub(crate) mod heartbeat;
pub(crate) mod incremental_alter_configs;
pub(crate) mod init_producer_id;
pub(crate) mod join_group;
pub(crate) mod leave_group;
pub(crate) mod list_groups;
pub(crate) mod list_offsets;
pub(crate) mod list_partition_reassignments;
pub(crate) mod list_transactions;
pub(crate) mod metadata;
pub(crate) mod offset_commit;
pub(crate) mod offset_delete;
pub(crate) mod offset_fetch;
pub(crate) mod offset_for_leader_epoch;
pub(crate) mod produce;
pub(crate) mod remove_raft_voter;
pub(crate) mod sasl_authenticate;
pub(crate) mod sasl_handshake;
pub(crate) mod sync_group;
pub(crate) mod txn_offset_commit;
pub(crate) mod write_txn_markers;

use std::sync::Arc;

use kafka_protocol::messages::TopicName;
use kafka_protocol::protocol::StrBytes;

use crate::broker::Broker;
use crate::error_code::{ApiError, ErrorCode};
use crate::kafka::router::RequestContext;
use crate::security::acl::{CLUSTER_NAME, Operation, ResourceType};
use crate::types::LeaderEpoch;

/// A protocol string from a Rust string.
pub(crate) fn sb(s: impl Into<String>) -> StrBytes {
    StrBytes::from_string(s.into())
}

/// A protocol topic name.
pub(crate) fn topic_name(s: &str) -> TopicName {
    TopicName(sb(s))
}

/// The controller id clients are told: the active controller if it is a live broker (admin
/// requests sent there skip a forwarding hop), else any live broker, which forwards them.
pub(crate) fn controller_id(broker: &Broker) -> i32 {
    let image = broker.metadata.image();
    let live = |id: crate::types::NodeId| image.brokers.get(&id).is_some_and(|b| !b.fenced);
    match broker.metadata.leader() {
        Some(l) if live(l.id) => l.id.0,
        _ if live(broker.config.node_id) => broker.config.node_id.0,
        _ => image.live_brokers().next().map_or(-1, |b| b.id.0),
    }
}

/// The "not requested" value of authorized-operations fields.
pub(crate) const AUTHORIZED_OPERATIONS_OMITTED: i32 = i32::MIN;

/// Config resource types (DescribeConfigs / AlterConfigs).
pub(crate) const RESOURCE_TOPIC: i8 = 2;
pub(crate) const RESOURCE_BROKER: i8 = 4;

/// Checks a client's `current_leader_epoch` against ours (KIP-320): older is fenced, newer is
/// unknown to us yet, -1 means "not given".
pub(crate) fn check_leader_epoch(requested: i32, ours: LeaderEpoch) -> Result<(), ErrorCode> {
    if requested < 0 || requested == ours.0 {
        Ok(())
    } else if requested < ours.0 {
        Err(ErrorCode::FencedLeaderEpoch)
    } else {
        Err(ErrorCode::UnknownLeaderEpoch)
    }
}

/// Brings local replicas up to date with the image right after an admin change, so a client
/// that creates a topic can produce to it as soon as the answer arrives.
pub(crate) async fn apply_metadata_now(broker: &Arc<Broker>) {
    broker.apply_metadata_now().await;
}

/// The message a response carries for an error, or none for success.
pub(crate) fn message_of(r: &Result<(), ApiError>) -> (i16, Option<StrBytes>) {
    match r {
        Ok(()) => (ErrorCode::None.code(), None),
        Err(e) => (e.code.code(), Some(sb(e.message.clone()))),
    }
}

/// What the request's principal may do, decided by the StandardAuthorizer against one image
/// (every request is allowed when no authorizer is configured).
pub(crate) struct Authz<'a> {
    authorizer: Option<&'a crate::security::authorizer::Authorizer>,
    image: Arc<crate::metadata::image::MetadataImage>,
    ctx: &'a RequestContext,
}

impl<'a> Authz<'a> {
    pub(crate) fn new(broker: &'a Broker, ctx: &'a RequestContext) -> Self {
        Authz { authorizer: broker.config.authorizer.as_ref(), image: broker.metadata.image(), ctx }
    }

    /// Whether an authorizer is configured.
    pub(crate) fn enabled(&self) -> bool {
        self.authorizer.is_some()
    }

    pub(crate) fn allows(&self, op: Operation, resource: ResourceType, name: &str) -> bool {
        match self.authorizer {
            None => true,
            Some(a) => a.authorize(
                self.image.acls.values(),
                &self.ctx.principal,
                self.ctx.ip(),
                op,
                resource,
                name,
            ),
        }
    }

    pub(crate) fn allows_cluster(&self, op: Operation) -> bool {
        self.allows(op, ResourceType::Cluster, CLUSTER_NAME)
    }

    pub(crate) fn allows_topic(&self, op: Operation, topic: &str) -> bool {
        self.allows(op, ResourceType::Topic, topic)
    }

    pub(crate) fn allows_group(&self, op: Operation, group: &str) -> bool {
        self.allows(op, ResourceType::Group, group)
    }

    /// Whether the principal may do `op` on some resource of the type (KIP-679).
    pub(crate) fn allows_any(&self, op: Operation, resource: ResourceType) -> bool {
        match self.authorizer {
            None => true,
            Some(a) => a.authorize_any(
                self.image.acls.values(),
                &self.ctx.principal,
                self.ctx.ip(),
                op,
                resource,
            ),
        }
    }

    /// Kafka's `authorized_operations` bits for a resource when `asked` (KIP-430): every
    /// operation of the type without an authorizer, as Kafka's `AuthHelper` answers; not asked,
    /// the "omitted" value.
    pub(crate) fn operations(&self, resource: ResourceType, name: &str, asked: bool) -> i32 {
        if !asked {
            return AUTHORIZED_OPERATIONS_OMITTED;
        }
        match self.authorizer {
            None => crate::security::authorizer::all_operations(resource),
            Some(a) => a.operations(
                self.image.acls.values(),
                &self.ctx.principal,
                self.ctx.ip(),
                resource,
                name,
            ),
        }
    }
}
