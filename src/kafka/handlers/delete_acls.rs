//! DeleteAcls (key 31): removes every stored binding each filter matches and answers, per
//! filter, the bindings removed. Needs ALTER on the cluster; SECURITY_DISABLED without an
//! authorizer.

use std::sync::Arc;

use kafka_protocol::messages::delete_acls_response::{
    DeleteAclsFilterResult, DeleteAclsMatchingAcl,
};
use kafka_protocol::messages::{DeleteAclsRequest, DeleteAclsResponse};

use super::describe_acls::filter_of;
use super::{Authz, sb};
use crate::broker::Broker;
use crate::controller::{ControllerReply, ControllerRequest};
use crate::error_code::ErrorCode;
use crate::kafka::router::{RequestContext, Versions};
use crate::security::acl::Operation;

pub(crate) const VERSIONS: Versions = Versions::new(1, 3);

fn failed(code: ErrorCode, message: &str) -> DeleteAclsFilterResult {
    let mut r = DeleteAclsFilterResult::default();
    r.error_code = code.code();
    r.error_message = Some(sb(message));
    r
}

pub(crate) async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    _version: i16,
    request: DeleteAclsRequest,
) -> Option<DeleteAclsResponse> {
    let mut response = DeleteAclsResponse::default();
    let authz = Authz::new(broker, ctx);
    let refusal = if !authz.enabled() {
        Some((ErrorCode::SecurityDisabled, "No Authorizer is configured on the broker"))
    } else if !authz.allows_cluster(Operation::Alter) {
        Some((ErrorCode::ClusterAuthorizationFailed, "Cluster authorization failed."))
    } else {
        None
    };
    if let Some((code, message)) = refusal {
        response.filter_results = request.filters.iter().map(|_| failed(code, message)).collect();
        return Some(response);
    }
    let filters: Vec<_> = request
        .filters
        .iter()
        .map(|f| {
            filter_of(
                f.resource_type_filter,
                f.resource_name_filter.as_ref().map(|s| s.to_string()),
                f.pattern_type_filter,
                f.principal_filter.as_ref().map(|s| s.to_string()),
                f.host_filter.as_ref().map(|s| s.to_string()),
                f.operation,
                f.permission_type,
            )
        })
        .collect();
    let valid: Vec<_> = filters.iter().flatten().cloned().collect();
    let reply = if valid.is_empty() {
        Ok(ControllerReply::AclsDeleted { matched: Vec::new() })
    } else {
        broker.controller.execute(ControllerRequest::DeleteAcls { filters: valid }).await
    };
    let matched = match reply {
        Ok(ControllerReply::AclsDeleted { matched }) => matched,
        Ok(other) => {
            let why = format!("unexpected reply {other:?}");
            response.filter_results =
                filters.iter().map(|_| failed(ErrorCode::UnknownServerError, &why)).collect();
            return Some(response);
        }
        Err(e) => {
            response.filter_results = filters.iter().map(|_| failed(e.code, &e.message)).collect();
            return Some(response);
        }
    };
    let mut matched = matched.into_iter();
    for f in &filters {
        if f.is_none() {
            response.filter_results.push(failed(
                ErrorCode::InvalidRequest,
                "Invalid ACL filter: unknown resource type, pattern type, operation or permission",
            ));
            continue;
        }
        let mut r = DeleteAclsFilterResult::default();
        for acl in matched.next().unwrap_or_default() {
            let mut m = DeleteAclsMatchingAcl::default();
            m.resource_type = acl.resource_type.wire();
            m.resource_name = sb(acl.resource_name);
            m.pattern_type = acl.pattern_type.wire();
            m.principal = sb(acl.principal);
            m.host = sb(acl.host);
            m.operation = acl.operation.wire();
            m.permission_type = acl.permission.wire();
            r.matching_acls.push(m);
        }
        response.filter_results.push(r);
    }
    Some(response)
}
