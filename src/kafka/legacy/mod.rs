//! Request versions Kafka 3.9 still serves but kafka-protocol (generated from Kafka 4's schemas,
//! which dropped them in KIP-896) cannot decode. Each is decoded here by hand into the oldest
//! modern request, answered by the ordinary handler at that version, and its response encoded
//! back in the old layout, so handlers never see a legacy version.
//!
//! * ListOffsets v0 (Burrow, Sarama with old `config.Version`): per partition a timestamp and a
//!   `max_num_offsets`; answered with an array of offsets (the one the v1 lookup finds).
//! * OffsetCommit v0–1 (Sarama 1.2x), into v2.
//! * DescribeConfigs v0 (Sarama's admin `ListTopics`): `is_default` instead of `config_source`.
//! * OffsetForLeaderEpoch v0–1: no `current_leader_epoch`; v0 answers without the epoch.
//! * Produce v0–2 and Fetch v0–3: message formats v0/v1, up-converted to v2 batches on append
//!   and down-converted from them for the fetch (`log::message_set`).
//! * WriteTxnMarkers v0 (Kafka 2.x brokers' layout of v1's fields, not flexible).
//! * CreateAcls, DescribeAcls and DeleteAcls v0 (before KIP-290's pattern types): LITERAL.
//! * OffsetFetch v0, CreateTopics v0–1, DeleteTopics v0, DescribeLogDirs v0: the layouts of a
//!   modern version, give or take a field at one end (see `same_layout.rs`).
//!
//! Invariant: total over arbitrary input — a malformed body is an error (the connection closes,
//! as for any undecodable request), never a panic.

mod acls_v0;
mod describe_configs_v0;
mod fetch_v0_v3;
mod list_offsets_v0;
mod offset_commit_v0_v1;
mod offset_for_leader_epoch_v0_v1;
mod produce_v0_v2;
mod same_layout;
mod write_txn_markers_v0;

use std::sync::Arc;

use bytes::Bytes;
use kafka_protocol::messages::ApiKey;

use super::response::Body;
use crate::broker::Broker;
use crate::kafka::router::RequestContext;

/// The legacy versions served here, per API: (api, lowest legacy version, highest).
pub(crate) const LEGACY: &[(ApiKey, i16, i16)] = &[
    (ApiKey::Produce, 0, 2),
    (ApiKey::Fetch, 0, 3),
    (ApiKey::ListOffsets, 0, 0),
    (ApiKey::OffsetCommit, 0, 1),
    (ApiKey::OffsetFetch, 0, 0),
    (ApiKey::CreateTopics, 0, 1),
    (ApiKey::DeleteTopics, 0, 0),
    (ApiKey::DescribeConfigs, 0, 0),
    (ApiKey::OffsetForLeaderEpoch, 0, 1),
    (ApiKey::DescribeLogDirs, 0, 0),
    (ApiKey::WriteTxnMarkers, 0, 0),
    (ApiKey::CreateAcls, 0, 0),
    (ApiKey::DescribeAcls, 0, 0),
    (ApiKey::DeleteAcls, 0, 0),
];

/// Whether `version` of `api` is decoded here rather than by kafka-protocol.
pub(crate) fn handles(api: ApiKey, version: i16) -> bool {
    LEGACY.iter().any(|(a, lo, hi)| *a == api && (*lo..=*hi).contains(&version))
}

/// Answers a legacy request (the body after its header).
pub(crate) async fn dispatch(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    api: ApiKey,
    version: i16,
    body: Bytes,
) -> Result<Option<Body>, String> {
    match (api, version) {
        (ApiKey::Produce, 0..=2) => produce_v0_v2::handle(broker, ctx, version, body).await,
        (ApiKey::Fetch, 0..=3) => fetch_v0_v3::handle(broker, ctx, version, body).await,
        (ApiKey::ListOffsets, 0) => list_offsets_v0::handle(broker, ctx, body).await.map(Some),
        (ApiKey::OffsetCommit, 0 | 1) => {
            offset_commit_v0_v1::handle(broker, ctx, version, body).await.map(Some)
        }
        (ApiKey::OffsetFetch, 0) => same_layout::offset_fetch_v0(broker, ctx, body).await.map(Some),
        (ApiKey::CreateTopics, 0 | 1) => {
            same_layout::create_topics_v0_v1(broker, ctx, version, body).await.map(Some)
        }
        (ApiKey::DeleteTopics, 0) => {
            same_layout::delete_topics_v0(broker, ctx, body).await.map(Some)
        }
        (ApiKey::DescribeConfigs, 0) => {
            describe_configs_v0::handle(broker, ctx, body).await.map(Some)
        }
        (ApiKey::DescribeLogDirs, 0) => {
            same_layout::describe_log_dirs_v0(broker, ctx, body).await.map(Some)
        }
        (ApiKey::WriteTxnMarkers, 0) => {
            write_txn_markers_v0::handle(broker, ctx, body).await.map(Some)
        }
        (ApiKey::OffsetForLeaderEpoch, 0 | 1) => {
            offset_for_leader_epoch_v0_v1::handle(broker, ctx, version, body).await.map(Some)
        }
        (ApiKey::CreateAcls, 0) => acls_v0::create(broker, ctx, body).await.map(Some),
        (ApiKey::DescribeAcls, 0) => acls_v0::describe(broker, ctx, body).await.map(Some),
        (ApiKey::DeleteAcls, 0) => acls_v0::delete(broker, ctx, body).await.map(Some),
        _ => Err(format!("{api:?} v{version} is not a legacy version samsa decodes")),
    }
}

/// Big-endian readers that fail instead of panicking on short input.
pub(super) struct Reader(pub(super) Bytes);

impl Reader {
    fn take(&mut self, n: usize) -> Result<Bytes, String> {
        if self.0.len() < n {
            return Err(format!("truncated request: need {n} more bytes, have {}", self.0.len()));
        }
        Ok(self.0.split_to(n))
    }
    pub(super) fn i8(&mut self) -> Result<i8, String> {
        Ok(self.take(1)?[0] as i8)
    }
    /// A boolean: one byte, non-zero is true.
    pub(super) fn bool(&mut self) -> Result<bool, String> {
        Ok(self.take(1)?[0] != 0)
    }
    pub(super) fn i16(&mut self) -> Result<i16, String> {
        let b = self.take(2)?;
        Ok(i16::from_be_bytes([b[0], b[1]]))
    }
    pub(super) fn i32(&mut self) -> Result<i32, String> {
        let b = self.take(4)?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    pub(super) fn i64(&mut self) -> Result<i64, String> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(&b);
        Ok(i64::from_be_bytes(a))
    }
    /// A non-null i16-length string.
    pub(super) fn string(&mut self) -> Result<String, String> {
        let len = self.i16()?;
        let len = usize::try_from(len).map_err(|_| "null or negative string length".to_string())?;
        let b = self.take(len)?;
        String::from_utf8(b.to_vec()).map_err(|_| "string is not UTF-8".to_string())
    }
    /// An i16-length string, where length -1 is null.
    pub(super) fn nullable_string(&mut self) -> Result<Option<String>, String> {
        if self.0.len() >= 2 && self.0[..2] == [0xff, 0xff] {
            self.take(2)?;
            return Ok(None);
        }
        self.string().map(Some)
    }
    /// An i32-count array length, bounded by what the remaining bytes can hold.
    pub(super) fn array_len(&mut self, min_entry_bytes: usize) -> Result<usize, String> {
        let n = self.i32()?;
        let n = usize::try_from(n).map_err(|_| "negative array length".to_string())?;
        if n.saturating_mul(min_entry_bytes) > self.0.len() {
            return Err(format!("array of {n} entries cannot fit in {} bytes", self.0.len()));
        }
        Ok(n)
    }
}
