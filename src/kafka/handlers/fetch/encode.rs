//! Frames a fetch answer without copying its records: the response is encoded by
//! kafka-protocol with every partition's records left out, and each partition's records field
//! is written around it as a length prefix followed by the file slice itself. Small slices are
//! read into the response (one `pread`); larger ones become file chunks the connection sends
//! with `sendfile`.
//!
//! How the records field is found without restating the whole layout: a partition encoded with
//! null records and with empty records differs first at the records field (its length prefix),
//! so everything before that byte is the partition's head and everything after the null's
//! prefix is its tail (tagged fields). Topics and the top level carry their children's array
//! between a head of known size and the rest. The tests compare every byte against
//! kafka-protocol's own encoding of the same answer with the records in place, at every version
//! served.

use std::mem::take;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::FetchResponse;
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::protocol::Encodable;

use crate::kafka::response::{Body, IntoBody};
use crate::log::FileSlice;

/// Record data smaller than this is copied into the response; larger slices are sent from the
/// page cache with `sendfile`.
const SENDFILE_MIN_BYTES: usize = 16 * 1024;

/// A fetch answer: the response without its records, and each partition's records as a file
/// slice, per topic and partition in the response's order.
#[derive(Debug)]
pub(crate) struct FetchReply {
    pub(crate) response: FetchResponse,
    pub(crate) records: Vec<Vec<FileSlice>>,
}

impl IntoBody for FetchReply {
    fn into_body(self, version: i16) -> Result<Body, String> {
        let FetchReply { mut response, records } = self;
        let mut w = Writer { version, body: Body::default(), buf: BytesMut::new() };
        let topics = take(&mut response.responses);
        let shell = w.encode(&response)?;
        let head = if version >= 7 { 10 } else { 4 };
        w.put_around(&shell, head, w.empty_array_len(), |w| {
            w.put_array_len(topics.len());
            let mut records = records.into_iter();
            for topic in topics {
                w.topic(topic, records.next().unwrap_or_default())?;
            }
            Ok(())
        })?;
        Ok(w.finish())
    }
}

struct Writer {
    version: i16,
    body: Body,
    /// Encoded bytes not yet pushed to `body`.
    buf: BytesMut,
}

impl Writer {
    fn topic(
        &mut self,
        mut t: FetchableTopicResponse,
        slices: Vec<FileSlice>,
    ) -> Result<(), String> {
        let partitions = take(&mut t.partitions);
        let shell = self.encode(&t)?;
        let name = t.topic.len();
        let head = match self.version {
            v if v >= 13 => 16,
            12 => varint_len(name as u32 + 1) + name,
            _ => 2 + name,
        };
        self.put_around(&shell, head, self.empty_array_len(), |w| {
            w.put_array_len(partitions.len());
            let mut slices = slices.into_iter();
            for p in partitions {
                w.partition(p, slices.next().unwrap_or_default())?;
            }
            Ok(())
        })
    }

    fn partition(&mut self, mut p: PartitionData, records: FileSlice) -> Result<(), String> {
        if records.is_empty() {
            p.records.get_or_insert_with(Bytes::new);
            let all = self.encode(&p)?;
            self.buf.extend_from_slice(&all);
            return Ok(());
        }
        p.records = None;
        let null = self.encode(&p)?;
        p.records = Some(Bytes::new());
        let empty = self.encode(&p)?;
        let at = null
            .iter()
            .zip(empty.iter())
            .position(|(a, b)| a != b)
            .ok_or("fetch response: records field not found")?;
        let null_len = if self.version >= 12 { 1 } else { 4 };
        self.put_around(&null, at, null_len, |w| {
            if w.version >= 12 {
                w.put_varint(records.len() as u32 + 1);
            } else {
                let len = i32::try_from(records.len()).map_err(|_| "records too large")?;
                w.buf.extend_from_slice(&len.to_be_bytes());
            }
            w.put_records(records)
        })
    }

    fn put_records(&mut self, records: FileSlice) -> Result<(), String> {
        if records.len() < SENDFILE_MIN_BYTES {
            return records.read_into(&mut self.buf).map_err(|e| format!("fetch read failed: {e}"));
        }
        self.body.push_bytes(self.buf.split().freeze());
        self.body.push_file(records);
        Ok(())
    }

    /// Writes `shell[..head]`, then what `inner` writes, then `shell` after the `skip` bytes
    /// that followed the head (the placeholder `inner` replaces).
    fn put_around(
        &mut self,
        shell: &[u8],
        head: usize,
        skip: usize,
        inner: impl FnOnce(&mut Self) -> Result<(), String>,
    ) -> Result<(), String> {
        let (Some(before), Some(after)) = (shell.get(..head), shell.get(head + skip..)) else {
            return Err(format!("fetch response v{}: unexpected layout", self.version));
        };
        self.buf.extend_from_slice(before);
        inner(self)?;
        self.buf.extend_from_slice(after);
        Ok(())
    }

    fn encode<T: Encodable>(&self, value: &T) -> Result<BytesMut, String> {
        let mut out = BytesMut::new();
        value
            .encode(&mut out, self.version)
            .map_err(|e| format!("cannot encode fetch response v{}: {e}", self.version))?;
        Ok(out)
    }

    /// The bytes of an empty array's length: compact arrays (v12+) write length + 1 as a
    /// varint, older versions an i32.
    fn empty_array_len(&self) -> usize {
        if self.version >= 12 { 1 } else { 4 }
    }

    fn put_array_len(&mut self, n: usize) {
        if self.version >= 12 {
            self.put_varint(n as u32 + 1);
        } else {
            self.buf.extend_from_slice(&(n as i32).to_be_bytes());
        }
    }

    fn put_varint(&mut self, mut v: u32) {
        while v >= 0x80 {
            self.buf.extend_from_slice(&[(v as u8) | 0x80]);
            v >>= 7;
        }
        self.buf.extend_from_slice(&[v as u8]);
    }

    fn finish(mut self) -> Body {
        self.body.push_bytes(self.buf.split().freeze());
        self.body
    }
}

fn varint_len(v: u32) -> usize {
    match v {
        0..0x80 => 1,
        0x80..0x4000 => 2,
        0x4000..0x20_0000 => 3,
        0x20_0000..0x1000_0000 => 4,
        _ => 5,
    }
}

#[cfg(test)]
mod tests {
    use std::fs::File;
    use std::sync::Arc;

    use kafka_protocol::messages::TopicName;
    use kafka_protocol::messages::fetch_response::AbortedTransaction;
    use kafka_protocol::protocol::StrBytes;

    use super::*;
    use crate::kafka::handlers::fetch::VERSIONS;
    use crate::kafka::response::Chunk;

    /// A response of two topics: partitions with small and large records, an error, aborted
    /// transactions, a long topic name (two-byte varint), and the slices that hold the records.
    fn answer(file: &Arc<File>, data: &[u8]) -> (FetchResponse, Vec<Vec<FileSlice>>) {
        let mut response = FetchResponse::default();
        response.throttle_time_ms = 7;
        let mut records = Vec::new();
        for (t, name) in ["orders", &"x".repeat(200)].iter().enumerate() {
            let mut topic = FetchableTopicResponse::default();
            topic.topic = TopicName(StrBytes::from_string(name.to_string()));
            topic.topic_id = uuid::Uuid::from_u128(0x1234 + t as u128);
            let mut slices = Vec::new();
            for (i, (pos, len)) in [(0, 100), (100, 0), (3, 40_000), (5, 16_384)].iter().enumerate()
            {
                let mut p = PartitionData::default();
                p.partition_index = i as i32;
                p.high_watermark = 1000 + i as i64;
                p.last_stable_offset = 999;
                p.log_start_offset = 3;
                p.preferred_read_replica = kafka_protocol::messages::BrokerId(-1);
                p.aborted_transactions = match i {
                    0 => None,
                    1 => Some(Vec::new()),
                    _ => Some(vec![
                        AbortedTransaction::default()
                            .with_producer_id(kafka_protocol::messages::ProducerId(9)),
                    ]),
                };
                p.error_code = if *len == 0 { 6 } else { 0 };
                p.records = Some(Bytes::new());
                slices.push(FileSlice::new(file.clone(), *pos, *len));
                topic.partitions.push(p);
            }
            response.responses.push(topic);
            records.push(slices);
        }
        assert!(data.len() >= 40_003);
        (response, records)
    }

    #[test]
    fn the_framed_answer_is_byte_for_byte_what_kafka_protocol_encodes_at_every_version() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("seg");
        let data: Vec<u8> = (0..50_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &data).expect("write");
        let file = Arc::new(File::open(&path).expect("open"));
        for version in VERSIONS.min..=VERSIONS.max {
            let (mut expected, records) = answer(&file, &data);
            for (t, slices) in expected.responses.iter_mut().zip(&records) {
                for (p, s) in t.partitions.iter_mut().zip(slices) {
                    p.records = Some(s.to_bytes().expect("read"));
                }
            }
            let want = expected.into_body(version).expect("encode").to_bytes().expect("bytes");
            let (response, records) = answer(&file, &data);
            let body = FetchReply { response, records }.into_body(version).expect("encode");
            assert_eq!(body.len(), want.len(), "v{version} length");
            assert_eq!(body.to_bytes().expect("bytes"), want, "v{version} bytes");
            let files = body.into_chunks().iter().filter(|c| matches!(c, Chunk::File(_))).count();
            assert_eq!(files, 4, "v{version}: slices of 16 KiB and more are sent from the file");
        }
    }
}
