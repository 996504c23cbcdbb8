//! KRaft's `StandardAuthorizer`, pure: given the ACLs of the metadata image, may `principal`
//! connecting from `host` perform `operation` on a resource?
//!
//! Rules, as Kafka's `StandardAuthorizerData`:
//! - a principal in `super.users` may do anything;
//! - the ACLs that apply are those of the resource's type whose pattern covers the name (a
//!   LITERAL binding of the name or of `*`, or a PREFIXED binding the name starts with), for the
//!   principal or `User:*`, from the host or `*`;
//! - a DENY for the operation (or ALL) wins over every ALLOW; an ALLOW for the operation, or
//!   for ALL, or (for DESCRIBE) READ/WRITE/DELETE/ALTER, or (for DESCRIBE_CONFIGS)
//!   ALTER_CONFIGS allows it; implication never applies to DENY;
//! - when no ACL at all names the resource, `allow.everyone.if.no.acl.found` decides
//!   (default false); when some do but none allows, the answer is no.

use std::collections::BTreeSet;

use super::Principal;
use super::acl::{
    AclBinding, Operation, PatternType, Permission, ResourceType, WILDCARD, WILDCARD_PRINCIPAL,
};

/// The class names Kafka users set in `authorizer.class.name`.
pub const STANDARD_AUTHORIZER: &str = "org.apache.kafka.metadata.authorizer.StandardAuthorizer";

/// An enabled authorizer's settings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Authorizer {
    /// `super.users`: principals (`User:admin`) allowed everything.
    pub super_users: BTreeSet<String>,
    /// `allow.everyone.if.no.acl.found`.
    pub allow_if_no_acl: bool,
}

impl Authorizer {
    /// Parses `super.users` (semicolon-separated principals).
    pub fn parse_super_users(value: &str) -> BTreeSet<String> {
        value.split(';').map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect()
    }

    /// Whether the request is allowed.
    pub fn authorize<'a>(
        &self,
        acls: impl IntoIterator<Item = &'a AclBinding>,
        principal: &Principal,
        host: &str,
        operation: Operation,
        resource_type: ResourceType,
        name: &str,
    ) -> bool {
        let who = principal.to_string();
        if self.super_users.contains(&who) {
            return true;
        }
        let mut has_resource_acls = false;
        let mut allowed = false;
        for acl in acls {
            if acl.resource_type != resource_type || !pattern_covers(acl, name) {
                continue;
            }
            has_resource_acls = true;
            if acl.principal != who && acl.principal != WILDCARD_PRINCIPAL {
                continue;
            }
            if acl.host != WILDCARD && acl.host != host {
                continue;
            }
            match acl.permission {
                Permission::Deny
                    if acl.operation == Operation::All || acl.operation == operation =>
                {
                    return false;
                }
                Permission::Allow if allow_implies(acl.operation, operation) => allowed = true,
                _ => {}
            }
        }
        allowed || (!has_resource_acls && self.allow_if_no_acl)
    }

    /// Whether `principal` may perform `operation` on some resource of `resource_type` (Kafka's
    /// `authorizeByResourceType`, used for idempotent producers, KIP-679): a super user, an ALLOW
    /// binding of that type for the principal not cancelled by a DENY on every name, or no
    /// bindings of that type at all with `allow.everyone.if.no.acl.found`.
    pub fn authorize_any<'a>(
        &self,
        acls: impl IntoIterator<Item = &'a AclBinding> + Clone,
        principal: &Principal,
        host: &str,
        operation: Operation,
        resource_type: ResourceType,
    ) -> bool {
        let who = principal.to_string();
        if self.super_users.contains(&who) {
            return true;
        }
        let applies = |acl: &&AclBinding| {
            acl.resource_type == resource_type
                && (acl.principal == who || acl.principal == WILDCARD_PRINCIPAL)
                && (acl.host == WILDCARD || acl.host == host)
        };
        let denied_everywhere = acls.clone().into_iter().filter(applies).any(|acl| {
            acl.permission == Permission::Deny
                && (acl.operation == Operation::All || acl.operation == operation)
                && acl.pattern_type == PatternType::Literal
                && acl.resource_name == WILDCARD
        });
        if denied_everywhere {
            return false;
        }
        let any_of_type = acls.clone().into_iter().any(|acl| acl.resource_type == resource_type);
        acls.into_iter().filter(applies).any(|acl| {
            acl.permission == Permission::Allow && allow_implies(acl.operation, operation)
        }) || (!any_of_type && self.allow_if_no_acl)
    }

    /// Kafka's `authorized_operations` bit field: bit `op.wire()` set for each operation of
    /// the resource type the principal may perform.
    pub fn operations<'a>(
        &self,
        acls: impl IntoIterator<Item = &'a AclBinding> + Clone,
        principal: &Principal,
        host: &str,
        resource_type: ResourceType,
        name: &str,
    ) -> i32 {
        resource_type
            .operations()
            .iter()
            .filter(|op| self.authorize(acls.clone(), principal, host, **op, resource_type, name))
            .fold(0, |bits, op| bits | (1 << op.wire()))
    }
}

/// Every operation of the resource type, as answered without an authorizer.
pub fn all_operations(resource_type: ResourceType) -> i32 {
    resource_type.operations().iter().fold(0, |bits, op| bits | (1 << op.wire()))
}

fn pattern_covers(acl: &AclBinding, name: &str) -> bool {
    match acl.pattern_type {
        PatternType::Literal => acl.resource_name == name || acl.resource_name == WILDCARD,
        PatternType::Prefixed => name.starts_with(&acl.resource_name),
        PatternType::Any | PatternType::Match => false,
    }
}

/// Whether an ALLOW binding for `granted` allows `wanted`.
fn allow_implies(granted: Operation, wanted: Operation) -> bool {
    use Operation::*;
    granted == All
        || granted == wanted
        || (wanted == Describe && matches!(granted, Read | Write | Delete | Alter))
        || (wanted == DescribeConfigs && granted == AlterConfigs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use Operation::*;

    fn acl(
        name: &str,
        pt: PatternType,
        who: &str,
        host: &str,
        op: Operation,
        perm: Permission,
    ) -> AclBinding {
        AclBinding {
            resource_type: ResourceType::Topic,
            resource_name: name.into(),
            pattern_type: pt,
            principal: who.into(),
            host: host.into(),
            operation: op,
            permission: perm,
        }
    }

    fn check(
        acls: &[AclBinding],
        a: &Authorizer,
        who: &str,
        host: &str,
        op: Operation,
        topic: &str,
    ) -> bool {
        a.authorize(acls, &Principal::user(who), host, op, ResourceType::Topic, topic)
    }

    #[test]
    fn kafkas_rules_hold() {
        let a = Authorizer {
            super_users: Authorizer::parse_super_users("User:admin; User:root"),
            allow_if_no_acl: false,
        };
        let acls = vec![
            acl("orders", PatternType::Literal, "User:alice", "*", Read, Permission::Allow),
            acl("pay", PatternType::Prefixed, "User:*", "*", Write, Permission::Allow),
            acl("pay-secret", PatternType::Literal, "User:bob", "*", All, Permission::Deny),
            acl("*", PatternType::Literal, "User:carol", "10.0.0.1", Describe, Permission::Allow),
            acl("orders", PatternType::Literal, "User:dave", "*", Read, Permission::Deny),
            acl("orders", PatternType::Literal, "User:dave", "*", All, Permission::Allow),
        ];
        // Literal allow; implied DESCRIBE; nothing else.
        assert!(check(&acls, &a, "alice", "1.1.1.1", Read, "orders"));
        assert!(check(&acls, &a, "alice", "1.1.1.1", Describe, "orders"));
        assert!(!check(&acls, &a, "alice", "1.1.1.1", Write, "orders"));
        // Prefixed and wildcard principal; deny wins.
        assert!(check(&acls, &a, "bob", "1.1.1.1", Write, "payments"));
        assert!(!check(&acls, &a, "bob", "1.1.1.1", Write, "pay-secret"));
        assert!(check(&acls, &a, "erin", "1.1.1.1", Write, "pay-secret"));
        // Host filter.
        assert!(check(&acls, &a, "carol", "10.0.0.1", Describe, "anything"));
        assert!(!check(&acls, &a, "carol", "10.0.0.2", Describe, "anything"));
        // A DENY READ does not deny DESCRIBE, but beats ALLOW ALL for READ.
        assert!(!check(&acls, &a, "dave", "h", Read, "orders"));
        assert!(check(&acls, &a, "dave", "h", Describe, "orders"));
        // No ACL for the resource: allow.everyone.if.no.acl.found decides; super users pass.
        // A wildcard-name ACL ("*", carol's) is an ACL for every resource, so leave it out.
        let no_wildcard = &acls[..3];
        assert!(!check(no_wildcard, &a, "alice", "h", Read, "unnamed"));
        let open = Authorizer { allow_if_no_acl: true, ..a.clone() };
        assert!(check(no_wildcard, &open, "alice", "h", Read, "unnamed"));
        assert!(!check(&acls, &open, "alice", "h", Read, "unnamed"), "the wildcard ACL counts");
        assert!(!check(&acls, &open, "erin", "h", Read, "orders"), "ACLs exist: no default");
        assert!(check(&acls, &a, "root", "h", Alter, "orders"));
        // authorized_operations bits.
        let bits =
            a.operations(&acls, &Principal::user("alice"), "h", ResourceType::Topic, "orders");
        assert_eq!(bits, (1 << Read.wire()) | (1 << Describe.wire()));
        // Any topic (idempotent producers).
        assert!(a.authorize_any(&acls, &Principal::user("zed"), "h", Write, ResourceType::Topic));
        assert!(!a.authorize_any(&acls, &Principal::user("zed"), "h", Read, ResourceType::Topic));
    }
}
