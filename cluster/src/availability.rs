//! Availability under faults, measured from the history (pure): for each injected fault, the
//! time until
//! - writes resume: every partition the victims led (all partitions when they led none) has an
//!   acknowledged write again;
//! - a new leader: every partition a victim led has a leader with a higher leader epoch;
//! - the controller back: when a victim was the active controller, a controller of a higher
//!   raft term is known, or one is known again after none was (openraft restores a restarted
//!   leader at its term, so after a kill of every node the same controller may return).
//!
//! Times run from the injection; a fault after which something never happened (the run ended,
//! or a pause too short for anyone to notice) is counted as such, not measured.

use std::collections::BTreeMap;

use crate::history::Event;

/// What one fault cost.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recovery {
    pub kind: String,
    pub writes_ms: Option<i64>,
    /// None when no victim led a partition, or no new leader was seen.
    pub leader_ms: Option<i64>,
    pub leader_expected: bool,
    pub controller_ms: Option<i64>,
    pub controller_expected: bool,
}

/// p50/p99/max of a set of durations (nearest rank).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Figures {
    pub n: usize,
    pub p50_ms: i64,
    pub p99_ms: i64,
    pub max_ms: i64,
}

impl Figures {
    pub fn of(values: &[i64]) -> Option<Figures> {
        let mut v = values.to_vec();
        v.sort_unstable();
        let rank = |q: f64| v[((q * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1];
        let max_ms = *v.last()?;
        Some(Figures { n: v.len(), p50_ms: rank(0.50), p99_ms: rank(0.99), max_ms })
    }
}

/// The per-kind row of the summary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KindAvailability {
    pub kind: String,
    pub count: usize,
    pub writes: Option<Figures>,
    /// Faults after which some watched partition took no write before the run ended.
    pub writes_missing: usize,
    pub leader: Option<Figures>,
    pub controller: Option<Figures>,
}

/// The first acknowledgement after `t`, before `until`, of a write created at or after `t`
/// (writes already in flight when the fault hit say nothing about recovery); `acks` is sorted by
/// acknowledgement time.
fn first_write(acks: &[(i64, i64)], t: i64, until: i64) -> Option<i64> {
    let from = acks.partition_point(|(ta, _)| *ta <= t);
    acks[from..].iter().take_while(|(ta, _)| *ta < until).find(|(_, c)| *c >= t).map(|(ta, _)| *ta)
}

/// One [`Recovery`] per injected fault, in injection order. Each fault's window ends where the
/// next fault is injected: what happens later belongs to that one.
pub fn recoveries(events: &[Event]) -> Vec<Recovery> {
    let mut acks: BTreeMap<i32, Vec<(i64, i64)>> = BTreeMap::new();
    let mut leaders: BTreeMap<i32, Vec<(i64, i32, i32)>> = BTreeMap::new();
    let mut controllers: Vec<(i64, i32, i64)> = Vec::new();
    let mut injections: Vec<i64> = Vec::new();
    for e in events {
        match e {
            Event::Ack { t, p, c, .. } => acks.entry(*p).or_default().push((*t, *c)),
            Event::Leader { t, p, leader, epoch, .. } => {
                leaders.entry(*p).or_default().push((*t, *leader, *epoch))
            }
            Event::Controller { t, node, term } => controllers.push((*t, *node, *term)),
            Event::Fault { t, phase, .. } if phase == "inject" => injections.push(*t),
            _ => {}
        }
    }
    for list in acks.values_mut() {
        list.sort_unstable();
    }
    for list in leaders.values_mut() {
        list.sort_unstable();
    }
    controllers.sort_unstable();
    injections.sort_unstable();
    let mut out = Vec::new();
    for e in events {
        let Event::Fault { t, kind, phase, led, term, .. } = e else { continue };
        if phase != "inject" {
            continue;
        }
        let until =
            injections.get(injections.partition_point(|x| x <= t)).copied().unwrap_or(i64::MAX);
        let led: BTreeMap<i32, i32> =
            led.iter().filter_map(|(p, ep)| Some((p.parse().ok()?, *ep as i32))).collect();
        let watched: Vec<i32> = if led.is_empty() {
            acks.keys().copied().collect()
        } else {
            led.keys().copied().collect()
        };
        let writes_ms = watched
            .iter()
            .map(|p| acks.get(p).and_then(|a| first_write(a, *t, until)).map(|ta| ta - t))
            .collect::<Option<Vec<i64>>>()
            .and_then(|v| v.into_iter().max());
        let in_window = |tl: i64| tl > *t && tl < until;
        let leader_ms = if led.is_empty() {
            None
        } else {
            led.iter()
                .map(|(p, epoch0)| {
                    leaders
                        .get(p)?
                        .iter()
                        .find(|(tl, l, ep)| in_window(*tl) && *l >= 0 && ep > epoch0)
                        .map(|(tl, _, _)| tl - t)
                })
                .collect::<Option<Vec<i64>>>()
                .and_then(|v| v.into_iter().max())
        };
        let controller_ms = term.and_then(|term0| {
            let mut unknown = false;
            controllers.iter().filter(|(tc, _, _)| in_window(*tc)).find_map(|(tc, n, tm)| {
                if *n < 0 {
                    unknown = true;
                    return None;
                }
                (*tm > term0 || unknown).then_some(tc - t)
            })
        });
        out.push(Recovery {
            kind: kind.clone(),
            writes_ms,
            leader_ms,
            leader_expected: !led.is_empty(),
            controller_ms,
            controller_expected: term.is_some(),
        });
    }
    out
}

/// Per-kind figures, kinds in first-injection order, then an "all faults" row.
pub fn by_kind(recoveries: &[Recovery]) -> Vec<KindAvailability> {
    let mut kinds: Vec<String> = Vec::new();
    for r in recoveries {
        if !kinds.contains(&r.kind) {
            kinds.push(r.kind.clone());
        }
    }
    kinds.sort();
    let row = |kind: String, rs: Vec<&Recovery>| {
        let writes: Vec<i64> = rs.iter().filter_map(|r| r.writes_ms).collect();
        let leader: Vec<i64> = rs.iter().filter_map(|r| r.leader_ms).collect();
        let controller: Vec<i64> = rs.iter().filter_map(|r| r.controller_ms).collect();
        KindAvailability {
            kind,
            count: rs.len(),
            writes_missing: rs.len() - writes.len(),
            writes: Figures::of(&writes),
            leader: Figures::of(&leader),
            controller: Figures::of(&controller),
        }
    };
    let mut rows: Vec<KindAvailability> = kinds
        .into_iter()
        .map(|k| {
            let rs = recoveries.iter().filter(|r| r.kind == k).collect();
            row(k, rs)
        })
        .collect();
    rows.push(row("all faults".into(), recoveries.iter().collect()));
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fault(t: i64, led: &[(i32, i64)], term: Option<i64>) -> Event {
        Event::Fault {
            t,
            n: 1,
            kind: "kill-leader".into(),
            phase: "inject".into(),
            nodes: vec![1],
            led: led.iter().map(|(p, e)| (p.to_string(), *e)).collect(),
            term,
            detail: String::new(),
        }
    }
    fn ack(t: i64, p: i32) -> Event {
        Event::Ack { t, w: "p".into(), p, o: Some(0), v: String::new(), c: t - 50 }
    }

    #[test]
    fn nearest_rank_percentiles() {
        let f = Figures::of(&(1..=100).collect::<Vec<i64>>()).expect("figures");
        assert_eq!((f.n, f.p50_ms, f.p99_ms, f.max_ms), (100, 50, 99, 100));
        assert_eq!(Figures::of(&[7]).map(|f| (f.p50_ms, f.p99_ms)), Some((7, 7)));
        assert_eq!(Figures::of(&[]), None);
    }

    #[test]
    fn recovery_waits_for_every_partition_the_victim_led() {
        let h = vec![
            ack(900, 0),
            fault(1000, &[(0, 3), (1, 5)], Some(2)),
            ack(1200, 1),
            Event::Leader { t: 1500, p: 0, leader: 2, epoch: 4, isr: vec![2, 3] },
            Event::Leader { t: 1600, p: 1, leader: 2, epoch: 5, isr: vec![2] }, // same epoch
            Event::Leader { t: 1700, p: 1, leader: 3, epoch: 6, isr: vec![3] },
            Event::Controller { t: 1800, node: 3, term: 3 },
            // Created before the fault, acknowledged after it: says nothing about recovery.
            Event::Ack { t: 1900, w: "p".into(), p: 0, o: Some(0), v: String::new(), c: 990 },
            ack(2000, 0),
        ];
        let r = recoveries(&h);
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].writes_ms, Some(1000)); // p0's first write after the fault, at 2000
        assert_eq!(r[0].leader_ms, Some(700));
        assert_eq!(r[0].controller_ms, Some(800));
        let rows = by_kind(&r);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].count, 1);
    }

    #[test]
    fn what_happens_after_the_next_fault_belongs_to_that_one() {
        let h = vec![
            fault(1000, &[(0, 3)], None),
            fault(2000, &[], None),
            Event::Leader { t: 2500, p: 0, leader: 2, epoch: 4, isr: vec![2] },
            ack(2600, 0),
        ];
        let r = recoveries(&h);
        assert_eq!((r[0].writes_ms, r[0].leader_ms), (None, None));
        assert_eq!(r[1].writes_ms, Some(600));
    }

    #[test]
    fn a_controller_restored_at_its_term_counts_once_none_was_known() {
        let h = vec![
            fault(1000, &[], Some(5)),
            Event::Controller { t: 1100, node: 2, term: 5 }, // still the old one: not yet
            Event::Controller { t: 1200, node: -1, term: 5 },
            Event::Controller { t: 2500, node: 2, term: 5 },
        ];
        assert_eq!(recoveries(&h)[0].controller_ms, Some(1500));
    }

    #[test]
    fn a_fault_with_no_write_after_it_is_counted_not_measured() {
        let h = vec![ack(900, 0), fault(1000, &[], None)];
        let r = recoveries(&h);
        assert_eq!(r[0].writes_ms, None);
        assert!(!r[0].leader_expected);
        assert_eq!(by_kind(&r)[0].writes_missing, 1);
    }
}
