//! The records of `__transaction_state`, in Kafka's formats (`TransactionLogKey` v0,
//! `TransactionLogValue` v0, non-flexible), so the topic reads the same as Kafka's:
//!
//! ```text
//! key   version i16 (0) | transactional_id string
//! value version i16 (0) | producer_id i64 | producer_epoch i16 | transaction_timeout_ms i32
//!       | transaction_status i8 | transaction_partitions [topic string, partition_ids [i32]]
//!       | transaction_last_update_timestamp_ms i64 | transaction_start_timestamp_ms i64
//! ```
//! Strings are i16-length prefixed, arrays i32-count prefixed (-1: null). A null value is a
//! tombstone: the transactional id expired. Decoding never panics.

use std::collections::BTreeSet;

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::metadata::TxnState;

const KEY_VERSION: i16 = 0;
const VALUE_VERSION: i16 = 0;

/// One transactional id's stored state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TxnValue {
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub timeout_ms: i32,
    pub state: TxnState,
    pub partitions: BTreeSet<(String, i32)>,
    pub last_update_ms: i64,
    /// -1 when no transaction is open.
    pub start_ms: i64,
}

/// Why a stored record could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum TxnRecordError {
    #[error("the record ends early")]
    Truncated,
    #[error("unknown {what} version {version}")]
    UnknownVersion { what: &'static str, version: i16 },
    #[error("unknown transaction status {0}")]
    UnknownStatus(i8),
    #[error("a string is not UTF-8")]
    NotUtf8,
}

fn put_str(out: &mut BytesMut, s: &str) {
    // Transactional ids and topic names are far below 32 KiB (Kafka's limit too).
    let len = s.len().min(i16::MAX as usize);
    out.put_i16(len as i16);
    out.put_slice(&s.as_bytes()[..len]);
}

fn need(r: &Bytes, n: usize) -> Result<(), TxnRecordError> {
    if r.remaining() < n { Err(TxnRecordError::Truncated) } else { Ok(()) }
}

fn get_str(r: &mut Bytes) -> Result<String, TxnRecordError> {
    need(r, 2)?;
    let len = r.get_i16();
    if len < 0 {
        return Ok(String::new());
    }
    need(r, len as usize)?;
    String::from_utf8(r.split_to(len as usize).to_vec()).map_err(|_| TxnRecordError::NotUtf8)
}

/// The key of a transactional id's records.
pub(crate) fn encode_key(transactional_id: &str) -> Bytes {
    let mut b = BytesMut::with_capacity(4 + transactional_id.len());
    b.put_i16(KEY_VERSION);
    put_str(&mut b, transactional_id);
    b.freeze()
}

pub(crate) fn decode_key(mut r: Bytes) -> Result<String, TxnRecordError> {
    need(&r, 2)?;
    let version = r.get_i16();
    if version != KEY_VERSION {
        return Err(TxnRecordError::UnknownVersion { what: "key", version });
    }
    get_str(&mut r)
}

impl TxnValue {
    pub(crate) fn encode(&self) -> Bytes {
        let mut b = BytesMut::with_capacity(64);
        b.put_i16(VALUE_VERSION);
        b.put_i64(self.producer_id);
        b.put_i16(self.producer_epoch);
        b.put_i32(self.timeout_ms);
        b.put_i8(self.state.code());
        let mut by_topic: Vec<(&str, Vec<i32>)> = Vec::new();
        for (t, p) in &self.partitions {
            match by_topic.last_mut() {
                Some((last, ps)) if *last == t.as_str() => ps.push(*p),
                _ => by_topic.push((t.as_str(), vec![*p])),
            }
        }
        b.put_i32(by_topic.len() as i32);
        for (t, ps) in by_topic {
            put_str(&mut b, t);
            b.put_i32(ps.len() as i32);
            for p in ps {
                b.put_i32(p);
            }
        }
        b.put_i64(self.last_update_ms);
        b.put_i64(self.start_ms);
        b.freeze()
    }

    pub(crate) fn decode(mut r: Bytes) -> Result<Self, TxnRecordError> {
        need(&r, 2)?;
        let version = r.get_i16();
        if version != VALUE_VERSION {
            return Err(TxnRecordError::UnknownVersion { what: "value", version });
        }
        need(&r, 8 + 2 + 4 + 1 + 4)?;
        let producer_id = r.get_i64();
        let producer_epoch = r.get_i16();
        let timeout_ms = r.get_i32();
        let status = r.get_i8();
        let state = TxnState::from_code(status).ok_or(TxnRecordError::UnknownStatus(status))?;
        let topics = r.get_i32();
        let mut partitions = BTreeSet::new();
        for _ in 0..topics.max(0) {
            let topic = get_str(&mut r)?;
            need(&r, 4)?;
            let n = r.get_i32();
            for _ in 0..n.max(0) {
                need(&r, 4)?;
                partitions.insert((topic.clone(), r.get_i32()));
            }
        }
        need(&r, 16)?;
        let last_update_ms = r.get_i64();
        let start_ms = r.get_i64();
        Ok(TxnValue {
            producer_id,
            producer_epoch,
            timeout_ms,
            state,
            partitions,
            last_update_ms,
            start_ms,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_values_round_trip_and_garbage_is_an_error() {
        assert_eq!(decode_key(encode_key("tx-1")), Ok("tx-1".to_string()));
        let v = TxnValue {
            producer_id: 4000,
            producer_epoch: 3,
            timeout_ms: 60_000,
            state: TxnState::PrepareCommit,
            partitions: [("a".to_string(), 0), ("a".to_string(), 2), ("b".to_string(), 1)]
                .into_iter()
                .collect(),
            last_update_ms: 17,
            start_ms: 11,
        };
        let bytes = v.encode();
        // Kafka's layout: version, pid, epoch, timeout, status, then 2 topics.
        assert_eq!(&bytes[..2], &[0, 0]);
        assert_eq!(bytes[16], 2, "PrepareCommit is status 2");
        assert_eq!(TxnValue::decode(bytes.clone()), Ok(v));
        for cut in 0..bytes.len() {
            assert!(TxnValue::decode(bytes.slice(..cut)).is_err(), "cut at {cut}");
        }
        assert!(decode_key(Bytes::from_static(&[0, 1, 0, 0])).is_err());
    }
}
