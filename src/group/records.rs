//! The records of `__consumer_offsets`, in Kafka's own formats (non-flexible schema versions), so
//! the topic reads the same as Kafka's:
//!
//! | key version | key                                  | value (version)                                   |
//! |-------------|--------------------------------------|---------------------------------------------------|
//! | 0 or 1      | group, topic, partition (i32)        | OffsetCommitValue v3: offset, leader epoch, metadata, commit timestamp |
//! | 2           | group                                | GroupMetadataValue v3: protocol type, generation, protocol, leader, state timestamp, members |
//!
//! A null value is a tombstone: the offset, or the whole group, is gone. Strings are i16-length
//! prefixed (-1: null), byte arrays i32-length prefixed, arrays i32-count prefixed.
//!
//! Decoding never panics: a malformed record is an error the loader logs and skips.

use bytes::{Buf, BufMut, Bytes, BytesMut};

/// A record key of `__consumer_offsets`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RecordKey {
    Offset { group: String, topic: String, partition: i32 },
    Group { group: String },
}

/// A committed offset, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OffsetValue {
    pub offset: i64,
    /// -1: unknown.
    pub leader_epoch: i32,
    pub metadata: String,
    pub commit_timestamp_ms: i64,
}

/// One member of a stored group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MemberValue {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub rebalance_timeout_ms: i32,
    pub session_timeout_ms: i32,
    /// The member's metadata for the group's protocol.
    pub subscription: Bytes,
    pub assignment: Bytes,
}

/// A group's membership at the end of a rebalance, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct GroupValue {
    pub protocol_type: String,
    pub generation: i32,
    pub protocol: Option<String>,
    pub leader: Option<String>,
    pub current_state_timestamp_ms: i64,
    pub members: Vec<MemberValue>,
}

/// Why a stored record could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum RecordError {
    #[error("the record ends early")]
    Truncated,
    #[error("unknown {what} version {version}")]
    UnknownVersion { what: &'static str, version: i16 },
    #[error("a string is not UTF-8")]
    NotUtf8,
    #[error("a negative length {0}")]
    NegativeLength(i32),
}

const OFFSET_KEY_VERSION: i16 = 1;
const GROUP_KEY_VERSION: i16 = 2;
const OFFSET_VALUE_VERSION: i16 = 3;
const GROUP_VALUE_VERSION: i16 = 3;

fn put_str(out: &mut BytesMut, s: &str) {
    // Group ids, topics and member ids are far below 32 KiB (Kafka's limit too).
    let len = s.len().min(i16::MAX as usize);
    out.put_i16(len as i16);
    out.put_slice(&s.as_bytes()[..len]);
}

fn put_nullable_str(out: &mut BytesMut, s: Option<&str>) {
    match s {
        Some(s) => put_str(out, s),
        None => out.put_i16(-1),
    }
}

fn put_bytes(out: &mut BytesMut, b: &[u8]) {
    out.put_i32(b.len() as i32);
    out.put_slice(b);
}

impl RecordKey {
    pub(crate) fn group(&self) -> &str {
        match self {
            RecordKey::Offset { group, .. } | RecordKey::Group { group } => group,
        }
    }

    pub(crate) fn encode(&self) -> Bytes {
        let mut out = BytesMut::new();
        match self {
            RecordKey::Offset { group, topic, partition } => {
                out.put_i16(OFFSET_KEY_VERSION);
                put_str(&mut out, group);
                put_str(&mut out, topic);
                out.put_i32(*partition);
            }
            RecordKey::Group { group } => {
                out.put_i16(GROUP_KEY_VERSION);
                put_str(&mut out, group);
            }
        }
        out.freeze()
    }

    pub(crate) fn decode(mut b: Bytes) -> Result<Self, RecordError> {
        let r = &mut b;
        match get_i16(r)? {
            0 | 1 => Ok(RecordKey::Offset {
                group: get_str(r)?,
                topic: get_str(r)?,
                partition: get_i32(r)?,
            }),
            2 => Ok(RecordKey::Group { group: get_str(r)? }),
            version => Err(RecordError::UnknownVersion { what: "key", version }),
        }
    }
}

impl OffsetValue {
    pub(crate) fn encode(&self) -> Bytes {
        let mut out = BytesMut::new();
        out.put_i16(OFFSET_VALUE_VERSION);
        out.put_i64(self.offset);
        out.put_i32(self.leader_epoch);
        put_str(&mut out, &self.metadata);
        out.put_i64(self.commit_timestamp_ms);
        out.freeze()
    }

    /// Reads versions 0–3 (v1 and v2 carry no leader epoch; v1 an expire timestamp after the
    /// commit timestamp).
    pub(crate) fn decode(mut b: Bytes) -> Result<Self, RecordError> {
        let r = &mut b;
        let version = get_i16(r)?;
        if !(0..=3).contains(&version) {
            return Err(RecordError::UnknownVersion { what: "offset value", version });
        }
        let offset = get_i64(r)?;
        let leader_epoch = if version >= 3 { get_i32(r)? } else { -1 };
        let metadata = get_str(r)?;
        let commit_timestamp_ms = get_i64(r)?;
        Ok(OffsetValue { offset, leader_epoch, metadata, commit_timestamp_ms })
    }
}

impl GroupValue {
    pub(crate) fn encode(&self) -> Bytes {
        let mut out = BytesMut::new();
        out.put_i16(GROUP_VALUE_VERSION);
        put_str(&mut out, &self.protocol_type);
        out.put_i32(self.generation);
        put_nullable_str(&mut out, self.protocol.as_deref());
        put_nullable_str(&mut out, self.leader.as_deref());
        out.put_i64(self.current_state_timestamp_ms);
        out.put_i32(self.members.len() as i32);
        for m in &self.members {
            put_str(&mut out, &m.member_id);
            put_nullable_str(&mut out, m.group_instance_id.as_deref());
            put_str(&mut out, &m.client_id);
            put_str(&mut out, &m.client_host);
            out.put_i32(m.rebalance_timeout_ms);
            out.put_i32(m.session_timeout_ms);
            put_bytes(&mut out, &m.subscription);
            put_bytes(&mut out, &m.assignment);
        }
        out.freeze()
    }

    /// Reads versions 0–3.
    pub(crate) fn decode(mut b: Bytes) -> Result<Self, RecordError> {
        let r = &mut b;
        let version = get_i16(r)?;
        if !(0..=3).contains(&version) {
            return Err(RecordError::UnknownVersion { what: "group value", version });
        }
        let protocol_type = get_str(r)?;
        let generation = get_i32(r)?;
        let protocol = get_nullable_str(r)?;
        let leader = get_nullable_str(r)?;
        let current_state_timestamp_ms = if version >= 2 { get_i64(r)? } else { -1 };
        let count = get_i32(r)?;
        if count < 0 {
            return Err(RecordError::NegativeLength(count));
        }
        let mut members = Vec::new();
        for _ in 0..count {
            let member_id = get_str(r)?;
            let group_instance_id = if version >= 3 { get_nullable_str(r)? } else { None };
            let client_id = get_str(r)?;
            let client_host = get_str(r)?;
            let rebalance_timeout_ms = if version >= 1 { get_i32(r)? } else { -1 };
            let session_timeout_ms = get_i32(r)?;
            members.push(MemberValue {
                member_id,
                group_instance_id,
                client_id,
                client_host,
                rebalance_timeout_ms: if rebalance_timeout_ms < 0 {
                    session_timeout_ms
                } else {
                    rebalance_timeout_ms
                },
                session_timeout_ms,
                subscription: get_bytes(r)?,
                assignment: get_bytes(r)?,
            });
        }
        Ok(GroupValue {
            protocol_type,
            generation,
            protocol,
            leader,
            current_state_timestamp_ms,
            members,
        })
    }
}

fn need(r: &Bytes, n: usize) -> Result<(), RecordError> {
    if r.remaining() < n { Err(RecordError::Truncated) } else { Ok(()) }
}

fn get_i16(r: &mut Bytes) -> Result<i16, RecordError> {
    need(r, 2)?;
    Ok(r.get_i16())
}

fn get_i32(r: &mut Bytes) -> Result<i32, RecordError> {
    need(r, 4)?;
    Ok(r.get_i32())
}

fn get_i64(r: &mut Bytes) -> Result<i64, RecordError> {
    need(r, 8)?;
    Ok(r.get_i64())
}

fn get_nullable_str(r: &mut Bytes) -> Result<Option<String>, RecordError> {
    let len = get_i16(r)?;
    if len < 0 {
        return Ok(None);
    }
    need(r, len as usize)?;
    let s = r.split_to(len as usize);
    String::from_utf8(s.to_vec()).map(Some).map_err(|_| RecordError::NotUtf8)
}

fn get_str(r: &mut Bytes) -> Result<String, RecordError> {
    Ok(get_nullable_str(r)?.unwrap_or_default())
}

fn get_bytes(r: &mut Bytes) -> Result<Bytes, RecordError> {
    let len = get_i32(r)?;
    if len < 0 {
        return Ok(Bytes::new());
    }
    need(r, len as usize)?;
    Ok(r.split_to(len as usize))
}

/// The `__consumer_offsets` partition that holds a group (Kafka's hash; see the coordinator).
pub(crate) use crate::coordinator::shards::partition_for;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_values_round_trip() {
        let k = RecordKey::Offset { group: "g".into(), topic: "t".into(), partition: 7 };
        assert_eq!(RecordKey::decode(k.encode()), Ok(k));
        let k = RecordKey::Group { group: "g".into() };
        assert_eq!(RecordKey::decode(k.encode()), Ok(k));
        let v = OffsetValue {
            offset: 42,
            leader_epoch: 3,
            metadata: "m".into(),
            commit_timestamp_ms: 1000,
        };
        assert_eq!(OffsetValue::decode(v.encode()), Ok(v));
        let g = GroupValue {
            protocol_type: "consumer".into(),
            generation: 5,
            protocol: Some("range".into()),
            leader: Some("a".into()),
            current_state_timestamp_ms: 9,
            members: vec![MemberValue {
                member_id: "a".into(),
                group_instance_id: Some("i".into()),
                client_id: "c".into(),
                client_host: "/127.0.0.1".into(),
                rebalance_timeout_ms: 300_000,
                session_timeout_ms: 10_000,
                subscription: Bytes::from_static(b"sub"),
                assignment: Bytes::from_static(b"asg"),
            }],
        };
        assert_eq!(GroupValue::decode(g.encode()), Ok(g));
    }

    #[test]
    fn the_offset_key_layout_is_kafkas() {
        let k = RecordKey::Offset { group: "g".into(), topic: "t".into(), partition: 1 };
        assert_eq!(&k.encode()[..], &[0, 1, 0, 1, b'g', 0, 1, b't', 0, 0, 0, 1]);
    }

    #[test]
    fn malformed_records_are_errors_not_panics() {
        for cut in 0..10 {
            let k = RecordKey::Offset { group: "gg".into(), topic: "tt".into(), partition: 1 };
            let mut b = k.encode();
            b.truncate(cut);
            assert!(RecordKey::decode(b).is_err(), "cut at {cut}");
        }
        assert!(GroupValue::decode(Bytes::from_static(&[0, 3, 0, 0, 0, 0, 0, 1, 255])).is_err());
        assert!(OffsetValue::decode(Bytes::from_static(&[0, 9])).is_err());
    }

    #[test]
    fn groups_land_on_kafkas_partition() {
        // Java: "my-group".hashCode() == -1_906_497_762; masked to 31 bits, % 50 == 36.
        assert_eq!(partition_for("my-group", 50), 36);
        assert_eq!(partition_for("", 50), 0);
        // A negative hash is masked, never negative.
        assert!((0..50).contains(&partition_for("zzzzzzzzzzzzzzzzzzzz", 50)));
    }
}
