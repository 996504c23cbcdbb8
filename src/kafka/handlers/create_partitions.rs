//! CreatePartitions (key 37): grows a topic's partition count (never shrinks it).

use std::sync::Arc;

use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::{CreatePartitionsRequest, CreatePartitionsResponse};

use super::{apply_metadata_now, message_of};
use crate::broker::Broker;
use crate::controller::ControllerRequest;
use crate::kafka::handlers::Authz;
use crate::kafka::router::{RequestContext, Versions};
use crate::security::acl::Operation;
use crate::types::NodeId;

pub(crate) const VERSIONS: Versions = Versions::new(0, 3);

pub(crate) async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    _version: i16,
    request: CreatePartitionsRequest,
) -> Option<CreatePartitionsResponse> {
    let mut response = CreatePartitionsResponse::default();
    let mut changed = false;
    for t in request.topics {
        let name = t.name.0.to_string();
        let assignments = t.assignments.as_ref().map(|a| {
            a.iter().map(|x| x.broker_ids.iter().map(|b| NodeId(b.0)).collect()).collect()
        });
        let req = ControllerRequest::CreatePartitions {
            topic: name.clone(),
            count: t.count,
            assignments,
            validate_only: request.validate_only,
        };
        let result = if Authz::new(broker, ctx).allows_topic(Operation::Alter, &name) {
            broker.controller.execute(req).await.map(|_| ())
        } else {
            Err(crate::error_code::ApiError::new(
                crate::error_code::ErrorCode::TopicAuthorizationFailed,
                "Authorization failed.",
            ))
        };
        changed |= result.is_ok() && !request.validate_only;
        let (code, message) = message_of(&result);
        let mut r = CreatePartitionsTopicResult::default();
        r.name = t.name.clone();
        r.error_code = code;
        r.error_message = message;
        response.results.push(r);
    }
    if changed {
        apply_metadata_now(broker).await;
    }
    Some(response)
}
