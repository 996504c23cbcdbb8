//! ACLs as Kafka defines them (KIP-11, KIP-290): a binding of a resource pattern (type, name,
//! LITERAL or PREFIXED) to an entry (principal, host, operation, ALLOW or DENY), with the wire
//! codes of Kafka's `ResourceType`, `PatternType`, `AclOperation` and `AclPermissionType`; and
//! the filters DescribeAcls and DeleteAcls match bindings with (ANY, MATCH).
//!
//! Invariant: a stored binding is concrete (no ANY, MATCH or UNKNOWN) and names a principal of
//! the form `Type:name`; [`AclBinding::validate`] is the one gate.

use serde::{Deserialize, Serialize};

/// Kafka's `ResourceType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum ResourceType {
    Any,
    Topic,
    Group,
    Cluster,
    TransactionalId,
    DelegationToken,
    User,
}

/// Kafka's `PatternType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum PatternType {
    Any,
    Match,
    Literal,
    Prefixed,
}

/// Kafka's `AclOperation`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Operation {
    Any,
    All,
    Read,
    Write,
    Create,
    Delete,
    Alter,
    Describe,
    ClusterAction,
    DescribeConfigs,
    AlterConfigs,
    IdempotentWrite,
    CreateTokens,
    DescribeTokens,
}

/// Kafka's `AclPermissionType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Permission {
    Any,
    Deny,
    Allow,
}

macro_rules! wire_codes {
    ($t:ident { $($v:ident = $c:expr),* $(,)? }) => {
        impl $t {
            pub fn wire(self) -> i8 {
                match self { $($t::$v => $c,)* }
            }
            /// `None` for UNKNOWN (0) and codes Kafka does not define.
            pub fn from_wire(code: i8) -> Option<Self> {
                match code { $($c => Some($t::$v),)* _ => None }
            }
        }
    };
}

wire_codes!(ResourceType { Any = 1, Topic = 2, Group = 3, Cluster = 4, TransactionalId = 5, DelegationToken = 6, User = 7 });
wire_codes!(PatternType { Any = 1, Match = 2, Literal = 3, Prefixed = 4 });
wire_codes!(Operation {
    Any = 1, All = 2, Read = 3, Write = 4, Create = 5, Delete = 6, Alter = 7, Describe = 8,
    ClusterAction = 9, DescribeConfigs = 10, AlterConfigs = 11, IdempotentWrite = 12,
    CreateTokens = 13, DescribeTokens = 14,
});
wire_codes!(Permission { Any = 1, Deny = 2, Allow = 3 });

impl ResourceType {
    pub fn name(self) -> &'static str {
        match self {
            ResourceType::Any => "ANY",
            ResourceType::Topic => "TOPIC",
            ResourceType::Group => "GROUP",
            ResourceType::Cluster => "CLUSTER",
            ResourceType::TransactionalId => "TRANSACTIONAL_ID",
            ResourceType::DelegationToken => "DELEGATION_TOKEN",
            ResourceType::User => "USER",
        }
    }

    /// The operations Kafka defines for this resource type, for `authorized_operations`.
    pub fn operations(self) -> &'static [Operation] {
        use Operation::*;
        match self {
            ResourceType::Topic => {
                &[Read, Write, Create, Delete, Alter, Describe, DescribeConfigs, AlterConfigs]
            }
            ResourceType::Group => &[Read, Delete, Describe],
            ResourceType::Cluster => &[
                Create,
                Alter,
                Describe,
                ClusterAction,
                DescribeConfigs,
                AlterConfigs,
                IdempotentWrite,
            ],
            ResourceType::TransactionalId => &[Write, Describe],
            ResourceType::DelegationToken => &[Describe],
            ResourceType::User => &[CreateTokens, DescribeTokens],
            ResourceType::Any => &[],
        }
    }
}

impl Operation {
    pub fn name(self) -> &'static str {
        match self {
            Operation::Any => "ANY",
            Operation::All => "ALL",
            Operation::Read => "READ",
            Operation::Write => "WRITE",
            Operation::Create => "CREATE",
            Operation::Delete => "DELETE",
            Operation::Alter => "ALTER",
            Operation::Describe => "DESCRIBE",
            Operation::ClusterAction => "CLUSTER_ACTION",
            Operation::DescribeConfigs => "DESCRIBE_CONFIGS",
            Operation::AlterConfigs => "ALTER_CONFIGS",
            Operation::IdempotentWrite => "IDEMPOTENT_WRITE",
            Operation::CreateTokens => "CREATE_TOKENS",
            Operation::DescribeTokens => "DESCRIBE_TOKENS",
        }
    }
}

impl Operation {
    /// Parses an operation the way Kafka's tools spell it: `Read`, `READ`, `IdempotentWrite`,
    /// `IDEMPOTENT_WRITE`, `describe-configs` (case and separators ignored). ANY is a filter
    /// value, not accepted here.
    pub fn parse(name: &str) -> Option<Operation> {
        let squash = |s: &str| s.chars().filter(|c| c.is_ascii_alphanumeric()).collect::<String>();
        let want = squash(name).to_ascii_uppercase();
        (Operation::All.wire()..=Operation::DescribeTokens.wire())
            .filter_map(Operation::from_wire)
            .find(|op| squash(op.name()) == want)
    }
}

impl PatternType {
    pub fn name(self) -> &'static str {
        match self {
            PatternType::Any => "ANY",
            PatternType::Match => "MATCH",
            PatternType::Literal => "LITERAL",
            PatternType::Prefixed => "PREFIXED",
        }
    }

    /// `literal`, `PREFIXED`, `any`, `match` (case ignored).
    pub fn parse(name: &str) -> Option<PatternType> {
        [PatternType::Any, PatternType::Match, PatternType::Literal, PatternType::Prefixed]
            .into_iter()
            .find(|p| p.name().eq_ignore_ascii_case(name))
    }
}

impl Permission {
    pub fn name(self) -> &'static str {
        match self {
            Permission::Any => "ANY",
            Permission::Deny => "DENY",
            Permission::Allow => "ALLOW",
        }
    }
}

/// The one cluster resource's name.
pub const CLUSTER_NAME: &str = "kafka-cluster";
/// The name and principal that match every name and principal in a LITERAL binding.
pub const WILDCARD: &str = "*";
/// `User:*`.
pub const WILDCARD_PRINCIPAL: &str = "User:*";

/// One ACL.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct AclBinding {
    pub resource_type: ResourceType,
    pub resource_name: String,
    pub pattern_type: PatternType,
    /// `User:alice`, `User:*`.
    pub principal: String,
    /// An IP address, or `*`.
    pub host: String,
    pub operation: Operation,
    pub permission: Permission,
}

/// Why a binding cannot be stored; the message is what CreateAcls answers (INVALID_REQUEST).
pub type Invalid = &'static str;

impl AclBinding {
    /// Checks that the binding is concrete and well formed, as Kafka's `AclControlManager`.
    pub fn validate(&self) -> Result<(), Invalid> {
        if matches!(self.resource_type, ResourceType::Any) {
            return Err("Invalid resourceType ANY");
        }
        if !matches!(self.pattern_type, PatternType::Literal | PatternType::Prefixed) {
            return Err("Invalid patternType: only LITERAL and PREFIXED ACLs can be created");
        }
        if matches!(self.operation, Operation::Any) {
            return Err("Invalid operation ANY");
        }
        if matches!(self.permission, Permission::Any) {
            return Err("Invalid permissionType ANY");
        }
        if self.resource_name.is_empty() {
            return Err("Resource name should not be empty");
        }
        if self.resource_type == ResourceType::Cluster && self.resource_name != CLUSTER_NAME {
            return Err("The only valid name for the CLUSTER resource is kafka-cluster");
        }
        match self.principal.split_once(':') {
            Some((kind, name)) if !kind.is_empty() && !name.is_empty() => {}
            _ => {
                return Err(
                    "Could not parse principal from `principal` field: expected Type:name, such as User:alice",
                );
            }
        }
        if self.host.is_empty() {
            return Err("Invalid host: use * for any host");
        }
        Ok(())
    }
}

/// A DescribeAcls / DeleteAcls filter: `None` fields match anything.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AclFilter {
    pub resource_type: ResourceType,
    pub resource_name: Option<String>,
    pub pattern_type: PatternType,
    pub principal: Option<String>,
    pub host: Option<String>,
    pub operation: Operation,
    pub permission: Permission,
}

impl AclFilter {
    /// Whether `acl` is one this filter selects (Kafka's `AclBindingFilter.matches`): ANY
    /// matches every value; MATCH with a name selects the literal binding of that name, the
    /// literal wildcard, and every prefixed binding the name starts with.
    pub fn matches(&self, acl: &AclBinding) -> bool {
        let resource_type =
            self.resource_type == ResourceType::Any || self.resource_type == acl.resource_type;
        let pattern = match (self.pattern_type, &self.resource_name) {
            (PatternType::Any, None) => true,
            (PatternType::Any, Some(n)) => &acl.resource_name == n,
            (PatternType::Match, None) => true,
            (PatternType::Match, Some(n)) => match acl.pattern_type {
                PatternType::Literal => &acl.resource_name == n || acl.resource_name == WILDCARD,
                PatternType::Prefixed => n.starts_with(&acl.resource_name),
                _ => false,
            },
            (p, name) => {
                p == acl.pattern_type && name.as_ref().is_none_or(|n| &acl.resource_name == n)
            }
        };
        let principal = self.principal.as_ref().is_none_or(|p| p == &acl.principal);
        let host = self.host.as_ref().is_none_or(|h| h == &acl.host);
        let operation = self.operation == Operation::Any || self.operation == acl.operation;
        let permission = self.permission == Permission::Any || self.permission == acl.permission;
        resource_type && pattern && principal && host && operation && permission
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acl(
        rt: ResourceType,
        name: &str,
        pt: PatternType,
        op: Operation,
        perm: Permission,
    ) -> AclBinding {
        AclBinding {
            resource_type: rt,
            resource_name: name.into(),
            pattern_type: pt,
            principal: "User:alice".into(),
            host: "*".into(),
            operation: op,
            permission: perm,
        }
    }

    #[test]
    fn wire_codes_are_kafkas() {
        assert_eq!(ResourceType::TransactionalId.wire(), 5);
        assert_eq!(PatternType::from_wire(4), Some(PatternType::Prefixed));
        assert_eq!(Operation::from_wire(12), Some(Operation::IdempotentWrite));
        assert_eq!(Permission::from_wire(0), None);
        assert_eq!(Operation::from_wire(99), None);
    }

    #[test]
    fn bindings_are_validated() {
        use Operation::*;
        assert!(
            acl(ResourceType::Topic, "t", PatternType::Literal, Read, Permission::Allow)
                .validate()
                .is_ok()
        );
        assert!(
            acl(ResourceType::Topic, "t", PatternType::Match, Read, Permission::Allow)
                .validate()
                .is_err()
        );
        assert!(
            acl(ResourceType::Cluster, "x", PatternType::Literal, Alter, Permission::Allow)
                .validate()
                .is_err()
        );
        assert!(
            acl(ResourceType::Topic, "t", PatternType::Literal, Any, Permission::Allow)
                .validate()
                .is_err()
        );
        let mut bad = acl(ResourceType::Topic, "t", PatternType::Literal, Read, Permission::Allow);
        bad.principal = "alice".into();
        assert!(bad.validate().is_err());
    }

    #[test]
    fn filters_match_as_kafkas_do() {
        use Operation::*;
        let lit = acl(ResourceType::Topic, "orders", PatternType::Literal, Read, Permission::Allow);
        let pre = acl(ResourceType::Topic, "ord", PatternType::Prefixed, Write, Permission::Deny);
        let star = acl(ResourceType::Topic, "*", PatternType::Literal, Describe, Permission::Allow);
        let f = |pt, name: Option<&str>| AclFilter {
            resource_type: ResourceType::Topic,
            resource_name: name.map(String::from),
            pattern_type: pt,
            principal: None,
            host: None,
            operation: Any,
            permission: Permission::Any,
        };
        let m = f(PatternType::Match, Some("orders"));
        assert!(m.matches(&lit) && m.matches(&pre) && m.matches(&star));
        let a = f(PatternType::Any, Some("orders"));
        assert!(a.matches(&lit) && !a.matches(&pre) && !a.matches(&star));
        let p = f(PatternType::Prefixed, None);
        assert!(!p.matches(&lit) && p.matches(&pre));
        let mut by_op = f(PatternType::Any, None);
        by_op.operation = Write;
        assert!(!by_op.matches(&lit) && by_op.matches(&pre));
    }
}
