//! Metadata commands: the entries of the metadata log, and `apply`, the pure function that
//! replays them onto an image (KRaft's "records" and "replay").
//!
//! Invariants: `apply` is deterministic, does no I/O and never panics; the controller only emits
//! commands it validated against the same image, and `apply` ignores one that no longer fits
//! (e.g. creating a topic that exists), so every replica of the log reaches the same image.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::image::{
    BrokerRegistration, MetadataImage, PartitionImage, ProducerIdBlock, TopicImage,
};
use super::quotas::{QuotaEntity, QuotaValues};
use crate::security::acl::AclBinding;
use crate::security::sasl::scram::{ScramCredential, ScramMechanism};
use crate::types::{LeaderEpoch, NodeId};

/// One metadata change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MetadataCommand {
    /// Sets the cluster id once, when the cluster is bootstrapped.
    InitCluster { cluster_id: String },
    /// A broker (re-)registers with its endpoint; it becomes unfenced.
    RegisterBroker(BrokerRegistration),
    /// A new topic with one replica list per partition; the first replica leads.
    CreateTopic {
        name: String,
        id: Uuid,
        assignments: Vec<Vec<NodeId>>,
        configs: BTreeMap<String, String>,
    },
    /// New partitions appended to a topic.
    CreatePartitions { topic: String, assignments: Vec<Vec<NodeId>> },
    /// Removes a topic and all its partitions.
    DeleteTopic { name: String, id: Uuid },
    /// Replaces a topic's config overrides.
    SetTopicConfigs { topic: String, configs: BTreeMap<String, String> },
    /// Hands the next `count` producer ids to `broker`.
    AllocateProducerIds { broker: NodeId, count: i64 },
    /// The broker missed its session (or is shutting down): it may lead nothing.
    FenceBroker { id: NodeId },
    /// The broker heartbeats again and may lead partitions.
    UnfenceBroker { id: NodeId },
    /// A partition's leader or ISR changes. The partition epoch always grows; the leader epoch
    /// grows when the leader changes (KIP-101/KIP-320 fencing).
    ChangePartition { topic: String, partition: i32, leader: Option<NodeId>, isr: Vec<NodeId> },
    /// A partition's replica set changes (KIP-455: a reassignment starts, completes or is
    /// cancelled), with the ISR and leader that go with it. The leader epoch grows when the
    /// leader changes or a replica leaves, so a removed replica's fetches are fenced.
    ChangeReplicas {
        topic: String,
        partition: i32,
        replicas: Vec<NodeId>,
        adding: Vec<NodeId>,
        removing: Vec<NodeId>,
        leader: Option<NodeId>,
        isr: Vec<NodeId>,
    },
    /// Sets a user's SCRAM credential for one mechanism.
    UpsertScramCredential { user: String, mechanism: ScramMechanism, credential: ScramCredential },
    /// Removes a user's SCRAM credential for one mechanism.
    DeleteScramCredential { user: String, mechanism: ScramMechanism },
    /// Adds ACLs (CreateAcls), each under a fresh id.
    CreateAcls { acls: Vec<(Uuid, AclBinding)> },
    /// Removes ACLs by id (DeleteAcls).
    DeleteAcls { ids: Vec<Uuid> },
    /// Replaces the dynamic configs of one broker (`entity` = its node id) or of the cluster
    /// default (`entity` = ""); an empty set removes the entry.
    SetBrokerConfigs { entity: String, configs: BTreeMap<String, String> },
    /// Replaces one client-quota entity's values; an empty set removes the entity.
    SetClientQuotas { entity: QuotaEntity, values: QuotaValues },
}

fn new_partition(replicas: &[NodeId]) -> PartitionImage {
    PartitionImage {
        replicas: replicas.to_vec(),
        isr: replicas.to_vec(),
        leader: replicas.first().copied(),
        leader_epoch: LeaderEpoch(0),
        partition_epoch: 0,
        adding_replicas: Vec::new(),
        removing_replicas: Vec::new(),
    }
}

/// Applies one command to the image.
pub fn apply(image: &mut MetadataImage, command: &MetadataCommand) {
    match command {
        MetadataCommand::InitCluster { cluster_id } => {
            if image.cluster_id.is_none() {
                image.cluster_id = Some(cluster_id.clone());
            }
        }
        MetadataCommand::RegisterBroker(reg) => {
            // A (re-)registered broker starts fenced; its first heartbeat unfences it (KIP-631).
            let epoch = image.brokers.get(&reg.id).map_or(reg.epoch, |b| b.epoch.max(reg.epoch));
            image.brokers.insert(reg.id, BrokerRegistration { epoch, fenced: true, ..reg.clone() });
        }
        MetadataCommand::FenceBroker { id } => {
            if let Some(b) = image.brokers.get_mut(id) {
                b.fenced = true;
            }
        }
        MetadataCommand::UnfenceBroker { id } => {
            if let Some(b) = image.brokers.get_mut(id) {
                b.fenced = false;
            }
        }
        MetadataCommand::ChangePartition { topic, partition, leader, isr } => {
            let Some(p) =
                image.topics.get_mut(topic).and_then(|t| t.partitions.get_mut(*partition as usize))
            else {
                return;
            };
            if p.leader != *leader {
                p.leader_epoch = LeaderEpoch(p.leader_epoch.0 + 1);
            }
            p.leader = *leader;
            p.isr = isr.clone();
            p.partition_epoch += 1;
        }
        MetadataCommand::ChangeReplicas {
            topic,
            partition,
            replicas,
            adding,
            removing,
            leader,
            isr,
        } => {
            let Some(p) =
                image.topics.get_mut(topic).and_then(|t| t.partitions.get_mut(*partition as usize))
            else {
                return;
            };
            let replica_left = p.replicas.iter().any(|r| !replicas.contains(r));
            if p.leader != *leader || replica_left {
                p.leader_epoch = LeaderEpoch(p.leader_epoch.0 + 1);
            }
            p.replicas = replicas.clone();
            p.adding_replicas = adding.clone();
            p.removing_replicas = removing.clone();
            p.leader = *leader;
            p.isr = isr.clone();
            p.partition_epoch += 1;
        }
        MetadataCommand::CreateTopic { name, id, assignments, configs } => {
            if image.topics.contains_key(name) || image.topic_names_by_id.contains_key(id) {
                return;
            }
            let topic = TopicImage {
                name: name.clone(),
                id: *id,
                partitions: assignments.iter().map(|r| new_partition(r)).collect(),
                configs: configs.clone(),
            };
            image.topic_names_by_id.insert(*id, name.clone());
            image.topics.insert(name.clone(), topic);
        }
        MetadataCommand::CreatePartitions { topic, assignments } => {
            if let Some(t) = image.topics.get_mut(topic) {
                t.partitions.extend(assignments.iter().map(|r| new_partition(r)));
            }
        }
        MetadataCommand::DeleteTopic { name, id } => {
            if image.topics.get(name).is_some_and(|t| t.id == *id) {
                image.topics.remove(name);
                image.topic_names_by_id.remove(id);
            }
        }
        MetadataCommand::SetTopicConfigs { topic, configs } => {
            if let Some(t) = image.topics.get_mut(topic) {
                t.configs = configs.clone();
            }
        }
        MetadataCommand::UpsertScramCredential { user, mechanism, credential } => {
            image
                .scram_credentials
                .entry(user.clone())
                .or_default()
                .insert(*mechanism, credential.clone());
        }
        MetadataCommand::DeleteScramCredential { user, mechanism } => {
            if let Some(creds) = image.scram_credentials.get_mut(user) {
                creds.remove(mechanism);
                if creds.is_empty() {
                    image.scram_credentials.remove(user);
                }
            }
        }
        MetadataCommand::CreateAcls { acls } => {
            for (id, acl) in acls {
                if !image.acls.values().any(|a| a == acl) {
                    image.acls.insert(*id, acl.clone());
                }
            }
        }
        MetadataCommand::DeleteAcls { ids } => {
            for id in ids {
                image.acls.remove(id);
            }
        }
        MetadataCommand::SetBrokerConfigs { entity, configs } => {
            if configs.is_empty() {
                image.broker_configs.remove(entity);
            } else {
                image.broker_configs.insert(entity.clone(), configs.clone());
            }
        }
        MetadataCommand::SetClientQuotas { entity, values } => {
            if values.is_empty() {
                image.client_quotas.remove(entity);
            } else {
                image.client_quotas.insert(entity.clone(), values.clone());
            }
        }
        MetadataCommand::AllocateProducerIds { broker, count } => {
            let first = image.next_producer_id;
            image.next_producer_id = first.saturating_add((*count).max(0));
            image.producer_id_blocks.insert(*broker, ProducerIdBlock { first, count: *count });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn create(name: &str, id: u128, parts: usize) -> MetadataCommand {
        MetadataCommand::CreateTopic {
            name: name.into(),
            id: Uuid::from_u128(id),
            assignments: vec![vec![NodeId(1)]; parts],
            configs: BTreeMap::new(),
        }
    }

    #[test]
    fn replaying_the_same_commands_gives_the_same_image() {
        let cmds = [
            MetadataCommand::InitCluster { cluster_id: "c".into() },
            create("a", 1, 2),
            MetadataCommand::CreatePartitions {
                topic: "a".into(),
                assignments: vec![vec![NodeId(1)]],
            },
            create("b", 2, 1),
            MetadataCommand::DeleteTopic { name: "b".into(), id: Uuid::from_u128(2) },
            MetadataCommand::AllocateProducerIds { broker: NodeId(1), count: 1000 },
            MetadataCommand::AllocateProducerIds { broker: NodeId(1), count: 1000 },
        ];
        let mut x = MetadataImage::default();
        let mut y = MetadataImage::default();
        cmds.iter().for_each(|c| apply(&mut x, c));
        cmds.iter().for_each(|c| apply(&mut y, c));
        assert_eq!(x, y);
        assert_eq!(x.topics["a"].partitions.len(), 3);
        assert!(!x.topics.contains_key("b"));
        assert_eq!(x.producer_id_blocks[&NodeId(1)], ProducerIdBlock { first: 1000, count: 1000 });
        assert_eq!(x.topic_by_id(&Uuid::from_u128(1)).map(|t| t.name.as_str()), Some("a"));
    }

    /// Credentials survive the metadata log's JSON encoding (snapshots and entries).
    #[test]
    fn scram_credentials_replay_and_round_trip_through_json() {
        let cred = ScramCredential::from_password(ScramMechanism::Sha512, "pw", 4096);
        let mut img = MetadataImage::default();
        for c in [
            MetadataCommand::UpsertScramCredential {
                user: "alice".into(),
                mechanism: ScramMechanism::Sha256,
                credential: cred.clone(),
            },
            MetadataCommand::UpsertScramCredential {
                user: "alice".into(),
                mechanism: ScramMechanism::Sha512,
                credential: cred.clone(),
            },
            MetadataCommand::DeleteScramCredential {
                user: "alice".into(),
                mechanism: ScramMechanism::Sha256,
            },
        ] {
            let json = serde_json::to_vec(&c).expect("encode");
            let back: MetadataCommand = serde_json::from_slice(&json).expect("decode");
            apply(&mut img, &back);
        }
        assert_eq!(img.scram_credentials["alice"].len(), 1);
        assert_eq!(img.scram_credentials["alice"][&ScramMechanism::Sha512], cred);
        let json = serde_json::to_vec(&img).expect("encode image");
        let back: MetadataImage = serde_json::from_slice(&json).expect("decode image");
        assert_eq!(back.scram_credentials, img.scram_credentials);
        apply(
            &mut img,
            &MetadataCommand::DeleteScramCredential {
                user: "alice".into(),
                mechanism: ScramMechanism::Sha512,
            },
        );
        assert!(img.scram_credentials.is_empty());
    }

    #[test]
    fn commands_that_no_longer_fit_are_ignored() {
        let mut img = MetadataImage::default();
        apply(&mut img, &create("a", 1, 1));
        apply(&mut img, &create("a", 9, 5));
        assert_eq!(img.topics["a"].id, Uuid::from_u128(1));
        apply(&mut img, &MetadataCommand::DeleteTopic { name: "a".into(), id: Uuid::from_u128(9) });
        assert!(img.topics.contains_key("a"));
        apply(&mut img, &MetadataCommand::InitCluster { cluster_id: "x".into() });
        apply(&mut img, &MetadataCommand::InitCluster { cluster_id: "y".into() });
        assert_eq!(img.cluster_id.as_deref(), Some("x"));
    }
}
