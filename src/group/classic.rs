//! The classic group protocol as a synchronous state machine driven by requests and a clock
//! (`now_ms` is passed in; nothing here sleeps or does I/O). It follows Kafka's coordinator:
//!
//! ```text
//!  Empty ──join──▶ PreparingRebalance ──all joined / deadline──▶ CompletingRebalance
//!    ▲                ▲        │ (no members left)                     │ leader's SyncGroup stored
//!    └────────────────┼────────┘                                       ▼
//!                     └──── member joins, leaves, changes protocol ── Stable
//! ```
//!
//! Invariants: the generation only grows; the leader is always a member (or none); a member with
//! a request in flight never expires; every waiter is answered exactly once or dropped (dropped
//! means "this broker stopped coordinating the group").
//!
//! A step that must be made durable (the leader's assignment, a group that became empty) is not
//! applied until it is stored: `sync` hands the caller a [`GroupValue`] to write, and
//! `complete_sync` applies it; an emptied group leaves one in `take_persist`.

use std::collections::{BTreeMap, HashMap, HashSet};

use bytes::Bytes;
use tokio::sync::oneshot;
use uuid::Uuid;

use super::member::{JoinOutcome, JoinRequest, Member, SyncOutcome, SyncRequest};
use super::records::{GroupValue, MemberValue, OffsetValue};
use crate::config::group::GroupConfig;
use crate::error_code::ErrorCode;

/// Kafka's group states, with their wire names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GroupState {
    Empty,
    PreparingRebalance,
    CompletingRebalance,
    Stable,
    Dead,
}

impl GroupState {
    pub(crate) fn name(self) -> &'static str {
        match self {
            GroupState::Empty => "Empty",
            GroupState::PreparingRebalance => "PreparingRebalance",
            GroupState::CompletingRebalance => "CompletingRebalance",
            GroupState::Stable => "Stable",
            GroupState::Dead => "Dead",
        }
    }
}

/// What a JoinGroup gets: an answer now, or one when the rebalance completes.
#[derive(Debug)]
pub(crate) enum JoinReply {
    Now(JoinOutcome),
    Wait(oneshot::Receiver<JoinOutcome>),
}

/// What a SyncGroup gets. `Store`: the leader's assignment must be written before anyone is
/// answered; the caller stores `value` and calls [`Group::complete_sync`].
#[derive(Debug)]
pub(crate) enum SyncReply {
    Now(SyncOutcome),
    Wait(oneshot::Receiver<SyncOutcome>),
    Store { wait: oneshot::Receiver<SyncOutcome>, generation: i32, value: GroupValue },
}

/// A committed offset and where its record sits in `__consumer_offsets` (a later record wins,
/// whatever order appends are acknowledged in).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Committed {
    pub value: OffsetValue,
    pub log_offset: i64,
}

/// The rebalance in progress (PreparingRebalance).
#[derive(Debug, Clone, Copy)]
struct Rebalance {
    deadline_ms: i64,
    /// The first rebalance of an empty group waits `group.initial.rebalance.delay.ms` for more
    /// members, again after each joiner, up to `cap_ms` (KIP-134).
    initial: Option<InitialDelay>,
}

#[derive(Debug, Clone, Copy)]
struct InitialDelay {
    cap_ms: i64,
    delay_ms: i64,
    joined_since_extended: bool,
}

/// One classic group, with its committed offsets.
#[derive(Debug)]
pub(crate) struct Group {
    pub id: String,
    pub state: GroupState,
    pub state_since_ms: i64,
    pub generation: i32,
    pub protocol_type: Option<String>,
    pub protocol: Option<String>,
    pub leader: Option<String>,
    /// In join order (the first becomes leader when there is none).
    pub members: Vec<Member>,
    /// Member ids handed out with MEMBER_ID_REQUIRED, until they join or their session lapses.
    pending: HashMap<String, i64>,
    rebalance: Option<Rebalance>,
    /// CompletingRebalance: members that have not sent SyncGroup, and by when they must.
    pending_sync: HashSet<String>,
    sync_deadline_ms: Option<i64>,
    /// The leader's assignment while it is being stored.
    proposed: Option<HashMap<String, Bytes>>,
    /// A group value to store (the group became empty).
    persist: Option<GroupValue>,
    pub offsets: BTreeMap<(String, i32), Committed>,
    initial_delay_ms: i64,
}

impl Group {
    pub(crate) fn new(id: &str, config: &GroupConfig, now_ms: i64) -> Self {
        Group {
            id: id.to_string(),
            state: GroupState::Empty,
            state_since_ms: now_ms,
            generation: 0,
            protocol_type: None,
            protocol: None,
            leader: None,
            members: Vec::new(),
            pending: HashMap::new(),
            rebalance: None,
            pending_sync: HashSet::new(),
            sync_deadline_ms: None,
            proposed: None,
            persist: None,
            offsets: BTreeMap::new(),
            initial_delay_ms: i64::from(config.initial_rebalance_delay_ms),
        }
    }

    /// A group as stored at the end of its last rebalance: Stable with its members (their
    /// sessions start now) or Empty.
    pub(crate) fn from_value(id: &str, v: GroupValue, config: &GroupConfig, now_ms: i64) -> Self {
        let mut g = Group::new(id, config, now_ms);
        g.generation = v.generation;
        g.protocol_type = Some(v.protocol_type.clone()).filter(|t| !t.is_empty());
        g.protocol = v.protocol.clone();
        g.leader = v.leader.clone();
        let protocol = v.protocol.clone().unwrap_or_default();
        for m in v.members {
            let req = JoinRequest {
                member_id: m.member_id.clone(),
                group_instance_id: m.group_instance_id,
                client_id: m.client_id,
                client_host: m.client_host,
                session_timeout_ms: m.session_timeout_ms,
                rebalance_timeout_ms: m.rebalance_timeout_ms,
                protocol_type: v.protocol_type.clone(),
                protocols: vec![(protocol.clone(), m.subscription)],
                require_known_member_id: false,
            };
            let mut member = Member::new(m.member_id, &req, now_ms);
            member.assignment = m.assignment;
            g.members.push(member);
        }
        if !g.members.is_empty() {
            g.state = GroupState::Stable;
        }
        if g.leader.as_ref().is_some_and(|l| !g.members.iter().any(|m| &m.id == l)) {
            g.leader = g.members.first().map(|m| m.id.clone());
        }
        g
    }

    /// The group as stored, with `assignments` (or the current ones).
    pub(crate) fn to_value(
        &self,
        assignments: Option<&HashMap<String, Bytes>>,
        now_ms: i64,
    ) -> GroupValue {
        let protocol = self.protocol.clone().unwrap_or_default();
        GroupValue {
            protocol_type: self.protocol_type.clone().unwrap_or_default(),
            generation: self.generation,
            protocol: self.protocol.clone(),
            leader: self.leader.clone(),
            current_state_timestamp_ms: now_ms,
            members: self
                .members
                .iter()
                .map(|m| MemberValue {
                    member_id: m.id.clone(),
                    group_instance_id: m.group_instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    rebalance_timeout_ms: m.rebalance_timeout_ms,
                    session_timeout_ms: m.session_timeout_ms,
                    subscription: m.metadata(&protocol),
                    assignment: match assignments {
                        Some(a) => a.get(&m.id).cloned().unwrap_or_default(),
                        None => m.assignment.clone(),
                    },
                })
                .collect(),
        }
    }

    /// Nothing worth keeping: never rebalanced, no members, no offsets.
    pub(crate) fn is_blank(&self) -> bool {
        self.generation == 0
            && self.state == GroupState::Empty
            && self.members.is_empty()
            && self.pending.is_empty()
            && self.offsets.is_empty()
    }

    /// A value to store, left by a step that emptied the group.
    pub(crate) fn take_persist(&mut self) -> Option<GroupValue> {
        self.persist.take()
    }

    fn set_state(&mut self, state: GroupState, now_ms: i64) {
        self.state = state;
        self.state_since_ms = now_ms;
    }

    fn index_of(&self, member_id: &str) -> Option<usize> {
        self.members.iter().position(|m| m.id == member_id)
    }

    /// Finds a member, fencing an old incarnation of a static member (KIP-345).
    fn validate_member(&self, member_id: &str, instance: Option<&str>) -> Result<usize, ErrorCode> {
        if let Some(instance) = instance {
            return match self
                .members
                .iter()
                .position(|m| m.group_instance_id.as_deref() == Some(instance))
            {
                Some(i) if self.members[i].id == member_id => Ok(i),
                Some(_) => Err(ErrorCode::FencedInstanceId),
                None => Err(ErrorCode::UnknownMemberId),
            };
        }
        self.index_of(member_id).ok_or(ErrorCode::UnknownMemberId)
    }

    /// Protocols every member supports.
    fn candidates(&self) -> Vec<String> {
        let Some(first) = self.members.first() else { return Vec::new() };
        first
            .protocols
            .iter()
            .map(|(n, _)| n.clone())
            .filter(|n| self.members.iter().all(|m| m.protocols.iter().any(|(p, _)| p == n)))
            .collect()
    }

    /// The protocol with the most first-choice votes among the common ones (ties: the first
    /// member's order).
    fn select_protocol(&self) -> Option<String> {
        let candidates = self.candidates();
        let mut votes: HashMap<&str, usize> = HashMap::new();
        for m in &self.members {
            if let Some((n, _)) = m.protocols.iter().find(|(n, _)| candidates.contains(n)) {
                *votes.entry(n.as_str()).or_default() += 1;
            }
        }
        let best = votes.values().copied().max()?;
        candidates.into_iter().find(|c| votes.get(c.as_str()) == Some(&best))
    }

    fn supports(&self, req: &JoinRequest) -> bool {
        if self.members.is_empty() {
            return true;
        }
        let candidates = self.candidates();
        self.protocol_type.as_deref() == Some(req.protocol_type.as_str())
            && req.protocols.iter().any(|(n, _)| candidates.contains(n))
    }

    fn outcome_for(&self, member_id: &str) -> JoinOutcome {
        let protocol = self.protocol.clone().unwrap_or_default();
        let is_leader = self.leader.as_deref() == Some(member_id);
        JoinOutcome {
            error: ErrorCode::None,
            generation: self.generation,
            protocol_type: self.protocol_type.clone(),
            protocol: self.protocol.clone(),
            leader: self.leader.clone().unwrap_or_default(),
            member_id: member_id.to_string(),
            members: if is_leader {
                self.members
                    .iter()
                    .map(|m| (m.id.clone(), m.group_instance_id.clone(), m.metadata(&protocol)))
                    .collect()
            } else {
                Vec::new()
            },
            skip_assignment: false,
        }
    }

    /// JoinGroup.
    pub(crate) fn join(
        &mut self,
        req: JoinRequest,
        config: &GroupConfig,
        now_ms: i64,
    ) -> JoinReply {
        let refuse = |code| JoinReply::Now(JoinOutcome::error(code, &req.member_id));
        if self.state == GroupState::Dead {
            return refuse(ErrorCode::CoordinatorNotAvailable);
        }
        if req.session_timeout_ms < config.min_session_timeout_ms
            || req.session_timeout_ms > config.max_session_timeout_ms
        {
            return refuse(ErrorCode::InvalidSessionTimeout);
        }
        if req.protocol_type.is_empty() || req.protocols.is_empty() || !self.supports(&req) {
            return refuse(ErrorCode::InconsistentGroupProtocol);
        }
        if req.member_id.is_empty() {
            return self.join_new(req, config, now_ms);
        }
        if self.pending.contains_key(&req.member_id) {
            let id = req.member_id.clone();
            return self.add_member(id, req, now_ms);
        }
        let idx = match self.validate_member(&req.member_id, req.group_instance_id.as_deref()) {
            Ok(i) => i,
            Err(code) => return refuse(code),
        };
        let changed = self.members[idx].protocols != req.protocols;
        let is_leader = self.leader.as_deref() == Some(req.member_id.as_str());
        match self.state {
            GroupState::CompletingRebalance if !changed => {
                JoinReply::Now(self.outcome_for(&req.member_id))
            }
            GroupState::Stable if !changed && !is_leader => {
                self.members[idx].touch(now_ms);
                JoinReply::Now(self.outcome_for(&req.member_id))
            }
            GroupState::PreparingRebalance
            | GroupState::CompletingRebalance
            | GroupState::Stable => {
                self.members[idx].update(&req);
                let wait = self.await_join(idx);
                self.prepare_rebalance(now_ms);
                self.try_complete_join(now_ms);
                wait
            }
            GroupState::Empty | GroupState::Dead => refuse(ErrorCode::UnknownMemberId),
        }
    }

    fn join_new(&mut self, req: JoinRequest, config: &GroupConfig, now_ms: i64) -> JoinReply {
        if let Some(instance) = req.group_instance_id.clone() {
            if let Some(idx) =
                self.members.iter().position(|m| m.group_instance_id.as_ref() == Some(&instance))
            {
                return self.replace_static_member(idx, req, now_ms);
            }
            if self.members.len() + self.pending.len() >= config.max_size as usize {
                return JoinReply::Now(JoinOutcome::error(ErrorCode::GroupMaxSizeReached, ""));
            }
            let id = format!("{instance}-{}", Uuid::new_v4());
            return self.add_member(id, req, now_ms);
        }
        if self.members.len() + self.pending.len() >= config.max_size as usize {
            return JoinReply::Now(JoinOutcome::error(ErrorCode::GroupMaxSizeReached, ""));
        }
        let id = format!("{}-{}", req.client_id, Uuid::new_v4());
        if req.require_known_member_id {
            self.pending.insert(id.clone(), now_ms + i64::from(req.session_timeout_ms));
            return JoinReply::Now(JoinOutcome::error(ErrorCode::MemberIdRequired, &id));
        }
        self.add_member(id, req, now_ms)
    }

    fn add_member(&mut self, id: String, req: JoinRequest, now_ms: i64) -> JoinReply {
        self.pending.remove(&id);
        if self.members.is_empty() {
            self.protocol_type = Some(req.protocol_type.clone());
        }
        if self.leader.is_none() {
            self.leader = Some(id.clone());
        }
        self.members.push(Member::new(id, &req, now_ms));
        if let Some(Rebalance { initial: Some(i), .. }) = &mut self.rebalance {
            i.joined_since_extended = true;
        }
        let wait = self.await_join(self.members.len() - 1);
        self.prepare_rebalance(now_ms);
        self.try_complete_join(now_ms);
        wait
    }

    /// A static member rejoins under a new member id; the old incarnation is fenced. A stable
    /// group keeps its assignment unless the protocol would change (KIP-345).
    fn replace_static_member(&mut self, idx: usize, req: JoinRequest, now_ms: i64) -> JoinReply {
        let new_id =
            format!("{}-{}", req.group_instance_id.clone().unwrap_or_default(), Uuid::new_v4());
        let old_id = std::mem::replace(&mut self.members[idx].id, new_id.clone());
        self.members[idx].answer_join(JoinOutcome::error(ErrorCode::FencedInstanceId, &old_id));
        self.members[idx].answer_sync(SyncOutcome::error(ErrorCode::FencedInstanceId));
        if self.pending_sync.remove(&old_id) {
            self.pending_sync.insert(new_id.clone());
        }
        if self.leader.as_deref() == Some(old_id.as_str()) {
            self.leader = Some(new_id.clone());
        }
        self.members[idx].update(&req);
        self.members[idx].touch(now_ms);
        if self.state == GroupState::Stable && self.select_protocol() == self.protocol {
            // The new member id is stored, so a new coordinator does not fence the instance.
            self.persist = Some(self.to_value(None, now_ms));
            let mut outcome = self.outcome_for(&new_id);
            outcome.skip_assignment = self.leader.as_deref() == Some(new_id.as_str());
            return JoinReply::Now(outcome);
        }
        let wait = self.await_join(idx);
        self.prepare_rebalance(now_ms);
        self.try_complete_join(now_ms);
        wait
    }

    fn await_join(&mut self, idx: usize) -> JoinReply {
        let (tx, rx) = oneshot::channel();
        let m = &mut self.members[idx];
        // A retried JoinGroup supersedes the earlier one.
        m.answer_join(JoinOutcome::error(ErrorCode::RebalanceInProgress, &m.id.clone()));
        m.join_waiter = Some(tx);
        JoinReply::Wait(rx)
    }

    /// Starts a rebalance if none is running.
    fn prepare_rebalance(&mut self, now_ms: i64) {
        if !matches!(
            self.state,
            GroupState::Empty | GroupState::Stable | GroupState::CompletingRebalance
        ) {
            return;
        }
        if self.state == GroupState::CompletingRebalance {
            self.reset_assignments(ErrorCode::RebalanceInProgress);
        }
        let timeout =
            self.members.iter().map(|m| i64::from(m.rebalance_timeout_ms)).max().unwrap_or(0);
        let initial = (self.state == GroupState::Empty && self.initial_delay_ms > 0).then_some(
            InitialDelay {
                cap_ms: now_ms + timeout,
                delay_ms: self.initial_delay_ms,
                joined_since_extended: false,
            },
        );
        let deadline_ms = match initial {
            Some(i) => (now_ms + i.delay_ms).min(i.cap_ms),
            None => now_ms + timeout,
        };
        self.rebalance = Some(Rebalance { deadline_ms, initial });
        self.set_state(GroupState::PreparingRebalance, now_ms);
    }

    /// CompletingRebalance was interrupted: waiting syncs get `error`, assignments are cleared.
    fn reset_assignments(&mut self, error: ErrorCode) {
        self.proposed = None;
        self.pending_sync.clear();
        self.sync_deadline_ms = None;
        for m in &mut self.members {
            m.assignment = Bytes::new();
            m.answer_sync(SyncOutcome::error(error));
        }
    }

    fn try_complete_join(&mut self, now_ms: i64) {
        let Some(r) = self.rebalance else { return };
        if self.state == GroupState::PreparingRebalance
            && r.initial.is_none()
            && self.pending.is_empty()
            && self.members.iter().all(|m| m.join_waiter.is_some())
        {
            self.complete_join(now_ms);
        }
    }

    /// Ends PreparingRebalance: members that did not rejoin are dropped, the generation grows,
    /// and every joined member is answered (the leader with everyone's metadata).
    fn complete_join(&mut self, now_ms: i64) {
        self.rebalance = None;
        self.members.retain(|m| m.join_waiter.is_some());
        self.generation += 1;
        if self.members.is_empty() {
            self.protocol = None;
            self.leader = None;
            self.set_state(GroupState::Empty, now_ms);
            self.persist = Some(self.to_value(None, now_ms));
            return;
        }
        self.protocol = self.select_protocol();
        if self.leader.as_ref().is_none_or(|l| self.index_of(l).is_none()) {
            self.leader = self.members.first().map(|m| m.id.clone());
        }
        self.set_state(GroupState::CompletingRebalance, now_ms);
        let timeout =
            self.members.iter().map(|m| i64::from(m.rebalance_timeout_ms)).max().unwrap_or(0);
        self.sync_deadline_ms = Some(now_ms + timeout);
        self.pending_sync = self.members.iter().map(|m| m.id.clone()).collect();
        let outcomes: Vec<JoinOutcome> =
            self.members.iter().map(|m| self.outcome_for(&m.id)).collect();
        for (m, outcome) in self.members.iter_mut().zip(outcomes) {
            m.touch(now_ms);
            m.answer_join(outcome);
        }
    }

    /// SyncGroup.
    pub(crate) fn sync(&mut self, req: SyncRequest, now_ms: i64) -> SyncReply {
        let refuse = |code| SyncReply::Now(SyncOutcome::error(code));
        let member_id = req.member_id.as_str();
        let idx = match self.validate_member(member_id, req.group_instance_id.as_deref()) {
            Ok(i) => i,
            Err(code) => return refuse(code),
        };
        if req.generation != self.generation {
            return refuse(ErrorCode::IllegalGeneration);
        }
        if req.protocol_type.as_ref().is_some_and(|t| Some(t) != self.protocol_type.as_ref())
            || req.protocol.as_ref().is_some_and(|p| Some(p) != self.protocol.as_ref())
        {
            return refuse(ErrorCode::InconsistentGroupProtocol);
        }
        let generation = req.generation;
        let assignments = req.assignments;
        match self.state {
            GroupState::Empty | GroupState::Dead => refuse(ErrorCode::UnknownMemberId),
            GroupState::PreparingRebalance => refuse(ErrorCode::RebalanceInProgress),
            GroupState::Stable => {
                self.members[idx].touch(now_ms);
                SyncReply::Now(self.sync_outcome(idx))
            }
            GroupState::CompletingRebalance => {
                let (tx, rx) = oneshot::channel();
                let m = &mut self.members[idx];
                m.touch(now_ms);
                m.answer_sync(SyncOutcome::error(ErrorCode::RebalanceInProgress));
                m.sync_waiter = Some(tx);
                self.pending_sync.remove(member_id);
                if self.leader.as_deref() != Some(member_id) || self.proposed.is_some() {
                    return SyncReply::Wait(rx);
                }
                let proposed: HashMap<String, Bytes> = assignments.into_iter().collect();
                let value = self.to_value(Some(&proposed), now_ms);
                self.proposed = Some(proposed);
                SyncReply::Store { wait: rx, generation, value }
            }
        }
    }

    fn sync_outcome(&self, idx: usize) -> SyncOutcome {
        SyncOutcome {
            error: ErrorCode::None,
            protocol_type: self.protocol_type.clone(),
            protocol: self.protocol.clone(),
            assignment: self.members[idx].assignment.clone(),
        }
    }

    /// The leader's assignment for `generation` was stored (or not): on success the group is
    /// Stable and every waiting member gets its assignment; on failure they get the error and
    /// the group rebalances. A stale completion (the group moved on) changes nothing.
    pub(crate) fn complete_sync(
        &mut self,
        generation: i32,
        stored: Result<(), ErrorCode>,
        now_ms: i64,
    ) {
        if self.state != GroupState::CompletingRebalance || self.generation != generation {
            return;
        }
        let Some(mut proposed) = self.proposed.take() else { return };
        match stored {
            Ok(()) => {
                for m in &mut self.members {
                    m.assignment = proposed.remove(&m.id).unwrap_or_default();
                }
                self.pending_sync.clear();
                self.sync_deadline_ms = None;
                self.set_state(GroupState::Stable, now_ms);
                for idx in 0..self.members.len() {
                    let outcome = self.sync_outcome(idx);
                    self.members[idx].answer_sync(outcome);
                }
            }
            Err(code) => {
                self.reset_assignments(code);
                self.prepare_rebalance(now_ms);
            }
        }
    }

    /// Heartbeat.
    pub(crate) fn heartbeat(
        &mut self,
        generation: i32,
        member_id: &str,
        instance: Option<&str>,
        now_ms: i64,
    ) -> ErrorCode {
        let idx = match self.validate_member(member_id, instance) {
            Ok(i) => i,
            Err(code) => return code,
        };
        if generation != self.generation {
            return ErrorCode::IllegalGeneration;
        }
        match self.state {
            GroupState::Empty | GroupState::Dead => ErrorCode::UnknownMemberId,
            GroupState::PreparingRebalance => {
                self.members[idx].touch(now_ms);
                ErrorCode::RebalanceInProgress
            }
            GroupState::CompletingRebalance | GroupState::Stable => {
                self.members[idx].touch(now_ms);
                ErrorCode::None
            }
        }
    }

    /// LeaveGroup for one member (by member id, or by instance id alone for static members).
    pub(crate) fn leave(
        &mut self,
        member_id: &str,
        instance: Option<&str>,
        now_ms: i64,
    ) -> ErrorCode {
        if instance.is_none() && self.pending.remove(member_id).is_some() {
            self.try_complete_join(now_ms);
            return ErrorCode::None;
        }
        let idx = match instance {
            Some(inst) => {
                match self.members.iter().position(|m| m.group_instance_id.as_deref() == Some(inst))
                {
                    Some(i) if member_id.is_empty() || self.members[i].id == member_id => i,
                    Some(_) => return ErrorCode::FencedInstanceId,
                    None => return ErrorCode::UnknownMemberId,
                }
            }
            None => match self.index_of(member_id) {
                Some(i) => i,
                None => return ErrorCode::UnknownMemberId,
            },
        };
        self.remove_member(idx, now_ms);
        ErrorCode::None
    }

    fn remove_member(&mut self, idx: usize, now_ms: i64) {
        let mut m = self.members.remove(idx);
        m.answer_join(JoinOutcome::error(ErrorCode::UnknownMemberId, &m.id));
        m.answer_sync(SyncOutcome::error(ErrorCode::UnknownMemberId));
        self.pending_sync.remove(&m.id);
        if self.leader.as_deref() == Some(m.id.as_str()) {
            self.leader = self
                .members
                .iter()
                .find(|m| m.join_waiter.is_some())
                .or(self.members.first())
                .map(|m| m.id.clone());
        }
        match self.state {
            GroupState::Stable | GroupState::CompletingRebalance => {
                self.prepare_rebalance(now_ms);
                self.try_complete_join(now_ms);
            }
            GroupState::PreparingRebalance => self.try_complete_join(now_ms),
            GroupState::Empty | GroupState::Dead => {}
        }
    }

    /// Checks an OffsetCommit's member and generation (Kafka's rules: a commit with a negative
    /// generation is a standalone consumer's, allowed only while the group is empty).
    pub(crate) fn validate_commit(
        &mut self,
        generation: i32,
        member_id: &str,
        instance: Option<&str>,
        now_ms: i64,
    ) -> Result<(), ErrorCode> {
        if let Some(inst) = instance
            && self
                .members
                .iter()
                .any(|m| m.group_instance_id.as_deref() == Some(inst) && m.id != member_id)
        {
            return Err(ErrorCode::FencedInstanceId);
        }
        if self.state == GroupState::Dead {
            return Err(ErrorCode::CoordinatorNotAvailable);
        }
        if generation < 0 && self.state == GroupState::Empty {
            return Ok(());
        }
        if self.state == GroupState::CompletingRebalance {
            return Err(ErrorCode::RebalanceInProgress);
        }
        let idx = self.index_of(member_id).ok_or(ErrorCode::UnknownMemberId)?;
        if generation != self.generation {
            return Err(ErrorCode::IllegalGeneration);
        }
        self.members[idx].touch(now_ms);
        Ok(())
    }

    /// Records a stored offset unless a later record for the partition is already applied.
    pub(crate) fn apply_offset(
        &mut self,
        topic: &str,
        partition: i32,
        value: Option<OffsetValue>,
        log_offset: i64,
    ) {
        let key = (topic.to_string(), partition);
        if self.offsets.get(&key).is_some_and(|c| c.log_offset > log_offset) {
            return;
        }
        match value {
            Some(value) => {
                self.offsets.insert(key, Committed { value, log_offset });
            }
            None => {
                self.offsets.remove(&key);
            }
        }
    }

    /// Expires sessions, ends rebalances whose deadline passed and drops members that never
    /// synced. Call periodically.
    pub(crate) fn tick(&mut self, now_ms: i64) {
        let before = self.pending.len();
        self.pending.retain(|_, deadline| *deadline > now_ms);
        if self.pending.len() != before {
            self.try_complete_join(now_ms);
        }
        while let Some(idx) = self.members.iter().position(|m| m.expired(now_ms)) {
            tracing::info!(group = %self.id, member = %self.members[idx].id, "member session expired");
            self.remove_member(idx, now_ms);
        }
        if let Some(mut r) = self.rebalance
            && self.state == GroupState::PreparingRebalance
            && now_ms >= r.deadline_ms
        {
            match &mut r.initial {
                Some(i) if i.joined_since_extended && now_ms < i.cap_ms => {
                    i.joined_since_extended = false;
                    r.deadline_ms = (now_ms + i.delay_ms).min(i.cap_ms);
                    self.rebalance = Some(r);
                }
                _ => self.complete_join(now_ms),
            }
        }
        if self.state == GroupState::CompletingRebalance
            && self.proposed.is_none()
            && self.sync_deadline_ms.is_some_and(|d| now_ms >= d)
        {
            let late: Vec<String> = self.pending_sync.iter().cloned().collect();
            for id in late {
                if let Some(idx) = self.index_of(&id) {
                    tracing::info!(group = %self.id, member = %id, "member did not sync in time");
                    self.remove_member(idx, now_ms);
                }
            }
        }
    }

    /// The topics the members subscribe to (consumer protocol only), for OffsetDelete.
    pub(crate) fn subscribed_topics(&self) -> Option<HashSet<String>> {
        if self.protocol_type.as_deref() != Some("consumer") {
            return None;
        }
        let protocol = self.protocol.clone()?;
        let mut topics = HashSet::new();
        for m in &self.members {
            topics.extend(super::consumer_protocol::subscription_topics(&m.metadata(&protocol)));
        }
        Some(topics)
    }
}

#[cfg(test)]
#[path = "classic_tests.rs"]
mod tests;
