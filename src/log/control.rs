//! Transaction markers (KIP-98): the control batches a transaction coordinator has partition
//! leaders write to close a producer's transaction. A marker batch holds one control record,
//! Kafka's `EndTransactionMarker`; its header has the transactional and control bits, the
//! producer's id and the coordinator's producer epoch, and no sequence.
//!
//! Invariant: reading is total over arbitrary bytes (errors, never panics).

use super::batch::{BATCH_HEADER_BYTES, BatchHeader, LOG_OVERHEAD_BYTES, compute_crc};
use super::records::{RecordsError, for_each_record, put_varlong, records_section};

/// A transaction marker's kind (the control record key's type field).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Marker {
    Abort,
    Commit,
}

/// The one record of a transaction marker batch: its kind and the coordinator epoch that wrote
/// it. Kafka's `EndTransactionMarker`: key `version i16 (0) | type i16 (0 abort, 1 commit)`,
/// value `version i16 (0) | coordinatorEpoch i32`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ControlRecord {
    pub marker: Marker,
    pub coordinator_epoch: i32,
}

/// Reads the marker of a control batch. Other control types (Kafka's KRaft records, never in
/// partition logs) are malformed here.
pub(crate) fn control_record(
    batch: &[u8],
    header: &BatchHeader,
) -> Result<ControlRecord, RecordsError> {
    let section = records_section(batch, header)?;
    let mut found = None;
    for_each_record(&section, header, |r| {
        if found.is_none() {
            found = Some((r.key.map(<[u8]>::to_vec), r.value.map(<[u8]>::to_vec)));
        }
    })?;
    let Some((Some(key), value)) = found else {
        return Err(RecordsError::Malformed("a control batch without a keyed record"));
    };
    let marker = match key.as_slice() {
        [_, _, 0, 0] => Marker::Abort,
        [_, _, 0, 1] => Marker::Commit,
        _ => return Err(RecordsError::Malformed("unknown control record type")),
    };
    let coordinator_epoch = match value.as_deref() {
        Some([_, _, a, b, c, d, ..]) => i32::from_be_bytes([*a, *b, *c, *d]),
        _ => -1,
    };
    Ok(ControlRecord { marker, coordinator_epoch })
}

/// Encodes a transaction marker batch (one control record, uncompressed), offsets unassigned.
pub(crate) fn encode_marker(
    producer_id: i64,
    producer_epoch: i16,
    record: ControlRecord,
    timestamp_ms: i64,
) -> Vec<u8> {
    let kind: i16 = match record.marker {
        Marker::Abort => 0,
        Marker::Commit => 1,
    };
    let mut key = vec![0u8, 0];
    key.extend_from_slice(&kind.to_be_bytes());
    let mut value = vec![0u8, 0];
    value.extend_from_slice(&record.coordinator_epoch.to_be_bytes());
    let mut body = vec![0u8]; // attributes
    put_varlong(&mut body, 0); // timestamp delta
    put_varint(&mut body, 0); // offset delta
    put_varint(&mut body, key.len() as i32);
    body.extend_from_slice(&key);
    put_varint(&mut body, value.len() as i32);
    body.extend_from_slice(&value);
    put_varint(&mut body, 0); // headers
    let mut rec = Vec::new();
    put_varint(&mut rec, body.len() as i32);
    rec.extend_from_slice(&body);

    let mut b = Vec::with_capacity(BATCH_HEADER_BYTES + rec.len());
    b.extend_from_slice(&0i64.to_be_bytes()); // base offset
    b.extend_from_slice(
        &((BATCH_HEADER_BYTES - LOG_OVERHEAD_BYTES + rec.len()) as i32).to_be_bytes(),
    );
    b.extend_from_slice(&(-1i32).to_be_bytes()); // partition leader epoch
    b.push(2); // magic
    b.extend_from_slice(&0u32.to_be_bytes()); // crc, below
    b.extend_from_slice(&0x30i16.to_be_bytes()); // transactional | control
    b.extend_from_slice(&0i32.to_be_bytes()); // last offset delta
    b.extend_from_slice(&timestamp_ms.to_be_bytes());
    b.extend_from_slice(&timestamp_ms.to_be_bytes());
    b.extend_from_slice(&producer_id.to_be_bytes());
    b.extend_from_slice(&producer_epoch.to_be_bytes());
    b.extend_from_slice(&(-1i32).to_be_bytes()); // base sequence
    b.extend_from_slice(&1i32.to_be_bytes()); // records count
    b.extend_from_slice(&rec);
    let crc = compute_crc(&b);
    b[17..21].copy_from_slice(&crc.to_be_bytes());
    b
}

fn put_varint(out: &mut Vec<u8>, v: i32) {
    put_varlong(out, i64::from(v));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::batch;

    #[test]
    fn a_marker_round_trips_and_kafka_protocol_decodes_it_as_a_control_batch() {
        for marker in [Marker::Abort, Marker::Commit] {
            let rec = ControlRecord { marker, coordinator_epoch: 7 };
            let bytes = encode_marker(42, 3, rec, 1_700_000_000_000);
            let h = batch::validate(&bytes).expect("valid batch");
            assert!(h.is_control() && h.is_transactional());
            assert_eq!((h.producer_id.0, h.producer_epoch.0, h.base_sequence), (42, 3, -1));
            assert_eq!(control_record(&bytes, &h).expect("control"), rec);
            let mut buf = bytes::Bytes::from(bytes.clone());
            let sets =
                kafka_protocol::records::RecordBatchDecoder::decode_all(&mut buf).expect("decodes");
            let r = &sets[0].records[0];
            assert!(r.control && r.transactional);
        }
    }

    #[test]
    fn garbage_in_a_control_batch_is_an_error() {
        let mut bytes =
            encode_marker(1, 0, ControlRecord { marker: Marker::Commit, coordinator_epoch: 0 }, 0);
        let len = bytes.len();
        bytes[len - 9] = 9; // the key's type byte: 9 is not a marker
        let crc = compute_crc(&bytes);
        bytes[17..21].copy_from_slice(&crc.to_be_bytes());
        let h = batch::validate(&bytes).expect("still a valid batch");
        assert!(control_record(&bytes, &h).is_err());
    }
}
