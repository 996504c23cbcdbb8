//! ElectLeaders (KIP-460), decided as KRaft's controller does: a PREFERRED election gives a
//! partition to its first replica when that broker is live and in the ISR; an UNCLEAN election
//! gives a leaderless partition to a live ISR member, or failing that to any live replica, whose
//! log then defines the partition (records only the others held are lost: the operator's
//! explicit choice). Pure: no I/O.
//!
//! Invariants: a clean election never picks a replica outside the ISR; an unclean one only
//! happens for a partition with no leader, and sets the ISR to the new leader alone.

use super::commands::MetadataCommand;
use super::image::MetadataImage;
use crate::error_code::{ApiError, ErrorCode};
use crate::types::NodeId;

/// Kafka's ElectionType.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ElectionType {
    Preferred,
    Unclean,
}

impl ElectionType {
    /// The wire value (0 preferred, 1 unclean).
    pub fn from_wire(v: i8) -> Option<Self> {
        match v {
            0 => Some(ElectionType::Preferred),
            1 => Some(ElectionType::Unclean),
            _ => None,
        }
    }
}

/// Decides one partition's election: the command that carries it out, or ELECTION_NOT_NEEDED,
/// PREFERRED_LEADER_NOT_AVAILABLE, ELIGIBLE_LEADERS_NOT_AVAILABLE, UNKNOWN_TOPIC_OR_PARTITION.
pub fn elect_leader(
    image: &MetadataImage,
    topic: &str,
    index: i32,
    kind: ElectionType,
) -> Result<MetadataCommand, ApiError> {
    let p = image
        .topic(topic)
        .and_then(|t| usize::try_from(index).ok().and_then(|i| t.partitions.get(i)))
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::UnknownTopicOrPartition,
                format!("No such partition as {topic}-{index}"),
            )
        })?;
    let live = |n: &NodeId| image.brokers.get(n).is_some_and(|b| !b.fenced);
    let change = |leader: NodeId, isr: Vec<NodeId>| MetadataCommand::ChangePartition {
        topic: topic.into(),
        partition: index,
        leader: Some(leader),
        isr,
    };
    match kind {
        ElectionType::Preferred => {
            let preferred = p.replicas.first().copied();
            if preferred.is_some() && p.leader == preferred {
                return Err(ApiError::new(
                    ErrorCode::ElectionNotNeeded,
                    "Leader election not needed for topic partition.",
                ));
            }
            match preferred {
                Some(n) if live(&n) && p.isr.contains(&n) => Ok(change(n, p.isr.clone())),
                _ => Err(ApiError::new(
                    ErrorCode::PreferredLeaderNotAvailable,
                    format!(
                        "the preferred leader {preferred:?} of {topic}-{index} is not live and in sync (ISR {:?})",
                        p.isr
                    ),
                )),
            }
        }
        ElectionType::Unclean => {
            if p.leader.is_some() {
                return Err(ApiError::new(
                    ErrorCode::ElectionNotNeeded,
                    "Leader election not needed for topic partition.",
                ));
            }
            if let Some(n) = p.replicas.iter().find(|r| p.isr.contains(r) && live(r)) {
                return Ok(change(*n, p.isr.clone()));
            }
            match p.replicas.iter().find(|r| live(r)) {
                Some(n) => {
                    tracing::warn!(partition = %format!("{topic}-{index}"), leader = %n,
                        "unclean leader election: records only the lost replicas held are gone");
                    Ok(change(*n, vec![*n]))
                }
                None => Err(ApiError::new(
                    ErrorCode::EligibleLeadersNotAvailable,
                    format!("no replica of {topic}-{index} is live"),
                )),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::commands::apply;
    use crate::metadata::decide::fence_broker;

    /// Three brokers and topic `t` with one partition on 1, 2 (leader 1).
    fn image() -> MetadataImage {
        crate::metadata::test_image(3, &[1, 2])
    }

    fn code(r: Result<MetadataCommand, ApiError>) -> ErrorCode {
        r.map_or_else(|e| e.code, |_| ErrorCode::None)
    }

    #[test]
    fn preferred_election_moves_leadership_back_only_when_it_can() {
        let mut img = image();
        let e = |img: &MetadataImage| elect_leader(img, "t", 0, ElectionType::Preferred);
        assert_eq!(code(e(&img)), ErrorCode::ElectionNotNeeded);
        fence_broker(&img, NodeId(1)).iter().for_each(|c| apply(&mut img, c));
        assert_eq!(img.topics["t"].partitions[0].leader, Some(NodeId(2)));
        assert_eq!(code(e(&img)), ErrorCode::PreferredLeaderNotAvailable);
        apply(&mut img, &MetadataCommand::UnfenceBroker { id: NodeId(1) });
        assert_eq!(code(e(&img)), ErrorCode::PreferredLeaderNotAvailable, "1 is out of the ISR");
        apply(
            &mut img,
            &MetadataCommand::ChangePartition {
                topic: "t".into(),
                partition: 0,
                leader: Some(NodeId(2)),
                isr: vec![NodeId(2), NodeId(1)],
            },
        );
        let cmd = e(&img).expect("elected");
        apply(&mut img, &cmd);
        assert_eq!(img.topics["t"].partitions[0].leader, Some(NodeId(1)));
        assert_eq!(code(elect_leader(&img, "t", 7, ElectionType::Preferred)), {
            ErrorCode::UnknownTopicOrPartition
        });
    }

    #[test]
    fn unclean_election_only_for_a_leaderless_partition_and_resets_the_isr() {
        let mut img = image();
        let e = |img: &MetadataImage| elect_leader(img, "t", 0, ElectionType::Unclean);
        assert_eq!(code(e(&img)), ErrorCode::ElectionNotNeeded);
        fence_broker(&img, NodeId(2)).iter().for_each(|c| apply(&mut img, c));
        fence_broker(&img, NodeId(1)).iter().for_each(|c| apply(&mut img, c));
        let p = &img.topics["t"].partitions[0];
        assert_eq!((p.leader, p.isr.clone()), (None, vec![NodeId(1)]));
        assert_eq!(code(e(&img)), ErrorCode::EligibleLeadersNotAvailable);
        apply(&mut img, &MetadataCommand::UnfenceBroker { id: NodeId(2) });
        let cmd = e(&img).expect("unclean");
        apply(&mut img, &cmd);
        let p = &img.topics["t"].partitions[0];
        assert_eq!((p.leader, p.isr.clone()), (Some(NodeId(2)), vec![NodeId(2)]));
    }
}
