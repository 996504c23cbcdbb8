//! DeleteTopics (key 20): by name (v1–5) or by name or id (v6). Answers once the deletion is
//! committed; the replicas' files are removed by the reconciler right after.

use std::sync::Arc;

use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{DeleteTopicsRequest, DeleteTopicsResponse};
use uuid::Uuid;

use super::{apply_metadata_now, message_of, topic_name};
use crate::broker::Broker;
use crate::controller::ControllerRequest;
use crate::error_code::{ApiError, ErrorCode};
use crate::kafka::handlers::Authz;
use crate::kafka::router::{RequestContext, Versions};
use crate::security::acl::Operation;

pub(crate) const VERSIONS: Versions = Versions::new(1, 6);

pub(crate) async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    version: i16,
    request: DeleteTopicsRequest,
) -> Option<DeleteTopicsResponse> {
    let targets: Vec<(Option<String>, Uuid)> = if version >= 6 {
        request
            .topics
            .iter()
            .map(|t| (t.name.as_ref().map(|n| n.0.to_string()), t.topic_id))
            .collect()
    } else {
        request.topic_names.iter().map(|n| (Some(n.0.to_string()), Uuid::nil())).collect()
    };
    let mut response = DeleteTopicsResponse::default();
    let mut deleted = false;
    for (name, id) in targets {
        let image = broker.metadata.image();
        let resolved = match &name {
            Some(n) => Ok(n.clone()),
            None => image.topic_by_id(&id).map(|t| t.name.clone()).ok_or_else(|| {
                ApiError::new(ErrorCode::UnknownTopicId, format!("Topic id {id} does not exist."))
            }),
        };
        let topic_id = resolved.as_ref().ok().and_then(|n| image.topic(n)).map_or(id, |t| t.id);
        let result = match &resolved {
            Ok(n) if !Authz::new(broker, ctx).allows_topic(Operation::Delete, n) => {
                Err(ApiError::new(ErrorCode::TopicAuthorizationFailed, "Authorization failed."))
            }
            Ok(n) => broker
                .controller
                .execute(ControllerRequest::DeleteTopic { name: n.clone() })
                .await
                .map(|_| ()),
            Err(e) => Err(e.clone()),
        };
        deleted |= result.is_ok();
        let (code, message) = message_of(&result);
        let mut r = DeletableTopicResult::default();
        r.name = resolved.ok().or(name).map(|n| topic_name(&n));
        if version >= 6 {
            r.topic_id = topic_id;
        }
        r.error_code = code;
        if version >= 5 {
            r.error_message = message;
        }
        response.responses.push(r);
    }
    if deleted {
        apply_metadata_now(broker).await;
    }
    Some(response)
}
