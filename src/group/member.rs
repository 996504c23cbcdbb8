//! A member of a classic group, and what a JoinGroup or SyncGroup eventually answers. Pending
//! requests are one-shot senders held by the member: the group state machine completes them
//! when a rebalance step finishes; dropping one (the group was unloaded) tells the waiting
//! handler that this broker is no longer the coordinator.

use bytes::Bytes;
use tokio::sync::oneshot;

use crate::error_code::ErrorCode;

/// A JoinGroup as the state machine sees it.
#[derive(Debug, Clone)]
pub(crate) struct JoinRequest {
    /// Empty for a member joining for the first time.
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout_ms: i32,
    pub rebalance_timeout_ms: i32,
    pub protocol_type: String,
    /// (name, metadata) in the member's order of preference.
    pub protocols: Vec<(String, Bytes)>,
    /// JoinGroup v4+: a new dynamic member first gets MEMBER_ID_REQUIRED with its id (KIP-394).
    pub require_known_member_id: bool,
}

/// A SyncGroup as the state machine sees it.
#[derive(Debug, Clone, Default)]
pub(crate) struct SyncRequest {
    pub generation: i32,
    pub member_id: String,
    pub group_instance_id: Option<String>,
    /// v5+: must match the group's, when given.
    pub protocol_type: Option<String>,
    pub protocol: Option<String>,
    /// The leader's assignment per member id (others send none).
    pub assignments: Vec<(String, Bytes)>,
}

/// The answer to a JoinGroup.
#[derive(Debug, Clone)]
pub(crate) struct JoinOutcome {
    pub error: ErrorCode,
    pub generation: i32,
    pub protocol_type: Option<String>,
    pub protocol: Option<String>,
    pub leader: String,
    pub member_id: String,
    /// The leader gets every member's (id, instance id, metadata); others get none.
    pub members: Vec<(String, Option<String>, Bytes)>,
    /// A static leader rejoining a stable group keeps the current assignment (KIP-345).
    pub skip_assignment: bool,
}

impl JoinOutcome {
    pub(crate) fn error(error: ErrorCode, member_id: &str) -> Self {
        JoinOutcome {
            error,
            generation: -1,
            protocol_type: None,
            protocol: None,
            leader: String::new(),
            member_id: member_id.to_string(),
            members: Vec::new(),
            skip_assignment: false,
        }
    }
}

/// The answer to a SyncGroup.
#[derive(Debug, Clone)]
pub(crate) struct SyncOutcome {
    pub error: ErrorCode,
    pub protocol_type: Option<String>,
    pub protocol: Option<String>,
    pub assignment: Bytes,
}

impl SyncOutcome {
    pub(crate) fn error(error: ErrorCode) -> Self {
        SyncOutcome { error, protocol_type: None, protocol: None, assignment: Bytes::new() }
    }
}

/// One member.
#[derive(Debug)]
pub(crate) struct Member {
    pub id: String,
    /// Static membership (KIP-345): the stable identity that survives restarts.
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout_ms: i32,
    pub rebalance_timeout_ms: i32,
    /// (name, metadata) in preference order.
    pub protocols: Vec<(String, Bytes)>,
    /// The leader's assignment for this member in the current generation.
    pub assignment: Bytes,
    /// A JoinGroup waiting for the rebalance to complete.
    pub join_waiter: Option<oneshot::Sender<JoinOutcome>>,
    /// A SyncGroup waiting for the leader's assignment.
    pub sync_waiter: Option<oneshot::Sender<SyncOutcome>>,
    /// The member is removed once this passes without a heartbeat (unless a request waits).
    pub session_deadline_ms: i64,
}

impl Member {
    pub(crate) fn new(id: String, req: &JoinRequest, now_ms: i64) -> Self {
        Member {
            id,
            group_instance_id: req.group_instance_id.clone(),
            client_id: req.client_id.clone(),
            client_host: req.client_host.clone(),
            session_timeout_ms: req.session_timeout_ms,
            rebalance_timeout_ms: req.rebalance_timeout_ms,
            protocols: req.protocols.clone(),
            assignment: Bytes::new(),
            join_waiter: None,
            sync_waiter: None,
            session_deadline_ms: now_ms + i64::from(req.session_timeout_ms),
        }
    }

    /// Takes the settings of a rejoin.
    pub(crate) fn update(&mut self, req: &JoinRequest) {
        self.client_id = req.client_id.clone();
        self.client_host = req.client_host.clone();
        self.session_timeout_ms = req.session_timeout_ms;
        self.rebalance_timeout_ms = req.rebalance_timeout_ms;
        self.protocols = req.protocols.clone();
    }

    /// Extends the session: a heartbeat, commit, join or sync arrived.
    pub(crate) fn touch(&mut self, now_ms: i64) {
        self.session_deadline_ms = now_ms + i64::from(self.session_timeout_ms);
    }

    /// This member's metadata for `protocol`.
    pub(crate) fn metadata(&self, protocol: &str) -> Bytes {
        self.protocols
            .iter()
            .find(|(n, _)| n == protocol)
            .map(|(_, m)| m.clone())
            .unwrap_or_default()
    }

    /// Whether the session may lapse now: a member with a request in flight stays.
    pub(crate) fn expired(&self, now_ms: i64) -> bool {
        self.join_waiter.is_none()
            && self.sync_waiter.is_none()
            && now_ms >= self.session_deadline_ms
    }

    /// Answers a waiting JoinGroup, if any.
    pub(crate) fn answer_join(&mut self, outcome: JoinOutcome) {
        if let Some(tx) = self.join_waiter.take() {
            let _ = tx.send(outcome);
        }
    }

    /// Answers a waiting SyncGroup, if any.
    pub(crate) fn answer_sync(&mut self, outcome: SyncOutcome) {
        if let Some(tx) = self.sync_waiter.take() {
            let _ = tx.send(outcome);
        }
    }
}
