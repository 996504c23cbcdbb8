//! The consumer protocol's embedded messages (KIP-429 layout): a member's subscription, sent as
//! JoinGroup metadata, and its assignment, sent in SyncGroup. The coordinator treats both as
//! opaque bytes; only OffsetDelete and the tools look inside. Each starts with an i16 version.

use bytes::{Buf, Bytes};
use kafka_protocol::messages::{ConsumerProtocolAssignment, ConsumerProtocolSubscription};
use kafka_protocol::protocol::Decodable;

/// The topics of a subscription; empty when the bytes are not a consumer subscription.
pub(crate) fn subscription_topics(metadata: &Bytes) -> Vec<String> {
    let mut b = metadata.clone();
    if b.remaining() < 2 {
        return Vec::new();
    }
    let version = b.get_i16().clamp(0, 3);
    ConsumerProtocolSubscription::decode(&mut b, version)
        .map(|s| s.topics.iter().map(|t| t.to_string()).collect())
        .unwrap_or_default()
}

/// The (topic, partitions) of an assignment; empty when the bytes are not a consumer
/// assignment (or the member has none yet).
pub(crate) fn assigned_partitions(assignment: &Bytes) -> Vec<(String, Vec<i32>)> {
    let mut b = assignment.clone();
    if b.remaining() < 2 {
        return Vec::new();
    }
    let version = b.get_i16().clamp(0, 3);
    ConsumerProtocolAssignment::decode(&mut b, version)
        .map(|a| {
            a.assigned_partitions
                .iter()
                .map(|tp| (tp.topic.0.to_string(), tp.partitions.clone()))
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BufMut;
    use kafka_protocol::protocol::{Encodable, StrBytes};

    #[test]
    fn subscriptions_and_assignments_are_read_and_garbage_is_empty() {
        let mut s = ConsumerProtocolSubscription::default();
        s.topics = vec![StrBytes::from_static_str("orders")];
        let mut buf = bytes::BytesMut::new();
        buf.put_i16(1);
        s.encode(&mut buf, 1).expect("encode");
        assert_eq!(subscription_topics(&buf.freeze()), vec!["orders".to_string()]);
        assert!(subscription_topics(&Bytes::from_static(&[0, 1, 255])).is_empty());
        assert!(assigned_partitions(&Bytes::new()).is_empty());
    }
}
