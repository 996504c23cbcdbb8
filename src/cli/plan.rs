//! Replica placement plans for `samsa cluster rebalance` and `samsa broker drain`: pure
//! functions from the current assignment to a target one, moving as few replicas as they can.
//!
//! Invariants: a plan never puts two replicas of a partition on one broker, never changes a
//! partition's replication factor, and never places a replica on a broker outside `brokers`;
//! a move never lowers the number of distinct racks a partition spans. Rebalancing moves one
//! replica at a time from the most loaded broker to the least loaded one until the replica
//! counts differ by at most one, then reorders replica lists (no data moves) so preferred
//! leaderships differ by at most one where the replica sets allow it.

use std::collections::BTreeMap;

use crate::types::NodeId;

/// One partition's replicas, first the preferred leader.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Placement {
    pub topic: String,
    pub partition: i32,
    pub replicas: Vec<NodeId>,
}

/// A broker a plan may place replicas on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Target {
    pub id: NodeId,
    pub rack: Option<String>,
}

/// Upper bound on single-replica moves one plan makes (a guard against a loop that cannot
/// converge; a balanced plan for N replicas needs at most N moves).
const MOVES_MAX: usize = 1_000_000;

fn racks_spanned(replicas: &[NodeId], rack_of: &BTreeMap<NodeId, Option<String>>) -> usize {
    let mut racks: Vec<Option<&String>> =
        replicas.iter().map(|r| rack_of.get(r).and_then(|x| x.as_ref())).collect();
    racks.sort();
    racks.dedup();
    racks.len()
}

/// Replacing `from` with `to` in `replicas`, if that keeps the partition valid and spread.
fn replace(
    replicas: &[NodeId],
    from: NodeId,
    to: NodeId,
    rack_of: &BTreeMap<NodeId, Option<String>>,
) -> Option<Vec<NodeId>> {
    if replicas.contains(&to) || !replicas.contains(&from) {
        return None;
    }
    let next: Vec<NodeId> = replicas.iter().map(|r| if *r == from { to } else { *r }).collect();
    (racks_spanned(&next, rack_of) >= racks_spanned(replicas, rack_of)).then_some(next)
}

fn load(plan: &[Placement], brokers: &[Target]) -> BTreeMap<NodeId, usize> {
    let mut count: BTreeMap<NodeId, usize> = brokers.iter().map(|b| (b.id, 0)).collect();
    for p in plan {
        for r in &p.replicas {
            if let Some(c) = count.get_mut(r) {
                *c += 1;
            }
        }
    }
    count
}

fn rack_map(brokers: &[Target]) -> BTreeMap<NodeId, Option<String>> {
    brokers.iter().map(|b| (b.id, b.rack.clone())).collect()
}

/// Moves every replica off `drained` onto the other brokers, each to the least loaded broker
/// that keeps the partition's rack spread. Fails naming a partition no broker can take.
pub(super) fn drain(
    current: &[Placement],
    brokers: &[Target],
    drained: NodeId,
) -> Result<Vec<Placement>, String> {
    let others: Vec<Target> = brokers.iter().filter(|b| b.id != drained).cloned().collect();
    let rack_of = rack_map(brokers);
    let mut plan = current.to_vec();
    for i in 0..plan.len() {
        if !plan[i].replicas.contains(&drained) {
            continue;
        }
        let counts = load(&plan, &others);
        let mut candidates: Vec<(usize, NodeId)> = counts.iter().map(|(b, c)| (*c, *b)).collect();
        candidates.sort();
        let next = candidates
            .iter()
            .find_map(|(_, to)| replace(&plan[i].replicas, drained, *to, &rack_of))
            .ok_or_else(|| {
                format!(
                    "{}-{} has {} replicas and only {} other brokers can hold one",
                    plan[i].topic,
                    plan[i].partition,
                    plan[i].replicas.len(),
                    others.len()
                )
            })?;
        plan[i].replicas = next;
    }
    Ok(plan)
}

/// A balanced placement over `brokers` with as few replica moves as it can make.
pub(super) fn rebalance(current: &[Placement], brokers: &[Target]) -> Vec<Placement> {
    let rack_of = rack_map(brokers);
    let mut plan = current.to_vec();
    for _ in 0..MOVES_MAX {
        let counts = load(&plan, brokers);
        let mut by_load: Vec<(usize, NodeId)> = counts.iter().map(|(b, c)| (*c, *b)).collect();
        by_load.sort();
        let moved = by_load.iter().rev().any(|&(high, from)| {
            by_load.iter().take_while(|(low, _)| *low + 1 < high).any(|&(_, to)| {
                let Some(i) =
                    plan.iter().position(|p| replace(&p.replicas, from, to, &rack_of).is_some())
                else {
                    return false;
                };
                if let Some(next) = replace(&plan[i].replicas, from, to, &rack_of) {
                    plan[i].replicas = next;
                }
                true
            })
        });
        if !moved {
            break;
        }
    }
    balance_leaders(&mut plan, brokers);
    plan
}

/// Reorders replica lists so each broker is the preferred leader of about as many partitions as
/// the others (moves no data: only the first replica changes).
fn balance_leaders(plan: &mut [Placement], brokers: &[Target]) {
    for _ in 0..MOVES_MAX {
        let mut led: BTreeMap<NodeId, usize> = brokers.iter().map(|b| (b.id, 0)).collect();
        for p in plan.iter() {
            if let Some(c) = p.replicas.first().and_then(|f| led.get_mut(f)) {
                *c += 1;
            }
        }
        let mut by_led: Vec<(usize, NodeId)> = led.iter().map(|(b, c)| (*c, *b)).collect();
        by_led.sort();
        let swapped = by_led.iter().rev().any(|&(high, from)| {
            by_led.iter().take_while(|(low, _)| *low + 1 < high).any(|&(_, to)| {
                let found = plan
                    .iter_mut()
                    .find(|p| p.replicas.first() == Some(&from) && p.replicas.contains(&to));
                match found {
                    Some(p) => {
                        if let Some(j) = p.replicas.iter().position(|r| *r == to) {
                            p.replicas.swap(0, j);
                        }
                        true
                    }
                    None => false,
                }
            })
        });
        if !swapped {
            break;
        }
    }
}

/// The partitions whose replica list a plan changes, with the new list.
pub(super) fn changes<'a>(current: &[Placement], plan: &'a [Placement]) -> Vec<&'a Placement> {
    plan.iter()
        .filter(|p| {
            !current.iter().any(|c| {
                c.topic == p.topic && c.partition == p.partition && c.replicas == p.replicas
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(ids: &[i32]) -> Vec<NodeId> {
        ids.iter().map(|i| NodeId(*i)).collect()
    }

    fn brokers(ids: &[i32]) -> Vec<Target> {
        ids.iter().map(|i| Target { id: NodeId(*i), rack: None }).collect()
    }

    fn placements(lists: &[&[i32]]) -> Vec<Placement> {
        lists
            .iter()
            .enumerate()
            .map(|(i, r)| Placement { topic: "t".into(), partition: i as i32, replicas: n(r) })
            .collect()
    }

    fn valid(plan: &[Placement], rf: usize) {
        for p in plan {
            let mut r = p.replicas.clone();
            r.sort();
            r.dedup();
            assert_eq!(r.len(), rf, "{p:?} keeps its replication factor with distinct brokers");
        }
    }

    #[test]
    fn a_new_broker_gets_its_share_and_few_replicas_move() {
        let current = placements(&[&[1, 2, 3], &[2, 3, 1], &[3, 1, 2], &[1, 2, 3]]);
        let all = brokers(&[1, 2, 3, 4]);
        let plan = rebalance(&current, &all);
        valid(&plan, 3);
        let counts = load(&plan, &all);
        assert_eq!(counts.values().max(), Some(&3));
        assert_eq!(counts.values().min(), Some(&3), "12 replicas over 4 brokers: 3 each");
        let moved: usize = plan
            .iter()
            .zip(&current)
            .map(|(p, c)| p.replicas.iter().filter(|r| !c.replicas.contains(r)).count())
            .sum();
        assert_eq!(moved, 3, "exactly broker 4's share moves");
        let mut led = BTreeMap::new();
        for p in &plan {
            *led.entry(p.replicas[0]).or_insert(0) += 1;
        }
        assert!(led.values().all(|c| *c == 1), "one preferred leadership each: {led:?}");
        assert!(rebalance(&plan, &all) == plan, "a balanced plan is left alone");
    }

    #[test]
    fn draining_moves_every_replica_off_the_broker() {
        let current = placements(&[&[1, 2, 3], &[2, 3, 1], &[3, 1, 2], &[4, 1, 2]]);
        let plan = drain(&current, &brokers(&[1, 2, 3, 4]), NodeId(2)).expect("plan");
        valid(&plan, 3);
        assert!(plan.iter().all(|p| !p.replicas.contains(&NodeId(2))));
        assert_eq!(changes(&current, &plan).len(), 4);
        let err = drain(&current, &brokers(&[1, 2, 3]), NodeId(2)).expect_err("no room");
        assert!(err.contains("only 2 other brokers"), "{err}");
    }

    #[test]
    fn moves_keep_partitions_spread_over_racks() {
        let racked = |id: i32, rack: &str| Target { id: NodeId(id), rack: Some(rack.into()) };
        let all = vec![racked(1, "a"), racked(2, "b"), racked(3, "a"), racked(4, "b")];
        let current = placements(&[&[1, 2], &[1, 2], &[1, 2], &[1, 2]]);
        let plan = rebalance(&current, &all);
        for p in &plan {
            let racks: Vec<_> = p
                .replicas
                .iter()
                .map(|r| all.iter().find(|b| b.id == *r).map(|b| b.rack.clone()))
                .collect();
            assert_ne!(racks[0], racks[1], "{p:?} spans both racks");
        }
        let counts = load(&plan, &all);
        assert!(counts.values().all(|c| *c == 2), "{counts:?}");
    }
}
