//! CreateAcls (key 30): stores ACL bindings in the metadata log (StandardAuthorizer). Needs
//! ALTER on the cluster; refused with SECURITY_DISABLED when no authorizer is configured, as
//! Kafka does. A binding that is not concrete (ANY, MATCH, UNKNOWN) or names no `Type:name`
//! principal gets INVALID_REQUEST; an existing binding is not stored twice.

use std::sync::Arc;

use kafka_protocol::messages::create_acls_response::AclCreationResult;
use kafka_protocol::messages::{CreateAclsRequest, CreateAclsResponse};

use super::{Authz, sb};
use crate::broker::Broker;
use crate::controller::{ControllerReply, ControllerRequest};
use crate::error_code::ErrorCode;
use crate::kafka::router::{RequestContext, Versions};
use crate::security::acl::{AclBinding, Operation, PatternType, Permission, ResourceType};

pub(crate) const VERSIONS: Versions = Versions::new(1, 3);

fn result(code: ErrorCode, message: Option<String>) -> AclCreationResult {
    let mut r = AclCreationResult::default();
    r.error_code = code.code();
    r.error_message = message.map(sb);
    r
}

pub(crate) async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    _version: i16,
    request: CreateAclsRequest,
) -> Option<CreateAclsResponse> {
    let mut response = CreateAclsResponse::default();
    let authz = Authz::new(broker, ctx);
    let refuse_all = if !authz.enabled() {
        Some((ErrorCode::SecurityDisabled, "No Authorizer is configured on the broker".to_string()))
    } else if !authz.allows_cluster(Operation::Alter) {
        Some((ErrorCode::ClusterAuthorizationFailed, "Cluster authorization failed.".to_string()))
    } else {
        None
    };
    if let Some((code, message)) = refuse_all {
        response.results =
            request.creations.iter().map(|_| result(code, Some(message.clone()))).collect();
        return Some(response);
    }
    // Bindings whose codes are unknown are answered here; the rest go to the controller.
    let mut parsed: Vec<Result<AclBinding, &'static str>> = Vec::new();
    for c in &request.creations {
        parsed.push(
            match (
                ResourceType::from_wire(c.resource_type),
                PatternType::from_wire(c.resource_pattern_type),
                Operation::from_wire(c.operation),
                Permission::from_wire(c.permission_type),
            ) {
                (Some(resource_type), Some(pattern_type), Some(operation), Some(permission)) => {
                    Ok(AclBinding {
                        resource_type,
                        resource_name: c.resource_name.to_string(),
                        pattern_type,
                        principal: c.principal.to_string(),
                        host: c.host.to_string(),
                        operation,
                        permission,
                    })
                }
                _ => {
                    Err("Invalid ACL: unknown resource type, pattern type, operation or permission")
                }
            },
        );
    }
    let bindings: Vec<AclBinding> =
        parsed.iter().filter_map(|p| p.as_ref().ok().cloned()).collect();
    let reply = if bindings.is_empty() {
        Ok(ControllerReply::AclsCreated { results: Vec::new() })
    } else {
        broker.controller.execute(ControllerRequest::CreateAcls { bindings }).await
    };
    let outcome: Result<Vec<Option<String>>, (ErrorCode, String)> = match reply {
        Ok(ControllerReply::AclsCreated { results }) => Ok(results),
        Ok(other) => Err((ErrorCode::UnknownServerError, format!("unexpected reply {other:?}"))),
        Err(e) => Err((e.code, e.message)),
    };
    let mut stored = outcome.clone().unwrap_or_default().into_iter();
    for p in parsed {
        response.results.push(match (p, &outcome) {
            (Err(why), _) => result(ErrorCode::InvalidRequest, Some(why.into())),
            (Ok(_), Err((code, message))) => result(*code, Some(message.clone())),
            (Ok(_), Ok(_)) => match stored.next() {
                Some(None) => result(ErrorCode::None, None),
                Some(Some(why)) => result(ErrorCode::InvalidRequest, Some(why)),
                None => result(ErrorCode::UnknownServerError, None),
            },
        });
    }
    Some(response)
}
