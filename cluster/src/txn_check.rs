//! The transactional part of the checker (Jepsen's Kafka model, for what KIP-98 promises):
//! every acknowledged commit is in the final log whole (lost, torn), no aborted transaction's
//! value is committed there or read by a read_committed reader (aborted read), a transaction
//! whose end is unknown is there whole or not at all (torn), no value is committed twice
//! (duplicate), nothing committed was never written by a transaction (phantom), and what the
//! reader read is committed in the final log (a read past the last stable offset of a
//! transaction that did not commit shows up as an aborted or uncommitted read).

use std::collections::{HashMap, HashSet};

use crate::checker::{Report, Violation};
use crate::history::Event;

/// How a transaction ended, as its producer saw it.
#[derive(Clone, Copy, PartialEq, Eq)]
enum End {
    Committed,
    Aborted,
    Unknown,
}

/// A transaction as its producer recorded it: id, end, (partition, value) pairs.
type Txn<'a> = (&'a str, End, &'a [(i32, String)]);

/// Checks the transactional topic's history into `r`.
pub(crate) fn check_txns(events: &[Event], r: &mut Report) {
    let mut txns: Vec<Txn<'_>> = Vec::new();
    let mut reads: Vec<(&str, i32, i64, &str)> = Vec::new();
    let mut committed: HashMap<(i32, &str), Vec<i64>> = HashMap::new();
    let mut aborted_final: HashSet<&str> = HashSet::new();
    let mut finals = 0usize;
    for e in events {
        match e {
            Event::TxnCommit { txn, vs, .. } => txns.push((txn, End::Committed, vs)),
            Event::TxnAbort { txn, vs, .. } => txns.push((txn, End::Aborted, vs)),
            Event::TxnFail { txn, vs, .. } => txns.push((txn, End::Unknown, vs)),
            Event::TxnRead { w, p, o, v, .. } => reads.push((w, *p, *o, v)),
            Event::TxnFinal { p, committed: c, aborted, .. } => {
                finals += 1;
                for (o, v) in c {
                    committed.entry((*p, v.as_str())).or_default().push(*o);
                }
                aborted_final.extend(aborted.iter().map(String::as_str));
            }
            Event::TxnReplicas { p, identical: false, detail, .. } => {
                r.violations.push(Violation::ReplicasDiffer { p: *p, detail: detail.clone() })
            }
            _ => {}
        }
    }
    r.stats.txn_committed = txns.iter().filter(|t| t.1 == End::Committed).count() as u64;
    r.stats.txn_aborted = txns.iter().filter(|t| t.1 == End::Aborted).count() as u64;
    r.stats.txn_unknown = txns.iter().filter(|t| t.1 == End::Unknown).count() as u64;
    r.stats.txn_reads = reads.len() as u64;
    if txns.is_empty() {
        return;
    }
    if finals == 0 {
        r.violations.push(Violation::Incomplete {
            detail: "transactions ran but the transactional topic was never read back".into(),
        });
        return;
    }
    let txn_violation = |kind: &'static str, detail: String| Violation::Txn { kind, detail };
    let mut outcome_of: HashMap<&str, End> = HashMap::new();
    for (txn, end, vs) in &txns {
        let present = vs.iter().filter(|(p, v)| committed.contains_key(&(*p, v.as_str()))).count();
        for (_, v) in vs.iter() {
            outcome_of.insert(v.as_str(), *end);
        }
        match end {
            End::Committed if present == 0 => r.violations.push(txn_violation(
                "txn lost",
                format!(
                    "committed transaction {txn} ({} values) is not in the final log",
                    vs.len()
                ),
            )),
            End::Committed | End::Unknown if present != 0 && present != vs.len() => {
                r.violations.push(txn_violation(
                    "txn torn",
                    format!("transaction {txn}: {present} of its {} values committed", vs.len()),
                ))
            }
            End::Aborted if present > 0 => r.violations.push(txn_violation(
                "aborted read",
                format!(
                    "aborted transaction {txn} has {present} values committed in the final log"
                ),
            )),
            _ => {}
        }
    }
    for ((p, v), offsets) in &committed {
        if offsets.len() > 1 {
            r.violations.push(txn_violation(
                "txn duplicate",
                format!("{v} is committed in p{p} at offsets {offsets:?}"),
            ));
        }
        if !outcome_of.contains_key(v) {
            r.violations.push(txn_violation(
                "txn phantom",
                format!("{v} is committed in p{p} but no transaction wrote it"),
            ));
        }
    }
    for (w, p, o, v) in reads {
        if outcome_of.get(v) == Some(&End::Aborted) || aborted_final.contains(v) {
            r.violations.push(txn_violation(
                "aborted read",
                format!("{w} (read_committed) read {v} of an aborted transaction at p{p}@{o}"),
            ));
        } else if !committed.get(&(p, v)).is_some_and(|os| os.contains(&o)) {
            r.violations.push(txn_violation(
                "uncommitted read",
                format!("{w} (read_committed) read {v} at p{p}@{o}, which the final log does not commit there"),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(events: &[Event]) -> Report {
        let mut r = Report::default();
        check_txns(events, &mut r);
        r
    }

    fn vs(pairs: &[(i32, &str)]) -> Vec<(i32, String)> {
        pairs.iter().map(|(p, v)| (*p, v.to_string())).collect()
    }

    fn history() -> Vec<Event> {
        vec![
            Event::TxnCommit {
                t: 1,
                w: "x1".into(),
                txn: "x1-t0".into(),
                vs: vs(&[(0, "a"), (1, "b")]),
            },
            Event::TxnAbort { t: 2, w: "x1".into(), txn: "x1-t1".into(), vs: vs(&[(0, "c")]) },
            Event::TxnFail {
                t: 3,
                w: "x1".into(),
                txn: "x1-t2".into(),
                vs: vs(&[(0, "d"), (1, "e")]),
                err: "timeout".into(),
            },
            Event::TxnRead { t: 4, w: "r1".into(), p: 0, o: 0, v: "a".into() },
            Event::TxnFinal {
                t: 9,
                p: 0,
                committed: vec![(0, "a".into())],
                aborted: vec!["c".into()],
                open: vec![],
            },
            Event::TxnFinal {
                t: 9,
                p: 1,
                committed: vec![(0, "b".into())],
                aborted: vec![],
                open: vec![],
            },
        ]
    }

    fn kinds(events: &[Event]) -> Vec<String> {
        check(events).violations.iter().map(|v| v.class().to_string()).collect()
    }

    #[test]
    fn whole_commits_absent_aborts_and_all_or_nothing_unknowns_pass() {
        let r = check(&history());
        assert!(r.violations.is_empty(), "{:?}", r.violations);
        assert_eq!((r.stats.txn_committed, r.stats.txn_aborted, r.stats.txn_unknown), (1, 1, 1));
    }

    #[test]
    fn lost_torn_aborted_duplicate_phantom_and_uncommitted_reads_are_caught() {
        let mut h = history();
        h[4] = Event::TxnFinal {
            t: 9,
            p: 0,
            committed: vec![(0, "a".into()), (1, "c".into())],
            aborted: vec![],
            open: vec![],
        };
        assert_eq!(kinds(&h), vec!["aborted read"]);
        let mut h = history();
        h[5] = Event::TxnFinal {
            t: 9,
            p: 1,
            committed: vec![],
            aborted: vec![],
            open: vec!["b".into()],
        };
        assert_eq!(kinds(&h), vec!["txn torn"]);
        let mut h = history();
        h[4] = Event::TxnFinal {
            t: 9,
            p: 0,
            committed: vec![(0, "a".into()), (1, "d".into())],
            aborted: vec![],
            open: vec![],
        };
        assert_eq!(kinds(&h), vec!["txn torn"], "d without e: the unknown transaction is torn");
        let mut h = history();
        h[4] = Event::TxnFinal {
            t: 9,
            p: 0,
            committed: vec![(0, "a".into()), (1, "a".into()), (2, "z".into())],
            aborted: vec![],
            open: vec![],
        };
        let mut k = kinds(&h);
        k.sort();
        assert_eq!(k, vec!["txn duplicate", "txn phantom"]);
        let mut h = history();
        h.push(Event::TxnRead { t: 5, w: "r1".into(), p: 0, o: 5, v: "a".into() });
        assert_eq!(kinds(&h), vec!["uncommitted read"], "a read where the log holds nothing");
        let mut h = history();
        h.push(Event::TxnRead { t: 5, w: "r1".into(), p: 0, o: 1, v: "c".into() });
        assert_eq!(kinds(&h), vec!["aborted read"]);
        let h: Vec<Event> =
            history().into_iter().filter(|e| !matches!(e, Event::TxnFinal { .. })).collect();
        assert_eq!(kinds(&h), vec!["history incomplete"]);
        let mut h = history();
        h.remove(5);
        h.push(Event::TxnFinal { t: 9, p: 1, committed: vec![], aborted: vec![], open: vec![] });
        assert_eq!(kinds(&h), vec!["txn torn"], "b lost, a kept");
        let h: Vec<Event> = history()
            .into_iter()
            .filter(|e| !matches!(e, Event::TxnRead { .. }))
            .map(|e| match e {
                Event::TxnFinal { t, p, .. } => {
                    Event::TxnFinal { t, p, committed: vec![], aborted: vec![], open: vec![] }
                }
                e => e,
            })
            .collect();
        assert_eq!(kinds(&h), vec!["txn lost"]);
    }
}
