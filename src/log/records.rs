//! The records inside a v2 batch, for the two places the broker looks past the header: appends
//! to a compacted topic (every record needs a key) and the log cleaner (which keeps some records
//! of a batch and drops the rest).
//!
//! The records section is decompressed with the batch's codec (kafka-protocol's codecs) and
//! walked record by record; only the length, timestamp delta, offset delta, key and whether the
//! value is null are read. A filtered batch is rebuilt from the retained records' bytes verbatim,
//! recompressed with the same codec, under the original header: base offset, last offset delta,
//! base timestamp, producer id, epoch and base sequence stay, as Kafka's `MemoryRecords.filterTo`
//! keeps them (`overrideLastOffset`), so offsets, record timestamps and idempotent-producer state
//! read the same after cleaning. Only the length, record count, max timestamp (CreateTime) and
//! CRC change; a batch kept with no records (an idempotent producer's last batch) is written
//! uncompressed, like Kafka's `writeEmptyHeader`.
//!
//! Record layout (varints are zigzag, as in Kafka):
//! ```text
//! length varint | attributes i8 | timestampDelta varlong | offsetDelta varint
//! keyLength varint | key | valueLength varint | value | headers count varint | headers
//! ```
//! Invariant: total over arbitrary bytes — malformed input is an error, never a panic.

use bytes::{Bytes, BytesMut};
use kafka_protocol::compression::{self as codecs, Compressor, Decompressor};
use thiserror::Error;

use super::batch::{BATCH_HEADER_BYTES, BatchHeader, Codec, LOG_OVERHEAD_BYTES, compute_crc};
use crate::types::Offset;

const ATTR_COMPRESSION_MASK: i16 = 0x07;
const ATTR_LOG_APPEND_TIME: i16 = 0x08;

/// Why the records of a batch could not be read or rebuilt.
#[derive(Debug, Error, PartialEq, Eq)]
pub(crate) enum RecordsError {
    #[error("the batch's records cannot be decompressed: {0}")]
    Decompress(String),
    #[error("the batch's records cannot be compressed: {0}")]
    Compress(String),
    #[error("malformed record: {0}")]
    Malformed(&'static str),
    #[error("unknown compression codec in attributes {0:#x}")]
    UnknownCodec(i16),
}

/// One record, as much of it as compaction needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RecordView<'a> {
    pub offset: Offset,
    pub timestamp_ms: i64,
    pub key: Option<&'a [u8]>,
    /// A tombstone: the key's value is deleted.
    pub value_is_null: bool,
    pub value: Option<&'a [u8]>,
    /// The whole record, length prefix included.
    bytes: &'a [u8],
}

/// What filtering did to a batch.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Filtered {
    /// Every record was retained: the original bytes stand.
    Unchanged,
    /// Nothing was retained and the batch need not be kept.
    Removed,
    /// The rebuilt batch (fewer records, or none when an empty batch had to be kept).
    Rewritten(Vec<u8>),
}

/// A batch's uncompressed records section: the batch's own bytes when it is not compressed,
/// else the decompressed copy.
pub(crate) enum Section<'a> {
    Borrowed(&'a [u8]),
    Decompressed(Bytes),
}

impl std::ops::Deref for Section<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Section::Borrowed(b) => b,
            Section::Decompressed(b) => b,
        }
    }
}

/// The uncompressed records section of `batch` (exactly one whole batch, `header` its header);
/// an uncompressed batch is not copied.
pub(crate) fn records_section<'a>(
    batch: &'a [u8],
    header: &BatchHeader,
) -> Result<Section<'a>, RecordsError> {
    let raw = batch
        .get(BATCH_HEADER_BYTES..header.size_bytes)
        .ok_or(RecordsError::Malformed("batch shorter than its length field"))?;
    let codec = header.codec().ok_or(RecordsError::UnknownCodec(header.attributes))?;
    if codec == Codec::None {
        return Ok(Section::Borrowed(raw));
    }
    decompress(codec, raw).map(Section::Decompressed)
}

/// `raw` decompressed with `codec` (kafka-protocol's codecs: gzip stream, xerial-framed or raw
/// snappy, LZ4 frame, zstd frame).
pub(crate) fn decompress(codec: Codec, raw: &[u8]) -> Result<Bytes, RecordsError> {
    let mut input = Bytes::copy_from_slice(raw);
    let out = |b: &mut Bytes| Ok(b.clone());
    let decompressed = match codec {
        Codec::None => Ok(input.clone()),
        Codec::Gzip => codecs::Gzip::decompress(&mut input, out),
        Codec::Snappy => codecs::Snappy::decompress(&mut input, out),
        Codec::Lz4 => codecs::Lz4::decompress(&mut input, out),
        Codec::Zstd => codecs::Zstd::decompress(&mut input, out),
    };
    decompressed.map_err(|e| RecordsError::Decompress(e.to_string()))
}

/// Calls `f` with every record of an uncompressed records section, in order. Fails on the
/// first malformed record, or when the count differs from the header's.
pub(crate) fn for_each_record<'a>(
    section: &'a [u8],
    header: &BatchHeader,
    mut f: impl FnMut(RecordView<'a>),
) -> Result<(), RecordsError> {
    let mut rest = section;
    let mut count = 0i64;
    while !rest.is_empty() {
        let (record, tail) = parse_record(rest, header)?;
        f(record);
        rest = tail;
        count += 1;
    }
    if count != i64::from(header.records_count) {
        return Err(RecordsError::Malformed("record count differs from the batch header"));
    }
    Ok(())
}

/// The index (in its batch) of the first record without a key, if any (refused on compacted
/// topics, with that index in Produce's record errors).
pub(crate) fn first_keyless_record(
    batch: &[u8],
    header: &BatchHeader,
) -> Result<Option<i32>, RecordsError> {
    let section = records_section(batch, header)?;
    let (mut index, mut found) = (0i32, None);
    for_each_record(&section, header, |r| {
        if found.is_none() && r.key.is_none() {
            found = Some(index);
        }
        index += 1;
    })?;
    Ok(found)
}

/// The first record whose timestamp lies outside `[low_ms, high_ms]`: (its index in the batch,
/// its timestamp). KIP-937's bounds on CreateTime topics.
pub(crate) fn first_timestamp_outside(
    batch: &[u8],
    header: &BatchHeader,
    low_ms: i64,
    high_ms: i64,
) -> Result<Option<(i32, i64)>, RecordsError> {
    // Whole batches inside the bounds need no decompression.
    if header.base_timestamp_ms >= low_ms && header.max_timestamp_ms <= high_ms {
        return Ok(None);
    }
    let section = records_section(batch, header)?;
    let (mut index, mut found) = (0i32, None);
    for_each_record(&section, header, |r| {
        if found.is_none() && (r.timestamp_ms < low_ms || r.timestamp_ms > high_ms) {
            found = Some((index, r.timestamp_ms));
        }
        index += 1;
    })?;
    Ok(found)
}

/// Keeps the records of `batch` for which `retain` is true. With `keep_empty`, a batch that
/// retains nothing is still written, with no records (its header carries producer state).
pub(crate) fn filter_batch(
    batch: &[u8],
    header: &BatchHeader,
    keep_empty: bool,
    mut retain: impl FnMut(&RecordView<'_>) -> bool,
) -> Result<Filtered, RecordsError> {
    let section = records_section(batch, header)?;
    let mut kept: Vec<RecordView<'_>> = Vec::new();
    let mut total = 0usize;
    for_each_record(&section, header, |r| {
        total += 1;
        if retain(&r) {
            kept.push(r);
        }
    })?;
    if kept.len() == total {
        return Ok(Filtered::Unchanged);
    }
    if kept.is_empty() && !keep_empty {
        return Ok(Filtered::Removed);
    }
    rebuild(batch, header, &kept).map(Filtered::Rewritten)
}

/// A batch with `header`'s identity holding exactly `kept` (records of that batch).
/// Broker-side compression (topic `compression.type`): the batch with the same records under
/// `codec`. Header fields, offsets, timestamps and producer state stay; only the codec bits,
/// the length and the CRC change, as Kafka's recompression on append leaves them.
pub(crate) fn recompress(
    batch: &[u8],
    header: &BatchHeader,
    codec: Codec,
    level: Option<i32>,
) -> Result<Vec<u8>, RecordsError> {
    let section = records_section(batch, header)?;
    let mut kept: Vec<RecordView<'_>> = Vec::new();
    for_each_record(&section, header, |r| kept.push(r))?;
    rebuild_as(batch, header, &kept, codec, level)
}

/// Compresses `data` with `codec` at `level` (KIP-390: `compression.gzip.level` 1..9,
/// `compression.lz4.level` 1..17, `compression.zstd.level` -131072..22), in the framing Kafka's
/// clients read (gzip stream, LZ4 frame with independent blocks, zstd frame).
fn compress_at_level(codec: Codec, level: i32, data: &[u8]) -> std::io::Result<Vec<u8>> {
    use std::io::Write;
    match codec {
        Codec::Gzip => {
            let level = flate2::Compression::new(level.clamp(0, 9) as u32);
            let mut e = flate2::write::GzEncoder::new(Vec::new(), level);
            e.write_all(data)?;
            e.finish()
        }
        Codec::Lz4 => {
            let mut e = lz4::EncoderBuilder::new()
                .level(level.clamp(1, 17) as u32)
                .block_mode(lz4::BlockMode::Independent)
                .build(Vec::new())?;
            e.write_all(data)?;
            let (out, done) = e.finish();
            done.map(|()| out)
        }
        Codec::Zstd => zstd::encode_all(data, level),
        Codec::None | Codec::Snappy => Ok(data.to_vec()),
    }
}

fn rebuild(
    batch: &[u8],
    header: &BatchHeader,
    kept: &[RecordView<'_>],
) -> Result<Vec<u8>, RecordsError> {
    let codec = header.codec().ok_or(RecordsError::UnknownCodec(header.attributes))?;
    rebuild_as(batch, header, kept, codec, None)
}

fn rebuild_as(
    batch: &[u8],
    header: &BatchHeader,
    kept: &[RecordView<'_>],
    codec: Codec,
    level: Option<i32>,
) -> Result<Vec<u8>, RecordsError> {
    let mut attributes = (header.attributes & !ATTR_COMPRESSION_MASK) | codec_bits(codec);
    let mut records = BytesMut::new();
    for r in kept {
        records.extend_from_slice(r.bytes);
    }
    let section: Vec<u8> = if kept.is_empty() {
        attributes &= !ATTR_COMPRESSION_MASK;
        Vec::new()
    } else {
        compress(codec, level, &records)?
    };
    let max_timestamp_ms = if header.attributes & ATTR_LOG_APPEND_TIME != 0 || kept.is_empty() {
        header.max_timestamp_ms
    } else {
        kept.iter().map(|r| r.timestamp_ms).max().unwrap_or(header.max_timestamp_ms)
    };
    let mut out = Vec::with_capacity(BATCH_HEADER_BYTES + section.len());
    out.extend_from_slice(&batch[..BATCH_HEADER_BYTES]);
    out.extend_from_slice(&section);
    let length = i32::try_from(out.len() - LOG_OVERHEAD_BYTES)
        .map_err(|_| RecordsError::Malformed("rebuilt batch too large"))?;
    out[8..12].copy_from_slice(&length.to_be_bytes());
    out[21..23].copy_from_slice(&attributes.to_be_bytes());
    out[35..43].copy_from_slice(&max_timestamp_ms.to_be_bytes());
    out[57..61].copy_from_slice(&(kept.len() as i32).to_be_bytes());
    let crc = compute_crc(&out);
    out[17..21].copy_from_slice(&crc.to_be_bytes());
    Ok(out)
}

/// `data` compressed with `codec`: at `level` when given (KIP-390), else at kafka-protocol's
/// fixed levels; snappy is xerial-framed, as Kafka's clients write it.
pub(crate) fn compress(
    codec: Codec,
    level: Option<i32>,
    data: &[u8],
) -> Result<Vec<u8>, RecordsError> {
    let mut out = BytesMut::new();
    let fill = |tmp: &mut BytesMut| {
        tmp.extend_from_slice(data);
        Ok(())
    };
    let done = match (codec, level) {
        (Codec::Gzip | Codec::Lz4 | Codec::Zstd, Some(level)) => {
            compress_at_level(codec, level, data)
                .map(|c| out.extend_from_slice(&c))
                .map_err(anyhow::Error::from)
        }
        (Codec::None, _) => {
            out.extend_from_slice(data);
            Ok(())
        }
        (Codec::Gzip, None) => codecs::Gzip::compress(&mut out, fill),
        (Codec::Snappy, _) => codecs::Snappy::compress(&mut out, fill),
        (Codec::Lz4, None) => codecs::Lz4::compress(&mut out, fill),
        (Codec::Zstd, None) => codecs::Zstd::compress(&mut out, fill),
    };
    done.map_err(|e| RecordsError::Compress(e.to_string()))?;
    Ok(out.to_vec())
}

pub(crate) fn codec_bits(codec: Codec) -> i16 {
    match codec {
        Codec::None => 0,
        Codec::Gzip => 1,
        Codec::Snappy => 2,
        Codec::Lz4 => 3,
        Codec::Zstd => 4,
    }
}

/// Parses the record at the start of `bytes`; returns it and what follows it.
fn parse_record<'a>(
    bytes: &'a [u8],
    header: &BatchHeader,
) -> Result<(RecordView<'a>, &'a [u8]), RecordsError> {
    let (length, body) = varint(bytes)?;
    let length = usize::try_from(length).map_err(|_| RecordsError::Malformed("negative length"))?;
    if body.len() < length {
        return Err(RecordsError::Malformed("record longer than its batch"));
    }
    let whole_len = bytes.len() - body.len() + length;
    let (record, tail) = (&body[..length], &body[length..]);
    let rest = record.get(1..).ok_or(RecordsError::Malformed("empty record"))?;
    let (timestamp_delta, rest) = varlong(rest)?;
    let (offset_delta, rest) = varint(rest)?;
    let (key, rest) = bytes_field(rest)?;
    let (value, _) = bytes_field(rest)?;
    let view = RecordView {
        offset: header.base_offset.plus(i64::from(offset_delta)),
        timestamp_ms: header.base_timestamp_ms.saturating_add(timestamp_delta),
        key,
        value_is_null: value.is_none(),
        value,
        bytes: &bytes[..whole_len],
    };
    Ok((view, tail))
}

/// A length-prefixed byte field; length -1 is null.
fn bytes_field(bytes: &[u8]) -> Result<(Option<&[u8]>, &[u8]), RecordsError> {
    let (len, rest) = varint(bytes)?;
    if len < 0 {
        return Ok((None, rest));
    }
    let len = len as usize;
    if rest.len() < len {
        return Err(RecordsError::Malformed("field longer than its record"));
    }
    Ok((Some(&rest[..len]), &rest[len..]))
}

/// Appends `v` as a zigzag varlong (a varint's encoding is the same for values in i32's range).
pub(crate) fn put_varlong(out: &mut Vec<u8>, v: i64) {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    while z >= 0x80 {
        out.push((z as u8) | 0x80);
        z >>= 7;
    }
    out.push(z as u8);
}

fn varint(bytes: &[u8]) -> Result<(i32, &[u8]), RecordsError> {
    let (v, rest) = unsigned_varint(bytes, 5)?;
    let v = u32::try_from(v).map_err(|_| RecordsError::Malformed("varint overflows i32"))?;
    Ok((((v >> 1) as i32) ^ -((v & 1) as i32), rest))
}

fn varlong(bytes: &[u8]) -> Result<(i64, &[u8]), RecordsError> {
    let (v, rest) = unsigned_varint(bytes, 10)?;
    Ok((((v >> 1) as i64) ^ -((v & 1) as i64), rest))
}

fn unsigned_varint(bytes: &[u8], max_bytes: usize) -> Result<(u64, &[u8]), RecordsError> {
    let mut value = 0u64;
    for (i, b) in bytes.iter().take(max_bytes).enumerate() {
        value |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Ok((value, &bytes[i + 1..]));
        }
    }
    Err(RecordsError::Malformed("truncated or overlong varint"))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::log::batch;
    use crate::types::LeaderEpoch;
    use kafka_protocol::indexmap::IndexMap;
    use kafka_protocol::records::{
        Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions,
        TimestampType,
    };
    use proptest::prelude::*;

    /// A producer-shaped batch: records `keys` (None: keyless; value None: tombstone).
    pub(crate) fn keyed_batch(
        entries: &[(Option<&str>, Option<&str>)],
        compression: Compression,
        producer_id: i64,
    ) -> Vec<u8> {
        let records: Vec<Record> = entries
            .iter()
            .enumerate()
            .map(|(i, (k, v))| Record {
                transactional: false,
                control: false,
                partition_leader_epoch: 0,
                producer_id,
                producer_epoch: if producer_id >= 0 { 0 } else { -1 },
                timestamp_type: TimestampType::Creation,
                offset: i as i64,
                // kafka-protocol batches records whose offset − sequence is constant: the base
                // sequence is -1 without a producer id, as Kafka's clients send it.
                sequence: if producer_id >= 0 { i as i32 } else { i as i32 - 1 },
                timestamp: 1_000 + i as i64,
                key: k.map(|k| Bytes::copy_from_slice(k.as_bytes())),
                value: v.map(|v| Bytes::copy_from_slice(v.as_bytes())),
                headers: IndexMap::new(),
                delete_horizon: false,
            })
            .collect();
        let mut buf = BytesMut::new();
        RecordBatchEncoder::encode(
            &mut buf,
            &records,
            &RecordEncodeOptions { version: 2, compression },
        )
        .expect("encode");
        buf.to_vec()
    }

    fn decoded(b: &[u8]) -> Vec<(i64, i64, Option<Bytes>, Option<Bytes>)> {
        let mut buf = Bytes::copy_from_slice(b);
        RecordBatchDecoder::decode(&mut buf)
            .expect("decodes")
            .records
            .into_iter()
            .map(|r| (r.offset, r.timestamp, r.key, r.value))
            .collect()
    }

    #[test]
    fn a_filtered_batch_keeps_its_identity_and_decodes_to_the_retained_records() {
        for compression in [
            Compression::None,
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ] {
            let entries = [
                (Some("a"), Some("1")),
                (Some("b"), Some("2")),
                (Some("a"), None),
                (Some("c"), Some("3")),
            ];
            let mut b = keyed_batch(&entries, compression, 7);
            batch::assign_offset(&mut b, Offset(100), LeaderEpoch(3));
            let h = batch::validate(&b).expect("valid");
            let out =
                filter_batch(&b, &h, false, |r| r.key != Some(b"a".as_slice())).expect("filters");
            let Filtered::Rewritten(out) = out else { panic!("rewritten: {out:?}") };
            let nh = batch::validate(&out).expect("valid CRC");
            assert_eq!(nh.base_offset, Offset(100));
            assert_eq!(nh.last_offset(), Offset(103), "last offset delta kept");
            assert_eq!((nh.producer_id, nh.base_sequence), (h.producer_id, h.base_sequence));
            assert_eq!(nh.records_count, 2);
            assert_eq!(nh.max_timestamp_ms, 1_003);
            let got = decoded(&out);
            assert_eq!(got.iter().map(|r| r.0).collect::<Vec<_>>(), vec![101, 103]);
            assert_eq!(got[0].1, 1_001, "record timestamps unchanged");
            // Everything retained: unchanged; nothing: removed, or an empty batch if asked.
            assert_eq!(filter_batch(&b, &h, false, |_| true), Ok(Filtered::Unchanged));
            assert_eq!(filter_batch(&b, &h, false, |_| false), Ok(Filtered::Removed));
            let Ok(Filtered::Rewritten(empty)) = filter_batch(&b, &h, true, |_| false) else {
                panic!("empty batch kept")
            };
            let eh = batch::validate(&empty).expect("valid");
            assert_eq!(
                (eh.records_count, eh.last_offset(), eh.codec()),
                (0, Offset(103), Some(Codec::None))
            );
            assert_eq!(eh.last_sequence(), h.last_sequence());
        }
    }

    #[test]
    fn keyless_records_and_tombstones_are_seen() {
        let b = keyed_batch(&[(Some("a"), None), (None, Some("x"))], Compression::Lz4, -1);
        let h = batch::validate(&b).expect("valid");
        assert_eq!(first_keyless_record(&b, &h), Ok(Some(1)));
        let section = records_section(&b, &h).expect("section");
        let mut seen = Vec::new();
        for_each_record(&section, &h, |r| seen.push((r.key.is_some(), r.value_is_null)))
            .expect("walks");
        assert_eq!(seen, vec![(true, true), (false, false)]);
        let keyed = keyed_batch(&[(Some("a"), Some("1"))], Compression::None, -1);
        assert_eq!(
            first_keyless_record(&keyed, &batch::validate(&keyed).expect("valid")),
            Ok(None)
        );
        // Timestamps 1000 and 1001: the second is past a bound of 1000.
        assert_eq!(first_timestamp_outside(&b, &h, 0, 1_000), Ok(Some((1, 1_001))));
        assert_eq!(first_timestamp_outside(&b, &h, 1_001, i64::MAX), Ok(Some((0, 1_000))));
        assert_eq!(first_timestamp_outside(&b, &h, 0, i64::MAX), Ok(None));
    }

    proptest! {
        /// Arbitrary bytes after a valid header never panic the walker or the filter.
        #[test]
        fn garbage_records_are_errors_not_panics(tail in proptest::collection::vec(any::<u8>(), 0..200), count in 0i32..5) {
            let mut b = keyed_batch(&[(Some("k"), Some("v"))], Compression::None, -1);
            b.truncate(BATCH_HEADER_BYTES);
            b.extend_from_slice(&tail);
            let len = (b.len() - LOG_OVERHEAD_BYTES) as i32;
            b[8..12].copy_from_slice(&len.to_be_bytes());
            b[57..61].copy_from_slice(&count.to_be_bytes());
            let h = batch::parse_header(&b).expect("header");
            let _ = filter_batch(&b, &h, true, |r| r.key.is_some());
            let _ = first_keyless_record(&b, &h);
            let _ = first_timestamp_outside(&b, &h, 0, 0);
        }
    }
}
