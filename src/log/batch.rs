//! Our own view of the Kafka v2 record-batch header (KIP-98 format, "magic 2").
//!
//! Batches are stored exactly as the producer sent them. The broker only ever rewrites
//! `baseOffset` (bytes 0..8) and `partitionLeaderEpoch` (bytes 12..16), which the CRC does not
//! cover, so records are never decoded or re-encoded on the hot path. The one exception is
//! `message.timestamp.type=LogAppendTime`, which rewrites `attributes` and `maxTimestamp` and
//! therefore recomputes the CRC, as Kafka does.
//!
//! Layout (big-endian):
//! ```text
//!  0 baseOffset i64 | 8 batchLength i32 | 12 partitionLeaderEpoch i32 | 16 magic i8 | 17 crc u32
//! 21 attributes i16 | 23 lastOffsetDelta i32 | 27 baseTimestamp i64 | 35 maxTimestamp i64
//! 43 producerId i64 | 51 producerEpoch i16 | 53 baseSequence i32 | 57 recordsCount i32 | 61 records
//! ```
//! Invariant: every function here is total over arbitrary bytes: bad input is an error, never a
//! panic (checked by a property test).

use thiserror::Error;

use crate::types::{LeaderEpoch, Offset, ProducerEpoch, ProducerId};

/// Size of the fixed v2 batch header, in bytes.
pub(crate) const BATCH_HEADER_BYTES: usize = 61;
/// Bytes before the `batchLength` field's payload starts (baseOffset + batchLength).
pub(crate) const LOG_OVERHEAD_BYTES: usize = 12;
/// The only record-batch format samsa stores.
pub(crate) const MAGIC_V2: i8 = 2;
/// The first byte the CRC covers.
const CRC_START: usize = 21;

const ATTR_COMPRESSION_MASK: i16 = 0x07;
const ATTR_LOG_APPEND_TIME: i16 = 0x08;
const ATTR_TRANSACTIONAL: i16 = 0x10;
const ATTR_CONTROL: i16 = 0x20;

/// Why a batch was refused. Each maps to the Kafka error code a producer expects.
#[derive(Debug, Error, PartialEq, Eq)]
pub(crate) enum BatchError {
    /// Fewer bytes than a header, or `batchLength` pointing past the data.
    #[error("record batch truncated: need {needed} bytes, have {available}")]
    Truncated { needed: usize, available: usize },
    /// `batchLength` smaller than a header or negative.
    #[error("invalid batch length {0}")]
    InvalidLength(i32),
    /// Magic other than 2 (message formats v0/v1 were removed in Kafka 4).
    #[error("unsupported record batch magic {0}; only magic 2 is supported")]
    UnsupportedMagic(i8),
    /// The CRC does not match the bytes it covers.
    #[error("record batch CRC mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    CorruptCrc { stored: u32, computed: u32 },
    /// Header fields that contradict each other.
    #[error("invalid record batch: {0}")]
    InvalidRecord(&'static str),
}

/// Compression codec from the batch attributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Codec {
    None,
    Gzip,
    Snappy,
    Lz4,
    Zstd,
}

/// A validated view of one batch's header fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BatchHeader {
    pub base_offset: Offset,
    /// Total bytes of this batch including the 12-byte log overhead.
    pub size_bytes: usize,
    pub partition_leader_epoch: LeaderEpoch,
    pub magic: i8,
    pub crc: u32,
    pub attributes: i16,
    pub last_offset_delta: i32,
    pub base_timestamp_ms: i64,
    pub max_timestamp_ms: i64,
    pub producer_id: ProducerId,
    pub producer_epoch: ProducerEpoch,
    pub base_sequence: i32,
    pub records_count: i32,
}

impl BatchHeader {
    /// The offset of the batch's last record.
    pub(crate) fn last_offset(&self) -> Offset {
        self.base_offset.plus(i64::from(self.last_offset_delta))
    }

    /// The offset after this batch.
    pub(crate) fn next_offset(&self) -> Offset {
        self.last_offset().plus(1)
    }

    /// The codec the records are compressed with; `None` for an unknown codec id.
    pub(crate) fn codec(&self) -> Option<Codec> {
        match self.attributes & ATTR_COMPRESSION_MASK {
            0 => Some(Codec::None),
            1 => Some(Codec::Gzip),
            2 => Some(Codec::Snappy),
            3 => Some(Codec::Lz4),
            4 => Some(Codec::Zstd),
            _ => None,
        }
    }

    pub(crate) fn is_transactional(&self) -> bool {
        self.attributes & ATTR_TRANSACTIONAL != 0
    }

    pub(crate) fn is_control(&self) -> bool {
        self.attributes & ATTR_CONTROL != 0
    }

    /// Whether the producer uses idempotence (a producer id was assigned).
    pub(crate) fn has_producer_id(&self) -> bool {
        self.producer_id.0 >= 0
    }

    /// The sequence number of the batch's last record (sequences wrap at `i32::MAX`).
    pub(crate) fn last_sequence(&self) -> i32 {
        if self.base_sequence < 0 {
            return -1;
        }
        let last = i64::from(self.base_sequence) + i64::from(self.last_offset_delta);
        (last % (i64::from(i32::MAX) + 1)) as i32
    }
}

fn be_i16(b: &[u8], at: usize) -> i16 {
    i16::from_be_bytes([b[at], b[at + 1]])
}
fn be_i32(b: &[u8], at: usize) -> i32 {
    i32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}
fn be_i64(b: &[u8], at: usize) -> i64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    i64::from_be_bytes(a)
}

/// Reads the total size of the batch starting at `bytes` from its length prefix, without
/// validating anything else. `None` when fewer than 12 bytes are there.
pub(crate) fn peek_size(bytes: &[u8]) -> Option<Result<usize, BatchError>> {
    if bytes.len() < LOG_OVERHEAD_BYTES {
        return None;
    }
    let len = be_i32(bytes, 8);
    if len < (BATCH_HEADER_BYTES - LOG_OVERHEAD_BYTES) as i32 {
        return Some(Err(BatchError::InvalidLength(len)));
    }
    Some(Ok(LOG_OVERHEAD_BYTES + len as usize))
}

/// Parses the header of the batch at the start of `bytes` without checking the CRC.
/// `bytes` may extend past the batch.
pub(crate) fn parse_header(bytes: &[u8]) -> Result<BatchHeader, BatchError> {
    let size_bytes = match peek_size(bytes) {
        None => {
            return Err(BatchError::Truncated {
                needed: LOG_OVERHEAD_BYTES,
                available: bytes.len(),
            });
        }
        Some(r) => r?,
    };
    if bytes.len() < BATCH_HEADER_BYTES {
        return Err(BatchError::Truncated { needed: BATCH_HEADER_BYTES, available: bytes.len() });
    }
    let magic = bytes[16] as i8;
    if magic != MAGIC_V2 {
        return Err(BatchError::UnsupportedMagic(magic));
    }
    Ok(BatchHeader {
        base_offset: Offset(be_i64(bytes, 0)),
        size_bytes,
        partition_leader_epoch: LeaderEpoch(be_i32(bytes, 12)),
        magic,
        crc: be_i32(bytes, 17) as u32,
        attributes: be_i16(bytes, 21),
        last_offset_delta: be_i32(bytes, 23),
        base_timestamp_ms: be_i64(bytes, 27),
        max_timestamp_ms: be_i64(bytes, 35),
        producer_id: ProducerId(be_i64(bytes, 43)),
        producer_epoch: ProducerEpoch(be_i16(bytes, 51)),
        base_sequence: be_i32(bytes, 53),
        records_count: be_i32(bytes, 57),
    })
}

/// Computes the CRC-32C the batch in `batch` (exactly one whole batch) should carry.
pub(crate) fn compute_crc(batch: &[u8]) -> u32 {
    crc32c::crc32c(&batch[CRC_START..])
}

/// Parses and fully validates the one batch at the start of `bytes`: sizes, magic, CRC and header
/// consistency. Returns the header; the batch occupies `bytes[..header.size_bytes]`.
pub(crate) fn validate(bytes: &[u8]) -> Result<BatchHeader, BatchError> {
    let header = parse_header(bytes)?;
    if bytes.len() < header.size_bytes {
        return Err(BatchError::Truncated { needed: header.size_bytes, available: bytes.len() });
    }
    let computed = compute_crc(&bytes[..header.size_bytes]);
    if computed != header.crc {
        return Err(BatchError::CorruptCrc { stored: header.crc, computed });
    }
    if header.codec().is_none() {
        return Err(BatchError::InvalidRecord("unknown compression codec"));
    }
    if header.records_count < 0 || header.last_offset_delta < 0 {
        return Err(BatchError::InvalidRecord("negative record count or offset delta"));
    }
    Ok(header)
}

/// Validates a producer's batch further than [`validate`]: Kafka's rules for what a client may
/// send (KIP-98): at least one record, offset deltas that match the count, no control batches.
pub(crate) fn validate_client_batch(bytes: &[u8]) -> Result<BatchHeader, BatchError> {
    let header = validate(bytes)?;
    if header.records_count == 0 {
        return Err(BatchError::InvalidRecord("a produced batch must hold at least one record"));
    }
    if i64::from(header.last_offset_delta) != i64::from(header.records_count) - 1 {
        return Err(BatchError::InvalidRecord("lastOffsetDelta does not match the record count"));
    }
    if header.is_control() {
        return Err(BatchError::InvalidRecord("clients may not produce control batches"));
    }
    Ok(header)
}

/// Splits a produce request's record set into validated batches. Every byte must belong to a
/// whole, valid batch.
pub(crate) fn split_client_batches(mut bytes: &[u8]) -> Result<Vec<BatchHeader>, BatchError> {
    let mut out = Vec::new();
    if bytes.is_empty() {
        return Err(BatchError::InvalidRecord("empty record set"));
    }
    while !bytes.is_empty() {
        let header = validate_client_batch(bytes)?;
        bytes = &bytes[header.size_bytes..];
        out.push(header);
    }
    Ok(out)
}

/// Rewrites the two fields the broker owns: `baseOffset` and `partitionLeaderEpoch`. Neither is
/// covered by the CRC, so the batch stays valid.
pub(crate) fn assign_offset(batch: &mut [u8], base_offset: Offset, leader_epoch: LeaderEpoch) {
    assert!(batch.len() >= BATCH_HEADER_BYTES, "assign_offset on a batch shorter than a header");
    batch[0..8].copy_from_slice(&base_offset.0.to_be_bytes());
    batch[12..16].copy_from_slice(&leader_epoch.0.to_be_bytes());
}

/// Turns a batch into a LogAppendTime batch stamped `now_ms` and recomputes its CRC.
pub(crate) fn set_log_append_time(batch: &mut [u8], now_ms: i64) {
    assert!(batch.len() >= BATCH_HEADER_BYTES, "set_log_append_time on a short batch");
    let attributes = be_i16(batch, 21) | ATTR_LOG_APPEND_TIME;
    batch[21..23].copy_from_slice(&attributes.to_be_bytes());
    batch[35..43].copy_from_slice(&now_ms.to_be_bytes());
    let crc = compute_crc(batch);
    batch[17..21].copy_from_slice(&crc.to_be_bytes());
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::client::records::{ProducerIds, encode_records, new_record};
    use kafka_protocol::records::Compression;
    use proptest::prelude::*;

    /// Encodes `n` records (timestamps `base_ts + i`) as one v2 batch with the real
    /// client-side encoder.
    pub(crate) fn encode_batch(
        n: usize,
        base_ts: i64,
        producer: Option<(i64, i16, i32)>,
        compression: Compression,
    ) -> Vec<u8> {
        let producer = producer.map(|(producer_id, producer_epoch, base_sequence)| ProducerIds {
            producer_id,
            producer_epoch,
            base_sequence,
        });
        let records: Vec<_> = (0..n)
            .map(|i| {
                let key = Some(bytes::Bytes::from(format!("k{i}")));
                let value = Some(bytes::Bytes::from(format!("value-{i}")));
                new_record(i, key, value, base_ts + i as i64, producer)
            })
            .collect();
        encode_records(&records, compression).expect("encode").to_vec()
    }

    #[test]
    fn a_real_encoded_batch_validates_with_matching_fields() {
        let b = encode_batch(3, 1000, Some((7, 0, 5)), Compression::None);
        let h = validate_client_batch(&b).expect("valid");
        assert_eq!(h.size_bytes, b.len());
        assert_eq!(h.records_count, 3);
        assert_eq!(h.last_offset_delta, 2);
        assert_eq!(h.max_timestamp_ms, 1002);
        assert_eq!(h.producer_id, ProducerId(7));
        assert_eq!(h.base_sequence, 5);
        assert_eq!(h.last_sequence(), 7);
        assert_eq!(h.codec(), Some(Codec::None));
    }

    #[test]
    fn offset_assignment_keeps_the_crc_valid() {
        let mut b = encode_batch(2, 0, None, Compression::Gzip);
        assign_offset(&mut b, Offset(42), LeaderEpoch(3));
        let h = validate(&b).expect("still valid");
        assert_eq!(h.base_offset, Offset(42));
        assert_eq!(h.last_offset(), Offset(43));
        assert_eq!(h.partition_leader_epoch, LeaderEpoch(3));
        assert_eq!(h.codec(), Some(Codec::Gzip));
    }

    #[test]
    fn log_append_time_rewrite_recomputes_the_crc() {
        let mut b = encode_batch(2, 5, None, Compression::None);
        set_log_append_time(&mut b, 99_000);
        let h = validate(&b).expect("valid after rewrite");
        assert_eq!(h.max_timestamp_ms, 99_000);
        assert_ne!(h.attributes & ATTR_LOG_APPEND_TIME, 0);
    }

    #[test]
    fn a_flipped_byte_is_a_crc_error() {
        let mut b = encode_batch(2, 0, None, Compression::None);
        let last = b.len() - 1;
        b[last] ^= 0xff;
        assert!(matches!(validate(&b), Err(BatchError::CorruptCrc { .. })));
    }

    #[test]
    fn magic_one_is_refused() {
        let mut b = encode_batch(1, 0, None, Compression::None);
        b[16] = 1;
        assert_eq!(validate(&b), Err(BatchError::UnsupportedMagic(1)));
    }

    #[test]
    fn several_batches_split_and_trailing_garbage_is_refused() {
        let mut two = encode_batch(2, 0, None, Compression::None);
        two.extend(encode_batch(3, 0, None, Compression::None));
        let hs = split_client_batches(&two).expect("two batches");
        assert_eq!(hs.len(), 2);
        two.extend([0u8; 5]);
        assert!(split_client_batches(&two).is_err());
        assert!(split_client_batches(&[]).is_err());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        #[test]
        fn the_validator_never_panics_on_random_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = split_client_batches(&bytes);
            let _ = validate(&bytes);
            let _ = peek_size(&bytes);
        }

        #[test]
        fn the_validator_never_panics_on_mutated_batches(idx in 0usize..200, val in any::<u8>(), cut in 0usize..200) {
            let mut b = encode_batch(3, 0, Some((1, 0, 0)), Compression::None);
            let i = idx % b.len();
            b[i] = val;
            let c = cut.min(b.len());
            let _ = split_client_batches(&b[..b.len() - c]);
        }
    }
}
