//! DescribeAcls (key 29): the stored ACL bindings a filter matches, grouped by resource
//! pattern. Needs DESCRIBE on the cluster; SECURITY_DISABLED without an authorizer.

use std::collections::BTreeMap;
use std::sync::Arc;

use kafka_protocol::messages::describe_acls_response::{AclDescription, DescribeAclsResource};
use kafka_protocol::messages::{DescribeAclsRequest, DescribeAclsResponse};

use super::{Authz, sb};
use crate::broker::Broker;
use crate::error_code::ErrorCode;
use crate::kafka::router::{RequestContext, Versions};
use crate::security::acl::{AclFilter, Operation, PatternType, Permission, ResourceType};

pub(crate) const VERSIONS: Versions = Versions::new(1, 3);

pub(crate) async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    _version: i16,
    request: DescribeAclsRequest,
) -> Option<DescribeAclsResponse> {
    let mut response = DescribeAclsResponse::default();
    let authz = Authz::new(broker, ctx);
    if !authz.enabled() {
        response.error_code = ErrorCode::SecurityDisabled.code();
        response.error_message = Some(sb("No Authorizer is configured on the broker"));
        return Some(response);
    }
    if !authz.allows_cluster(Operation::Describe) {
        response.error_code = ErrorCode::ClusterAuthorizationFailed.code();
        response.error_message = Some(sb("Cluster authorization failed."));
        return Some(response);
    }
    let Some(filter) = filter_of(
        request.resource_type_filter,
        request.resource_name_filter.as_ref().map(|s| s.to_string()),
        request.pattern_type_filter,
        request.principal_filter.as_ref().map(|s| s.to_string()),
        request.host_filter.as_ref().map(|s| s.to_string()),
        request.operation,
        request.permission_type,
    ) else {
        response.error_code = ErrorCode::InvalidRequest.code();
        response.error_message = Some(sb(
            "Invalid ACL filter: unknown resource type, pattern type, operation or permission",
        ));
        return Some(response);
    };
    let image = broker.metadata.image();
    let mut by_resource: BTreeMap<(ResourceType, String, PatternType), Vec<AclDescription>> =
        BTreeMap::new();
    for acl in image.acls.values().filter(|a| filter.matches(a)) {
        let mut d = AclDescription::default();
        d.principal = sb(acl.principal.clone());
        d.host = sb(acl.host.clone());
        d.operation = acl.operation.wire();
        d.permission_type = acl.permission.wire();
        by_resource
            .entry((acl.resource_type, acl.resource_name.clone(), acl.pattern_type))
            .or_default()
            .push(d);
    }
    for ((resource_type, name, pattern), acls) in by_resource {
        let mut r = DescribeAclsResource::default();
        r.resource_type = resource_type.wire();
        r.resource_name = sb(name);
        r.pattern_type = pattern.wire();
        r.acls = acls;
        response.resources.push(r);
    }
    Some(response)
}

/// A filter from its wire fields; `None` when a code is unknown.
pub(crate) fn filter_of(
    resource_type: i8,
    resource_name: Option<String>,
    pattern_type: i8,
    principal: Option<String>,
    host: Option<String>,
    operation: i8,
    permission: i8,
) -> Option<AclFilter> {
    Some(AclFilter {
        resource_type: ResourceType::from_wire(resource_type)?,
        resource_name,
        pattern_type: PatternType::from_wire(pattern_type)?,
        principal,
        host,
        operation: Operation::from_wire(operation)?,
        permission: Permission::from_wire(permission)?,
    })
}
