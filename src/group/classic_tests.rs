//! The classic protocol's rules, step by step, with a hand-driven clock.

use bytes::Bytes;

use super::*;

fn config() -> GroupConfig {
    GroupConfig { initial_rebalance_delay_ms: 0, ..GroupConfig::default() }
}

fn req(member_id: &str, protocols: &[&str]) -> JoinRequest {
    JoinRequest {
        member_id: member_id.into(),
        group_instance_id: None,
        client_id: "c".into(),
        client_host: "/127.0.0.1".into(),
        session_timeout_ms: 10_000,
        rebalance_timeout_ms: 30_000,
        protocol_type: "consumer".into(),
        protocols: protocols.iter().map(|p| (p.to_string(), Bytes::from(p.to_string()))).collect(),
        require_known_member_id: true,
    }
}

fn now(r: JoinReply) -> JoinOutcome {
    match r {
        JoinReply::Now(o) => o,
        JoinReply::Wait(_) => panic!("expected an immediate answer"),
    }
}

fn waiting(r: JoinReply) -> oneshot::Receiver<JoinOutcome> {
    match r {
        JoinReply::Wait(rx) => rx,
        JoinReply::Now(o) => panic!("expected to wait, got {:?}", o.error),
    }
}

/// A member id via MEMBER_ID_REQUIRED, then the real join.
fn join_new(g: &mut Group, protocols: &[&str], t: i64) -> (String, oneshot::Receiver<JoinOutcome>) {
    let first = now(g.join(req("", protocols), &config(), t));
    assert_eq!(first.error, ErrorCode::MemberIdRequired);
    let id = first.member_id.clone();
    (id.clone(), waiting(g.join(req(&id, protocols), &config(), t)))
}

fn stabilize(g: &mut Group, leader: &str, t: i64) {
    let assignments =
        g.members.iter().map(|m| (m.id.clone(), Bytes::from(format!("a-{}", m.id)))).collect();
    let sync = SyncRequest {
        generation: g.generation,
        member_id: leader.into(),
        assignments,
        ..Default::default()
    };
    match g.sync(sync, t) {
        SyncReply::Store { generation, .. } => g.complete_sync(generation, Ok(()), t),
        other => panic!("leader sync should store, got {other:?}"),
    }
    assert_eq!(g.state, GroupState::Stable);
}

#[test]
fn a_lone_member_joins_syncs_and_becomes_stable() {
    let mut g = Group::new("g", &config(), 0);
    let (id, mut rx) = join_new(&mut g, &["range"], 0);
    let o = rx.try_recv().expect("answered");
    assert_eq!((o.error, o.generation, o.leader.as_str()), (ErrorCode::None, 1, id.as_str()));
    assert_eq!(o.protocol.as_deref(), Some("range"));
    assert_eq!(o.members.len(), 1, "the leader sees every member");
    assert_eq!(g.state, GroupState::CompletingRebalance);
    stabilize(&mut g, &id, 1);
    assert_eq!(g.heartbeat(1, &id, None, 2), ErrorCode::None);
}

#[test]
fn a_second_member_triggers_a_rebalance_that_waits_for_the_first() {
    let mut g = Group::new("g", &config(), 0);
    let (a, _) = join_new(&mut g, &["range"], 0);
    stabilize(&mut g, &a, 0);
    let (b, mut rx_b) = join_new(&mut g, &["range"], 10);
    assert_eq!(g.state, GroupState::PreparingRebalance);
    assert!(rx_b.try_recv().is_err(), "b waits until a rejoins");
    assert_eq!(g.heartbeat(1, &a, None, 20), ErrorCode::RebalanceInProgress);
    let mut rx_a = waiting(g.join(req(&a, &["range"]), &config(), 30));
    let (oa, ob) = (rx_a.try_recv().expect("a"), rx_b.try_recv().expect("b"));
    assert_eq!((oa.generation, ob.generation), (2, 2));
    assert_eq!(oa.leader, a);
    assert_eq!((oa.members.len(), ob.members.len()), (2, 0));
    assert_eq!(ob.member_id, b);
}

#[test]
fn members_that_do_not_rejoin_in_time_are_dropped() {
    let mut g = Group::new("g", &config(), 0);
    let (a, _) = join_new(&mut g, &["range"], 0);
    stabilize(&mut g, &a, 0);
    let (b, mut rx_b) = join_new(&mut g, &["range"], 1000);
    // a keeps heartbeating but never rejoins: at the rebalance deadline it is removed.
    for t in (2000..31_000).step_by(2000) {
        assert_eq!(g.heartbeat(1, &a, None, t), ErrorCode::RebalanceInProgress);
        g.tick(t);
    }
    g.tick(1000 + 29_999);
    assert!(rx_b.try_recv().is_err());
    g.tick(1000 + 30_000);
    let o = rx_b.try_recv().expect("completed at the deadline");
    assert_eq!((o.generation, o.leader.as_str()), (2, b.as_str()));
    assert_eq!(g.heartbeat(2, &a, None, 31_001), ErrorCode::UnknownMemberId);
}

#[test]
fn an_expired_session_removes_the_member_and_rebalances() {
    let mut g = Group::new("g", &config(), 0);
    let (a, _) = join_new(&mut g, &["range"], 0);
    stabilize(&mut g, &a, 0);
    let (b, _) = join_new(&mut g, &["range"], 0);
    drop(waiting(g.join(req(&a, &["range"]), &config(), 0)));
    stabilize(&mut g, &a, 0);
    assert_eq!(g.heartbeat(2, &b, None, 9_000), ErrorCode::None);
    g.tick(10_000); // a's session lapsed, b's did not
    assert_eq!(g.state, GroupState::PreparingRebalance);
    assert!(g.index_of(&a).is_none());
    assert_eq!(g.heartbeat(2, &b, None, 10_001), ErrorCode::RebalanceInProgress);
}

#[test]
fn the_error_codes_real_clients_expect() {
    let cfg = config();
    let mut g = Group::new("g", &cfg, 0);
    let mut short = req("", &["range"]);
    short.session_timeout_ms = 10;
    assert_eq!(now(g.join(short, &cfg, 0)).error, ErrorCode::InvalidSessionTimeout);
    assert_eq!(now(g.join(req("", &[]), &cfg, 0)).error, ErrorCode::InconsistentGroupProtocol);
    assert_eq!(now(g.join(req("nobody", &["range"]), &cfg, 0)).error, ErrorCode::UnknownMemberId);
    let (a, _) = join_new(&mut g, &["range"], 0);
    stabilize(&mut g, &a, 0);
    // Another member with no protocol in common.
    assert_eq!(
        now(g.join(req("", &["other"]), &cfg, 0)).error,
        ErrorCode::InconsistentGroupProtocol
    );
    let mut other_type = req("", &["range"]);
    other_type.protocol_type = "connect".into();
    assert_eq!(now(g.join(other_type, &cfg, 0)).error, ErrorCode::InconsistentGroupProtocol);
    assert_eq!(g.heartbeat(7, &a, None, 1), ErrorCode::IllegalGeneration);
    assert_eq!(g.heartbeat(1, "ghost", None, 1), ErrorCode::UnknownMemberId);
    match g.sync(SyncRequest { generation: 7, member_id: a.clone(), ..Default::default() }, 1) {
        SyncReply::Now(o) => assert_eq!(o.error, ErrorCode::IllegalGeneration),
        other => panic!("{other:?}"),
    }
    let wrong = SyncRequest {
        generation: 1,
        member_id: a.clone(),
        protocol_type: Some("consumer".into()),
        protocol: Some("roundrobin".into()),
        ..Default::default()
    };
    match g.sync(wrong, 1) {
        SyncReply::Now(o) => assert_eq!(o.error, ErrorCode::InconsistentGroupProtocol),
        other => panic!("{other:?}"),
    }
    assert_eq!(g.validate_commit(1, "ghost", None, 1), Err(ErrorCode::UnknownMemberId));
    assert_eq!(g.validate_commit(0, &a, None, 1), Err(ErrorCode::IllegalGeneration));
    assert_eq!(g.validate_commit(-1, "", None, 1), Err(ErrorCode::UnknownMemberId));
    assert_eq!(g.validate_commit(1, &a, None, 1), Ok(()));
    let mut small = config();
    small.max_size = 1;
    assert_eq!(now(g.join(req("", &["range"]), &small, 1)).error, ErrorCode::GroupMaxSizeReached);
}

#[test]
fn a_standalone_consumer_commits_only_while_the_group_is_empty() {
    let mut g = Group::new("g", &config(), 0);
    assert_eq!(g.validate_commit(-1, "", None, 0), Ok(()));
    let (a, _) = join_new(&mut g, &["range"], 0);
    assert_eq!(g.validate_commit(-1, "", None, 0), Err(ErrorCode::RebalanceInProgress));
    stabilize(&mut g, &a, 0);
    assert_eq!(g.leave(&a, None, 1), ErrorCode::None);
    assert_eq!(g.state, GroupState::Empty);
    assert_eq!(g.generation, 2, "going empty is a generation of its own");
    assert!(g.take_persist().is_some(), "the empty group is stored");
    assert_eq!(g.validate_commit(-1, "", None, 2), Ok(()));
}

#[test]
fn the_most_voted_common_protocol_wins() {
    let mut g = Group::new("g", &config(), 0);
    let (a, _) = join_new(&mut g, &["range", "roundrobin"], 0);
    stabilize(&mut g, &a, 0);
    let (_b, _) = join_new(&mut g, &["roundrobin", "range"], 0);
    let (_c, _) = join_new(&mut g, &["roundrobin", "range"], 0);
    let mut rx = waiting(g.join(req(&a, &["range", "roundrobin"]), &config(), 0));
    assert_eq!(rx.try_recv().expect("done").protocol.as_deref(), Some("roundrobin"));
}

#[test]
fn a_static_member_rejoining_a_stable_group_keeps_its_assignment_and_fences_the_old_id() {
    let cfg = config();
    let mut g = Group::new("g", &cfg, 0);
    let mut r = req("", &["range"]);
    r.group_instance_id = Some("i-1".into());
    let mut rx = waiting(g.join(r.clone(), &cfg, 0));
    let old = rx.try_recv().expect("joined").member_id;
    stabilize(&mut g, &old, 0);
    let o = now(g.join(r, &cfg, 1));
    assert_eq!(o.error, ErrorCode::None);
    assert_ne!(o.member_id, old);
    assert_eq!(o.generation, 1, "no rebalance");
    assert!(o.skip_assignment, "it leads: keep the current assignment");
    assert_eq!(g.state, GroupState::Stable);
    let stored = g.take_persist().expect("the new member id is stored");
    assert_eq!(stored.members[0].member_id, o.member_id);
    assert_eq!(g.heartbeat(1, &old, Some("i-1"), 2), ErrorCode::FencedInstanceId);
    assert_eq!(g.heartbeat(1, &o.member_id, Some("i-1"), 2), ErrorCode::None);
}

#[test]
fn a_failed_assignment_store_rebalances_and_a_late_one_is_ignored() {
    let mut g = Group::new("g", &config(), 0);
    let (a, _) = join_new(&mut g, &["range"], 0);
    let (generation, mut rx) = match g
        .sync(SyncRequest { generation: 1, member_id: a.clone(), ..Default::default() }, 0)
    {
        SyncReply::Store { generation, wait, .. } => (generation, wait),
        other => panic!("{other:?}"),
    };
    g.complete_sync(generation, Err(ErrorCode::NotCoordinator), 1);
    assert_eq!(rx.try_recv().expect("answered").error, ErrorCode::NotCoordinator);
    assert_eq!(g.state, GroupState::PreparingRebalance);
    g.complete_sync(generation, Ok(()), 2);
    assert_eq!(g.state, GroupState::PreparingRebalance);
}

#[test]
fn the_initial_delay_waits_for_more_members_then_completes() {
    let cfg = GroupConfig { initial_rebalance_delay_ms: 3000, ..GroupConfig::default() };
    let mut g = Group::new("g", &cfg, 0);
    let a = now(g.join(req("", &["range"]), &cfg, 0)).member_id;
    let mut rx_a = waiting(g.join(req(&a, &["range"]), &cfg, 0));
    g.tick(2000);
    let b = now(g.join(req("", &["range"]), &cfg, 2000)).member_id;
    let mut rx_b = waiting(g.join(req(&b, &["range"]), &cfg, 2000));
    g.tick(3000); // b joined during the delay: extended to 6000
    assert!(rx_a.try_recv().is_err());
    g.tick(6000);
    assert_eq!(rx_a.try_recv().expect("a").generation, 1);
    assert_eq!(rx_b.try_recv().expect("b").generation, 1);
}

#[test]
fn stored_groups_come_back_stable_with_their_members() {
    let mut g = Group::new("g", &config(), 0);
    let (a, _) = join_new(&mut g, &["range"], 0);
    stabilize(&mut g, &a, 0);
    let back = Group::from_value("g", g.to_value(None, 5), &config(), 100);
    assert_eq!((back.state, back.generation), (GroupState::Stable, 1));
    assert_eq!(back.leader.as_deref(), Some(a.as_str()));
    assert_eq!(back.members[0].assignment, Bytes::from(format!("a-{a}")));
}

#[test]
fn a_later_offset_record_wins_whatever_order_acknowledgements_come_in() {
    let mut g = Group::new("g", &config(), 0);
    let v = |o| OffsetValue {
        offset: o,
        leader_epoch: -1,
        metadata: String::new(),
        commit_timestamp_ms: 0,
    };
    g.apply_offset("t", 0, Some(v(20)), 11);
    g.apply_offset("t", 0, Some(v(10)), 10);
    assert_eq!(g.offsets[&("t".to_string(), 0)].value.offset, 20);
    g.apply_offset("t", 0, None, 12);
    assert!(g.offsets.is_empty());
}
