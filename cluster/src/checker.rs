//! The history checker: a pure function from a recorded history to the invariants of
//! DESIGN.md it breaks. It trusts nothing but the history; the final read (each partition read
//! from its leader after every fault was healed) is the reference every other observation is
//! held against.
//!
//! - Lost: an acknowledged write is not in the final log (invariant 1).
//! - Duplicated: one write is at more than one offset within one producer session (invariant
//!   5: idempotent producers). A broker deduplicates by (producer id, epoch, sequence), so copies
//!   written in different sessions of one producer were re-sent as new writes by the client: after
//!   an OUT_OF_ORDER_SEQUENCE_NUMBER on a pipelined request, librdkafka bumps its epoch and
//!   re-sends every unacknowledged batch, including ones whose earlier attempt was written
//!   (librdkafka issue #4953, open; Kafka brokers store the same copies). Those are counted and
//!   listed, not violations; copies in one session, or without a session, are.
//! - Divergent: two observations disagree on the record at one offset, or a write was
//!   acknowledged at an offset the final log holds something else at (invariant 2).
//! - Vanished: a reader saw a record at an offset the final log does not reach (invariant 2: no
//!   reader sees a record that later disappears).
//! - Out of order: within one assignment, a reader's offsets of a partition did not go up one by
//!   one (invariant 2: in order, nothing skipped).
//! - Committed offsets: a group's committed offset went backwards between two reads, or a read
//!   sent after a commit was acknowledged shows less than that commit.
//! - Admin: an acknowledged topic creation, partition increase or deletion is not reflected in
//!   the topics after the run.
//! - Replicas that differ after the run, nodes that crashed without being told to, faults the
//!   cluster did not recover from, and an incomplete history (no final read).
//!
//! - Compacted topic: the latest acknowledged write of every key must be the key's record in
//!   the final compacted view, or lose only to a later write of that key that was really sent
//!   (lost, else divergent); its replicas must hold the same latest record per key.
//!
//! - Transactions: see `txn_check.rs`.
//!
//! Writes that failed are indeterminate: they may or may not be in the log, but never twice.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use crate::history::Event;

/// One broken invariant, with enough detail to find it in the history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Violation {
    /// A transactional invariant (see `txn_check.rs`); `kind` is its class.
    Txn {
        kind: &'static str,
        detail: String,
    },
    Lost {
        p: i32,
        o: i64,
        v: String,
    },
    Duplicated {
        p: i32,
        v: String,
        offsets: Vec<i64>,
    },
    Divergent {
        p: i32,
        o: i64,
        expected: String,
        seen: String,
        by: String,
    },
    Vanished {
        p: i32,
        o: i64,
        v: String,
        by: String,
    },
    OutOfOrder {
        by: String,
        p: i32,
        prev: i64,
        next: i64,
    },
    CommitWentBack {
        p: i32,
        from: i64,
        to: i64,
        t: i64,
    },
    CommitLost {
        by: String,
        p: i32,
        committed: i64,
        read: i64,
        t: i64,
    },
    AdminLost {
        op: String,
        topic: String,
        detail: String,
    },
    ReplicasDiffer {
        p: i32,
        detail: String,
    },
    /// The compacted topic lost key `k`'s latest acknowledged write `v` (at `o`).
    KeyLost {
        k: String,
        o: i64,
        v: String,
        detail: String,
    },
    /// The compacted topic holds, for key `k`, a record no producer wrote there.
    KeyDivergent {
        k: String,
        detail: String,
    },
    CompactedReplicasDiffer {
        detail: String,
    },
    Crashed {
        node: i32,
        t: i64,
    },
    /// A producer went this long without an acknowledged write (liveness, not safety: every
    /// fault heals and recovers well within it).
    Stalled {
        by: String,
        from: i64,
        to: i64,
    },
    NotRecovered {
        n: u64,
        kind: String,
        detail: String,
    },
    Incomplete {
        detail: String,
    },
}

impl Violation {
    /// The summary row the violation counts in.
    pub fn class(&self) -> &'static str {
        match self {
            Violation::Txn { kind, .. } => kind,
            Violation::Lost { .. } | Violation::KeyLost { .. } => "lost",
            Violation::KeyDivergent { .. } => "divergent",
            Violation::CompactedReplicasDiffer { .. } => "replicas differ",
            Violation::Duplicated { .. } => "duplicated",
            Violation::Divergent { .. } => "divergent",
            Violation::Vanished { .. } => "vanished",
            Violation::OutOfOrder { .. } => "out of order",
            Violation::CommitWentBack { .. } | Violation::CommitLost { .. } => {
                "committed offset went back"
            }
            Violation::AdminLost { .. } => "admin operation lost",
            Violation::ReplicasDiffer { .. } => "replicas differ",
            Violation::Crashed { .. } => "node crashed",
            Violation::Stalled { .. } => "writes stalled",
            Violation::NotRecovered { .. } => "not recovered",
            Violation::Incomplete { .. } => "history incomplete",
        }
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Violation::Txn { kind, detail } => write!(f, "{kind}: {detail}"),
            Violation::Lost { p, o, v } => {
                write!(f, "lost: {v} acknowledged at p{p}@{o} is not in the final log")
            }
            Violation::Duplicated { p, v, offsets } => {
                write!(f, "duplicated: {v} is in p{p} at offsets {offsets:?}")
            }
            Violation::Divergent { p, o, expected, seen, by } => write!(
                f,
                "divergent: p{p}@{o} holds {expected} in the final log, {by} saw {seen} there"
            ),
            Violation::Vanished { p, o, v, by } => {
                write!(f, "vanished: {by} read {v} at p{p}@{o}, beyond the final log's end")
            }
            Violation::OutOfOrder { by, p, prev, next } => {
                write!(f, "out of order: {by} read p{p}@{next} right after p{p}@{prev}")
            }
            Violation::CommitWentBack { p, from, to, t } => {
                write!(f, "committed offset of p{p} went back from {from} to {to} (at {t})")
            }
            Violation::CommitLost { by, p, committed, read, t } => write!(
                f,
                "commit of p{p} at {committed} by {by} acknowledged at {t}, later read as {read}"
            ),
            Violation::AdminLost { op, topic, detail } => {
                write!(f, "admin: acknowledged {op} of {topic} lost: {detail}")
            }
            Violation::ReplicasDiffer { p, detail } => {
                write!(f, "replicas of p{p} differ: {detail}")
            }
            Violation::KeyLost { k, o, v, detail } => {
                write!(
                    f,
                    "compacted: key {k}'s latest acknowledged write {v} at {o} lost: {detail}"
                )
            }
            Violation::KeyDivergent { k, detail } => write!(f, "compacted: key {k}: {detail}"),
            Violation::CompactedReplicasDiffer { detail } => {
                write!(f, "replicas of the compacted topic differ: {detail}")
            }
            Violation::Crashed { node, t } => write!(f, "node {node} crashed (at {t})"),
            Violation::Stalled { by, from, to } => write!(
                f,
                "{by} had no write acknowledged for {} s (from {from} to {to})",
                (to - from) / 1000
            ),
            Violation::NotRecovered { n, kind, detail } => {
                write!(f, "fault #{n} ({kind}): the cluster did not recover: {detail}")
            }
            Violation::Incomplete { detail } => write!(f, "history incomplete: {detail}"),
        }
    }
}

/// Counts for the summary.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Writes the producers attempted (from their `done` lines; acks + failures when missing).
    pub attempted: u64,
    pub acknowledged: u64,
    /// Acknowledged without an offset (librdkafka, after a timed-out request; see history.rs).
    pub acknowledged_without_offset: u64,
    /// Writes that failed (indeterminate).
    pub failed: u64,
    /// Failed writes found in the final log anyway (legal: the failure was indeterminate).
    pub failed_but_written: u64,
    pub reads: u64,
    pub read_sessions: u64,
    pub commits: u64,
    pub offset_reads: u64,
    pub admin_ok: u64,
    pub admin_failed: u64,
    pub final_records: u64,
    pub partitions: u64,
    /// Writes in the final log more than once, each copy in a different producer session.
    pub resent_in_new_session: u64,
    /// Acknowledged writes to the compacted topic, and its keys in the final view.
    pub compacted_acknowledged: u64,
    pub compacted_keys: u64,
    /// Transactions committed, aborted on purpose and with an unknown end; read_committed reads.
    pub txn_committed: u64,
    pub txn_aborted: u64,
    pub txn_unknown: u64,
    pub txn_reads: u64,
}

#[derive(Debug, Clone, Default)]
pub struct Report {
    pub stats: Stats,
    pub violations: Vec<Violation>,
    /// The writes counted in `stats.resent_in_new_session`, as "v in pP at offsets [..] in
    /// sessions [..]".
    pub resent: Vec<String>,
}

impl Report {
    pub fn count(&self, class: &str) -> usize {
        self.violations.iter().filter(|v| v.class() == class).count()
    }

    pub fn passed(&self) -> bool {
        self.violations.is_empty()
    }
}

/// The final log: partition → offset → value, and value → offsets.
#[derive(Default)]
struct FinalLog {
    by_offset: BTreeMap<i32, BTreeMap<i64, String>>,
    by_value: HashMap<(i32, String), Vec<i64>>,
    /// (partition, offset) → (producer id, producer epoch) of the record's batch.
    session: HashMap<(i32, i64), (i64, i16)>,
    /// Partitions whose final read completed, with their high watermark.
    read: BTreeMap<i32, i64>,
}

impl FinalLog {
    fn new(events: &[Event]) -> Self {
        let mut log = FinalLog::default();
        for e in events {
            match e {
                Event::Final { p, o, v, session } => {
                    log.by_offset.entry(*p).or_default().insert(*o, v.clone());
                    log.by_value.entry((*p, v.clone())).or_default().push(*o);
                    if let Some(s) = session {
                        log.session.insert((*p, *o), *s);
                    }
                }
                Event::FinalEnd { p, high_watermark, .. } => {
                    log.read.insert(*p, *high_watermark);
                }
                _ => {}
            }
        }
        log
    }

    fn at(&self, p: i32, o: i64) -> Option<&String> {
        self.by_offset.get(&p).and_then(|m| m.get(&o))
    }
}

/// Checks a whole history.
pub fn check(events: &[Event]) -> Report {
    let log = FinalLog::new(events);
    let mut r = Report::default();
    r.stats.partitions = log.read.len() as u64;
    r.stats.final_records = log.by_offset.values().map(|m| m.len() as u64).sum();
    check_writes(events, &log, &mut r);
    check_reads(events, &log, &mut r);
    check_commits(events, &mut r);
    check_admin(events, &mut r);
    check_scram(events, &mut r);
    check_acls(events, &mut r);
    check_stalls(events, &mut r);
    check_run(events, &mut r);
    check_compacted(events, &mut r);
    crate::txn_check::check_txns(events, &mut r);
    r
}

/// The compacted topic (see the module doc).
fn check_compacted(events: &[Event], r: &mut Report) {
    let mut latest_acked: BTreeMap<&str, (i64, &str)> = BTreeMap::new();
    let mut sent: std::collections::HashSet<(&str, &str)> = std::collections::HashSet::new();
    let mut finals: BTreeMap<&str, (i64, &str)> = BTreeMap::new();
    let (mut read_back, mut acked) = (false, 0u64);
    for e in events {
        match e {
            Event::KeyedAck { o, k, v, .. } => {
                acked += 1;
                sent.insert((k, v));
                if let Some(o) = o
                    && latest_acked.get(k.as_str()).is_none_or(|(lo, _)| o > lo)
                {
                    latest_acked.insert(k, (*o, v));
                }
            }
            Event::KeyedFail { k, v, .. } => {
                sent.insert((k, v));
            }
            Event::KeyedFinal { o, k, v } => {
                finals.insert(k, (*o, v));
            }
            Event::KeyedFinalEnd { .. } => read_back = true,
            Event::CompactedReplicas { identical: false, detail, .. } => {
                r.violations.push(Violation::CompactedReplicasDiffer { detail: detail.clone() })
            }
            _ => {}
        }
    }
    r.stats.compacted_acknowledged = acked;
    r.stats.compacted_keys = finals.len() as u64;
    if acked == 0 {
        return;
    }
    if !read_back {
        r.violations.push(Violation::Incomplete {
            detail: "the compacted topic was written but never read back at the end".into(),
        });
        return;
    }
    for (k, (ao, av)) in &latest_acked {
        let lost = |detail: String| Violation::KeyLost {
            k: k.to_string(),
            o: *ao,
            v: av.to_string(),
            detail,
        };
        match finals.get(k) {
            None => r.violations.push(lost("the key is gone".into())),
            Some((fo, fv)) if fo < ao => {
                r.violations.push(lost(format!("the final view holds {fv} at {fo}")))
            }
            Some((fo, fv)) if fo == ao && fv != av => r.violations.push(Violation::KeyDivergent {
                k: k.to_string(),
                detail: format!("{fv} at {fo}, where {av} was acknowledged"),
            }),
            _ => {}
        }
    }
    for (k, (fo, fv)) in &finals {
        if !sent.contains(&(*k, *fv)) {
            r.violations.push(Violation::KeyDivergent {
                k: k.to_string(),
                detail: format!("{fv} at {fo} was never written with this key"),
            });
        }
    }
}

fn check_writes(events: &[Event], log: &FinalLog, r: &mut Report) {
    let mut attempted = 0;
    let mut done_workers = 0;
    let mut partitions_written = std::collections::BTreeSet::new();
    for e in events {
        match e {
            Event::Ack { w, p, o, v, .. } => {
                r.stats.acknowledged += 1;
                partitions_written.insert(*p);
                let at = log.by_value.get(&(*p, v.clone()));
                let Some(o) = o else {
                    // Acknowledged without an offset: it must be there, anywhere.
                    r.stats.acknowledged_without_offset += 1;
                    if at.is_none() && log.read.contains_key(p) {
                        r.violations.push(Violation::Lost { p: *p, o: -1, v: v.clone() });
                    }
                    continue;
                };
                match at {
                    None if log.read.contains_key(p) => {
                        r.violations.push(Violation::Lost { p: *p, o: *o, v: v.clone() })
                    }
                    None => {}
                    Some(offsets) if !offsets.contains(o) => {
                        let expected = log.at(*p, *o).cloned().unwrap_or_else(|| "nothing".into());
                        r.violations.push(Violation::Divergent {
                            p: *p,
                            o: *o,
                            expected,
                            seen: v.clone(),
                            by: format!("{w}'s acknowledgement"),
                        });
                    }
                    Some(_) => {}
                }
            }
            Event::Fail { p, v, .. } => {
                r.stats.failed += 1;
                if log.by_value.contains_key(&(*p, v.clone())) {
                    r.stats.failed_but_written += 1;
                }
            }
            Event::Done { sent, keyed: false, .. } => {
                attempted += sent;
                done_workers += 1;
            }
            _ => {}
        }
    }
    r.stats.attempted =
        if done_workers > 0 { attempted } else { r.stats.acknowledged + r.stats.failed };
    for p in partitions_written {
        if !log.read.contains_key(&p) {
            r.violations.push(Violation::Incomplete {
                detail: format!("partition {p} was written but never read back at the end"),
            });
        }
    }
    let mut duplicates: Vec<_> = log.by_value.iter().filter(|(_, o)| o.len() > 1).collect();
    duplicates.sort();
    for ((p, v), offsets) in duplicates {
        let mut offsets = offsets.clone();
        offsets.sort();
        let mut distinct: Vec<(i64, i16)> =
            offsets.iter().filter_map(|o| log.session.get(&(*p, *o)).copied()).collect();
        distinct.sort();
        distinct.dedup();
        if distinct.len() == offsets.len() {
            r.stats.resent_in_new_session += 1;
            r.resent.push(format!("{v} in p{p} at offsets {offsets:?} in sessions {distinct:?}"));
        } else {
            r.violations.push(Violation::Duplicated { p: *p, v: v.clone(), offsets });
        }
    }
}

fn check_reads(events: &[Event], log: &FinalLog, r: &mut Report) {
    // (reader, partition) → last offset read in the reader's current session.
    let mut last: HashMap<(String, i32), i64> = HashMap::new();
    for e in events {
        match e {
            Event::Assigned { w, .. } => {
                r.stats.read_sessions += 1;
                last.retain(|(reader, _), _| reader != w);
            }
            Event::Read { w, p, o, v, .. } => {
                r.stats.reads += 1;
                if let Some(prev) = last.insert((w.clone(), *p), *o)
                    && *o != prev + 1
                {
                    r.violations.push(Violation::OutOfOrder {
                        by: w.clone(),
                        p: *p,
                        prev,
                        next: *o,
                    });
                }
                let Some(hw) = log.read.get(p) else { continue };
                match log.at(*p, *o) {
                    Some(expected) if expected != v => r.violations.push(Violation::Divergent {
                        p: *p,
                        o: *o,
                        expected: expected.clone(),
                        seen: v.clone(),
                        by: w.clone(),
                    }),
                    Some(_) => {}
                    None if *o >= *hw => r.violations.push(Violation::Vanished {
                        p: *p,
                        o: *o,
                        v: v.clone(),
                        by: w.clone(),
                    }),
                    None => r.violations.push(Violation::Divergent {
                        p: *p,
                        o: *o,
                        expected: "a gap".into(),
                        seen: v.clone(),
                        by: w.clone(),
                    }),
                }
            }
            _ => {}
        }
    }
}

fn check_commits(events: &[Event], r: &mut Report) {
    // Acknowledged commits per partition, in time order: (t, offset, by).
    let mut acked: BTreeMap<i32, Vec<(i64, i64, String)>> = BTreeMap::new();
    let mut samples = Vec::new();
    for e in events {
        match e {
            Event::Commit { t, w, offsets } => {
                r.stats.commits += 1;
                for (p, o) in offsets {
                    if let Ok(p) = p.parse::<i32>() {
                        acked.entry(p).or_default().push((*t, *o, w.clone()));
                    }
                }
            }
            Event::Offsets { t, t0, offsets, .. } => samples.push((*t0, *t, offsets)),
            _ => {}
        }
    }
    r.stats.offset_reads = samples.len() as u64;
    for list in acked.values_mut() {
        list.sort();
    }
    samples.sort_by_key(|(t0, t, _)| (*t, *t0));
    let mut highest: BTreeMap<i32, i64> = BTreeMap::new();
    for (t0, t, offsets) in samples {
        let read = |p: i32| offsets.get(&p.to_string()).copied().unwrap_or(-1);
        for (p, o) in offsets {
            let Ok(p) = p.parse::<i32>() else { continue };
            let prev = highest.entry(p).or_insert(*o);
            if *o < *prev {
                r.violations.push(Violation::CommitWentBack { p, from: *prev, to: *o, t });
            }
            *prev = (*prev).max(*o);
        }
        // Every commit acknowledged before this read was sent must show in it.
        for (p, list) in &acked {
            let before = list.partition_point(|(ta, _, _)| *ta < t0);
            if let Some((ta, committed, by)) =
                list[..before].iter().max_by_key(|(_, o, _)| *o).cloned()
                && read(*p) < committed
            {
                r.violations.push(Violation::CommitLost {
                    by,
                    p: *p,
                    committed,
                    read: read(*p),
                    t: ta,
                });
            }
        }
    }
}

/// (operation, partitions asked for, acknowledged).
type AdminOp<'a> = (&'a str, Option<i32>, bool);

fn check_admin(events: &[Event], r: &mut Report) {
    let final_topics = events.iter().rev().find_map(|e| match e {
        Event::Topics { topics, .. } => Some(topics),
        _ => None,
    });
    let mut ops: BTreeMap<&str, Vec<AdminOp<'_>>> = BTreeMap::new();
    for e in events {
        if let Event::Admin { op, topic, partitions, ok, .. } = e {
            if op.starts_with("scram_") || op.starts_with("acl_") {
                continue;
            }
            if *ok {
                r.stats.admin_ok += 1;
            } else {
                r.stats.admin_failed += 1;
            }
            ops.entry(topic).or_default().push((op, *partitions, *ok));
        }
    }
    if ops.is_empty() {
        return;
    }
    let Some(topics) = final_topics else {
        r.violations.push(Violation::Incomplete { detail: "no topic list after the run".into() });
        return;
    };
    for (topic, list) in ops {
        // Names are never reused: any deletion attempt, acknowledged or not, may have happened.
        let delete_tried = list.iter().any(|(op, _, _)| *op == "delete");
        let deleted = list.iter().any(|(op, _, ok)| *op == "delete" && *ok);
        let exists = topics.get(topic);
        let lost = |detail: String, op: &str| Violation::AdminLost {
            op: op.to_string(),
            topic: topic.to_string(),
            detail,
        };
        if deleted && exists.is_some() {
            r.violations.push(lost("the topic still exists".into(), "delete"));
        }
        if delete_tried {
            continue;
        }
        for (op, partitions, ok) in &list {
            match (*op, ok, exists) {
                ("create", true, None) => {
                    r.violations.push(lost("the topic does not exist".into(), op))
                }
                ("create_partitions", true, None) => {
                    r.violations.push(lost("the topic does not exist".into(), op))
                }
                ("create_partitions", true, Some(n))
                    if partitions.is_some_and(|want| *n < want) =>
                {
                    r.violations.push(lost(format!("it has {n} partitions"), op))
                }
                _ => {}
            }
        }
    }
}

/// The admin worker's operations whose op starts with `prefix` (`scram_`, `acl_`), by the
/// name they act on (the history's `topic` field), counted into the stats.
fn named_admin_ops<'a>(
    events: &'a [Event],
    prefix: &str,
    r: &mut Report,
) -> BTreeMap<&'a str, Vec<(&'a str, bool)>> {
    let mut ops: BTreeMap<&str, Vec<(&str, bool)>> = BTreeMap::new();
    for e in events {
        if let Event::Admin { op, topic, ok, .. } = e
            && op.starts_with(prefix)
        {
            if *ok {
                r.stats.admin_ok += 1;
            } else {
                r.stats.admin_failed += 1;
            }
            ops.entry(topic.as_str()).or_default().push((op.as_str(), *ok));
        }
    }
    ops
}

/// SCRAM users in the metadata log: an acknowledged upsert of a user never deleted must be in
/// the final list, and an acknowledged deletion must not (user names are never reused).
fn check_scram(events: &[Event], r: &mut Report) {
    let ops = named_admin_ops(events, "scram_", r);
    if ops.is_empty() {
        return;
    }
    let Some(users) = events.iter().rev().find_map(|e| match e {
        Event::ScramUsers { users, .. } => Some(users),
        _ => None,
    }) else {
        r.violations
            .push(Violation::Incomplete { detail: "no SCRAM user list after the run".into() });
        return;
    };
    for (user, list) in ops {
        let delete_tried = list.iter().any(|(op, _)| *op == "scram_delete");
        let deleted = list.iter().any(|(op, ok)| *op == "scram_delete" && *ok);
        let upserted = list.iter().any(|(op, ok)| *op == "scram_upsert" && *ok);
        let exists = users.contains(user);
        let lost = |op: &str, detail: &str| Violation::AdminLost {
            op: op.to_string(),
            topic: format!("SCRAM user {user}"),
            detail: detail.to_string(),
        };
        if deleted && exists {
            r.violations.push(lost("scram_delete", "the user still has a credential"));
        }
        if upserted && !delete_tried && !exists {
            r.violations.push(lost("scram_upsert", "the user has no credential"));
        }
    }
}

/// ACL bindings in the metadata log, on every node: an acknowledged creation never deleted
/// must be served by each node after the run, and an acknowledged deletion by none (each
/// binding has a principal of its own, never reused).
fn check_acls(events: &[Event], r: &mut Report) {
    let ops = named_admin_ops(events, "acl_", r);
    if ops.is_empty() {
        return;
    }
    // The last list from each node.
    let mut lists: BTreeMap<i32, &std::collections::BTreeSet<String>> = BTreeMap::new();
    for e in events {
        if let Event::AclPrincipals { node, principals, .. } = e {
            lists.insert(*node, principals);
        }
    }
    if lists.is_empty() {
        r.violations.push(Violation::Incomplete { detail: "no ACL list after the run".into() });
        return;
    }
    for (principal, list) in ops {
        let delete_tried = list.iter().any(|(op, _)| *op == "acl_delete");
        let deleted = list.iter().any(|(op, ok)| *op == "acl_delete" && *ok);
        let created = list.iter().any(|(op, ok)| *op == "acl_create" && *ok);
        for (node, principals) in &lists {
            let exists = principals.contains(principal);
            let lost = |op: &str, detail: &str| Violation::AdminLost {
                op: op.to_string(),
                topic: format!("ACL binding of {principal} on node {node}"),
                detail: detail.to_string(),
            };
            if deleted && exists {
                r.violations.push(lost("acl_delete", "the binding is still served"));
            }
            if created && !delete_tried && !exists {
                r.violations.push(lost("acl_create", "the binding is not served"));
            }
        }
    }
}

/// Longest a producer may go without an acknowledged write: above the longest fault (hold
/// 10 s) plus the recovery bound (60 s) plus the pause between faults.
pub const STALL_MS_MAX: i64 = 90_000;

/// Liveness: each producer's acknowledgements, from its first event to its last, have no gap
/// longer than [`STALL_MS_MAX`].
fn check_stalls(events: &[Event], r: &mut Report) {
    let mut spans: BTreeMap<&str, (i64, i64, Vec<i64>)> = BTreeMap::new();
    for e in events {
        let (w, t, ack) = match e {
            Event::Ack { w, t, .. } | Event::KeyedAck { w, t, .. } => (w, *t, true),
            Event::Fail { w, t, .. } | Event::KeyedFail { w, t, .. } | Event::Done { w, t, .. } => {
                (w, *t, false)
            }
            _ => continue,
        };
        let span = spans.entry(w.as_str()).or_insert((t, t, Vec::new()));
        span.0 = span.0.min(t);
        span.1 = span.1.max(t);
        if ack {
            span.2.push(t);
        }
    }
    for (w, (first, last, mut acks)) in spans {
        if acks.is_empty() && last - first <= STALL_MS_MAX {
            continue;
        }
        acks.sort_unstable();
        let mut prev = first;
        for t in acks.into_iter().chain(std::iter::once(last)) {
            if t - prev > STALL_MS_MAX {
                r.violations.push(Violation::Stalled { by: w.to_string(), from: prev, to: t });
            }
            prev = prev.max(t);
        }
    }
}

fn check_run(events: &[Event], r: &mut Report) {
    let mut replica_checks = 0;
    for e in events {
        match e {
            Event::Replicas { p, identical, detail, .. } => {
                replica_checks += 1;
                if !identical {
                    r.violations.push(Violation::ReplicasDiffer { p: *p, detail: detail.clone() });
                }
            }
            Event::Crash { node, t } => {
                r.violations.push(Violation::Crashed { node: *node, t: *t })
            }
            Event::Incomplete { detail, .. } => {
                r.violations.push(Violation::Incomplete { detail: detail.clone() })
            }
            Event::Fault { n, kind, phase, detail, .. } if phase == "not_recovered" => {
                r.violations.push(Violation::NotRecovered {
                    n: *n,
                    kind: kind.clone(),
                    detail: detail.clone(),
                })
            }
            _ => {}
        }
    }
    if r.stats.partitions == 0 {
        r.violations.push(Violation::Incomplete { detail: "no partition was read back".into() });
    } else if replica_checks == 0 {
        r.violations.push(Violation::Incomplete { detail: "replicas were not compared".into() });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ack(p: i32, o: i64, v: &str) -> Event {
        Event::Ack { t: 10, w: "p1".into(), p, o: Some(o), v: v.into(), c: 5 }
    }
    fn fin(p: i32, o: i64, v: &str) -> Event {
        Event::Final { p, o, v: v.into(), session: None }
    }
    fn fin_in(p: i32, o: i64, v: &str, session: (i64, i16)) -> Event {
        Event::Final { p, o, v: v.into(), session: Some(session) }
    }
    fn end(p: i32, hw: i64) -> Event {
        Event::FinalEnd { t: 100, p, high_watermark: hw }
    }
    fn read(w: &str, p: i32, o: i64, v: &str) -> Event {
        Event::Read { t: 20, w: w.into(), p, o, v: v.into() }
    }
    fn replicas(p: i32) -> Event {
        Event::Replicas { t: 100, p, identical: true, detail: String::new() }
    }
    fn offsets(t0: i64, t: i64, pairs: &[(i32, i64)]) -> Event {
        Event::Offsets {
            t,
            t0,
            group: "g".into(),
            offsets: pairs.iter().map(|(p, o)| (p.to_string(), *o)).collect(),
        }
    }

    /// Three acknowledged writes, read by one consumer, all in the final log.
    fn clean() -> Vec<Event> {
        vec![
            ack(0, 0, "a"),
            ack(0, 1, "b"),
            ack(1, 0, "c"),
            Event::Assigned { t: 1, w: "c1".into(), ps: vec![0, 1] },
            read("c1", 0, 0, "a"),
            read("c1", 0, 1, "b"),
            read("c1", 1, 0, "c"),
            Event::Commit { t: 30, w: "c1".into(), offsets: [("0".into(), 2)].into() },
            offsets(40, 41, &[(0, 2)]),
            fin(0, 0, "a"),
            fin(0, 1, "b"),
            fin(1, 0, "c"),
            end(0, 2),
            end(1, 1),
            replicas(0),
            replicas(1),
        ]
    }

    #[test]
    fn a_clean_history_passes() {
        let r = check(&clean());
        assert!(r.passed(), "{:?}", r.violations);
        assert_eq!(r.stats.acknowledged, 3);
        assert_eq!(r.stats.reads, 3);
        assert_eq!(r.stats.final_records, 3);
    }

    #[test]
    fn a_lost_write_is_reported() {
        let mut h = clean();
        h.push(ack(1, 1, "d")); // acknowledged, never in the final log
        let r = check(&h);
        assert_eq!(r.violations, vec![Violation::Lost { p: 1, o: 1, v: "d".into() }]);
        assert_eq!(r.count("lost"), 1);
    }

    #[test]
    fn an_acknowledgement_without_an_offset_only_needs_the_write_to_be_there() {
        let mut h = clean();
        h.push(Event::Ack { t: 10, w: "p1".into(), p: 1, o: None, v: "c".into(), c: 5 });
        assert!(check(&h).passed());
        h.push(Event::Ack { t: 10, w: "p1".into(), p: 1, o: None, v: "gone".into(), c: 5 });
        assert_eq!(check(&h).count("lost"), 1);
    }

    #[test]
    fn a_duplicate_is_reported() {
        let mut h = clean();
        h.retain(|e| !matches!(e, Event::FinalEnd { p: 0, .. }));
        h.push(fin(0, 2, "a")); // the idempotent producer's retry written twice
        h.push(end(0, 3));
        let r = check(&h);
        assert_eq!(
            r.violations,
            vec![Violation::Duplicated { p: 0, v: "a".into(), offsets: vec![0, 2] }]
        );
    }

    /// The clean history with p1's final log replaced by two copies of "c", written in the
    /// producer sessions `first` and `second`.
    fn two_copies_in_p1(first: (i64, i16), second: (i64, i16)) -> Vec<Event> {
        let mut h = clean();
        h.retain(|e| !matches!(e, Event::FinalEnd { p: 1, .. } | Event::Final { p: 1, .. }));
        h.push(fin_in(1, 0, "c", first));
        h.push(fin_in(1, 1, "c", second));
        h.push(end(1, 2));
        h
    }

    #[test]
    fn a_duplicate_within_one_producer_session_is_reported() {
        // Same producer id and epoch: the broker should have recognised the retry.
        let r = check(&two_copies_in_p1((7, 0), (7, 0)));
        assert_eq!(
            r.violations,
            vec![Violation::Duplicated { p: 1, v: "c".into(), offsets: vec![0, 1] }]
        );
        assert_eq!(r.stats.resent_in_new_session, 0);
    }

    #[test]
    fn a_copy_re_sent_under_a_new_producer_epoch_is_counted_not_a_violation() {
        // The client bumped its epoch and re-sent a batch whose first attempt was written.
        let r = check(&two_copies_in_p1((7, 0), (7, 1)));
        assert!(r.passed(), "{:?}", r.violations);
        assert_eq!(r.stats.resent_in_new_session, 1);
        assert_eq!(r.resent, vec!["c in p1 at offsets [0, 1] in sessions [(7, 0), (7, 1)]"]);
    }

    #[test]
    fn a_divergent_offset_is_reported() {
        let mut h = clean();
        // A reader saw "x" at p0@1, where the final log (and the acknowledgement) has "b".
        h.insert(6, read("c2", 0, 1, "x"));
        let r = check(&h);
        assert_eq!(r.count("divergent"), 1, "{:?}", r.violations);
        assert!(
            matches!(&r.violations[0], Violation::Divergent { p: 0, o: 1, by, .. } if by == "c2")
        );
    }

    #[test]
    fn an_acknowledgement_at_the_wrong_offset_is_divergent() {
        let mut h = clean();
        h[1] = ack(0, 5, "b"); // acked at 5, but the log has it at 1
        let r = check(&h);
        assert_eq!(r.count("divergent"), 1, "{:?}", r.violations);
    }

    #[test]
    fn a_record_read_beyond_the_final_log_vanished() {
        let mut h = clean();
        h.insert(7, read("c1", 1, 1, "ghost"));
        let r = check(&h);
        assert_eq!(
            r.violations,
            vec![Violation::Vanished { p: 1, o: 1, v: "ghost".into(), by: "c1".into() }]
        );
    }

    #[test]
    fn readers_must_go_forward_one_by_one_within_a_session() {
        let mut h = clean();
        h.insert(6, read("c1", 0, 0, "a")); // p0@0 again right after p0@1, no rebalance
        let r = check(&h);
        assert_eq!(r.count("out of order"), 1, "{:?}", r.violations);
        // After a new assignment, starting over is fine (at-least-once).
        let mut h = clean();
        h.insert(6, Event::Assigned { t: 25, w: "c1".into(), ps: vec![0] });
        h.insert(7, read("c1", 0, 0, "a"));
        assert!(check(&h).passed());
    }

    #[test]
    fn committed_offsets_that_go_back_or_lose_a_commit_are_reported() {
        let mut h = clean();
        h.push(offsets(50, 51, &[(0, 1)]));
        let r = check(&h);
        assert_eq!(r.count("committed offset went back"), 2, "{:?}", r.violations);
        assert!(
            r.violations
                .iter()
                .any(|v| matches!(v, Violation::CommitLost { committed: 2, read: 1, .. }))
        );
        // A read sent before the commit was acknowledged may miss it.
        let mut h = clean();
        h.insert(8, offsets(29, 31, &[(0, 0)]));
        assert!(check(&h).passed(), "{:?}", check(&h).violations);
    }

    #[test]
    fn failed_writes_are_indeterminate_but_never_twice() {
        let mut h = clean();
        h.push(Event::Fail { t: 5, w: "p1".into(), p: 1, v: "c".into(), err: "timed out".into() });
        h.push(Event::Fail { t: 5, w: "p1".into(), p: 1, v: "z".into(), err: "timed out".into() });
        let r = check(&h);
        assert!(r.passed(), "{:?}", r.violations);
        assert_eq!((r.stats.failed, r.stats.failed_but_written), (2, 1));
    }

    #[test]
    fn acknowledged_admin_operations_must_be_reflected() {
        let admin = |op: &str, topic: &str, partitions: Option<i32>, ok: bool| Event::Admin {
            t: 5,
            w: "admin".into(),
            op: op.into(),
            topic: topic.into(),
            partitions,
            ok,
            err: None,
        };
        let mut h = clean();
        h.push(admin("create", "kept", None, true));
        h.push(admin("create_partitions", "kept", Some(3), true));
        h.push(admin("create", "gone", None, true));
        h.push(admin("delete", "gone", None, true));
        h.push(admin("create", "maybe", None, false));
        h.push(Event::Topics { t: 100, topics: [("kept".to_string(), 3)].into() });
        assert!(check(&h).passed(), "{:?}", check(&h).violations);
        h.push(Event::Topics {
            t: 101,
            topics: [("kept".to_string(), 2), ("gone".into(), 1)].into(),
        });
        let r = check(&h);
        assert_eq!(r.count("admin operation lost"), 2, "{:?}", r.violations);
    }

    #[test]
    fn acknowledged_scram_users_must_be_in_the_final_list_and_deleted_ones_gone() {
        let admin = named_admin_op;
        let mut h = clean();
        h.push(admin("scram_upsert", "kept", true));
        h.push(admin("scram_upsert", "gone", true));
        h.push(admin("scram_delete", "gone", true));
        h.push(admin("scram_upsert", "maybe", false));
        h.push(admin("scram_upsert", "tried", true));
        h.push(admin("scram_delete", "tried", false));
        let r = check(&h);
        assert_eq!(r.count("history incomplete"), 1, "no final list: {:?}", r.violations);
        h.push(Event::ScramUsers { t: 100, users: ["kept".to_string()].into() });
        assert!(check(&h).passed(), "{:?}", check(&h).violations);
        h.push(Event::ScramUsers { t: 101, users: ["gone".to_string(), "tried".into()].into() });
        let r = check(&h);
        assert_eq!(
            r.count("admin operation lost"),
            2,
            "kept lost, gone still there: {:?}",
            r.violations
        );
    }

    /// An admin worker's operation on a named thing (a SCRAM user, an ACL principal).
    fn named_admin_op(op: &str, name: &str, ok: bool) -> Event {
        Event::Admin {
            t: 5,
            w: "admin".into(),
            op: op.into(),
            topic: name.into(),
            partitions: None,
            ok,
            err: None,
        }
    }

    #[test]
    fn acknowledged_acl_bindings_must_be_served_by_every_node_and_deleted_ones_by_none() {
        let admin = named_admin_op;
        let served = |node: i32, principals: &[&str]| Event::AclPrincipals {
            t: 100,
            node,
            principals: principals.iter().map(|p| p.to_string()).collect(),
        };
        let mut h = clean();
        h.push(admin("acl_create", "User:kept", true));
        h.push(admin("acl_create", "User:gone", true));
        h.push(admin("acl_delete", "User:gone", true));
        h.push(admin("acl_create", "User:maybe", false));
        h.push(admin("acl_create", "User:tried", true));
        h.push(admin("acl_delete", "User:tried", false));
        let r = check(&h);
        assert_eq!(r.count("history incomplete"), 1, "no final list: {:?}", r.violations);
        h.push(served(1, &["User:kept", "User:tried"]));
        h.push(served(2, &["User:kept", "User:maybe"]));
        assert!(check(&h).passed(), "{:?}", check(&h).violations);
        // Node 3 lags: it lacks an acknowledged binding and still serves a deleted one.
        h.push(served(3, &["User:gone"]));
        let r = check(&h);
        assert_eq!(r.count("admin operation lost"), 2, "{:?}", r.violations);
    }

    #[test]
    fn a_producer_without_acknowledgements_for_too_long_stalled() {
        let fail = |t: i64| Event::Fail {
            t,
            w: "p1".into(),
            p: 0,
            v: format!("x{t}"),
            err: "timed out".into(),
        };
        let mut h = clean();
        h.push(fail(10 + STALL_MS_MAX + 1));
        let r = check(&h);
        assert_eq!(r.count("writes stalled"), 1, "{:?}", r.violations);
        let mut h = clean();
        h.push(fail(10 + STALL_MS_MAX - 1));
        assert!(check(&h).passed());
    }

    #[test]
    fn no_final_read_is_an_incomplete_history() {
        let h = vec![ack(0, 0, "a")];
        let r = check(&h);
        assert!(r.count("history incomplete") >= 1);
        assert!(!r.passed());
    }

    #[test]
    fn crashes_unrecovered_faults_and_differing_replicas_fail_the_run() {
        let mut h = clean();
        h.push(Event::Crash { t: 5, node: 2 });
        h.push(Event::Replicas { t: 100, p: 0, identical: false, detail: "node 3".into() });
        h.push(Event::Fault {
            t: 5,
            n: 4,
            kind: "pause".into(),
            phase: "not_recovered".into(),
            nodes: vec![1],
            led: Default::default(),
            term: None,
            detail: "p0 has no leader".into(),
        });
        let r = check(&h);
        assert_eq!(r.violations.len(), 3, "{:?}", r.violations);
    }

    fn kack(k: &str, o: i64, v: &str) -> Event {
        Event::KeyedAck { t: 10, w: "k1".into(), p: 0, o: Some(o), k: k.into(), v: v.into() }
    }
    fn kfin(k: &str, o: i64, v: &str) -> Event {
        Event::KeyedFinal { o, k: k.into(), v: v.into() }
    }

    /// Keys a and b rewritten; the final view holds their latest writes.
    fn compacted() -> Vec<Event> {
        let mut h = clean();
        h.extend([
            kack("a", 0, "k1-0"),
            kack("b", 1, "k1-1"),
            kack("a", 2, "k1-2"),
            kfin("a", 2, "k1-2"),
            kfin("b", 1, "k1-1"),
            Event::KeyedFinalEnd { t: 100, high_watermark: 3 },
            Event::CompactedReplicas { t: 100, identical: true, detail: String::new() },
        ]);
        h
    }

    #[test]
    fn a_compacted_view_with_every_latest_write_passes_and_older_writes_may_be_gone() {
        let r = check(&compacted());
        assert!(r.passed(), "{:?}", r.violations);
        assert_eq!((r.stats.compacted_acknowledged, r.stats.compacted_keys), (3, 2));
    }

    #[test]
    fn a_lost_or_overwritten_latest_write_of_a_key_is_reported() {
        let mut h = compacted();
        h.retain(|e| !matches!(e, Event::KeyedFinal { k, .. } if k == "b"));
        assert_eq!(check(&h).count("lost"), 1, "key b is gone");
        let mut h = compacted();
        h.retain(|e| !matches!(e, Event::KeyedFinal { k, .. } if k == "a"));
        h.push(kfin("a", 0, "k1-0"));
        assert_eq!(check(&h).count("lost"), 1, "an older write won");
        let mut h = compacted();
        h.push(Event::KeyedFail {
            t: 11,
            w: "k1".into(),
            p: 0,
            k: "a".into(),
            v: "k1-3".into(),
            err: "timeout".into(),
        });
        h.retain(|e| !matches!(e, Event::KeyedFinal { k, .. } if k == "a"));
        h.push(kfin("a", 3, "k1-3"));
        assert!(check(&h).passed(), "a later failed write may win");
        let mut h = compacted();
        h.retain(|e| !matches!(e, Event::KeyedFinal { k, .. } if k == "a"));
        h.push(kfin("a", 5, "nobody-wrote-this"));
        assert_eq!(check(&h).count("divergent"), 1);
        let mut h = compacted();
        h.push(Event::CompactedReplicas { t: 100, identical: false, detail: "node 2".into() });
        assert_eq!(check(&h).count("replicas differ"), 1);
    }
}
