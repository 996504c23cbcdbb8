//! Partition reassignment (KIP-455), decided the way KRaft's controller does it:
//!
//! 1. AlterPartitionReassignments sets `replicas = target ++ removing`, `adding = target -
//!    current`, `removing = current - target`. The added replicas open their logs and fetch
//!    from the leader like any follower; the leader admits each to the ISR once caught up.
//! 2. When every target replica is in the ISR (an AlterPartition made it so, or it already was),
//!    the same decision completes the move: `replicas = target`, the ISR loses the removed
//!    replicas, and a leader that is not a target replica hands over to the first target
//!    replica in the ISR. The removed replicas delete their logs.
//! 3. Cancelling reverts to the original replicas (`replicas - adding`) and drops the added ones
//!    from the ISR.
//!
//! Invariants: the whole reassignment lives in the partition's image (`adding_replicas`,
//! `removing_replicas`), so it survives a controller failover and broker restarts with nothing
//! to resume; the ISR only ever holds replicas; the leader is always in the ISR; a removed
//! replica leaves only after every target replica holds all committed records, so nothing
//! acknowledged with acks=all is lost by a move. Pure: no I/O.

use super::commands::MetadataCommand;
use super::image::{MetadataImage, PartitionImage};
use crate::error_code::{ApiError, ErrorCode};
use crate::types::NodeId;

fn partition<'a>(
    image: &'a MetadataImage,
    topic: &str,
    partition: i32,
) -> Result<&'a PartitionImage, ApiError> {
    image
        .topic(topic)
        .and_then(|t| usize::try_from(partition).ok().and_then(|i| t.partitions.get(i)))
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::UnknownTopicOrPartition,
                format!("{topic}-{partition} does not exist"),
            )
        })
}

fn live(image: &MetadataImage, n: NodeId) -> bool {
    image.brokers.get(&n).is_some_and(|b| !b.fenced)
}

/// The leader for a new replica set (`target ++ removing` while a move is in progress, the
/// target once it completes): the current one while it stays a replica in the ISR and live,
/// else the first replica in that order that is in the ISR and live.
fn elect(
    image: &MetadataImage,
    current: Option<NodeId>,
    target: &[NodeId],
    isr: &[NodeId],
) -> Option<NodeId> {
    let acceptable = |n: NodeId| target.contains(&n) && isr.contains(&n) && live(image, n);
    match current {
        Some(l) if acceptable(l) => Some(l),
        _ => target.iter().copied().find(|n| acceptable(*n)),
    }
}

/// The replica set and ISR a reassignment ends with, if the ISR `isr` completes it: every
/// target replica is in it (Kafka's `maybeCompleteReassignment`).
fn completed(p: &PartitionImage, isr: &[NodeId]) -> Option<(Vec<NodeId>, Vec<NodeId>)> {
    if !p.reassigning() {
        return None;
    }
    let target = p.target_replicas();
    let target_isr: Vec<NodeId> =
        isr.iter().copied().filter(|r| !p.removing_replicas.contains(r)).collect();
    if target.is_empty() || target_isr.is_empty() || !target.iter().all(|r| isr.contains(r)) {
        return None;
    }
    Some((target, target_isr))
}

/// The command for a partition whose leader proposes `isr` (AlterPartition): a plain ISR change,
/// or, when that ISR completes an ongoing reassignment, the completion.
pub(super) fn isr_change(
    image: &MetadataImage,
    topic: &str,
    index: i32,
    p: &PartitionImage,
    leader: NodeId,
    isr: &[NodeId],
) -> MetadataCommand {
    match completed(p, isr) {
        Some((replicas, isr)) => MetadataCommand::ChangeReplicas {
            topic: topic.into(),
            partition: index,
            leader: elect(image, Some(leader), &replicas, &isr),
            replicas,
            adding: Vec::new(),
            removing: Vec::new(),
            isr,
        },
        None => MetadataCommand::ChangePartition {
            topic: topic.into(),
            partition: index,
            leader: Some(leader),
            isr: isr.to_vec(),
        },
    }
}

/// Checks a target replica list: non-empty, distinct, registered brokers.
fn check_target(image: &MetadataImage, target: &[NodeId]) -> Result<(), ApiError> {
    let mut seen = target.to_vec();
    seen.sort();
    seen.dedup();
    if target.is_empty() || seen.len() != target.len() {
        return Err(ApiError::new(
            ErrorCode::InvalidReplicaAssignment,
            format!(
                "the target replicas {target:?} must be a non-empty list of distinct broker ids"
            ),
        ));
    }
    if let Some(unknown) = target.iter().find(|r| !image.brokers.contains_key(r)) {
        return Err(ApiError::new(
            ErrorCode::InvalidReplicaAssignment,
            format!(
                "the target replicas include broker {unknown}, but no such broker is registered"
            ),
        ));
    }
    Ok(())
}

/// Decides one AlterPartitionReassignments entry: `Some(target)` starts (or replaces) a
/// reassignment, `None` cancels the ongoing one (NO_REASSIGNMENT_IN_PROGRESS if there is none).
/// Returns no command when nothing changes.
pub fn alter(
    image: &MetadataImage,
    topic: &str,
    index: i32,
    target: Option<&[NodeId]>,
) -> Result<Vec<MetadataCommand>, ApiError> {
    let p = partition(image, topic, index)?;
    let (replicas, adding, removing, isr) = match target {
        Some(target) => {
            check_target(image, target)?;
            let removing: Vec<NodeId> =
                p.replicas.iter().copied().filter(|r| !target.contains(r)).collect();
            let adding: Vec<NodeId> =
                target.iter().copied().filter(|r| !p.replicas.contains(r)).collect();
            let mut replicas = target.to_vec();
            replicas.extend(&removing);
            (replicas, adding, removing, p.isr.clone())
        }
        None => {
            if !p.reassigning() {
                return Err(ApiError::new(
                    ErrorCode::NoReassignmentInProgress,
                    format!("{topic}-{index} has no reassignment in progress"),
                ));
            }
            let original: Vec<NodeId> =
                p.replicas.iter().copied().filter(|r| !p.adding_replicas.contains(r)).collect();
            let isr: Vec<NodeId> =
                p.isr.iter().copied().filter(|r| !p.adding_replicas.contains(r)).collect();
            if isr.is_empty() {
                return Err(ApiError::new(
                    ErrorCode::InvalidReplicaAssignment,
                    format!(
                        "cannot cancel the reassignment of {topic}-{index}: no original replica is in sync, so reverting would need an unclean leader election"
                    ),
                ));
            }
            (original, Vec::new(), Vec::new(), isr)
        }
    };
    let mut next = PartitionImage {
        replicas,
        adding_replicas: adding,
        removing_replicas: removing,
        isr,
        ..p.clone()
    };
    if let Some((replicas, isr)) = completed(&next, &next.isr) {
        next = PartitionImage {
            replicas,
            isr,
            adding_replicas: Vec::new(),
            removing_replicas: Vec::new(),
            ..next
        };
    }
    next.leader = elect(image, p.leader, &next.replicas, &next.isr)
        .or(p.leader.filter(|l| next.replicas.contains(l)));
    let unchanged = next.replicas == p.replicas
        && next.adding_replicas == p.adding_replicas
        && next.removing_replicas == p.removing_replicas
        && next.isr == p.isr
        && next.leader == p.leader;
    if unchanged {
        return Ok(Vec::new());
    }
    Ok(vec![MetadataCommand::ChangeReplicas {
        topic: topic.into(),
        partition: index,
        replicas: next.replicas,
        adding: next.adding_replicas,
        removing: next.removing_replicas,
        leader: next.leader,
        isr: next.isr,
    }])
}

/// One partition's ongoing reassignment, as ListPartitionReassignments shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ongoing {
    pub topic: String,
    pub partition: i32,
    pub replicas: Vec<NodeId>,
    pub adding: Vec<NodeId>,
    pub removing: Vec<NodeId>,
}

/// The ongoing reassignments, of every partition (`None`) or of the named ones.
pub fn ongoing(image: &MetadataImage, only: Option<&[(String, Vec<i32>)]>) -> Vec<Ongoing> {
    let mut out = Vec::new();
    let mut push = |topic: &str, i: usize, p: &PartitionImage| {
        if p.reassigning() {
            out.push(Ongoing {
                topic: topic.to_string(),
                partition: i as i32,
                replicas: p.replicas.clone(),
                adding: p.adding_replicas.clone(),
                removing: p.removing_replicas.clone(),
            });
        }
    };
    match only {
        None => {
            for t in image.topics.values() {
                for (i, p) in t.partitions.iter().enumerate() {
                    push(&t.name, i, p);
                }
            }
        }
        Some(wanted) => {
            for (topic, parts) in wanted {
                let Some(t) = image.topic(topic) else { continue };
                for &i in parts {
                    if let Some(p) = usize::try_from(i).ok().and_then(|i| t.partitions.get(i)) {
                        push(topic, i as usize, p);
                    }
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::commands::apply;
    use crate::metadata::decide;
    use crate::types::LeaderEpoch;

    fn n(ids: &[i32]) -> Vec<NodeId> {
        ids.iter().map(|i| NodeId(*i)).collect()
    }

    /// Four brokers and topic `t` with one partition on 1, 2, 3 (leader 1).
    fn image() -> MetadataImage {
        crate::metadata::test_image(4, &[1, 2, 3])
    }

    fn run(img: &mut MetadataImage, cmds: &[MetadataCommand]) {
        cmds.iter().for_each(|c| apply(img, c));
    }

    fn part(img: &MetadataImage) -> &PartitionImage {
        &img.topics["t"].partitions[0]
    }

    /// The leader's AlterPartition adding `member` to the ISR.
    fn admit(img: &mut MetadataImage, member: i32) {
        let p = part(img).clone();
        let mut isr = p.isr.clone();
        isr.push(NodeId(member));
        let leader = p.leader.expect("leader");
        let cmds =
            decide::alter_partition(img, "t", 0, leader, p.leader_epoch, p.partition_epoch, &isr)
                .expect("ISR change");
        run(img, &cmds);
    }

    #[test]
    fn a_move_adds_then_waits_for_the_isr_then_removes_and_moves_leadership() {
        let mut img = image();
        let cmds = alter(&img, "t", 0, Some(&n(&[4, 2, 3]))).expect("start");
        run(&mut img, &cmds);
        let p = part(&img);
        assert_eq!(p.replicas, n(&[4, 2, 3, 1]));
        assert_eq!(p.adding_replicas, n(&[4]));
        assert_eq!(p.removing_replicas, n(&[1]));
        assert_eq!(p.leader, Some(NodeId(1)), "the old leader leads until the move completes");
        assert_eq!(p.leader_epoch, LeaderEpoch(0), "adding replicas fences nobody");
        assert_eq!(ongoing(&img, None).len(), 1);

        admit(&mut img, 4);
        let p = part(&img);
        assert_eq!(p.replicas, n(&[4, 2, 3]));
        assert!(!p.reassigning());
        assert_eq!(p.isr, n(&[2, 3, 4]));
        assert_eq!(p.leader, Some(NodeId(4)), "the first target replica in the ISR leads");
        assert_eq!(p.leader_epoch, LeaderEpoch(1));
        assert!(ongoing(&img, None).is_empty());
    }

    #[test]
    fn a_leader_that_stays_keeps_leading_and_the_epoch_still_fences_the_removed_replica() {
        let mut img = image();
        let cmds = alter(&img, "t", 0, Some(&n(&[1, 2, 4]))).expect("start");
        run(&mut img, &cmds);
        admit(&mut img, 4);
        let p = part(&img);
        assert_eq!((p.replicas.clone(), p.leader), (n(&[1, 2, 4]), Some(NodeId(1))));
        assert_eq!(p.leader_epoch, LeaderEpoch(1), "replica 3 left: its fetches are fenced");
    }

    #[test]
    fn cancelling_reverts_to_the_original_replicas() {
        let mut img = image();
        let cmds = alter(&img, "t", 0, Some(&n(&[4, 2, 3]))).expect("start");
        run(&mut img, &cmds);
        let cmds = alter(&img, "t", 0, None).expect("cancel");
        run(&mut img, &cmds);
        let p = part(&img);
        assert_eq!(p.replicas, n(&[2, 3, 1]), "Kafka's revert: the replicas minus the added ones");
        assert!(!p.reassigning());
        assert_eq!(p.leader, Some(NodeId(1)));
        let again = alter(&img, "t", 0, None).expect_err("nothing to cancel");
        assert_eq!(again.code, ErrorCode::NoReassignmentInProgress);
    }

    #[test]
    fn a_reorder_or_a_shrink_completes_at_once() {
        let mut img = image();
        let cmds = alter(&img, "t", 0, Some(&n(&[3, 1, 2]))).expect("reorder");
        run(&mut img, &cmds);
        assert_eq!(part(&img).replicas, n(&[3, 1, 2]));
        assert!(!part(&img).reassigning());
        assert_eq!(part(&img).leader, Some(NodeId(1)), "a reorder moves no leadership");
        let cmds = alter(&img, "t", 0, Some(&n(&[3, 2]))).expect("shrink");
        run(&mut img, &cmds);
        let p = part(&img);
        assert_eq!((p.replicas.clone(), p.isr.clone()), (n(&[3, 2]), n(&[2, 3])));
        assert_eq!(p.leader, Some(NodeId(3)));
        assert!(alter(&img, "t", 0, Some(&n(&[3, 2]))).expect("same").is_empty());
    }

    #[test]
    fn a_new_target_replaces_an_ongoing_reassignment() {
        let mut img = image();
        let cmds = alter(&img, "t", 0, Some(&n(&[4, 2, 3]))).expect("start");
        run(&mut img, &cmds);
        let cmds = alter(&img, "t", 0, Some(&n(&[1, 2, 3]))).expect("back");
        run(&mut img, &cmds);
        let p = part(&img);
        assert_eq!(p.replicas, n(&[1, 2, 3]));
        assert!(!p.reassigning(), "the original replicas are all in sync");
    }

    #[test]
    fn bad_targets_get_kafkas_errors() {
        let img = image();
        for (target, code) in [
            (n(&[]), ErrorCode::InvalidReplicaAssignment),
            (n(&[1, 1]), ErrorCode::InvalidReplicaAssignment),
            (n(&[1, 9]), ErrorCode::InvalidReplicaAssignment),
        ] {
            assert_eq!(alter(&img, "t", 0, Some(&target)).expect_err("refused").code, code);
        }
        assert_eq!(
            alter(&img, "t", 5, Some(&n(&[1]))).expect_err("no partition").code,
            ErrorCode::UnknownTopicOrPartition
        );
        assert_eq!(
            alter(&img, "nope", 0, None).expect_err("no topic").code,
            ErrorCode::UnknownTopicOrPartition
        );
    }

    #[test]
    fn a_fenced_leader_mid_move_hands_over_and_the_move_still_completes() {
        let mut img = image();
        let cmds = alter(&img, "t", 0, Some(&n(&[4, 2, 3]))).expect("start");
        run(&mut img, &cmds);
        let cmds = decide::fence_broker(&img, NodeId(1));
        run(&mut img, &cmds);
        let p = part(&img).clone();
        assert_eq!(p.leader, Some(NodeId(2)));
        assert!(p.reassigning());
        admit(&mut img, 4);
        let p = part(&img);
        assert_eq!(p.replicas, n(&[4, 2, 3]));
        assert_eq!(p.isr, n(&[2, 3, 4]));
        assert_eq!(p.leader, Some(NodeId(2)), "a leader that is a target replica keeps leading");
    }
}
