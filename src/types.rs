//! Distinct types for distinct numbers (STYLE rule 5): a Kafka [`Offset`] is not a raft log index,
//! a [`LeaderEpoch`] is not a raft term, and ids of nodes and partitions are their own types.

use std::fmt;

use serde::{Deserialize, Serialize};

macro_rules! newtype {
    ($(#[$doc:meta])* $name:ident($inner:ty)) => {
        $(#[$doc])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
        )]
        #[serde(transparent)]
        pub struct $name(pub $inner);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

newtype!(
    /// The position of a record in a partition. Offsets only grow and are never reused.
    Offset(i64)
);
newtype!(
    /// The epoch of a partition's leadership (KIP-101). Grows on every leader change.
    LeaderEpoch(i32)
);
newtype!(
    /// A node's `node.id`.
    NodeId(i32)
);
newtype!(
    /// A partition's index within its topic.
    PartitionId(i32)
);
newtype!(
    /// An idempotent producer's id, handed out by InitProducerId.
    ProducerId(i64)
);
newtype!(
    /// An idempotent producer's epoch; a producer with an older epoch is fenced.
    ProducerEpoch(i16)
);

impl Offset {
    /// The offset `n` records further on.
    pub fn plus(self, n: i64) -> Offset {
        Offset(self.0 + n)
    }
}

/// A partition of a named topic: the unit of ordering and of storage.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct TopicPartition {
    /// The topic's name.
    pub topic: String,
    /// The partition's index within the topic.
    pub partition: PartitionId,
}

impl TopicPartition {
    /// A partition of `topic`.
    pub fn new(topic: impl Into<String>, partition: i32) -> Self {
        TopicPartition { topic: topic.into(), partition: PartitionId(partition) }
    }

    /// The name of the directory holding this replica: `<topic>-<partition>`, as Kafka names it.
    pub fn dir_name(&self) -> String {
        format!("{}-{}", self.topic, self.partition.0)
    }
}

impl fmt::Display for TopicPartition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.topic, self.partition.0)
    }
}

/// A new random cluster id: 22 characters of URL-safe base64 of a UUID, like Kafka's.
pub fn new_cluster_id() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let bits = uuid::Uuid::new_v4().as_u128();
    (0..22).map(|i| ALPHABET[((bits >> (i * 6)) & 63) as usize] as char).collect()
}

/// A Kafka `Uuid` as Kafka prints it: the 16 bytes in URL-safe base64 without padding.
pub fn uuid_text(id: &uuid::Uuid) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(id.as_bytes())
}

/// Parses [`uuid_text`]'s form (or a hyphenated uuid).
pub fn parse_uuid(text: &str) -> Option<uuid::Uuid> {
    use base64::Engine;
    let text = text.trim();
    if let Ok(bytes) = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(text)
        && let Ok(b) = <[u8; 16]>::try_from(bytes.as_slice())
    {
        return Some(uuid::Uuid::from_bytes(b));
    }
    uuid::Uuid::parse_str(text).ok()
}
