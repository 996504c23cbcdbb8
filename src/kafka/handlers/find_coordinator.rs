//! FindCoordinator (key 10): the coordinator of a group (key type 0) is the leader of the
//! `__consumer_offsets` partition its id hashes to; of a transactional id (key type 1) the
//! leader of its `__transaction_state` partition. Each topic is created on first use. v4+
//! batches keys.

use std::sync::Arc;

use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{BrokerId, FindCoordinatorRequest, FindCoordinatorResponse};

use super::sb;
use crate::broker::Broker;
use crate::config::group::OFFSETS_TOPIC;
use crate::config::txn::TRANSACTION_STATE_TOPIC;
use crate::error_code::ErrorCode;
use crate::group::records::partition_for;
use crate::kafka::handlers::Authz;
use crate::kafka::router::{RequestContext, Versions};
use crate::security::acl::{Operation, ResourceType};

pub(crate) const VERSIONS: Versions = Versions::new(0, 6);

const KEY_TYPE_GROUP: i8 = 0;
const KEY_TYPE_TRANSACTION: i8 = 1;

pub(crate) async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    version: i16,
    request: FindCoordinatorRequest,
) -> Option<FindCoordinatorResponse> {
    let keys: Vec<String> = if version >= 4 {
        request.coordinator_keys.iter().map(|k| k.to_string()).collect()
    } else {
        vec![request.key.to_string()]
    };
    let mut found = Vec::with_capacity(keys.len());
    let authz = Authz::new(broker, ctx);
    for key in keys {
        // DESCRIBE on the group or transactional id, as Kafka checks.
        let (resource, code) = if request.key_type == 1 {
            (ResourceType::TransactionalId, ErrorCode::TransactionalIdAuthorizationFailed)
        } else {
            (ResourceType::Group, ErrorCode::GroupAuthorizationFailed)
        };
        if !authz.allows(Operation::Describe, resource, &key) {
            let mut c = Coordinator::default();
            c.key = sb(key);
            c.node_id = BrokerId(-1);
            c.port = -1;
            c.error_code = code.code();
            found.push(c);
            continue;
        }
        found.push(find(broker, &ctx.listener, request.key_type, key).await);
    }
    let mut r = FindCoordinatorResponse::default();
    if version >= 4 {
        r.coordinators = found;
    } else if let Some(c) = found.into_iter().next() {
        r.error_code = c.error_code;
        r.error_message = c.error_message;
        r.node_id = c.node_id;
        r.host = c.host;
        r.port = c.port;
    }
    Some(r)
}

async fn find(broker: &Arc<Broker>, listener: &str, key_type: i8, key: String) -> Coordinator {
    let mut c = Coordinator::default();
    c.key = sb(key.clone());
    c.node_id = BrokerId(-1);
    c.port = -1;
    match locate(broker, listener, key_type, &key).await {
        Ok((node, host, port)) => {
            c.node_id = BrokerId(node);
            c.host = sb(host);
            c.port = i32::from(port);
        }
        Err((code, message)) => {
            c.error_code = code.code();
            c.error_message = Some(sb(message));
        }
    }
    c
}

async fn locate(
    broker: &Arc<Broker>,
    listener: &str,
    key_type: i8,
    key: &str,
) -> Result<(i32, String, u16), (ErrorCode, String)> {
    let live = broker.metadata.image().live_brokers().count();
    let (name, spec) = match key_type {
        KEY_TYPE_GROUP => (OFFSETS_TOPIC, broker.groups.offsets_topic_spec(live)),
        KEY_TYPE_TRANSACTION => (TRANSACTION_STATE_TOPIC, broker.txns.topic_spec(live)),
        other => return Err((ErrorCode::InvalidRequest, format!("unknown key type {other}"))),
    };
    if broker.metadata.image().topic(name).is_none() {
        broker.ensure_internal_topic(spec).await.map_err(|e| {
            tracing::warn!(error = %e, "cannot create {name}");
            (ErrorCode::CoordinatorNotAvailable, format!("{name} cannot be created yet"))
        })?;
    }
    let image = broker.metadata.image();
    let unavailable = |why: String| (ErrorCode::CoordinatorNotAvailable, why);
    let topic = image.topic(name).ok_or_else(|| unavailable(format!("no {name} topic yet")))?;
    let partition = partition_for(key, topic.partitions.len() as i32);
    let leader = topic
        .partitions
        .get(partition as usize)
        .and_then(|p| p.leader)
        .ok_or_else(|| unavailable(format!("the key's {name} partition has no leader")))?;
    let b = image
        .brokers
        .get(&leader)
        .filter(|b| !b.fenced)
        .ok_or_else(|| unavailable("the key's coordinator is not available".to_string()))?;
    let (host, port) = b.endpoint(listener);
    Ok((b.id.0, host.to_string(), port))
}
