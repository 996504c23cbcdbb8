//! Message formats v0 and v1 (magic 0 and 1, Kafka's "message sets"), which Produce v0–2 carry
//! and Fetch v0–3 answer with. The log stores only v2 batches: a legacy message set is
//! up-converted into one v2 batch on append, and stored batches are down-converted for the
//! client that asked, leaving the log as it is (Kafka's `LogValidator` and
//! `RecordsUtil.downConvert`).
//!
//! Layout of one message (big-endian; `size` counts from `crc` to the end, the CRC-32 (IEEE)
//! covers from `magic` to the end):
//! ```text
//! offset i64 | size i32 | crc u32 | magic i8 | attributes i8 | [timestamp i64, magic 1]
//! key_length i32 | key | value_length i32 | value            (length -1: null)
//! ```
//! Attributes: bits 0–2 the codec (none, gzip, snappy, lz4; zstd needs magic 2), bit 3 the
//! timestamp type (magic 1: LogAppendTime). A compressed message (a *wrapper*) has a null key
//! and, as its value, the compressed message set of its inner messages. Inner offsets are
//! absolute in magic 0; in magic 1 they are relative to the batch's first offset and the wrapper
//! carries the absolute offset of its last inner message, so a reader adds
//! `wrapper - last_inner` to each.
//!
//! LZ4 in magic 0: Kafka before 0.10 computed the LZ4 frame's header checksum over the frame's
//! magic bytes too (KAFKA-3160). Magic 0 frames are read whatever their checksum says, and
//! written with that checksum, as Kafka's clients of that age expect.
//!
//! Invariants: total over arbitrary bytes — malformed input is an error, never a panic. A
//! round trip (message set → v2 batch → message set of the same magic) keeps every record's
//! key, value and (magic 1) timestamp; headers, which magic 0/1 cannot carry, are dropped on
//! down-conversion, as Kafka drops them.

use bytes::Bytes;
use thiserror::Error;

use super::batch::{self, BATCH_HEADER_BYTES, Codec, LOG_OVERHEAD_BYTES};
use super::records::{self, RecordsError, put_varlong};

/// Bytes before a message's `size` field ends: offset and size.
const MESSAGE_LOG_OVERHEAD_BYTES: usize = 12;
/// The smallest message after its log overhead, magic 0: crc, magic, attributes, two lengths.
const MESSAGE_V0_MIN_BYTES: usize = 4 + 1 + 1 + 4 + 4;
/// Magic 1 adds the timestamp.
const MESSAGE_V1_MIN_BYTES: usize = MESSAGE_V0_MIN_BYTES + 8;
const ATTR_CODEC_MASK: u8 = 0x07;
const ATTR_LOG_APPEND_TIME: u8 = 0x08;
/// A v2 batch's attribute bit for LogAppendTime.
const BATCH_ATTR_LOG_APPEND_TIME: i16 = 0x08;
/// The timestamp of a record written without one (magic 0).
pub(crate) const NO_TIMESTAMP: i64 = -1;

/// Why a message set could not be read or written.
#[derive(Debug, Error, PartialEq, Eq)]
pub(crate) enum MessageSetError {
    #[error("message set truncated: {0}")]
    Truncated(&'static str),
    #[error("message at offset {offset} has CRC {found:#010x}, its bytes give {computed:#010x}")]
    Crc { offset: i64, found: u32, computed: u32 },
    #[error("magic {0} is not a message format samsa converts (0 or 1)")]
    Magic(i8),
    #[error("a message set mixes magic {0} and {1}")]
    MixedMagic(i8, i8),
    #[error("compressed message holds a compressed message (nested compression)")]
    NestedCompression,
    #[error("inner message has magic {inner}, its wrapper {outer}")]
    InnerMagic { inner: i8, outer: i8 },
    #[error("compressed message holds no messages")]
    EmptyWrapper,
    #[error("the message set holds no messages")]
    Empty,
    #[error("compression codec {0} is not valid below message format v2")]
    UnsupportedCodec(u8),
    #[error(transparent)]
    Records(#[from] RecordsError),
    #[error("message set too large")]
    TooLarge,
}

/// One record of a message set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LegacyRecord {
    /// The absolute offset (inner offsets already resolved).
    pub offset: i64,
    /// [`NO_TIMESTAMP`] in magic 0.
    pub timestamp_ms: i64,
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
}

/// A parsed message set: its records, the magic they were written in, and the codec of its
/// (first) compressed wrapper, `Codec::None` when nothing was compressed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MessageSet {
    pub magic: i8,
    pub codec: Codec,
    pub records: Vec<LegacyRecord>,
}

/// The magic byte of the first message in `bytes`, if that far is present.
pub(crate) fn magic_of(bytes: &[u8]) -> Option<i8> {
    bytes.get(MESSAGE_LOG_OVERHEAD_BYTES + 4).map(|b| *b as i8)
}

/// Parses a whole message set as a producer sends it: every message complete, CRCs valid, one
/// magic throughout, wrappers decompressed.
pub(crate) fn parse(bytes: &[u8]) -> Result<MessageSet, MessageSetError> {
    let mut set = MessageSet { magic: -1, codec: Codec::None, records: Vec::new() };
    let mut rest = bytes;
    while !rest.is_empty() {
        let (m, tail) = read_message(rest)?;
        rest = tail;
        if set.magic >= 0 && set.magic != m.magic {
            return Err(MessageSetError::MixedMagic(set.magic, m.magic));
        }
        set.magic = m.magic;
        match m.codec {
            Codec::None => set.records.push(m.record),
            codec => {
                if set.codec == Codec::None {
                    set.codec = codec;
                }
                set.records.extend(unwrap_inner(&m, codec)?);
            }
        }
    }
    if set.records.is_empty() {
        return Err(MessageSetError::Empty);
    }
    Ok(set)
}

/// One message as read, before a wrapper's inner messages are.
struct Message {
    magic: i8,
    codec: Codec,
    record: LegacyRecord,
}

fn read_message(bytes: &[u8]) -> Result<(Message, &[u8]), MessageSetError> {
    let head = bytes
        .get(..MESSAGE_LOG_OVERHEAD_BYTES)
        .ok_or(MessageSetError::Truncated("message header"))?;
    let offset = i64::from_be_bytes(head[..8].try_into().map_err(|_| MessageSetError::TooLarge)?);
    let size = i32::from_be_bytes(head[8..12].try_into().map_err(|_| MessageSetError::TooLarge)?);
    let size = usize::try_from(size).map_err(|_| MessageSetError::Truncated("negative size"))?;
    let body = bytes
        .get(MESSAGE_LOG_OVERHEAD_BYTES..MESSAGE_LOG_OVERHEAD_BYTES + size)
        .ok_or(MessageSetError::Truncated("message shorter than its size field"))?;
    let tail = &bytes[MESSAGE_LOG_OVERHEAD_BYTES + size..];
    if body.len() < MESSAGE_V0_MIN_BYTES {
        return Err(MessageSetError::Truncated("message smaller than its fixed fields"));
    }
    let found = u32::from_be_bytes([body[0], body[1], body[2], body[3]]);
    let computed = crc32fast::hash(&body[4..]);
    if found != computed {
        return Err(MessageSetError::Crc { offset, found, computed });
    }
    let magic = body[4] as i8;
    let attributes = body[5];
    let mut at = 6;
    let timestamp_ms = match magic {
        0 => NO_TIMESTAMP,
        1 => {
            if body.len() < MESSAGE_V1_MIN_BYTES {
                return Err(MessageSetError::Truncated("magic 1 message without its timestamp"));
            }
            at += 8;
            i64::from_be_bytes(body[6..14].try_into().map_err(|_| MessageSetError::TooLarge)?)
        }
        m => return Err(MessageSetError::Magic(m)),
    };
    let (key, after_key) = length_prefixed(&body[at..])?;
    let (value, after_value) = length_prefixed(after_key)?;
    if !after_value.is_empty() {
        return Err(MessageSetError::Truncated("bytes after the value inside a message"));
    }
    let codec = match attributes & ATTR_CODEC_MASK {
        0 => Codec::None,
        1 => Codec::Gzip,
        2 => Codec::Snappy,
        3 => Codec::Lz4,
        other => return Err(MessageSetError::UnsupportedCodec(other)),
    };
    let record = LegacyRecord {
        offset,
        timestamp_ms,
        key: key.map(Bytes::copy_from_slice),
        value: value.map(Bytes::copy_from_slice),
    };
    Ok((Message { magic, codec, record }, tail))
}

fn length_prefixed(bytes: &[u8]) -> Result<(Option<&[u8]>, &[u8]), MessageSetError> {
    let len = bytes.get(..4).ok_or(MessageSetError::Truncated("length field"))?;
    let len = i32::from_be_bytes([len[0], len[1], len[2], len[3]]);
    let rest = &bytes[4..];
    if len < 0 {
        return Ok((None, rest));
    }
    let len = len as usize;
    let field = rest.get(..len).ok_or(MessageSetError::Truncated("field past its message"))?;
    Ok((Some(field), &rest[len..]))
}

/// The inner records of a wrapper, with absolute offsets.
fn unwrap_inner(wrapper: &Message, codec: Codec) -> Result<Vec<LegacyRecord>, MessageSetError> {
    let compressed = wrapper.record.value.as_deref().unwrap_or_default();
    let inner = decompress(codec, wrapper.magic, compressed)?;
    let mut out = Vec::new();
    let mut rest = &inner[..];
    while !rest.is_empty() {
        let (m, tail) = read_message(rest)?;
        rest = tail;
        if m.codec != Codec::None {
            return Err(MessageSetError::NestedCompression);
        }
        if m.magic != wrapper.magic {
            return Err(MessageSetError::InnerMagic { inner: m.magic, outer: wrapper.magic });
        }
        out.push(m.record);
    }
    let Some(last_inner) = out.last().map(|r| r.offset) else {
        return Err(MessageSetError::EmptyWrapper);
    };
    if wrapper.magic == 1 {
        // Relative inner offsets: the wrapper holds the last one's absolute offset.
        let base = wrapper.record.offset.wrapping_sub(last_inner);
        for r in &mut out {
            r.offset = base.wrapping_add(r.offset);
        }
    }
    Ok(out)
}

fn decompress(codec: Codec, magic: i8, compressed: &[u8]) -> Result<Bytes, MessageSetError> {
    if codec == Codec::Lz4 && magic == 0 {
        let mut fixed = compressed.to_vec();
        set_lz4_header_checksum(&mut fixed, false);
        return Ok(records::decompress(codec, &fixed)?);
    }
    Ok(records::decompress(codec, compressed)?)
}

/// Compression levels for down-converted wrappers: the fastest of each codec (gzip 1, LZ4's fast
/// mode rather than its HC levels), since the work is redone for every old fetch and the result
/// is sent once; `scripts/bench-downconvert.sh` measures it.
const DOWN_CONVERT_GZIP_LEVEL: i32 = 1;
const DOWN_CONVERT_LZ4_LEVEL: i32 = 1;

fn compress(codec: Codec, magic: i8, data: &[u8]) -> Result<Vec<u8>, MessageSetError> {
    let level = match codec {
        Codec::Gzip => Some(DOWN_CONVERT_GZIP_LEVEL),
        Codec::Lz4 => Some(DOWN_CONVERT_LZ4_LEVEL),
        _ => None,
    };
    let mut out = records::compress(codec, level, data)?;
    if codec == Codec::Lz4 && magic == 0 {
        set_lz4_header_checksum(&mut out, true);
    }
    Ok(out)
}

/// Rewrites an LZ4 frame's header checksum: over the frame descriptor (the standard), or, with
/// `kafka_0_9`, over the frame's magic bytes and descriptor (KAFKA-3160). A frame too short to
/// hold its descriptor is left alone for the decoder to refuse.
fn set_lz4_header_checksum(frame: &mut [u8], kafka_0_9: bool) {
    const MAGIC_BYTES: usize = 4;
    let Some(&flags) = frame.get(MAGIC_BYTES) else { return };
    let mut descriptor_end = MAGIC_BYTES + 2;
    if flags & 0x08 != 0 {
        descriptor_end += 8; // content size
    }
    if flags & 0x01 != 0 {
        descriptor_end += 4; // dictionary id
    }
    if frame.len() <= descriptor_end {
        return;
    }
    let from = if kafka_0_9 { 0 } else { MAGIC_BYTES };
    let hash = xxhash_rust::xxh32::xxh32(&frame[from..descriptor_end], 0);
    frame[descriptor_end] = ((hash >> 8) & 0xff) as u8;
}

/// Up-conversion: the message set's records as one v2 batch (base offset 0, no producer id),
/// compressed with the set's codec. The append then assigns offsets and applies the topic's
/// `message.timestamp.type` and `compression.type` as for any batch. Magic 0 records get no
/// timestamp (-1), as in Kafka.
pub(crate) fn to_batch(set: &MessageSet) -> Result<Vec<u8>, MessageSetError> {
    let first = set.records.first().ok_or(MessageSetError::Empty)?;
    let base_ts = first.timestamp_ms;
    let max_ts = set.records.iter().map(|r| r.timestamp_ms).max().unwrap_or(base_ts);
    let mut section = Vec::new();
    for (delta, r) in set.records.iter().enumerate() {
        let mut rec = Vec::with_capacity(16 + r.value.as_ref().map_or(0, |v| v.len()));
        rec.push(0u8); // attributes
        put_varlong(&mut rec, r.timestamp_ms.wrapping_sub(base_ts));
        put_varlong(&mut rec, delta as i64);
        put_varbytes(&mut rec, r.key.as_deref());
        put_varbytes(&mut rec, r.value.as_deref());
        put_varlong(&mut rec, 0); // headers
        put_varlong(&mut section, rec.len() as i64);
        section.extend_from_slice(&rec);
    }
    let count = i32::try_from(set.records.len()).map_err(|_| MessageSetError::TooLarge)?;
    let section = records::compress(set.codec, None, &section)?;
    let mut out = Vec::with_capacity(BATCH_HEADER_BYTES + section.len());
    out.extend_from_slice(&0i64.to_be_bytes()); // base offset
    out.extend_from_slice(&0i32.to_be_bytes()); // length, below
    out.extend_from_slice(&(-1i32).to_be_bytes()); // partition leader epoch
    out.push(2); // magic
    out.extend_from_slice(&0u32.to_be_bytes()); // crc, below
    out.extend_from_slice(&records::codec_bits(set.codec).to_be_bytes());
    out.extend_from_slice(&(count - 1).to_be_bytes()); // last offset delta
    out.extend_from_slice(&base_ts.to_be_bytes());
    out.extend_from_slice(&max_ts.to_be_bytes());
    out.extend_from_slice(&(-1i64).to_be_bytes()); // producer id
    out.extend_from_slice(&(-1i16).to_be_bytes()); // producer epoch
    out.extend_from_slice(&(-1i32).to_be_bytes()); // base sequence
    out.extend_from_slice(&count.to_be_bytes());
    out.extend_from_slice(&section);
    let length =
        i32::try_from(out.len() - LOG_OVERHEAD_BYTES).map_err(|_| MessageSetError::TooLarge)?;
    out[8..12].copy_from_slice(&length.to_be_bytes());
    let crc = batch::compute_crc(&out);
    out[17..21].copy_from_slice(&crc.to_be_bytes());
    Ok(out)
}

fn put_varbytes(out: &mut Vec<u8>, b: Option<&[u8]>) {
    match b {
        None => put_varlong(out, -1),
        Some(b) => {
            put_varlong(out, b.len() as i64);
            out.extend_from_slice(b);
        }
    }
}

/// Why stored batches could not be down-converted for an old fetch.
#[derive(Debug, Error, PartialEq, Eq)]
pub(crate) enum DownConvertError {
    /// A zstd batch: message formats below v2 have no zstd (UNSUPPORTED_COMPRESSION_TYPE).
    #[error("zstd-compressed records cannot be sent in message format v{0}")]
    Zstd(i8),
    #[error(transparent)]
    Format(#[from] MessageSetError),
}

/// Down-conversion: the v2 batches in `stored` (as a fetch read them; a partial batch at the
/// end is ignored) as a message set in `magic` 0 or 1. Control batches are left out (old
/// clients cannot read them); each batch keeps its codec; an uncompressed batch's records
/// before `fetch_offset` are left out, as Kafka does. Whole converted batches are added while
/// the output stays within `max_bytes`, always at least the first (KIP-74's rule). Returns the
/// message set and how many records it holds.
pub(crate) fn down_convert(
    stored: &[u8],
    magic: i8,
    fetch_offset: i64,
    max_bytes: usize,
) -> Result<(Vec<u8>, usize), DownConvertError> {
    if !matches!(magic, 0 | 1) {
        return Err(MessageSetError::Magic(magic).into());
    }
    let mut out = Vec::new();
    let mut converted_records = 0usize;
    let mut rest = stored;
    while let Some(Ok(size)) = batch::peek_size(rest) {
        let Some(bytes) = rest.get(..size) else { break };
        rest = &rest[size..];
        let header = batch::parse_header(bytes).map_err(|_| {
            MessageSetError::Records(RecordsError::Malformed("stored batch header"))
        })?;
        if header.is_control() {
            continue;
        }
        let codec = header
            .codec()
            .ok_or(RecordsError::UnknownCodec(header.attributes))
            .map_err(MessageSetError::from)?;
        if codec == Codec::Zstd {
            return Err(DownConvertError::Zstd(magic));
        }
        let log_append = header.attributes & BATCH_ATTR_LOG_APPEND_TIME != 0;
        let section = records::records_section(bytes, &header).map_err(MessageSetError::from)?;
        let mut recs = Vec::new();
        records::for_each_record(&section, &header, |r| {
            if codec != Codec::None || r.offset.0 >= fetch_offset {
                let timestamp_ms =
                    if log_append { header.max_timestamp_ms } else { r.timestamp_ms };
                recs.push((r.offset.0, timestamp_ms, r.key, r.value));
            }
        })
        .map_err(MessageSetError::from)?;
        if recs.is_empty() {
            continue;
        }
        let mut converted = Vec::new();
        if codec == Codec::None {
            for (offset, ts, key, value) in &recs {
                put_message(&mut converted, magic, 0, log_append, *offset, *ts, *key, *value)?;
            }
        } else {
            let base = header.base_offset.0;
            let mut inner = Vec::new();
            for (offset, ts, key, value) in &recs {
                let inner_offset = if magic == 0 { *offset } else { offset - base };
                put_message(&mut inner, magic, 0, log_append, inner_offset, *ts, *key, *value)?;
            }
            let compressed = compress(codec, magic, &inner)?;
            let (last, max_ts) = (
                recs.last().map_or(base, |r| r.0),
                recs.iter().map(|r| r.1).max().unwrap_or(NO_TIMESTAMP),
            );
            let bits = records::codec_bits(codec) as u8;
            put_message(
                &mut converted,
                magic,
                bits,
                log_append,
                last,
                max_ts,
                None,
                Some(&compressed),
            )?;
        }
        if !out.is_empty() && out.len() + converted.len() > max_bytes {
            break;
        }
        out.extend_from_slice(&converted);
        converted_records += recs.len();
    }
    Ok((out, converted_records))
}

/// Appends one message in `magic`, its CRC computed.
#[allow(clippy::too_many_arguments)]
fn put_message(
    out: &mut Vec<u8>,
    magic: i8,
    codec_bits: u8,
    log_append_time: bool,
    offset: i64,
    timestamp_ms: i64,
    key: Option<&[u8]>,
    value: Option<&[u8]>,
) -> Result<(), MessageSetError> {
    let start = out.len();
    out.extend_from_slice(&offset.to_be_bytes());
    out.extend_from_slice(&0i32.to_be_bytes()); // size, below
    out.extend_from_slice(&0u32.to_be_bytes()); // crc, below
    out.push(magic as u8);
    let mut attributes = codec_bits & ATTR_CODEC_MASK;
    if magic == 1 {
        if log_append_time {
            attributes |= ATTR_LOG_APPEND_TIME;
        }
        out.push(attributes);
        out.extend_from_slice(&timestamp_ms.to_be_bytes());
    } else {
        out.push(attributes);
    }
    for field in [key, value] {
        match field {
            None => out.extend_from_slice(&(-1i32).to_be_bytes()),
            Some(b) => {
                let len = i32::try_from(b.len()).map_err(|_| MessageSetError::TooLarge)?;
                out.extend_from_slice(&len.to_be_bytes());
                out.extend_from_slice(b);
            }
        }
    }
    let size = i32::try_from(out.len() - start - MESSAGE_LOG_OVERHEAD_BYTES)
        .map_err(|_| MessageSetError::TooLarge)?;
    out[start + 8..start + 12].copy_from_slice(&size.to_be_bytes());
    let crc = crc32fast::hash(&out[start + 16..]);
    out[start + 12..start + 16].copy_from_slice(&crc.to_be_bytes());
    Ok(())
}

/// A message set as an old producer writes it: `records` in `magic`, compressed into one
/// wrapper with `codec` (inner offsets 0.., magic 1 relative). Tests and the benchmark.
#[cfg(test)]
pub(crate) fn encode_for_produce(
    magic: i8,
    codec: Codec,
    records: &[LegacyRecord],
) -> Result<Vec<u8>, MessageSetError> {
    let mut inner = Vec::new();
    for (i, r) in records.iter().enumerate() {
        let ts = if magic == 0 { NO_TIMESTAMP } else { r.timestamp_ms };
        put_message(
            &mut inner,
            magic,
            0,
            false,
            i as i64,
            ts,
            r.key.as_deref(),
            r.value.as_deref(),
        )?;
    }
    if codec == Codec::None {
        return Ok(inner);
    }
    let compressed = compress(codec, magic, &inner)?;
    let max_ts = records.iter().map(|r| r.timestamp_ms).max().unwrap_or(NO_TIMESTAMP);
    let last = records.len().saturating_sub(1) as i64;
    let mut out = Vec::new();
    let bits = records::codec_bits(codec) as u8;
    put_message(&mut out, magic, bits, false, last, max_ts, None, Some(&compressed))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{LeaderEpoch, Offset};
    use proptest::prelude::*;

    fn record(key: Option<&[u8]>, value: Option<&[u8]>, ts: i64) -> LegacyRecord {
        LegacyRecord {
            offset: 0,
            timestamp_ms: ts,
            key: key.map(Bytes::copy_from_slice),
            value: value.map(Bytes::copy_from_slice),
        }
    }

    fn codec_strategy() -> impl Strategy<Value = Codec> {
        prop_oneof![Just(Codec::None), Just(Codec::Gzip), Just(Codec::Snappy), Just(Codec::Lz4)]
    }

    fn records_strategy() -> impl Strategy<Value = Vec<LegacyRecord>> {
        prop::collection::vec(
            (
                prop::option::of(prop::collection::vec(any::<u8>(), 0..20)),
                prop::option::of(prop::collection::vec(any::<u8>(), 0..200)),
                0i64..4_000_000_000_000,
            ),
            1..30,
        )
        .prop_map(|v| {
            v.iter().map(|(k, val, ts)| record(k.as_deref(), val.as_deref(), *ts)).collect()
        })
    }

    proptest! {
        /// The issue's property: random magic 0/1 message sets (compressed or not) keep their
        /// keys, values and timestamps through up-conversion and down-conversion.
        #[test]
        fn up_then_down_conversion_keeps_every_record(
            magic in 0i8..=1,
            codec in codec_strategy(),
            down_codec_source in codec_strategy(),
            records in records_strategy(),
            base in 0i64..1_000_000,
        ) {
            let wire = encode_for_produce(magic, codec, &records).expect("encode");
            let set = parse(&wire).expect("parse");
            prop_assert_eq!(set.magic, magic);
            prop_assert_eq!(set.codec, codec);
            let mut stored = to_batch(&set).expect("up-convert");
            let header = batch::validate_client_batch(&stored).expect("a valid v2 batch");
            prop_assert_eq!(header.records_count as usize, records.len());
            batch::assign_offset(&mut stored, Offset(base), LeaderEpoch(3));
            // Broker-side compression may have changed the codec it is stored in.
            let header = batch::parse_header(&stored).expect("header");
            let stored = records::recompress(&stored, &header, down_codec_source, None)
                .expect("recompress");
            for out_magic in [0i8, 1] {
                let (down, n) = down_convert(&stored, out_magic, base, usize::MAX).expect("down");
                prop_assert_eq!(n, records.len());
                let back = parse(&down).expect("parse down-converted");
                prop_assert_eq!(back.magic, out_magic);
                prop_assert_eq!(back.records.len(), records.len());
                for (i, (got, sent)) in back.records.iter().zip(&records).enumerate() {
                    prop_assert_eq!(got.offset, base + i as i64);
                    prop_assert_eq!(&got.key, &sent.key);
                    prop_assert_eq!(&got.value, &sent.value);
                    let ts = if magic == 0 || out_magic == 0 { NO_TIMESTAMP } else { sent.timestamp_ms };
                    prop_assert_eq!(got.timestamp_ms, ts);
                }
            }
        }

        /// Arbitrary bytes never panic the parser.
        #[test]
        fn parse_is_total(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
            let _ = parse(&bytes);
        }

        /// Arbitrary bytes never panic the down-converter either.
        #[test]
        fn down_convert_is_total(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
            let _ = down_convert(&bytes, 1, 0, usize::MAX);
        }
    }

    #[test]
    fn a_flipped_bit_fails_the_crc() {
        let mut wire = encode_for_produce(1, Codec::None, &[record(Some(b"k"), Some(b"v"), 5)])
            .expect("encode");
        let last = wire.len() - 1;
        wire[last] ^= 1;
        assert!(matches!(parse(&wire), Err(MessageSetError::Crc { .. })));
    }

    #[test]
    fn truncated_sets_and_zstd_are_refused() {
        let wire = encode_for_produce(0, Codec::Gzip, &[record(None, Some(b"v"), 0)]).expect("enc");
        assert!(matches!(parse(&wire[..wire.len() - 1]), Err(MessageSetError::Truncated(_))));
        assert_eq!(parse(&[]), Err(MessageSetError::Empty));
        let set = MessageSet {
            magic: 1,
            codec: Codec::Zstd,
            records: vec![record(Some(b"k"), Some(b"v"), 1)],
        };
        let stored = to_batch(&set).expect("a zstd v2 batch");
        assert_eq!(down_convert(&stored, 1, 0, usize::MAX), Err(DownConvertError::Zstd(1)));
    }

    #[test]
    fn magic_0_lz4_uses_kafka_0_9_header_checksum_and_reads_either() {
        let recs = [record(Some(b"k"), Some(b"hello lz4"), 0)];
        let wire = encode_for_produce(0, Codec::Lz4, &recs).expect("encode");
        let set = parse(&wire).expect("broken checksum read");
        assert_eq!(set.records[0].value.as_deref(), Some(&b"hello lz4"[..]));
        // The frame inside the wrapper does not pass a standard decoder as written.
        let (m, _) = read_message(&wire).expect("wrapper");
        let frame = m.record.value.expect("value");
        assert!(records::decompress(Codec::Lz4, &frame).is_err());
    }

    #[test]
    fn down_conversion_skips_control_batches_and_keeps_whole_batches_within_max_bytes() {
        let one = |v: &[u8]| {
            let set = MessageSet {
                magic: 1,
                codec: Codec::None,
                records: vec![record(None, Some(v), 7)],
            };
            to_batch(&set).expect("batch")
        };
        let mut a = one(b"first");
        batch::assign_offset(&mut a, Offset(10), LeaderEpoch(0));
        let mut b = one(b"second");
        batch::assign_offset(&mut b, Offset(11), LeaderEpoch(0));
        use crate::log::control::{ControlRecord, Marker, encode_marker};
        let commit = ControlRecord { marker: Marker::Commit, coordinator_epoch: 0 };
        let mut marker = encode_marker(1, 0, commit, 9);
        batch::assign_offset(&mut marker, Offset(12), LeaderEpoch(0));
        let stored = [a.clone(), b.clone(), marker].concat();
        let all = parse(&down_convert(&stored, 1, 10, usize::MAX).expect("down").0).expect("parse");
        assert_eq!(all.records.iter().map(|r| r.offset).collect::<Vec<_>>(), vec![10, 11]);
        let first_only = parse(&down_convert(&stored, 1, 10, 1).expect("down").0).expect("parse");
        assert_eq!(first_only.records.len(), 1, "at least one batch, then within max_bytes");
        let from_11 = parse(&down_convert(&stored, 0, 11, usize::MAX).expect("down").0).expect("p");
        assert_eq!(from_11.records.iter().map(|r| r.offset).collect::<Vec<_>>(), vec![11]);
    }
}
